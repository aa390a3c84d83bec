//! The service scheduler's decisions, as a pure function: what one service looks like now
//! ([`ServiceObservation`]) in, what to do about it ([`Action`]s) out. No I/O, no clock:
//! the reconciler in `engine` builds the observation, applies the actions to the state and
//! turns them into Docker calls.
//!
//! The rules follow ECS's rolling update (deployment controller `ECS`):
//! - the PRIMARY deployment is brought to the desired count, never exceeding
//!   `maximumPercent` of it across all deployments (pending + running);
//! - old (ACTIVE) deployments' tasks are stopped as long as `minimumHealthyPercent` of the
//!   desired count stays ready (RUNNING, and HEALTHY where a health check exists); tasks that
//!   are not ready are stopped at once;
//! - the PRIMARY deployment is COMPLETED when it alone runs the desired count, all ready;
//! - the deployment circuit breaker fails it after `clamp(ceil(desired / 2), 3, 200)` tasks
//!   failed (exited, failed to start, failed health checks) and, with `rollback`, starts a new
//!   PRIMARY on the task definition of the last completed deployment.

/// The state of a deployment's rollout (`rolloutState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    /// `IN_PROGRESS`
    InProgress,
    /// `COMPLETED`
    Completed,
    /// `FAILED`
    Failed,
}

impl RolloutState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::InProgress => "IN_PROGRESS",
            RolloutState::Completed => "COMPLETED",
            RolloutState::Failed => "FAILED",
        }
    }
}

/// Where one task is, as far as the scheduler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPhase {
    /// Placed, being pulled, created or started; or running but not yet ready (health check
    /// starting, target not yet reachable).
    Pending,
    /// Running and ready: counts as healthy.
    Ready,
    /// Running but its health check says UNHEALTHY: to be replaced.
    Unhealthy,
}

/// One task that the scheduler still wants running (desiredStatus RUNNING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObservation {
    /// The task id.
    pub id: String,
    /// The deployment that started it.
    pub deployment_id: String,
    /// Its phase.
    pub phase: TaskPhase,
}

/// One deployment of the service, PRIMARY first.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentObservation {
    /// `ecs-svc/...`
    pub id: String,
    /// The task definition ARN it runs.
    pub task_definition: String,
    /// Its rollout state.
    pub rollout_state: RolloutState,
    /// How many of its tasks failed so far (exited, could not start, unhealthy).
    pub failed_tasks: u32,
    /// When the last of them failed (seconds since the epoch).
    pub last_failure_at: Option<f64>,
}

/// The circuit breaker settings (`deploymentConfiguration.deploymentCircuitBreaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    /// `rollback`
    pub rollback: bool,
}

/// Everything the scheduler looks at for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObservation {
    /// `desiredCount` (0 while the service is being deleted).
    pub desired_count: u32,
    /// `deploymentConfiguration.minimumHealthyPercent`
    pub minimum_healthy_percent: u32,
    /// `deploymentConfiguration.maximumPercent`
    pub maximum_percent: u32,
    /// Present when the circuit breaker is enabled.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The deployments, PRIMARY first. Never empty.
    pub deployments: Vec<DeploymentObservation>,
    /// Tasks with desiredStatus RUNNING.
    pub tasks: Vec<TaskObservation>,
    /// The task definition of the last deployment that completed, the rollback target.
    pub last_completed_task_definition: Option<String>,
    /// Whether "has reached a steady state" was already said for the current state.
    pub steady_reported: bool,
    /// Now, in seconds since the epoch.
    pub now: f64,
}

/// Why the scheduler stops a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Replaced by the PRIMARY deployment, or scaled in.
    Scheduler,
    /// Its container health check says UNHEALTHY (a task failure).
    Unhealthy,
}

/// What the scheduler does; applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start `count` new tasks of the deployment.
    Start {
        /// The deployment.
        deployment_id: String,
        /// How many.
        count: u32,
    },
    /// Stop these tasks.
    Stop {
        /// The task ids.
        task_ids: Vec<String>,
        /// Why.
        cause: StopCause,
    },
    /// The PRIMARY deployment's rollout is COMPLETED.
    Complete {
        /// The deployment.
        deployment_id: String,
    },
    /// The circuit breaker tripped: the deployment's rollout is FAILED.
    Fail {
        /// The deployment.
        deployment_id: String,
    },
    /// Start a new PRIMARY deployment on this task definition (circuit-breaker rollback).
    Rollback {
        /// The failed deployment.
        from_deployment_id: String,
        /// The task definition to go back to.
        task_definition: String,
    },
    /// These non-PRIMARY deployments have no tasks left: remove them.
    Remove {
        /// The deployment ids.
        deployment_ids: Vec<String>,
    },
    /// Say "(service x) has reached a steady state."
    SteadyState,
}

/// The circuit breaker's failure threshold for a desired count: half of it, at least 3,
/// at most 200.
pub fn failure_threshold(desired_count: u32) -> u32 {
    desired_count.div_ceil(2).clamp(3, 200)
}

/// How long the scheduler waits after a task of a deployment failed before it starts another
/// (ECS throttles task launches of a failing service the same way, more slowly).
pub fn launch_backoff_seconds(failed_tasks: u32) -> f64 {
    f64::from(failed_tasks.min(5))
}

/// Decides what to do for one service. See the module docs for the rules.
pub fn decide(obs: &ServiceObservation) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(primary) = obs.deployments.first() else {
        return actions;
    };
    let desired = obs.desired_count;

    // Unhealthy tasks are replaced (and count as failed tasks).
    let unhealthy: Vec<String> = obs
        .tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Unhealthy)
        .map(|t| t.id.clone())
        .collect();
    if !unhealthy.is_empty() {
        actions.push(Action::Stop {
            task_ids: unhealthy,
            cause: StopCause::Unhealthy,
        });
    }
    let tasks: Vec<&TaskObservation> = obs
        .tasks
        .iter()
        .filter(|t| t.phase != TaskPhase::Unhealthy)
        .collect();

    // The circuit breaker.
    if let Some(cb) = obs.circuit_breaker
        && primary.rollout_state == RolloutState::InProgress
        && primary.failed_tasks >= failure_threshold(desired)
    {
        actions.push(Action::Fail {
            deployment_id: primary.id.clone(),
        });
        if cb.rollback
            && let Some(target) = &obs.last_completed_task_definition
            && *target != primary.task_definition
        {
            actions.push(Action::Rollback {
                from_deployment_id: primary.id.clone(),
                task_definition: target.clone(),
            });
        }
        return actions;
    }

    let is_primary = |t: &&&TaskObservation| t.deployment_id == primary.id;
    let primary_tasks: Vec<&TaskObservation> = tasks.iter().filter(is_primary).copied().collect();
    let old_tasks: Vec<&TaskObservation> = tasks
        .iter()
        .filter(|t| t.deployment_id != primary.id)
        .copied()
        .collect();
    let primary_alive = primary_tasks.len() as u32;
    let primary_ready = primary_tasks
        .iter()
        .filter(|t| t.phase == TaskPhase::Ready)
        .count() as u32;
    let total_alive = tasks.len() as u32;
    let total_ready = tasks.iter().filter(|t| t.phase == TaskPhase::Ready).count() as u32;
    let max_total = (u64::from(desired) * u64::from(obs.maximum_percent) / 100) as u32;
    let max_total = max_total.max(desired.min(1));
    let min_healthy =
        (u64::from(desired) * u64::from(obs.minimum_healthy_percent)).div_ceil(100) as u32;
    let min_healthy = min_healthy.min(desired);

    let mut to_stop: Vec<String> = Vec::new();

    // Scale in: the PRIMARY runs more than desired (not-ready ones first).
    let mut stopping_alive = 0u32;
    if primary_alive > desired {
        let mut sorted = primary_tasks.clone();
        sorted.sort_by_key(|t| t.phase == TaskPhase::Ready);
        for t in sorted.iter().take((primary_alive - desired) as usize) {
            to_stop.push(t.id.clone());
            stopping_alive += 1;
        }
    }

    // Old deployments: not-ready tasks go at once; ready ones while enough stay ready.
    let mut ready_left = total_ready;
    let mut old_sorted = old_tasks.clone();
    old_sorted.sort_by_key(|t| t.phase == TaskPhase::Ready);
    let mut old_stopped = 0u32;
    for t in &old_sorted {
        if t.phase == TaskPhase::Ready {
            if ready_left > min_healthy {
                ready_left -= 1;
            } else {
                continue;
            }
        }
        to_stop.push(t.id.clone());
        old_stopped += 1;
    }
    let alive_after_stops = total_alive - stopping_alive - old_stopped;
    if !to_stop.is_empty() {
        actions.push(Action::Stop {
            task_ids: to_stop,
            cause: StopCause::Scheduler,
        });
    }

    // Start PRIMARY tasks within maximumPercent, unless it failed or is backing off.
    let primary_alive_after = primary_alive.min(desired);
    let backing_off = primary
        .last_failure_at
        .is_some_and(|at| obs.now < at + launch_backoff_seconds(primary.failed_tasks));
    if primary.rollout_state != RolloutState::Failed
        && primary_alive_after < desired
        && !backing_off
    {
        let room = max_total.saturating_sub(alive_after_stops);
        let count = (desired - primary_alive_after).min(room);
        if count > 0 {
            actions.push(Action::Start {
                deployment_id: primary.id.clone(),
                count,
            });
        }
    }

    // Done when the PRIMARY alone runs the desired count, all ready.
    // (Old tasks stopped by this decision count until they are gone: the next pass.)
    let settled = primary_ready == desired && primary_alive == desired && old_tasks.is_empty();
    if settled {
        if primary.rollout_state == RolloutState::InProgress {
            actions.push(Action::Complete {
                deployment_id: primary.id.clone(),
            });
        }
        let others: Vec<String> = obs
            .deployments
            .iter()
            .skip(1)
            .map(|d| d.id.clone())
            .collect();
        if !others.is_empty() {
            actions.push(Action::Remove {
                deployment_ids: others,
            });
        }
        if !obs.steady_reported {
            actions.push(Action::SteadyState);
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, td: &str) -> DeploymentObservation {
        DeploymentObservation {
            id: id.into(),
            task_definition: td.into(),
            rollout_state: RolloutState::InProgress,
            failed_tasks: 0,
            last_failure_at: None,
        }
    }

    fn task(id: &str, deployment: &str, phase: TaskPhase) -> TaskObservation {
        TaskObservation {
            id: id.into(),
            deployment_id: deployment.into(),
            phase,
        }
    }

    fn service(
        desired: u32,
        deployments: Vec<DeploymentObservation>,
        tasks: Vec<TaskObservation>,
    ) -> ServiceObservation {
        ServiceObservation {
            desired_count: desired,
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: None,
            deployments,
            tasks,
            last_completed_task_definition: None,
            steady_reported: false,
            now: 1000.0,
        }
    }

    #[test]
    fn a_new_service_starts_its_tasks() {
        let obs = service(2, vec![deployment("new", "td:1")], vec![]);
        assert_eq!(
            decide(&obs),
            vec![Action::Start {
                deployment_id: "new".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn a_service_at_its_desired_count_completes_once_and_reports_steady_state() {
        let mut obs = service(
            1,
            vec![deployment("d", "td:1")],
            vec![task("a", "d", TaskPhase::Ready)],
        );
        assert_eq!(
            decide(&obs),
            vec![
                Action::Complete {
                    deployment_id: "d".into()
                },
                Action::SteadyState
            ]
        );
        obs.deployments[0].rollout_state = RolloutState::Completed;
        obs.steady_reported = true;
        assert_eq!(decide(&obs), vec![]);
    }

    #[test]
    fn old_tasks_stay_until_new_ones_are_ready_at_min_healthy_100() {
        let deployments = vec![deployment("new", "td:2"), deployment("old", "td:1")];
        let obs = service(
            1,
            deployments.clone(),
            vec![task("o1", "old", TaskPhase::Ready)],
        );
        assert_eq!(
            decide(&obs),
            vec![Action::Start {
                deployment_id: "new".into(),
                count: 1
            }]
        );

        let obs = service(
            1,
            deployments.clone(),
            vec![
                task("o1", "old", TaskPhase::Ready),
                task("n1", "new", TaskPhase::Pending),
            ],
        );
        assert_eq!(decide(&obs), vec![]);

        let obs = service(
            1,
            deployments,
            vec![
                task("o1", "old", TaskPhase::Ready),
                task("n1", "new", TaskPhase::Ready),
            ],
        );
        assert_eq!(
            decide(&obs),
            vec![Action::Stop {
                task_ids: vec!["o1".into()],
                cause: StopCause::Scheduler
            }]
        );
    }

    #[test]
    fn the_deployment_completes_and_old_deployments_go_when_their_tasks_are_gone() {
        let obs = service(
            1,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            vec![task("n1", "new", TaskPhase::Ready)],
        );
        assert_eq!(
            decide(&obs),
            vec![
                Action::Complete {
                    deployment_id: "new".into()
                },
                Action::Remove {
                    deployment_ids: vec!["old".into()]
                },
                Action::SteadyState,
            ]
        );
    }

    #[test]
    fn maximum_percent_100_stops_old_tasks_first_when_min_healthy_allows() {
        let mut obs = service(
            2,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            vec![
                task("o1", "old", TaskPhase::Ready),
                task("o2", "old", TaskPhase::Ready),
            ],
        );
        obs.maximum_percent = 100;
        obs.minimum_healthy_percent = 50;
        assert_eq!(
            decide(&obs),
            vec![
                Action::Stop {
                    task_ids: vec!["o1".into()],
                    cause: StopCause::Scheduler
                },
                Action::Start {
                    deployment_id: "new".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn maximum_percent_caps_pending_and_running_together() {
        let obs = service(
            4,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            (0..4)
                .map(|i| task(&format!("o{i}"), "old", TaskPhase::Ready))
                .collect(),
        );
        let mut obs150 = obs.clone();
        obs150.maximum_percent = 150;
        assert_eq!(
            decide(&obs150),
            vec![Action::Start {
                deployment_id: "new".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn old_tasks_that_are_not_ready_are_stopped_at_once() {
        let obs = service(
            1,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            vec![task("o1", "old", TaskPhase::Pending)],
        );
        assert_eq!(
            decide(&obs),
            vec![
                Action::Stop {
                    task_ids: vec!["o1".into()],
                    cause: StopCause::Scheduler
                },
                Action::Start {
                    deployment_id: "new".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn unhealthy_tasks_are_replaced() {
        let obs = service(
            1,
            vec![deployment("d", "td:1")],
            vec![task("a", "d", TaskPhase::Unhealthy)],
        );
        assert_eq!(
            decide(&obs),
            vec![
                Action::Stop {
                    task_ids: vec!["a".into()],
                    cause: StopCause::Unhealthy
                },
                Action::Start {
                    deployment_id: "d".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn scale_in_stops_pending_tasks_before_ready_ones() {
        let mut obs = service(
            1,
            vec![deployment("d", "td:1")],
            vec![
                task("a", "d", TaskPhase::Ready),
                task("b", "d", TaskPhase::Pending),
            ],
        );
        obs.deployments[0].rollout_state = RolloutState::Completed;
        obs.steady_reported = true;
        assert_eq!(
            decide(&obs),
            vec![Action::Stop {
                task_ids: vec!["b".into()],
                cause: StopCause::Scheduler
            }]
        );
        obs.desired_count = 0;
        assert_eq!(
            decide(&obs),
            vec![Action::Stop {
                task_ids: vec!["b".into(), "a".into()],
                cause: StopCause::Scheduler
            }]
        );
    }

    #[test]
    fn failed_tasks_back_off_before_the_next_launch() {
        let mut obs = service(1, vec![deployment("d", "td:1")], vec![]);
        obs.deployments[0].failed_tasks = 2;
        obs.deployments[0].last_failure_at = Some(999.5);
        assert_eq!(decide(&obs), vec![]);
        obs.now = 1002.0;
        assert_eq!(
            decide(&obs),
            vec![Action::Start {
                deployment_id: "d".into(),
                count: 1
            }]
        );
    }

    #[test]
    fn the_failure_threshold_is_half_the_desired_count_within_3_and_200() {
        assert_eq!(failure_threshold(0), 3);
        assert_eq!(failure_threshold(1), 3);
        assert_eq!(failure_threshold(7), 4);
        assert_eq!(failure_threshold(10), 5);
        assert_eq!(failure_threshold(1000), 200);
    }

    #[test]
    fn the_circuit_breaker_fails_the_deployment_and_rolls_back() {
        let mut obs = service(
            1,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            vec![task("o1", "old", TaskPhase::Ready)],
        );
        obs.deployments[0].failed_tasks = 3;
        obs.last_completed_task_definition = Some("td:1".into());
        // Without the breaker: keep trying.
        obs.now = 2000.0;
        assert_eq!(
            decide(&obs),
            vec![Action::Start {
                deployment_id: "new".into(),
                count: 1
            }]
        );
        obs.circuit_breaker = Some(CircuitBreaker { rollback: true });
        assert_eq!(
            decide(&obs),
            vec![
                Action::Fail {
                    deployment_id: "new".into()
                },
                Action::Rollback {
                    from_deployment_id: "new".into(),
                    task_definition: "td:1".into()
                },
            ]
        );
        obs.circuit_breaker = Some(CircuitBreaker { rollback: false });
        assert_eq!(
            decide(&obs),
            vec![Action::Fail {
                deployment_id: "new".into()
            }]
        );
    }

    #[test]
    fn a_failed_deployment_without_rollback_starts_nothing_more() {
        let mut obs = service(
            1,
            vec![deployment("new", "td:2"), deployment("old", "td:1")],
            vec![task("o1", "old", TaskPhase::Ready)],
        );
        obs.deployments[0].rollout_state = RolloutState::Failed;
        obs.circuit_breaker = Some(CircuitBreaker { rollback: false });
        assert_eq!(decide(&obs), vec![]);
    }
}
