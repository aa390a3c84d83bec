//! img-build: builds Docker images through the Engine API, reproducibly, and only when
//! something changed.
//!
//! # What it does
//! For each `--context`, it reads the `.dockerignore` (Docker's exact rules), walks the tree
//! and makes a deterministic tar of it (sorted entries, fixed mtime, uid/gid 0, modes and
//! symlinks kept). The sha256 of that tar, with the Dockerfile's path, the build arguments,
//! target, platform and `--label`s, is the *content digest*. A local image labelled with
//! the same digest is reused (tagged, `cache_hit: true`) without calling build; otherwise
//! the image is built with the digest as a label: with BuildKit (the default when the
//! Engine offers it; the context, Dockerfile, `--secret`s and registry logins go through
//! img-build's own session, see [`session`]), or with the classic builder (`--builder
//! classic`; the tar is streamed as the body of `POST /build`).
//!
//! # Modules
//! - `lib.rs`: the flags; [`request`]: the flags turned once into a [`request::Request`];
//! - [`tags`], [`plan`], [`dockerignore`], [`progress`] (deciding, pure): names and tag
//!   templates; labels, build arguments, the digest; `.dockerignore` matching; the builder's
//!   output stream;
//! - `prepare` and [`context`]: each image's tags and context entries (reading the disk and
//!   git), walking the tree and writing the tar;
//! - `build` and [`engine`] (doing): hashing, reusing or building, through the one Engine
//!   client;
//! - `record`: the envelope's images, the step outputs and summary.

mod build;
pub mod context;
mod credentials;
pub mod dockerignore;
pub mod engine;
pub mod filesync;
pub mod plan;
mod prepare;
pub mod progress;
mod record;
pub mod request;
pub mod session;
pub mod tags;

use build::Builder;
use common::envelope::Envelope;
use common::{CommonArgs, Result, Ui};
use prepare::Provenance;
use request::Request;
use std::path::PathBuf;

/// The tool, for [`common::main`].
pub struct ImgBuild;

const EXAMPLES: &str = "\
Examples:
  # Build services/api, tagged api:git-<short sha> and api:<branch>, then push it:
  img-build --context services/api | img-push --ecr

  # Two images in one call; the second run with unchanged contexts builds nothing:
  img-build --context services/api --context services/auth

  # Own tags and build arguments:
  img-build --context . --name web --tag 'git-{short_sha}{dirty}' --tag latest \\
            --build-arg NODE_ENV=production

  # A token for the build only (RUN --mount=type=secret,id=npm,target=/root/.npmrc npm ci):
  img-build --context . --secret id=npm,env=NPM_TOKEN
  # not --build-arg NPM_TOKEN: a build argument is written into the image's history, for
  # anyone who pulls the image to read; a secret is mounted for that one RUN and kept nowhere.

  # CI on a fresh runner: reuse the layers of main's image from the registry, and put the
  # cache metadata into this image for the next run:
  img-build --context services/api --context services/auth \\
            --cache-from 'registry.example.com/{name}:main' --cache-to inline

  # What would be built, with which tags and labels, without building:
  img-build --context services/api --dry-run --pretty

Tags: without --tag, NAME:git-<short sha> and NAME:<branch>, with -dirty when the tree has
uncommitted changes. A --tag template may use {sha} {short_sha} {branch} {version} {name}
{dirty}; a template without ':' in its last path segment is a tag of NAME, otherwise a whole
reference (localhost:5000/team/{name}:{short_sha}).

Builder: BuildKit when the Engine offers it (Engine 18.09+ on Linux; else the classic builder,
with a note): RUN --mount=type=cache|bind|tmpfs|secret, independent stages in parallel, steps
shown as `[2/5] RUN ...`, `CACHED`, `DONE 1.2s` with each output line labelled by its step (on a
terminal: a live timer per running step with its last line; a failing step's last lines are
in the error). --builder classic for the Engine's original builder.
The context and Dockerfile reach BuildKit through img-build's session, as `docker build` sends
them. Logins for --cache-from: an ECR host's token from ECR (GetAuthorizationToken, the usual
AWS credentials, as img-push gets it), any other registry's from the Docker configuration
(docker login, credHelpers, credsStore); a cache that cannot be pulled is built without.

Cache: the sha256 of the context tar, Dockerfile path, build args, target, platform and
--labels is stored in the label dev.shipkit.context-digest; an image carrying the same
digest is tagged and reused without building. Base images are not part of the digest:
--no-cache rebuilds (and turns off the Engine's layer cache).

Environment: every flag also reads IMG_BUILD_<FLAG> (IMG_BUILD_CONTEXT, IMG_BUILD_TAG, ...;
lists separated by ',' for contexts, files, names, tags and --cache-from, by newlines for build args,
labels and secrets). DOCKER_HOST chooses the Engine; SOURCE_DATE_EPOCH, when set, is the created label.";

/// img-build's flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "img-build",
    version,
    about = "Build Docker images through the Engine API, reproducibly and only when something changed.",
    after_help = EXAMPLES,
)]
pub struct Args {
    /// Build context directory; repeat to build several images in one call.
    #[arg(
        long = "context",
        value_name = "DIR",
        env = "IMG_BUILD_CONTEXT",
        value_delimiter = ',',
        default_value = "."
    )]
    pub contexts: Vec<PathBuf>,

    /// Dockerfile (default: <context>/Dockerfile); once per --context, in the same order.
    #[arg(
        long = "file",
        short = 'f',
        value_name = "PATH",
        env = "IMG_BUILD_FILE",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,

    /// Logical image name (default: the context folder's name); once per --context.
    #[arg(
        long = "name",
        value_name = "NAME",
        env = "IMG_BUILD_NAME",
        value_delimiter = ','
    )]
    pub names: Vec<String>,

    /// Tag template, repeatable; replaces the default tags (see below).
    #[arg(
        long = "tag",
        short = 't',
        value_name = "TEMPLATE",
        env = "IMG_BUILD_TAG",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,

    /// Build argument KEY=VALUE, or KEY to take the value from the environment; repeatable.
    #[arg(
        long = "build-arg",
        value_name = "KEY[=VALUE]",
        env = "IMG_BUILD_BUILD_ARG",
        value_delimiter = '\n'
    )]
    pub build_args: Vec<String>,

    /// Image label KEY=VALUE, repeatable (wins over the computed OCI labels).
    #[arg(
        long = "label",
        value_name = "KEY=VALUE",
        env = "IMG_BUILD_LABEL",
        value_delimiter = '\n',
        value_parser = common::cli::parse_key_value
    )]
    pub labels: Vec<(String, String)>,

    /// Build stage to stop at.
    #[arg(long, value_name = "STAGE", env = "IMG_BUILD_TARGET")]
    pub target: Option<String>,

    /// Target platform (os[/arch[/variant]]).
    #[arg(long, value_name = "PLATFORM", env = "IMG_BUILD_PLATFORM", value_parser = request::parse_platform)]
    pub platform: Option<String>,

    /// Build even if an image with the same content digest exists, without layer cache.
    #[arg(long, env = "IMG_BUILD_NO_CACHE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,

    /// Builder: buildkit (the default when the Engine offers it; cache, secret and bind
    /// mounts, parallel stages) or classic (the Engine's original builder).
    #[arg(long, value_name = "BUILDER", env = "IMG_BUILD_BUILDER", value_enum)]
    pub builder: Option<request::BuilderChoice>,

    /// Secret for `RUN --mount=type=secret,id=ID`: id=ID,src=FILE or id=ID,env=VAR
    /// (BuildKit; repeatable). Never in a layer, the history, the envelope or the logs.
    #[arg(
        long = "secret",
        value_name = "id=ID,src=FILE|env=VAR",
        env = "IMG_BUILD_SECRET",
        value_delimiter = '\n'
    )]
    pub secrets: Vec<String>,

    /// Image to reuse cached layers from (BuildKit: its inline cache, pulled from the
    /// registry as needed); `{name}` is the image's name; repeatable.
    #[arg(
        long = "cache-from",
        value_name = "REF",
        env = "IMG_BUILD_CACHE_FROM",
        value_delimiter = ','
    )]
    pub cache_from: Vec<String>,

    /// Where to export the build cache: `inline` (in the image's config, pushed with it, so
    /// the next build's --cache-from finds it; BuildKit).
    #[arg(long, value_name = "inline", env = "IMG_BUILD_CACHE_TO")]
    pub cache_to: Option<String>,

    /// Always try to pull newer versions of the base images.
    #[arg(long, env = "IMG_BUILD_PULL", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub pull: bool,

    /// Compute digests, tags and labels (and whether the cache has the image) without
    /// building or tagging anything.
    #[arg(long, env = "IMG_BUILD_DRY_RUN", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl common::Tool for ImgBuild {
    const NAME: &'static str = "img-build";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        run(args, envelope, ui).await
    }
}

/// Decides everything, then builds (or reuses) each image in turn.
pub async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let request = Request::from_args(&args)?;
    let provenance = Provenance::read(envelope, &request);
    if envelope.git.is_none() {
        envelope.git = provenance.git.clone();
    }
    let plans = prepare::plan_images(&request, &provenance)?;
    let builder = Builder::connect(&request, &provenance, ui).await?;
    let mut done = Vec::new();
    for plan in plans {
        let _group = ui.group(&format!("img-build {}", plan.name));
        let image = builder.build(plan, ui).await?;
        record::record(envelope, &image);
        done.push(image);
    }
    record::report_outputs(&done, ui);
    Ok(())
}
