//! The ECS calls ecs-roll makes, each turned into a one-line error on failure.
//!
//! Throttling and transient errors are retried by the SDK's standard retry strategy
//! (exponential backoff with jitter), with more attempts than its default 3 because a
//! deployment should not fail on a busy control plane.

use crate::rollout::{DeploymentView, Observation};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::types::{
    DesiredStatus, Service, ServiceEvent, Tag, Task, TaskDefinition, TaskDefinitionField,
};
use common::Error;
use std::collections::BTreeMap;
use std::time::Duration;

/// What can go wrong talking to ECS. Every variant is a job failure (exit 1), mapped in
/// one place (`From<EcsError> for common::Error`).
#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// A call failed (after the SDK's retries): what was being done, and the SDK's cause
    /// chain on one line.
    #[error("cannot {doing}: {cause}")]
    Call { doing: String, cause: String },
    /// ECS answered without what the call is for.
    #[error("{0}")]
    Answer(String),
    /// The service went away while its deployment was followed.
    #[error("service {cluster}/{service} disappeared during the deployment")]
    Disappeared { cluster: String, service: String },
}

impl EcsError {
    fn call(doing: String, err: &(dyn std::error::Error + 'static)) -> EcsError {
        EcsError::Call {
            doing,
            cause: common::aws::error_line(err),
        }
    }
}

impl From<EcsError> for Error {
    fn from(err: EcsError) -> Error {
        Error::failed(err)
    }
}

/// Attempts per call, throttling included.
const MAX_ATTEMPTS: u32 = 8;

/// An ECS client for one cluster.
#[derive(Debug, Clone)]
pub struct Ecs {
    client: Client,
    pub cluster: String,
}

/// A task of our deployment that stopped, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedTask {
    pub task_arn: String,
    pub stopped_reason: String,
    /// `(container, exit code, reason)`.
    pub containers: Vec<(String, Option<i32>, Option<String>)>,
}

impl StoppedTask {
    fn from_task(task: &Task) -> StoppedTask {
        StoppedTask {
            task_arn: task.task_arn().unwrap_or_default().to_owned(),
            stopped_reason: task.stopped_reason().unwrap_or("unknown").to_owned(),
            containers: task
                .containers()
                .iter()
                .map(|c| {
                    (
                        c.name().unwrap_or_default().to_owned(),
                        c.exit_code(),
                        c.reason().map(str::to_owned),
                    )
                })
                .collect(),
        }
    }

    /// `task 3f2…: Essential container in task exited (app: exit 3)`.
    pub fn describe(&self) -> String {
        let id = self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn);
        let containers: Vec<String> = self
            .containers
            .iter()
            .map(|(name, code, reason)| {
                let mut text = name.clone();
                if let Some(code) = code {
                    text.push_str(&format!(": exit {code}"));
                }
                if let Some(reason) = reason {
                    text.push_str(&format!(": {reason}"));
                }
                text
            })
            .collect();
        match containers.is_empty() {
            true => format!("task {id}: {}", self.stopped_reason),
            false => format!(
                "task {id}: {} ({})",
                self.stopped_reason,
                containers.join("; ")
            ),
        }
    }
}

impl Ecs {
    pub fn new(config: &common::aws::SdkConfig, cluster: &str) -> Ecs {
        let conf = aws_sdk_ecs::config::Builder::from(config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_max_backoff(Duration::from_secs(10)),
            )
            .retry_classifier(common::aws::TooManyRequests)
            .build();
        Ecs {
            client: Client::from_conf(conf),
            cluster: cluster.to_owned(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The service, or `None` when it does not exist (or was deleted: INACTIVE).
    pub async fn describe_service(&self, name: &str) -> Result<Option<Service>, EcsError> {
        let output = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(name)
            .send()
            .await
            .map_err(|e| EcsError::call(format!("describe service {}/{name}", self.cluster), &e))?;
        let service = output
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.service_name() == Some(name) || s.service_arn() == Some(name));
        Ok(service.filter(|s| s.status() != Some("INACTIVE")))
    }

    /// The task definition with its tags.
    pub async fn describe_task_definition(
        &self,
        arn: &str,
    ) -> Result<(TaskDefinition, Vec<Tag>), EcsError> {
        let output = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| EcsError::call(format!("describe task definition {arn}"), &e))?;
        let td = output
            .task_definition
            .ok_or_else(|| EcsError::Answer(format!("ECS described no task definition {arn}")))?;
        Ok((td, output.tags.unwrap_or_default()))
    }

    /// Registers `td` as a new revision; returns its ARN.
    pub async fn register(&self, td: &TaskDefinition, tags: &[Tag]) -> Result<String, EcsError> {
        let family = td.family().unwrap_or_default();
        let output = crate::taskdef::registration(&self.client, td, tags)
            .send()
            .await
            .map_err(|e| EcsError::call(format!("register task definition {family}"), &e))?;
        output
            .task_definition
            .and_then(|td| td.task_definition_arn)
            .ok_or_else(|| {
                EcsError::Answer("RegisterTaskDefinition answered without an ARN".to_owned())
            })
    }

    /// Points the service at `task_definition`; returns the service as updated.
    pub async fn update_service(
        &self,
        service: &str,
        task_definition: &str,
        desired_count: Option<i32>,
        force_new_deployment: bool,
    ) -> Result<Service, EcsError> {
        let output = self
            .client
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(task_definition)
            .set_desired_count(desired_count)
            .force_new_deployment(force_new_deployment)
            .send()
            .await
            .map_err(|e| {
                EcsError::call(format!("update service {}/{service}", self.cluster), &e)
            })?;
        output.service.ok_or_else(|| {
            EcsError::Answer("UpdateService answered without the service".to_owned())
        })
    }

    /// Changes only the desired count.
    pub async fn scale_service(&self, service: &str, desired_count: i32) -> Result<(), EcsError> {
        self.client
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .desired_count(desired_count)
            .send()
            .await
            .map_err(|e| EcsError::call(format!("scale service {}/{service}", self.cluster), &e))?;
        Ok(())
    }

    /// Creates the service `definition` describes, running `task_definition`.
    pub async fn create_service(
        &self,
        definition: &Service,
        task_definition: &str,
        desired_count: Option<i32>,
    ) -> Result<Service, EcsError> {
        let d = definition.clone();
        let name = d.service_name.clone().unwrap_or_default();
        let output = self
            .client
            .create_service()
            .cluster(&self.cluster)
            .service_name(&name)
            .task_definition(task_definition)
            .desired_count(desired_count.unwrap_or(d.desired_count))
            .set_load_balancers(d.load_balancers)
            .set_service_registries(d.service_registries)
            .set_launch_type(d.launch_type)
            .set_capacity_provider_strategy(d.capacity_provider_strategy)
            .set_platform_version(d.platform_version)
            .set_role(d.role_arn)
            .set_deployment_configuration(d.deployment_configuration)
            .set_placement_constraints(d.placement_constraints)
            .set_placement_strategy(d.placement_strategy)
            .set_network_configuration(d.network_configuration)
            .set_health_check_grace_period_seconds(d.health_check_grace_period_seconds)
            .set_scheduling_strategy(d.scheduling_strategy)
            .set_deployment_controller(d.deployment_controller)
            .set_tags(d.tags)
            .enable_ecs_managed_tags(d.enable_ecs_managed_tags)
            .set_propagate_tags(d.propagate_tags)
            .enable_execute_command(d.enable_execute_command)
            .set_availability_zone_rebalancing(d.availability_zone_rebalancing)
            .send()
            .await
            .map_err(|e| EcsError::call(format!("create service {}/{name}", self.cluster), &e))?;
        output.service.ok_or_else(|| {
            EcsError::Answer("CreateService answered without the service".to_owned())
        })
    }

    /// One look at the service and at the stopped tasks of `deployment_id`. Tasks already
    /// in `stopped` are not described again.
    pub async fn observe(
        &self,
        service: &str,
        deployment_id: &str,
        stopped: &mut BTreeMap<String, StoppedTask>,
    ) -> Result<(Observation, Vec<ServiceEvent>), EcsError> {
        let described =
            self.describe_service(service)
                .await?
                .ok_or_else(|| EcsError::Disappeared {
                    cluster: self.cluster.clone(),
                    service: service.to_owned(),
                })?;
        self.collect_stopped_tasks(deployment_id, stopped).await?;
        let observation = Observation {
            deployments: described.deployments().iter().map(view).collect(),
            stopped_tasks: stopped.len(),
        };
        Ok((observation, described.events.unwrap_or_default()))
    }

    async fn collect_stopped_tasks(
        &self,
        deployment_id: &str,
        stopped: &mut BTreeMap<String, StoppedTask>,
    ) -> Result<(), EcsError> {
        let listed = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .started_by(deployment_id)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .map_err(|e| EcsError::call("list stopped tasks".to_owned(), &e))?;
        let new: Vec<String> = listed
            .task_arns()
            .iter()
            .filter(|arn| !stopped.contains_key(*arn))
            .cloned()
            .collect();
        // DescribeTasks takes at most 100 tasks per call.
        for chunk in new.chunks(100) {
            let described = self
                .client
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| EcsError::call("describe stopped tasks".to_owned(), &e))?;
            for task in described.tasks() {
                // A task asked to stop may still be stopping; count it once it has.
                if task.last_status() == Some("STOPPED") {
                    let stopped_task = StoppedTask::from_task(task);
                    stopped.insert(stopped_task.task_arn.clone(), stopped_task);
                }
            }
        }
        Ok(())
    }
}

/// One deployment as [`crate::rollout`] reads it.
pub(crate) fn view(d: &aws_sdk_ecs::types::Deployment) -> DeploymentView {
    DeploymentView {
        id: d.id().unwrap_or_default().to_owned(),
        status: d.status().unwrap_or_default().to_owned(),
        task_definition: d.task_definition().unwrap_or_default().to_owned(),
        rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
        rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
        desired: d.desired_count(),
        running: d.running_count(),
        pending: d.pending_count(),
        failed_tasks: d.failed_tasks(),
    }
}

/// The PRIMARY deployment of a service as UpdateService or CreateService returned it.
pub fn primary_deployment(service: &Service) -> Option<DeploymentView> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .map(view)
}
