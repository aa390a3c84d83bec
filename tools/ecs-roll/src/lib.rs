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
//! # Modules
//! - [`request`]: the flags, turned once into a [`request::Request`] (nothing after it sees clap);
//! - [`files`], [`images`]: the inputs (definition files, the images on offer);
//! - `plan` (deciding) and [`taskdef`]: what each service gets, with read-only calls only;
//! - `apply` (doing) and `record`: register, update, follow, roll back, keep the entry current;
//! - [`follow`], [`rollout`]: the polling loop and the pure judge of what it sees;
//! - [`ecs`]: every ECS call, with retries and one-line errors;
//! - [`offline`]: the SDK's JSON (de)serializers without a network (files, the diff).
//!
//! # Exit codes
//! 0 every service completed (or was unchanged); 1 a deployment failed, was rolled back
//! (by us or by ECS's circuit breaker) or an ECS call failed; 2 bad flags or input, nothing
//! changed; 3 an upstream step failed; 124 `--timeout` passed (after rolling back);
//! 130 interrupted.

mod apply;
pub mod ecs;
pub mod files;
pub mod follow;
pub mod images;
pub mod offline;
mod plan;
mod record;
pub mod request;
pub mod rollout;
pub mod taskdef;

use apply::{apply, overall, summarize};
use clap::Parser;
use common::envelope::Deployment;
use common::ui::Verbosity;
use common::{CommonArgs, Envelope, Result, Ui};
use ecs::Ecs;
use images::EnvOverride;
use plan::{Inputs, plan_all, report_plan};
use request::Request;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

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
(outcome 'unchanged'), so running the pipeline twice is safe; when that task definition's \
deployment has not finished (a run interrupted while following it), it is followed as if just \
started.\n\n\
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
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_POLL", default_value = DEFAULT_POLL,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub poll: Duration,

    /// Give up waiting after DURATION (then roll back; exit 124). A deployment that rolled
    /// out by then still gets --stable-for to prove it holds.
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_TIMEOUT", default_value = DEFAULT_TIMEOUT,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub timeout: Duration,

    /// A rolled-out deployment must stay so (desired count running, no task stopping) for
    /// DURATION before it counts as completed: tasks that crash a moment after starting
    /// are caught.
    #[arg(long, value_name = "DURATION", env = "ECS_ROLL_STABLE_FOR", default_value = DEFAULT_STABLE_FOR,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub stable_for: Duration,

    /// Fail once this many tasks of the new deployment have stopped (0: never).
    #[arg(
        long,
        value_name = "N",
        env = "ECS_ROLL_MAX_TASK_FAILURES",
        default_value_t = DEFAULT_MAX_TASK_FAILURES,
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

const DEFAULT_POLL: &str = "5s";
const DEFAULT_TIMEOUT: &str = "15m";
const DEFAULT_STABLE_FOR: &str = "10s";
const DEFAULT_MAX_TASK_FAILURES: usize = 3;

/// The waiting flags (or their variables) set away from their defaults, which `--no-wait`
/// makes moot, warned of (nothing when it waits).
fn warn_moot_with_no_wait(args: &Args) -> Vec<&'static str> {
    use common::cli::differs_from_default;
    if !args.no_wait {
        return Vec::new();
    }
    common::cli::warn_moot_flags(
        "--no-wait",
        &[
            ("--poll", differs_from_default(args.poll, DEFAULT_POLL)),
            (
                "--timeout",
                differs_from_default(args.timeout, DEFAULT_TIMEOUT),
            ),
            (
                "--stable-for",
                differs_from_default(args.stable_for, DEFAULT_STABLE_FOR),
            ),
            (
                "--max-task-failures",
                args.max_task_failures != DEFAULT_MAX_TASK_FAILURES,
            ),
            ("--no-rollback", args.no_rollback),
        ],
    )
}

impl common::Tool for EcsRoll {
    const NAME: &'static str = "ecs-roll";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        let request = Request::from_args(&args)?;
        let inputs = Inputs::read(&request, envelope).await?;
        warn_moot_with_no_wait(&args);
        let config = common::aws::load().await?;
        let ecs = Ecs::new(&config, &request.cluster);
        let show_diff =
            request.dry_run || matches!(ui.verbosity(), Verbosity::Verbose | Verbosity::Trace);
        let plans = plan_all(&ecs, &request, &inputs, show_diff).await?;
        for plan in &plans {
            report_plan(&ecs, plan, request.dry_run, ui);
        }
        let first = envelope.deployments.len();
        envelope.deployments.extend(plans.iter().map(|p| {
            let endpoints = request.endpoints_of(&p.service);
            record::start(&ecs.cluster, p, endpoints, request.dry_run)
        }));
        if request.dry_run {
            return Ok(());
        }
        let slots = Mutex::new(&mut envelope.deployments[first..]);
        let results = futures_util::future::join_all(plans.iter().enumerate().map(|(i, plan)| {
            let slots = &slots;
            let publish = move |record: &Deployment| {
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = record.clone();
                }
            };
            apply(&ecs, plan, &request, ui, publish)
        }))
        .await;
        summarize(&results, ui);
        overall(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moot(flags: &[&str]) -> Vec<&'static str> {
        let argv = ["ecs-roll", "--service", "web"].iter().chain(flags);
        warn_moot_with_no_wait(&Args::try_parse_from(argv).expect("valid flags"))
    }

    #[test]
    fn waiting_flags_given_with_no_wait_are_named_and_defaults_are_not() {
        assert!(moot(&["--no-wait"]).is_empty());
        assert!(moot(&["--no-wait", "--timeout", "15m"]).is_empty());
        assert_eq!(
            moot(&["--no-wait", "--timeout", "5m", "--no-rollback"]),
            ["--timeout", "--no-rollback"]
        );
        assert!(moot(&["--timeout", "5m"]).is_empty(), "it waits");
    }
}
