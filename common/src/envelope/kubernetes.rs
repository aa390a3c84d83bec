//! The Kubernetes part of a `deployments[]` entry (k8s-apply): the kubeconfig context, the
//! namespaces, every object applied, the applyset and what it pruned; and the Kubernetes
//! details of a failure (pod, container, exit code, logs). All absent on other platforms.
//!
//! Field order is the order written: it is part of the stdout contract.

use super::Outcome;
use serde::{Deserialize, Serialize};

/// The Kubernetes part of a deployment, flattened into [`super::Deployment`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesDeployment {
    /// The kubeconfig context used (`eks:<cluster>` with `--eks-cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The namespaces of the objects, each once, in apply order. Written even when empty
    /// (only cluster-scoped objects), so that it is absent only on other platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Every object of the apply, in apply order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<KubernetesResource>>,
    /// `--prune --applyset`: the applyset's id (`applyset-…-v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applyset: Option<String>,
    /// The former members of the applyset deleted (in a dry run: that would be), as
    /// `Kind namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<Vec<String>>,
}

/// One object of an apply, as `resources[]` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesResource {
    pub api_version: String,
    pub kind: String,
    /// Absent for cluster-scoped kinds.
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
    /// The images of its pod template, for workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// The Kubernetes details of a failure, flattened into [`super::DeploymentFailure`] after its
/// `reason`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesFailure {
    /// The object that failed, `Kind namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The pod whose state decided the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What the pod, the workload or the API said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last exit code of a crashing container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last log lines of a crashing container's previous run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// When the rollback failed too: what is left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::{Deployment, EcsDeployment, Platform};
    use super::*;

    /// What k8s-apply writes for a crash rolled back, then failing to roll back, with an
    /// applyset and a field from a newer tool, in its order.
    const ROLLBACK_FAILED: &str = r#"{"platform":"kubernetes","cluster":"staging","outcome":"rollback_failed","images":["r/api@sha256:1"],"endpoints":["http://127.0.0.1:18080/"],"started_at":"2026-11-29T04:00:00Z","finished_at":"2026-11-29T04:01:00Z","failure":{"reason":"CrashLoopBackOff","resource":"Deployment shop/api","pod":"api-1","container":"app","message":"back-off 20s","exit_code":3,"logs":["boom"],"rollback":"Deployment shop/api: not restored"},"context":"staging","namespaces":["shop"],"resources":[{"api_version":"v1","kind":"Namespace","name":"shop","action":"created","outcome":"failed"},{"api_version":"apps/v1","kind":"Deployment","namespace":"shop","name":"api","action":"configured","outcome":"failed","generation":2,"images":["r/api@sha256:1"]}],"applyset":"applyset-x-v1","pruned":[],"future_field":{"x":1}}"#;

    /// A dry run: only cluster-scoped objects (`namespaces` empty but written), a diff.
    const DRY_RUN: &str = r#"{"platform":"kubernetes","cluster":"production","outcome":"planned","dry_run":true,"started_at":"2026-11-29T04:00:00Z","finished_at":"2026-11-29T04:00:00Z","diff":"--- a\n+++ b\n","context":"eks:production","namespaces":[],"resources":[{"api_version":"v1","kind":"Namespace","name":"shop","action":"created","outcome":"planned"}]}"#;

    #[test]
    fn a_kubernetes_deployment_decodes_into_typed_fields_and_re_encodes_byte_for_byte() {
        let d: Deployment = serde_json::from_str(ROLLBACK_FAILED).unwrap();
        assert_eq!(d.platform, Platform::Kubernetes);
        assert_eq!(d.ecs, EcsDeployment::default());
        let k = &d.kubernetes;
        assert_eq!(k.context.as_deref(), Some("staging"));
        assert_eq!(k.namespaces.as_deref(), Some(&["shop".to_owned()][..]));
        let resources = k.resources.as_ref().unwrap();
        assert_eq!(resources[1].generation, Some(2));
        assert_eq!(resources[1].outcome, Outcome::Failed);
        assert_eq!(k.pruned.as_deref(), Some(&[][..]));
        let failure = &d.failure.as_ref().unwrap().kubernetes;
        assert_eq!(failure.exit_code, Some(3));
        assert_eq!(failure.logs, ["boom"]);
        assert!(failure.rollback.is_some());
        assert_eq!(d.extra.keys().collect::<Vec<_>>(), ["future_field"]);
        assert!(d.failure.as_ref().unwrap().extra.is_empty());
        assert_eq!(serde_json::to_string(&d).unwrap(), ROLLBACK_FAILED);

        let d: Deployment = serde_json::from_str(DRY_RUN).unwrap();
        assert_eq!(d.kubernetes.namespaces, Some(Vec::new()));
        assert_eq!(serde_json::to_string(&d).unwrap(), DRY_RUN);
    }

    #[test]
    fn an_ecs_deployment_has_no_kubernetes_fields() {
        let d = Deployment {
            platform: Platform::Ecs,
            ..Deployment::default()
        };
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text, r#"{"platform":"ecs","outcome":""}"#);
    }
}
