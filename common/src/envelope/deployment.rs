//! The `deployments[]` section: one rollout of one service, written by ecs-roll and
//! k8s-apply. The fields every platform shares are typed here; a platform's own fields sit
//! in its flattened part ([`EcsDeployment`], [`KubernetesDeployment`]); anything else stays
//! in `extra`.
//!
//! Field order is the order written: it is part of the stdout contract.

use super::kubernetes::{KubernetesDeployment, KubernetesFailure};
use super::{Outcome, Platform, is_false};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One rollout of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// `ecs` or `kubernetes`.
    pub platform: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How it ended, or where it stands.
    #[serde(default)]
    pub outcome: Outcome,
    /// Image references deployed, by digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Where the deployed service answers (`http://…`, `tcp://host:port`); health-wait
    /// checks these with `--from-deployments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// ECS's own fields (task definitions, deployment ids); empty on other platforms.
    #[serde(flatten)]
    pub ecs: EcsDeployment,
    /// When the tool started on this service (RFC 3339, seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it was done with it; absent while in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What the platform reported while the tool followed the rollout, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<DeploymentEvent>>,
    /// Why it failed, with what was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeploymentFailure>,
    /// The change a dry run would make, as a unified diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Kubernetes' own fields (context, namespaces, resources, applyset); empty on other
    /// platforms. Written after the shared ones, as k8s-apply always has.
    #[serde(flatten)]
    pub kubernetes: KubernetesDeployment,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The ECS part of a deployment (ecs-roll): all absent on other platforms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsDeployment {
    /// The task definition (ARN) this deployment put in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// The one the service ran before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
    /// The one it runs now (after a rollback, the previous one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_task_definition: Option<String>,
    /// Our deployment's id (`ecs-svc/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The id of the deployment that rolled it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
}

/// One event the platform reported (an ECS service event, a Kubernetes event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a deployment failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentFailure {
    /// One line.
    #[serde(default)]
    pub reason: String,
    /// Observations made while following.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<u32>,
    /// Of those, how many came after the first task stopped (how fast it was noticed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls_after_first_stopped_task: Option<u32>,
    /// The tasks of the new version that stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_tasks: Option<Vec<StoppedTask>>,
    /// Kubernetes' details (object, pod, container, exit code, logs); empty on ECS.
    #[serde(flatten)]
    pub kubernetes: KubernetesFailure,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DeploymentFailure {
    /// A failure known only by its reason.
    pub fn because(reason: impl Into<String>) -> DeploymentFailure {
        DeploymentFailure {
            reason: reason.into(),
            ..DeploymentFailure::default()
        }
    }
}

/// A task (pod) of the new version that stopped, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoppedTask {
    #[serde(default)]
    pub task_arn: String,
    #[serde(default)]
    pub stopped_reason: String,
    #[serde(default)]
    pub containers: Vec<StoppedContainer>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One container of a stopped task. Unknown exit codes and reasons are written as `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoppedContainer {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ecs-roll writes for a rolled-back deployment, in its order.
    const ROLLED_BACK: &str = r#"{"platform":"ecs","cluster":"dev","service":"api","outcome":"rolled_back","images":["r/api@sha256:1"],"endpoints":["http://x"],"task_definition":"arn:td/api:2","previous_task_definition":"arn:td/api:1","live_task_definition":"arn:td/api:1","deployment_id":"ecs-svc/1","rollback_deployment_id":"ecs-svc/2","started_at":"2026-11-29T04:00:00Z","finished_at":"2026-11-29T04:01:00Z","events":[{"created_at":"2026-11-29 04:00:10 +00:00","message":"has started 1 tasks"}],"failure":{"reason":"3 tasks stopped","polls":7,"polls_after_first_stopped_task":2,"stopped_tasks":[{"task_arn":"arn:task/1","stopped_reason":"Essential container exited","containers":[{"name":"app","exit_code":1,"reason":null}]}]},"future_field":{"x":1}}"#;

    #[test]
    fn an_ecs_deployment_decodes_into_typed_fields_and_re_encodes_byte_for_byte() {
        let d: Deployment = serde_json::from_str(ROLLED_BACK).unwrap();
        assert_eq!(d.platform, Platform::Ecs);
        assert_eq!(d.outcome, Outcome::RolledBack);
        assert_eq!(d.ecs.deployment_id.as_deref(), Some("ecs-svc/1"));
        assert_eq!(d.events.as_ref().map(Vec::len), Some(1));
        let failure = d.failure.as_ref().unwrap();
        assert_eq!(failure.polls_after_first_stopped_task, Some(2));
        assert_eq!(
            failure.stopped_tasks.as_ref().unwrap()[0].containers[0].exit_code,
            Some(1)
        );
        assert_eq!(d.extra.keys().collect::<Vec<_>>(), ["future_field"]);
        assert_eq!(serde_json::to_string(&d).unwrap(), ROLLED_BACK);
    }

    #[test]
    fn another_platforms_deployment_keeps_its_own_fields() {
        let text = r#"{"platform":"kubernetes","cluster":"staging","outcome":"paused","namespaces":["shop"]}"#;
        let d: Deployment = serde_json::from_str(text).unwrap();
        assert_eq!(d.ecs, EcsDeployment::default());
        assert_eq!(d.outcome, Outcome::Other("paused".into()));
        assert_eq!(serde_json::to_string(&d).unwrap(), text);
    }
}
