//! An HTTP server for benchmarks: answers 503 until a given moment, 200 after it.
//!
//! Usage: `bench-http-server [HEALTHY_AT_UNIX_MS] [--closed-until-healthy PORT]
//! [--schedule FILE]` — prints the port it listens on (127.0.0.1) on the first line of
//! stdout, then serves until killed. Without HEALTHY_AT it is healthy from the start.
//!
//! - `--closed-until-healthy PORT`: nothing listens on PORT until HEALTHY_AT (a client's
//!   connection is refused, as for a service still starting), then it listens and answers
//!   200: one target for an HTTP waiter and a TCP waiter (`wait-for-it`) alike.
//! - `--schedule FILE`: lines `N UNIX_MS`; the path `/t/N` answers 503 until UNIX_MS, 200
//!   after it (other paths follow HEALTHY_AT): many targets turning healthy at their own
//!   moments on one server.
//!
//! One thread and non-blocking sockets (a tokio current-thread runtime), HTTP/1.1 with
//! keep-alive. The test servers of `shipkit_tests::http_server` start a thread per
//! connection: in the fan-out benchmark (200 connections at once) that made the servers
//! spend more CPU than the client being measured, on the same two cores.

#![allow(clippy::print_stdout)] // a benchmark helper: its port goes to stdout

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Request heads longer than this are refused (the connection is closed).
const MAX_HEAD: usize = 16 * 1024;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// When each target turns healthy.
struct Moments {
    /// For paths the schedule does not name.
    default: u128,
    /// `/t/N` → its moment, from `--schedule`.
    by_target: HashMap<u64, u128>,
}

impl Moments {
    fn for_head(&self, head: &[u8]) -> u128 {
        // `GET /t/123 HTTP/1.1`: the number after `/t/`.
        let target = head
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|path| path.strip_prefix(b"/t/"))
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<u64>().ok());
        target
            .and_then(|n| self.by_target.get(&n).copied())
            .unwrap_or(self.default)
    }
}

fn read_schedule(path: &str) -> std::io::Result<HashMap<u64, u128>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace().map(str::parse::<u128>);
        match (fields.next(), fields.next()) {
            (Some(Ok(n)), Some(Ok(at))) => out.insert(n as u64, at),
            _ => {
                return Err(std::io::Error::other(format!(
                    "{path}: {line:?} is not `N UNIX_MS`"
                )));
            }
        };
    }
    Ok(out)
}

fn main() -> std::io::Result<()> {
    let mut healthy_at = 0;
    let mut closed_until_healthy: Option<u16> = None;
    let mut by_target = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let bad = || std::io::Error::other(format!("bad argument {arg:?}"));
        match arg.as_str() {
            "--closed-until-healthy" => {
                closed_until_healthy =
                    Some(args.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?)
            }
            "--schedule" => by_target = read_schedule(&args.next().ok_or_else(bad)?)?,
            _ => healthy_at = arg.parse().map_err(|_| bad())?,
        }
    }
    let moments = Arc::new(Moments {
        default: healthy_at,
        by_target,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(async move {
        let listener = match closed_until_healthy {
            Some(port) => {
                println!("{port}");
                let wait = healthy_at.saturating_sub(now_ms()) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                TcpListener::bind(("127.0.0.1", port)).await?
            }
            None => {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                println!("{}", listener.local_addr()?.port());
                listener
            }
        };
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream, moments.clone()));
        }
    })
}

/// Answers every request on one connection until the client closes it.
async fn serve(mut stream: TcpStream, moments: Arc<Moments>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Health checks send no body: a request ends with its head.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head_only = buf.starts_with(b"HEAD ");
            let healthy_at = moments.for_head(&buf[..end]);
            buf.drain(..end + 4);
            let (status, body) = if now_ms() >= healthy_at {
                ("200 OK", "ok")
            } else {
                ("503 Service Unavailable", "starting")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{}",
                body.len(),
                if head_only { "" } else { body }
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_HEAD {
            return;
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
