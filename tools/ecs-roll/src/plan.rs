//! The plan for each service (deciding): what runs, what will run, and what to do about
//! it. Only read-only ECS calls are made here, so a service that cannot be planned stops the
//! whole run before any service is changed.

use crate::ecs::{self, Ecs};
use crate::files::{self, ServiceDefinitionFile, TaskDefinitionFile};
use crate::images::{self, ImageOffer};
use crate::request::{Changes, Request};
use crate::rollout::DeploymentView;
use crate::taskdef;
use aws_sdk_ecs::types::{Service, Tag, TaskDefinition};
use common::{Envelope, Error, Result, Ui};

/// Everything read before any request: files, overrides, the images on offer.
pub(crate) struct Inputs {
    pub(crate) offers: Vec<ImageOffer>,
    pub(crate) task_definition_files: Vec<TaskDefinitionFile>,
    pub(crate) service_definitions: Vec<ServiceDefinitionFile>,
}

impl Inputs {
    pub(crate) async fn read(request: &Request, envelope: &Envelope) -> Result<Inputs> {
        let mut task_definition_files = Vec::new();
        for path in &request.task_definition_files {
            let file = files::read_task_definition(path).await?;
            if let Some(other) = task_definition_files
                .iter()
                .find(|f: &&TaskDefinitionFile| f.family() == file.family())
            {
                return Err(Error::usage(format!(
                    "{} and {} both define family {}",
                    other.path,
                    file.path,
                    file.family()
                )));
            }
            task_definition_files.push(file);
        }
        let mut service_definitions = Vec::new();
        for path in &request.service_definitions {
            let file = files::read_service_definition(path).await?;
            if !request.services.iter().any(|s| s == file.name()) {
                return Err(Error::usage(format!(
                    "{}: service {} is not one of the --service names",
                    file.path,
                    file.name()
                )));
            }
            service_definitions.push(file);
        }
        Ok(Inputs {
            offers: images::offers_from(envelope)?,
            task_definition_files,
            service_definitions,
        })
    }

    pub(crate) fn task_definition_file(&self, family: &str) -> Option<&TaskDefinitionFile> {
        self.task_definition_files
            .iter()
            .find(|f| f.family() == family)
    }
}

/// What to do to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Same content: nothing to register or deploy.
    Unchanged,
    /// Same content, another desired count: UpdateService with the count only.
    Scale(i32),
    /// Register the next task definition and deploy it.
    Deploy,
    /// Same task definition, new deployment (`--force-new-deployment`).
    Redeploy,
    /// Same task definition, whose deployment has not finished (a run interrupted while it
    /// followed it, or a `--no-wait` run): follow that deployment instead of calling the
    /// service unchanged; on failure roll back to `previous`, what ran before it.
    Follow {
        deployment_id: String,
        previous: Option<String>,
    },
    /// The service does not exist: register and create it.
    Create,
}

/// The plan for one service: what runs, what will run, what to do.
#[derive(Debug)]
pub(crate) struct ServicePlan {
    pub(crate) service: String,
    pub(crate) action: Action,
    /// The service as described (absent when it is to be created).
    pub(crate) existing: Option<Service>,
    pub(crate) definition: Option<Service>,
    /// The running task definition's ARN (absent for a new service).
    pub(crate) current_arn: Option<String>,
    pub(crate) next: TaskDefinition,
    pub(crate) next_tags: Vec<Tag>,
    /// What changes, as a diff of the registration JSON; empty unless it is to be shown.
    pub(crate) diff: String,
}

impl ServicePlan {
    /// What to roll back to when the deployment fails: what ran before it.
    pub(crate) fn previous_arn(&self) -> Option<String> {
        match &self.action {
            Action::Follow { previous, .. } => previous.clone(),
            _ => self.current_arn.clone(),
        }
    }

    /// The images of the next task definition, one per container.
    pub(crate) fn images(&self) -> Vec<String> {
        taskdef::container_images(&self.next)
            .into_iter()
            .map(|c| c.image)
            .collect()
    }
}

/// Plans every service concurrently; any error stops everything before anything changes.
/// The task-definition diff is only rendered when `show_diff` (it is shown, not decided on).
pub(crate) async fn plan_all(
    ecs: &Ecs,
    request: &Request,
    inputs: &Inputs,
    show_diff: bool,
) -> Result<Vec<ServicePlan>> {
    let plans = futures_util::future::try_join_all(request.services.iter().map(|name| {
        let follow = request.waiting.follow;
        plan_service(ecs, name, &request.changes, inputs, show_diff, follow)
    }))
    .await?;
    for file in &inputs.task_definition_files {
        if !plans.iter().any(|p| p.next.family() == Some(file.family())) {
            return Err(Error::usage(format!(
                "{}: family {} is not the task definition family of any --service",
                file.path,
                file.family()
            )));
        }
    }
    Ok(plans)
}

async fn plan_service(
    ecs: &Ecs,
    name: &str,
    changes: &Changes,
    inputs: &Inputs,
    show_diff: bool,
    follow: bool,
) -> Result<ServicePlan> {
    let existing = ecs.describe_service(name).await?;
    let definition = inputs
        .service_definitions
        .iter()
        .find(|d| d.name() == name)
        .map(|d| d.service.clone());
    let (current, base) = match &existing {
        Some(service) => {
            let arn = service.task_definition().unwrap_or_default();
            let (td, tags) = ecs.describe_task_definition(arn).await?;
            let family = td.family().unwrap_or_default().to_owned();
            let base = match inputs.task_definition_file(&family) {
                Some(file) => (file.task_definition.clone(), file.tags.clone()),
                None => (td.clone(), tags.clone()),
            };
            (Some((td, tags)), base)
        }
        None => (
            None,
            new_service_base(ecs, name, definition.as_ref(), inputs).await?,
        ),
    };
    let (base_td, base_tags) = base;
    let containers = taskdef::container_images(&base_td);
    let chosen = images::choose_images(name, &containers, &inputs.offers, &changes.containers)?;
    let has_offers = !inputs.offers.is_empty() || !changes.containers.is_empty();
    if has_offers && chosen.is_empty() {
        return Err(images::no_match_error(name, &containers, &inputs.offers));
    }
    let from_file = inputs
        .task_definition_file(base_td.family().unwrap_or_default())
        .is_some();
    if !has_offers
        && changes.env.is_empty()
        && !from_file
        && !changes.force_new_deployment
        && changes.desired_count.is_none()
        && existing.is_some()
    {
        return Err(Error::usage(format!(
            "nothing to deploy to {name}: no images pushed upstream, no --container, --env, \
             --task-definition-file or --desired-count (pipe img-push's output in, or use \
             --force-new-deployment)"
        )));
    }
    let next = taskdef::with_changes(&base_td, &chosen, &changes.env)?;
    let action = decide(
        current.as_ref(),
        (&next, &base_tags),
        existing.as_ref().map(Service::desired_count),
        changes,
    );
    let action = match (action, &existing) {
        (Action::Unchanged, Some(service)) if follow => {
            unfinished(service).unwrap_or(Action::Unchanged)
        }
        (action, _) => action,
    };
    let nothing = (TaskDefinition::builder().build(), Vec::new());
    let (live, live_tags) = current.as_ref().unwrap_or(&nothing);
    let diff = match show_diff {
        true => taskdef::diff((live, live_tags), (&next, &base_tags)).await,
        false => String::new(),
    };
    Ok(ServicePlan {
        service: name.to_owned(),
        action,
        current_arn: current.and_then(|(td, _)| td.task_definition_arn),
        existing,
        definition,
        next,
        next_tags: base_tags,
        diff,
    })
}

/// The task definition a service to be created starts from: the file of its family, or the
/// registered one its definition names.
async fn new_service_base(
    ecs: &Ecs,
    name: &str,
    definition: Option<&Service>,
    inputs: &Inputs,
) -> Result<(TaskDefinition, Vec<Tag>)> {
    let Some(definition) = definition else {
        return Err(Error::failed(format!(
            "service {name} does not exist in cluster {} (give --service-definition FILE to create it)",
            ecs.cluster
        )));
    };
    let named = definition.task_definition();
    let family = named.map(files::family_of);
    match (family.and_then(|f| inputs.task_definition_file(f)), named) {
        (Some(file), _) => Ok((file.task_definition.clone(), file.tags.clone())),
        (None, Some(named)) => Ok(ecs.describe_task_definition(named).await?),
        (None, None) if inputs.task_definition_files.len() == 1 => {
            let file = &inputs.task_definition_files[0];
            Ok((file.task_definition.clone(), file.tags.clone()))
        }
        (None, None) => Err(Error::usage(format!(
            "the service definition of {name} names no taskDefinition, and no single \
             --task-definition-file says which"
        ))),
    }
}

/// Decides the action from the current and next task definitions (pure).
pub(crate) fn decide(
    current: Option<&(TaskDefinition, Vec<Tag>)>,
    (next, next_tags): (&TaskDefinition, &[Tag]),
    desired_now: Option<i32>,
    changes: &Changes,
) -> Action {
    let Some((current, current_tags)) = current else {
        return Action::Create;
    };
    let same = taskdef::same_content(current, next) && same_tags(current_tags, next_tags);
    match (same, changes.force_new_deployment, changes.desired_count) {
        (false, _, _) => Action::Deploy,
        (true, true, _) => Action::Redeploy,
        (true, false, Some(n)) if Some(n) != desired_now => Action::Scale(n),
        (true, false, _) => Action::Unchanged,
    }
}

/// The service's PRIMARY deployment when it has not finished rolling out ([`Action::Follow`]),
/// or `None` when it has (or ECS shows none). Where ECS reports no rolloutState, it has
/// finished when it is the only deployment left.
fn unfinished(service: &Service) -> Option<Action> {
    let deployments: Vec<DeploymentView> = service.deployments().iter().map(ecs::view).collect();
    unfinished_of(&deployments)
}

/// [`unfinished`] on what DescribeServices showed (pure).
pub(crate) fn unfinished_of(deployments: &[DeploymentView]) -> Option<Action> {
    let primary = deployments.iter().find(|d| d.status == "PRIMARY")?;
    let finished = match primary.rollout_state.as_deref() {
        Some(state) => state != "IN_PROGRESS",
        None => deployments.len() == 1,
    };
    if finished {
        return None;
    }
    // What ran before it: the newest other deployment (ECS lists the newest first).
    let previous = deployments
        .iter()
        .find(|d| d.id != primary.id && d.task_definition != primary.task_definition)
        .map(|d| d.task_definition.clone());
    Some(Action::Follow {
        deployment_id: primary.id.clone(),
        previous,
    })
}

fn same_tags(a: &[Tag], b: &[Tag]) -> bool {
    let key = |t: &Tag| (t.key.clone(), t.value.clone());
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

pub(crate) fn report_plan(ecs: &Ecs, plan: &ServicePlan, dry_run: bool, ui: &Ui) {
    let label = format!("{}/{}", ecs.cluster, plan.service);
    let would = if dry_run { "would " } else { "" };
    match &plan.action {
        Action::Unchanged => ui.line(&format!(
            "{label}: task definition unchanged ({}); nothing to deploy",
            plan.current_arn
                .as_deref()
                .map(taskdef::short_name)
                .unwrap_or("?")
        )),
        Action::Scale(n) => ui.line(&format!(
            "{label}: task definition unchanged; {would}set the desired count to {n}"
        )),
        Action::Redeploy => ui.line(&format!(
            "{label}: task definition unchanged; {would}force a new deployment"
        )),
        Action::Follow { deployment_id, .. } => ui.line(&format!(
            "{label}: task definition unchanged ({}), its deployment {deployment_id} not \
             finished; {}",
            plan.current_arn
                .as_deref()
                .map(taskdef::short_name)
                .unwrap_or("?"),
            if dry_run {
                "would follow it"
            } else {
                "following it"
            }
        )),
        Action::Deploy | Action::Create => {
            let verb = if plan.action == Action::Create {
                "create the service with"
            } else {
                "deploy"
            };
            ui.line(&format!(
                "{label}: {}{verb} a new revision of {}: {}",
                if dry_run { "would " } else { "will " },
                plan.next.family().unwrap_or_default(),
                plan.images().join(", ")
            ));
            for line in plan.diff.lines() {
                ui.line(&format!("{label}: {line}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::ContainerDefinition;

    fn changes(force_new_deployment: bool, desired_count: Option<i32>) -> Changes {
        Changes {
            force_new_deployment,
            desired_count,
            ..Changes::default()
        }
    }

    fn td(image: &str) -> TaskDefinition {
        TaskDefinition::builder()
            .family("api")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .build(),
            )
            .build()
    }

    fn tag(value: &str) -> Vec<Tag> {
        vec![Tag::builder().key("team").value(value).build()]
    }

    fn view(id: &str, status: &str, td: &str, state: Option<&str>) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: state.map(str::to_owned),
            ..DeploymentView::default()
        }
    }

    #[test]
    fn an_unchanged_service_whose_deployment_has_not_finished_is_followed() {
        let follow = |id: &str, previous: Option<&str>| Action::Follow {
            deployment_id: id.into(),
            previous: previous.map(str::to_owned),
        };
        // Interrupted mid-rollout: the new deployment beside the old one.
        let new = view("ecs-svc/2", "PRIMARY", "api:2", Some("IN_PROGRESS"));
        let old = view("ecs-svc/1", "ACTIVE", "api:1", Some("COMPLETED"));
        assert_eq!(
            unfinished_of(&[new.clone(), old.clone()]),
            Some(follow("ecs-svc/2", Some("api:1")))
        );
        // A new service's first deployment: nothing before it.
        assert_eq!(unfinished_of(&[new]), Some(follow("ecs-svc/2", None)));
        // Finished: COMPLETED, or FAILED (ECS decided; nothing to follow).
        let done = view("ecs-svc/2", "PRIMARY", "api:2", Some("COMPLETED"));
        assert_eq!(unfinished_of(&[done]), None);
        let failed = view("ecs-svc/2", "PRIMARY", "api:2", Some("FAILED"));
        assert_eq!(unfinished_of(&[failed, old]), None);
        // Without rolloutState: finished when it is alone.
        let bare = view("ecs-svc/2", "PRIMARY", "api:2", None);
        let bare_old = view("ecs-svc/1", "ACTIVE", "api:1", None);
        assert_eq!(unfinished_of(std::slice::from_ref(&bare)), None);
        assert_eq!(
            unfinished_of(&[bare, bare_old]),
            Some(follow("ecs-svc/2", Some("api:1")))
        );
        assert_eq!(unfinished_of(&[]), None);
    }

    #[test]
    fn the_action_follows_from_content_tags_and_flags() {
        let current = (td("r/api:1"), tag("a"));
        let decide_for = |next: &TaskDefinition, tags: &[Tag], desired: i32, asked: Changes| {
            decide(Some(&current), (next, tags), Some(desired), &asked)
        };
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, changes(false, None)),
            Action::Unchanged
        );
        assert_eq!(
            decide_for(&td("r/api:2"), &tag("a"), 2, changes(false, None)),
            Action::Deploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("b"), 2, changes(false, None)),
            Action::Deploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, changes(true, None)),
            Action::Redeploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, changes(false, Some(3))),
            Action::Scale(3)
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 3, changes(false, Some(3))),
            Action::Unchanged
        );
        assert_eq!(
            decide(None, (&td("r/api:1"), &[]), None, &Changes::default()),
            Action::Create
        );
    }
}
