//! Small real HTTP(S) servers on loopback for tests: scripted answers, counted requests.
//! Blocking std networking on threads, so they serve while a test waits on a child process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering (a hanging server).
    pub delay: Duration,
}

impl Reply {
    /// An immediate answer.
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply::new(200, body)
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(u32) -> Reply + Send + Sync;

/// A running server; stops accepting when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    requests: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    tls: bool,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`.
pub struct TestCert {
    /// PEM of the certificate (also its own CA).
    pub cert_pem: String,
    key_der: Vec<u8>,
    cert_der: Vec<u8>,
}

impl TestCert {
    /// Generates a fresh self-signed certificate.
    pub fn generate() -> TestCert {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).expect("generate a certificate");
        TestCert {
            cert_pem: certified.cert.pem(),
            cert_der: certified.cert.der().to_vec(),
            key_der: certified.signing_key.serialize_der(),
        }
    }
}

impl HttpServer {
    /// Serves plain HTTP; `handler` gets the 1-based number of the request.
    pub fn start(handler: impl Fn(u32) -> Reply + Send + Sync + 'static) -> HttpServer {
        Self::serve(Arc::new(handler), None)
    }

    /// Serves HTTPS with `cert`.
    pub fn start_tls(
        cert: &TestCert,
        handler: impl Fn(u32) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
            )
            .expect("TLS server config");
        Self::serve(Arc::new(handler), Some(Arc::new(config)))
    }

    fn serve(handler: Arc<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let server = HttpServer {
            addr,
            requests: requests.clone(),
            stop: stop.clone(),
            tls: tls.is_some(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let requests = requests.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(conn, stream);
                            serve_connection(stream, &handler, &requests);
                        }
                        None => serve_connection(stream, &handler, &requests),
                    }
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT` (or https).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }

    /// The base URL with `path` appended.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered (or being answered) so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve_connection<S: Read + Write>(stream: S, handler: &Arc<Handler>, requests: &AtomicU32) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Skip the headers; health checks send no body.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
        }
        let number = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = handler(number);
        std::thread::sleep(reply.delay);
        let head_only = request_line.starts_with("HEAD ");
        let response = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            if head_only { "" } else { reply.body.as_str() }
        );
        let stream = reader.get_mut();
        if stream.write_all(response.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}
