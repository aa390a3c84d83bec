//! The `deployments[]` entry of one apply ([`Deployment`] with `platform: kubernetes`), kept
//! current while it runs so that an interrupt writes what is known.
//!
//! The fields every platform shares are common's typed ones; Kubernetes' own (`context`,
//! `namespaces`, `resources`) and the failure's pod details are written in their `extra`.

use crate::cluster::Cluster;
use crate::plan::{Action, Plan, Step};
use crate::wait::WorkloadFailure;
use common::envelope::{Deployment, DeploymentFailure, Outcome, Platform};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::SystemTime;

/// One object of the apply, as `resources[]` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceEntry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `created`, `configured` or `unchanged`.
    pub action: String,
    #[serde(default)]
    pub outcome: Outcome,
    /// `metadata.generation` after the apply, for kinds that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl ResourceEntry {
    fn of(step: &Step, dry_run: bool) -> ResourceEntry {
        let outcome = match (step.action, dry_run) {
            (Action::Unchanged, _) => Outcome::Unchanged,
            (_, true) => Outcome::Planned,
            (_, false) => Outcome::InProgress,
        };
        ResourceEntry {
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
}

/// The entry of an apply about to start: `in_progress` (`planned` or `unchanged` for a dry
/// run), every object with its action, the images substituted.
pub fn start(cluster: &Cluster, plan: &Plan, dry_run: bool) -> Deployment {
    let resources: Vec<ResourceEntry> = plan
        .steps
        .iter()
        .map(|s| ResourceEntry::of(s, dry_run))
        .collect();
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
    let mut extra = Map::new();
    extra.insert("context".into(), json!(cluster.context));
    extra.insert("namespaces".into(), json!(plan.namespaces()));
    extra.insert("resources".into(), json!(resources));
    Deployment {
        platform: Platform::Kubernetes,
        cluster: Some(cluster.name.clone()),
        outcome,
        images,
        dry_run,
        started_at: Some(now()),
        finished_at: (dry_run || all_unchanged).then(now),
        diff: (dry_run && !diff.is_empty()).then_some(diff),
        extra,
        ..Deployment::default()
    }
}

/// The `resources[]` of `entry`.
pub fn resources(entry: &Deployment) -> Vec<ResourceEntry> {
    entry
        .extra
        .get("resources")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Replaces the `resources[]` of `entry`.
pub fn set_resources(entry: &mut Deployment, resources: &[ResourceEntry]) {
    entry.extra.insert("resources".into(), json!(resources));
}

/// Records the applyset's id and what was (or, in a dry run, would be) pruned from it.
pub fn set_pruned(entry: &mut Deployment, id: &str, pruned: &[String]) {
    entry.extra.insert("applyset".into(), json!(id));
    entry.extra.insert("pruned".into(), json!(pruned));
}

/// Ends the entry with `outcome`.
pub fn finish(entry: &mut Deployment, outcome: Outcome) {
    entry.outcome = outcome;
    entry.finished_at = Some(now());
}

/// The failure section: `reason` (the pod's or the workload's), then where and what.
pub fn failure(f: &WorkloadFailure) -> DeploymentFailure {
    let mut extra = Map::new();
    extra.insert("resource".into(), json!(f.resource));
    if let Some(pod) = &f.pod {
        extra.insert("pod".into(), json!(pod));
    }
    if let Some(container) = &f.container {
        extra.insert("container".into(), json!(container));
    }
    extra.insert("message".into(), json!(f.message));
    if let Some(code) = f.exit_code {
        extra.insert("exit_code".into(), json!(code));
    }
    if !f.logs.is_empty() {
        extra.insert("logs".into(), json!(f.logs));
    }
    DeploymentFailure {
        reason: f.reason.clone(),
        extra,
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
        "Service" => {
            let ports: Vec<i64> = live
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_i64())
                .collect();
            addresses
                .iter()
                .flat_map(|(address, _)| {
                    ports
                        .iter()
                        .map(move |port| format!("tcp://{address}:{port}"))
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn ingress_endpoints(live: &Value, addresses: &[(String, Vec<i64>)]) -> Vec<String> {
    let tls = live
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let mut paths: Vec<String> = live
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|rule| {
            rule.pointer("/http/paths")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["path"].as_str().map(str::to_owned))
        .collect();
    if paths.is_empty() {
        paths.push("/".into());
    }
    let mut endpoints = Vec::new();
    for (address, ports) in addresses {
        let hosts: Vec<String> = match ports.as_slice() {
            [] => vec![address.clone()],
            ports => ports.iter().map(|p| format!("{address}:{p}")).collect(),
        };
        for host in hosts {
            for path in &paths {
                let scheme = if tls { "https" } else { "http" };
                let url = format!("{scheme}://{host}{path}");
                if !endpoints.contains(&url) {
                    endpoints.push(url);
                }
            }
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
        let service = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}});
        assert_eq!(
            endpoints_of("Service", &service),
            ["tcp://10.0.0.9:80", "tcp://10.0.0.9:443"]
        );
        assert!(endpoints_of("Service", &json!({"spec": {"ports": [{"port": 80}]}})).is_empty());
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
