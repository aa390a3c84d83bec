//! The `deployments[]` entry of one service ([`Deployment`]), kept current while it rolls
//! out, so that an interrupt writes what is known.

use crate::ecs::StoppedTask;
use crate::follow::FollowReport;
use crate::plan::{Action, ServicePlan};
use common::envelope::{
    Deployment, DeploymentFailure, EcsDeployment, Outcome, Platform, StoppedContainer,
    StoppedTask as StoppedTaskEntry,
};
use std::time::SystemTime;

/// The entry of a service about to be rolled: `in_progress` (`planned` or `unchanged` for a
/// dry run), what runs now, the images it will get and where it answers.
pub(crate) fn start(
    cluster: &str,
    plan: &ServicePlan,
    endpoints: Vec<String>,
    dry_run: bool,
) -> Deployment {
    let unchanged = matches!(
        plan.action,
        Action::Unchanged | Action::Scale(_) | Action::Follow { .. }
    );
    let outcome = match (dry_run, &plan.action) {
        (false, _) => Outcome::InProgress,
        (true, Action::Unchanged) => Outcome::Unchanged,
        (true, _) => Outcome::Planned,
    };
    Deployment {
        platform: Platform::Ecs,
        cluster: Some(cluster.to_owned()),
        service: Some(plan.service.clone()),
        outcome,
        images: plan.images(),
        endpoints,
        dry_run,
        ecs: EcsDeployment {
            task_definition: plan.current_arn.clone().filter(|_| unchanged),
            previous_task_definition: plan.previous_arn(),
            live_task_definition: plan.current_arn.clone(),
            deployment_id: None,
            rollback_deployment_id: None,
        },
        started_at: Some(now()),
        finished_at: None,
        events: Some(Vec::new()),
        failure: None,
        diff: dry_run.then(|| plan.diff.clone()).filter(|d| !d.is_empty()),
        kubernetes: Default::default(),
        extra: serde_json::Map::new(),
    }
}

/// Why a deployment failed, with what following it saw.
pub(crate) fn failure(reason: &str, report: &FollowReport) -> DeploymentFailure {
    DeploymentFailure {
        reason: reason.to_owned(),
        polls: Some(report.polls),
        polls_after_first_stopped_task: Some(report.polls_after_first_stop),
        stopped_tasks: Some(report.stopped_tasks.iter().map(stopped_task).collect()),
        kubernetes: Default::default(),
        extra: serde_json::Map::new(),
    }
}

fn stopped_task(task: &StoppedTask) -> StoppedTaskEntry {
    StoppedTaskEntry {
        task_arn: task.task_arn.clone(),
        stopped_reason: task.stopped_reason.clone(),
        containers: task
            .containers
            .iter()
            .map(|(name, exit_code, reason)| StoppedContainer {
                name: name.clone(),
                exit_code: *exit_code,
                reason: reason.clone(),
                extra: serde_json::Map::new(),
            })
            .collect(),
        extra: serde_json::Map::new(),
    }
}

/// Now, as RFC 3339 to the second.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
