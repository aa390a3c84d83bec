//! The `deployments[]` entry of one apply ([`Deployment`] with `platform: kubernetes`), kept
//! current while it runs so that an interrupt writes what is known.
//!
//! The fields every platform shares are common's typed ones; Kubernetes' own (`context`,
//! `namespaces`, `resources`, `applyset`, `pruned`) are common's [`KubernetesDeployment`], the
//! failure's pod details its [`KubernetesFailure`].

use crate::cluster::Cluster;
use crate::plan::{Action, Plan, Step};
use crate::wait::WorkloadFailure;
use common::envelope::{
    Deployment, DeploymentFailure, KubernetesDeployment, KubernetesFailure, KubernetesResource,
    Outcome, Platform,
};
use serde_json::Value;
use std::time::SystemTime;

/// The entry of one step (pure): its action, and `unchanged`, `planned` (dry run) or
/// `in_progress` as its outcome.
fn resource_of(step: &Step, dry_run: bool) -> KubernetesResource {
    let outcome = match (step.action, dry_run) {
        (Action::Unchanged, _) => Outcome::Unchanged,
        (_, true) => Outcome::Planned,
        (_, false) => Outcome::InProgress,
    };
    KubernetesResource {
        api_version: step.manifest.api_version().to_owned(),
        kind: step.kind().to_owned(),
        namespace: step.target.namespace.clone(),
        name: step.target.name.clone(),
        action: step.action.as_str().to_owned(),
        outcome,
        generation: step
            .would_be
            .pointer("/metadata/generation")
            .and_then(Value::as_i64),
        images: crate::images::images_of(step.kind(), &step.manifest.object),
    }
}

/// The entry of an apply about to start: `in_progress` (`planned` or `unchanged` for a dry
/// run), every object with its action, the images substituted.
pub fn start(cluster: &Cluster, plan: &Plan, dry_run: bool) -> Deployment {
    let resources: Vec<KubernetesResource> =
        plan.steps.iter().map(|s| resource_of(s, dry_run)).collect();
    let all_unchanged = plan.steps.iter().all(|s| s.action == Action::Unchanged);
    let outcome = match (dry_run, all_unchanged) {
        (_, true) => Outcome::Unchanged,
        (true, false) => Outcome::Planned,
        (false, false) => Outcome::InProgress,
    };
    let mut images: Vec<String> = Vec::new();
    for r in &plan.substitution.replaced {
        if !images.contains(&r.to) {
            images.push(r.to.clone());
        }
    }
    let diff: String = plan.steps.iter().map(|s| s.diff.as_str()).collect();
    Deployment {
        platform: Platform::Kubernetes,
        cluster: Some(cluster.name.clone()),
        outcome,
        images,
        dry_run,
        started_at: Some(now()),
        finished_at: (dry_run || all_unchanged).then(now),
        diff: (dry_run && !diff.is_empty()).then_some(diff),
        kubernetes: KubernetesDeployment {
            context: Some(cluster.context.clone()),
            namespaces: Some(plan.namespaces()),
            resources: Some(resources),
            ..KubernetesDeployment::default()
        },
        ..Deployment::default()
    }
}

/// The `resources[]` of `entry`.
pub fn resources(entry: &Deployment) -> Vec<KubernetesResource> {
    entry.kubernetes.resources.clone().unwrap_or_default()
}

/// Replaces the `resources[]` of `entry`.
pub fn set_resources(entry: &mut Deployment, resources: &[KubernetesResource]) {
    entry.kubernetes.resources = Some(resources.to_vec());
}

/// Records the applyset's id and what was (or, in a dry run, would be) pruned from it.
pub fn set_pruned(entry: &mut Deployment, id: &str, pruned: &[String]) {
    entry.kubernetes.applyset = Some(id.to_owned());
    entry.kubernetes.pruned = Some(pruned.to_vec());
}

/// Ends the entry with `outcome`.
pub fn finish(entry: &mut Deployment, outcome: Outcome) {
    entry.outcome = outcome;
    entry.finished_at = Some(now());
}

/// The failure section: `reason` (the pod's or the workload's), then where and what.
pub fn failure(f: &WorkloadFailure) -> DeploymentFailure {
    DeploymentFailure {
        reason: f.reason.clone(),
        kubernetes: KubernetesFailure {
            resource: Some(f.resource.clone()),
            pod: f.pod.clone(),
            container: f.container.clone(),
            message: Some(f.message.clone()),
            exit_code: f.exit_code,
            logs: f.logs.clone(),
            rollback: None,
        },
        ..DeploymentFailure::default()
    }
}

/// Where a live Ingress or LoadBalancer Service answers, from its `status.loadBalancer`
/// (pure): `http(s)://address[:port]/path` per Ingress path, `tcp://address:port` per
/// Service port.
pub fn endpoints_of(kind: &str, live: &Value) -> Vec<String> {
    let addresses: Vec<(String, Vec<i64>)> = live
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|lb| {
            let address = lb["hostname"].as_str().or(lb["ip"].as_str())?.to_owned();
            let ports = lb["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_i64())
                .collect();
            Some((address, ports))
        })
        .collect();
    match kind {
        "Ingress" => ingress_endpoints(live, &addresses),
        // Only a LoadBalancer Service is reached from outside; a ClusterIP one's address (which
        // the local emulator also lists, for its own loopback ports) is not an endpoint.
        "Service" if !is_load_balancer(live) => Vec::new(),
        "Service" => {
            let spec_ports: Vec<i64> = live
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_i64())
                .collect();
            // The ports the load balancer lists are where it listens (a cloud's: the Service's
            // ports; the emulator's: loopback ports of its own); else the Service's.
            addresses
                .iter()
                .flat_map(|(address, listed)| {
                    let ports = match listed.is_empty() {
                        true => spec_ports.clone(),
                        false => listed.clone(),
                    };
                    ports
                        .into_iter()
                        .map(move |port| format!("tcp://{address}:{port}"))
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `live` (an Ingress, or a Service of type LoadBalancer) is still waiting for its
/// load balancer's address (pure).
pub fn awaits_address(kind: &str, live: &Value) -> bool {
    let balanced = match kind {
        "Ingress" => true,
        "Service" => is_load_balancer(live),
        _ => false,
    };
    let addressed = live
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    balanced && !addressed
}

fn is_load_balancer(service: &Value) -> bool {
    service.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
}

/// An Ingress's endpoints: a rule with a host answers at `scheme://host/path` — the URL its
/// users call, which DNS points at the load balancer; the balancer's own address would get
/// its default action, not the rule (an ALB with host rules answers 404 there). Rules without
/// a host (or with a wildcard one, which cannot be called) answer at the balancer's address.
fn ingress_endpoints(live: &Value, addresses: &[(String, Vec<i64>)]) -> Vec<String> {
    let tls = live
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let scheme = if tls { "https" } else { "http" };
    let rules: Vec<(Option<&str>, Vec<&str>)> = live
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|rule| {
            let host = rule["host"]
                .as_str()
                .filter(|h| !h.is_empty() && !h.starts_with('*'));
            let paths = rule
                .pointer("/http/paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p["path"].as_str())
                .collect();
            (host, paths)
        })
        .collect();
    let balancer_hosts: Vec<String> = addresses
        .iter()
        .flat_map(|(address, ports)| match ports.as_slice() {
            [] => vec![address.clone()],
            ports => ports.iter().map(|p| format!("{address}:{p}")).collect(),
        })
        .collect();
    let mut endpoints = Vec::new();
    let mut add = |url: String| {
        if !endpoints.contains(&url) {
            endpoints.push(url);
        }
    };
    let hostless = rules.iter().filter(|(host, _)| host.is_none());
    let mut hostless_paths: Vec<&str> = hostless.flat_map(|(_, paths)| paths.clone()).collect();
    if rules.is_empty() {
        hostless_paths.push("/"); // only a defaultBackend
    }
    for (host, paths) in &rules {
        let Some(host) = host else { continue };
        let paths = if paths.is_empty() {
            vec!["/"]
        } else {
            paths.clone()
        };
        for path in paths {
            add(format!("{scheme}://{host}{path}"));
        }
    }
    for host in &balancer_hosts {
        for path in &hostless_paths {
            add(format!("{scheme}://{host}{path}"));
        }
    }
    endpoints
}

/// Now, as RFC 3339 to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_come_from_the_load_balancer_status() {
        let ingress = json!({"spec": {"rules": [{"http": {"paths": [{"path": "/auth"}, {"path": "/api"}]}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 18080, "protocol": "TCP"}]}]}}});
        assert_eq!(
            endpoints_of("Ingress", &ingress),
            ["http://127.0.0.1:18080/auth", "http://127.0.0.1:18080/api"]
        );
        let tls = json!({"spec": {"tls": [{"hosts": ["x"]}]}, "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}});
        assert_eq!(endpoints_of("Ingress", &tls), ["https://lb.example.com/"]);
        // A host rule is called by its host (DNS points it at the balancer), not at the
        // balancer's address, which answers its default action; a wildcard host cannot be.
        let hosts = json!({"spec": {"rules": [
                {"host": "staging.shop.example", "http": {"paths": [{"path": "/auth"}, {"path": "/"}]}},
                {"host": "*.shop.example", "http": {"paths": [{"path": "/any"}]}}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-shop-1.eu-west-1.elb.amazonaws.com"}]}}});
        assert_eq!(
            endpoints_of("Ingress", &hosts),
            [
                "http://staging.shop.example/auth",
                "http://staging.shop.example/",
                "http://k8s-shop-1.eu-west-1.elb.amazonaws.com/any"
            ]
        );
        let service = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}});
        assert_eq!(
            endpoints_of("Service", &service),
            ["tcp://10.0.0.9:80", "tcp://10.0.0.9:443"]
        );
        assert!(endpoints_of("Service", &json!({"spec": {"ports": [{"port": 80}]}})).is_empty());
        // The emulator's load balancer listens on loopback ports of its own, which it lists.
        let listed = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 19025, "protocol": "TCP"}]}]}}});
        assert_eq!(endpoints_of("Service", &listed), ["tcp://127.0.0.1:19025"]);
        // A ClusterIP Service is not reached from outside, whatever its status lists.
        let cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 19026, "protocol": "TCP"}]}]}}});
        assert!(endpoints_of("Service", &cluster_ip).is_empty());
    }

    #[test]
    fn ingresses_and_load_balancer_services_await_an_address_other_services_do_not() {
        let pending = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert!(awaits_address("Service", &pending));
        assert!(awaits_address("Ingress", &json!({"spec": {}})));
        assert!(!awaits_address(
            "Service",
            &json!({"spec": {"type": "ClusterIP"}})
        ));
        let addressed = json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb"}]}}});
        assert!(!awaits_address("Ingress", &addressed));
    }

    #[test]
    fn a_failure_carries_the_pod_container_exit_code_and_logs() {
        let f = WorkloadFailure {
            resource: "Deployment shop/api".into(),
            reason: "CrashLoopBackOff".into(),
            message: "back-off 20s".into(),
            pod: Some("api-1".into()),
            container: Some("app".into()),
            exit_code: Some(3),
            logs: vec!["boom".into()],
        };
        let text = serde_json::to_string(&failure(&f)).unwrap();
        assert_eq!(
            text,
            r#"{"reason":"CrashLoopBackOff","resource":"Deployment shop/api","pod":"api-1","container":"app","message":"back-off 20s","exit_code":3,"logs":["boom"]}"#
        );
    }
}
