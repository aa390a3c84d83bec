//! Readiness probes as the kubelet runs them: `httpGet` (a 2xx or 3xx answer), `tcpSocket`
//! (a connection) and `exec` (exit code 0), with their thresholds and timings.

use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A probe's timings and thresholds, with the API's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

pub fn timing(probe: &Value) -> Timing {
    let secs = |k: &str, d: u64| Duration::from_secs(probe[k].as_u64().unwrap_or(d));
    let n = |k: &str, d: u32| probe[k].as_u64().map_or(d, |v| v as u32).max(1);
    Timing {
        initial_delay: secs("initialDelaySeconds", 0),
        period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
        timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
        success_threshold: n("successThreshold", 1),
        failure_threshold: n("failureThreshold", 3),
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
pub fn port(port: &Value, container: &Value) -> Option<u16> {
    match port {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => name.parse().ok().or_else(|| {
            container["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == name.as_str())?["containerPort"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
        }),
        _ => None,
    }
}

/// Whether an HTTP status line reports success (200-399, as the kubelet counts it).
pub fn http_ok(status_line: &str) -> bool {
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| (200..400).contains(&c))
}

/// Runs `probe` once against the container at `ip` (`id` for exec).
pub async fn run(docker: &Docker, id: &str, ip: &str, container: &Value, probe: &Value) -> bool {
    let t = timing(probe);
    let attempt = async {
        if let Some(h) = probe.get("httpGet") {
            let port = port(&h["port"], container)?;
            let path = h["path"].as_str().unwrap_or("/");
            let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
            let req = format!(
                "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.ok()?;
            let mut buf = vec![0u8; 256];
            let n = s.read(&mut buf).await.ok()?;
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            Some(http_ok(head.lines().next().unwrap_or("")))
        } else if let Some(tcp) = probe.get("tcpSocket") {
            let port = port(&tcp["port"], container)?;
            Some(tokio::net::TcpStream::connect((ip, port)).await.is_ok())
        } else if let Some(cmd) = probe["exec"]["command"].as_array() {
            let cmd: Vec<String> = cmd
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            let opts = CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let exec = docker.create_exec(id, opts).await.ok()?;
            if let Ok(StartExecResults::Attached { mut output, .. }) =
                docker.start_exec(&exec.id, None).await
            {
                while output.next().await.is_some() {}
            }
            let inspect = docker.inspect_exec(&exec.id).await.ok()?;
            Some(inspect.exit_code == Some(0))
        } else {
            Some(true)
        }
    };
    matches!(
        tokio::time::timeout(t.timeout, attempt).await,
        Ok(Some(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timings_default_as_the_api_does() {
        let t = timing(&json!({"httpGet": {"port": 80}, "periodSeconds": 2}));
        assert_eq!(t.period, Duration::from_secs(2));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        assert_eq!(t.timeout, Duration::from_secs(1));
    }

    #[test]
    fn named_ports_and_status_codes() {
        let c = json!({"ports": [{"name": "http", "containerPort": 8080}]});
        assert_eq!(port(&json!("http"), &c), Some(8080));
        assert_eq!(port(&json!(81), &c), Some(81));
        assert_eq!(port(&json!("nope"), &c), None);
        assert!(http_ok("HTTP/1.0 200 OK"));
        assert!(http_ok("HTTP/1.1 302 Found"));
        assert!(!http_ok("HTTP/1.0 404 Not Found"));
        assert!(!http_ok(""));
    }
}
