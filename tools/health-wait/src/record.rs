//! The envelope's `health[]` entries, kept current while the checks run, and the lines,
//! step outputs and summary that report them.

use crate::check::Target;
use crate::probe::{AttemptReport, humanize};
use crate::schedule::{Attempt, StateChange};
use common::actions::SummaryTable;
use common::envelope::{HealthAttempt, HealthResult};
use common::{Envelope, Ui};
use std::collections::HashMap;
use std::time::Duration;

/// A report from a target's loop (`wait.rs`), to record.
pub(crate) struct Update {
    pub(crate) index: usize,
    pub(crate) report: AttemptReport,
    pub(crate) healthy: bool,
    pub(crate) attempts: u32,
    pub(crate) change: Option<StateChange>,
}

/// Puts one `health[]` entry per target in the envelope (replacing an earlier entry for the
/// same target) and returns each target's index into `health[]`.
pub(crate) fn reserve_health_entries(envelope: &mut Envelope, targets: &[Target]) -> Vec<usize> {
    // By name, so that many targets cost one pass over the entries, not one per target.
    let mut known: HashMap<String, usize> = HashMap::with_capacity(envelope.health.len());
    for (slot, entry) in envelope.health.iter().enumerate() {
        known.entry(entry.target.clone()).or_insert(slot);
    }
    targets
        .iter()
        .map(|target| {
            let name = target.to_string();
            let fresh = HealthResult {
                target: name.clone(),
                ..HealthResult::default()
            };
            match known.get(&name) {
                Some(&slot) => {
                    envelope.health[slot] = fresh;
                    slot
                }
                None => {
                    envelope.health.push(fresh);
                    known.insert(name, envelope.health.len() - 1);
                    envelope.health.len() - 1
                }
            }
        })
        .collect()
}

pub(crate) fn record(entry: &mut HealthResult, update: &Update, elapsed: Duration) {
    entry.healthy = update.healthy;
    entry.attempts = update.attempts;
    entry.elapsed_ms = elapsed.as_millis() as u64;
    entry.last = Some(HealthAttempt {
        status: update.report.status,
        latency_ms: update.report.latency.as_millis() as u64,
        error: match &update.report.outcome {
            Attempt::Success => None,
            Attempt::Failure(reason) => Some(reason.clone()),
        },
        extra: Default::default(),
    });
}

pub(crate) fn report_update(ui: &Ui, target: &Target, update: &Update, elapsed: Duration) {
    let latency = update.report.latency.as_millis();
    match &update.report.outcome {
        Attempt::Success => {
            tracing::debug!("{target}: attempt {}: ok ({latency} ms)", update.attempts)
        }
        Attempt::Failure(reason) => {
            tracing::debug!(
                "{target}: attempt {}: {reason} ({latency} ms)",
                update.attempts
            );
        }
    }
    let line = match &update.change {
        None => return,
        Some(StateChange::Failing(reason)) => format!("{target}: not healthy yet: {reason}"),
        Some(StateChange::Recovering {
            successes,
            required,
        }) => {
            format!("{target}: answering, {successes}/{required} successes in a row")
        }
        Some(StateChange::Healthy) => format!(
            "{target}: healthy after {} attempt(s) in {}",
            update.attempts,
            humanize(elapsed)
        ),
    };
    ui.line(&line);
}

pub(crate) fn write_actions_report(ui: &Ui, envelope: &Envelope, slots: &[usize]) {
    if ui.actions().is_none() {
        return;
    }
    let results: Vec<&HealthResult> = slots.iter().map(|&s| &envelope.health[s]).collect();
    let all_healthy = results.iter().all(|h| h.healthy);
    ui.set_output("healthy", if all_healthy { "true" } else { "false" });
    let mut table = SummaryTable::new(&["target", "healthy", "attempts", "elapsed", "last"])
        .titled("health-wait");
    for h in results {
        let last = h
            .last
            .as_ref()
            .map(|l| {
                l.error.clone().unwrap_or_else(|| {
                    format!(
                        "ok{}",
                        l.status.map(|s| format!(" ({s})")).unwrap_or_default()
                    )
                })
            })
            .unwrap_or_default();
        table.row([
            h.target.clone(),
            if h.healthy { "yes" } else { "no" }.to_owned(),
            h.attempts.to_string(),
            format!("{} ms", h.elapsed_ms),
            last,
        ]);
    }
    ui.summary(&table.to_markdown());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check;

    #[test]
    fn a_target_seen_before_reuses_its_health_entry() {
        let mut envelope = Envelope::default();
        envelope.health.push(HealthResult {
            target: "tcp://db:5432".into(),
            healthy: true,
            attempts: 9,
            ..HealthResult::default()
        });
        let targets = vec![
            check::parse_url("http://a/").unwrap(),
            check::parse_tcp("db:5432").unwrap(),
        ];
        let slots = reserve_health_entries(&mut envelope, &targets);
        assert_eq!(slots, [1, 0]);
        assert_eq!(envelope.health.len(), 2);
        assert_eq!(envelope.health[0].attempts, 0);
    }
}
