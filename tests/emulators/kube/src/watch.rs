//! Watches: a chunked response of one JSON event per line (`ADDED`, `MODIFIED`, `DELETED`,
//! `BOOKMARK`, `ERROR`), from a resourceVersion or from the current state, as plain objects
//! or as one-row Tables for `kubectl get -w`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::resources::ResourceType;
use crate::server::{Body, Req, selector_filter};
use crate::status::ApiError;
use crate::store::{Cluster, Event};
use crate::table::{self, Include};

/// How long a watch runs when the client sets no `timeoutSeconds` (the API server picks
/// 30-60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

/// A response body fed line by line from a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current objects as ADDED first (no resourceVersion, `0`, or `sendInitialEvents`).
    Current { end_bookmark: bool },
    /// Every change after this resourceVersion.
    After(u64),
}

/// Decides where a watch starts from its query.
pub fn start(resource_version: Option<&str>, send_initial_events: bool) -> Result<Start, ApiError> {
    match resource_version.unwrap_or("") {
        "" | "0" => Ok(Start::Current {
            end_bookmark: send_initial_events,
        }),
        _ if send_initial_events => Ok(Start::Current { end_bookmark: true }),
        rv => rv
            .parse::<u64>()
            .map(Start::After)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}"))),
    }
}

struct Encoder {
    rt: &'static ResourceType,
    table: bool,
    include: Include,
    columns_sent: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = if self.table && kind != "BOOKMARK" && kind != "ERROR" {
            let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or("");
            let t = table::table(
                self.rt.kind,
                std::slice::from_ref(obj),
                self.include,
                rv,
                None,
                !self.columns_sent,
            );
            self.columns_sent = true;
            t
        } else {
            obj.clone()
        };
        let mut s = json!({"type": kind, "object": object}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&mut self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta});
        self.line("BOOKMARK", &obj)
    }
}

/// Starts a watch; the events flow from a task until the timeout, the client leaving, or the
/// watch falling too far behind (the client then lists again).
pub fn serve(
    cluster: Arc<Cluster>,
    rt: &'static ResourceType,
    ns: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let keep = selector_filter(r)?;
    let from = start(
        r.q("resourceVersion"),
        matches!(r.q("sendInitialEvents"), Some("true")),
    )?;
    let bookmarks = matches!(r.q("allowWatchBookmarks"), Some("true") | Some("1"));
    let timeout = r
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut enc = Encoder {
        rt,
        table: r.accept_table,
        include: Include::parse(r.q("includeObject")),
        columns_sent: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let ns = ns.to_owned();
    let resource = rt.qualified();
    let mut first: Vec<Bytes> = Vec::new();
    let (replay, mut events, mut rv) = match from {
        Start::Current { end_bookmark } => {
            let (items, rv, events) = cluster.list_and_watch(rt, &ns, &*keep);
            for obj in &items {
                first.push(enc.line("ADDED", obj));
            }
            if end_bookmark && bookmarks {
                first.push(enc.bookmark(rv, true));
            }
            (Vec::new(), events, rv)
        }
        Start::After(rv) => match cluster.watch_from(rv) {
            Ok((past, events)) => (past, events, rv),
            Err(e) => {
                // As the API server does: 200, then one ERROR event carrying the 410 Status.
                let _ = tx.try_send(enc.line("ERROR", &e.to_status()));
                return Ok(response(rx, r.accept_table));
            }
        },
    };
    let relevant = move |e: &Event| {
        e.resource == resource && (ns.is_empty() || e.namespace == ns) && keep(&e.object)
    };
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        for e in replay.iter().filter(|e| relevant(e)) {
            rv = e.rv;
            if tx.send(enc.line(e.kind, &e.object)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            let line = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => enc.bookmark(rv, false),
                e = events.recv() => match e {
                    Ok(e) if e.rv > rv && relevant(&e) => {
                        rv = e.rv;
                        enc.line(e.kind, &e.object)
                    }
                    Ok(e) => {
                        rv = rv.max(e.rv);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(response(rx, r.accept_table))
}

fn response(rx: mpsc::Receiver<Bytes>, table: bool) -> Response<Body> {
    let mut resp = Response::new(ChannelBody(rx).boxed());
    let ct = if table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    resp.headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static(ct));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_a_watch_starts() {
        assert_eq!(
            start(None, false).unwrap(),
            Start::Current {
                end_bookmark: false
            }
        );
        assert_eq!(
            start(Some("0"), true).unwrap(),
            Start::Current { end_bookmark: true }
        );
        assert_eq!(start(Some("42"), false).unwrap(), Start::After(42));
        assert_eq!(
            start(Some("42"), true).unwrap(),
            Start::Current { end_bookmark: true }
        );
        assert_eq!(start(Some("x"), false).unwrap_err().code, 400);
    }
}
