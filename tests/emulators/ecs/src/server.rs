//! HTTP: the ECS JSON 1.1 endpoint (`POST /` with `X-Amz-Target`), fault injection, and the
//! emulator's own endpoints:
//!
//! - `GET /_emulator/services`: `[{cluster, service, lbPort, targets}]`, the load-balancer
//!   stand-in port of each service (`lbPort` null without a load balancer);
//! - `GET /_emulator/services/<cluster>/<service>/lb-port`: that port alone, as text (404
//!   when the service has none);
//! - `GET /_emulator/faults`, `POST /_emulator/faults` with `{"throttleEvery": N,
//!   "latencyMs": M}` (either may be left out; 0 turns it off): the current fault settings.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::Emulator;
use crate::api::{self, ApiError};

/// The target prefix of ECS operations.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

/// Injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Every Nth API call fails with ThrottlingException (0: none).
    pub throttle_every: u64,
    /// Added before every API answer.
    pub latency: Duration,
}

impl Faults {
    /// Faults as set on the command line.
    pub fn new(throttle_every: u64, latency: Duration) -> Self {
        Faults {
            throttle_every,
            latency,
        }
    }

    fn to_json(self) -> Value {
        json!({"throttleEvery": self.throttle_every, "latencyMs": self.latency.as_millis() as u64})
    }
}

/// Whether call number `n` (1-based) is throttled.
pub fn throttled(throttle_every: u64, n: u64) -> bool {
    throttle_every > 0 && n % throttle_every == 0
}

/// Serves HTTP/1.1 until the task is aborted.
pub async fn serve(emu: Arc<Emulator>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let emu = emu.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(emu.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json_response(
    status: StatusCode,
    body: &Value,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&crate::state::uuid()).unwrap_or(HeaderValue::from_static("0")),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json_response(
        status,
        &json!({"__type": e.kind, "message": e.message}),
        "application/x-amz-json-1.1",
    );
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(e.kind));
    r
}

async fn handle(
    emu: Arc<Emulator>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if path.starts_with("/_emulator/") {
        return Ok(emulator_endpoint(&emu, &method, &path, &body));
    }
    let op = match target {
        Some(t) => t
            .strip_prefix(TARGET_PREFIX)
            .map(str::to_owned)
            .unwrap_or(t),
        None => String::new(),
    };
    let faults = *emu.faults.lock().unwrap_or_else(|e| e.into_inner());
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let n = emu.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if throttled(faults.throttle_every, n) {
        tracing::info!("{op}: injected ThrottlingException (call {n})");
        return Ok(error_response(&ApiError::throttling()));
    }
    if op.is_empty() || method != Method::POST {
        return Ok(error_response(&ApiError::unknown_operation(
            if op.is_empty() {
                "(no X-Amz-Target)"
            } else {
                &op
            },
        )));
    }
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Ok(error_response(&ApiError::serialization(
                    "The request body must be a JSON object.",
                )));
            }
            Err(e) => {
                return Ok(error_response(&ApiError::serialization(format!(
                    "Malformed JSON: {e}"
                ))));
            }
        }
    };
    let result = api::call(&emu, &op, &input);
    Ok(match result {
        Ok(v) => {
            tracing::debug!("{op}: ok");
            json_response(StatusCode::OK, &v, "application/x-amz-json-1.1")
        }
        Err(e) => {
            tracing::info!("{op}: {}: {}", e.kind, e.message);
            error_response(&e)
        }
    })
}

fn emulator_endpoint(
    emu: &Emulator,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    const JSON: &str = "application/json";
    match (method, path) {
        (&Method::GET, "/_emulator/services") => {
            json_response(StatusCode::OK, &emu.target_groups_json(), JSON)
        }
        // `/_emulator/services/<cluster>/<service>/lb-port`: the port alone, for shell scripts.
        (&Method::GET, p) if p.starts_with("/_emulator/services/") && p.ends_with("/lb-port") => {
            let inner = &p["/_emulator/services/".len()..p.len() - "/lb-port".len()];
            let port = inner
                .split_once('/')
                .and_then(|(cluster, service)| emu.lb_port(cluster, service));
            let (status, body) = match port {
                Some(port) => (StatusCode::OK, format!("{port}\n")),
                None => (
                    StatusCode::NOT_FOUND,
                    format!("no load-balancer port for service {inner}\n"),
                ),
            };
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/plain"));
            r
        }
        (&Method::GET, "/_emulator/faults") => {
            let f = *emu.faults.lock().unwrap_or_else(|e| e.into_inner());
            json_response(StatusCode::OK, &f.to_json(), JSON)
        }
        (&Method::POST, "/_emulator/faults") => {
            let v: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": e.to_string()}),
                        JSON,
                    );
                }
            };
            let mut f = emu.faults.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = v.get("throttleEvery").and_then(Value::as_u64) {
                f.throttle_every = n;
                emu.calls.store(0, Ordering::SeqCst);
            }
            if let Some(ms) = v.get("latencyMs").and_then(Value::as_u64) {
                f.latency = Duration::from_millis(ms);
            }
            tracing::info!("faults set: {}", f.to_json());
            json_response(StatusCode::OK, &f.to_json(), JSON)
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no such endpoint: {method} {path}")}),
            JSON,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_call_is_throttled() {
        let hits: Vec<u64> = (1..=9).filter(|n| throttled(3, *n)).collect();
        assert_eq!(hits, vec![3, 6, 9]);
        assert!(!(1..100).any(|n| throttled(0, n)));
    }
}
