//! One attempt against one target: the only I/O of health-wait.

use crate::check::{ResponseCheck, Target};
use crate::schedule::Attempt;
use reqwest::header::HeaderMap;
use std::error::Error as _;
use std::time::{Duration, Instant};

/// Most of a body that is read for checks; health endpoints are small.
const BODY_LIMIT: usize = 1 << 20;

/// How HTTP targets are asked.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub client: reqwest::Client,
    pub method: reqwest::Method,
    pub headers: HeaderMap,
    pub check: ResponseCheck,
}

/// What one attempt saw.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: Attempt,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The attempt ran out of time.
    pub timed_out: bool,
}

/// Makes one attempt, giving up after `timeout`. `http` is how HTTP targets are asked
/// (the plan has one whenever a target is HTTP).
pub async fn attempt(
    target: &Target,
    http: Option<&HttpProbe>,
    timeout: Duration,
) -> AttemptReport {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, async {
        match (target, http) {
            (Target::Http(url), Some(http)) => http_attempt(url, http).await,
            (Target::Http(_), None) => (
                Attempt::Failure("no HTTP client was set up for this target".into()),
                None,
            ),
            (Target::Tcp { host, port }, _) => (tcp_attempt(host, *port).await, None),
        }
    })
    .await;
    let timed_out = result.is_err();
    let (outcome, status) = result.unwrap_or_else(|_| {
        (
            Attempt::Failure(format!("attempt timed out after {}", humanize(timeout))),
            None,
        )
    });
    AttemptReport {
        outcome,
        status,
        latency: started.elapsed(),
        timed_out,
    }
}

async fn http_attempt(url: &url::Url, http: &HttpProbe) -> (Attempt, Option<u16>) {
    // The parsed URL, not its text: nothing to parse again on every attempt.
    let request = http
        .client
        .request(http.method.clone(), url.clone())
        .headers(http.headers.clone());
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(err) => return (Attempt::Failure(describe_request_error(&err)), None),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    if http.check.needs_body() {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() >= BODY_LIMIT {
                        body.truncate(BODY_LIMIT);
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    let reason = format!("reading the body: {}", describe_request_error(&err));
                    return (Attempt::Failure(reason), Some(status));
                }
            }
        }
    }
    let outcome = match http.check.judge(status, &String::from_utf8_lossy(&body)) {
        Ok(()) => Attempt::Success,
        Err(reason) => Attempt::Failure(reason),
    };
    (outcome, Some(status))
}

async fn tcp_attempt(host: &str, port: u16) -> Attempt {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(_) => Attempt::Success,
        Err(err) => Attempt::Failure(describe_io_error(&err)),
    }
}

/// A short, stable reason for a failed request: "connection refused", "DNS lookup failed:
/// …", "TLS: invalid peer certificate: UnknownIssuer", …
pub fn describe_request_error(err: &reqwest::Error) -> String {
    let mut innermost = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(reason) = io_kind_reason(io.kind())
        {
            return reason.to_owned();
        }
        let text = cause.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            let detail = cause.source().map(|s| s.to_string()).unwrap_or(text);
            return format!("DNS lookup failed: {detail}");
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            return format!("TLS: {}", innermost_message(cause));
        }
        innermost = text;
        source = cause.source();
    }
    innermost
}

fn innermost_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn describe_io_error(err: &std::io::Error) -> String {
    match io_kind_reason(err.kind()) {
        Some(reason) => reason.to_owned(),
        None if err.to_string().contains("lookup address") => format!("DNS lookup failed: {err}"),
        None => err.to_string(),
    }
}

fn io_kind_reason(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    match kind {
        ConnectionRefused => Some("connection refused"),
        ConnectionReset => Some("connection reset"),
        ConnectionAborted => Some("connection aborted"),
        HostUnreachable => Some("host unreachable"),
        NetworkUnreachable => Some("network unreachable"),
        TimedOut => Some("connect timed out"),
        _ => None,
    }
}

/// `5s`, `250ms`, `1m30s`.
pub fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis % 1000 != 0 && millis < 10_000 {
        return format!("{:.1}s", duration.as_secs_f64());
    }
    let secs = duration.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::humanize;
    use std::time::Duration;

    #[test]
    fn durations_read_like_the_flags() {
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_millis(2500)), "2.5s");
        assert_eq!(humanize(Duration::from_secs(5)), "5s");
        assert_eq!(humanize(Duration::from_secs(90)), "1m30s");
        assert_eq!(humanize(Duration::from_secs(600)), "10m");
    }
}
