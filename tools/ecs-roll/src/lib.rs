//! ecs-roll: rolls ECS services to the images pushed upstream, follows each deployment until
//! it is certain whether it worked, and rolls back when it did not.
//!
//! # How it works
//! 1. Read everything local first: flags, `--task-definition-file`s and
//!    `--service-definition`s ([`files`]), the images pushed upstream ([`images`]). Bad
//!    input stops here: exit 2, nothing sent.
//! 2. Plan every service (read-only calls): DescribeServices → DescribeTaskDefinition (with
//!    tags) → the next task definition ([`taskdef`]): the current one, or the file's, with
//!    new images and `--env`; identical content → nothing to do. A service that cannot be
//!    planned stops the whole run before any service is changed.
//! 3. Apply, all services concurrently: RegisterTaskDefinition (every writable field
//!    copied) → UpdateService (or CreateService) → follow *our* deployment, by id
//!    ([`follow`], judged by [`rollout`]) → on failure or timeout, UpdateService back to
//!    the previous task definition and follow that until it is stable.
//!
//! # Exit codes
//! 0 every service completed (or was unchanged); 1 a deployment failed, was rolled back
//! (by us or by ECS's circuit breaker) or an ECS call failed; 2 bad flags or input, nothing
//! changed; 3 an upstream step failed; 124 `--timeout` passed (after rolling back);
//! 130 interrupted.

pub mod ecs;
pub mod files;
pub mod follow;
pub mod images;
pub mod rollout;
pub mod taskdef;

use aws_sdk_ecs::types::{Service, Tag, TaskDefinition};
use clap::Parser;
use common::envelope::Deployment;
use common::{CommonArgs, Envelope, Error, Result, Ui};
use ecs::{Ecs, StoppedTask};
use files::{ServiceDefinitionFile, TaskDefinitionFile};
use follow::{Ending, EventLog, FollowReport, Pace};
use images::{EnvOverride, ImageOffer};
use rollout::{Followed, Verdict};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The tool, for [`common::main`].
pub struct EcsRoll;

const EXAMPLES: &str = "\
Examples:
  # The dev pipeline: build, push to ECR, roll both services, check the auth server:
  img-build --context services/api --context services/auth \\
    | img-push --ecr \\
    | ecs-roll --cluster dev --service api --service auth \\
    | health-wait --url https://dev.example.com/auth

  # What would change, without registering anything:
  img-push --ecr < built.json | ecs-roll --cluster dev --service api --dry-run

  # One container to an exact image, and an environment variable:
  ecs-roll --cluster dev --service api --container app=123456789012.dkr.ecr.us-east-1.amazonaws.com/api@sha256:… --env app:LOG_LEVEL=debug

  # Create the service on first deploy, from the files kept in the repository:
  … | ecs-roll --cluster dev --service auth --task-definition-file ecs/auth.task.json \\
        --service-definition ecs/auth.service.json";

/// Roll ECS services to new images and follow the deployment.
#[derive(Debug, Parser)]
#[command(
    name = "ecs-roll",
    version,
    about = "Roll ECS services to the images pushed upstream, follow the deployment, roll back when it fails.",
    long_about = "Roll ECS services to the images pushed upstream, follow the deployment, roll back when it fails.\n\n\
Each container of a service's task definition whose image repository is one pushed upstream \
(the input's images[].pushed[]) gets that image by digest. A new task definition revision is \
registered with every other field kept as it is, the service is updated, and ecs-roll follows \
that deployment until ECS reports it COMPLETED (and it stays so for --stable-for), until \
--max-task-failures of its tasks have stopped, until ECS's circuit breaker rolls it back, or until --timeout. On failure it points \
the service back at the previous task definition and waits until that is stable.\n\n\
A task definition with the same content as the running one registers and deploys nothing \
(outcome 'unchanged'), so running the pipeline twice is safe.\n\n\
Exit codes: 0 every service rolled out or was unchanged; 1 a deployment failed or was rolled \
back, or ECS refused a call; 2 bad flags or input (nothing changed); 3 an upstream step failed; \
124 --timeout passed; 130 interrupted.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// The ECS cluster.
    #[arg(
        long,
        value_name = "NAME",
        env = "ECS_ROLL_CLUSTER",
        default_value = "default",
        help_heading = "What to deploy"
    )]
    pub cluster: String,

    /// A service to roll (repeatable; several are rolled in parallel).
    #[arg(
        long = "service",
        value_name = "NAME",
        env = "ECS_ROLL_SERVICE",
        value_delimiter = ',',
        required = true,
        help_heading = "What to deploy"
    )]
    pub services: Vec<String>,

    /// Give container NAME the image REF, whatever was pushed upstream (repeatable).
    #[arg(
        long = "container",
        value_name = "NAME=REF",
        env = "ECS_ROLL_CONTAINER",
        value_delimiter = ',',
        value_parser = images::parse_container_override,
        help_heading = "What to deploy"
    )]
    pub containers: Vec<(String, String)>,

    /// Set environment variable KEY of container CONTAINER (repeatable).
    #[arg(
        long = "env",
        value_name = "CONTAINER:KEY=VALUE",
        value_parser = images::parse_env_override,
        help_heading = "What to deploy"
    )]
    pub env: Vec<EnvOverride>,

    /// Render the task definition from FILE (DescribeTaskDefinition's JSON, or
    /// register-task-definition's --cli-input-json) instead of the running one; it applies
    /// to the service whose task definition has the file's family (repeatable).
    #[arg(
        long = "task-definition-file",
        value_name = "FILE",
        env = "ECS_ROLL_TASK_DEFINITION_FILE",
        value_delimiter = ',',
        help_heading = "What to deploy"
    )]
    pub task_definition_files: Vec<PathBuf>,

    /// Create the service from FILE (create-service's --cli-input-json) when it does not
    /// exist yet; matched by its serviceName (repeatable).
    #[arg(
        long = "service-definition",
        value_name = "FILE",
        env = "ECS_ROLL_SERVICE_DEFINITION",
        value_delimiter = ',',
        help_heading = "What to deploy"
    )]
    pub service_definitions: Vec<PathBuf>,

    /// Set the services' desired task count.
    #[arg(
        long,
        value_name = "N",
        env = "ECS_ROLL_DESIRED_COUNT",
        help_heading = "What to deploy"
    )]
    pub desired_count: Option<i32>,

    /// Start a new deployment even when the task definition is unchanged.
    #[arg(long, env = "ECS_ROLL_FORCE_NEW_DEPLOYMENT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "What to deploy")]
    pub force_new_deployment: bool,

    /// Record URL as where SERVICE answers (deployments[].endpoints, for
    /// `health-wait --from-deployments`); repeatable.
    #[arg(
        long = "endpoint",
        value_name = "SERVICE=URL",
        value_parser = common::cli::parse_key_value,
        help_heading = "What to deploy"
    )]
    pub endpoints: Vec<(String, String)>,

    /// Do not wait for the deployments: exit once the services are updated.
    #[arg(long, env = "ECS_ROLL_NO_WAIT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Waiting")]
    pub no_wait: bool,

    /// How often to look at the service (jittered by ±20 %).
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_POLL", default_value = "5s",
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub poll: Duration,

    /// Give up waiting after DURATION (then roll back; exit 124).
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_TIMEOUT", default_value = "15m",
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub timeout: Duration,

    /// A rolled-out deployment must stay so (desired count running, no task stopping) for
    /// DURATION before it counts as completed: tasks that crash a moment after starting
    /// are caught.
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_STABLE_FOR", default_value = "10s",
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub stable_for: Duration,

    /// Fail once this many tasks of the new deployment have stopped (0: never).
    #[arg(
        long,
        value_name = "N",
        env = "ECS_ROLL_MAX_TASK_FAILURES",
        default_value_t = 3,
        help_heading = "Waiting"
    )]
    pub max_task_failures: usize,

    /// On failure, leave the service on the failed task definition.
    #[arg(long, env = "ECS_ROLL_NO_ROLLBACK",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Waiting")]
    pub no_rollback: bool,

    /// Show the task definition changes; register and update nothing.
    #[arg(long, env = "ECS_ROLL_DRY_RUN",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl common::Tool for EcsRoll {
    const NAME: &'static str = "ecs-roll";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        let inputs = Inputs::read(&args, envelope).await?;
        let config = common::aws::load().await?;
        let ecs = Ecs::new(&config, &args.cluster);
        let plans = plan_all(&ecs, &args, &inputs).await?;
        for plan in &plans {
            report_plan(&ecs, plan, args.dry_run, ui);
        }
        let first = envelope.deployments.len();
        envelope.deployments.extend(plans.iter().map(|p| {
            let mut record = Record::new(&ecs, p, &args);
            if args.dry_run {
                record.outcome = match p.action {
                    Action::Unchanged => "unchanged",
                    _ => "planned",
                };
            }
            record.to_deployment()
        }));
        if args.dry_run {
            return Ok(());
        }
        let slots = Mutex::new(&mut envelope.deployments[first..]);
        let results = futures_util::future::join_all(plans.iter().enumerate().map(|(i, plan)| {
            let slots = &slots;
            let publish = move |record: &Record| {
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = record.to_deployment();
                }
            };
            apply(&ecs, plan, &args, ui, publish)
        }))
        .await;
        summarize(&results, ui);
        overall(results)
    }
}

/// Everything read before any request: files, overrides, the images on offer.
struct Inputs {
    offers: Vec<ImageOffer>,
    task_definition_files: Vec<TaskDefinitionFile>,
    service_definitions: Vec<ServiceDefinitionFile>,
}

impl Inputs {
    async fn read(args: &Args, envelope: &Envelope) -> Result<Inputs> {
        for (service, _) in &args.endpoints {
            if !args.services.contains(service) {
                return Err(Error::usage(format!(
                    "--endpoint {service}=…: {service} is not one of the --service names"
                )));
            }
        }
        if let Some(n) = args.desired_count.filter(|n| *n < 0) {
            return Err(Error::usage(format!(
                "--desired-count {n}: must be 0 or more"
            )));
        }
        let mut task_definition_files = Vec::new();
        for path in &args.task_definition_files {
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
        for path in &args.service_definitions {
            let file = files::read_service_definition(path).await?;
            if !args.services.iter().any(|s| s == file.name()) {
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

    fn task_definition_file(&self, family: &str) -> Option<&TaskDefinitionFile> {
        self.task_definition_files
            .iter()
            .find(|f| f.family() == family)
    }
}

/// What to do to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Same content: nothing to register or deploy.
    Unchanged,
    /// Same content, another desired count: UpdateService with the count only.
    Scale(i32),
    /// Register the next task definition and deploy it.
    Deploy,
    /// Same task definition, new deployment (`--force-new-deployment`).
    Redeploy,
    /// The service does not exist: register and create it.
    Create,
}

/// The plan for one service: what runs, what will run, what to do.
#[derive(Debug)]
struct ServicePlan {
    service: String,
    action: Action,
    /// The service as described (absent when it is to be created).
    existing: Option<Service>,
    definition: Option<Service>,
    /// The running task definition's ARN (absent for a new service).
    current_arn: Option<String>,
    next: TaskDefinition,
    next_tags: Vec<Tag>,
    diff: String,
}

impl ServicePlan {
    /// The images of the next task definition, one per container.
    fn images(&self) -> Vec<String> {
        taskdef::container_images(&self.next)
            .into_iter()
            .map(|c| c.image)
            .collect()
    }
}

/// Plans every service concurrently; any error stops everything before anything changes.
async fn plan_all(ecs: &Ecs, args: &Args, inputs: &Inputs) -> Result<Vec<ServicePlan>> {
    let mut names: Vec<&String> = Vec::new();
    for name in &args.services {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let plans = futures_util::future::try_join_all(
        names
            .iter()
            .map(|name| plan_service(ecs, name, args, inputs)),
    )
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

async fn plan_service(ecs: &Ecs, name: &str, args: &Args, inputs: &Inputs) -> Result<ServicePlan> {
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
    let chosen = images::choose_images(name, &containers, &inputs.offers, &args.containers)?;
    let has_offers = !inputs.offers.is_empty() || !args.containers.is_empty();
    if has_offers && chosen.is_empty() {
        return Err(images::no_match_error(name, &containers, &inputs.offers));
    }
    let from_file = inputs
        .task_definition_file(base_td.family().unwrap_or_default())
        .is_some();
    if !has_offers
        && args.env.is_empty()
        && !from_file
        && !args.force_new_deployment
        && existing.is_some()
    {
        return Err(Error::usage(format!(
            "nothing to deploy to {name}: no images pushed upstream, no --container, --env or \
             --task-definition-file (pipe img-push's output in, or use --force-new-deployment)"
        )));
    }
    let next = taskdef::with_changes(&base_td, &chosen, &args.env)?;
    let action = decide(
        current.as_ref(),
        (&next, &base_tags),
        existing.as_ref().map(Service::desired_count),
        args,
    );
    let diff = match &current {
        Some((td, _)) => taskdef::diff(td, &next),
        None => taskdef::diff(&TaskDefinition::builder().build(), &next),
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
        (None, Some(named)) => ecs.describe_task_definition(named).await,
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
fn decide(
    current: Option<&(TaskDefinition, Vec<Tag>)>,
    (next, next_tags): (&TaskDefinition, &[Tag]),
    desired_now: Option<i32>,
    args: &Args,
) -> Action {
    let Some((current, current_tags)) = current else {
        return Action::Create;
    };
    let same = taskdef::same_content(current, next) && same_tags(current_tags, next_tags);
    match (same, args.force_new_deployment, args.desired_count) {
        (false, _, _) => Action::Deploy,
        (true, true, _) => Action::Redeploy,
        (true, false, Some(n)) if Some(n) != desired_now => Action::Scale(n),
        (true, false, _) => Action::Unchanged,
    }
}

fn same_tags(a: &[Tag], b: &[Tag]) -> bool {
    let key = |t: &Tag| (t.key.clone(), t.value.clone());
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

fn report_plan(ecs: &Ecs, plan: &ServicePlan, dry_run: bool, ui: &Ui) {
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
            if dry_run || ui.verbosity() == common::ui::Verbosity::Verbose {
                for line in plan.diff.lines() {
                    ui.line(&format!("{label}: {line}"));
                }
            }
        }
    }
}

/// The `deployments[]` entry of one service, kept current while it rolls out.
#[derive(Debug, Clone)]
struct Record {
    cluster: String,
    service: String,
    outcome: &'static str,
    images: Vec<String>,
    endpoints: Vec<String>,
    dry_run: bool,
    task_definition: Option<String>,
    previous_task_definition: Option<String>,
    live_task_definition: Option<String>,
    deployment_id: Option<String>,
    rollback_deployment_id: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    events: Vec<Value>,
    failure: Option<Value>,
    diff: Option<String>,
}

impl Record {
    fn new(ecs: &Ecs, plan: &ServicePlan, args: &Args) -> Record {
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

    fn to_deployment(&self) -> Deployment {
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

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// How one service's deployment ended, for the exit code and the summary.
#[derive(Debug)]
struct ServiceResult {
    label: String,
    record: Record,
    error: Option<Error>,
}

/// Carries out one plan, publishing the record at every step.
async fn apply(
    ecs: &Ecs,
    plan: &ServicePlan,
    args: &Args,
    ui: &Ui,
    publish: impl Fn(&Record),
) -> ServiceResult {
    let label = format!("{}/{}", ecs.cluster, plan.service);
    let mut record = Record::new(ecs, plan, args);
    let error = match deploy(ecs, plan, args, ui, &mut record, &publish).await {
        Ok(()) => None,
        Err(err) => {
            if record.failure.is_none() {
                record.failure = Some(json!({ "reason": err.to_string() }));
            }
            if record.outcome == "in_progress" {
                record.outcome = "failed";
            }
            Some(err)
        }
    };
    record.finished_at = Some(now());
    publish(&record);
    ServiceResult {
        label,
        record,
        error,
    }
}

async fn deploy(
    ecs: &Ecs,
    plan: &ServicePlan,
    args: &Args,
    ui: &Ui,
    record: &mut Record,
    publish: &impl Fn(&Record),
) -> Result<()> {
    let label = format!("{}/{}", ecs.cluster, plan.service);
    let mut events = EventLog::default();
    if let Some(existing) = &plan.existing {
        events.mark_seen(existing.events());
    }
    let started = match &plan.action {
        Action::Unchanged => {
            record.outcome = "unchanged";
            return Ok(());
        }
        Action::Scale(n) => {
            ecs.scale_service(&plan.service, *n).await?;
            ui.line(&format!("{label}: desired count set to {n}"));
            record.outcome = "scaled";
            return Ok(());
        }
        Action::Redeploy => {
            let arn = plan.current_arn.clone().unwrap_or_default();
            let service = ecs
                .update_service(&plan.service, &arn, args.desired_count, true)
                .await?;
            (arn, service)
        }
        Action::Deploy => {
            let arn = register(ecs, plan, ui, record, publish).await?;
            let service = ecs
                .update_service(
                    &plan.service,
                    &arn,
                    args.desired_count,
                    args.force_new_deployment,
                )
                .await?;
            (arn, service)
        }
        Action::Create => {
            let arn = register(ecs, plan, ui, record, publish).await?;
            let definition = plan.definition.as_ref().expect("planned with a definition");
            let service = ecs
                .create_service(definition, &arn, args.desired_count)
                .await?;
            ui.line(&format!("{label}: created the service"));
            (arn, service)
        }
    };
    let (arn, service) = started;
    record.task_definition = Some(arn.clone());
    let deployment = ecs::primary_deployment(&service).filter(|d| d.task_definition == arn);
    record.deployment_id = deployment.as_ref().map(|d| d.id.clone());
    publish(record);
    if args.no_wait {
        // Not following, so a deployment ECS has not shown yet is no reason to fail.
        ui.line(&format!(
            "{label}: deployment {} started (not waiting: --no-wait)",
            record
                .deployment_id
                .as_deref()
                .unwrap_or("(not shown by ECS yet)")
        ));
        record.outcome = "started";
        return Ok(());
    }
    let deployment = deployment.ok_or_else(|| {
        Error::failed(format!(
            "{label}: ECS shows no PRIMARY deployment of {} after the update",
            taskdef::short_name(&arn)
        ))
    })?;
    ui.line(&format!(
        "{label}: following deployment {} of {} (poll {}, timeout {})",
        deployment.id,
        taskdef::short_name(&arn),
        humantime::format_duration(args.poll),
        humantime::format_duration(args.timeout)
    ));
    let pace = Pace {
        poll: args.poll,
        timeout: args.timeout,
        stable_for: args.stable_for,
    };
    let followed = Followed {
        deployment_id: deployment.id.clone(),
        task_definition: arn.clone(),
        max_task_failures: args.max_task_failures,
    };
    let begun = Instant::now();
    let report = follow::follow(ecs, &plan.service, &followed, pace, &mut events, ui).await;
    record.events = events.recorded.clone();
    let failure = match &report.ending {
        Ending::Decided(Verdict::Completed) => {
            ui.line(&format!(
                "{label}: completed in {}: {} runs",
                humantime::format_duration(round_seconds(begun.elapsed())),
                taskdef::short_name(&arn)
            ));
            record.outcome = "completed";
            record.live_task_definition = Some(arn);
            return Ok(());
        }
        Ending::Decided(Verdict::RolledBackByEcs { live, reason }) => {
            record.outcome = "rolled_back_by_ecs";
            record.live_task_definition = Some(live.clone());
            record.failure = Some(failure_json(reason, &report));
            return Err(Error::failed(format!(
                "{label}: ECS rolled the deployment back to {}: {reason}",
                taskdef::short_name(live)
            )));
        }
        Ending::Decided(Verdict::Superseded { by, live }) => {
            record.outcome = "superseded";
            record.live_task_definition = Some(live.clone());
            let reason = format!(
                "deployment {by} of {} replaced ours; not rolling back",
                taskdef::short_name(live)
            );
            record.failure = Some(failure_json(&reason, &report));
            return Err(Error::failed(format!("{label}: {reason}")));
        }
        Ending::Decided(Verdict::Failed { reason }) => Failure::failed(reason.clone()),
        Ending::Decided(Verdict::TasksFailing { stopped }) => Failure::failed(format!(
            "{stopped} tasks of the new deployment stopped: {}",
            report
                .stopped_tasks
                .iter()
                .take(3)
                .map(StoppedTask::describe)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Ending::Decided(Verdict::Waiting) => unreachable!("follow returns only decisions"),
        Ending::TimedOut => Failure {
            reason: format!(
                "not rolled out after {}",
                humantime::format_duration(args.timeout)
            ),
            timed_out: true,
        },
        Ending::Unobservable(err) => {
            Failure::failed(format!("cannot follow the deployment: {err}"))
        }
    };
    record.failure = Some(failure_json(&failure.reason, &report));
    ui.line(&format!("{label}: failed: {}", failure.reason));
    let rollback_note = match (&plan.current_arn, args.no_rollback) {
        (Some(previous), false) => {
            record.outcome = "rolling_back";
            publish(record);
            let note = roll_back(ecs, plan, previous, args, ui, record, &mut events).await;
            record.events = events.recorded.clone();
            note
        }
        (Some(_), true) => {
            record.outcome = if failure.timed_out {
                "timed_out"
            } else {
                "failed"
            };
            record.live_task_definition = Some(arn.clone());
            format!("left on {} (--no-rollback)", taskdef::short_name(&arn))
        }
        (None, _) => {
            record.outcome = if failure.timed_out {
                "timed_out"
            } else {
                "failed"
            };
            record.live_task_definition = Some(arn.clone());
            "a new service has no previous task definition to roll back to".to_owned()
        }
    };
    let message = format!(
        "{label}: {}; {rollback_note}",
        failure.reason.trim_end_matches('.')
    );
    Err(match failure.timed_out {
        true => Error::timed_out(message),
        false => Error::failed(message),
    })
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

fn failure_json(reason: &str, report: &FollowReport) -> Value {
    json!({
        "reason": reason,
        "polls": report.polls,
        "polls_after_first_stopped_task": report.polls_after_first_stop,
        "stopped_tasks": report.stopped_tasks.iter().map(|t| json!({
            "task_arn": t.task_arn,
            "stopped_reason": t.stopped_reason,
            "containers": t.containers.iter().map(|(name, code, reason)| json!({
                "name": name, "exit_code": code, "reason": reason,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

async fn register(
    ecs: &Ecs,
    plan: &ServicePlan,
    ui: &Ui,
    record: &mut Record,
    publish: &impl Fn(&Record),
) -> Result<String> {
    let arn = ecs.register(&plan.next, &plan.next_tags).await?;
    ui.line(&format!(
        "{}/{}: registered {}",
        ecs.cluster,
        plan.service,
        taskdef::short_name(&arn)
    ));
    record.task_definition = Some(arn.clone());
    publish(record);
    Ok(arn)
}

/// Points the service back at `previous` and follows that deployment; returns what to
/// say about it. The rollback gets a fresh `--timeout`.
async fn roll_back(
    ecs: &Ecs,
    plan: &ServicePlan,
    previous: &str,
    args: &Args,
    ui: &Ui,
    record: &mut Record,
    events: &mut EventLog,
) -> String {
    let label = format!("{}/{}", ecs.cluster, plan.service);
    let short = taskdef::short_name(previous).to_owned();
    ui.line(&format!("{label}: rolling back to {short}"));
    let service = match ecs
        .update_service(&plan.service, previous, None, false)
        .await
    {
        Ok(service) => service,
        Err(err) => {
            record.outcome = "rollback_failed";
            return format!("rollback to {short} failed: {err}");
        }
    };
    let Some(deployment) =
        ecs::primary_deployment(&service).filter(|d| d.task_definition == previous)
    else {
        record.outcome = "rollback_failed";
        return format!("rollback to {short}: ECS shows no PRIMARY deployment of it");
    };
    record.rollback_deployment_id = Some(deployment.id.clone());
    let followed = Followed {
        deployment_id: deployment.id.clone(),
        task_definition: previous.to_owned(),
        max_task_failures: args.max_task_failures,
    };
    let pace = Pace {
        poll: args.poll,
        timeout: args.timeout,
        stable_for: args.stable_for,
    };
    let report = follow::follow(ecs, &plan.service, &followed, pace, events, ui).await;
    match report.ending {
        Ending::Decided(Verdict::Completed) => {
            ui.line(&format!("{label}: rolled back: {short} runs"));
            record.outcome = "rolled_back";
            record.live_task_definition = Some(previous.to_owned());
            format!("rolled back to {short}")
        }
        other => {
            record.outcome = "rollback_failed";
            format!("rollback to {short} did not complete: {other:?}")
        }
    }
}

fn round_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn summarize(results: &[ServiceResult], ui: &Ui) {
    let mut markdown =
        String::from("### ecs-roll\n\n| service | outcome | task definition |\n|---|---|---|\n");
    for r in results {
        let live = r
            .record
            .live_task_definition
            .as_deref()
            .map(taskdef::short_name)
            .unwrap_or("-");
        markdown.push_str(&format!(
            "| {} | {} | {live} |\n",
            r.label, r.record.outcome
        ));
    }
    ui.summary(&markdown);
}

/// One error for the run: every failed service named; 124 only when every failure was a
/// timeout.
fn overall(results: Vec<ServiceResult>) -> Result<()> {
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
    use aws_sdk_ecs::types::ContainerDefinition;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ecs-roll", "--service", "api"];
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
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

    #[test]
    fn the_action_follows_from_content_tags_and_flags() {
        let current = (td("r/api:1"), tag("a"));
        let decide_for = |next: &TaskDefinition, tags: &[Tag], desired: i32, flags: &[&str]| {
            decide(Some(&current), (next, tags), Some(desired), &args(flags))
        };
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, &[]),
            Action::Unchanged
        );
        assert_eq!(
            decide_for(&td("r/api:2"), &tag("a"), 2, &[]),
            Action::Deploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("b"), 2, &[]),
            Action::Deploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, &["--force-new-deployment"]),
            Action::Redeploy
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 2, &["--desired-count", "3"]),
            Action::Scale(3)
        );
        assert_eq!(
            decide_for(&td("r/api:1"), &tag("a"), 3, &["--desired-count", "3"]),
            Action::Unchanged
        );
        assert_eq!(
            decide(None, (&td("r/api:1"), &[]), None, &args(&[])),
            Action::Create
        );
    }

    #[test]
    fn one_timeout_among_failures_is_a_failure_and_only_timeouts_are_124() {
        let result = |error: Option<Error>| ServiceResult {
            label: "dev/api".into(),
            record: Record {
                cluster: "dev".into(),
                service: "api".into(),
                outcome: "failed",
                images: vec![],
                endpoints: vec![],
                dry_run: false,
                task_definition: None,
                previous_task_definition: None,
                live_task_definition: None,
                deployment_id: None,
                rollback_deployment_id: None,
                started_at: now(),
                finished_at: None,
                events: vec![],
                failure: None,
                diff: None,
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
