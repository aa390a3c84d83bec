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
use crate::filesync::{SyncRequest, entries_to_sync, go_file_mode};
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
    /// The Dockerfile, sent as [`crate::filesync::DOCKERFILE`] in the `dockerfile` directory.
    pub dockerfile: Vec<u8>,
    pub secrets: HashMap<String, Vec<u8>>,
    pub credentials: HashMap<String, DockerCredentials>,
}

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

fn metadata_values(meta: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    meta.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
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
        let entries = entries_to_sync(&self.0.context, &self.0.dockerfile, &sync_request)
            .map_err(Status::not_found)?;
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
