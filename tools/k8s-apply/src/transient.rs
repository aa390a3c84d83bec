//! Every call to the API server retried through transient failures: a connection refused or
//! reset, no answer, `429 Too Many Requests` and `500`/`502`/`503`/`504`, as a load balancer
//! or an API server under load gives them. kube-rs retries nothing itself, and a deployment
//! must not fail (nor be left half applied) for one lost request.
//!
//! A tower layer under the kube [`Client`]: the request body is read once and sent again on
//! each attempt, so applies, reads and deletes are all retried the same way (server-side
//! apply is idempotent; a delete repeated after a lost answer finds the object gone, which
//! the callers already take as done). Once an answer's head arrives it is the answer: a
//! watch or a log stream cut later is its reader's business.

use common::retry::{Backoff, Jitter};
use http::{Request, Response};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many times a request is sent at most.
pub const ATTEMPTS: u32 = 6;

/// The wait before each retry: 200 ms doubling to 5 s, up to a quarter longer (the attempts
/// span about 12 s, enough for a burst of errors or an API server restarting).
pub fn backoff() -> Backoff {
    Backoff::doubling(
        Duration::from_millis(200),
        Duration::from_secs(5),
        Jitter::longer_by(0.25),
    )
}

/// Whether an answer with this status is worth asking again.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The client for `config`, retrying transient failures.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&RetryLayer)
        .build())
}

/// Wraps a kube service in [`Retrying`].
struct RetryLayer;

impl<S> tower_layer::Layer<S> for RetryLayer {
    type Service = Retrying<S>;

    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
        }
    }
}

/// The service under the client, sending each request until it gets a lasting answer.
pub struct Retrying<S> {
    // Shared so that a request's future can send again after `call` returned; the lock is
    // held only while a send starts, not while its answer is awaited.
    inner: Arc<tokio::sync::Mutex<S>>,
}

impl<S> Clone for Retrying<S> {
    fn clone(&self) -> Self {
        Retrying {
            inner: self.inner.clone(),
        }
    }
}

impl<S, B> tower_service::Service<Request<Body>> for Retrying<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited per attempt, under the lock, in `send_once`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.map_err(Box::new)?;
            let what = format!("{} {}", parts.method, parts.uri.path());
            let mut attempt = 1;
            loop {
                let request = Request::from_parts(parts.clone(), Body::from(body.clone()));
                let why = match send_once(&inner, request).await {
                    Ok(response) if !is_transient_status(response.status().as_u16()) => {
                        return Ok(response);
                    }
                    Ok(response) if attempt >= ATTEMPTS => return Ok(response),
                    Ok(response) => response.status().to_string(),
                    Err(err) if attempt >= ATTEMPTS => return Err(err),
                    Err(err) => error_chain(err.as_ref()),
                };
                let delay = backoff().next(attempt);
                tracing::warn!(
                    "{what}: {why}; retry {attempt}/{} in {:.1}s",
                    ATTEMPTS - 1,
                    delay.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        })
    }
}

/// Sends one request through the inner service.
async fn send_once<S, B>(
    inner: &tokio::sync::Mutex<S>,
    request: Request<Body>,
) -> Result<Response<B>, BoxError>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let future = {
        let mut service = inner.lock().await;
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        service.call(request)
    };
    future.await.map_err(Into::into)
}

/// The error and its causes on one line (hyper's "client error (SendRequest)" says little
/// without its source: "connection reset by peer").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_and_gateway_errors_are_transient_and_refusals_are_not() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 201, 400, 401, 403, 404, 409, 410, 422, 501] {
            assert!(!is_transient_status(status), "{status}");
        }
    }

    #[test]
    fn the_attempts_span_a_burst_but_not_a_minute() {
        let b = backoff();
        let total: Duration = (1..ATTEMPTS).map(|a| b.delay(a, 1.0)).sum();
        assert!(total >= Duration::from_secs(6), "{total:?}");
        assert!(total <= Duration::from_secs(20), "{total:?}");
    }
}
