//! # kube-emulator
//!
//! Local Kubernetes API servers for shipkit's tests and demo: one process serves several
//! clusters (`staging`, `production`), each on its own HTTPS port with its own in-memory
//! state, and kubectl 1.32 and kube-rs talk to them unmodified. See README.md for the subset.
//!
//! ## Parts
//! - [`server`]: HTTPS, authentication ([`auth`]), routing; [`discovery`] and [`openapi`].
//! - [`store`]: one cluster's objects, resourceVersions, events; [`watch`] streams them.
//! - [`managed`]: server-side apply and managedFields, over [`fields`] (field paths and sets)
//!   and [`merge`] (apply, merge and strategic merge patches).
//! - [`defaults`], [`schema`] (unknown fields), [`table`] (what `kubectl get` prints),
//!   [`selectors`], [`status`] (errors), [`tls`], [`kubeconfig`], [`time`].

pub mod auth;
pub mod defaults;
pub mod discovery;
pub mod fields;
pub mod kubeconfig;
pub mod managed;
pub mod merge;
pub mod openapi;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod time;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::server::Served;
use crate::store::Cluster;

/// Command-line settings (each also from an environment variable).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "kube-emulator",
    version,
    about = "Local Kubernetes API servers that kubectl and kube-rs accept"
)]
pub struct Args {
    /// The emulator's own plain-HTTP endpoint (`GET /_emulator/clusters`).
    #[arg(long, env = "KUBE_EMULATOR_LISTEN", default_value = "127.0.0.1:5003")]
    pub listen: SocketAddr,
    /// A cluster and the address of its API server (NAME=ADDR; port 0: any free port).
    #[arg(
        long = "cluster",
        env = "KUBE_EMULATOR_CLUSTERS",
        value_delimiter = ',',
        default_value = "staging=127.0.0.1:0,production=127.0.0.1:0",
        value_parser = parse_cluster
    )]
    pub clusters: Vec<(String, SocketAddr)>,
    /// The CA certificate (PEM) that signs each cluster's server certificate.
    #[arg(long, env = "SHIPKIT_CA_FILE")]
    pub ca_cert: PathBuf,
    /// The CA's private key (PEM); default: `ca.key` beside the certificate.
    #[arg(long, env = "KUBE_EMULATOR_CA_KEY")]
    pub ca_key: Option<PathBuf>,
    /// The static bearer token every cluster accepts (written into the kubeconfig).
    #[arg(
        long,
        env = "KUBE_EMULATOR_TOKEN",
        default_value = "shipkit-local",
        hide_env_values = true
    )]
    pub token: String,
    /// Where to write a kubeconfig with one context per cluster, once they listen.
    #[arg(long, env = "KUBE_EMULATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

fn parse_cluster(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or("expected NAME=ADDR, e.g. staging=127.0.0.1:6443")?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "{name:?}: a cluster name is lowercase letters, digits and '-'"
        ));
    }
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    Ok((name.to_owned(), addr))
}

/// Runs the emulator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<()> {
    if args.clusters.is_empty() {
        bail!("no --cluster given");
    }
    let ca_key = args
        .ca_key
        .clone()
        .unwrap_or_else(|| args.ca_cert.with_file_name("ca.key"));
    let ca = tls::Ca::load(&args.ca_cert, &ca_key)?;
    let mut endpoints: Vec<(String, String)> = Vec::new();
    let mut tasks = Vec::new();
    for (name, addr) in &args.clusters {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cluster {name}: listening on {addr}"))?;
        let local = listener.local_addr()?;
        let address = format!("https://{local}");
        let served = Arc::new(Served {
            cluster: Arc::new(Cluster::new(name)),
            token: args.token.clone(),
            address: address.clone(),
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config()?);
        tracing::info!("cluster {name}: {address}");
        tasks.push(tokio::spawn(server::serve(served, listener, acceptor)));
        endpoints.push((name.clone(), address));
    }
    if let Some(path) = &args.kubeconfig {
        let text = serde_json::to_string_pretty(&kubeconfig::render(
            &endpoints,
            ca.cert_pem(),
            &args.token,
        ))?;
        write_private(path, &text)
            .with_context(|| format!("writing the kubeconfig {}", path.display()))?;
        tracing::info!("wrote the kubeconfig {}", path.display());
    }
    let control = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(
        "kube-emulator listening on http://{}",
        control.local_addr()?
    );
    let listing = json!(
        endpoints
            .iter()
            .map(|(n, s)| json!({"name": n, "server": s}))
            .collect::<Vec<_>>()
    );
    tasks.push(tokio::spawn(serve_control(control, listing)));
    shutdown_signal().await;
    tracing::info!("shutting down");
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// Writes `text` readable by the owner only (the kubeconfig carries the token).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// The emulator's own endpoint: `GET /_emulator/clusters` lists `[{name, server}]`.
async fn serve_control(listener: TcpListener, clusters: Value) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let clusters = clusters.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (status, body) = match req.uri().path() {
                        "/_emulator/clusters" => (200, clusters.clone()),
                        p => (404, json!({"error": format!("no such endpoint: {p}")})),
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
                    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
