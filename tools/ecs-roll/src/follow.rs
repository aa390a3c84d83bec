//! Following one deployment until [`crate::rollout::judge`] decides, printing what ECS
//! reports on the way.

use crate::ecs::{Ecs, StoppedTask};
use crate::rollout::{Followed, Observation, Settling, Verdict, judge, progress_lines};
use aws_sdk_ecs::types::ServiceEvent;
use common::Ui;
use common::envelope::DeploymentEvent;
use common::retry::{Backoff, Jitter};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Consecutive failed polls (after the SDK's own retries) before giving up.
const MAX_POLL_ERRORS: u32 = 5;

/// How to wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pace {
    pub poll: Duration,
    pub timeout: Duration,
    /// How long success must hold before it counts ([`Settling`]).
    pub stable_for: Duration,
}

impl Pace {
    /// The wait before the next poll: `poll` ±20 %, so that parallel jobs do not poll in step.
    fn next_poll(&self) -> Duration {
        Backoff::steady(self.poll, Jitter::around(0.2)).next(1)
    }
}

/// How following a deployment ended.
#[derive(Debug, Clone)]
pub enum Ending {
    Decided(Verdict),
    TimedOut,
    /// The service could not be observed (after retries).
    Unobservable(String),
}

/// What was seen while following.
#[derive(Debug)]
pub struct FollowReport {
    pub ending: Ending,
    pub stopped_tasks: Vec<StoppedTask>,
    /// Polls made, and how many came after the first stopped task was seen.
    pub polls: u32,
    pub polls_after_first_stop: u32,
}

/// The service events already printed, shared by a deployment and its rollback.
#[derive(Debug, Default)]
pub struct EventLog {
    seen: BTreeSet<String>,
    /// New events in the order they happened: `{created_at, message}`.
    pub recorded: Vec<DeploymentEvent>,
}

impl EventLog {
    /// Remembers events that happened before we started, so they are not printed.
    pub fn mark_seen(&mut self, events: &[ServiceEvent]) {
        self.seen
            .extend(events.iter().filter_map(|e| e.id().map(str::to_owned)));
    }

    /// The events not seen before, oldest first (ECS lists the newest first).
    fn take_new(&mut self, events: &[ServiceEvent]) -> Vec<(String, String)> {
        let mut new = Vec::new();
        for event in events.iter().rev() {
            let Some(id) = event.id() else { continue };
            if self.seen.insert(id.to_owned()) {
                let at = event
                    .created_at()
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let message = event.message().unwrap_or_default().to_owned();
                self.recorded.push(DeploymentEvent {
                    created_at: at.clone(),
                    message: message.clone(),
                    extra: serde_json::Map::new(),
                });
                new.push((at, message));
            }
        }
        new
    }
}

/// Polls the service every `pace.poll` (±20 %, so that parallel jobs do not poll in step)
/// until the deployment is decided or `pace.timeout` passes (a deployment that rolled out
/// before then gets its `pace.stable_for` to prove it holds: [`Settling::wait_ends`]).
pub async fn follow(
    ecs: &Ecs,
    service: &str,
    followed: &Followed,
    pace: Pace,
    events: &mut EventLog,
    ui: &Ui,
) -> FollowReport {
    let label = format!("{}/{service}", ecs.cluster);
    let deadline = Instant::now() + pace.timeout;
    // When the poll is due: the moment each observation counts as made. Not the moment its
    // answers arrived, which on a loaded machine can be a second later: a poll due before
    // the deadline whose answers came after it still saw the service in time.
    let mut due = Instant::now();
    let mut stopped: BTreeMap<String, StoppedTask> = BTreeMap::new();
    let mut last = Observation::default();
    let mut settling = Settling::default();
    let (mut polls, mut polls_after_first_stop, mut errors) = (0u32, 0u32, 0u32);
    let ending = loop {
        polls += 1;
        if !stopped.is_empty() {
            polls_after_first_stop += 1;
        }
        match ecs
            .observe(service, &followed.deployment_id, &mut stopped)
            .await
        {
            Ok((observation, service_events)) => {
                errors = 0;
                for (_, message) in events.take_new(&service_events) {
                    ui.line(&format!("{label}: {message}"));
                }
                for line in progress_lines(&last, &observation) {
                    ui.line(&format!("{label}: {line}"));
                }
                report_new_stops(&label, &last, &observation, &stopped, ui);
                let verdict = settling.confirm(
                    judge(followed, &observation),
                    observation.stopped_tasks,
                    due,
                    pace.stable_for,
                );
                last = observation;
                if verdict != Verdict::Waiting {
                    break Ending::Decided(verdict);
                }
            }
            Err(err) => {
                errors += 1;
                ui.line(&format!("{label}: warning: poll failed: {err}"));
                if errors >= MAX_POLL_ERRORS {
                    break Ending::Unobservable(err.to_string());
                }
            }
        }
        // A rollout seen complete by the deadline may finish proving it holds after it.
        let ends = settling.wait_ends(deadline, pace.stable_for);
        let now = Instant::now();
        if now >= ends {
            break Ending::TimedOut;
        }
        due = now + pace.next_poll().min(ends - now);
        tokio::time::sleep_until(due.into()).await;
    };
    FollowReport {
        ending,
        stopped_tasks: stopped.into_values().collect(),
        polls,
        polls_after_first_stop,
    }
}

fn report_new_stops(
    label: &str,
    before: &Observation,
    now: &Observation,
    stopped: &BTreeMap<String, StoppedTask>,
    ui: &Ui,
) {
    if now.stopped_tasks > before.stopped_tasks {
        ui.line(&format!(
            "{label}: {} task(s) of this deployment stopped, e.g. {}",
            now.stopped_tasks,
            stopped
                .values()
                .last()
                .map(StoppedTask::describe)
                .unwrap_or_default()
        ));
    }
}
