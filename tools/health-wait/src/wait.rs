//! Checking every target until it is healthy or the time is up (doing): one loop per
//! target, reporting to the one place that keeps the envelope current.

use crate::check::Target;
use crate::plan::Plan;
use crate::probe::{self, HttpProbe, humanize};
use crate::record::{Update, record, report_update, reserve_health_entries, write_actions_report};
use crate::schedule::{Decision, Tracker};
use common::envelope::HealthResult;
use common::{Envelope, Error, Result, Ui};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Checks every target concurrently until all are healthy or the deadline passes.
pub(crate) async fn wait(plan: Plan, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + plan.timeout;
    let slots = reserve_health_entries(envelope, &plan.targets);
    let (sender, mut updates) = mpsc::channel::<Update>(64);
    let mut loops = tokio::task::JoinSet::new();
    for (index, target) in plan.targets.iter().enumerate() {
        loops.spawn(check_until_healthy(
            index,
            target.clone(),
            plan.http.clone(),
            Tracker::new(plan.successes, plan.backoff),
            plan.attempt_timeout,
            deadline,
            sender.clone(),
        ));
    }
    drop(sender);
    let total = plan.targets.len();
    let spinner = ui.spinner(format!("waiting for {total} target(s)"));
    let mut healthy = 0;
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { break };
                let target = &plan.targets[update.index];
                report_update(ui, target, &update, started.elapsed());
                let entry = &mut envelope.health[slots[update.index]];
                record(entry, &update, started.elapsed());
                if update.healthy {
                    healthy += 1;
                    if healthy == total {
                        break;
                    }
                }
                spinner.set_message(format!("waiting for {total} target(s), {healthy} healthy"));
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    loops.abort_all();
    drop(spinner);
    for &slot in &slots {
        if !envelope.health[slot].healthy {
            envelope.health[slot].elapsed_ms = started.elapsed().as_millis() as u64;
        }
    }
    write_actions_report(ui, envelope, &slots);
    verdict(envelope, &slots, started.elapsed(), plan.timeout, ui)
}

/// Ok when every target is healthy; otherwise the timeout, naming each unhealthy target
/// and why. Target loops end only when healthy or at the deadline, so an unhealthy target
/// here always means the deadline passed.
fn verdict(
    envelope: &Envelope,
    slots: &[usize],
    elapsed: Duration,
    timeout: Duration,
    ui: &Ui,
) -> Result<()> {
    let total = slots.len();
    let unhealthy: Vec<&HealthResult> = slots
        .iter()
        .map(|&slot| &envelope.health[slot])
        .filter(|h| !h.healthy)
        .collect();
    if unhealthy.is_empty() {
        ui.line(&format!(
            "all {total} target(s) healthy after {}",
            humanize(elapsed)
        ));
        return Ok(());
    }
    let list = unhealthy
        .iter()
        .map(|h| {
            let reason = h
                .last
                .as_ref()
                .and_then(|l| l.error.clone())
                .unwrap_or_else(|| "no answer yet".into());
            format!("{} ({reason}, {} attempts)", h.target, h.attempts)
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::timed_out(format!(
        "{} of {total} target(s) still unhealthy after {}: {list}",
        unhealthy.len(),
        humanize(timeout)
    )))
}

/// One target's loop: attempt, decide, report, sleep; ends when healthy or at the deadline.
async fn check_until_healthy(
    index: usize,
    target: Target,
    http: Option<Arc<HttpProbe>>,
    mut tracker: Tracker,
    attempt_timeout: Duration,
    deadline: tokio::time::Instant,
    updates: mpsc::Sender<Update>,
) {
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return;
        }
        let cut_short = remaining < attempt_timeout;
        let report = probe::attempt(&target, http.as_deref(), attempt_timeout.min(remaining)).await;
        if cut_short && report.timed_out {
            // The overall deadline, not the target, ended this attempt: it says nothing new.
            return;
        }
        let (decision, change) = tracker.observe(&report.outcome, rand::random::<f64>());
        let healthy = decision == Decision::Healthy;
        let update = Update {
            index,
            report,
            healthy,
            attempts: tracker.attempts(),
            change,
        };
        if updates.send(update).await.is_err() {
            return;
        }
        match decision {
            Decision::Healthy => return,
            Decision::RetryAfter(delay) => tokio::time::sleep(delay).await,
        }
    }
}
