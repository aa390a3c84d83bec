//! Properties of ecs-roll's rollout judge over generated observations: a deployment is judged
//! rolled out exactly when the rules of `rollout.rs` say so, a rollback or a supersession
//! names a PRIMARY deployment that really runs, the order DescribeServices lists the
//! deployments in changes nothing, and a success counts only once it has held for the
//! stable time without a new stopped task.

use ecs_roll::rollout::{DeploymentView, Followed, Observation, Settling, Verdict, judge};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// The task definition we roll out; the others are what ran before or what someone else rolls.
const OURS_TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:8";
const TASK_DEFINITIONS: [&str; 3] = [
    "arn:aws:ecs:us-east-1:1:task-definition/api:7",
    OURS_TD,
    "arn:aws:ecs:us-east-1:1:task-definition/api:9",
];

fn rollout_state() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.8,
        prop_oneof![Just("IN_PROGRESS"), Just("COMPLETED"), Just("FAILED")].prop_map(str::to_owned),
    )
}

/// One deployment with id `ecs-svc/{index}`; its status is set by [`observation`].
fn deployment(index: usize) -> impl Strategy<Value = DeploymentView> {
    (
        0usize..3,
        rollout_state(),
        prop::option::of("[a-zA-Z ]{1,20}"),
        0i32..4,
        0i32..5,
        0i32..3,
        0i32..3,
        prop::bool::ANY,
    )
        .prop_map(
            move |(td, rollout_state, reason, desired, running, pending, failed, active)| {
                DeploymentView {
                    id: format!("ecs-svc/{index}"),
                    status: if active { "ACTIVE" } else { "INACTIVE" }.to_owned(),
                    task_definition: TASK_DEFINITIONS[td].to_owned(),
                    rollout_state,
                    rollout_state_reason: reason,
                    desired,
                    running,
                    pending,
                    failed_tasks: failed,
                }
            },
        )
}

/// What a poll sees: up to four deployments with distinct ids, at most one PRIMARY (as ECS
/// has it), and the stopped tasks of ours.
fn observation() -> impl Strategy<Value = Observation> {
    (0usize..5)
        .prop_flat_map(|n| {
            let deployments: Vec<_> = (0..n).map(deployment).collect();
            (deployments, prop::option::of(0..n.max(1)), 0usize..6)
        })
        .prop_map(|(mut deployments, primary, stopped_tasks)| {
            if let Some(d) = primary.and_then(|p| deployments.get_mut(p)) {
                d.status = "PRIMARY".to_owned();
            }
            Observation {
                deployments,
                stopped_tasks,
            }
        })
}

/// Ours is `ecs-svc/0`..`ecs-svc/4`: present in the observation or not; what ran before it
/// is `api:7` (or nothing: a new service).
fn followed() -> impl Strategy<Value = Followed> {
    (0usize..5, 0usize..5, prop::bool::ANY).prop_map(|(id, max_task_failures, new_service)| {
        Followed {
            deployment_id: format!("ecs-svc/{id}"),
            task_definition: OURS_TD.to_owned(),
            previous_task_definition: (!new_service).then(|| TASK_DEFINITIONS[0].to_owned()),
            max_task_failures,
        }
    })
}

/// The rule for success, written out from the documented rules: ours is PRIMARY, runs our
/// task definition at its desired count, is not FAILED, and is COMPLETED (or, without a
/// rolloutState, the only deployment).
fn rolled_out(followed: &Followed, o: &Observation) -> bool {
    let Some(ours) = o
        .deployments
        .iter()
        .find(|d| d.id == followed.deployment_id)
    else {
        return false;
    };
    let state_says_done = match ours.rollout_state.as_deref() {
        Some(state) => state == "COMPLETED",
        None => o.deployments.len() == 1,
    };
    ours.status == "PRIMARY"
        && ours.task_definition == followed.task_definition
        && ours.running >= ours.desired
        && state_says_done
}

/// The PRIMARY deployment that is not ours, if any.
fn other_primary<'a>(followed: &Followed, o: &'a Observation) -> Option<&'a DeploymentView> {
    o.deployments
        .iter()
        .find(|d| d.status == "PRIMARY" && d.id != followed.deployment_id)
}

/// A poll for [`Settling`]: whether the judge said Completed, the stopped tasks so far, and
/// the time since the previous poll.
fn polls() -> impl Strategy<Value = Vec<(bool, usize, u64)>> {
    prop::collection::vec((prop::bool::weighted(0.7), 0usize..2, 0u64..40), 1..20).prop_map(
        |mut polls| {
            // Stopped tasks only ever add up.
            let mut stopped = 0;
            for poll in &mut polls {
                stopped += poll.1;
                poll.1 = stopped;
            }
            polls
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn completed_exactly_when_ours_runs_our_task_definition_at_its_desired_count(
        followed in followed(),
        o in observation(),
    ) {
        let verdict = judge(&followed, &o);
        prop_assert_eq!(
            verdict == Verdict::Completed,
            rolled_out(&followed, &o),
            "{:?} on {:?}",
            verdict,
            o
        );
    }

    #[test]
    fn every_other_verdict_names_what_really_happened(followed in followed(), o in observation()) {
        let ours = o.deployments.iter().find(|d| d.id == followed.deployment_id);
        match judge(&followed, &o) {
            Verdict::Completed => {}
            Verdict::Waiting => {
                // Waiting is for ours, PRIMARY and not FAILED, with the task limit not reached.
                let ours = ours.expect("waiting on a deployment that is gone");
                prop_assert_eq!(ours.status.as_str(), "PRIMARY");
                prop_assert_ne!(ours.rollout_state.as_deref(), Some("FAILED"));
                prop_assert!(
                    followed.max_task_failures == 0 || o.stopped_tasks < followed.max_task_failures
                );
            }
            Verdict::TasksFailing { stopped } => {
                prop_assert!(followed.max_task_failures > 0);
                prop_assert!(stopped >= followed.max_task_failures);
                prop_assert_eq!(stopped, o.stopped_tasks);
            }
            Verdict::RolledBackByEcs { live, .. } => {
                // ECS rolled back only if ours failed or vanished and another PRIMARY runs
                // what ran before ours: the one named (anything else is someone else's).
                prop_assert!(ours.is_none_or(|d| d.rollout_state.as_deref() == Some("FAILED")));
                let primary = other_primary(&followed, &o).expect("a rollback to nothing");
                prop_assert_eq!(&primary.task_definition, &live);
                prop_assert_eq!(Some(&live), followed.previous_task_definition.as_ref());
            }
            Verdict::Superseded { by, live } => {
                let primary = other_primary(&followed, &o).expect("superseded by nothing");
                prop_assert_eq!(&primary.id, &by);
                prop_assert_eq!(&primary.task_definition, &live);
            }
            Verdict::Failed { .. } => {
                // Failure is ECS's FAILED, or ours gone or demoted with no rollback to name.
                let failed = ours.is_some_and(|d| d.rollout_state.as_deref() == Some("FAILED"));
                let rolled_back = other_primary(&followed, &o)
                    .is_some_and(|p| p.task_definition != followed.task_definition);
                prop_assert!(
                    (failed && !rolled_back) || other_primary(&followed, &o).is_none(),
                    "{:?}",
                    o
                );
            }
        }
    }

    #[test]
    fn the_order_deployments_are_listed_in_changes_nothing(
        followed in followed(),
        (o, shuffled) in observation().prop_flat_map(|o| {
            let deployments = o.deployments.clone();
            (Just(o), Just(deployments).prop_shuffle())
        }),
    ) {
        let reordered = Observation { deployments: shuffled, ..o.clone() };
        prop_assert_eq!(judge(&followed, &o), judge(&followed, &reordered));
    }

    #[test]
    fn a_success_counts_once_it_has_held_for_the_stable_time_without_new_stops(
        polls in polls(),
        stable_ms in 0u64..60,
    ) {
        let stable_for = Duration::from_millis(stable_ms);
        let start = Instant::now();
        let mut settling = Settling::default();
        let mut now = start;
        let mut times = Vec::new();
        for (i, &(completed, stopped, dt)) in polls.iter().enumerate() {
            now += Duration::from_millis(dt);
            times.push(now);
            let verdict = if completed { Verdict::Completed } else { Verdict::Waiting };
            let confirmed = settling.confirm(verdict, stopped, now, stable_for);
            // The run of Completed polls, with the same stopped count, that ends here.
            let run_start = (0..=i)
                .rev()
                .take_while(|&j| polls[j].0 && polls[j].1 == stopped)
                .last();
            let held = completed
                && run_start.is_some_and(|j| now.duration_since(times[j]) >= stable_for);
            prop_assert_eq!(
                confirmed == Verdict::Completed,
                held,
                "poll {} of {:?}, stable for {:?}",
                i,
                polls,
                stable_for
            );
        }
    }
}
