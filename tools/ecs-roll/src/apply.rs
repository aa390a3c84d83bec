//! Carrying out a plan (doing): register, update or create, follow our deployment, and roll
//! back when it fails.

use crate::ecs::{self, Ecs, StoppedTask};
use crate::follow::{self, Ending, EventLog, FollowReport};
use crate::plan::{Action, ServicePlan};
use crate::record::{self, now};
use crate::request::Request;
use crate::rollout::{Followed, Verdict};
use crate::taskdef;
use common::actions::{ItemOutputs, SummaryTable, item_outputs};
use common::envelope::{Deployment, DeploymentFailure, Outcome};
use common::{Error, Result, Ui};
use std::time::{Duration, Instant};

/// How one service's deployment ended, for the exit code and the summary.
#[derive(Debug)]
pub(crate) struct ServiceResult {
    pub(crate) label: String,
    pub(crate) record: Deployment,
    pub(crate) error: Option<Error>,
}

/// Carries out one plan, publishing the record at every step.
pub(crate) async fn apply(
    ecs: &Ecs,
    plan: &ServicePlan,
    request: &Request,
    ui: &Ui,
    publish: impl Fn(&Deployment),
) -> ServiceResult {
    let mut events = EventLog::default();
    if let Some(existing) = &plan.existing {
        events.mark_seen(existing.events());
    }
    let mut deploying = Deploying {
        ecs,
        plan,
        request,
        ui,
        publish,
        label: format!("{}/{}", ecs.cluster, plan.service),
        record: record::start(
            &ecs.cluster,
            plan,
            request.endpoints_of(&plan.service),
            false,
        ),
        events,
    };
    let error = deploying.run().await.err();
    ServiceResult {
        label: deploying.label,
        record: deploying.record,
        error,
    }
}

/// One service's deployment being carried out: what it needs, and the record it keeps
/// current (published after every step, so an interrupt writes what is known).
struct Deploying<'a, P: Fn(&Deployment)> {
    ecs: &'a Ecs,
    plan: &'a ServicePlan,
    request: &'a Request,
    ui: &'a Ui,
    publish: P,
    /// `cluster/service`, the prefix of every line.
    label: String,
    record: Deployment,
    events: EventLog,
}

impl<P: Fn(&Deployment)> Deploying<'_, P> {
    /// Deploys, then records how it ended.
    async fn run(&mut self) -> Result<()> {
        let result = self.deploy().await;
        if let Err(err) = &result {
            if self.record.failure.is_none() {
                self.record.failure = Some(DeploymentFailure::because(err.to_string()));
            }
            if self.record.outcome == Outcome::InProgress {
                self.record.outcome = Outcome::Failed;
            }
        }
        self.record.finished_at = Some(now());
        (self.publish)(&self.record);
        result
    }

    async fn deploy(&mut self) -> Result<()> {
        let Some((arn, service)) = self.start().await? else {
            return Ok(());
        };
        self.record.ecs.task_definition = Some(arn.clone());
        let deployment = ecs::primary_deployment(&service).filter(|d| d.task_definition == arn);
        self.record.ecs.deployment_id = deployment.as_ref().map(|d| d.id.clone());
        (self.publish)(&self.record);
        if !self.request.waiting.follow {
            // Not following, so a deployment ECS has not shown yet is no reason to fail.
            self.line(&format!(
                "deployment {} started (not waiting: --no-wait)",
                self.record
                    .ecs
                    .deployment_id
                    .as_deref()
                    .unwrap_or("(not shown by ECS yet)")
            ));
            self.record.outcome = Outcome::Started;
            return Ok(());
        }
        let deployment = deployment.ok_or_else(|| {
            Error::failed(format!(
                "{}: ECS shows no PRIMARY deployment of {} after the update",
                self.label,
                taskdef::short_name(&arn)
            ))
        })?;
        self.line(&format!(
            "following deployment {} of {} (poll {}, timeout {})",
            deployment.id,
            taskdef::short_name(&arn),
            humantime::format_duration(self.request.waiting.pace.poll),
            humantime::format_duration(self.request.waiting.pace.timeout)
        ));
        let begun = Instant::now();
        let report = self
            .follow(&deployment.id, &arn, self.plan.previous_arn())
            .await;
        match self.conclude(&arn, &report, begun) {
            Ok(concluded) => concluded,
            Err(failure) => Err(self.recover(&arn, failure, &report).await),
        }
    }

    /// Starts the deployment the plan calls for; `None` when there is nothing to follow.
    async fn start(&mut self) -> Result<Option<(String, aws_sdk_ecs::types::Service)>> {
        let (ecs, plan, changes) = (self.ecs, self.plan, &self.request.changes);
        match &plan.action {
            Action::Unchanged => {
                self.record.outcome = Outcome::Unchanged;
                Ok(None)
            }
            Action::Scale(n) => {
                ecs.scale_service(&plan.service, *n).await?;
                self.line(&format!("desired count set to {n}"));
                self.record.outcome = Outcome::Scaled;
                Ok(None)
            }
            Action::Follow { .. } => {
                let arn = plan.current_arn.clone().unwrap_or_default();
                let service = plan.existing.clone().expect("planned from the service");
                Ok(Some((arn, service)))
            }
            Action::Redeploy => {
                let arn = plan.current_arn.clone().unwrap_or_default();
                let service = ecs
                    .update_service(&plan.service, &arn, changes.desired_count, true)
                    .await?;
                Ok(Some((arn, service)))
            }
            Action::Deploy => {
                let arn = self.register().await?;
                let service = ecs
                    .update_service(
                        &plan.service,
                        &arn,
                        changes.desired_count,
                        changes.force_new_deployment,
                    )
                    .await?;
                Ok(Some((arn, service)))
            }
            Action::Create => {
                let arn = self.register().await?;
                let definition = plan.definition.as_ref().expect("planned with a definition");
                let service = ecs
                    .create_service(definition, &arn, changes.desired_count)
                    .await?;
                self.line("created the service");
                Ok(Some((arn, service)))
            }
        }
    }

    async fn register(&mut self) -> Result<String> {
        let arn = self
            .ecs
            .register(&self.plan.next, &self.plan.next_tags)
            .await?;
        self.line(&format!("registered {}", taskdef::short_name(&arn)));
        self.record.ecs.task_definition = Some(arn.clone());
        (self.publish)(&self.record);
        Ok(arn)
    }

    /// Follows deployment `id` of `task_definition` until it is decided; `previous` ran
    /// before it (where ECS's circuit breaker would return).
    async fn follow(
        &mut self,
        id: &str,
        task_definition: &str,
        previous: Option<String>,
    ) -> FollowReport {
        let followed = Followed {
            deployment_id: id.to_owned(),
            task_definition: task_definition.to_owned(),
            previous_task_definition: previous,
            max_task_failures: self.request.waiting.max_task_failures,
        };
        let report = follow::follow(
            self.ecs,
            &self.plan.service,
            &followed,
            self.request.waiting.pace,
            &mut self.events,
            self.ui,
        )
        .await;
        self.record.events = Some(self.events.recorded.clone());
        report
    }

    /// What following our deployment ended in: done (well or not) with nothing more to do,
    /// or a [`Failure`] that calls for a rollback.
    fn conclude(
        &mut self,
        arn: &str,
        report: &FollowReport,
        begun: Instant,
    ) -> Result<Result<()>, Failure> {
        let label = &self.label;
        match &report.ending {
            Ending::Decided(Verdict::Completed) => {
                self.line(&format!(
                    "completed in {}: {} runs",
                    humantime::format_duration(round_seconds(begun.elapsed())),
                    taskdef::short_name(arn)
                ));
                self.record.outcome = Outcome::Completed;
                self.record.ecs.live_task_definition = Some(arn.to_owned());
                Ok(Ok(()))
            }
            Ending::Decided(Verdict::RolledBackByEcs { live, reason }) => {
                self.record.outcome = Outcome::RolledBackByEcs;
                self.record.ecs.live_task_definition = Some(live.clone());
                self.record.failure = Some(record::failure(reason, report));
                Ok(Err(Error::failed(format!(
                    "{label}: ECS rolled the deployment back to {}: {reason}",
                    taskdef::short_name(live)
                ))))
            }
            Ending::Decided(Verdict::Superseded { by, live }) => {
                let reason = format!(
                    "deployment {by} of {} replaced ours; not rolling back",
                    taskdef::short_name(live)
                );
                self.record.outcome = Outcome::Superseded;
                self.record.ecs.live_task_definition = Some(live.clone());
                self.record.failure = Some(record::failure(&reason, report));
                Ok(Err(Error::failed(format!("{label}: {reason}"))))
            }
            Ending::Decided(Verdict::Waiting) => unreachable!("follow returns only decisions"),
            Ending::Decided(Verdict::Failed { reason }) => Err(Failure::failed(reason.clone())),
            Ending::Decided(Verdict::TasksFailing { stopped }) => Err(Failure::failed(format!(
                "{stopped} tasks of the new deployment stopped: {}",
                report
                    .stopped_tasks
                    .iter()
                    .take(3)
                    .map(StoppedTask::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
            Ending::TimedOut => Err(Failure {
                reason: format!(
                    "not rolled out after {}",
                    humantime::format_duration(self.request.waiting.pace.timeout)
                ),
                timed_out: true,
            }),
            Ending::Unobservable(err) => Err(Failure::failed(format!(
                "cannot follow the deployment: {err}"
            ))),
        }
    }

    /// Records `failure`, rolls back when that is possible and wanted, and returns the
    /// error to exit with (124 for a timeout, 1 otherwise).
    async fn recover(&mut self, arn: &str, failure: Failure, report: &FollowReport) -> Error {
        self.record.failure = Some(record::failure(&failure.reason, report));
        self.line(&format!("failed: {}", failure.reason));
        let left_as_is = if failure.timed_out {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        };
        let note = match (self.plan.previous_arn(), self.request.waiting.roll_back) {
            (Some(previous), true) => {
                self.record.outcome = Outcome::RollingBack;
                (self.publish)(&self.record);
                self.roll_back(&previous).await
            }
            (Some(_), false) => {
                self.record.outcome = left_as_is;
                self.record.ecs.live_task_definition = Some(arn.to_owned());
                format!("left on {} (--no-rollback)", taskdef::short_name(arn))
            }
            (None, _) => {
                self.record.outcome = left_as_is;
                self.record.ecs.live_task_definition = Some(arn.to_owned());
                "there is no previous task definition to roll back to".to_owned()
            }
        };
        let message = format!(
            "{}: {}; {note}",
            self.label,
            failure.reason.trim_end_matches('.')
        );
        match failure.timed_out {
            true => Error::timed_out(message),
            false => Error::failed(message),
        }
    }

    /// Points the service back at `previous` and follows that deployment (with a fresh
    /// `--timeout`); returns what to say about it.
    async fn roll_back(&mut self, previous: &str) -> String {
        let short = taskdef::short_name(previous).to_owned();
        self.line(&format!("rolling back to {short}"));
        let updated = self
            .ecs
            .update_service(&self.plan.service, previous, None, false)
            .await;
        let deployment = match updated {
            Ok(service) => ecs::primary_deployment(&service)
                .filter(|d| d.task_definition == previous)
                .ok_or_else(|| "ECS shows no PRIMARY deployment of it".to_owned()),
            Err(err) => Err(err.to_string()),
        };
        let deployment = match deployment {
            Ok(deployment) => deployment,
            Err(why) => {
                self.record.outcome = Outcome::RollbackFailed;
                return format!("rollback to {short} failed: {why}");
            }
        };
        self.record.ecs.rollback_deployment_id = Some(deployment.id.clone());
        (self.publish)(&self.record);
        let report = self.follow(&deployment.id, previous, None).await;
        match report.ending {
            Ending::Decided(Verdict::Completed) => {
                self.line(&format!("rolled back: {short} runs"));
                self.record.outcome = Outcome::RolledBack;
                self.record.ecs.live_task_definition = Some(previous.to_owned());
                format!("rolled back to {short}")
            }
            Ending::Decided(Verdict::Superseded { by, live }) => {
                // Another run deployed meanwhile: what runs is its, not a failed rollback.
                self.record.outcome = Outcome::Superseded;
                self.record.ecs.live_task_definition = Some(live.clone());
                format!(
                    "the rollback was replaced by deployment {by} of {}",
                    taskdef::short_name(&live)
                )
            }
            other => {
                self.record.outcome = Outcome::RollbackFailed;
                format!("rollback to {short} did not complete: {other:?}")
            }
        }
    }

    fn line(&self, message: &str) {
        self.ui.line(&format!("{}: {message}", self.label));
    }
}

/// Why a deployment failed, and whether it was the timeout.
struct Failure {
    reason: String,
    timed_out: bool,
}

impl Failure {
    fn failed(reason: String) -> Failure {
        Failure {
            reason,
            timed_out: false,
        }
    }
}

fn round_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// The step summary table and step outputs under GitHub Actions: `outcome` and
/// `task_definition` of the last service, and `<service>_outcome` /
/// `<service>_task_definition` of each when there are several.
pub(crate) fn summarize(results: &[ServiceResult], ui: &Ui) {
    let live = |r: &ServiceResult| r.record.ecs.live_task_definition.clone();
    let outputs: Vec<ItemOutputs> = results
        .iter()
        .map(|r| ItemOutputs {
            name: r.record.service.clone().unwrap_or_default(),
            values: vec![
                ("outcome", r.record.outcome.to_string()),
                ("task_definition", live(r).unwrap_or_default()),
            ],
        })
        .collect();
    ui.set_outputs(&item_outputs(&outputs));
    let mut table =
        SummaryTable::new(&["service", "outcome", "task definition"]).titled("ecs-roll");
    for r in results {
        let live = live(r);
        table.row([
            r.label.as_str(),
            r.record.outcome.as_str(),
            live.as_deref().map(taskdef::short_name).unwrap_or("-"),
        ]);
    }
    ui.summary(&table.to_markdown());
}

/// One error for the run: every failed service named; 124 only when every failure was a
/// timeout.
pub(crate) fn overall(results: Vec<ServiceResult>) -> Result<()> {
    let errors: Vec<Error> = results.into_iter().filter_map(|r| r.error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let all_timeouts = errors.iter().all(|e| e.exit() == common::Exit::TimedOut);
    let usage = errors.iter().any(|e| e.exit() == common::Exit::Usage);
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ");
    Err(match (usage, all_timeouts) {
        (true, _) => Error::usage(message),
        (false, true) => Error::timed_out(message),
        (false, false) => Error::failed(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timeout_among_failures_is_a_failure_and_only_timeouts_are_124() {
        let result = |error: Option<Error>| ServiceResult {
            label: "dev/api".into(),
            record: Deployment {
                outcome: Outcome::Failed,
                ..Deployment::default()
            },
            error,
        };
        assert!(overall(vec![result(None), result(None)]).is_ok());
        let timeouts = overall(vec![
            result(Some(Error::timed_out("a"))),
            result(Some(Error::timed_out("b"))),
        ]);
        assert_eq!(timeouts.unwrap_err().exit(), common::Exit::TimedOut);
        let mixed = overall(vec![
            result(Some(Error::timed_out("a"))),
            result(Some(Error::failed("b"))),
        ])
        .unwrap_err();
        assert_eq!(mixed.exit(), common::Exit::Failed);
        assert!(mixed.to_string().contains("a | b"), "{mixed}");
    }
}
