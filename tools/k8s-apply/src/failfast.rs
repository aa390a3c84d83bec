//! Failing fast, with the reason, on the pods of a workload's new revision (pure: observed
//! pods and the time in, a decision out).
//!
//! - at once: `ErrImagePull` (or `ImagePullBackOff`) whose message says the image or tag does
//!   not exist or access is denied; `CreateContainerConfigError`, `InvalidImageName`, `RunContainerError`;
//! - after `--fail-after` of seeing it: `CrashLoopBackOff`, any other `ErrImagePull` or
//!   `ImagePullBackOff` (a registry hiccup), `Unschedulable` — so one transient error or one
//!   restart does not fail a deploy (the rule krane settled on).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::BTreeMap;
use std::time::Duration;

/// Something wrong with one container (or the pod's scheduling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    /// Absent for a pod that is not scheduled.
    pub container: Option<String>,
    pub reason: String,
    pub message: String,
    /// The exit code of the container's last run, when it ran.
    pub exit_code: Option<i32>,
}

/// How soon a problem fails the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    AtOnce,
    /// When it is still there after `--fail-after`.
    Persisting,
}

/// Words in a pull error that say retrying cannot help: the image or tag is not there, or
/// we may not have it (containerd's, CRI-O's and the registries' wordings).
const FATAL_PULL_WORDS: [&str; 7] = [
    "not found",
    "manifest unknown",
    "does not exist",
    "denied",
    "unauthorized",
    "forbidden",
    "name unknown",
];

/// How soon `reason` (with `message`) fails a rollout; `None` when it is no problem.
pub fn urgency(reason: &str, message: &str) -> Option<Urgency> {
    match reason {
        // A back-off's message carries the pull error too (kubelet 1.30+, and the emulator):
        // the state a poll sees may be either, so both are read the same way.
        "ErrImagePull" | "ImagePullBackOff" => {
            let lower = message.to_ascii_lowercase();
            Some(match FATAL_PULL_WORDS.iter().any(|w| lower.contains(w)) {
                true => Urgency::AtOnce,
                false => Urgency::Persisting,
            })
        }
        "CreateContainerConfigError" | "InvalidImageName" | "RunContainerError" => {
            Some(Urgency::AtOnce)
        }
        "CrashLoopBackOff" | "Unschedulable" => Some(Urgency::Persisting),
        _ => None,
    }
}

/// The problems `pod` shows: waiting containers (init containers too) with a reason of
/// [`urgency`]'s, and an unschedulable pod.
pub fn problems(pod: &Pod) -> Vec<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let containers = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten();
    let mut found: Vec<PodProblem> = containers
        .filter_map(|c| container_problem(&name, c))
        .collect();
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        found.push(PodProblem {
            pod: name,
            container: None,
            reason: "Unschedulable".into(),
            message: condition.message.clone().unwrap_or_default(),
            exit_code: None,
        });
    }
    found
}

fn container_problem(pod: &str, status: &ContainerStatus) -> Option<PodProblem> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone()?;
    let message = waiting.message.clone().unwrap_or_default();
    urgency(&reason, &message)?;
    let last_run = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    Some(PodProblem {
        pod: pod.to_owned(),
        container: Some(status.name.clone()),
        reason,
        message,
        exit_code: last_run.map(|t| t.exit_code),
    })
}

/// Remembers since when each problem has been seen, and decides when one fails the rollout.
#[derive(Debug, Clone)]
pub struct FailFast {
    fail_after: Duration,
    /// `(pod, container, reason)` → when first seen (time since the wait began).
    first_seen: BTreeMap<(String, Option<String>, String), Duration>,
}

impl FailFast {
    pub fn new(fail_after: Duration) -> FailFast {
        FailFast {
            fail_after,
            first_seen: BTreeMap::new(),
        }
    }

    /// Takes the problems of the new revision's pods seen at `now` (`pods`: every pod of it
    /// that exists now) and returns the one that fails the rollout, if any. A problem of a pod
    /// that is gone is forgotten.
    pub fn observe(
        &mut self,
        now: Duration,
        pods: &[String],
        seen: Vec<PodProblem>,
    ) -> Option<PodProblem> {
        self.first_seen.retain(|(pod, _, _), _| pods.contains(pod));
        let mut verdict = None;
        for problem in seen {
            let key = (
                problem.pod.clone(),
                problem.container.clone(),
                problem.reason.clone(),
            );
            let since = *self.first_seen.entry(key).or_insert(now);
            let fails = match urgency(&problem.reason, &problem.message) {
                Some(Urgency::AtOnce) => true,
                Some(Urgency::Persisting) => now.saturating_sub(since) >= self.fail_after,
                None => false,
            };
            if fails && verdict.is_none() {
                verdict = Some(problem);
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, reason: &str, message: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": reason, "message": message}},
                "lastState": {"terminated": {"exitCode": 2}}
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn pull_errors_fail_at_once_only_when_the_image_cannot_be_had() {
        assert_eq!(
            urgency(
                "ErrImagePull",
                "rpc error: code = NotFound desc = failed to pull and unpack image \"r/api:nope\": r/api:nope: not found"
            ),
            Some(Urgency::AtOnce)
        );
        assert_eq!(
            urgency(
                "ErrImagePull",
                "pull access denied, repository does not exist"
            ),
            Some(Urgency::AtOnce)
        );
        assert_eq!(
            urgency("ErrImagePull", "dial tcp 10.0.0.1:443: i/o timeout"),
            Some(Urgency::Persisting)
        );
        assert_eq!(
            urgency(
                "ImagePullBackOff",
                "Back-off pulling image \"r/api:nope\": Docker responded with status code 404: manifest unknown"
            ),
            Some(Urgency::AtOnce)
        );
        assert_eq!(
            urgency("ImagePullBackOff", "Back-off pulling image \"r/api:1\""),
            Some(Urgency::Persisting)
        );
        assert_eq!(urgency("ContainerCreating", ""), None);
        assert_eq!(urgency("RunContainerError", ""), Some(Urgency::AtOnce));
    }

    #[test]
    fn a_crash_loop_fails_only_after_fail_after_with_its_exit_code() {
        let mut judge = FailFast::new(Duration::from_secs(20));
        let pods = ["api-1".to_owned()];
        let seen = || problems(&pod("api-1", "CrashLoopBackOff", "back-off 10s restarting"));
        assert_eq!(judge.observe(Duration::from_secs(1), &pods, seen()), None);
        assert_eq!(judge.observe(Duration::from_secs(20), &pods, seen()), None);
        let failed = judge
            .observe(Duration::from_secs(21), &pods, seen())
            .unwrap();
        assert_eq!(failed.container.as_deref(), Some("app"));
        assert_eq!(failed.exit_code, Some(2));
        assert_eq!(failed.reason, "CrashLoopBackOff");
    }

    #[test]
    fn a_problem_of_a_pod_that_went_away_starts_over() {
        let mut judge = FailFast::new(Duration::from_secs(5));
        let seen = || problems(&pod("api-1", "ImagePullBackOff", "Back-off pulling image"));
        assert_eq!(
            judge.observe(Duration::ZERO, &["api-1".into()], seen()),
            None
        );
        assert_eq!(judge.observe(Duration::from_secs(3), &[], vec![]), None);
        assert_eq!(
            judge.observe(Duration::from_secs(6), &["api-1".into()], seen()),
            None
        );
        assert!(
            judge
                .observe(Duration::from_secs(11), &["api-1".into()], seen())
                .is_some()
        );
    }

    #[test]
    fn a_missing_image_and_an_unschedulable_pod_are_seen() {
        let mut judge = FailFast::new(Duration::from_secs(20));
        let missing = problems(&pod("api-2", "ErrImagePull", "manifest unknown"));
        let failed = judge
            .observe(Duration::ZERO, &["api-2".into()], missing)
            .unwrap();
        assert_eq!(failed.pod, "api-2");
        let pending: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}))
        .unwrap();
        let seen = problems(&pending);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].container, None);
        assert_eq!(
            judge.observe(Duration::ZERO, &["p".into()], seen),
            None,
            "unschedulable waits for --fail-after"
        );
    }
}
