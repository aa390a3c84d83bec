//! A fault-injecting HTTP/1 proxy for tests: it listens on loopback, forwards to a real
//! upstream (the registry, moto, an emulator) and, scripted per request, breaks what a flaky
//! network and an overloaded service break.
//!
//! ```no_run
//! use shipkit_tests::fault_proxy::{Exchange, Fault, FaultProxy, burst};
//! // The first three ECS calls are throttled, then everything is forwarded.
//! let proxy = FaultProxy::builder("127.0.0.1:5002")
//!     .script(burst(3, |_: &Exchange| true, Fault::aws_throttling))
//!     .start();
//! let endpoint = proxy.url(); // AWS_ENDPOINT_URL_ECS for the tool under test
//! # let _ = endpoint;
//! ```
//!
//! The script ([`FaultProxy::builder`]`.script(..)`) sees each request as an [`Exchange`]: its
//! number (1-based, over the proxy's life), its connection's number, method, target and
//! headers; it returns the [`Fault`] to inject: forward it untouched, answer it here (a burst
//! of 500/503, 429, an AWS `ThrottlingException`), reset the connection mid-request or
//! mid-response, stall past the client's attempt timeout, trickle the response slowly, or cut
//! a long response (a watch) after a while. [`burst`] and [`every_nth`] are the usual scripts.
//!
//! Each connection carries one request: the proxy asks the upstream for `Connection: close`
//! and says the same to the client, so a fault hits exactly the request the script chose and
//! the client opens a fresh connection for the next one, as it must after a server's close.
//! TLS is optional on either side: [`ProxyBuilder::tls_front`] serves HTTPS with a certificate
//! of its own ([`FaultProxy::ca_pem`] to trust it), [`ProxyBuilder::tls_upstream`] reaches an
//! HTTPS upstream (the Kubernetes emulator) trusting the CA given. The upstream may also be a
//! Unix socket (`unix:/var/run/docker.sock`): the Docker Engine, reached by the tool under test
//! with `DOCKER_HOST=tcp://<proxy>`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward it and relay the answer untouched.
    Forward,
    /// Do not forward: answer it here (then close the connection).
    Answer(Answer),
    /// Send the upstream the head and half the body (half the head when there is no body),
    /// then reset both connections: the client never gets an answer.
    ResetMidRequest,
    /// Forward it, relay the first `n` bytes of the answer (head included), then reset.
    ResetAfterResponseBytes(usize),
    /// Read the request, say nothing for this long, then reset (past the client's attempt
    /// timeout, the client has given up by then).
    Stall(Duration),
    /// Forward it and relay the answer `chunk` bytes at a time, `every` apart.
    Slow { chunk: usize, every: Duration },
    /// Forward it and close the connection after this long even mid-answer: a watch stream
    /// cut by a load balancer.
    CutAfter(Duration),
}

/// An answer the proxy gives itself.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Fault {
    /// A plain `status` answer (500, 502, 503…) with a one-line text body.
    pub fn status(status: u16) -> Fault {
        Fault::Answer(Answer {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: format!("fault proxy: {status}\n").into_bytes(),
        })
    }

    /// A 503 Service Unavailable.
    pub fn unavailable() -> Fault {
        Fault::status(503)
    }

    /// A 429 Too Many Requests asking the client to wait a second.
    pub fn too_many_requests() -> Fault {
        Fault::Answer(Answer {
            status: 429,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("Retry-After".into(), "1".into()),
            ],
            body: b"fault proxy: slow down\n".to_vec(),
        })
    }

    /// AWS's `ThrottlingException` as a JSON 1.1 service (ECS, ECR) answers it: 400 with
    /// `__type` in the body; `x-amzn-ErrorType` too, as REST-JSON services (EKS) say it.
    pub fn aws_throttling() -> Fault {
        Fault::Answer(Answer {
            status: 400,
            headers: vec![
                ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                ("x-amzn-ErrorType".into(), "ThrottlingException".into()),
                ("x-amzn-RequestId".into(), "fault-proxy".into()),
            ],
            body: br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_vec(),
        })
    }

    /// A short name for the log.
    fn label(&self) -> String {
        match self {
            Fault::Forward => "forward".into(),
            Fault::Answer(answer) => format!("answer {}", answer.status),
            Fault::ResetMidRequest => "reset mid-request".into(),
            Fault::ResetAfterResponseBytes(n) => format!("reset after {n} response bytes"),
            Fault::Stall(d) => format!("stall {d:?}"),
            Fault::Slow { chunk, every } => format!("slow {chunk}B/{every:?}"),
            Fault::CutAfter(d) => format!("cut after {d:?}"),
        }
    }
}

/// One request as the script sees it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// 1-based, over the proxy's life.
    pub request: u32,
    /// 1-based number of the client connection it came on.
    pub connection: u32,
    pub method: String,
    /// The request target (`/v2/app/blobs/uploads/?…`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body as sent (chunked encoding kept).
    pub body: Vec<u8>,
}

impl Exchange {
    /// Whether the body contains `needle` (an AWS call naming a service, a manifest's name).
    pub fn body_contains(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.body).contains(needle)
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AWS JSON 1.1 operation (`DescribeServices` of `X-Amz-Target:
    /// AmazonEC2ContainerServiceV20141113.DescribeServices`).
    pub fn aws_operation(&self) -> Option<&str> {
        self.header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
    }

    /// Whether the query asks for a watch (`?watch=true` / `watch=1`).
    pub fn is_watch(&self) -> bool {
        self.target
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
    }
}

/// What happened to one request, for a test's assertions.
#[derive(Debug, Clone)]
pub struct Logged {
    pub request: u32,
    pub method: String,
    pub target: String,
    /// The fault's short name (`forward`, `answer 503`, `reset mid-request`…).
    pub fault: String,
}

impl Logged {
    /// Whether a fault other than plain forwarding was injected.
    pub fn injected(&self) -> bool {
        self.fault != "forward"
    }
}

type Script = Arc<dyn Fn(&Exchange) -> Fault + Send + Sync>;

/// A proxy being set up.
pub struct ProxyBuilder {
    upstream: String,
    upstream_ca: Option<String>,
    front_tls: bool,
    script: Script,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    front_ca: Option<String>,
    log: Arc<Mutex<Vec<Logged>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The first `n` requests for which `matching` holds get `fault()`; everything else is
/// forwarded.
pub fn burst(
    n: u32,
    matching: impl Fn(&Exchange) -> bool + Send + Sync + 'static,
    fault: impl Fn() -> Fault + Send + Sync + 'static,
) -> impl Fn(&Exchange) -> Fault + Send + Sync + 'static {
    let seen = AtomicU32::new(0);
    move |exchange| {
        if matching(exchange) && seen.fetch_add(1, Ordering::SeqCst) < n {
            fault()
        } else {
            Fault::Forward
        }
    }
}

/// Every `n`th request for which `matching` holds gets `fault()` (the `n`th, `2n`th…);
/// everything else is forwarded.
pub fn every_nth(
    n: u32,
    matching: impl Fn(&Exchange) -> bool + Send + Sync + 'static,
    fault: impl Fn() -> Fault + Send + Sync + 'static,
) -> impl Fn(&Exchange) -> Fault + Send + Sync + 'static {
    let seen = AtomicU32::new(0);
    move |exchange| {
        if matching(exchange) && (seen.fetch_add(1, Ordering::SeqCst) + 1) % n.max(1) == 0 {
            fault()
        } else {
            Fault::Forward
        }
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`, or `unix:PATH`) that forwards everything until
    /// scripted.
    pub fn builder(upstream: &str) -> ProxyBuilder {
        ProxyBuilder {
            upstream: upstream.to_owned(),
            upstream_ca: None,
            front_tls: false,
            script: Arc::new(|_| Fault::Forward),
        }
    }

    /// `127.0.0.1:PORT`, as a registry host or a `host:port` setting takes it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` (`https` with [`ProxyBuilder::tls_front`]).
    pub fn url(&self) -> String {
        let scheme = if self.front_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA (PEM) that signed the front certificate, with [`ProxyBuilder::tls_front`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.front_ca.as_deref()
    }

    /// Every request so far and what was done to it.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().expect("proxy log").clone()
    }

    /// How many requests got a fault other than forwarding.
    pub fn injected(&self) -> usize {
        self.log().iter().filter(|l| l.injected()).count()
    }

    /// The log as lines, for a failing test's message.
    pub fn log_text(&self) -> String {
        self.log()
            .iter()
            .map(|l| format!("#{} {} {} -> {}", l.request, l.method, l.target, l.fault))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ProxyBuilder {
    /// Decides each request's fault.
    pub fn script(mut self, script: impl Fn(&Exchange) -> Fault + Send + Sync + 'static) -> Self {
        self.script = Arc::new(script);
        self
    }

    /// The upstream speaks HTTPS with a certificate from `ca_pem` for its IP or host name.
    pub fn tls_upstream(mut self, ca_pem: &str) -> Self {
        self.upstream_ca = Some(ca_pem.to_owned());
        self
    }

    /// Serve HTTPS, with a certificate for `127.0.0.1` and `localhost` from a fresh CA.
    pub fn tls_front(mut self) -> Self {
        self.front_tls = true;
        self
    }

    /// Binds a loopback port and starts serving (on a runtime of its own, so it serves while
    /// a test blocks on a child process).
    pub fn start(self) -> FaultProxy {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("a runtime for the fault proxy");
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let addr = std_listener.local_addr().expect("local address");
        let (front_ca, acceptor) = match self.front_tls {
            true => {
                let (ca, config) = front_certificate();
                (Some(ca), Some(tokio_rustls::TlsAcceptor::from(config)))
            }
            false => (None, None),
        };
        let connector = self.upstream_ca.as_deref().map(upstream_connector);
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream: self.upstream,
            connector,
            script: self.script,
            log: log.clone(),
            requests: AtomicU32::new(0),
        });
        runtime.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            let mut connections = 0u32;
            while let Ok((stream, _)) = listener.accept().await {
                connections += 1;
                let (shared, acceptor, connection) =
                    (shared.clone(), acceptor.clone(), connections);
                tokio::spawn(async move {
                    let client = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => Stream::Server(Box::new(tls)),
                            Err(_) => return,
                        },
                        None => Stream::Plain(stream),
                    };
                    let _ = serve(client, connection, &shared).await;
                });
            }
        });
        FaultProxy {
            addr,
            front_ca,
            log,
            runtime: Some(runtime),
        }
    }
}

/// What every connection's task shares.
struct Shared {
    upstream: String,
    connector: Option<tokio_rustls::TlsConnector>,
    script: Script,
    log: Arc<Mutex<Vec<Logged>>>,
    requests: AtomicU32,
}

/// One request read off the wire: its head (request line and headers) and body, raw.
struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    /// The head as sent upstream: `Connection: close` (one request per connection), no
    /// `Expect` (the proxy already said 100 Continue), everything else as the client sent it.
    fn head_for_upstream(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            if ["connection", "keep-alive", "expect", "proxy-connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        head.into_bytes()
    }
}

/// Serves one client connection: one request, then close.
async fn serve(client: Stream, connection: u32, shared: &Shared) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let exchange = Exchange {
        request: shared.requests.fetch_add(1, Ordering::SeqCst) + 1,
        connection,
        method: request.method.clone(),
        target: request.target.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    let fault = (shared.script)(&exchange);
    shared.log.lock().expect("proxy log").push(Logged {
        request: exchange.request,
        method: exchange.method,
        target: exchange.target,
        fault: fault.label(),
    });
    let mut client = client.into_inner();
    match fault {
        Fault::Answer(answer) => {
            client
                .write_all(&render_answer(&answer, &request.method))
                .await?;
            client.shutdown().await
        }
        Fault::Stall(duration) => {
            tokio::time::sleep(duration).await;
            client.reset();
            Ok(())
        }
        Fault::ResetMidRequest => {
            let mut upstream = shared.connect().await?;
            let mut bytes = request.head_for_upstream();
            let half = if request.body.is_empty() {
                bytes.len() / 2
            } else {
                bytes.len() + request.body.len() / 2
            };
            bytes.extend_from_slice(&request.body);
            upstream.write_all(&bytes[..half]).await?;
            upstream.flush().await?;
            upstream.reset();
            client.reset();
            Ok(())
        }
        relayed => {
            let mut upstream = match shared.connect().await {
                Ok(upstream) => upstream,
                Err(err) => {
                    let answer = Answer {
                        status: 502,
                        headers: vec![],
                        body: format!("fault proxy: upstream {}: {err}\n", shared.upstream)
                            .into_bytes(),
                    };
                    client
                        .write_all(&render_answer(&answer, &request.method))
                        .await?;
                    return client.shutdown().await;
                }
            };
            upstream.write_all(&request.head_for_upstream()).await?;
            upstream.write_all(&request.body).await?;
            upstream.flush().await?;
            relay(upstream, client, relayed, &request.method).await
        }
    }
}

impl Shared {
    /// A fresh connection to the upstream (TLS when configured).
    async fn connect(&self) -> std::io::Result<Stream> {
        if let Some(path) = self.upstream.strip_prefix("unix:") {
            return Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?));
        }
        let tcp = TcpStream::connect(&self.upstream).await?;
        let _ = tcp.set_nodelay(true);
        match &self.connector {
            None => Ok(Stream::Plain(tcp)),
            Some(connector) => {
                let host = self.upstream.rsplit_once(':').map_or("", |(h, _)| h);
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| std::io::Error::other(format!("server name {host}: {e}")))?;
                Ok(Stream::Client(Box::new(
                    connector.connect(name, tcp).await?,
                )))
            }
        }
    }
}

/// Relays the upstream's answer to the client under `fault` (forward, reset after some
/// bytes, slow, cut after a while), then closes both. The answer is framed as HTTP frames it
/// (`Content-Length`, chunked, or until the upstream closes), so an upstream that keeps the
/// connection open after answering does not hold the client.
async fn relay(
    upstream: Stream,
    client: Stream,
    fault: Fault,
    method: &str,
) -> std::io::Result<()> {
    let mut upstream = BufReader::new(upstream);
    let mut out = FaultyWriter {
        client,
        fault: fault.clone(),
        sent: 0,
    };
    let copy = async {
        let (head, framing) = read_response_head(&mut upstream, method).await?;
        if !out.send(&head).await? {
            return Ok(false);
        }
        match framing {
            Framing::Empty => Ok(true),
            Framing::Length(mut left) => {
                let mut buf = vec![0u8; 16 * 1024];
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = upstream.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    if !out.send(&buf[..n]).await? {
                        return Ok(false);
                    }
                    left -= n as u64;
                }
                Ok(true)
            }
            Framing::Chunked => loop {
                let mut size_line = String::new();
                if upstream.read_line(&mut size_line).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                if !out.send(size_line.as_bytes()).await? {
                    return Ok(false);
                }
                let hex = size_line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(hex, 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk size {hex:?}")))?;
                if size == 0 {
                    loop {
                        let mut trailer = String::new();
                        if upstream.read_line(&mut trailer).await? == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        if !out.send(trailer.as_bytes()).await? {
                            return Ok(false);
                        }
                        if trailer.trim().is_empty() {
                            return Ok(true);
                        }
                    }
                }
                let mut data = vec![0u8; size + 2];
                upstream.read_exact(&mut data).await?;
                if !out.send(&data).await? {
                    return Ok(false);
                }
            },
            Framing::UntilClose => {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = upstream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(true);
                    }
                    if !out.send(&buf[..n]).await? {
                        return Ok(false);
                    }
                }
            }
        }
    };
    let finished: std::io::Result<bool> = match &fault {
        Fault::CutAfter(after) => match tokio::time::timeout(*after, copy).await {
            Ok(result) => result,
            // Cut: the connection ends where it stood (FIN, as a balancer's idle cut).
            Err(_) => Ok(true),
        },
        _ => copy.await,
    };
    let mut client = out.client;
    match finished {
        Ok(true) => client.shutdown().await,
        Ok(false) => {
            client.reset();
            upstream.into_inner().reset();
            Ok(())
        }
        Err(err) => {
            client.reset();
            Err(err)
        }
    }
}

/// Writes the answer to the client as the fault says: all of it, slowly, or only so much.
struct FaultyWriter {
    client: Stream,
    fault: Fault,
    sent: usize,
}

impl FaultyWriter {
    /// Sends `bytes`; `false` once the fault's byte budget is spent (then reset).
    async fn send(&mut self, mut bytes: &[u8]) -> std::io::Result<bool> {
        while !bytes.is_empty() {
            let take = match &self.fault {
                Fault::Slow { chunk, .. } => bytes.len().min((*chunk).max(1)),
                Fault::ResetAfterResponseBytes(limit) => bytes.len().min(limit - self.sent),
                _ => bytes.len(),
            };
            self.client.write_all(&bytes[..take]).await?;
            self.client.flush().await?;
            self.sent += take;
            bytes = &bytes[take..];
            match &self.fault {
                Fault::ResetAfterResponseBytes(limit) if self.sent >= *limit => return Ok(false),
                Fault::Slow { every, .. } => tokio::time::sleep(*every).await,
                _ => {}
            }
        }
        Ok(true)
    }
}

/// How the body of an answer ends.
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Reads a request's head and body (`Content-Length` or chunked, kept raw); `None` when the
/// client closed first or did not speak HTTP/1. Answers `Expect: 100-continue` itself.
async fn read_request(client: &mut BufReader<Stream>) -> std::io::Result<Option<RawRequest>> {
    let mut line = String::new();
    if client.read_line(&mut line).await? == 0 || !line.contains("HTTP/1.") {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let headers = read_headers(client).await?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked_raw(client).await?
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        client.read_exact(&mut body).await?;
        body
    };
    Ok(Some(RawRequest {
        method,
        target,
        headers,
        body,
    }))
}

/// Header lines up to the empty line.
async fn read_headers(reader: &mut BufReader<Stream>) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
}

/// A chunked body exactly as sent (sizes, data, trailers), to forward unchanged.
async fn read_chunked_raw(reader: &mut BufReader<Stream>) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(size_line.as_bytes());
        let hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {hex:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                raw.extend_from_slice(trailer.as_bytes());
                if trailer.trim().is_empty() {
                    return Ok(raw);
                }
            }
        }
        let mut data = vec![0u8; size + 2];
        reader.read_exact(&mut data).await?;
        raw.extend_from_slice(&data);
    }
}

/// The upstream's status line and headers, with `Connection: close` said (the proxy closes
/// after each answer; the client must not reuse the connection), and how the body ends.
async fn read_response_head(
    upstream: &mut BufReader<Stream>,
    method: &str,
) -> std::io::Result<(Vec<u8>, Framing)> {
    let mut status = String::new();
    if upstream.read_line(&mut status).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = read_headers(upstream).await?;
    let mut framing = Framing::UntilClose;
    let mut head = status;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
            && let Ok(length) = value.parse()
        {
            framing = Framing::Length(length);
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "HEAD" || code == 204 || code == 304 || (100..200).contains(&code) {
        framing = Framing::Empty;
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok((head.into_bytes(), framing))
}

/// An answer of the proxy's own, closing the connection.
fn render_answer(answer: &Answer, method: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    for (name, value) in &answer.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body.len()
    ));
    let mut bytes = out.into_bytes();
    if method != "HEAD" {
        bytes.extend_from_slice(&answer.body);
    }
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

/// A fresh CA and a certificate it signed for `127.0.0.1` and `localhost`: (CA PEM, config).
fn front_certificate() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shipkit fault proxy CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("TLS server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

/// A TLS client trusting only `ca_pem`, speaking HTTP/1.1.
fn upstream_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A connection on either side, plain or TLS, that can be reset.
enum Stream {
    Plain(TcpStream),
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(tokio::net::UnixStream),
}

impl Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Server(s) => Some(s.get_ref().0),
            Stream::Client(s) => Some(s.get_ref().0),
            Stream::Unix(_) => None,
        }
    }

    /// Drops the connection with a TCP reset (no FIN, unread data discarded); a Unix socket
    /// is simply closed.
    fn reset(self) {
        if let Some(tcp) = self.tcp() {
            let _ = tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s).poll_flush(cx),
            Stream::Client(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Server(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_server::{HttpServer, Reply, TestCert};
    use std::io::{Read, Write};
    use std::time::Instant;

    /// Sends `request` raw and reads until the proxy closes: (what came, how it ended).
    fn exchange(proxy: &FaultProxy, request: &str) -> (String, std::io::Result<()>) {
        let mut stream = std::net::TcpStream::connect(proxy.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        read_to_close(&mut stream)
    }

    fn read_to_close(stream: &mut impl Read) -> (String, std::io::Result<()>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            match stream.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(err) => break Err(err),
            }
        };
        (String::from_utf8_lossy(&got).into_owned(), end)
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    }

    fn echo_upstream() -> HttpServer {
        HttpServer::serving(|r| {
            Reply::ok(format!(
                "{} {} {} connection={:?}",
                r.method,
                r.target,
                String::from_utf8_lossy(&r.body),
                r.header("connection")
            ))
        })
    }

    #[test]
    fn forwards_requests_with_their_bodies_and_closes_after_each() {
        let upstream = echo_upstream();
        let proxy = FaultProxy::builder(&upstream.addr().to_string()).start();
        let (got, end) = exchange(
            &proxy,
            "POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        );
        end.unwrap();
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.contains("Connection: close\r\n"), "{got}");
        assert!(
            got.ends_with("POST /a?b=1 hello connection=Some(\"close\")"),
            "{got}"
        );
        let chunked = "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                       3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (got, _) = exchange(&proxy, chunked);
        assert!(got.contains("PUT /c abcde"), "{got}");
        assert_eq!(upstream.requests(), 2);
        assert_eq!(proxy.injected(), 0, "{}", proxy.log_text());
    }

    #[test]
    fn a_burst_is_answered_by_the_proxy_then_requests_pass() {
        let upstream = echo_upstream();
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(burst(2, |e| e.path() == "/flaky", Fault::unavailable))
            .start();
        assert!(
            exchange(&proxy, &get("/other"))
                .0
                .starts_with("HTTP/1.1 200")
        );
        for _ in 0..2 {
            let (got, _) = exchange(&proxy, &get("/flaky"));
            assert!(got.starts_with("HTTP/1.1 503 Service Unavailable"), "{got}");
        }
        assert!(
            exchange(&proxy, &get("/flaky"))
                .0
                .starts_with("HTTP/1.1 200")
        );
        assert_eq!(upstream.requests(), 2, "answered ones never reach upstream");
        let faults: Vec<String> = proxy.log().into_iter().map(|l| l.fault).collect();
        assert_eq!(faults, ["forward", "answer 503", "answer 503", "forward"]);
    }

    #[test]
    fn aws_throttling_is_a_json_1_1_error_with_its_type() {
        let upstream = echo_upstream();
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(every_nth(
                2,
                |e| e.aws_operation() == Some("DescribeServices"),
                Fault::aws_throttling,
            ))
            .start();
        let call = |op: &str| {
            exchange(
                &proxy,
                &format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.{op}\r\nContent-Length: 2\r\n\r\n{{}}"
                ),
            )
            .0
        };
        assert!(call("DescribeServices").starts_with("HTTP/1.1 200"));
        let throttled = call("DescribeServices");
        assert!(throttled.starts_with("HTTP/1.1 400"), "{throttled}");
        assert!(
            throttled.contains("application/x-amz-json-1.1"),
            "{throttled}"
        );
        assert!(
            throttled.ends_with(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
            "{throttled}"
        );
        assert!(call("UpdateService").starts_with("HTTP/1.1 200"));
        assert!(call("DescribeServices").starts_with("HTTP/1.1 200"));
        assert!(call("DescribeServices").starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn a_reset_mid_request_reaches_neither_side_whole() {
        let upstream = echo_upstream();
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(|_| Fault::ResetMidRequest)
            .start();
        let (got, end) = exchange(
            &proxy,
            "PATCH /blob HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        );
        assert_eq!(got, "");
        assert_eq!(end.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            upstream.requests(),
            0,
            "the upstream never had a whole request"
        );
    }

    #[test]
    fn a_reset_mid_response_delivers_exactly_the_bytes_asked_then_resets() {
        let upstream = HttpServer::serving(|_| Reply::ok("x".repeat(1000)));
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(|_| Fault::ResetAfterResponseBytes(150))
            .start();
        let (got, end) = exchange(&proxy, &get("/big"));
        assert_eq!(got.len(), 150, "{got}");
        assert!(got.starts_with("HTTP/1.1 200"));
        assert_eq!(end.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn a_stall_outlasts_the_clients_patience() {
        let upstream = echo_upstream();
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(|_| Fault::Stall(Duration::from_secs(5)))
            .start();
        let mut stream = std::net::TcpStream::connect(proxy.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        stream.write_all(get("/").as_bytes()).unwrap();
        let (got, end) = read_to_close(&mut stream);
        assert_eq!(got, "");
        assert!(
            matches!(
                end.unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the client times out waiting"
        );
        assert_eq!(upstream.requests(), 0);
    }

    #[test]
    fn a_slow_answer_arrives_whole_but_late() {
        let upstream = HttpServer::serving(|_| Reply::ok("y".repeat(100)));
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(|_| Fault::Slow {
                chunk: 40,
                every: Duration::from_millis(50),
            })
            .start();
        let started = Instant::now();
        let (got, end) = exchange(&proxy, &get("/"));
        end.unwrap();
        assert!(got.ends_with(&"y".repeat(100)), "{got}");
        let chunks = got.len().div_ceil(40) as u32;
        assert!(
            started.elapsed() >= Duration::from_millis(50) * (chunks - 1),
            "{:?} for {chunks} chunks",
            started.elapsed()
        );
    }

    #[test]
    fn a_long_answer_is_cut_after_the_time_given() {
        let upstream = HttpServer::serving(|_| Reply::ok("late").after(Duration::from_secs(5)));
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .script(|e| match e.is_watch() {
                true => Fault::CutAfter(Duration::from_millis(300)),
                false => Fault::Forward,
            })
            .start();
        let started = Instant::now();
        let (got, end) = exchange(&proxy, &get("/api/v1/pods?watch=true&resourceVersion=5"));
        end.unwrap();
        assert_eq!(got, "");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn an_unreachable_upstream_is_a_502() {
        let port = crate::http_server::unused_port();
        let proxy = FaultProxy::builder(&format!("127.0.0.1:{port}")).start();
        let (got, _) = exchange(&proxy, &get("/"));
        assert!(got.starts_with("HTTP/1.1 502"), "{got}");
    }

    #[test]
    fn tls_on_both_sides_with_the_proxys_own_ca_in_front() {
        let cert = TestCert::generate();
        let upstream = HttpServer::start_tls(&cert, |n| Reply::ok(format!("tls #{n}")));
        let proxy = FaultProxy::builder(&upstream.addr().to_string())
            .tls_upstream(&cert.cert_pem)
            .tls_front()
            .start();
        assert!(proxy.url().starts_with("https://127.0.0.1:"));
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(proxy.ca_pem().unwrap().as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = std::net::TcpStream::connect(proxy.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(get("/").as_bytes()).unwrap();
        let (got, _) = read_to_close(&mut tls);
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.ends_with("tls #1"), "{got}");
    }
}
