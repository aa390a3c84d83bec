//! The BuildKit session img-build serves to the Engine during a build, over the Engine's
//! `/session` endpoint (an HTTP connection upgraded to h2c, on which the Engine is the gRPC
//! client): the build context and the Dockerfile (file sync, as `docker build` sends them),
//! the secrets of `--secret` and the registry logins for `--cache-from`.
//!
//! Why not a context tar in the request body: BuildKit (Engine 20.10) copies every file of
//! an uploaded tar, so a Dockerfile the `.dockerignore` excludes, or one from outside the
//! context, would land in the image; synced files are filtered as with `docker build`.
//! bollard's `build_image` starts a session too, but one that only answers for registry
//! logins; so img-build opens the session under the build's id first, with every service
//! it needs. bollard's own attempt under the same id is then refused by the Engine
//! ("session … already exists"), which bollard ignores.

use crate::context::{Entry, FIXED_MTIME, Source};
use crate::dockerignore::PatternMatcher;
use bollard::auth::DockerCredentials;
use bollard::fsutil::types::packet::PacketType;
use bollard::fsutil::types::{Packet, Stat};
use bollard::health::health_check_response::ServingStatus;
use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard::moby::filesync::v1::file_sync_server::{FileSync, FileSyncServer};
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::{Request, Response, Status};

/// The gRPC methods the session answers, announced to the Engine in the upgrade request.
const METHODS: [&str; 8] = [
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.FileSync/TarStream",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
];

/// What the session hands out: the context's entries and the Dockerfile, secret values by
/// id, logins by registry host.
#[derive(Clone, Default)]
pub struct SessionData {
    pub context: Arc<Vec<Entry>>,
    /// The Dockerfile, sent as [`DOCKERFILE`] in the `dockerfile` directory.
    pub dockerfile: Vec<u8>,
    pub secrets: HashMap<String, Vec<u8>>,
    pub credentials: HashMap<String, DockerCredentials>,
}

/// The Dockerfile's name in the synced `dockerfile` directory (the build's `dockerfile`).
pub const DOCKERFILE: &str = "Dockerfile";

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("SessionData")
            .field("context", &self.context.len())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Opens the session `id` on the Engine at `host` (`unix://…` or `tcp://…`) and serves it
/// on a background task until the Engine closes it or the returned handle is dropped (at
/// the end of the build). Returns once the Engine has accepted the session, so that the
/// build can name it.
pub async fn open(host: &str, id: &str, data: SessionData) -> Result<Session, String> {
    let upgraded = upgrade(host, id).await?;
    let data = Arc::new(data);
    let router = tonic::transport::Server::builder()
        .add_service(HealthServer::new(Healthy))
        .add_service(FileSyncServer::new(Files(data.clone())))
        .add_service(SecretsServer::new(SecretStore(data.clone())))
        .add_service(AuthServer::new(Logins(data)));
    let task = tokio::spawn(async move {
        let incoming = futures_util::stream::iter([Ok::<_, std::io::Error>(Transport(
            TokioIo::new(upgraded),
        ))]);
        if let Err(err) = router.serve_with_incoming(incoming).await {
            tracing::debug!("BuildKit session ended: {err}");
        }
    });
    Ok(Session(task))
}

/// An open session; dropping it closes the connection.
pub struct Session(tokio::task::JoinHandle<()>);

impl Drop for Session {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `POST /session` with `Upgrade: h2c`; the Engine answers 101 and the connection becomes
/// the session's.
async fn upgrade(host: &str, id: &str) -> Result<hyper::upgrade::Upgraded, String> {
    let request = hyper::Request::post("/session")
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", id)
        .header("X-Docker-Expose-Session-Name", "img-build")
        .header("X-Docker-Expose-Session-Sharedkey", "");
    let request = METHODS
        .iter()
        .fold(request, |r, m| {
            r.header("X-Docker-Expose-Session-Grpc-Method", *m)
        })
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|err| err.to_string())?;
    let response = match connect(host).await? {
        Stream::Unix(stream) => send(TokioIo::new(stream), request).await?,
        Stream::Tcp(stream) => send(TokioIo::new(stream), request).await?,
    };
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!(
            "the Engine refused a BuildKit session (HTTP {})",
            response.status()
        ));
    }
    hyper::upgrade::on(response)
        .await
        .map_err(|err| format!("the BuildKit session's upgrade failed: {err}"))
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn connect(host: &str) -> Result<Stream, String> {
    let failed = |err: std::io::Error| format!("cannot reach the Docker Engine at {host}: {err}");
    if let Some(path) = host.strip_prefix("unix://") {
        return tokio::net::UnixStream::connect(path)
            .await
            .map(Stream::Unix)
            .map_err(failed);
    }
    if let Some(address) = host.strip_prefix("tcp://") {
        return tokio::net::TcpStream::connect(address.trim_end_matches('/'))
            .await
            .map(Stream::Tcp)
            .map_err(failed);
    }
    Err(format!(
        "a BuildKit session needs DOCKER_HOST unix:// or tcp://, not {host}"
    ))
}

async fn send<T>(
    io: TokioIo<T>,
    request: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|err| format!("the BuildKit session: {err}"))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|err| format!("the BuildKit session: {err}"))
}

/// The upgraded connection as tonic's server takes it.
struct Transport(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for Transport {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The Engine checks the session's health now and then.
struct Healthy;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type WatchStream = futures_util::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// `RUN --mount=type=secret,id=ID` reads the value here.
struct SecretStore(Arc<SessionData>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.secrets.get(id) {
            Some(value) => Ok(Response::new(GetSecretResponse {
                data: value.clone(),
            })),
            // BuildKit's wording, so that `required=false` mounts work as with the docker CLI.
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

/// BuildKit asks for a registry's login before pulling from it (`--cache-from`).
struct Logins(Arc<SessionData>);

#[tonic::async_trait]
impl Auth for Logins {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = &request.get_ref().host;
        let response = match self.0.credentials.get(host) {
            Some(DockerCredentials {
                identitytoken: Some(token),
                ..
            }) => CredentialsResponse {
                username: String::new(),
                secret: token.clone(),
            },
            Some(credentials) => CredentialsResponse {
                username: credentials.username.clone().unwrap_or_default(),
                secret: credentials.password.clone().unwrap_or_default(),
            },
            // Anonymous: public registries need nothing.
            None => CredentialsResponse::default(),
        };
        Ok(Response::new(response))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        // Unimplemented makes BuildKit fall back to `credentials` (as with the docker CLI).
        Err(Status::unimplemented("fetch_token"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("get_token_authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("verify_token_authority"))
    }
}

/// BuildKit pulls the context and the Dockerfile through here (fsutil's DiffCopy protocol:
/// we send each entry's stat, in walk order, then the stat stream's end; BuildKit asks for
/// the files it lacks by index and we send their bytes, each ended by an empty packet; its
/// FIN is answered with ours).
struct Files(Arc<SessionData>);

/// What BuildKit asked for, from the request's metadata.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// `context` or `dockerfile`.
    pub dir: String,
    /// Only these paths (BuildKit reads the `.dockerignore` first this way).
    pub follow_paths: Vec<String>,
    /// The `.dockerignore`'s patterns, as the Dockerfile frontend read them.
    pub excludes: Vec<String>,
}

fn metadata_values(meta: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    meta.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The entries to send for `request`, in fsutil's walk order (path components compared one
/// by one, a directory right before its contents). Pure.
pub fn entries_to_sync(data: &SessionData, request: &SyncRequest) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = match request.dir.as_str() {
        "dockerfile" => vec![Entry {
            name: DOCKERFILE.as_bytes().to_vec(),
            mode: 0o644,
            source: Source::Bytes(data.dockerfile.clone()),
        }],
        "context" => {
            // The context was walked with the same `.dockerignore`; what its patterns still
            // exclude here is the Dockerfile and `.dockerignore` themselves, which the
            // classic builder needs sent and BuildKit does not.
            let excludes = PatternMatcher::new(&request.excludes)
                .map_err(|err| format!("the .dockerignore's patterns: {err}"))?;
            // Directories first: an excluded Dockerfile's folder stays, as with `docker build`.
            let mut context = data.context.to_vec();
            add_missing_parents(&mut context);
            context
                .iter()
                .filter(|e| {
                    matches!(e.source, Source::Dir)
                        || !excludes.matches_or_parent_matches(&e.name_lossy())
                })
                .cloned()
                .collect()
        }
        other => return Err(format!("no directory {other:?} in this session")),
    };
    if !request.follow_paths.is_empty() {
        let roots: Vec<&str> = request
            .follow_paths
            .iter()
            .map(|p| follow_root(p))
            .collect();
        entries.retain(|e| {
            roots
                .iter()
                .any(|root| on_followed_path(&e.name_lossy(), root))
        });
    }
    add_missing_parents(&mut entries);
    entries.sort_by(|a, b| {
        a.name
            .split(|c| *c == b'/')
            .cmp(b.name.split(|c| *c == b'/'))
    });
    Ok(entries)
}

/// The part of a followed path (`COPY www /www` follows `www`) before its first wildcard:
/// everything under it is sent, and BuildKit picks what the pattern names. "" is the whole
/// context.
fn follow_root(path: &str) -> &str {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let wildcard = path.find(['*', '?', '[']).unwrap_or(path.len());
    match path[..wildcard].rfind('/') {
        _ if wildcard == path.len() => path,
        Some(slash) => &path[..slash],
        None => "",
    }
}

/// Whether `name` is to be sent for the followed `root`: the root itself, what is under it,
/// and the directories leading to it.
fn on_followed_path(name: &str, root: &str) -> bool {
    root.is_empty()
        || root == "."
        || name == root
        || name.starts_with(&format!("{root}/"))
        || root.starts_with(&format!("{name}/"))
}

/// fsutil wants every file's directory sent before it; a tar does not, and the context's
/// walk leaves out a directory the `.dockerignore` excludes but a `!` pattern reopens.
fn add_missing_parents(entries: &mut Vec<Entry>) {
    let known: std::collections::BTreeSet<Vec<u8>> =
        entries.iter().map(|e| e.name.clone()).collect();
    let mut missing = std::collections::BTreeSet::new();
    for entry in entries.iter() {
        let mut name = entry.name.as_slice();
        while let Some(slash) = name.iter().rposition(|c| *c == b'/') {
            name = &name[..slash];
            if !known.contains(name) {
                missing.insert(name.to_vec());
            }
        }
    }
    entries.extend(missing.into_iter().map(|name| Entry {
        name,
        mode: 0o755,
        source: Source::Dir,
    }));
}

/// Go's `os.FileMode` bits, which fsutil's stats carry.
fn go_file_mode(entry: &Entry) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const STICKY: u32 = 1 << 20;
    let mut mode = entry.mode & 0o777;
    for (unix, go) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if entry.mode & unix != 0 {
            mode |= go;
        }
    }
    match entry.source {
        Source::Dir => mode | DIR,
        Source::Symlink(_) => mode | SYMLINK,
        Source::File(_) | Source::Bytes(_) => mode,
    }
}

/// A file's stat. BuildKit keeps the files of earlier syncs and asks only for those whose
/// size or time changed, so the time must change with the content: a file's own mtime (in
/// nanoseconds), for bytes made here a number derived from their sha256.
fn stat_of(entry: &Entry) -> std::io::Result<Stat> {
    let fixed = i64::try_from(FIXED_MTIME)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000);
    let (size, linkname, mod_time) = match &entry.source {
        Source::File(path) => {
            let meta = std::fs::metadata(path)?;
            let nanos = meta
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(fixed);
            (meta.len(), String::new(), nanos)
        }
        Source::Bytes(bytes) => (bytes.len() as u64, String::new(), content_time(bytes)),
        Source::Symlink(target) => (0, target.to_string_lossy().into_owned(), fixed),
        Source::Dir => (0, String::new(), fixed),
    };
    Ok(Stat {
        path: entry.name_lossy(),
        mode: go_file_mode(entry),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        mod_time,
        linkname,
        ..Stat::default()
    })
}

/// A time in nanoseconds (within the first ~30 years) that changes with `bytes`.
fn content_time(bytes: &[u8]) -> i64 {
    let mut hasher = crate::context::HashingWriter::default();
    let _ = std::io::Write::write_all(&mut hasher, bytes);
    let hex = hasher.finish();
    i64::from_str_radix(&hex[..15], 16).unwrap_or(0) % 1_000_000_000_000_000_000
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Packet::default()
    }
}

/// Sends the stats, then answers BuildKit's requests until its FIN.
async fn sync(
    entries: Vec<Entry>,
    mut incoming: tonic::Streaming<Packet>,
    tx: tokio::sync::mpsc::Sender<Result<Packet, Status>>,
) -> Result<(), Status> {
    let closed = |_| Status::cancelled("the Engine closed the file sync");
    for entry in &entries {
        let stat = stat_of(entry).map_err(|err| Status::internal(err.to_string()))?;
        let mut p = packet(PacketType::PacketStat);
        p.stat = Some(stat);
        tx.send(Ok(p)).await.map_err(closed)?;
    }
    tx.send(Ok(packet(PacketType::PacketStat)))
        .await
        .map_err(closed)?;
    while let Some(p) = incoming.message().await? {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let entry = entries
                    .get(p.id as usize)
                    .ok_or_else(|| Status::invalid_argument(format!("no file {}", p.id)))?;
                send_file(entry, p.id, &tx).await?;
            }
            Ok(PacketType::PacketFin) => {
                tx.send(Ok(packet(PacketType::PacketFin)))
                    .await
                    .map_err(closed)?;
                return Ok(());
            }
            Ok(PacketType::PacketErr) => {
                return Err(Status::aborted(
                    String::from_utf8_lossy(&p.data).into_owned(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One file's bytes in chunks, then an empty packet for its end.
async fn send_file(
    entry: &Entry,
    id: u32,
    tx: &tokio::sync::mpsc::Sender<Result<Packet, Status>>,
) -> Result<(), Status> {
    const CHUNK: usize = 32 * 1024;
    let data = |bytes: Vec<u8>| Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data: bytes,
        ..Packet::default()
    };
    let closed = |_| Status::cancelled("the Engine closed the file sync");
    match &entry.source {
        Source::Bytes(bytes) => {
            for chunk in bytes.chunks(CHUNK) {
                tx.send(Ok(data(chunk.to_vec()))).await.map_err(closed)?;
            }
        }
        Source::File(path) => {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|err| Status::internal(format!("{}: {err}", path.display())))?;
            loop {
                let mut buf = vec![0; CHUNK];
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|err| Status::internal(format!("{}: {err}", path.display())))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                tx.send(Ok(data(buf))).await.map_err(closed)?;
            }
        }
        Source::Dir | Source::Symlink(_) => {}
    }
    tx.send(Ok(data(Vec::new()))).await.map_err(closed)
}

type PacketStream = Pin<Box<dyn futures_util::Stream<Item = Result<Packet, Status>> + Send>>;

#[tonic::async_trait]
impl FileSync for Files {
    type DiffCopyStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<tonic::Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let meta = request.metadata();
        let sync_request = SyncRequest {
            dir: metadata_values(meta, "dir-name")
                .into_iter()
                .next()
                .unwrap_or_default(),
            follow_paths: metadata_values(meta, "followpaths"),
            excludes: metadata_values(meta, "exclude-patterns"),
        };
        tracing::debug!("BuildKit syncs {sync_request:?}");
        let entries = entries_to_sync(&self.0, &sync_request).map_err(Status::not_found)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let incoming = request.into_inner();
        tokio::spawn(async move {
            if let Err(status) = sync(entries, incoming, tx.clone()).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(stream)))
    }

    type TarStreamStream = PacketStream;

    async fn tar_stream(
        &self,
        _: Request<tonic::Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("tar_stream"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, source: Source) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: 0o644,
            source,
        }
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(Entry::name_lossy).collect()
    }

    #[test]
    fn the_context_is_sent_in_walk_order_without_what_the_frontend_excludes() {
        let data = SessionData {
            context: Arc::new(vec![
                entry(".dockerignore", Source::Bytes(b"Dockerfile\n".to_vec())),
                entry("Dockerfile", Source::Bytes(vec![])),
                entry("a", Source::Dir),
                entry("a.txt", Source::Bytes(vec![])),
                entry("a/b", Source::Bytes(vec![])),
            ]),
            dockerfile: b"FROM scratch\n".to_vec(),
            ..SessionData::default()
        };
        let context = |follow: &[&str], excludes: &[&str]| {
            names(
                &entries_to_sync(
                    &data,
                    &SyncRequest {
                        dir: "context".into(),
                        follow_paths: follow.iter().map(|s| s.to_string()).collect(),
                        excludes: excludes.iter().map(|s| s.to_string()).collect(),
                    },
                )
                .unwrap(),
            )
        };
        assert_eq!(
            context(&[], &["Dockerfile"]),
            [".dockerignore", "a", "a/b", "a.txt"]
        );
        assert_eq!(context(&[".dockerignore"], &[]), [".dockerignore"]);
        let reopened = SessionData {
            context: Arc::new(vec![entry("docs/keep.md", Source::Bytes(vec![]))]),
            ..SessionData::default()
        };
        let sent = entries_to_sync(
            &reopened,
            &SyncRequest {
                dir: "context".into(),
                ..SyncRequest::default()
            },
        )
        .unwrap();
        assert_eq!(names(&sent), ["docs", "docs/keep.md"]);
        let dockerfile = entries_to_sync(
            &data,
            &SyncRequest {
                dir: "dockerfile".into(),
                ..SyncRequest::default()
            },
        )
        .unwrap();
        assert_eq!(names(&dockerfile), [DOCKERFILE]);
        assert_eq!(
            dockerfile[0].source,
            Source::Bytes(b"FROM scratch\n".to_vec())
        );
    }

    #[test]
    fn a_followed_directory_sends_what_is_under_it_and_the_way_to_it() {
        assert!(on_followed_path("www/health", follow_root("www")));
        assert!(on_followed_path("www", follow_root("./www/")));
        assert!(on_followed_path("a", follow_root("a/b/c.txt")));
        assert!(!on_followed_path("busybox", follow_root("www")));
        assert!(!on_followed_path("wwwx/health", follow_root("www")));
        assert_eq!(follow_root("src/*.txt"), "src");
        assert!(on_followed_path("src/a/b.txt", follow_root("src/*.txt")));
        assert!(on_followed_path("anything", follow_root("*.txt")));
    }

    #[test]
    fn modes_are_go_file_modes() {
        let mut dir = entry("d", Source::Dir);
        dir.mode = 0o755;
        assert_eq!(go_file_mode(&dir), (1 << 31) | 0o755);
        let link = entry("l", Source::Symlink("t".into()));
        assert_eq!(go_file_mode(&link), (1 << 27) | 0o644);
        let mut setuid = entry("f", Source::Bytes(vec![]));
        setuid.mode = 0o4755;
        assert_eq!(go_file_mode(&setuid), (1 << 23) | 0o755);
    }
}
