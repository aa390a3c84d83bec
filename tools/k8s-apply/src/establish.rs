//! Doing: the CRDs this apply created, made usable before their custom resources are applied.
//! Each is waited for until `Established` (judged by [`crds::condition`]) within `--timeout`,
//! then discovery runs again and the custom resources are resolved through it, as `kubectl`
//! does after `kubectl wait --for=condition=Established`.

use crate::cluster::{Cluster, Target};
use crate::crds::{self, Condition};
use crate::plan::{Plan, Step};
use common::retry::{Backoff, Jitter};
use common::{Error, Ui};
use std::time::{Duration, Instant};

/// Why the custom resources cannot be applied: the CRD's step, a reason word, the error.
#[derive(Debug)]
pub struct NotServed {
    /// The index of the CRD's step (or of the custom resource's, when its kind is still not
    /// served once its CRD is Established).
    pub at: usize,
    /// `NotEstablished`, `NamesNotAccepted`, `NotServed` or `ApplyFailed`.
    pub reason: &'static str,
    pub error: Error,
}

/// Waits until every CRD that `steps` (indices into the plan) wait for is `Established`,
/// polling from 50 ms up to `poll`, each within `budget`; then discovers again.
pub async fn establish(
    cluster: &Cluster,
    plan: &Plan,
    steps: &[usize],
    budget: Duration,
    poll: Duration,
    ui: &Ui,
) -> Result<(), NotServed> {
    let mut awaited: Vec<&str> = Vec::new();
    for name in steps
        .iter()
        .filter_map(|&i| plan.steps[i].awaits_crd.as_deref())
    {
        if !awaited.contains(&name) {
            awaited.push(name);
        }
    }
    for name in awaited {
        let Some(at) = plan
            .steps
            .iter()
            .position(|s| s.kind() == "CustomResourceDefinition" && s.target.name == name)
        else {
            continue; // planned from the input's CRDs: always among the steps
        };
        wait_for(cluster, &plan.steps[at].target, budget, poll)
            .await
            .map_err(|(reason, error)| NotServed { at, reason, error })?;
        ui.line(&format!("{}: established", plan.steps[at].target.display()));
    }
    let at = steps.first().copied().unwrap_or_default();
    cluster.rediscover().await.map_err(|e| NotServed {
        at,
        reason: "ApplyFailed",
        error: e.into(),
    })
}

/// Polls the CRD until it is Established (or refused, or `budget` passes).
async fn wait_for(
    cluster: &Cluster,
    crd: &Target,
    budget: Duration,
    poll: Duration,
) -> Result<(), (&'static str, Error)> {
    let started = Instant::now();
    let backoff = Backoff::doubling(Duration::from_millis(50), poll, Jitter::NONE);
    let mut attempt = 0;
    loop {
        let live = cluster
            .get(crd)
            .await
            .map_err(|e| ("ApplyFailed", e.into()))?;
        match live.as_ref().map(crds::condition) {
            Some(Condition::Established) => return Ok(()),
            Some(Condition::Refused(why)) => {
                return Err((
                    "NamesNotAccepted",
                    Error::failed(format!("{}: its names are refused: {why}", crd.display())),
                ));
            }
            Some(Condition::Pending) | None => {}
        }
        if started.elapsed() >= budget {
            return Err((
                "NotEstablished",
                Error::timed_out(format!(
                    "{}: not Established within {}, so its custom resources cannot be applied",
                    crd.display(),
                    humantime::format_duration(budget)
                )),
            ));
        }
        attempt += 1;
        let left = budget.saturating_sub(started.elapsed());
        tokio::time::sleep(backoff.next(attempt).min(left)).await;
    }
}

/// Where `step` is applied: its planned target, or, for a custom resource that waited for its
/// CRD, its kind as the new discovery resolves it.
pub fn target_of(cluster: &Cluster, step: &Step) -> Result<Target, Error> {
    if step.awaits_crd.is_none() {
        return Ok(step.target.clone());
    }
    let (group, version) = step.manifest.group_version();
    let resolved = cluster
        .resolve(group, version, step.kind())
        .ok_or_else(|| {
            Error::failed(format!(
                "{}: CustomResourceDefinition {} is Established, yet the cluster does not serve kind {} in {}",
                step.target.display(),
                step.awaits_crd.as_deref().unwrap_or_default(),
                step.kind(),
                step.manifest.api_version()
            ))
        })?;
    Ok(Target {
        resource: resolved.resource,
        ..step.target.clone()
    })
}
