//! Doing the plan: apply what changes in order, wait for the workloads, and on failure or
//! timeout roll back — restore what this run changed to the state read before it, delete
//! what it created, and wait for the restored workloads with their own time budget.

use crate::cluster::{Cluster, KubeError, Target};
use crate::establish;
use crate::live::LiveObjects;
use crate::order;
use crate::plan::{Action, Plan, Step};
use crate::record;
use crate::request::{Request, Waiting};
use crate::wait::{Pace, WaitEnd, Workload, WorkloadFailure, template_images, wait_all};
use common::envelope::{Deployment, KubernetesResource, Outcome};
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// Applies, waits, rolls back when needed; keeps `entry` current throughout; ends with the
/// table of what happened.
pub async fn run(
    cluster: &Cluster,
    plan: &Plan,
    request: &Request,
    ui: &Ui,
    entry: &mut Deployment,
) -> Result<()> {
    let result = apply_and_wait(cluster, plan, request, ui, entry).await;
    summarize(entry, ui);
    result
}

async fn apply_and_wait(
    cluster: &Cluster,
    plan: &Plan,
    request: &Request,
    ui: &Ui,
    entry: &mut Deployment,
) -> Result<()> {
    let mut resources = record::resources(entry);
    let applied = match apply_all(cluster, plan, request, ui, entry, &mut resources).await {
        Ok(applied) => applied,
        Err(stopped) => {
            // The object it stopped at was not applied: it failed (not `in_progress`).
            mark(&mut resources, &[stopped.at], plan, Outcome::Failed);
            let failure = WorkloadFailure {
                resource: plan.steps[stopped.at].target.display(),
                reason: stopped.reason.into(),
                message: stopped.error.to_string(),
                ..WorkloadFailure::default()
            };
            return fail(
                cluster,
                plan,
                &stopped.applied,
                request,
                ui,
                entry,
                &mut resources,
                failure,
                stopped.error,
            )
            .await;
        }
    };
    if applied.is_empty() {
        prune(cluster, plan, ui, entry).await?;
        ui.line("nothing to apply: every object is unchanged");
        // A rerun's `health-wait --from-deployments` checks what is deployed all the same;
        // nothing changed, so the state the plan read is the state now (no second read).
        entry.endpoints = endpoints_before(plan);
        record::finish(entry, Outcome::Unchanged);
        return Ok(());
    }
    if !request.waiting.wait {
        prune(cluster, plan, ui, entry).await?;
        mark(&mut resources, &applied, plan, Outcome::Started);
        record::set_resources(entry, &resources);
        entry.endpoints = endpoints(cluster, plan).await;
        record::finish(entry, Outcome::Started);
        return Ok(());
    }
    let workloads = workloads_of(plan, &applied, Applied::Ours);
    let _group = ui.group("waiting for the rollout");
    match wait_all(
        cluster,
        &workloads,
        pace(&request.waiting, request.waiting.timeout),
        ui,
    )
    .await
    {
        WaitEnd::RolledOut => {
            prune(cluster, plan, ui, entry).await?;
            mark(&mut resources, &applied, plan, Outcome::Completed);
            record::set_resources(entry, &resources);
            entry.endpoints = endpoints_once_addressed(cluster, plan, request.waiting.poll).await;
            record::finish(entry, Outcome::Completed);
            Ok(())
        }
        WaitEnd::Failed(failure) => {
            let err = Error::failed(format!(
                "{}: {}: {}",
                failure.resource, failure.reason, failure.message
            ));
            fail(
                cluster,
                plan,
                &applied,
                request,
                ui,
                entry,
                &mut resources,
                failure,
                err,
            )
            .await
        }
        WaitEnd::Superseded(failure) => {
            superseded(plan, &applied, ui, entry, &mut resources, &failure);
            Err(Error::failed(format!(
                "{}: {}",
                failure.resource, failure.message
            )))
        }
        WaitEnd::TimedOut(pending) => {
            let message = format!(
                "not rolled out within {}: {}",
                humantime::format_duration(request.waiting.timeout),
                pending.join("; ")
            );
            let failure = WorkloadFailure {
                resource: pending
                    .iter()
                    .filter_map(|line| line.split_once(": ").map(|(name, _)| name))
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: "Timeout".into(),
                message: message.clone(),
                ..WorkloadFailure::default()
            };
            fail(
                cluster,
                plan,
                &applied,
                request,
                ui,
                entry,
                &mut resources,
                failure,
                Error::timed_out(message),
            )
            .await
        }
    }
}

/// Why the apply stopped: what was applied before, the step it stopped at, a reason word
/// (`ApplyFailed`, or why a CRD's custom resources could not be applied), the error.
struct Stopped {
    applied: Vec<usize>,
    at: usize,
    reason: &'static str,
    error: Error,
}

/// How many objects of one tier are applied at once.
const APPLIED_AT_ONCE: usize = 16;

/// Applies every step that changes something, tier by tier ([`order::tiers`]): the objects
/// of a tier at once, reported in input order; the indices applied. Before the first tier
/// holding a custom resource whose CRD this apply created, waits for those CRDs to be
/// Established. On an error the rest of its tier is still recorded, no later tier applied.
async fn apply_all(
    cluster: &Cluster,
    plan: &Plan,
    request: &Request,
    ui: &Ui,
    entry: &mut Deployment,
    resources: &mut [KubernetesResource],
) -> std::result::Result<Vec<usize>, Stopped> {
    let kinds: Vec<&str> = plan.steps.iter().map(Step::kind).collect();
    let mut applied = Vec::new();
    let mut established = false;
    for tier in order::tiers(&kinds) {
        let changing: Vec<usize> = tier
            .filter(|&i| plan.steps[i].action != Action::Unchanged)
            .collect();
        let awaits = |i: &usize| plan.steps[*i].awaits_crd.is_some();
        if !established && changing.iter().any(awaits) {
            let first = changing.iter().copied().find(awaits).unwrap_or_default();
            let awaiting: Vec<usize> = (first..plan.steps.len()).filter(awaits).collect();
            let waiting = &request.waiting;
            establish::establish(cluster, plan, &awaiting, waiting.timeout, waiting.poll, ui)
                .await
                .map_err(|e| Stopped {
                    applied: applied.clone(),
                    at: e.at,
                    reason: e.reason,
                    error: e.error,
                })?;
            established = true;
        }
        let mut results = futures_util::stream::iter(changing)
            .map(|i| async move { (i, apply_one(cluster, &plan.steps[i], request).await) })
            .buffered(APPLIED_AT_ONCE);
        let mut stopped = None;
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(generation) => {
                    applied.push(i);
                    resources[i].generation = generation;
                    record::set_resources(entry, resources);
                    let step = &plan.steps[i];
                    ui.line(&format!(
                        "{}: {}",
                        step.target.display(),
                        step.action.as_str()
                    ));
                }
                Err((reason, error)) => {
                    stopped.get_or_insert((i, reason, error));
                }
            }
        }
        if let Some((at, reason, error)) = stopped {
            return Err(Stopped {
                applied,
                at,
                reason,
                error,
            });
        }
    }
    Ok(applied)
}

/// Applies one step; the object's `metadata.generation` after it.
async fn apply_one(
    cluster: &Cluster,
    step: &Step,
    request: &Request,
) -> std::result::Result<Option<i64>, (&'static str, Error)> {
    let target = establish::target_of(cluster, step).map_err(|e| ("NotServed", e))?;
    let object = &step.manifest.object;
    let result = cluster
        .apply(&target, object, false, request.force_conflicts)
        .await
        .map_err(|e| ("ApplyFailed", Error::failed(e)))?;
    Ok(result
        .pointer("/metadata/generation")
        .and_then(Value::as_i64))
}

/// `--prune --applyset`, once the apply rolled out: deletes the former members that left the
/// manifests, then leaves the parent listing only the current members' kinds and namespaces.
async fn prune(cluster: &Cluster, plan: &Plan, ui: &Ui, entry: &mut Deployment) -> Result<()> {
    let Some(set) = &plan.applyset else {
        return Ok(());
    };
    let mut pruned = Vec::new();
    for target in &set.prune {
        cluster.delete(target).await?;
        ui.line(&format!("{}: pruned", target.display()));
        pruned.push(target.display());
    }
    cluster
        .apply(&set.parent, &set.final_parent, false, true)
        .await?;
    record::set_pruned(entry, &set.id, &pruned);
    Ok(())
}

/// Another apply replaced a workload this run applied: recorded as `superseded`, nothing
/// rolled back (the objects are the other run's now; restoring ours would undo its work).
fn superseded(
    plan: &Plan,
    applied: &[usize],
    ui: &Ui,
    entry: &mut Deployment,
    resources: &mut [KubernetesResource],
    failure: &WorkloadFailure,
) {
    report_failure(failure, ui);
    entry.failure = Some(record::failure(failure));
    let replaced: Vec<usize> = applied
        .iter()
        .copied()
        .filter(|&i| plan.steps[i].target.display() == failure.resource)
        .collect();
    mark(resources, &replaced, plan, Outcome::Superseded);
    record::set_resources(entry, resources);
    record::finish(entry, Outcome::Superseded);
}

/// The failure path: record it, roll back unless told not to, and return `err` (or the
/// rollback's own failure).
#[allow(clippy::too_many_arguments)] // the whole state of the run, in one place, once
async fn fail(
    cluster: &Cluster,
    plan: &Plan,
    applied: &[usize],
    request: &Request,
    ui: &Ui,
    entry: &mut Deployment,
    resources: &mut [KubernetesResource],
    failure: WorkloadFailure,
    err: Error,
) -> Result<()> {
    report_failure(&failure, ui);
    entry.failure = Some(record::failure(&failure));
    mark(resources, applied, plan, Outcome::Failed);
    record::set_resources(entry, resources);
    if !request.waiting.roll_back || applied.is_empty() {
        record::finish(entry, Outcome::Failed);
        return Err(err);
    }
    entry.outcome = Outcome::RollingBack;
    let _group = ui.group("rolling back");
    match roll_back(cluster, plan, applied, &request.waiting, ui).await {
        Ok(()) => {
            mark(resources, applied, plan, Outcome::RolledBack);
            record::set_resources(entry, resources);
            record::finish(entry, Outcome::RolledBack);
            ui.line("rolled back: the objects are as they were before this run");
            Err(err)
        }
        Err(left) => {
            record::finish(entry, Outcome::RollbackFailed);
            if let Some(f) = entry.failure.as_mut() {
                f.kubernetes.rollback = Some(left.clone());
            }
            Err(Error::failed(format!(
                "{err}; the rollback failed too, left as it is: {left}"
            )))
        }
    }
}

/// Restores every applied object (latest first): deleting what was created, putting back
/// what was changed; then waits for the restored workloads within `--rollback-timeout`.
async fn roll_back(
    cluster: &Cluster,
    plan: &Plan,
    applied: &[usize],
    waiting: &Waiting,
    ui: &Ui,
) -> std::result::Result<(), String> {
    let mut problems = Vec::new();
    for &i in applied.iter().rev() {
        let step = &plan.steps[i];
        let result = match &step.live {
            None => cluster.delete(&step.target).await.map(|()| "deleted"),
            Some(previous) => restore(cluster, step, previous).await.map(|()| "restored"),
        };
        match result {
            Ok(done) => ui.line(&format!("{}: {done}", step.target.display())),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let restored: Vec<usize> = applied
        .iter()
        .copied()
        .filter(|&i| plan.steps[i].live.is_some())
        .collect();
    let workloads = workloads_of(plan, &restored, Applied::Restored);
    match wait_all(
        cluster,
        &workloads,
        pace(waiting, waiting.rollback_timeout),
        ui,
    )
    .await
    {
        WaitEnd::RolledOut => Ok(()),
        WaitEnd::Failed(f) | WaitEnd::Superseded(f) => {
            Err(format!("{}: {}: {}", f.resource, f.reason, f.message))
        }
        WaitEnd::TimedOut(pending) => Err(format!(
            "the restored workloads did not roll out within {}: {}",
            humantime::format_duration(waiting.rollback_timeout),
            pending.join("; ")
        )),
    }
}

/// Puts `previous` back whole (spec, labels, annotations, managed fields) over the live
/// object, with the live object's resourceVersion so that a concurrent change is not lost
/// silently.
async fn restore(
    cluster: &Cluster,
    step: &Step,
    previous: &Value,
) -> std::result::Result<(), KubeError> {
    let current = cluster.get(&step.target).await?;
    put_back(cluster, step, previous, current.as_ref()).await?;
    if step.kind() == "StatefulSet"
        && let Some(current) = &current
    {
        delete_stuck_pods(cluster, step, current).await?;
    }
    Ok(())
}

/// A StatefulSet controller replaces pods only while all are Ready, so a pod stuck on the
/// bad revision stays after its template is restored (kubernetes#67250): delete the pods of
/// that revision, and the controller recreates them from the restored template.
async fn delete_stuck_pods(
    cluster: &Cluster,
    step: &Step,
    failed: &Value,
) -> std::result::Result<(), KubeError> {
    let revision = failed
        .pointer("/status/updateRevision")
        .and_then(Value::as_str);
    let current = failed
        .pointer("/status/currentRevision")
        .and_then(Value::as_str);
    let (Some(revision), Some(namespace), Some(selector)) = (
        revision,
        step.target.namespace.as_deref(),
        crate::wait::selector_of(failed),
    ) else {
        return Ok(());
    };
    if Some(revision) == current {
        return Ok(()); // no pod was replaced by the bad revision
    }
    let selector = format!("{selector},controller-revision-hash={revision}");
    let deleted = cluster.delete_pods(namespace, &selector).await?;
    if deleted > 0 {
        tracing::info!(
            "{}: deleted {deleted} pods of the failed revision {revision}",
            step.target.display()
        );
    }
    Ok(())
}

/// Replaces the live object with `previous` whole (or creates it again when it is gone).
async fn put_back(
    cluster: &Cluster,
    step: &Step,
    previous: &Value,
    current: Option<&Value>,
) -> std::result::Result<(), KubeError> {
    let mut body = previous.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    match current
        .and_then(|c| c.pointer("/metadata/resourceVersion"))
        .cloned()
    {
        Some(version) => {
            body["metadata"]["resourceVersion"] = version;
            cluster.replace(&step.target, &body).await.map(|_| ())
        }
        None => {
            // Deleted meanwhile: create it again from what it was.
            if let Some(metadata) = body["metadata"].as_object_mut() {
                for key in [
                    "resourceVersion",
                    "uid",
                    "creationTimestamp",
                    "managedFields",
                ] {
                    metadata.remove(key);
                }
            }
            cluster
                .apply(&step.target, &body, false, true)
                .await
                .map(|_| ())
        }
    }
}

fn pace(waiting: &Waiting, budget: std::time::Duration) -> Pace {
    Pace {
        budget,
        poll: waiting.poll,
        fail_after: waiting.fail_after,
        tolerate_failures: waiting.tolerate_failures,
    }
}

/// Which state of an object a wait is for: what this run applied, or what its rollback put
/// back.
#[derive(Debug, Clone, Copy)]
enum Applied {
    Ours,
    Restored,
}

fn workloads_of(plan: &Plan, indices: &[usize], applied: Applied) -> Vec<Workload> {
    indices
        .iter()
        .map(|&i| &plan.steps[i])
        .filter(|s| order::is_workload(s.kind()))
        .map(|s| Workload {
            target: s.target.clone(),
            kind: s.kind().to_owned(),
            images: match applied {
                Applied::Ours => template_images(&s.manifest.object),
                Applied::Restored => s.live.as_ref().map(template_images).unwrap_or_default(),
            },
        })
        .collect()
}

fn mark(resources: &mut [KubernetesResource], applied: &[usize], plan: &Plan, outcome: Outcome) {
    for &i in applied {
        if i < resources.len() && i < plan.steps.len() {
            resources[i].outcome = outcome.clone();
        }
    }
}

/// Where the applied Ingresses and LoadBalancer Services answer, as their status says now
/// (listed in apply order).
async fn endpoints(cluster: &Cluster, plan: &Plan) -> Vec<String> {
    endpoints_in(&read_services(cluster, plan).await)
}

/// How long a rolled-out apply waits for its Ingresses and LoadBalancer Services to get an
/// address (the load balancer controller writes it after the objects exist, the ALB's after
/// it is provisioned); past it, the endpoints are those known, and the others are named.
const ADDRESS_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// [`endpoints`], once every Ingress and LoadBalancer Service has an address (or
/// [`ADDRESS_GRACE`] passed: those without are named in a warning).
async fn endpoints_once_addressed(cluster: &Cluster, plan: &Plan, poll: Duration) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let read = read_services(cluster, plan).await;
        let waiting: Vec<String> = read
            .iter()
            .filter(|(step, live)| {
                live.as_ref()
                    .is_some_and(|l| record::awaits_address(step.kind(), l))
            })
            .map(|(step, _)| step.target.display())
            .collect();
        if waiting.is_empty() || started.elapsed() >= ADDRESS_GRACE {
            for object in &waiting {
                tracing::warn!("{object} has no address yet: not among the endpoints");
            }
            return endpoints_in(&read);
        }
        tokio::time::sleep(poll.min(ADDRESS_GRACE)).await;
    }
}

/// The applied Ingresses and Services as they are now (absent: gone or unreadable), read as
/// the state before the apply is: LISTs where several share a kind and namespace, GETs
/// several at once; in apply order.
async fn read_services<'p>(cluster: &Cluster, plan: &'p Plan) -> Vec<(&'p Step, Option<Value>)> {
    let services: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind(), "Ingress" | "Service"))
        .collect();
    let targets: Vec<&Target> = services.iter().map(|s| &s.target).collect();
    let listed = LiveObjects::read(cluster, &targets)
        .await
        .unwrap_or_default();
    let listed = &listed;
    futures_util::stream::iter(services)
        .map(|step| async move {
            let live = match listed.get(&step.target) {
                Some(live) => live,
                None => cluster.get(&step.target).await.ok().flatten(),
            };
            (step, live)
        })
        .buffered(APPLIED_AT_ONCE)
        .collect()
        .await
}

/// The endpoints of the applied Ingresses and Services as the plan read them, before the
/// apply (pure).
fn endpoints_before(plan: &Plan) -> Vec<String> {
    let read: Vec<(&Step, Option<Value>)> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind(), "Ingress" | "Service"))
        .map(|s| (s, s.live.clone()))
        .collect();
    endpoints_in(&read)
}

/// The endpoints of the objects read, each once, in order.
fn endpoints_in(read: &[(&Step, Option<Value>)]) -> Vec<String> {
    let mut endpoints = Vec::new();
    for (step, live) in read {
        let urls = live.as_ref().map(|l| record::endpoints_of(step.kind(), l));
        for url in urls.unwrap_or_default() {
            if !endpoints.contains(&url) {
                endpoints.push(url);
            }
        }
    }
    endpoints
}

fn report_failure(f: &WorkloadFailure, ui: &Ui) {
    let mut line = format!("{}: {}", f.resource, f.reason);
    if let Some(pod) = &f.pod {
        line.push_str(&format!(" (pod {pod}"));
        if let Some(container) = &f.container {
            line.push_str(&format!(", container {container}"));
        }
        if let Some(code) = f.exit_code {
            line.push_str(&format!(", exit code {code}"));
        }
        line.push(')');
    }
    line.push_str(&format!(": {}", f.message));
    ui.line(&line);
    for log in &f.logs {
        ui.line(&format!("  | {log}"));
    }
}

/// The final table on stderr, and the step outputs and step summary under Actions.
fn summarize(entry: &Deployment, ui: &Ui) {
    for r in record::resources(entry) {
        let object = match &r.namespace {
            Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
            None => format!("{} {}", r.kind, r.name),
        };
        ui.line(&format!("  {object:<40} {:<11} {}", r.action, r.outcome));
    }
    ui.set_output("outcome", entry.outcome.as_str());
    if let Some(first) = entry.endpoints.first() {
        ui.set_output("endpoint", first);
    }
    let mut table =
        common::actions::SummaryTable::new(&["object", "action", "outcome"]).titled("k8s-apply");
    for r in record::resources(entry) {
        let object = match &r.namespace {
            Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
            None => format!("{} {}", r.kind, r.name),
        };
        table.row([object, r.action.clone(), r.outcome.to_string()]);
    }
    ui.summary(&table.to_markdown());
}
