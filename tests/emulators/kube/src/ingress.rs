//! The ALB stand-in: one loopback port per cluster (the first free one of `--service-ports`,
//! opened with the cluster's first Ingress) that routes each HTTP request by host and path, as
//! the Ingresses' rules say, to the backend Service's loopback port (see [`crate::network`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One path rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// None: any host.
    pub host: Option<String>,
    pub path: String,
    pub exact: bool,
    pub target: SocketAddr,
}

/// Whether `path` matches a `Prefix` rule element by element (`/foo` matches `/foo` and
/// `/foo/bar`, not `/foobar`).
fn prefix_matches(rule: &str, path: &str) -> bool {
    let rule = rule.trim_end_matches('/');
    rule.is_empty() || path == rule || path.starts_with(&format!("{rule}/"))
}

/// The route for a request: this host's rules before host-less ones, an exact match before the
/// longest prefix.
pub fn pick<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<&'a Route> {
    let host = host.split(':').next().unwrap_or(host);
    let score = |r: &Route| -> Option<(u8, u8, usize)> {
        let host_rank = match &r.host {
            Some(h) if h == host => 1,
            Some(h) if h.starts_with("*.") && host.ends_with(&h[1..]) => 1,
            Some(_) => return None,
            None => 0,
        };
        if r.exact {
            (r.path == path).then_some((host_rank, 1, r.path.len()))
        } else {
            prefix_matches(&r.path, path).then_some((host_rank, 0, r.path.len()))
        }
    };
    routes
        .iter()
        .filter_map(|r| score(r).map(|s| (s, r)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, r)| r)
}

/// The routes of `ingresses` (one cluster), `service_port(namespace, service, port)` giving a
/// backend's loopback port (the port a number, or a name of the Service's ports).
pub fn routes(
    ingresses: &[Value],
    service_port: &dyn Fn(&str, &str, &Value) -> Option<u16>,
) -> Vec<Route> {
    let mut out = Vec::new();
    for ing in ingresses {
        let ns = ing["metadata"]["namespace"].as_str().unwrap_or("");
        let target = |backend: &Value| {
            let svc = backend["service"]["name"].as_str()?;
            let port = service_port(ns, svc, &backend["service"]["port"])?;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        for rule in ing["spec"]["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().map(str::to_owned);
            for p in rule["http"]["paths"].as_array().into_iter().flatten() {
                if let Some(t) = target(&p["backend"]) {
                    out.push(Route {
                        host: host.clone(),
                        path: p["path"].as_str().unwrap_or("/").to_owned(),
                        exact: p["pathType"] == "Exact",
                        target: t,
                    });
                }
            }
        }
        if let Some(t) = target(&ing["spec"]["defaultBackend"]) {
            out.push(Route {
                host: None,
                path: "/".into(),
                exact: false,
                target: t,
            });
        }
    }
    out
}

struct Listener {
    port: u16,
    routes: Arc<Mutex<Vec<Route>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The clusters' ALB ports.
#[derive(Default)]
pub struct Albs {
    by_cluster: Mutex<BTreeMap<String, Listener>>,
}

impl Albs {
    /// Sets `cluster`'s routes, opening its port (in `range`, skipping `taken`) when needed;
    /// closes it when there are no Ingresses. Returns the port.
    pub async fn set(
        &self,
        cluster: &str,
        has_ingress: bool,
        routes: Vec<Route>,
        range: (u16, u16),
        taken: &[u16],
    ) -> Option<u16> {
        let existing = {
            let mut map = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
            if !has_ingress {
                if let Some(l) = map.remove(cluster) {
                    l.task.abort();
                }
                return None;
            }
            map.get(cluster).map(|l| {
                *l.routes.lock().unwrap_or_else(|e| e.into_inner()) = routes.clone();
                l.port
            })
        };
        if existing.is_some() {
            return existing;
        }
        for port in range.0..=range.1 {
            if taken.contains(&port) {
                continue;
            }
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await else {
                continue;
            };
            let shared = Arc::new(Mutex::new(routes));
            let task = tokio::spawn(serve(listener, shared.clone()));
            tracing::info!("cluster {cluster}: Ingress (ALB) on 127.0.0.1:{port}");
            self.by_cluster
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    cluster.to_owned(),
                    Listener {
                        port,
                        routes: shared,
                        task,
                    },
                );
            return Some(port);
        }
        None
    }

    pub fn ports(&self) -> Vec<u16> {
        self.by_cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|l| l.port)
            .collect()
    }

    /// `[{cluster, loopbackPort}]`.
    pub fn listing(&self) -> Value {
        let map = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
        json!(
            map.iter()
                .map(|(c, l)| json!({"cluster": c, "loopbackPort": l.port}))
                .collect::<Vec<_>>()
        )
    }
}

async fn serve(listener: TcpListener, routes: Arc<Mutex<Vec<Route>>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let _ = proxy(client, routes).await;
        });
    }
}

/// Reads one request head, routes it, and splices the connection to the backend (the request
/// rewritten to `Connection: close`, so that every request on it is routed).
async fn proxy(mut client: TcpStream, routes: Arc<Mutex<Vec<Route>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return client.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    let mut host = String::new();
    let mut rewritten = format!("{request_line}\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        if name.eq_ignore_ascii_case("host") {
            host = value.trim().to_owned();
        }
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        rewritten.push_str(l);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let target = {
        let r = routes.lock().unwrap_or_else(|e| e.into_inner());
        pick(&r, &host, &path).map(|r| r.target)
    };
    let Some(target) = target else {
        return client
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    };
    let Ok(mut backend) = TcpStream::connect(target).await else {
        return client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    };
    backend.write_all(rewritten.as_bytes()).await?;
    backend.write_all(&buf[head_end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut backend)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: Option<&str>, path: &str, exact: bool, port: u16) -> Route {
        Route {
            host: host.map(str::to_owned),
            path: path.into(),
            exact,
            target: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn host_then_exact_then_longest_prefix() {
        let routes = [
            r(None, "/", false, 1),
            r(None, "/auth", false, 2),
            r(Some("api.example.com"), "/", false, 3),
            r(None, "/auth/login", true, 4),
        ];
        assert_eq!(pick(&routes, "other", "/x").unwrap().target.port(), 1);
        assert_eq!(
            pick(&routes, "other:8080", "/auth/me")
                .unwrap()
                .target
                .port(),
            2
        );
        assert_eq!(
            pick(&routes, "other", "/authors").unwrap().target.port(),
            1,
            "prefixes match whole elements"
        );
        assert_eq!(
            pick(&routes, "other", "/auth/login").unwrap().target.port(),
            4
        );
        assert_eq!(
            pick(&routes, "api.example.com", "/auth")
                .unwrap()
                .target
                .port(),
            3
        );
        assert!(pick(&[r(Some("a"), "/", false, 1)], "b", "/").is_none());
    }

    #[test]
    fn rules_resolve_backends_to_service_loopback_ports() {
        let ing = json!({"metadata": {"namespace": "web"}, "spec": {"rules": [{"host": "h", "http": {"paths": [
            {"path": "/auth", "pathType": "Prefix", "backend": {"service": {"name": "auth", "port": {"number": 80}}}},
            {"path": "/gone", "pathType": "Prefix", "backend": {"service": {"name": "missing", "port": {"number": 80}}}}
        ]}}]}});
        let lookup =
            |ns: &str, svc: &str, _port: &Value| (ns == "web" && svc == "auth").then_some(19001);
        let rs = routes(&[ing], &lookup);
        assert_eq!(rs, vec![r(Some("h"), "/auth", false, 19001)]);
    }
}
