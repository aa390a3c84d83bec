//! An HTTP server for benchmarks: answers 503 until a given moment, 200 after it.
//!
//! Usage: `bench-http-server [HEALTHY_AT_UNIX_MS]` — prints the port it listens on
//! (127.0.0.1) on the first line of stdout, then serves until killed. Without an argument
//! it is healthy from the start.
//!
//! One thread and non-blocking sockets (a tokio current-thread runtime), HTTP/1.1 with
//! keep-alive. The test servers of `shipkit_tests::http_server` start a thread per
//! connection: in the fan-out benchmark (200 connections at once) that made the servers
//! spend more CPU than the client being measured, on the same two cores.

#![allow(clippy::print_stdout)] // a benchmark helper: its port goes to stdout

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

fn main() -> std::io::Result<()> {
    let healthy_at: u128 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream, healthy_at));
        }
    })
}

/// Answers every request on one connection until the client closes it.
async fn serve(mut stream: TcpStream, healthy_at: u128) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Health checks send no body: a request ends with its head.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head_only = buf.starts_with(b"HEAD ");
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
