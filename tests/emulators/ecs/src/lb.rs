//! The stand-in for an ALB target group: a service with a `loadBalancers` entry gets a fixed
//! loopback port (the first free one of `--lb-ports`, in order) that forwards each TCP
//! connection to the `containerPort` of one of its RUNNING, ready tasks (round robin). With no
//! ready target it answers `HTTP/1.1 503 Service Unavailable`, as an ALB does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Emulator;
use crate::state::State;

/// One service's target group stand-in.
pub struct TargetGroup {
    /// The loopback port it listens on.
    pub port: u16,
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    accept: JoinHandle<()>,
}

impl Drop for TargetGroup {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Emulator {
    /// Binds the next free port of `--lb-ports` for a service and starts forwarding.
    pub fn bind_target_group(&self, cluster: &str, service: &str) -> Result<u16> {
        let mut groups = self.target_groups.lock().unwrap_or_else(|e| e.into_inner());
        let key = (cluster.to_owned(), service.to_owned());
        if let Some(g) = groups.get(&key) {
            return Ok(g.port);
        }
        let taken: Vec<u16> = groups.values().map(|g| g.port).collect();
        let (first, last) = self.lb_ports;
        for port in first..=last {
            if taken.contains(&port) {
                continue;
            }
            let Ok(std_listener) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
                continue;
            };
            std_listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(std_listener)?;
            let targets = Arc::new(Mutex::new(Vec::new()));
            let accept = tokio::spawn(accept_loop(listener, targets.clone()));
            tracing::info!("load balancer for service {cluster}/{service}: 127.0.0.1:{port}");
            groups.insert(
                key,
                TargetGroup {
                    port,
                    targets,
                    accept,
                },
            );
            return Ok(port);
        }
        Err(anyhow!("every port in {first}-{last} is taken"))
    }

    /// Stops forwarding for a service and frees its port.
    pub fn release_target_group(&self, cluster: &str, service: &str) {
        let mut groups = self.target_groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = groups.remove(&(cluster.to_owned(), service.to_owned())) {
            tracing::info!(
                "load balancer for service {cluster}/{service} on 127.0.0.1:{} closed",
                g.port
            );
        }
    }

    /// Points each target group at its service's ready tasks.
    pub fn update_targets(&self, st: &State) {
        let groups = self.target_groups.lock().unwrap_or_else(|e| e.into_inner());
        for ((cluster, service), g) in groups.iter() {
            let Some(svc) = st
                .clusters
                .get(cluster)
                .and_then(|c| c.services.get(service))
            else {
                continue;
            };
            let Some(lb) = svc.load_balancers.as_array().and_then(|a| a.first()) else {
                continue;
            };
            let name = lb
                .get("containerName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let port = lb.get("containerPort").and_then(Value::as_u64).unwrap_or(0) as u16;
            let mut addrs: Vec<SocketAddr> = st
                .live_tasks(cluster, service)
                .filter(|t| {
                    t.last_status == "RUNNING"
                        && t.health_status != "UNHEALTHY"
                        && t.target_reachable
                })
                .filter(|t| {
                    let checked = t
                        .containers
                        .iter()
                        .any(|c| c.essential && c.has_health_check);
                    !checked || t.health_status == "HEALTHY"
                })
                .filter_map(|t| {
                    let c = t.containers.iter().find(|c| c.name == name)?;
                    let b = c
                        .bindings
                        .iter()
                        .find(|b| b.container_port == port && b.protocol == "tcp")?;
                    Some(SocketAddr::from(([127, 0, 0, 1], b.host_port)))
                })
                .collect();
            addrs.sort();
            *g.targets.lock().unwrap_or_else(|e| e.into_inner()) = addrs;
        }
    }

    /// The load-balancer port of a service, if it has one.
    pub fn lb_port(&self, cluster: &str, service: &str) -> Option<u16> {
        let groups = self.target_groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .get(&(cluster.to_owned(), service.to_owned()))
            .map(|g| g.port)
    }

    /// `[{cluster, service, lbPort, targets}]` for `GET /_emulator/services`.
    pub fn target_groups_json(&self) -> Value {
        // The state lock is taken before the target-group lock everywhere else: never both here.
        let services: Vec<(String, String)> = {
            let st = self.lock();
            st.clusters
                .values()
                .flat_map(|c| c.services.keys().map(|s| (c.name.clone(), s.clone())))
                .collect()
        };
        let groups = self.target_groups.lock().unwrap_or_else(|e| e.into_inner());
        let out: Vec<Value> = services
            .into_iter()
            .map(|(cluster, service)| {
                let g = groups.get(&(cluster.clone(), service.clone()));
                let targets: Vec<String> = g
                    .map(|g| g.targets.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|a| a.to_string()).collect())
                    .unwrap_or_default();
                json!({"cluster": cluster, "service": service, "lbPort": g.map(|g| g.port), "targets": targets})
            })
            .collect();
        Value::Array(out)
    }
}

async fn accept_loop(listener: TcpListener, targets: Arc<Mutex<Vec<SocketAddr>>>) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let candidates = targets.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let start = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(client, candidates, start));
    }
}

async fn forward(mut client: TcpStream, candidates: Vec<SocketAddr>, start: usize) {
    let n = candidates.len();
    for i in 0..n {
        let addr = candidates[(start + i) % n];
        let Ok(Ok(mut upstream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
        else {
            continue;
        };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    let _ = client
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
    let _ = client.shutdown().await;
}
