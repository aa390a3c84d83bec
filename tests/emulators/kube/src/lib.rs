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
//! - [`controllers`] (Deployment, ReplicaSet, background garbage collection; `Orphan` and
//!   `Foreground` deletion in [`propagation`]; decisions in [`rollout`]) and
//!   the [`kubelet`] that runs pods as containers on the local Docker Engine, writing each
//!   one's `/etc/hosts` with the Service names ([`hosts`]).
//! - [`defaults`], [`schema`] (unknown fields), [`table`] (what `kubectl get` prints),
//!   [`selectors`], [`status`] (errors), [`tls`], [`kubeconfig`], [`time`].

pub mod auth;
pub mod control;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod eks;
pub mod environment;
pub mod events;
pub mod fields;
pub mod hosts;
pub mod ingress;
pub mod kubeconfig;
pub mod kubelet;
pub mod managed;
pub mod merge;
pub mod network;
pub mod openapi;
pub mod probe;
pub mod propagation;
pub mod pull_secrets;
pub mod resources;
pub mod rollout;
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
    /// How often the controllers and the kubelet look at the clusters.
    #[arg(long, env = "KUBE_EMULATOR_TICK", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub tick: std::time::Duration,
    /// Loopback ports for the Services' ports, allocated in order (FIRST-LAST).
    #[arg(long, env = "KUBE_EMULATOR_SERVICE_PORTS", default_value = "19000-19499", value_parser = parse_port_range)]
    pub service_ports: (u16, u16),
    /// How many events each cluster keeps for watches to resume from (older: 410 Gone).
    #[arg(long, env = "KUBE_EMULATOR_WATCH_HISTORY", default_value_t = store::HISTORY)]
    pub watch_history: usize,
    /// Serve the API without the Docker Engine: pods are stored but never run.
    #[arg(long, env = "KUBE_EMULATOR_NO_DOCKER")]
    pub no_docker: bool,
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. 19000-19499")?;
    let a: u16 = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u16 = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if a == 0 || b < a {
        return Err(format!("{s}: an empty range"));
    }
    Ok((a, b))
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
    let kubelet = if args.no_docker {
        None
    } else {
        Some(Arc::new(start_kubelet(&args).await?))
    };
    let eks = Arc::new(eks::Authenticator::from_env());
    let network = Arc::new(network::Network::new(args.service_ports));
    let mut endpoints: Vec<(String, String)> = Vec::new();
    let mut clusters = Vec::new();
    let mut tasks = Vec::new();
    for (name, addr) in &args.clusters {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cluster {name}: listening on {addr}"))?;
        let local = listener.local_addr()?;
        let address = format!("https://{local}");
        let cluster = Arc::new(Cluster::with_history(name, args.watch_history));
        clusters.push(cluster.clone());
        let served = Arc::new(Served {
            cluster,
            eks: eks.clone(),
            kubelet: kubelet.clone(),
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
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let endpoint = Arc::new(control::Control {
        clusters: endpoints.clone(),
        ca_pem: ca.cert_pem().to_owned(),
        region,
        network: Some(network.clone()),
    });
    tasks.push(tokio::spawn(control::serve(control, endpoint)));
    tasks.push(tokio::spawn(run_controllers(
        clusters,
        kubelet.clone(),
        network.clone(),
        args.tick,
    )));
    shutdown_signal().await;
    tracing::info!("shutting down");
    for t in tasks {
        t.abort();
    }
    if let Some(k) = kubelet {
        let mut n = k.remove_all().await;
        // A container start that was in flight may have created one after that listing.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        n += k.remove_all().await;
        tracing::info!("removed {n} containers");
    }
    Ok(())
}

/// Connects to the Docker Engine (`DOCKER_HOST` or the default socket) and removes what an
/// earlier emulator on the same address left behind.
async fn start_kubelet(args: &Args) -> Result<kubelet::Kubelet> {
    let docker =
        bollard::Docker::connect_with_defaults().context("connecting to the Docker Engine")?;
    let docker = docker
        .negotiate_version()
        .await
        .context("negotiating the Docker API version")?;
    docker.ping().await.context(
        "the Docker Engine does not answer (scripts/services up docker, or --no-docker)",
    )?;
    let listen = args.listen.to_string();
    // Port 0 (tests): every instance shares the address, so there is no "same address" to
    // clean up after, and another running instance's containers must stay.
    let stale = if args.listen.port() == 0 {
        0
    } else {
        kubelet::remove_labelled(&docker, kubelet::LABEL_LISTEN, &listen).await
    };
    if stale > 0 {
        tracing::info!("removed {stale} containers left by an earlier kube-emulator on {listen}");
    }
    let instance: String = (0..16)
        .map(|_| format!("{:x}", rand::random::<u8>() % 16))
        .collect();
    Ok(kubelet::Kubelet::new(docker, instance, listen))
}

/// The controllers and the kubelet, every `tick`.
async fn run_controllers(
    clusters: Vec<Arc<Cluster>>,
    kubelet: Option<Arc<kubelet::Kubelet>>,
    network: Arc<network::Network>,
    tick: std::time::Duration,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let mut live_pods = Vec::new();
        for c in &clusters {
            let now = std::time::SystemTime::now();
            controllers::reconcile_crds(c);
            controllers::collect_garbage(c);
            propagation::propagate_deletions(c);
            controllers::reconcile_deployments(c, now);
            controllers::reconcile_replica_sets(c, now);
            controllers::reconcile_jobs(c, now);
            controllers::reconcile_stateful_sets(c);
            controllers::reconcile_daemon_sets(c);
            if let Some(k) = &kubelet {
                k.sync(c, &mut live_pods).await;
            }
        }
        // The Services stop sending to deleted pods before their containers go.
        network.sync(&clusters).await;
        if let Some(k) = &kubelet {
            k.sweep(&live_pods).await;
        }
    }
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
