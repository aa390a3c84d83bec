//! # ecs-emulator
//!
//! A local stand-in for Amazon ECS (EC2 launch type): it speaks ECS's JSON 1.1 wire protocol
//! (`X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`, any SigV4 signature
//! accepted) and runs each task's containers on the local Docker Engine. It is test and demo
//! infrastructure for shipkit: faithful where `ecs-roll` depends on ECS behaviour (rolling
//! deployments, rollout state, task exit codes, service events, the circuit breaker), and
//! answering everything else with ECS's error shape. See README.md for the subset.
//!
//! ## Parts
//! - [`api`]: the operations, over the in-memory [`state`].
//! - [`rollout`]: the service scheduler's decisions, a pure function with unit tests.
//! - [`engine`]: the reconciler that observes containers and carries the decisions out.
//! - [`startup`]: the order a task's containers start in and their Docker links (pure).
//! - [`lb`]: the stand-in for an ALB target group, a loopback TCP forwarder per service.
//! - [`server`]: HTTP, fault injection and the `/_emulator/*` endpoints.

pub mod api;
pub mod engine;
pub mod lb;
pub mod rollout;
pub mod server;
pub mod startup;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::Docker;

use crate::server::Faults;
use crate::state::State;

/// Command-line settings (each also from an environment variable).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ecs-emulator",
    version,
    about = "A local ECS control plane that runs tasks on the local Docker Engine"
)]
pub struct Args {
    /// Address to serve the ECS API on.
    #[arg(long, env = "ECS_EMULATOR_LISTEN", default_value = "127.0.0.1:5002")]
    pub listen: SocketAddr,
    /// Loopback ports for the load-balancer stand-ins, allocated in order (FIRST-LAST).
    #[arg(long, env = "ECS_EMULATOR_LB_PORTS", default_value = "18000-18099", value_parser = parse_port_range)]
    pub lb_ports: (u16, u16),
    /// Answer every Nth API call with ThrottlingException (0: never).
    #[arg(long, env = "ECS_EMULATOR_THROTTLE_EVERY", default_value_t = 0)]
    pub throttle_every: u64,
    /// Added latency before every API answer (e.g. 200ms).
    #[arg(long, env = "ECS_EMULATOR_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Clusters that exist from the start (comma-separated).
    #[arg(
        long,
        env = "ECS_EMULATOR_CLUSTERS",
        value_delimiter = ',',
        default_value = "default,dev"
    )]
    pub clusters: Vec<String>,
    /// How often the scheduler looks at services and containers.
    #[arg(long, env = "ECS_EMULATOR_TICK", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Seconds a container gets between SIGTERM and SIGKILL when a task is stopped (ECS: 30).
    #[arg(long, env = "ECS_EMULATOR_STOP_TIMEOUT", default_value_t = 2)]
    pub stop_timeout: i32,
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. 18000-18099")?;
    let a: u16 = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u16 = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if a == 0 || b < a {
        return Err(format!("{s}: an empty range"));
    }
    Ok((a, b))
}

/// The running emulator, shared by the HTTP server, the reconciler and the load balancers.
pub struct Emulator {
    /// Everything ECS knows.
    pub state: Mutex<State>,
    /// The Docker Engine the tasks run on.
    pub docker: Docker,
    /// This process's id, on every container's labels.
    pub instance: String,
    /// The API address.
    pub listen: SocketAddr,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout_secs: i32,
    faults: Mutex<Faults>,
    calls: AtomicU64,
    lb_ports: (u16, u16),
    target_groups: Mutex<BTreeMap<(String, String), lb::TargetGroup>>,
}

impl Emulator {
    /// The state, locked (a poisoned lock is still used: the state stays consistent per call).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Connects to the Docker Engine (`DOCKER_HOST` or the default socket), negotiating the API
/// version (the local Engine is 20.10, API 1.41).
pub async fn connect_docker() -> Result<Docker> {
    let docker = Docker::connect_with_defaults().context("connecting to the Docker Engine")?;
    let docker = docker
        .negotiate_version()
        .await
        .context("negotiating the Docker API version")?;
    docker
        .ping()
        .await
        .context("the Docker Engine does not answer (is it running? scripts/services up docker)")?;
    Ok(docker)
}

/// Runs the emulator until SIGTERM or SIGINT, then removes every container it started.
pub async fn run(args: Args) -> Result<()> {
    let docker = connect_docker().await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let listen = listener.local_addr()?;
    // A previous run on the same address that did not exit cleanly left its containers.
    let stale = engine::remove_labelled(&docker, engine::LABEL_LISTEN, &listen.to_string()).await;
    if stale > 0 {
        tracing::info!("removed {stale} containers left by an earlier ecs-emulator on {listen}");
    }
    let mut state = State::default();
    for c in args.clusters.iter().filter(|c| !c.is_empty()) {
        api::ensure_cluster(&mut state, c);
    }
    if args.lb_ports.0 == 0 {
        bail!("--lb-ports must not start at 0");
    }
    let emu = Arc::new(Emulator {
        state: Mutex::new(state),
        docker,
        instance: state::hex_id(16),
        listen,
        stop_timeout_secs: args.stop_timeout,
        faults: Mutex::new(Faults::new(args.throttle_every, args.latency)),
        calls: AtomicU64::new(0),
        lb_ports: args.lb_ports,
        target_groups: Mutex::new(BTreeMap::new()),
    });
    tracing::info!(
        "ecs-emulator listening on http://{listen} (instance {}, load-balancer ports {}-{})",
        emu.instance,
        args.lb_ports.0,
        args.lb_ports.1
    );
    let reconciler = tokio::spawn(engine::run(emu.clone(), args.tick));
    let server = tokio::spawn(server::serve(emu.clone(), listener));
    shutdown_signal().await;
    tracing::info!("shutting down: removing the containers this emulator started");
    server.abort();
    reconciler.abort();
    let mut n = engine::remove_labelled(&emu.docker, engine::LABEL_INSTANCE, &emu.instance).await;
    // A task start that was in flight may have created a container after that listing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    n += engine::remove_labelled(&emu.docker, engine::LABEL_INSTANCE, &emu.instance).await;
    tracing::info!("removed {n} containers");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
