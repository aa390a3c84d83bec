//! Small real HTTP(S) servers on loopback for tests: scripted answers, counted requests and
//! connections, a log of what was asked. Blocking std networking on threads, so they serve
//! while a test waits on a child process.
//!
//! - [`HttpServer::start`]: answers by the request's number (a health endpoint that turns
//!   healthy on the 4th try); [`HttpServer::start_tls`] the same over HTTPS.
//! - [`HttpServer::serving`]: answers by the [`Request`] (method, path, query, headers, body —
//!   `Content-Length` or chunked), e.g. a registry that takes layers and fails manifests.
//! - [`HttpServer::hanging_up`]: accepts and closes every connection, counting them (a server
//!   that must never be asked anything).
//! - [`unused_port`]: a loopback port nobody listens on (connection refused).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering (a hanging server).
    pub delay: Duration,
    /// Extra header lines (`Name: value`).
    pub headers: Vec<String>,
    /// `Content-Length` when it is not the body's (a `HEAD` of something that has a size).
    pub content_length: Option<u64>,
    /// `Content-Type` (`text/plain` unless set; `None` sends none).
    pub content_type: Option<String>,
    /// Close the connection after this answer (`Connection: close`).
    pub close: bool,
    /// A binary body (a tarball), sent instead of `body` when set.
    pub bytes: Option<Vec<u8>>,
}

impl Reply {
    /// An immediate answer.
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
            content_length: None,
            content_type: Some("text/plain".to_owned()),
            close: false,
            bytes: None,
        }
    }

    /// 200 with a binary body (`application/octet-stream`).
    pub fn bytes(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes: Some(bytes),
            ..Reply::new(200, "")
        }
        .content_type(Some("application/octet-stream"))
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

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Reply {
        self.headers.push(format!("{name}: {value}"));
        self
    }

    /// Announces `length` bytes whatever the body (for a `HEAD`, which sends none).
    pub fn content_length(mut self, length: u64) -> Reply {
        self.content_length = Some(length);
        self
    }

    /// Sets the `Content-Type` (`None`: no such header).
    pub fn content_type(mut self, content_type: Option<&str>) -> Reply {
        self.content_type = content_type.map(str::to_owned);
        self
    }

    /// One answer per connection: `Connection: close`, then hang up.
    pub fn close(mut self) -> Reply {
        self.close = true;
        self
    }
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// 1-based number of the request on this server.
    pub number: u32,
    pub method: String,
    /// The request target: path and query (`/v2/app/blobs/uploads/u0?digest=sha256%3A…`).
    pub target: String,
    /// Header lines as sent: (name, value).
    pub headers: Vec<(String, String)>,
    /// The body (after chunked decoding).
    pub body: Vec<u8>,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query (`""` when none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// A query parameter as sent (not decoded).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query()
            .split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// What the server does with a connection.
#[derive(Clone)]
enum Mode {
    Answer(Arc<Handler>),
    HangUp,
}

/// What a server and its connection threads share.
#[derive(Default)]
struct Counters {
    requests: AtomicU32,
    connections: AtomicU32,
    log: Mutex<Vec<String>>,
}

/// A running server; stops accepting when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
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
        Self::serving(move |request| handler(request.number))
    }

    /// Serves plain HTTP; `handler` gets the whole request.
    pub fn serving(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        Self::serve(Mode::Answer(Arc::new(handler)), None)
    }

    /// Accepts every connection and closes it at once, reading nothing: a server that must
    /// never be asked anything ([`HttpServer::connections`] says whether it was).
    pub fn hanging_up() -> HttpServer {
        Self::serve(Mode::HangUp, None)
    }

    /// Serves HTTPS with `cert`; `handler` gets the 1-based number of the request.
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
        let handler: Arc<Handler> = Arc::new(move |request: &Request| handler(request.number));
        Self::serve(Mode::Answer(handler), Some(Arc::new(config)))
    }

    fn serve(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let server = HttpServer {
            addr,
            counters: counters.clone(),
            stop: stop.clone(),
            tls: tls.is_some(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                counters.connections.fetch_add(1, Ordering::SeqCst);
                let Mode::Answer(handler) = &mode else {
                    drop(stream);
                    continue;
                };
                let (handler, counters, tls) = (handler.clone(), counters.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(conn, stream);
                            serve_connection(stream, &handler, &counters);
                        }
                        None => serve_connection(stream, &handler, &counters),
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
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// `METHOD target` of every request read so far, in order.
    pub fn request_log(&self) -> Vec<String> {
        self.counters.log.lock().expect("request log").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A loopback port nobody listens on (free when asked): connecting to it is refused.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn serve_connection<S: Read + Write>(stream: S, handler: &Arc<Handler>, counters: &Counters) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(mut request) = read_request(&mut reader) else {
            return;
        };
        request.number = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
        counters
            .log
            .lock()
            .expect("request log")
            .push(format!("{} {}", request.method, request.target));
        let reply = handler(&request);
        std::thread::sleep(reply.delay);
        let response = render(&reply, request.method == "HEAD");
        let stream = reader.get_mut();
        if stream.write_all(&response).is_err() || stream.flush().is_err() || reply.close {
            return;
        }
    }
}

/// Reads one request, `None` when the client closed the connection or did not speak HTTP/1
/// (a TLS hello on a plain port).
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.contains("HTTP/1.") {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return None;
        }
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        number: 0,
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    let length = request
        .header("content-length")
        .and_then(|v| v.parse().ok());
    request.body = read_body(reader, length, chunked)?;
    Some(request)
}

/// Reads a request body: `Content-Length` bytes, or chunks.
fn read_body(reader: &mut impl BufRead, length: Option<usize>, chunked: bool) -> Option<Vec<u8>> {
    if !chunked {
        let mut body = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut body).ok()?;
        return Some(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..size]);
        if size == 0 {
            return Some(body);
        }
    }
}

/// The bytes of an answer; a `HEAD` gets the head only.
fn render(reply: &Reply, head_only: bool) -> Vec<u8> {
    let body = reply.bytes.as_deref().unwrap_or(reply.body.as_bytes());
    let length = reply.content_length.unwrap_or(body.len() as u64);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {length}\r\n",
        reply.status,
        reason(reply.status)
    );
    if let Some(content_type) = &reply.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if reply.close {
        head.push_str("Connection: close\r\n");
    }
    for header in &reply.headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// The reason phrase of the codes tests use (clients read only the code).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw HTTP/1.1 exchange on a fresh connection: the whole response as text.
    fn exchange(server: &HttpServer, request: &str) -> String {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        // A server that hangs up may have closed before the request is written.
        let _ = stream.write_all(request.as_bytes());
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    }

    #[test]
    fn a_request_is_read_whole_and_logged_and_the_reply_is_sent_as_scripted() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let server = HttpServer::serving(move |request| {
            record.lock().unwrap().push((
                request.path().to_owned(),
                request.query_param("digest").map(str::to_owned),
                request.header("x-test").map(str::to_owned),
                String::from_utf8_lossy(&request.body).into_owned(),
            ));
            Reply::new(202, "")
                .header("Location", "/next")
                .content_type(None)
                .close()
        });
        let response = exchange(
            &server,
            "PUT /v2/x?digest=sha256%3Aab&n=1 HTTP/1.1\r\nX-Test: yes\r\n\
             Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(
            response,
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\nLocation: /next\r\n\r\n"
        );
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [(
                "/v2/x".to_owned(),
                Some("sha256%3Aab".to_owned()),
                Some("yes".to_owned()),
                "abcde".to_owned()
            )]
        );
        assert_eq!(server.request_log(), ["PUT /v2/x?digest=sha256%3Aab&n=1"]);
        assert_eq!((server.requests(), server.connections()), (1, 1));
    }

    #[test]
    fn a_head_gets_the_announced_length_and_no_body() {
        let server = HttpServer::serving(|_| Reply::ok("ignored").content_length(1234).close());
        let response = exchange(&server, "HEAD /blob HTTP/1.1\r\n\r\n");
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n"),
            "{response}"
        );
        assert!(response.ends_with("\r\n\r\n"), "{response}");
    }

    #[test]
    fn keep_alive_answers_by_number_until_the_client_closes() {
        let server = HttpServer::start(|n| Reply::new(if n < 2 { 503 } else { 200 }, "x"));
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            .expect("send");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        // Each body is "x", right before the next status line.
        let statuses: Vec<&str> = response
            .split("HTTP/1.1 ")
            .skip(1)
            .filter_map(|answer| answer.lines().next())
            .collect();
        assert_eq!(
            statuses,
            ["503 Service Unavailable", "200 OK"],
            "{response}"
        );
    }

    #[test]
    fn hanging_up_counts_connections_and_reads_nothing() {
        let server = HttpServer::hanging_up();
        let response = exchange(&server, "GET / HTTP/1.1\r\n\r\n");
        assert_eq!(response, "");
        assert_eq!((server.connections(), server.requests()), (1, 0));
    }

    #[test]
    fn an_unused_port_refuses_connections() {
        let port = unused_port();
        let err = TcpStream::connect(("127.0.0.1", port)).expect_err("nobody listens");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
