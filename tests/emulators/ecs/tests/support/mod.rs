//! Test support: an emulator process of its own per test, an aws-sdk-ecs client for it, raw
//! JSON 1.1 calls, and `FROM scratch` busybox images built on the local Docker Engine. Names,
//! the `docker` CLI, waiting and the ECR token come from `shipkit_tests`.
#![allow(dead_code, clippy::print_stderr)] // each test binary uses part of it; panics explain via stderr

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_sdk_ecs::Client;
use serde_json::Value;
use shipkit_tests::docker::{busybox, docker};
use shipkit_tests::ecs::EcsEmulator;
use shipkit_tests::unique;

/// An `ecs-emulator` process of the test's own: `shipkit_tests::ecs::EcsEmulator` (a free
/// loopback port, its own load-balancer ports, `--tick 250ms --stop-timeout 1`, SIGTERM on
/// drop, its log shown when the test panics), plus the raw calls these tests make.
pub struct EmulatorProcess {
    inner: EcsEmulator,
    /// The API port.
    pub port: u16,
}

impl EmulatorProcess {
    /// Starts an emulator with extra flags and waits until it accepts connections.
    pub fn start(extra: &[&str]) -> Self {
        let inner = EcsEmulator::start(extra);
        let port = inner.port();
        EmulatorProcess { inner, port }
    }

    /// The endpoint URL.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// An SDK client with the SDK's standard retries.
    pub async fn client(&self) -> Client {
        self.client_with(aws_config::retry::RetryConfig::standard())
            .await
    }

    /// An SDK client with the given retry settings.
    pub async fn client_with(&self, retry: aws_config::retry::RetryConfig) -> Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(retry)
            .load()
            .await;
        Client::new(&config)
    }

    /// A raw JSON 1.1 call: (status, x-amzn-ErrorType header, body).
    pub fn call(&self, op: &str, body: &Value) -> (u16, Option<String>, Value) {
        raw_call(self.port, "POST", "/", Some(op), &body.to_string())
    }

    /// `GET /_emulator/services` → the load-balancer port of a service.
    pub fn lb_port(&self, cluster: &str, service: &str) -> u16 {
        let (_, _, v) = raw_call(self.port, "GET", "/_emulator/services", None, "");
        v.as_array()
            .into_iter()
            .flatten()
            .find(|s| s["cluster"] == cluster && s["service"] == service)
            .and_then(|s| s["lbPort"].as_u64())
            .unwrap_or_else(|| panic!("no lbPort for {cluster}/{service} in {v}")) as u16
    }

    /// `GET /_emulator/services/<cluster>/<service>/lb-port`: (status, body).
    pub fn lb_port_text(&self, cluster: &str, service: &str) -> (u16, String) {
        http_get(
            self.port,
            &format!("/_emulator/services/{cluster}/{service}/lb-port"),
        )
        .expect("lb-port")
    }

    /// Containers this emulator started that still exist.
    pub fn containers(&self) -> Vec<String> {
        self.inner.containers()
    }

    /// Stops the emulator with SIGTERM and waits for it.
    pub fn terminate(&mut self) {
        self.inner.terminate();
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, x-amzn-ErrorType, JSON body).
pub fn raw_call(
    port: u16,
    method: &str,
    path: &str,
    op: Option<&str>,
    body: &str,
) -> (u16, Option<String>, Value) {
    let target = op
        .map(|o| format!("X-Amz-Target: AmazonEC2ContainerServiceV20141113.{o}\r\n"))
        .unwrap_or_default();
    raw_request(port, method, path, &target, body)
}

fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    target: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{target}Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP answer");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let error_type = head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-amzn-errortype"))
            .map(|(_, v)| v.trim().to_owned())
    });
    let v = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (status, error_type, v)
}

/// An HTTP GET on a loopback port: Ok(status, body) or Err when the connection failed.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not HTTP: {resp:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.trim().to_owned()))
}

/// Test images: `FROM scratch` + busybox (Debian's busybox-static) + `/www/index.html`.
/// Removed on drop.
pub struct TestImages {
    tags: Vec<String>,
}

impl TestImages {
    /// An empty set.
    pub fn new() -> Self {
        TestImages { tags: Vec::new() }
    }

    /// Builds `shipkit-ecs-emulator-test/<name>:<unique>` whose `/www/index.html` is `page`.
    pub fn build(&mut self, name: &str, page: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(busybox(), dir.path().join("busybox")).expect("copy busybox");
        std::fs::create_dir(dir.path().join("www")).expect("www");
        std::fs::write(dir.path().join("www/index.html"), page).expect("page");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\n",
        )
        .expect("Dockerfile");
        let tag = format!("shipkit-ecs-emulator-test/{name}:{}", unique("t"));
        let out = docker(&[
            "build",
            // No build cache: a cached parent image is shared with parallel tests, whose
            // `docker rmi` can remove it under this build ("unknown parent image ID").
            "--no-cache",
            "-q",
            "-t",
            &tag,
            dir.path().to_str().expect("utf-8 path"),
        ]);
        assert!(
            out.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.tags.push(tag.clone());
        tag
    }

    /// Tags an image with another name, removed on drop too.
    pub fn tag(&mut self, from: &str, to: &str) {
        let out = docker(&["tag", from, to]);
        assert!(
            out.status.success(),
            "docker tag: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.tags.push(to.to_owned());
    }

    /// Removes this image on drop too.
    pub fn track(&mut self, tag: &str) {
        self.tags.push(tag.to_owned());
    }

    /// Untags an image now.
    pub fn untag(&mut self, tag: &str) {
        let _ = docker(&["rmi", tag]);
        self.tags.retain(|t| t != tag);
    }
}

impl Drop for TestImages {
    fn drop(&mut self) {
        for t in &self.tags {
            let _ = docker(&["rmi", "-f", t]);
        }
    }
}

/// A container definition for busybox httpd serving /www on 8080.
pub fn httpd_container(image: &str) -> Value {
    serde_json::json!({
        "name": "web",
        "image": image,
        "essential": true,
        "command": ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
        "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
        "memory": 64,
    })
}
