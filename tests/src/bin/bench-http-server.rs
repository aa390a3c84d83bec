//! An HTTP server for benchmarks: answers 503 until a given moment, 200 after it.
//!
//! Usage: `bench-http-server [HEALTHY_AT_UNIX_MS]` — prints the port it listens on
//! (127.0.0.1) on the first line of stdout, then serves until killed. Without an argument
//! it is healthy from the start.

#![allow(clippy::print_stdout)] // a benchmark helper: its port goes to stdout

use shipkit_tests::http_server::{HttpServer, Reply};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn main() {
    let healthy_at: u128 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(0);
    let server = HttpServer::start(move |_| {
        if now_ms() >= healthy_at {
            Reply::ok("ok")
        } else {
            Reply::new(503, "starting")
        }
    });
    println!("{}", server.addr().port());
    loop {
        std::thread::park();
    }
}
