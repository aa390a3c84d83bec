//! Waiting for workloads to roll out: every workload looked at once, each observation judged
//! by [`rollout`] and its new pods by [`failfast`](crate::failfast), one progress line per workload per
//! change. A workload is looked at again when the API server reports a change to it (a
//! watch, as `kubectl rollout status` keeps) and at the latest after `--poll`, which is when
//! its pods' problems are seen. The first failure ends the wait (the rest is rolled back
//! anyway).

use crate::cluster::{Cluster, Target};
use crate::failfast::{FailFast, PodProblem, problems};
use crate::rollout::{self, Verdict};
use common::Ui;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DynamicObject, WatchEvent};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How many log lines of a crashed container a failure carries.
const LOG_LINES: i64 = 20;

/// The last line of a workload that rolled out (it is not among those a timeout names).
const DONE: &str = "\0done";

/// The reason of a [`WorkloadFailure`] that is no failure of ours: another apply replaced
/// the pod template this run applied ([`superseded_by`]).
pub const SUPERSEDED: &str = "Superseded";

/// A workload to wait for.
#[derive(Debug, Clone)]
pub struct Workload {
    pub target: Target,
    pub kind: String,
    /// The `(container, image)` pairs of the pod template this run applied (or restored),
    /// as [`template_images`] reads them: a live object with others is someone else's now.
    pub images: Vec<(String, String)>,
}

/// Why a workload did not roll out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadFailure {
    /// `Kind namespace/name`.
    pub resource: String,
    pub reason: String,
    pub message: String,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub exit_code: Option<i32>,
    pub logs: Vec<String>,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEnd {
    RolledOut,
    Failed(WorkloadFailure),
    /// The budget ran out; the workloads still rolling out, with their last line.
    TimedOut(Vec<String>),
    /// Another apply replaced a workload's pod template: its rollout is not ours to judge,
    /// nor to roll back.
    Superseded(WorkloadFailure),
}

/// What the wait is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub budget: Duration,
    pub poll: Duration,
    pub fail_after: Duration,
    pub tolerate_failures: bool,
}

/// Waits for all `workloads` at once, within `pace.budget`.
pub async fn wait_all(cluster: &Cluster, workloads: &[Workload], pace: Pace, ui: &Ui) -> WaitEnd {
    if workloads.is_empty() {
        return WaitEnd::RolledOut;
    }
    let lines: std::sync::Mutex<Vec<String>> =
        std::sync::Mutex::new(vec![String::new(); workloads.len()]);
    let all = futures_util::future::try_join_all(workloads.iter().enumerate().map(|(i, w)| {
        let lines = &lines;
        async move {
            let mut last = String::new();
            let mut record = |line: &str| {
                if line != last {
                    ui.line(&format!("{}: {line}", w.target.display()));
                    last = line.to_owned();
                    if let Ok(mut lines) = lines.lock() {
                        lines[i] = line.to_owned();
                    }
                }
            };
            let result = wait_one(cluster, w, pace, &mut record).await;
            if result.is_ok()
                && let Ok(mut lines) = lines.lock()
            {
                lines[i] = DONE.to_owned();
            }
            result
        }
    }));
    match tokio::time::timeout(pace.budget, all).await {
        Ok(Ok(_)) => WaitEnd::RolledOut,
        Ok(Err(failure)) if failure.reason == SUPERSEDED => WaitEnd::Superseded(failure),
        Ok(Err(failure)) => WaitEnd::Failed(failure),
        Err(_) => {
            let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
            WaitEnd::TimedOut(
                workloads
                    .iter()
                    .zip(lines)
                    .filter(|(_, line)| line != DONE)
                    .map(|(w, line)| format!("{}: {line}", w.target.display()))
                    .collect(),
            )
        }
    }
}

async fn wait_one(
    cluster: &Cluster,
    workload: &Workload,
    pace: Pace,
    record: &mut impl FnMut(&str),
) -> Result<(), WorkloadFailure> {
    let started = Instant::now();
    let mut fail_fast = FailFast::new(pace.fail_after);
    let mut wakeup = Wakeup::default();
    let failure = |reason: &str, message: &str| WorkloadFailure {
        resource: workload.target.display(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        ..WorkloadFailure::default()
    };
    loop {
        let live = match cluster.get(&workload.target).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                return Err(failure(
                    "Deleted",
                    "the object was deleted while rolling out",
                ));
            }
            Err(e) => {
                // One failed read is no verdict: the next poll tries again.
                tracing::warn!("{e}");
                tokio::time::sleep(pace.poll).await;
                continue;
            }
        };
        // Judged only while it is still what this run applied: another run's images rolled
        // out are no success of ours.
        if let Some(theirs) = superseded_by(&workload.images, &live) {
            return Err(failure(
                SUPERSEDED,
                &format!(
                    "another apply replaced its pod template (now {theirs}); not ours to roll back"
                ),
            ));
        }
        match rollout::judge(&workload.kind, &live) {
            Verdict::Done(line) => {
                record(&line);
                return Ok(());
            }
            Verdict::NotJudged(line) => {
                record(&format!("not waited for: {line}"));
                return Ok(());
            }
            Verdict::Failed(reason, message) => return Err(failure(&reason, &message)),
            Verdict::Progressing(line) => record(&line),
        }
        if !pace.tolerate_failures
            && spec_observed(&live)
            && let Some(problem) =
                pod_problem(cluster, workload, &live, started, &mut fail_fast).await
        {
            return Err(with_logs(cluster, workload, problem).await);
        }
        wakeup
            .next(cluster, &workload.target, &live, pace.poll)
            .await;
    }
}

/// What ends the pause between two looks at a workload: the next change the API server
/// reports for it, or `poll`, whichever comes first. With the poll alone, the end of a
/// rollout was seen up to `poll` late. Without a watch (refused, or closed by the server),
/// the poll alone; the next pause opens a new one.
#[derive(Default)]
struct Wakeup {
    changes: Option<BoxStream<'static, Result<WatchEvent<DynamicObject>, kube::Error>>>,
}

impl Wakeup {
    async fn next(&mut self, cluster: &Cluster, target: &Target, live: &Value, poll: Duration) {
        let deadline = tokio::time::Instant::now() + poll;
        if self.changes.is_none()
            && let Some(version) = live
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
        {
            self.changes = cluster
                .changes(target, version)
                .await
                .inspect_err(|e| tracing::debug!("{e}; looking every {poll:?}"))
                .ok();
        }
        let Some(changes) = &mut self.changes else {
            tokio::time::sleep_until(deadline).await;
            return;
        };
        loop {
            match tokio::time::timeout_at(deadline, changes.next()).await {
                // A change: look now. The changes already waiting go with it (the look sees
                // them all).
                Ok(Some(Ok(
                    WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_),
                ))) => {
                    while let Some(Some(Ok(_))) = changes.next().now_or_never() {}
                    return;
                }
                Ok(Some(Ok(WatchEvent::Bookmark(_)))) => continue,
                // The poll's time: look as before.
                Err(_) => return,
                // The watch ended (closed, or its version too old: 410): the poll's pace
                // until the next pause opens another.
                Ok(Some(Ok(WatchEvent::Error(_)) | Err(_)) | None) => {
                    self.changes = None;
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}

/// The problem of the new revision's pods that fails the rollout now, if any.
async fn pod_problem(
    cluster: &Cluster,
    workload: &Workload,
    live: &Value,
    started: Instant,
    fail_fast: &mut FailFast,
) -> Option<PodProblem> {
    let namespace = workload.target.namespace.as_deref()?;
    let selector = selector_of(live)?;
    let replica_sets = match workload.kind.as_str() {
        "Deployment" => cluster
            .replica_sets(namespace, &selector)
            .await
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let revision = revision_label(&workload.kind, live, &replica_sets);
    let pods = cluster.pods(namespace, &selector).await.ok()?;
    let new: Vec<_> = pods
        .iter()
        .filter(|pod| match &revision {
            Some((key, value)) => {
                pod.metadata.labels.as_ref().and_then(|l| l.get(key)) == Some(value)
            }
            None => true,
        })
        .collect();
    let names: Vec<String> = new.iter().filter_map(|p| p.metadata.name.clone()).collect();
    let seen: Vec<PodProblem> = new.iter().flat_map(|p| problems(p)).collect();
    fail_fast.observe(started.elapsed(), &names, seen)
}

async fn with_logs(cluster: &Cluster, workload: &Workload, problem: PodProblem) -> WorkloadFailure {
    let logs = match (
        &problem.container,
        problem.exit_code,
        &workload.target.namespace,
    ) {
        (Some(container), Some(_), Some(ns)) => cluster
            .last_logs(ns, &problem.pod, container, LOG_LINES)
            .await
            .unwrap_or_else(|e| {
                tracing::debug!("{e}");
                Vec::new()
            }),
        _ => Vec::new(),
    };
    WorkloadFailure {
        resource: workload.target.display(),
        reason: problem.reason,
        message: problem.message,
        pod: Some(problem.pod),
        container: problem.container,
        exit_code: problem.exit_code,
        logs,
    }
}

/// The `(container, image)` pairs of a workload's pod template (`spec.template`; a
/// CronJob's `spec.jobTemplate.spec.template`), init containers included, sorted (pure).
pub fn template_images(object: &Value) -> Vec<(String, String)> {
    let template = object
        .pointer("/spec/template/spec")
        .or_else(|| object.pointer("/spec/jobTemplate/spec/template/spec"));
    let mut images: Vec<(String, String)> = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| template?.get(list)?.as_array())
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            let image = c.get("image")?.as_str()?;
            Some((name.to_owned(), image.to_owned()))
        })
        .collect();
    images.sort();
    images
}

/// When the live workload's pod template no longer runs `ours` (another apply replaced
/// it), what it runs now, as `container=image, …` (pure). `None` while it is ours, or when
/// nothing is known of ours.
pub fn superseded_by(ours: &[(String, String)], live: &Value) -> Option<String> {
    let theirs = template_images(live);
    if ours.is_empty() || theirs == ours {
        return None;
    }
    Some(
        theirs
            .iter()
            .map(|(container, image)| format!("{container}={image}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Whether the controller has seen the workload's current spec (pure): before that, which
/// pods are the new revision's is not known yet (a template rolled back to an old
/// ReplicaSet's gets its new revision number only then), so no pod is judged.
pub fn spec_observed(live: &Value) -> bool {
    let generation = live.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = live
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    match (generation, observed) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        // Jobs have no observedGeneration: their pods are always theirs.
        (None, _) => true,
    }
}

/// The label selector of a workload (`spec.selector`), as the API's query syntax.
pub fn selector_of(live: &Value) -> Option<String> {
    let selector: LabelSelector =
        serde_json::from_value(live.pointer("/spec/selector")?.clone()).ok()?;
    let mut parts: Vec<String> = selector
        .match_labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.unwrap_or_default() {
        let values = e.values.unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The label that marks the pods of a workload's newest revision, when it can be known
/// (pure): a Deployment's newest ReplicaSet's `pod-template-hash` (the one of the highest
/// `deployment.kubernetes.io/revision`: the controller gives the template it rolls out the
/// next revision, a template rolled back to included), a StatefulSet's
/// `controller-revision-hash` of its update revision. Otherwise (DaemonSets, Jobs) every
/// selected pod counts.
pub fn revision_label(
    kind: &str,
    live: &Value,
    replica_sets: &[ReplicaSet],
) -> Option<(String, String)> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    match kind {
        "Deployment" => {
            let revision_of = |rs: &ReplicaSet| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    .and_then(|r| r.parse::<i64>().ok())
            };
            let newest = replica_sets
                .iter()
                .filter(|rs| revision_of(rs).is_some())
                .max_by_key(|rs| revision_of(rs))?;
            let hash = newest.metadata.labels.as_ref()?.get("pod-template-hash")?;
            Some(("pod-template-hash".into(), hash.clone()))
        }
        "StatefulSet" => {
            let revision = live.pointer("/status/updateRevision")?.as_str()?;
            Some(("controller-revision-hash".into(), revision.to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_workload_whose_images_another_apply_replaced_is_superseded() {
        let deployment = |web: &str| {
            json!({"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": {
                "initContainers": [{"name": "migrate", "image": "r/migrate:1"}],
                "containers": [{"name": "web", "image": web, "imagePullPolicy": "IfNotPresent"},
                               {"name": "proxy", "image": "r/proxy:1"}]}}}})
        };
        let ours = template_images(&deployment("r/web@sha256:aaa"));
        assert_eq!(
            ours,
            [
                ("migrate".to_owned(), "r/migrate:1".to_owned()),
                ("proxy".to_owned(), "r/proxy:1".to_owned()),
                ("web".to_owned(), "r/web@sha256:aaa".to_owned()),
            ]
        );
        // Still ours, whatever else the server or a scaler changed.
        let mut scaled = deployment("r/web@sha256:aaa");
        scaled["spec"]["replicas"] = json!(5);
        assert_eq!(superseded_by(&ours, &scaled), None);
        // Another run's image.
        assert_eq!(
            superseded_by(&ours, &deployment("r/web@sha256:bbb")).as_deref(),
            Some("migrate=r/migrate:1, proxy=r/proxy:1, web=r/web@sha256:bbb")
        );
        // A CronJob's template is read too; nothing known of ours decides nothing.
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "r/job:2"}]}}}}}});
        assert_eq!(
            template_images(&cron),
            [("job".to_owned(), "r/job:2".to_owned())]
        );
        assert_eq!(superseded_by(&[], &cron), None);
    }

    #[test]
    fn pods_are_judged_only_once_the_spec_is_observed() {
        assert!(!spec_observed(
            &json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}})
        ));
        assert!(!spec_observed(
            &json!({"metadata": {"generation": 1}, "status": {}})
        ));
        assert!(spec_observed(
            &json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3}})
        ));
        assert!(spec_observed(
            &json!({"metadata": {}, "status": {"active": 1}})
        ));
    }

    #[test]
    fn selectors_are_written_in_the_api_query_syntax() {
        let live = json!({"spec": {"selector": {"matchLabels": {"app": "api", "tier": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            selector_of(&live).unwrap(),
            "app=api,tier=web,env in (a,b),!canary"
        );
        assert_eq!(selector_of(&json!({"spec": {}})), None);
    }

    #[test]
    fn the_new_revision_is_the_replica_set_of_the_highest_revision() {
        let rs = |revision: &str, hash: &str| -> ReplicaSet {
            serde_json::from_value(json!({"metadata": {"name": format!("api-{hash}"),
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "labels": {"pod-template-hash": hash}}}))
            .unwrap()
        };
        let live = json!({"metadata": {}});
        assert_eq!(
            revision_label(
                "Deployment",
                &live,
                &[rs("2", "aaa"), rs("10", "ccc"), rs("3", "bbb")]
            ),
            Some(("pod-template-hash".into(), "ccc".into()))
        );
        assert_eq!(revision_label("Deployment", &live, &[]), None);
        let sts = json!({"status": {"updateRevision": "web-5d8"}});
        assert_eq!(
            revision_label("StatefulSet", &sts, &[]),
            Some(("controller-revision-hash".into(), "web-5d8".into()))
        );
        assert_eq!(revision_label("Job", &sts, &[]), None);
    }
}
