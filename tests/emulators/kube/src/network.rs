//! Service ports on the loopback interface: every port of every Service with a selector gets
//! a loopback port (from `--service-ports`) that forwards TCP connections, round robin, to the
//! Service's *ready* pods only (their bridge IP and `targetPort`). The port is reported in the
//! Service's `status.loadBalancer.ingress` and by `GET /_emulator/services`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::resources;
use crate::selectors;
use crate::store::{Cluster, WriteOptions};

/// `(cluster, namespace, service, service port)`.
type Key = (String, String, String, i64);

struct Forwarder {
    port: u16,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Every Service port's forwarder.
pub struct Network {
    range: (u16, u16),
    forwarders: Mutex<BTreeMap<Key, Forwarder>>,
    albs: crate::ingress::Albs,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A Service port's `targetPort` in `pod`: a number, or a named container port.
pub fn target_port(service_port: &Value, pod: &Value) -> Option<u16> {
    let target = service_port
        .get("targetPort")
        .unwrap_or(&service_port["port"]);
    match target {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name.as_str())?["containerPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok()),
        _ => None,
    }
}

fn has_selector(svc: &Value) -> bool {
    svc["spec"]["selector"]
        .as_object()
        .is_some_and(|s| !s.is_empty())
}

/// Whether the pod is Ready and has an IP: a possible backend.
fn serving(pod: &Value) -> bool {
    pod["status"]["podIP"].is_string()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The ready pods' addresses behind one port of `svc`.
pub fn backends(svc: &Value, service_port: &Value, pods: &[Value]) -> Vec<SocketAddr> {
    let Some(selector) = svc["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let reqs: Vec<selectors::Requirement> = selector
        .iter()
        .map(|(k, v)| selectors::Requirement::Equals(k.clone(), text(v).to_owned()))
        .collect();
    pods.iter()
        .filter(|p| selectors::labels_match(&reqs, p["metadata"].get("labels")))
        .filter(|p| serving(p))
        .filter_map(|p| {
            let ip = p["status"]["podIP"].as_str()?.parse().ok()?;
            Some(SocketAddr::new(ip, target_port(service_port, p)?))
        })
        .collect()
}

impl Network {
    pub fn new(range: (u16, u16)) -> Self {
        Network {
            range,
            forwarders: Mutex::new(BTreeMap::new()),
            albs: Default::default(),
        }
    }

    /// `[{cluster, loopbackPort}]`: each cluster's Ingress (ALB) port.
    pub fn ingress_listing(&self) -> Value {
        self.albs.listing()
    }

    /// `[{cluster, namespace, service, port, loopbackPort, backends}]`.
    pub fn listing(&self) -> Value {
        let f = self.forwarders.lock().unwrap_or_else(|e| e.into_inner());
        json!(f
            .iter()
            .map(|((c, ns, svc, port), fw)| json!({
                "cluster": c, "namespace": ns, "service": svc, "port": port, "loopbackPort": fw.port,
                "backends": fw.backends.lock().unwrap_or_else(|e| e.into_inner()).iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>())
    }

    /// One pass over `clusters`: forwarders opened, pointed at the ready pods, closed with their
    /// Service; each Service's status shows its loopback ports.
    pub async fn sync(&self, clusters: &[Arc<Cluster>]) {
        let svc_type = resources::by_kind("v1", "Service").expect("built in");
        let pod_type = resources::by_kind("v1", "Pod").expect("built in");
        let mut seen = Vec::new();
        for c in clusters {
            for svc in c.list(svc_type, "", &|_| true, None, None).items {
                let ns = text(&svc["metadata"]["namespace"]).to_owned();
                let name = text(&svc["metadata"]["name"]).to_owned();
                // Only the pods that can serve are copied (every Service, every tick).
                let pods = if has_selector(&svc) {
                    c.list(pod_type, &ns, &serving, None, None).items
                } else {
                    Vec::new()
                };
                let mut ports = Vec::new();
                for sp in svc["spec"]["ports"].as_array().cloned().unwrap_or_default() {
                    let key = (
                        c.name.clone(),
                        ns.clone(),
                        name.clone(),
                        sp["port"].as_i64().unwrap_or(0),
                    );
                    let Some(port) = self.ensure(&key, backends(&svc, &sp, &pods)).await else {
                        continue;
                    };
                    ports.push(
                        json!({"port": port, "protocol": sp["protocol"].as_str().unwrap_or("TCP")}),
                    );
                    seen.push(key);
                }
                let status = if ports.is_empty() {
                    json!({"loadBalancer": {}})
                } else {
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP", "ports": ports}]}})
                };
                if svc["status"] != status {
                    let opts = WriteOptions {
                        dry_run: false,
                        manager: "kube-emulator-network".into(),
                        subresource: "status".into(),
                    };
                    let _ = c.modify(svc_type, &ns, &name, &opts, &|live| {
                        let mut s = live
                            .cloned()
                            .ok_or_else(|| crate::status::ApiError::bad_request("gone"))?;
                        s["status"] = status.clone();
                        Ok(s)
                    });
                }
            }
        }
        for c in clusters {
            self.sync_ingresses(c).await;
        }
        let mut f = self.forwarders.lock().unwrap_or_else(|e| e.into_inner());
        f.retain(|k, fw| {
            let keep = seen.contains(k);
            if !keep {
                fw.task.abort();
            }
            keep
        });
    }

    /// The cluster's ALB port routing to its Ingresses' backends; each Ingress's status shows it.
    async fn sync_ingresses(&self, c: &Cluster) {
        let ing_type = resources::by_kind("networking.k8s.io/v1", "Ingress").expect("built in");
        let svc_type = resources::by_kind("v1", "Service").expect("built in");
        let ingresses = c.list(ing_type, "", &|_| true, None, None).items;
        let lookup = |ns: &str, svc: &str, port: &Value| -> Option<u16> {
            let number = match port.get("number").and_then(Value::as_i64) {
                Some(n) => n,
                None => {
                    let name = port["name"].as_str()?;
                    let s = c.get(svc_type, ns, svc).ok()?;
                    s["spec"]["ports"]
                        .as_array()?
                        .iter()
                        .find(|p| p["name"] == name)?["port"]
                        .as_i64()?
                }
            };
            let f = self.forwarders.lock().unwrap_or_else(|e| e.into_inner());
            f.get(&(c.name.clone(), ns.to_owned(), svc.to_owned(), number))
                .map(|fw| fw.port)
        };
        let routes = crate::ingress::routes(&ingresses, &lookup);
        let taken: Vec<u16> = self
            .forwarders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|f| f.port)
            .collect();
        let port = self
            .albs
            .set(&c.name, !ingresses.is_empty(), routes, self.range, &taken)
            .await;
        for ing in ingresses {
            let status = match port {
                Some(p) => {
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": p, "protocol": "TCP"}]}]}})
                }
                None => json!({"loadBalancer": {}}),
            };
            if ing["status"] != status {
                let opts = WriteOptions {
                    dry_run: false,
                    manager: "kube-emulator-network".into(),
                    subresource: "status".into(),
                };
                let (ns, name) = (
                    text(&ing["metadata"]["namespace"]).to_owned(),
                    text(&ing["metadata"]["name"]).to_owned(),
                );
                let _ = c.modify(ing_type, &ns, &name, &opts, &|live| {
                    let mut s = live
                        .cloned()
                        .ok_or_else(|| crate::status::ApiError::bad_request("gone"))?;
                    s["status"] = status.clone();
                    Ok(s)
                });
            }
        }
    }

    /// The forwarder of `key` (opened on the first free port of the range when new), now
    /// sending to `backends`; None when the range is exhausted.
    async fn ensure(&self, key: &Key, backends: Vec<SocketAddr>) -> Option<u16> {
        {
            let f = self.forwarders.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(fw) = f.get(key) {
                *fw.backends.lock().unwrap_or_else(|e| e.into_inner()) = backends;
                return Some(fw.port);
            }
        }
        let mut used: Vec<u16> = self
            .forwarders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|f| f.port)
            .collect();
        used.extend(self.albs.ports());
        for port in self.range.0..=self.range.1 {
            if used.contains(&port) {
                continue;
            }
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await else {
                continue;
            };
            let shared = Arc::new(Mutex::new(backends));
            let task = tokio::spawn(forward(listener, shared.clone()));
            tracing::info!(
                "service {}/{}/{} port {}: 127.0.0.1:{port}",
                key.0,
                key.1,
                key.2,
                key.3
            );
            self.forwarders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    key.clone(),
                    Forwarder {
                        port,
                        backends: shared,
                        task,
                    },
                );
            return Some(port);
        }
        tracing::warn!(
            "no free loopback port left in {}-{}",
            self.range.0,
            self.range.1
        );
        None
    }
}

/// Accepts connections and splices each to the next backend (none ready: closed at once, as
/// a Service without endpoints refuses).
async fn forward(listener: TcpListener, backends: Arc<Mutex<Vec<SocketAddr>>>) {
    let next = AtomicUsize::new(0);
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = {
            let b = backends.lock().unwrap_or_else(|e| e.into_inner());
            (!b.is_empty()).then(|| b[next.fetch_add(1, Ordering::Relaxed) % b.len()])
        };
        let Some(target) = target else {
            drop(inbound);
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_selected_pods_are_backends_on_their_target_port() {
        let svc = json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}});
        let pod = |app: &str, ip: &str, ready: &str| {
            json!({
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]},
            })
        };
        let pods = [
            pod("web", "172.17.0.2", "True"),
            pod("web", "172.17.0.3", "False"),
            pod("db", "172.17.0.4", "True"),
        ];
        let b = backends(&svc, &svc["spec"]["ports"][0], &pods);
        assert_eq!(b, vec!["172.17.0.2:8080".parse::<SocketAddr>().unwrap()]);
        let no_selector = json!({"spec": {"ports": [{"port": 80}]}});
        assert!(backends(&no_selector, &no_selector["spec"]["ports"][0], &pods).is_empty());
    }
}
