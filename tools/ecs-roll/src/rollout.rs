//! Has our deployment rolled out, failed, or been rolled back? (pure)
//!
//! [`judge`] takes one observation of the service (its deployments, and how many tasks of
//! our deployment have stopped) and returns a [`Verdict`]. The polling loop in
//! [`crate::follow`] does the I/O; every rule ECS users rely on is here, unit-tested:
//! - success: our deployment is PRIMARY, runs our task definition at its desired count,
//!   and its rolloutState is COMPLETED; where rolloutState is absent (services without the
//!   circuit breaker on some older APIs), it is the only deployment;
//! - failure: rolloutState FAILED; tasks of our deployment stopped `max_task_failures`
//!   times (fail fast: ECS itself would keep replacing them for a long while);
//! - rolled back by ECS: our deployment FAILED or vanished and a newer PRIMARY runs the task
//!   definition that ran before ours (the deployment circuit breaker with rollback);
//! - superseded: someone else's deployment replaced ours (a newer PRIMARY of any other task
//!   definition: another run's); not ours to fight, nor to roll back.

/// One deployment of the service, as DescribeServices shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentView {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    /// IN_PROGRESS, COMPLETED or FAILED; absent on deployments that do not report it.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed_tasks: i32,
}

/// What one poll saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    pub deployments: Vec<DeploymentView>,
    /// Tasks started by our deployment that have stopped.
    pub stopped_tasks: usize,
}

/// The deployment being followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub deployment_id: String,
    pub task_definition: String,
    /// What ran before ours: where ECS's circuit breaker rolls back to. A newer deployment
    /// of any other task definition is someone else's (`None`: a new service, or our own
    /// rollback, which nothing of ECS's replaces).
    pub previous_task_definition: Option<String>,
    /// Stop waiting after this many stopped tasks (0: never).
    pub max_task_failures: usize,
}

/// The judgement on one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet: poll again.
    Waiting,
    /// Rolled out: our task definition runs at the desired count.
    Completed,
    /// ECS marked our deployment FAILED (no rollback by ECS).
    Failed { reason: String },
    /// Too many of our tasks stopped.
    TasksFailing { stopped: usize },
    /// The circuit breaker rolled back: `live` now runs.
    RolledBackByEcs { live: String, reason: String },
    /// Another deployment (`by`, running `live`) replaced ours.
    Superseded { by: String, live: String },
}

/// Decides what `observation` means for `followed`.
pub fn judge(followed: &Followed, observation: &Observation) -> Verdict {
    let ours = observation
        .deployments
        .iter()
        .find(|d| d.id == followed.deployment_id);
    let newer_primary = observation
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY" && d.id != followed.deployment_id);
    let rolled_back_to = |p: &DeploymentView| {
        followed.previous_task_definition.as_deref() == Some(p.task_definition.as_str())
    };
    let Some(ours) = ours else {
        return match newer_primary {
            Some(p) if rolled_back_to(p) => Verdict::RolledBackByEcs {
                live: p.task_definition.clone(),
                reason: format!(
                    "deployment {} is gone and {} runs {}",
                    followed.deployment_id, p.id, p.task_definition
                ),
            },
            Some(p) => Verdict::Superseded {
                by: p.id.clone(),
                live: p.task_definition.clone(),
            },
            None => Verdict::Failed {
                reason: format!(
                    "deployment {} is gone and the service has no PRIMARY deployment",
                    followed.deployment_id
                ),
            },
        };
    };
    if ours.rollout_state.as_deref() == Some("FAILED") {
        let reason = ours
            .rollout_state_reason
            .clone()
            .unwrap_or_else(|| "rolloutState FAILED".to_owned());
        return match newer_primary {
            Some(p) if rolled_back_to(p) => Verdict::RolledBackByEcs {
                live: p.task_definition.clone(),
                reason,
            },
            Some(p) => Verdict::Superseded {
                by: p.id.clone(),
                live: p.task_definition.clone(),
            },
            None => Verdict::Failed { reason },
        };
    }
    if ours.status != "PRIMARY" {
        return match newer_primary {
            Some(p) => Verdict::Superseded {
                by: p.id.clone(),
                live: p.task_definition.clone(),
            },
            None => Verdict::Failed {
                reason: format!(
                    "deployment {} is {} and no deployment is PRIMARY",
                    ours.id, ours.status
                ),
            },
        };
    }
    if ours.task_definition == followed.task_definition && rolled_out(ours, observation) {
        return Verdict::Completed;
    }
    if followed.max_task_failures > 0 && observation.stopped_tasks >= followed.max_task_failures {
        return Verdict::TasksFailing {
            stopped: observation.stopped_tasks,
        };
    }
    Verdict::Waiting
}

/// COMPLETED alone is not enough: a deployment whose tasks crash after starting can be
/// marked COMPLETED at a moment they all ran, and then run none. It has rolled out when it
/// also runs its desired count now.
fn rolled_out(ours: &DeploymentView, observation: &Observation) -> bool {
    let at_desired_count = ours.running >= ours.desired;
    match ours.rollout_state.as_deref() {
        Some(state) => state == "COMPLETED" && at_desired_count,
        None => observation.deployments.len() == 1 && at_desired_count,
    }
}

/// Success must hold for a while before it counts: tasks that crash a moment after they
/// start can all be RUNNING at one poll, with the rollout marked COMPLETED, and none at the
/// next. [`Settling::confirm`] turns a [`Verdict::Completed`] into `Waiting` until it has
/// held, with no further task of ours stopping, for `stable_for` (like Kubernetes'
/// `minReadySeconds`).
#[derive(Debug, Default)]
pub struct Settling {
    /// When the deployment first looked rolled out, and how many tasks had stopped then.
    since: Option<(std::time::Instant, usize)>,
}

impl Settling {
    /// The verdict once stability is taken into account.
    pub fn confirm(
        &mut self,
        verdict: Verdict,
        stopped_tasks: usize,
        now: std::time::Instant,
        stable_for: std::time::Duration,
    ) -> Verdict {
        if verdict != Verdict::Completed {
            self.since = None;
            return verdict;
        }
        match self.since {
            Some((since, stopped)) if stopped == stopped_tasks => {
                if now.duration_since(since) >= stable_for {
                    Verdict::Completed
                } else {
                    Verdict::Waiting
                }
            }
            _ => {
                self.since = Some((now, stopped_tasks));
                if stable_for.is_zero() {
                    Verdict::Completed
                } else {
                    Verdict::Waiting
                }
            }
        }
    }
}

impl Settling {
    /// When waiting for a verdict ends, given the `--timeout` `deadline`: the deadline; but
    /// when a poll due by the deadline (the last one is due at it) saw the deployment rolled
    /// out, the moment that success will have held for `stable_for`, if later. `--timeout`
    /// bounds how long a rollout may take, not the confirmation of one that made it in time:
    /// a rollback that ECS completed a second before the deadline is not a failed rollback.
    /// A success first seen after the deadline extends nothing, so the wait is bounded by
    /// `deadline + stable_for`.
    pub fn wait_ends(
        &self,
        deadline: std::time::Instant,
        stable_for: std::time::Duration,
    ) -> std::time::Instant {
        match self.since {
            Some((since, _)) if since <= deadline => deadline.max(since + stable_for),
            _ => deadline,
        }
    }
}

/// One line per deployment whose counts or state changed since `before`, for the log:
/// `ecs-svc/123 PRIMARY api:8 running 1/2 pending 1 IN_PROGRESS`.
pub fn progress_lines(before: &Observation, now: &Observation) -> Vec<String> {
    now.deployments
        .iter()
        .filter(|d| !before.deployments.contains(d))
        .map(|d| {
            let mut line = format!(
                "deployment {} {} {} running {}/{}",
                d.id,
                d.status,
                crate::taskdef::short_name(&d.task_definition),
                d.running,
                d.desired
            );
            if d.pending > 0 {
                line.push_str(&format!(" pending {}", d.pending));
            }
            if d.failed_tasks > 0 {
                line.push_str(&format!(" failed {}", d.failed_tasks));
            }
            if let Some(state) = &d.rollout_state {
                line.push(' ');
                line.push_str(state);
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "ecs-svc/2";
    const NEW_TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:8";
    const OLD_TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:7";

    fn followed() -> Followed {
        Followed {
            deployment_id: OURS.into(),
            task_definition: NEW_TD.into(),
            previous_task_definition: Some(OLD_TD.into()),
            max_task_failures: 3,
        }
    }

    fn deployment(id: &str, status: &str, td: &str, state: Option<&str>) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: state.map(str::to_owned),
            desired: 2,
            ..Default::default()
        }
    }

    fn observe(deployments: Vec<DeploymentView>, stopped: usize) -> Observation {
        Observation {
            deployments,
            stopped_tasks: stopped,
        }
    }

    #[test]
    fn in_progress_next_to_the_old_deployment_is_waiting() {
        let o = observe(
            vec![
                deployment(OURS, "PRIMARY", NEW_TD, Some("IN_PROGRESS")),
                deployment("ecs-svc/1", "ACTIVE", OLD_TD, Some("COMPLETED")),
            ],
            0,
        );
        assert_eq!(judge(&followed(), &o), Verdict::Waiting);
    }

    #[test]
    fn completed_rollout_of_our_task_definition_is_success() {
        let mut d = deployment(OURS, "PRIMARY", NEW_TD, Some("COMPLETED"));
        d.running = 2;
        assert_eq!(judge(&followed(), &observe(vec![d], 0)), Verdict::Completed);
    }

    #[test]
    fn completed_without_the_desired_count_running_is_not_success() {
        // Crashing tasks can be caught all RUNNING at one moment and none the next.
        let d = deployment(OURS, "PRIMARY", NEW_TD, Some("COMPLETED"));
        assert_eq!(
            judge(&followed(), &observe(vec![d.clone()], 1)),
            Verdict::Waiting
        );
        assert_eq!(
            judge(&followed(), &observe(vec![d], 4)),
            Verdict::TasksFailing { stopped: 4 }
        );
    }

    #[test]
    fn without_rollout_state_success_is_alone_at_desired_count() {
        let mut d = deployment(OURS, "PRIMARY", NEW_TD, None);
        d.running = 2;
        let old = deployment("ecs-svc/1", "ACTIVE", OLD_TD, None);
        assert_eq!(
            judge(&followed(), &observe(vec![d.clone(), old], 0)),
            Verdict::Waiting
        );
        assert_eq!(
            judge(&followed(), &observe(vec![d.clone()], 0)),
            Verdict::Completed
        );
        d.running = 1;
        assert_eq!(judge(&followed(), &observe(vec![d], 0)), Verdict::Waiting);
    }

    #[test]
    fn failed_rollout_without_a_newer_primary_is_failure() {
        let mut d = deployment(OURS, "PRIMARY", NEW_TD, Some("FAILED"));
        d.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        match judge(&followed(), &observe(vec![d], 3)) {
            Verdict::Failed { reason } => assert!(reason.contains("circuit breaker")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_circuit_breaker_rollback_is_recognised_both_ways() {
        let rollback = deployment("ecs-svc/3", "PRIMARY", OLD_TD, Some("IN_PROGRESS"));
        let failed_ours = deployment(OURS, "ACTIVE", NEW_TD, Some("FAILED"));
        let expected_live = OLD_TD.to_owned();
        match judge(
            &followed(),
            &observe(vec![rollback.clone(), failed_ours], 0),
        ) {
            Verdict::RolledBackByEcs { live, .. } => assert_eq!(live, expected_live),
            other => panic!("{other:?}"),
        }
        match judge(&followed(), &observe(vec![rollback], 0)) {
            Verdict::RolledBackByEcs { live, .. } => assert_eq!(live, expected_live),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stopped_tasks_fail_fast_at_the_limit_but_not_before() {
        let d = deployment(OURS, "PRIMARY", NEW_TD, Some("IN_PROGRESS"));
        assert_eq!(
            judge(&followed(), &observe(vec![d.clone()], 2)),
            Verdict::Waiting
        );
        assert_eq!(
            judge(&followed(), &observe(vec![d.clone()], 3)),
            Verdict::TasksFailing { stopped: 3 }
        );
        let mut patient = followed();
        patient.max_task_failures = 0;
        assert_eq!(judge(&patient, &observe(vec![d], 50)), Verdict::Waiting);
    }

    #[test]
    fn a_completed_rollout_wins_over_tasks_that_failed_on_the_way() {
        let mut d = deployment(OURS, "PRIMARY", NEW_TD, Some("COMPLETED"));
        d.running = 2;
        assert_eq!(judge(&followed(), &observe(vec![d], 5)), Verdict::Completed);
    }

    #[test]
    fn someone_elses_newer_deployment_supersedes_ours() {
        let other_td = "arn:aws:ecs:us-east-1:1:task-definition/api:9";
        let o = observe(
            vec![
                deployment("ecs-svc/4", "PRIMARY", other_td, Some("IN_PROGRESS")),
                deployment(OURS, "ACTIVE", NEW_TD, Some("IN_PROGRESS")),
            ],
            0,
        );
        assert_eq!(
            judge(&followed(), &o),
            Verdict::Superseded {
                by: "ecs-svc/4".into(),
                live: other_td.into()
            }
        );
    }

    #[test]
    fn another_runs_task_definition_is_never_taken_for_ecss_rollback() {
        // Another ecs-roll run deployed api:9 while ours (api:8) ran: whether ours is gone,
        // FAILED or ACTIVE beside it, it was superseded; only a return to api:7, what ran
        // before ours, is the circuit breaker's rollback.
        let other_td = "arn:aws:ecs:us-east-1:1:task-definition/api:9";
        let theirs = deployment("ecs-svc/4", "PRIMARY", other_td, Some("IN_PROGRESS"));
        let superseded = Verdict::Superseded {
            by: "ecs-svc/4".into(),
            live: other_td.into(),
        };
        assert_eq!(
            judge(&followed(), &observe(vec![theirs.clone()], 0)),
            superseded
        );
        let failed_ours = deployment(OURS, "ACTIVE", NEW_TD, Some("FAILED"));
        assert_eq!(
            judge(&followed(), &observe(vec![theirs.clone(), failed_ours], 0)),
            superseded
        );
        // Our own rollback (nothing before it to return to): any other deployment is another's.
        let rollback = Followed {
            deployment_id: OURS.into(),
            task_definition: OLD_TD.into(),
            previous_task_definition: None,
            max_task_failures: 3,
        };
        let back_on_new = deployment("ecs-svc/5", "PRIMARY", NEW_TD, Some("IN_PROGRESS"));
        assert_eq!(
            judge(&rollback, &observe(vec![back_on_new], 0)),
            Verdict::Superseded {
                by: "ecs-svc/5".into(),
                live: NEW_TD.into()
            }
        );
    }

    #[test]
    fn success_counts_once_it_has_held_for_the_stable_time_without_new_stops() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let stable = Duration::from_secs(10);
        let mut settling = Settling::default();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(0), stable),
            Verdict::Waiting
        );
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(5), stable),
            Verdict::Waiting
        );
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(10), stable),
            Verdict::Completed
        );
        // A task stopping in between starts the wait again; so does a poll that is not
        // rolled out.
        let mut settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(0), stable);
        assert_eq!(
            settling.confirm(Verdict::Completed, 1, at(10), stable),
            Verdict::Waiting
        );
        assert_eq!(
            settling.confirm(Verdict::Completed, 1, at(20), stable),
            Verdict::Completed
        );
        let mut settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(0), stable);
        assert_eq!(
            settling.confirm(Verdict::Waiting, 0, at(5), stable),
            Verdict::Waiting
        );
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(10), stable),
            Verdict::Waiting
        );
        // Without a stable time the first success counts; failures pass through at once.
        let mut settling = Settling::default();
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(0), Duration::ZERO),
            Verdict::Completed
        );
        let failing = Verdict::TasksFailing { stopped: 3 };
        assert_eq!(settling.confirm(failing.clone(), 3, at(1), stable), failing);
    }

    #[test]
    fn a_success_seen_before_the_deadline_may_finish_settling_after_it() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let (deadline, stable) = (at(5), Duration::from_secs(2));
        let mut settling = Settling::default();
        // Nothing rolled out yet: the deadline stands.
        assert_eq!(settling.wait_ends(deadline, stable), deadline);
        settling.confirm(Verdict::Waiting, 0, at(1), stable);
        assert_eq!(settling.wait_ends(deadline, stable), deadline);
        // Rolled out at 4 s: it may prove it holds until 6 s, past the 5 s deadline, and is
        // then completed (the flake: it was cut off at 5 s and judged a failed rollback).
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(4), stable),
            Verdict::Waiting
        );
        assert_eq!(settling.wait_ends(deadline, stable), at(6));
        assert_eq!(
            settling.confirm(Verdict::Completed, 0, at(6), stable),
            Verdict::Completed
        );
        // Rolled out well before the deadline: the deadline is the later one.
        let mut early = Settling::default();
        early.confirm(Verdict::Completed, 0, at(1), stable);
        assert_eq!(early.wait_ends(deadline, stable), deadline);
        // A success that breaks after the deadline ends the wait at once.
        settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(4), stable);
        settling.confirm(Verdict::Waiting, 0, at(5), stable);
        assert_eq!(settling.wait_ends(deadline, stable), deadline);
        // A task stopping after the deadline restarts the settling there: no extension, or
        // a crash loop would keep the wait going for ever.
        settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(4), stable);
        settling.confirm(Verdict::Completed, 1, at(6), stable);
        assert_eq!(settling.wait_ends(deadline, stable), deadline);
        // Seen rolled out by the last poll, due at the deadline: it may settle.
        settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(5), stable);
        assert_eq!(settling.wait_ends(deadline, stable), at(7));
        // First seen rolled out after the deadline: no extension.
        settling = Settling::default();
        settling.confirm(Verdict::Completed, 0, at(6), stable);
        assert_eq!(settling.wait_ends(deadline, stable), deadline);
    }

    #[test]
    fn progress_lines_name_only_what_changed() {
        let before = observe(
            vec![deployment(OURS, "PRIMARY", NEW_TD, Some("IN_PROGRESS"))],
            0,
        );
        let mut moved = before.clone();
        moved.deployments[0].running = 1;
        moved.deployments[0].pending = 1;
        assert!(progress_lines(&before, &before).is_empty());
        assert_eq!(
            progress_lines(&before, &moved),
            vec!["deployment ecs-svc/2 PRIMARY api:8 running 1/2 pending 1 IN_PROGRESS"]
        );
    }
}
