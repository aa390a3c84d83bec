//! The `deployments[]` entry of one service, kept current while it rolls out, so that an
//! interrupt writes what is known.

use crate::Args;
use crate::ecs::Ecs;
use crate::plan::{Action, ServicePlan};
use common::envelope::Deployment;
use serde_json::{Value, json};
use std::time::SystemTime;

/// The `deployments[]` entry of one service, kept current while it rolls out.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) cluster: String,
    pub(crate) service: String,
    pub(crate) outcome: &'static str,
    pub(crate) images: Vec<String>,
    pub(crate) endpoints: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) task_definition: Option<String>,
    pub(crate) previous_task_definition: Option<String>,
    pub(crate) live_task_definition: Option<String>,
    pub(crate) deployment_id: Option<String>,
    pub(crate) rollback_deployment_id: Option<String>,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) events: Vec<Value>,
    pub(crate) failure: Option<Value>,
    pub(crate) diff: Option<String>,
}

impl Record {
    pub(crate) fn new(ecs: &Ecs, plan: &ServicePlan, args: &Args) -> Record {
        let unchanged = matches!(plan.action, Action::Unchanged | Action::Scale(_));
        Record {
            cluster: ecs.cluster.clone(),
            service: plan.service.clone(),
            outcome: "in_progress",
            images: plan.images(),
            endpoints: args
                .endpoints
                .iter()
                .filter(|(s, _)| s == &plan.service)
                .map(|(_, url)| url.clone())
                .collect(),
            dry_run: args.dry_run,
            task_definition: if unchanged {
                plan.current_arn.clone()
            } else {
                None
            },
            previous_task_definition: plan.current_arn.clone(),
            live_task_definition: plan.current_arn.clone(),
            deployment_id: None,
            rollback_deployment_id: None,
            started_at: now(),
            finished_at: None,
            events: Vec::new(),
            failure: None,
            diff: args
                .dry_run
                .then(|| plan.diff.clone())
                .filter(|d| !d.is_empty()),
        }
    }

    pub(crate) fn to_deployment(&self) -> Deployment {
        let mut extra = serde_json::Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                extra.insert(key.to_owned(), value);
            }
        };
        put("task_definition", json!(self.task_definition));
        put(
            "previous_task_definition",
            json!(self.previous_task_definition),
        );
        put("live_task_definition", json!(self.live_task_definition));
        put("deployment_id", json!(self.deployment_id));
        put("rollback_deployment_id", json!(self.rollback_deployment_id));
        put("started_at", json!(self.started_at));
        put("finished_at", json!(self.finished_at));
        put("events", json!(self.events));
        put("failure", self.failure.clone().unwrap_or(Value::Null));
        put("diff", json!(self.diff));
        Deployment {
            platform: "ecs".into(),
            cluster: Some(self.cluster.clone()),
            service: Some(self.service.clone()),
            outcome: self.outcome.to_owned(),
            images: self.images.clone(),
            endpoints: self.endpoints.clone(),
            dry_run: self.dry_run,
            extra,
        }
    }
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
