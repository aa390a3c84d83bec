//! Whether a workload has rolled out, decided exactly as `kubectl rollout status` decides it
//! (kubectl's `polymorphichelpers/rollout_status.go`), plus Jobs until `Complete` or `Failed`
//! (pure: an observed object in, a [`Verdict`] out).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;

/// What one observation of a workload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not there yet; the line says how far it is.
    Progressing(String),
    /// Rolled out (or the Job completed).
    Done(String),
    /// It will not roll out: `(reason, message)`.
    Failed(String, String),
    /// kubectl cannot judge it either (an `OnDelete` update strategy): not waited for.
    NotJudged(String),
}

/// The verdict on `object`, a live object of `kind` (one of [`crate::order::is_workload`]'s).
pub fn judge(kind: &str, object: &Value) -> Verdict {
    fn typed<T: serde::de::DeserializeOwned>(object: &Value) -> Result<T, Verdict> {
        serde_json::from_value(object.clone())
            .map_err(|e| Verdict::NotJudged(format!("cannot read its status: {e}")))
    }
    let verdict = match kind {
        "Deployment" => typed(object).map(|d| deployment(&d)),
        "StatefulSet" => typed(object).map(|s| stateful_set(&s)),
        "DaemonSet" => typed(object).map(|d| daemon_set(&d)),
        "Job" => typed(object).map(|j| job(&j)),
        other => Err(Verdict::NotJudged(format!("{other} does not roll out"))),
    };
    verdict.unwrap_or_else(|v| v)
}

/// kubectl's `DeploymentStatusViewer`.
pub fn deployment(d: &Deployment) -> Verdict {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Verdict::Progressing(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let deadline_exceeded = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(condition) = deadline_exceeded {
        return Verdict::Failed(
            "ProgressDeadlineExceeded".into(),
            condition
                .message
                .clone()
                .unwrap_or_else(|| "exceeded its progress deadline".into()),
        );
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let wanted = d.spec.as_ref().and_then(|s| s.replicas);
    if let Some(wanted) = wanted.filter(|w| updated < *w) {
        return Verdict::Progressing(format!("{updated} of {wanted} new replicas updated"));
    }
    if replicas > updated {
        return Verdict::Progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Verdict::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Verdict::Done(format!("{updated} of {updated} updated replicas available"))
}

/// kubectl's `StatefulSetStatusViewer`.
pub fn stateful_set(s: &StatefulSet) -> Verdict {
    let spec = s.spec.clone().unwrap_or_default();
    let strategy = spec.update_strategy.unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Verdict::NotJudged(
            "rollout status is only available for the RollingUpdate strategy".into(),
        );
    }
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Verdict::Progressing(
            "waiting for the statefulset spec update to be observed".into(),
        );
    }
    let ready = status.ready_replicas.unwrap_or(0);
    if let Some(wanted) = spec.replicas.filter(|w| ready < *w) {
        return Verdict::Progressing(format!("waiting for {} pods to be ready", wanted - ready));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(rolling) = strategy.rolling_update {
        if let (Some(replicas), Some(partition)) = (spec.replicas, rolling.partition) {
            let due = replicas - partition;
            if updated < due {
                return Verdict::Progressing(format!("{updated} of {due} new pods updated"));
            }
        }
        return Verdict::Done(format!(
            "partitioned roll out complete: {updated} new pods updated"
        ));
    }
    let revision = status.update_revision.unwrap_or_default();
    if Some(&revision) != status.current_revision.as_ref() {
        return Verdict::Progressing(format!(
            "waiting for the rolling update to complete: {updated} pods at revision {revision}"
        ));
    }
    Verdict::Done(format!(
        "rolling update complete: {updated} pods at revision {revision}"
    ))
}

/// kubectl's `DaemonSetStatusViewer`.
pub fn daemon_set(d: &DaemonSet) -> Verdict {
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.clone())
        .unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Verdict::NotJudged(
            "rollout status is only available for the RollingUpdate strategy".into(),
        );
    }
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Verdict::Progressing(
            "waiting for the daemon set spec update to be observed".into(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        return Verdict::Progressing(format!("{updated} of {desired} new pods updated"));
    }
    let available = status.number_available.unwrap_or(0);
    if available < desired {
        return Verdict::Progressing(format!("{available} of {desired} updated pods available"));
    }
    Verdict::Done(format!("{available} of {desired} updated pods available"))
}

/// A Job: done at its `Complete` condition, failed at its `Failed` one.
pub fn job(j: &Job) -> Verdict {
    let status = j.status.clone().unwrap_or_default();
    let holds = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if let Some(failed) = holds("Failed") {
        return Verdict::Failed(
            failed.reason.clone().unwrap_or_else(|| "Failed".into()),
            failed
                .message
                .clone()
                .unwrap_or_else(|| "the job failed".into()),
        );
    }
    if holds("Complete").is_some() {
        return Verdict::Done(format!(
            "completed ({} succeeded)",
            status.succeeded.unwrap_or(0)
        ));
    }
    Verdict::Progressing(format!(
        "{} active, {} succeeded, {} failed",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn progressing(v: Verdict) -> String {
        match v {
            Verdict::Progressing(line) => line,
            other => panic!("expected progressing, got {other:?}"),
        }
    }

    #[test]
    fn a_deployment_waits_for_its_generation_then_updated_old_and_available_replicas() {
        let d = |generation: i64, observed: i64, status: Value| {
            let mut status = status;
            status["observedGeneration"] = json!(observed);
            judge(
                "Deployment",
                &json!({"metadata": {"generation": generation}, "spec": {"replicas": 3,
                  "selector": {}, "template": {}}, "status": status}),
            )
        };
        assert!(progressing(d(2, 1, json!({}))).contains("spec update"));
        assert_eq!(
            progressing(d(2, 2, json!({"replicas": 4, "updatedReplicas": 1}))),
            "1 of 3 new replicas updated"
        );
        assert_eq!(
            progressing(d(2, 2, json!({"replicas": 4, "updatedReplicas": 3}))),
            "1 old replicas pending termination"
        );
        assert_eq!(
            progressing(d(
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 1})
            )),
            "1 of 3 updated replicas available"
        );
        assert!(matches!(
            d(
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
            ),
            Verdict::Done(_)
        ));
        let failed = d(
            2,
            2,
            json!({"conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"api-1\" has timed out progressing."}]}),
        );
        assert_eq!(
            failed,
            Verdict::Failed(
                "ProgressDeadlineExceeded".into(),
                "ReplicaSet \"api-1\" has timed out progressing.".into()
            )
        );
        // The deadline counts only once the new generation is observed, as in kubectl.
        assert!(matches!(
            d(
                3,
                2,
                json!({"conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded"}]})
            ),
            Verdict::Progressing(_)
        ));
    }

    #[test]
    fn a_stateful_set_waits_for_ready_then_the_partition_then_revisions() {
        let s = |spec: Value, status: Value| {
            let mut spec = spec;
            spec["selector"] = json!({});
            spec["template"] = json!({});
            spec["serviceName"] = json!("s");
            judge(
                "StatefulSet",
                &json!({"metadata": {"generation": 1}, "spec": spec, "status": status}),
            )
        };
        let rolling = json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"partition": 1}}});
        assert!(progressing(s(rolling.clone(), json!({"replicas": 3}))).contains("observed"));
        assert_eq!(
            progressing(s(
                rolling.clone(),
                json!({"replicas": 3, "observedGeneration": 1, "readyReplicas": 2})
            )),
            "waiting for 1 pods to be ready"
        );
        assert_eq!(
            progressing(s(
                rolling.clone(),
                json!({"replicas": 3, "observedGeneration": 1,
                "readyReplicas": 3, "updatedReplicas": 1})
            )),
            "1 of 2 new pods updated"
        );
        assert!(matches!(
            s(
                rolling,
                json!({"replicas": 3, "observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 2})
            ),
            Verdict::Done(_)
        ));
        let plain = json!({"replicas": 1, "updateStrategy": {"type": "RollingUpdate"}});
        let at = |current: &str| {
            s(
                plain.clone(),
                json!({"replicas": 1, "observedGeneration": 1, "readyReplicas": 1,
                "updatedReplicas": 1, "currentRevision": current, "updateRevision": "web-2"}),
            )
        };
        assert!(progressing(at("web-1")).contains("revision web-2"));
        assert!(matches!(at("web-2"), Verdict::Done(_)));
        assert!(matches!(
            s(
                json!({"updateStrategy": {"type": "OnDelete"}}),
                json!({"replicas": 0})
            ),
            Verdict::NotJudged(_)
        ));
    }

    #[test]
    fn a_daemon_set_waits_for_updated_then_available_pods() {
        let d = |status: Value| {
            judge(
                "DaemonSet",
                &json!({"metadata": {"generation": 2}, "spec": {"selector": {},
                "template": {}}, "status": status}),
            )
        };
        let base = |updated: i32, available: i32| {
            json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                "numberMisscheduled": 0, "numberReady": 0, "updatedNumberScheduled": updated,
                "numberAvailable": available})
        };
        assert_eq!(progressing(d(base(1, 2))), "1 of 2 new pods updated");
        assert_eq!(progressing(d(base(2, 1))), "1 of 2 updated pods available");
        assert!(matches!(d(base(2, 2)), Verdict::Done(_)));
    }

    #[test]
    fn a_job_is_done_when_complete_and_failed_when_failed() {
        let j = |conditions: Value| {
            judge(
                "Job",
                &json!({"status": {"active": 1, "conditions": conditions}}),
            )
        };
        assert_eq!(progressing(j(json!([]))), "1 active, 0 succeeded, 0 failed");
        assert!(matches!(
            j(json!([{"type": "Complete", "status": "True"}])),
            Verdict::Done(_)
        ));
        assert_eq!(
            j(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}])
            ),
            Verdict::Failed(
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into()
            )
        );
        assert!(matches!(
            j(json!([{"type": "Complete", "status": "False"}])),
            Verdict::Progressing(_)
        ));
    }
}
