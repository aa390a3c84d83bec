//! k8s-apply: applies Kubernetes manifests with the images pushed upstream, knows within
//! seconds whether the rollout works and why not, and rolls back when it does not.
//!
//! # How it works
//! 1. Read everything local first: flags ([`request`]), the manifests of `-f` and `-k`
//!    ([`sources`], checked by [`manifests`]), the images pushed upstream, put into the pod
//!    templates by digest ([`images`]), the apply order ([`order`]). Bad input stops here:
//!    exit 2, nothing sent.
//! 2. Connect ([`cluster`]) through the kubeconfig, or with `--eks-cluster` through the EKS
//!    API and an EKS token ([`eks`]). Plan with read-only calls: discovery resolves every kind ([`resolve`]; unknown → exit
//!    2), the live objects are read (the state a rollback restores; [`live`]), and a server-side dry-run
//!    apply of each says whether it would be created, configured or left unchanged, and finds
//!    field-manager conflicts before anything is written ([`plan`], compared by [`diff`]).
//!    A custom resource whose CRD comes in the same input is accepted ([`crds`]): it is
//!    planned as created, unchecked by the server (which cannot know its kind yet).
//! 3. Apply (server-side apply, field manager `k8s-apply`) only what changes, in order, the
//!    objects of one rank ([`order::tiers`]) at once (the CRDs first; their custom resources
//!    once the CRDs are Established and discovery has run again, [`establish`]); wait for
//!    every applied workload at once ([`wait`], judged by [`rollout`] and [`failfast`]);
//!    on failure or timeout, restore what changed and delete what was created, and wait for
//!    the restored workloads with their own budget ([`apply`]).
//! 4. The `deployments[]` entry is kept current all along ([`record`]), so an interrupt
//!    writes what is known.
//!
//! # Exit codes
//! 0 applied and rolled out (or unchanged); 1 the rollout failed (rolled back or not), a
//! conflict with another field manager, or the API refused a call; 2 bad flags or manifests,
//! nothing sent; 3 an upstream step failed; 124 `--timeout` passed (after rolling back);
//! 130 interrupted.

pub mod apply;
pub mod applyset;
pub mod cluster;
pub mod crds;
pub mod diff;
pub mod eks;
pub mod establish;
pub mod failfast;
pub mod images;
pub mod live;
pub mod manifests;
pub mod order;
pub mod plan;
pub mod record;
pub mod request;
pub mod resolve;
pub mod rollout;
pub mod sources;
pub mod transient;
pub mod wait;

use clap::Parser;
use common::{CommonArgs, Envelope, Result, Ui};
use request::Request;
use std::path::PathBuf;
use std::time::Duration;

/// The tool, for [`common::main`].
pub struct K8sApply;

const EXAMPLES: &str = "\
Examples:
  # The staging pipeline: build, push to ECR, apply the manifests with the new images, check:
  img-build --context services/api \\
    | img-push --ecr \\
    | k8s-apply --context staging -f deploy/ \\
    | health-wait --from-deployments

  # What would change, as a diff, without changing anything:
  img-push --ecr < built.json | k8s-apply --context production -k deploy/overlays/production --dry-run

  # One image by hand, into a namespace, without waiting:
  k8s-apply -f deploy/api.yaml -n shop --image api=123456789012.dkr.ecr.us-east-1.amazonaws.com/api@sha256:… --no-wait";

/// Apply Kubernetes manifests, wait for the rollout, roll back when it fails.
#[derive(Debug, Parser)]
#[command(
    name = "k8s-apply",
    version,
    about = "Apply Kubernetes manifests with the images pushed upstream, wait for the rollout, roll back when it fails.",
    long_about = "Apply Kubernetes manifests with the images pushed upstream, wait for the rollout, roll back when it fails.\n\n\
Every container image in the manifests' pod templates whose repository (or name) is one pushed \
upstream (the input's images[].pushed[]) is replaced by that push's digest reference. Objects \
are applied with server-side apply (field manager k8s-apply) in dependency order: Namespaces, \
CRDs, ServiceAccounts, ConfigMaps, Secrets, RBAC, Services, then workloads, then Ingresses. An \
object the apply would not change is not written (action 'unchanged'), so running the pipeline \
twice is safe.\n\n\
A custom resource whose CustomResourceDefinition is among the manifests is applied once that CRD \
is Established (waited for within --timeout) and discovered. Under --dry-run such a resource is \
listed as created from its manifest as given: the server cannot dry-run a kind it does not serve \
yet (kubectl --dry-run=server refuses it for the same reason).\n\n\
Then every applied Deployment, StatefulSet, DaemonSet and Job is waited for at once, each \
judged as `kubectl rollout status` judges it, and its new pods watched: a pull error saying the \
image does not exist, CreateContainerConfigError, InvalidImageName or RunContainerError fail the \
rollout at once; ImagePullBackOff, CrashLoopBackOff or Unschedulable after --fail-after. On \
failure the objects this run changed are restored and the ones it created deleted, and the \
restored workloads are waited for with --rollback-timeout of their own.\n\n\
Exit codes: 0 rolled out or unchanged; 1 the rollout failed (rolled back or not), a field \
conflict, or the API refused a call; 2 bad flags or manifests (nothing sent); 3 an upstream \
step failed; 124 --timeout passed; 130 interrupted.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// A manifest file, or a directory of them (recursive; .yaml, .yml, .json); repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        env = "K8S_APPLY_FILENAME",
        value_delimiter = ',',
        help_heading = "What to apply"
    )]
    pub files: Vec<PathBuf>,

    /// A kustomization directory, rendered with `kubectl kustomize` or `kustomize build`;
    /// repeatable.
    #[arg(
        short = 'k',
        long = "kustomize",
        value_name = "DIR",
        env = "K8S_APPLY_KUSTOMIZE",
        value_delimiter = ',',
        help_heading = "What to apply"
    )]
    pub kustomize: Vec<PathBuf>,

    /// The namespace of namespaced objects that name none (default: the context's, else
    /// `default`).
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        env = "K8S_APPLY_NAMESPACE",
        help_heading = "What to apply"
    )]
    pub namespace: Option<String>,

    /// Give containers whose image is NAME (a repository or image name) the image REF,
    /// whatever was pushed upstream; repeatable.
    #[arg(long = "image", value_name = "NAME=REF", env = "K8S_APPLY_IMAGE",
        value_delimiter = ',', value_parser = images::parse_image_override,
        help_heading = "What to apply")]
    pub images: Vec<(String, String)>,

    /// The kubeconfig context to use (default: its current context). The kubeconfig is
    /// $KUBECONFIG, else ~/.kube/config.
    #[arg(
        long,
        value_name = "NAME",
        env = "K8S_APPLY_CONTEXT",
        help_heading = "Cluster"
    )]
    pub context: Option<String>,

    /// Delete what this applyset applied before and the manifests no longer have (needs
    /// --applyset).
    #[arg(long, env = "K8S_APPLY_PRUNE", action = clap::ArgAction::SetTrue, requires = "applyset",
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "What to apply")]
    pub prune: bool,

    /// The applyset (kubectl's ApplySet: a parent Secret NAME in --namespace) whose members
    /// --prune deletes when they leave the manifests.
    #[arg(
        long,
        value_name = "NAME",
        env = "K8S_APPLY_APPLYSET",
        requires = "prune",
        help_heading = "What to apply"
    )]
    pub applyset: Option<String>,

    /// The EKS cluster to use instead of a kubeconfig: its endpoint and CA from the EKS API
    /// (DescribeCluster), a token made as `aws eks get-token` makes it. AWS settings as
    /// usual (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_EKS, ...).
    #[arg(
        long,
        value_name = "NAME",
        env = "K8S_APPLY_EKS_CLUSTER",
        conflicts_with = "context",
        help_heading = "Cluster"
    )]
    pub eks_cluster: Option<String>,

    /// Take the fields another field manager owns instead of failing on the conflict.
    #[arg(long, env = "K8S_APPLY_FORCE_CONFLICTS", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Cluster")]
    pub force_conflicts: bool,

    /// Do not wait for the workloads to roll out.
    #[arg(long, env = "K8S_APPLY_NO_WAIT", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Waiting")]
    pub no_wait: bool,

    /// Give up waiting after DURATION (then roll back; exit 124).
    #[arg(long, value_name = "DURATION", env = "K8S_APPLY_TIMEOUT", default_value = DEFAULT_TIMEOUT,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub timeout: Duration,

    /// A pod of the new revision in ImagePullBackOff, CrashLoopBackOff or Unschedulable for
    /// this long fails the rollout (shorter lapses are taken as transient).
    #[arg(long, value_name = "DURATION", env = "K8S_APPLY_FAIL_AFTER", default_value = DEFAULT_FAIL_AFTER,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub fail_after: Duration,

    /// Do not fail on pod problems; wait for the workloads' own verdict or --timeout.
    #[arg(long, env = "K8S_APPLY_TOLERATE_FAILURES", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Waiting")]
    pub tolerate_failures: bool,

    /// How often to look at the workloads and their pods, at the latest: a workload is also
    /// looked at as soon as the API server reports a change to it (a watch).
    #[arg(long, value_name = "DURATION", env = "K8S_APPLY_POLL", default_value = DEFAULT_POLL,
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub poll: Duration,

    /// On failure, leave everything as the failed apply left it.
    #[arg(long, env = "K8S_APPLY_NO_ROLLBACK", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Waiting")]
    pub no_rollback: bool,

    /// The rollback's own time budget to wait for the restored workloads.
    #[arg(long, value_name = "DURATION", env = "K8S_APPLY_ROLLBACK_TIMEOUT", default_value = "5m",
        value_parser = common::cli::parse_duration, help_heading = "Waiting")]
    pub rollback_timeout: Duration,

    /// Server-side dry run of everything and a diff of live vs would-be objects; change
    /// nothing.
    #[arg(long, env = "K8S_APPLY_DRY_RUN", action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

const DEFAULT_TIMEOUT: &str = "10m";
const DEFAULT_FAIL_AFTER: &str = "20s";
const DEFAULT_POLL: &str = "2s";

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
            (
                "--timeout",
                differs_from_default(args.timeout, DEFAULT_TIMEOUT),
            ),
            (
                "--fail-after",
                differs_from_default(args.fail_after, DEFAULT_FAIL_AFTER),
            ),
            ("--poll", differs_from_default(args.poll, DEFAULT_POLL)),
            ("--tolerate-failures", args.tolerate_failures),
        ],
    )
}

impl common::Tool for K8sApply {
    const NAME: &'static str = "k8s-apply";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        cluster::seed_tls_random();
        let request = Request::from_args(&args)?;
        let local = plan::Local::read(&request, envelope, ui)?;
        warn_moot_with_no_wait(&args);
        let groups = match request.applyset {
            Some(_) => Vec::new(), // every group: members of kinds no longer in the manifests
            None => local.groups(),
        };
        let cluster = cluster::Cluster::connect(&request, &groups, ui).await?;
        let diffs = plan::shows_diffs(request.dry_run, ui);
        let plan = plan::plan(&cluster, &request, local, diffs).await?;
        let slot = envelope.deployments.len();
        envelope
            .deployments
            .push(record::start(&cluster, &plan, request.dry_run));
        plan::report(&plan, request.dry_run, ui);
        if request.dry_run {
            if let Some(set) = &plan.applyset {
                let pruned: Vec<String> = set.prune.iter().map(|t| t.display()).collect();
                for name in &pruned {
                    ui.line(&format!("{name}: would be pruned (dry run)"));
                }
                record::set_pruned(&mut envelope.deployments[slot], &set.id, &pruned);
            }
            return Ok(());
        }
        apply::run(
            &cluster,
            &plan,
            &request,
            ui,
            &mut envelope.deployments[slot],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moot(flags: &[&str]) -> Vec<&'static str> {
        let argv = ["k8s-apply", "--filename", "x.yaml"].iter().chain(flags);
        warn_moot_with_no_wait(&Args::try_parse_from(argv).expect("valid flags"))
    }

    #[test]
    fn waiting_flags_given_with_no_wait_are_named_and_defaults_are_not() {
        assert!(moot(&["--no-wait"]).is_empty());
        assert!(moot(&["--no-wait", "--timeout", "10m"]).is_empty());
        assert_eq!(
            moot(&["--no-wait", "--timeout", "5m", "--tolerate-failures"]),
            ["--timeout", "--tolerate-failures"]
        );
        assert!(moot(&["--timeout", "5m"]).is_empty(), "it waits");
    }
}
