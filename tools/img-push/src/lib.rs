//! img-push: pushes images to ECR or any registry by digest, skips what is already there,
//! and promotes an image from one tag to another without rebuilding or pulling it.
//!
//! # What it does
//! For each image (the envelope's `images[]`, or `--image`), and each of its tags plus
//! `--tag`s, it decides from what the registry and the local Engine know:
//! - the registry has the tag at this image (a digest the local image is known by in that
//!   repository, or a manifest whose config is the local image id) → `skipped: true`,
//!   nothing sent;
//! - when the image id is known before the Engine is asked (img-build writes
//!   `images[].id`; `--image sha256:…`), the registry is asked first, and an image whose
//!   tags are all at a manifest with that config needs no Engine at all: a re-push is one
//!   registry login and one manifest `GET` per tag. Any other image is looked up in the
//!   Engine before anything changes (one that does not exist is bad input, exit 2);
//! - the repository's tags are immutable and the tag points at another image → exit 1
//!   naming the tag and both digests, before anything is pushed;
//! - otherwise the Engine pushes the first such tag (`docker push`, layer progress on a
//!   terminal), the digest is taken from the push stream and confirmed with a `HEAD` of the
//!   manifest, and the other tags get the same manifest by `PUT` (no second upload).
//!   When the registry already holds the image's manifest under another tag, no upload at
//!   all: the tags are written by `PUT`.
//!
//! `--promote` copies the manifest of `--from-tag` to `--to-tag` through the registry API
//! (`GET` + `PUT` of the exact bytes, so the digest is unchanged) and needs no Docker Engine.
//!
//! # ECR
//! The ECR API is used only for what the registry cannot do: GetAuthorizationToken (the
//! login), DescribeRepositories (does the repository exist, are its tags immutable) and
//! CreateRepository (`--create-repository`), plus STS GetCallerIdentity for `--ecr`.
//! Existence checks, digests and promotion go through the registry HTTP API, which ECR
//! implements (Docker Registry HTTP API V2): a manifest `GET` on ECR is authorised as
//! `ecr:BatchGetImage` and a `PUT` as `ecr:PutImage`, so this needs the same permissions as
//! BatchGetImage + PutImage would, keeps one code path for every registry, and works with
//! the local stand-ins (moto's ECR API does not see what is in the local registry).
//! Immutable tags are checked here before pushing, which also gives a clearer error than
//! ECR's own refusal.
//!
//! # Exit codes
//! 0 done (pushed, skipped or promoted); 1 the job failed: a registry or AWS refused or was
//! unreachable after retries, a missing ECR repository without `--create-repository`, an
//! immutable tag at another image, a promotion source that does not exist; 2 bad usage or
//! bad input, found before anything is sent: no images, a bad reference, a local image that
//! does not exist, `--repository` with several images, conflicting flags, no AWS region.
//! (An image known by its id is looked up in the Engine only after the registry was read,
//! so a missing one is found after those reads, still before anything changes; one whose
//! tags the registry already has at that id is skipped even if it is gone locally.)
//!
//! # Modules
//! - [`reference`]: references, hosts, repositories (pure);
//! - [`plan`]: skip / push / conflict decisions, backoff, push stream lines (pure);
//! - [`auth`]: credentials from flags and the Docker configuration;
//! - [`registry`]: the registry HTTP API (manifests, auth challenges, retries);
//! - [`ecr`]: the ECR and STS calls;
//! - [`engine`]: the Docker Engine calls (inspect, tag, push).

pub mod auth;
pub mod ecr;
pub mod engine;
pub mod plan;
pub mod reference;
pub mod registry;

use auth::{Credentials, Origin};
use common::envelope::{Envelope, Image, Pushed};
use common::reference::{self as image_reference, Reference};
use common::{CommonArgs, Error, Result, Ui};
use engine::{Engine, LocalImage, PushProgress};
use futures_util::StreamExt;
use plan::{LayerOutcome, PromoteAction, Remote, TagAction};
use reference::{Destination, Repository};
use registry::{Manifest, Registry, Retry};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tool, for [`common::main`].
pub struct ImgPush;

const EXAMPLES: &str = "\
Examples:
  # Build, then push every tag of the image to ECR (account from STS, region from AWS_REGION
  # or the profile), creating the repository on first use:
  img-build --context services/api | img-push --ecr --create-repository

  # Any registry, under a prefix; credentials from ~/.docker/config.json (docker login):
  img-build --context services/api | img-push --registry registry.example.com/team

  # One local image to one exact repository, with an extra tag:
  img-push --image api:dev --repository localhost:5000/team/api --tag latest

  # Password on stdin: the envelope must then come from a file.
  img-build --context . --output build.json
  printf '%s' \"$REGISTRY_PASSWORD\" | img-push --input build.json --registry reg.example.com \\
      --username ci --password-stdin

  # Production gets exactly what staging tested: re-tag the release commit's image, no daemon:
  release-tag --current | img-push --ecr --promote --name api --name auth

Skip: a tag the registry already has at this image is reported with \"skipped\": true and
nothing is sent. Immutable tags (an ECR repository with IMMUTABLE tags, or --immutable-tags
for any registry) that point at another image stop the run before anything is pushed.

Promote: --from-tag defaults to git-<short sha> of the envelope's release.commit, else of its
git.commit (-dirty appended for a dirty tree, as img-build tags it), else of HEAD;
--to-tag to the envelope's release.tag; the manifest is copied byte for byte, so the digest
does not change.

Auth: --username with --password-stdin; else for ECR hosts a GetAuthorizationToken login;
else $DOCKER_CONFIG/config.json (auths, credHelpers, credsStore). Secrets are masked under
GitHub Actions and never printed or written.

Environment: every flag also reads IMG_PUSH_<FLAG> (IMG_PUSH_REGISTRY, IMG_PUSH_TAG, ...;
lists separated by ','). AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL[_ECR|_STS], DOCKER_HOST
and DOCKER_CONFIG are honoured as usual.";

/// img-push's flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "img-push",
    version,
    about = "Push images to ECR or any registry by digest, skip what is there, promote without rebuilding.",
    after_help = EXAMPLES,
    group(clap::ArgGroup::new("destination").required(true).args(["ecr", "registry", "repository"])),
)]
pub struct Args {
    /// Push to ECR: <account>.dkr.ecr.<region>.amazonaws.com/<name>, the account from STS
    /// and the region from the AWS configuration.
    #[arg(long, env = "IMG_PUSH_ECR",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Destination")]
    pub ecr: bool,

    /// Push to HOST[/PREFIX]/<name>.
    #[arg(
        long,
        value_name = "HOST[/PREFIX]",
        env = "IMG_PUSH_REGISTRY",
        help_heading = "Destination"
    )]
    pub registry: Option<String>,

    /// Push the (single) image to exactly this repository (HOST/PATH).
    #[arg(
        long,
        value_name = "URI",
        env = "IMG_PUSH_REPOSITORY",
        help_heading = "Destination"
    )]
    pub repository: Option<String>,

    /// Create a missing ECR repository (else a missing repository is an error).
    #[arg(long, env = "IMG_PUSH_CREATE_REPOSITORY",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Destination")]
    pub create_repository: bool,

    /// With --create-repository: turn on ECR scan on push.
    #[arg(
        long,
        env = "IMG_PUSH_SCAN_ON_PUSH",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Destination"
    )]
    pub scan_on_push: bool,

    /// Tags are immutable: create ECR repositories so, and refuse to move an existing tag
    /// to another image on any registry.
    #[arg(long, env = "IMG_PUSH_IMMUTABLE_TAGS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Destination")]
    pub immutable_tags: bool,

    /// A local image to push instead of the envelope's images (repeatable).
    #[arg(
        long = "image",
        value_name = "LOCAL_REF",
        env = "IMG_PUSH_IMAGE",
        value_delimiter = ',',
        help_heading = "Images and tags"
    )]
    pub images: Vec<String>,

    /// Only the images of this name (repeatable); with --promote and no images upstream,
    /// the repositories to promote.
    #[arg(
        long = "name",
        value_name = "NAME",
        env = "IMG_PUSH_NAME",
        value_delimiter = ',',
        help_heading = "Images and tags"
    )]
    pub names: Vec<String>,

    /// An extra tag to push besides the image's own tags (repeatable).
    #[arg(
        long = "tag",
        short = 't',
        value_name = "TAG",
        env = "IMG_PUSH_TAG",
        value_delimiter = ',',
        help_heading = "Images and tags"
    )]
    pub tags: Vec<String>,

    /// Copy the manifest at --from-tag to --to-tag in the registry (no Docker Engine needed).
    #[arg(long, env = "IMG_PUSH_PROMOTE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Promotion")]
    pub promote: bool,

    /// The tag to promote (default: git-<short sha> of the release's commit, see below).
    #[arg(
        long,
        value_name = "TAG",
        env = "IMG_PUSH_FROM_TAG",
        help_heading = "Promotion"
    )]
    pub from_tag: Option<String>,

    /// The tag to give it (repeatable; default: the envelope's release.tag).
    #[arg(
        long = "to-tag",
        value_name = "TAG",
        env = "IMG_PUSH_TO_TAG",
        value_delimiter = ',',
        help_heading = "Promotion"
    )]
    pub to_tags: Vec<String>,

    /// Registry user name; the password is read from stdin (--password-stdin).
    #[arg(
        long,
        value_name = "USER",
        env = "IMG_PUSH_USERNAME",
        help_heading = "Auth"
    )]
    pub username: Option<String>,

    /// Read the password for --username from stdin. The envelope then cannot come from
    /// stdin: give it with --input FILE.
    #[arg(long, help_heading = "Auth")]
    pub password_stdin: bool,

    /// How many pushes run at once.
    #[arg(
        long,
        short = 'j',
        value_name = "N",
        env = "IMG_PUSH_JOBS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub jobs: u32,

    /// Retries of a push or registry request after a transient failure (network, 5xx, 429).
    #[arg(long, value_name = "N", env = "IMG_PUSH_RETRIES", default_value_t = 4)]
    pub retries: u32,

    /// The first wait before a retry; it doubles each time (at most 30s).
    #[arg(
        long,
        value_name = "DURATION",
        env = "IMG_PUSH_RETRY_DELAY",
        default_value = "1s",
        value_parser = common::cli::parse_duration
    )]
    pub retry_delay: Duration,

    /// Resolve destinations, credentials and skips; push, create and tag nothing.
    #[arg(long, env = "IMG_PUSH_DRY_RUN",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    /// Checks what clap cannot say in one line: --password-stdin needs --input (stdin is the
    /// password) and --username.
    fn check_flags(&self) -> std::result::Result<(), clap::Error> {
        let conflict = |message: &str| {
            Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!("{message}\n"),
            ))
        };
        // Checked here rather than with clap's `requires`/`conflicts_with`: those take a flag
        // set to false from the environment (IMG_PUSH_PROMOTE=false) as given.
        if self.promote && !(self.images.is_empty() && self.tags.is_empty()) {
            return conflict(
                "--promote copies a tag already in the registry: --image and --tag do not apply \
                 (use --name, --from-tag and --to-tag)",
            );
        }
        if !self.promote && (self.from_tag.is_some() || !self.to_tags.is_empty()) {
            return conflict("--from-tag and --to-tag need --promote");
        }
        if self.scan_on_push && !self.create_repository {
            return conflict("--scan-on-push needs --create-repository");
        }
        match (self.password_stdin, &self.username, &self.common.input) {
            (true, None, _) => conflict("--password-stdin needs --username"),
            (true, Some(_), None) => conflict(
                "--password-stdin reads the password from stdin, so the envelope cannot come \
                 from there: pass it with --input FILE",
            ),
            (false, Some(_), _) => conflict("--username needs --password-stdin"),
            _ => Ok(()),
        }
    }
}

/// [`Args`], checked across flags while parsing, so that a mistake is reported before the
/// runner reads stdin.
#[derive(Debug, Clone)]
pub struct CheckedArgs(pub Args);

impl clap::CommandFactory for CheckedArgs {
    fn command() -> clap::Command {
        Args::command()
    }
    fn command_for_update() -> clap::Command {
        Args::command_for_update()
    }
}

impl clap::FromArgMatches for CheckedArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        let args = Args::from_arg_matches(matches)?;
        args.check_flags()?;
        Ok(CheckedArgs(args))
    }
    fn update_from_arg_matches(
        &mut self,
        matches: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)?;
        self.0.check_flags()
    }
}

impl clap::Parser for CheckedArgs {}

impl common::Tool for ImgPush {
    const NAME: &'static str = "img-push";
    type Args = CheckedArgs;

    fn common_args(args: &CheckedArgs) -> &CommonArgs {
        &args.0.common
    }

    async fn run(args: CheckedArgs, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        run(args.0, envelope, ui).await
    }
}

/// Pushes (or promotes) as `args` say, adding `pushed[]` entries to `envelope` as they are
/// done, so a failure leaves what was pushed in the envelope.
pub async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let destination = destination(&args)?;
    for tag in args.tags.iter().chain(&args.to_tags).chain(&args.from_tag) {
        image_reference::check_tag(tag).map_err(Error::usage)?;
    }
    let retry = Retry {
        retries: args.retries,
        first_delay: args.retry_delay,
    };
    let password = match args.password_stdin {
        true => Some(auth::password_from_stdin(ui)?),
        false => None,
    };
    let user_credentials = match (&args.username, password) {
        (Some(username), Some(password)) => {
            let credentials = Credentials::Basic {
                username: username.clone(),
                password,
            };
            credentials.mask(ui);
            Some(credentials)
        }
        _ => None,
    };
    match args.promote {
        true => promote(&args, &destination, user_credentials, retry, envelope, ui).await,
        false => push(&args, &destination, user_credentials, retry, envelope, ui).await,
    }
}

fn destination(args: &Args) -> Result<Destination> {
    match (&args.registry, &args.repository, args.ecr) {
        (Some(registry), _, _) => Destination::registry(registry).map_err(Error::usage),
        (_, Some(repository), _) => Destination::repository(repository).map_err(Error::usage),
        (None, None, true) => Ok(Destination::Ecr),
        // IMG_PUSH_ECR=false satisfies clap's "one destination" without naming one.
        (None, None, false) => Err(Error::usage(
            "no destination: pass --ecr, --registry or --repository",
        )),
    }
}

/// The registry host, its client, the repository of each image, and what ECR says of them.
struct Target {
    host: String,
    registry: Registry,
    ecr: Option<ecr::Ecr>,
    /// The repository of each name given to [`connect`], in order.
    repositories: Vec<Repository>,
    /// On ECR, each repository as DescribeRepositories found it (`None`: it does not exist);
    /// empty elsewhere.
    described: BTreeMap<Repository, Option<ecr::RepositoryInfo>>,
}

impl Target {
    /// Whether `repository` may hold tags: an ECR repository that does not exist holds none
    /// (any other registry creates repositories on push, so it is asked).
    fn exists(&self, repository: &Repository) -> bool {
        self.ecr.is_none() || matches!(self.described.get(repository), Some(Some(_)))
    }
}

/// Resolves the host (STS for --ecr), the repositories of `names`, the credentials and the
/// registry connection. Logging in to the registry and asking ECR about the repositories
/// only read, and neither needs the other: they run together.
async fn connect(
    destination: &Destination,
    names: &[&str],
    user_credentials: Option<Credentials>,
    retry: Retry,
    jobs: u32,
    ui: &Ui,
) -> Result<Target> {
    // The HTTPS client loads the system trust store: on a blocking thread, while the AWS
    // calls below run. ECR hosts are never loopback; a loopback registry is tried in plain
    // HTTP first and makes its HTTPS client only if it turns out to need one.
    let https = match destination {
        Destination::Ecr => true,
        Destination::Registry { host, .. } | Destination::Repository(Repository { host, .. }) => {
            !reference::is_loopback(host)
        }
    }
    .then(|| tokio::task::spawn_blocking(registry::https_client));
    let (host, ecr) = match destination {
        Destination::Ecr => {
            let config = common::aws::load().await?;
            let region = common::aws::require_region(&config)?.to_string();
            let account = ecr::caller_account(&config).await?;
            let host = reference::ecr_host_name(&account, &region);
            (host, Some(ecr::Ecr::new(&config, &account, &region)))
        }
        Destination::Registry { host, .. } | Destination::Repository(Repository { host, .. }) => {
            match reference::ecr_host(host) {
                Some(ecr_host) => {
                    let config = common::aws::load_for_region(&ecr_host.region).await;
                    let ecr = ecr::Ecr::new(&config, &ecr_host.account, &ecr_host.region);
                    (host.clone(), Some(ecr))
                }
                None => (host.clone(), None),
            }
        }
    };
    let repositories: Vec<Repository> = names
        .iter()
        .map(|name| {
            destination
                .repository_for(name, Some(&host))
                .ok_or_else(|| Error::failed("no repository for the destination"))
        })
        .collect::<Result<_>>()?;
    let login = async {
        let (credentials, origin) = match (user_credentials, &ecr) {
            (Some(credentials), _) => (Some(credentials), Origin::Flags),
            (None, Some(ecr)) => (Some(ecr.login(ui).await?), Origin::Ecr),
            (None, None) => match auth::from_docker_config(&host, ui)? {
                Some((credentials, origin)) => (Some(credentials), origin),
                None => (None, Origin::Anonymous),
            },
        };
        tracing::debug!("{host}: credentials from {origin}");
        let https =
            match https {
                Some(task) => Some(task.await.map_err(|err| {
                    Error::failed(format!("cannot set up the HTTP client: {err}"))
                })??),
                None => None,
            };
        Registry::connect(&host, credentials, https, retry, ui).await
    };
    let describe = async {
        let Some(ecr) = &ecr else {
            return Ok(BTreeMap::new());
        };
        let unique: BTreeSet<&Repository> = repositories.iter().collect();
        futures_util::stream::iter(unique)
            .map(|repository| async move {
                let info = ecr.repository(&repository.path).await?;
                Ok::<_, Error>((repository.clone(), info))
            })
            .buffer_unordered(jobs as usize)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<BTreeMap<_, _>>>()
    };
    let (registry, described) = tokio::try_join!(login, describe)?;
    Ok(Target {
        host,
        registry,
        ecr,
        repositories,
        described,
    })
}

/// Whether each repository's tags are immutable, from what [`connect`] found; a missing
/// ECR repository is created with `create` (reported only, with --dry-run), else an error.
async fn ready_repositories(
    target: &Target,
    args: &Args,
    create: bool,
    ui: &Ui,
) -> Result<BTreeMap<Repository, bool>> {
    let mut immutable = BTreeMap::new();
    for repository in &target.repositories {
        if immutable.contains_key(repository) {
            continue;
        }
        let is_immutable = match (&target.ecr, target.described.get(repository)) {
            (None, _) => args.immutable_tags,
            (Some(_), Some(Some(info))) => info.immutable || args.immutable_tags,
            (Some(_), _) if create && args.dry_run => {
                ui.line(&format!(
                    "{repository}: would create the ECR repository (dry run)"
                ));
                args.immutable_tags
            }
            (Some(ecr), _) if create => {
                let info = ecr
                    .create(&repository.path, args.scan_on_push, args.immutable_tags)
                    .await?;
                ui.line(&format!(
                    "{repository}: created the ECR repository ({} tags{})",
                    if info.immutable {
                        "immutable"
                    } else {
                        "mutable"
                    },
                    if args.scan_on_push {
                        ", scan on push"
                    } else {
                        ""
                    }
                ));
                info.immutable
            }
            (Some(_), _) => {
                return Err(Error::failed(format!(
                    "the ECR repository {} does not exist in {}: create it, or pass \
                     --create-repository",
                    repository.path, target.host
                )));
            }
        };
        immutable.insert(repository.clone(), is_immutable);
    }
    Ok(immutable)
}

/// One image to push: where it is in the envelope, its local reference, its tags.
#[derive(Debug, Clone)]
struct Source {
    /// Index in `envelope.images`, when it came from there.
    index: Option<usize>,
    name: String,
    /// What to inspect and tag from: the image id, else its first local reference.
    local: String,
    /// The image id: known from the start when the envelope or `--image` gives it as a
    /// digest (then the registry alone can tell that a tag is at this image), else once
    /// inspected.
    id: Option<String>,
    tags: Vec<String>,
}

/// The images to push, from `--image` or the envelope (filtered by `--name`), checked.
fn sources(args: &Args, envelope: &Envelope) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    if !args.images.is_empty() {
        for text in &args.images {
            // An image id names no repository: its tags are the --tag ones only.
            if image_reference::check_digest(text).is_ok() {
                let Some(Destination::Repository(repository)) = args
                    .repository
                    .as_deref()
                    .and_then(|r| Destination::repository(r).ok())
                else {
                    return Err(Error::usage(format!(
                        "--image {text}: an image id has no name to make a repository from: \
                         use --repository, or a named reference (name:tag)"
                    )));
                };
                sources.push(Source {
                    index: None,
                    name: repository
                        .path
                        .rsplit('/')
                        .next()
                        .unwrap_or("image")
                        .to_owned(),
                    local: text.clone(),
                    id: Some(text.clone()),
                    tags: plan::tags_to_push(&[], &args.tags),
                });
                continue;
            }
            let parsed =
                Reference::parse(text).map_err(|why| Error::usage(format!("--image: {why}")))?;
            let own = reference::tag_of(text).map_err(Error::usage)?;
            sources.push(Source {
                index: None,
                name: parsed.name().to_owned(),
                local: text.clone(),
                id: None,
                tags: plan::tags_to_push(&own.into_iter().collect::<Vec<_>>(), &args.tags),
            });
        }
    } else {
        for name in &args.names {
            if !envelope.images.iter().any(|i| &i.name == name) {
                return Err(Error::usage(format!(
                    "--name {name}: the input envelope has no image of that name"
                )));
            }
        }
        for (index, image) in envelope.images.iter().enumerate() {
            if !args.names.is_empty() && !args.names.contains(&image.name) {
                continue;
            }
            let mut own = Vec::new();
            for tag in &image.tags {
                let parsed = reference::tag_of(tag).map_err(|why| {
                    Error::usage(format!("image {} in the envelope: {why}", image.name))
                })?;
                own.extend(parsed);
            }
            let local = image
                .id
                .clone()
                .filter(|id| !id.is_empty())
                .or_else(|| image.tags.first().cloned())
                .ok_or_else(|| {
                    Error::usage(format!(
                        "image {} in the envelope has neither an id nor a tag to push",
                        image.name
                    ))
                })?;
            // img-build's id is the digest of the image config, which names every layer by
            // content: a registry manifest with that config is this image.
            let id = Some(local.clone()).filter(|l| image_reference::check_digest(l).is_ok());
            sources.push(Source {
                index: Some(index),
                name: image.name.clone(),
                local,
                id,
                tags: plan::tags_to_push(&own, &args.tags),
            });
        }
    }
    if sources.is_empty() {
        return Err(Error::usage(
            "no images to push: the input envelope has no images[] (pipe img-build into \
             img-push) and no --image was given",
        ));
    }
    if sources.len() > 1 && args.repository.is_some() {
        return Err(Error::usage(format!(
            "--repository names one repository, but there are {} images ({}): use --registry, \
             or --name/--image to pick one",
            sources.len(),
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for source in &sources {
        if source.tags.is_empty() {
            return Err(Error::usage(format!(
                "image {} has no tag to push: pass --tag",
                source.name
            )));
        }
        if args.repository.is_none() {
            image_reference::check_path(&source.name)
                .map_err(|why| Error::usage(format!("image name {}: {why}", source.name)))?;
        }
    }
    Ok(sources)
}

/// One image going to one repository: its tags and what to do with each.
#[derive(Debug, Clone)]
struct Job {
    source: Source,
    repository: Repository,
    /// What the Engine knows of the image; `None` when the registry alone settled every tag
    /// (all skipped), so the Engine was not asked.
    local: Option<LocalImage>,
    /// Tags in order, with the decision for each.
    tags: Vec<(String, TagAction)>,
}

/// How one job ended, per tag.
struct JobResult {
    source: Source,
    pushed: Vec<Pushed>,
}

async fn push(
    args: &Args,
    destination: &Destination,
    user_credentials: Option<Credentials>,
    retry: Retry,
    envelope: &mut Envelope,
    ui: &Ui,
) -> Result<()> {
    let mut sources = sources(args, envelope)?;
    check_tag_claims(&sources, destination)?;
    // An image named by a reference is looked up in the Engine first, for its id: a
    // reference that names no image is bad input, found before any network call. An image
    // whose id is known waits: the registry may have all its tags already.
    let mut engine: Option<Engine> = None;
    let mut locals: Vec<Option<LocalImage>> = vec![None; sources.len()];
    let by_reference: Vec<usize> = (0..sources.len())
        .filter(|&i| sources[i].id.is_none())
        .collect();
    look_up(&mut engine, &mut sources, &mut locals, &by_reference).await?;

    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let target = connect(destination, &names, user_credentials, retry, args.jobs, ui).await?;

    // Phase 1: what the registry has under each tag (reads only).
    let observed: Vec<Result<Vec<(String, Remote)>>> =
        futures_util::stream::iter(sources.iter().zip(&target.repositories).zip(&locals))
            .map(|((source, repository), local)| {
                observe(&target, source, repository, local.as_ref())
            })
            .buffered(args.jobs as usize)
            .collect()
            .await;
    let remotes: Vec<Vec<(String, Remote)>> = observed.into_iter().collect::<Result<_>>()?;

    // Images known by id that the registry does not have at every tag: now the Engine must
    // have them (they are pushed, or compared by RepoDigests). One it does not have is bad
    // input, found before anything changes. One whose tags are all at a manifest with its
    // id as config is skipped without the Engine, even if it is no longer there locally:
    // the config digest names every layer by content, so the registry holds exactly this
    // image and there is nothing to push (idempotent after `docker image prune`, too).
    let unsettled: Vec<usize> = (0..sources.len())
        .filter(|&i| {
            locals[i].is_none() && {
                let id = sources[i].id.as_deref().unwrap_or_default();
                !remotes[i]
                    .iter()
                    .all(|(_, remote)| plan::is_at_image(id, remote))
            }
        })
        .collect();
    look_up(&mut engine, &mut sources, &mut locals, &unsettled).await?;
    let immutable = ready_repositories(&target, args, args.create_repository, ui).await?;

    // Every decision is made before anything is pushed.
    let jobs: Vec<Job> = sources
        .into_iter()
        .zip(target.repositories.iter().cloned())
        .zip(locals)
        .zip(remotes)
        .map(|(((source, repository), local), remotes)| {
            let known = plan::Local {
                id: source.id.clone().unwrap_or_default(),
                digests: local
                    .as_ref()
                    .map(|l| l.digests_in(&repository))
                    .unwrap_or_default(),
            };
            let immutable = immutable.get(&repository).copied().unwrap_or(false);
            let tags = remotes
                .into_iter()
                .map(|(tag, remote)| {
                    let action = plan::decide_push(&known, &remote, immutable);
                    (tag, action)
                })
                .collect();
            Job {
                source,
                repository,
                local,
                tags,
            }
        })
        .collect();
    let conflicts: Vec<String> = jobs
        .iter()
        .flat_map(|job| {
            job.tags.iter().filter_map(move |(tag, action)| match action {
                TagAction::Conflict { registry_digest } => Some(format!(
                    "{} is immutable and points at {registry_digest}, not at the local image {} \
                     ({})",
                    job.repository.with_tag(tag),
                    job.source.name,
                    local_digest_text(job, &job.repository)
                )),
                _ => None,
            })
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(Error::failed(conflicts.join("; ")));
    }

    // Phase 2: push, concurrently, recording each job as it ends.
    let started = Instant::now();
    let bars = std::io::stderr().is_terminal() && ui.actions().is_none();
    let mut results = futures_util::stream::iter(jobs)
        .map(|job| {
            let (registry, engine) = (&target.registry, engine.as_ref());
            async move {
                let source = job.source.clone();
                let outcome = run_job(job, registry, engine, retry, args.dry_run, bars, ui).await;
                (source, outcome)
            }
        })
        .buffer_unordered(args.jobs as usize);
    let mut first_error = None;
    let mut done = Vec::new();
    while let Some((source, outcome)) = results.next().await {
        match outcome {
            Ok(result) => {
                record(envelope, &result);
                done.push(result);
            }
            Err((partial, err)) => {
                record(
                    envelope,
                    &JobResult {
                        source,
                        pushed: partial,
                    },
                );
                if first_error.is_some() {
                    tracing::error!("{err}");
                } else {
                    first_error = Some(err);
                }
            }
        }
    }
    drop(results);
    report(&done, started, args.dry_run, "pushed", ui);
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Looks up the images at `which` in the Engine (connecting on first use), concurrently,
/// filling in their ids; the first in order that does not exist is bad input.
async fn look_up(
    engine: &mut Option<Engine>,
    sources: &mut [Source],
    locals: &mut [Option<LocalImage>],
    which: &[usize],
) -> Result<()> {
    if which.is_empty() {
        return Ok(());
    }
    let engine = match engine {
        Some(engine) => engine,
        None => engine.insert(Engine::connect().await?),
    };
    let found =
        futures_util::future::join_all(which.iter().map(|&i| engine.inspect(&sources[i].local)))
            .await;
    for (&i, found) in which.iter().zip(found) {
        let source = &mut sources[i];
        let local = found?.ok_or_else(|| {
            Error::usage(format!(
                "no local image {} (image {}): build it first (img-build), or check --image",
                source.local, source.name
            ))
        })?;
        source.id = Some(local.id.clone());
        locals[i] = Some(local);
    }
    Ok(())
}

/// Refuses two images going to the same `repository:tag` (checked before anything is sent:
/// with --ecr the host is not known yet, but it is the same for every image).
fn check_tag_claims(sources: &[Source], destination: &Destination) -> Result<()> {
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        let Some(repository) = destination.repository_for(&source.name, Some("ecr")) else {
            continue;
        };
        for tag in &source.tags {
            let target = repository.with_tag(tag);
            if let Some(other) = claimed.insert(target, index)
                && other != index
            {
                let shown = match destination {
                    Destination::Ecr => format!("{}:{tag}", repository.path),
                    _ => repository.with_tag(tag),
                };
                return Err(Error::usage(format!(
                    "{shown} would receive two images ({} and {})",
                    sources[other].local, source.local
                )));
            }
        }
    }
    Ok(())
}

/// What the local image is, for a conflict message: its digest in the repository if known,
/// else its id.
fn local_digest_text(job: &Job, repository: &Repository) -> String {
    let digests = job
        .local
        .as_ref()
        .map(|l| l.digests_in(repository))
        .unwrap_or_default();
    match digests.first() {
        Some(digest) => digest.clone(),
        None => format!("image id {}", job.source.id.as_deref().unwrap_or_default()),
    }
}

/// Asks the registry about each tag of `source` in `repository`. With the Engine's word
/// (`local`), a `HEAD` first: a digest the image is known by settles it; without it, or for
/// another digest, the manifest is read, whose config tells whether it is the same image.
async fn observe(
    target: &Target,
    source: &Source,
    repository: &Repository,
    local: Option<&LocalImage>,
) -> Result<Vec<(String, Remote)>> {
    if !target.exists(repository) {
        return Ok(source
            .tags
            .iter()
            .map(|tag| (tag.clone(), Remote::Absent))
            .collect());
    }
    let known = local.map(|l| l.digests_in(repository));
    let mut tags = Vec::new();
    for tag in &source.tags {
        let path = &repository.path;
        let remote = match &known {
            None => target.registry.remote_tag(path, tag, true).await?,
            Some(known) => match target.registry.remote_tag(path, tag, false).await? {
                Remote::At { digest, .. } if !known.contains(&digest) => {
                    target.registry.remote_tag(path, tag, true).await?
                }
                remote => remote,
            },
        };
        tags.push((tag.clone(), remote));
    }
    Ok(tags)
}

fn entry(repository: &Repository, tag: &str, digest: &str, skipped: bool, dry_run: bool) -> Pushed {
    Pushed {
        repository: repository.to_string(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
        reference: match digest {
            "" => String::new(),
            digest => repository.by_digest(digest),
        },
        skipped,
        dry_run,
        extra: Default::default(),
    }
}

/// Pushes one job's tags: skips first, then one Engine push (or none when the registry has
/// the manifest already), then the other tags by manifest PUT. On failure, returns what
/// was done with the error.
async fn run_job(
    job: Job,
    registry: &Registry,
    engine: Option<&Engine>,
    retry: Retry,
    dry_run: bool,
    bars: bool,
    ui: &Ui,
) -> std::result::Result<JobResult, (Vec<Pushed>, Error)> {
    let Job {
        source,
        repository,
        local,
        tags,
    } = job;
    let _group = ui.group(&format!("img-push {} → {repository}", source.name));
    let mut pushed = Vec::new();
    let mut to_push = Vec::new();
    for (tag, action) in tags {
        match action {
            TagAction::Skip { digest } => {
                ui.line(&format!(
                    "{}: {} is already at {} (skipped)",
                    source.name,
                    repository.with_tag(&tag),
                    short_digest(&digest)
                ));
                pushed.push(entry(&repository, &tag, &digest, true, dry_run));
            }
            TagAction::Push => to_push.push(tag),
            TagAction::Conflict { .. } => unreachable!("conflicts stop the run before pushing"),
        }
    }
    if to_push.is_empty() {
        return Ok(JobResult { source, pushed });
    }
    // A tag to push was not settled by the registry alone, so the image was looked up.
    let (Some(local), Some(engine)) = (local, engine) else {
        unreachable!("an image with a tag to push is looked up in the Engine first")
    };
    let known_digests = local.digests_in(&repository);
    if dry_run {
        let digest = known_digests.first().cloned().unwrap_or_default();
        for tag in to_push {
            ui.line(&format!(
                "{}: would push {} (dry run)",
                source.name,
                repository.with_tag(&tag)
            ));
            pushed.push(entry(&repository, &tag, &digest, false, true));
        }
        return Ok(JobResult { source, pushed });
    }

    // The registry may hold this image's manifest already (under another tag): then the
    // tags are written with no upload at all.
    let mut manifest: Option<Manifest> = None;
    for digest in &known_digests {
        match registry.get_manifest(&repository.path, digest).await {
            Ok(Some(found)) => {
                manifest = Some(found);
                break;
            }
            Ok(None) => {}
            Err(err) => return Err((pushed, err)),
        }
    }
    let mut rest = to_push.as_slice();
    if manifest.is_none() {
        let (first, others) = to_push.split_first().expect("to_push is not empty");
        let digest = match push_with_retries(
            &source,
            &repository,
            first,
            &local,
            registry,
            engine,
            retry,
            bars,
            ui,
        )
        .await
        {
            Ok(digest) => digest,
            Err(err) => return Err((pushed, err)),
        };
        pushed.push(entry(&repository, first, &digest, false, false));
        rest = others;
        if !rest.is_empty() {
            match registry.get_manifest(&repository.path, &digest).await {
                Ok(Some(found)) => manifest = Some(found),
                Ok(None) => {
                    let err = Error::failed(format!(
                        "{}: the manifest {digest} just pushed is not there",
                        repository
                    ));
                    return Err((pushed, err));
                }
                Err(err) => return Err((pushed, err)),
            }
        }
    }
    if let Some(manifest) = manifest {
        for tag in rest {
            match registry
                .put_manifest(&repository.path, tag, &manifest)
                .await
            {
                Ok(digest) => {
                    ui.line(&format!(
                        "{}: tagged {} at {} (manifest already in the registry)",
                        source.name,
                        repository.with_tag(tag),
                        short_digest(&digest)
                    ));
                    pushed.push(entry(&repository, tag, &digest, false, false));
                }
                Err(err) => return Err((pushed, err)),
            }
        }
    }
    Ok(JobResult { source, pushed })
}

/// Tags the local image for `repository:tag` and has the Engine push it, retrying transient
/// failures; returns the digest, confirmed by the registry.
#[allow(clippy::too_many_arguments)]
async fn push_with_retries(
    source: &Source,
    repository: &Repository,
    tag: &str,
    local: &LocalImage,
    registry: &Registry,
    engine: &Engine,
    retry: Retry,
    bars: bool,
    ui: &Ui,
) -> Result<String> {
    let target = repository.with_tag(tag);
    if let Some(credentials) = registry.credentials() {
        ui.mask(&engine::registry_auth_header(credentials, &repository.host));
    }
    engine.tag(&local.id, repository, tag).await?;
    let started = Instant::now();
    let mut attempt = 0;
    let digest = loop {
        let bar = ui.bar(0, format!("{} → {target}", source.name));
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut layers = 0;
        let result = engine
            .push(
                repository,
                tag,
                registry.credentials(),
                |event| match event {
                    PushProgress::Layers(total) => {
                        layers = total;
                        bar.set_length(total);
                    }
                    PushProgress::LayerDone(done, outcome) => {
                        bar.set_position(done);
                        let word = match outcome {
                            LayerOutcome::Pushed => "pushed",
                            LayerOutcome::Existed => "already there",
                            LayerOutcome::Mounted => "mounted",
                        };
                        *counts.entry(word).or_default() += 1;
                        if !bars {
                            ui.line(&format!(
                                "{}: {target}: layer {done}/{layers} {word}",
                                source.name
                            ));
                        }
                    }
                },
            )
            .await;
        drop(bar);
        match result {
            Ok(digest) => {
                let layers_text = counts
                    .iter()
                    .map(|(word, n)| format!("{n} {word}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                ui.line(&format!(
                    "{}: pushed {target} at {} in {:.1}s (layers: {})",
                    source.name,
                    short_digest(&digest),
                    started.elapsed().as_secs_f64(),
                    if layers_text.is_empty() {
                        "none".to_owned()
                    } else {
                        layers_text
                    }
                ));
                break digest;
            }
            Err(err) if err.transient && attempt < retry.retries => {
                attempt += 1;
                retry
                    .wait(attempt, &format!("pushing {target}"), &err.message)
                    .await;
            }
            Err(err) => {
                let tries = match attempt {
                    0 => String::new(),
                    n => format!(" (gave up after {} attempts)", n + 1),
                };
                return Err(Error::failed(format!(
                    "pushing {target}: {}{tries}",
                    err.message
                )));
            }
        }
    };
    // The stream's word, checked against the registry's.
    match registry.head_manifest(&repository.path, tag).await? {
        Some(remote) if remote == digest => Ok(digest),
        Some(remote) => Err(Error::failed(format!(
            "pushed {target}: the Engine reported {digest}, but the registry has {remote}"
        ))),
        None => Err(Error::failed(format!(
            "pushed {target}, but the registry does not have it"
        ))),
    }
}

/// Adds a job's entries to its image in the envelope (replacing entries for the same
/// repository and tag), creating the image entry for an `--image` or `--name`.
fn record(envelope: &mut Envelope, result: &JobResult) {
    if result.pushed.is_empty() {
        return;
    }
    let image = match result.source.index {
        Some(index) => &mut envelope.images[index],
        None => {
            let position = envelope
                .images
                .iter()
                .position(|i| i.name == result.source.name);
            match position {
                Some(position) => &mut envelope.images[position],
                None => {
                    envelope.images.push(Image {
                        name: result.source.name.clone(),
                        id: result.source.id.clone(),
                        tags: match result.source.local.starts_with("sha256:") {
                            true => Vec::new(),
                            false => vec![result.source.local.clone()],
                        },
                        ..Image::default()
                    });
                    envelope.images.last_mut().expect("just pushed")
                }
            }
        }
    };
    for entry in &result.pushed {
        image
            .pushed
            .retain(|p| !(p.repository == entry.repository && p.tag == entry.tag));
        image.pushed.push(entry.clone());
    }
}

/// Step outputs and the step summary under GitHub Actions; a closing line on stderr.
/// `verb` says what happened to the tags that were not already there.
fn report(results: &[JobResult], started: Instant, dry_run: bool, verb: &str, ui: &Ui) {
    let entries: Vec<(&str, &Pushed)> = results
        .iter()
        .flat_map(|r| r.pushed.iter().map(move |p| (r.source.name.as_str(), p)))
        .collect();
    if let Some((_, last)) = entries.last() {
        ui.set_output("digest", &last.digest);
        ui.set_output("reference", &last.reference);
    }
    let names: BTreeSet<&str> = entries.iter().map(|(name, _)| *name).collect();
    if names.len() > 1 {
        for name in &names {
            if let Some((_, first)) = entries.iter().find(|(n, _)| n == name) {
                let key = name.replace(['/', '.', '-'], "_");
                ui.set_output(&format!("{key}_digest"), &first.digest);
                ui.set_output(&format!("{key}_reference"), &first.reference);
            }
        }
    }
    let mut summary = String::from("| image | pushed to | digest | result |\n|---|---|---|---|\n");
    for (name, entry) in &entries {
        summary.push_str(&format!(
            "| {name} | {}:{} | `{}` | {} |\n",
            entry.repository,
            entry.tag,
            short_digest(&entry.digest),
            match (entry.dry_run, entry.skipped) {
                (true, _) => "dry run",
                (_, true) => "already there",
                _ => verb,
            }
        ));
    }
    ui.summary(&summary);
    let skipped = entries.iter().filter(|(_, p)| p.skipped).count();
    ui.line(&format!(
        "img-push: {} tag(s) {}, {skipped} already there, in {:.1}s",
        entries.len() - skipped,
        if dry_run { "to push (dry run)" } else { verb },
        started.elapsed().as_secs_f64()
    ));
}

fn short_digest(digest: &str) -> &str {
    match digest {
        "" => "(unknown)",
        digest => &digest[..digest.len().min(19)],
    }
}

/// The default `--from-tag`: `git-<short sha>` of the envelope's release.commit, else of its
/// git.commit (`-dirty` appended for a dirty tree, as img-build tags it), else of HEAD.
fn default_from_tag(envelope: &Envelope) -> Result<String> {
    // The release's commit first: a production job may run on a newer checkout than the
    // release it promotes, and the image to promote is the one built from the release.
    let release = envelope
        .release
        .as_ref()
        .map(|r| r.commit.clone())
        .filter(|c| !c.is_empty());
    let git = envelope.git.as_ref().filter(|g| !g.commit.is_empty());
    let (commit, dirty) = match (release, git) {
        (Some(commit), _) => (commit, false),
        (None, Some(git)) => (git.commit.clone(), git.dirty),
        (None, None) => {
            let head = common::git::git(Path::new("."), &["rev-parse", "--verify", "HEAD"])
                .map_err(|_| {
                    Error::usage(
                        "--promote needs --from-tag: the envelope has no git.commit and the \
                         current directory is not a git repository with a commit",
                    )
                })?;
            (head, false)
        }
    };
    // As img-build names it: a build from a dirty tree is tagged git-<short sha>-dirty.
    let suffix = if dirty { "-dirty" } else { "" };
    Ok(format!("git-{}{suffix}", &commit[..commit.len().min(7)]))
}

async fn promote(
    args: &Args,
    destination: &Destination,
    user_credentials: Option<Credentials>,
    retry: Retry,
    envelope: &mut Envelope,
    ui: &Ui,
) -> Result<()> {
    let names: Vec<String> = match args.names.is_empty() {
        false => args.names.clone(),
        true => envelope.images.iter().map(|i| i.name.clone()).collect(),
    };
    if names.is_empty() {
        return Err(Error::usage(
            "no images to promote: the input envelope has no images[] and no --name was given",
        ));
    }
    if names.len() > 1 && args.repository.is_some() {
        return Err(Error::usage(format!(
            "--repository names one repository, but there are {} images to promote: use \
             --registry, or one --name",
            names.len()
        )));
    }
    if args.repository.is_none() {
        for name in &names {
            image_reference::check_path(name)
                .map_err(|why| Error::usage(format!("--name {name}: {why}")))?;
        }
    }
    let from = match &args.from_tag {
        Some(tag) => tag.clone(),
        None => default_from_tag(envelope)?,
    };
    let to_tags: Vec<String> = match args.to_tags.is_empty() {
        false => args.to_tags.clone(),
        true => envelope
            .release
            .as_ref()
            .map(|r| r.tag.clone())
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect(),
    };
    if to_tags.is_empty() {
        return Err(Error::usage(
            "--promote needs --to-tag: the envelope has no release.tag (pipe release-tag in, or \
             pass --to-tag)",
        ));
    }
    for tag in to_tags.iter().chain([&from]) {
        image_reference::check_tag(tag).map_err(Error::usage)?;
    }
    if to_tags.contains(&from) {
        return Err(Error::usage(format!(
            "--from-tag and --to-tag are both {from}: nothing to promote"
        )));
    }

    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let target = connect(
        destination,
        &name_refs,
        user_credentials,
        retry,
        args.jobs,
        ui,
    )
    .await?;
    let repositories = &target.repositories;
    let immutable = ready_repositories(&target, args, false, ui).await?;

    // Phase 1: read each source manifest and each destination tag; decide everything.
    let started = Instant::now();
    let observed: Vec<Result<Promotion>> =
        futures_util::stream::iter(names.iter().zip(repositories))
            .map(|(name, repository)| {
                let registry = &target.registry;
                let immutable = immutable.get(repository).copied().unwrap_or(false);
                let (from, to_tags) = (&from, &to_tags);
                async move {
                    let manifest = registry
                        .get_manifest(&repository.path, from)
                        .await?
                        .ok_or_else(|| {
                            Error::failed(format!(
                                "{} does not exist: nothing to promote for {name}",
                                repository.with_tag(from)
                            ))
                        })?;
                    let mut actions = Vec::new();
                    for to in to_tags {
                        let remote = registry.remote_tag(&repository.path, to, false).await?;
                        actions.push((
                            to.clone(),
                            plan::decide_promote(&manifest.digest, &remote, immutable),
                        ));
                    }
                    Ok(Promotion {
                        name: name.clone(),
                        repository: repository.clone(),
                        manifest,
                        actions,
                    })
                }
            })
            .buffered(args.jobs as usize)
            .collect()
            .await;
    let plans: Vec<_> = observed.into_iter().collect::<Result<_>>()?;
    let from_ref = &from;
    let conflicts: Vec<String> = plans
        .iter()
        .flat_map(
            |Promotion {
                 repository,
                 manifest,
                 actions,
                 ..
             }| {
                actions
                    .iter()
                    .filter_map(move |(tag, action)| match action {
                        PromoteAction::Conflict { registry_digest } => Some(format!(
                            "{} is immutable and points at {registry_digest}, not at {} ({})",
                            repository.with_tag(tag),
                            manifest.digest,
                            repository.with_tag(from_ref)
                        )),
                        _ => None,
                    })
            },
        )
        .collect();
    if !conflicts.is_empty() {
        return Err(Error::failed(conflicts.join("; ")));
    }

    // Phase 2: write the manifests.
    let mut done = Vec::new();
    for Promotion {
        name,
        repository,
        manifest,
        actions,
    } in plans
    {
        let source = Source {
            index: envelope.images.iter().position(|i| i.name == name),
            name: name.clone(),
            local: String::new(),
            id: None,
            tags: Vec::new(),
        };
        let mut pushed = Vec::new();
        let mut failure = None;
        for (tag, action) in actions {
            let target_ref = repository.with_tag(&tag);
            match action {
                PromoteAction::Skip => {
                    ui.line(&format!(
                        "{name}: {target_ref} is already at {} (skipped)",
                        short_digest(&manifest.digest)
                    ));
                    pushed.push(entry(
                        &repository,
                        &tag,
                        &manifest.digest,
                        true,
                        args.dry_run,
                    ));
                }
                PromoteAction::Put if args.dry_run => {
                    ui.line(&format!(
                        "{name}: would promote {} to {target_ref} (dry run)",
                        repository.with_tag(&from)
                    ));
                    pushed.push(entry(&repository, &tag, &manifest.digest, false, true));
                }
                PromoteAction::Put => {
                    match target
                        .registry
                        .put_manifest(&repository.path, &tag, &manifest)
                        .await
                    {
                        Ok(digest) => {
                            ui.line(&format!(
                                "{name}: promoted {} to {target_ref} at {}",
                                repository.with_tag(&from),
                                short_digest(&digest)
                            ));
                            pushed.push(entry(&repository, &tag, &digest, false, false));
                        }
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
                PromoteAction::Conflict { .. } => unreachable!("conflicts stop the run"),
            }
        }
        let result = JobResult { source, pushed };
        record_promotion(envelope, &result);
        if let Some(err) = failure {
            return Err(err);
        }
        done.push(result);
    }
    report(&done, started, args.dry_run, "promoted", ui);
    Ok(())
}

/// One repository to promote: the source manifest and what to do with each destination tag.
struct Promotion {
    name: String,
    repository: Repository,
    manifest: Manifest,
    actions: Vec<(String, PromoteAction)>,
}

/// As [`record`], creating a bare image entry for a `--name` the envelope lacks.
fn record_promotion(envelope: &mut Envelope, result: &JobResult) {
    if result.source.index.is_none()
        && !envelope.images.iter().any(|i| i.name == result.source.name)
    {
        envelope.images.push(Image {
            name: result.source.name.clone(),
            ..Image::default()
        });
    }
    let source = Source {
        index: envelope
            .images
            .iter()
            .position(|i| i.name == result.source.name),
        ..result.source.clone()
    };
    record(
        envelope,
        &JobResult {
            source,
            pushed: result.pushed.clone(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> std::result::Result<CheckedArgs, clap::Error> {
        CheckedArgs::try_parse_from(std::iter::once("img-push").chain(args.iter().copied()))
    }

    #[test]
    fn password_stdin_needs_input_and_username() {
        let err = parse(&[
            "--registry",
            "r.example.com",
            "--username",
            "u",
            "--password-stdin",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("error: --password-stdin reads the password from stdin"),
            "{err}"
        );
        let err = parse(&[
            "--registry",
            "r.example.com",
            "--password-stdin",
            "--input",
            "x",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs --username"), "{err}");
        let err = parse(&["--registry", "r.example.com", "--username", "u"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs --password-stdin"), "{err}");
        assert!(
            parse(&[
                "--registry",
                "r",
                "--username",
                "u",
                "--password-stdin",
                "--input",
                "e.json"
            ])
            .is_ok()
        );
    }

    #[test]
    fn flags_that_need_or_exclude_others() {
        let err = |flags: &[&str]| parse(flags).unwrap_err().to_string();
        assert!(err(&["--ecr", "--promote", "--image", "a:1"]).contains("--promote copies"));
        assert!(err(&["--ecr", "--to-tag", "v1"]).contains("need --promote"));
        assert!(err(&["--ecr", "--scan-on-push"]).contains("needs --create-repository"));
        assert!(parse(&["--ecr", "--promote", "--to-tag", "v1", "--name", "a"]).is_ok());
    }

    #[test]
    fn one_destination_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--ecr", "--registry", "r.example.com"]).is_err());
        assert!(parse(&["--ecr"]).is_ok());
    }

    fn envelope(images: serde_json::Value) -> Envelope {
        serde_json::from_value(serde_json::json!({"images": images})).unwrap()
    }

    #[test]
    fn sources_come_from_the_envelope_or_image_flags() {
        let env = envelope(serde_json::json!([
            {"name": "api", "id": "sha256:1", "tags": ["api:git-1", "localhost:5000/x/api:main"]},
            {"name": "auth", "tags": ["auth:git-1"]}
        ]));
        let args = parse(&["--registry", "r.example.com", "--tag", "latest"])
            .unwrap()
            .0;
        let found = sources(&args, &env).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].tags, ["git-1", "main", "latest"]);
        assert_eq!(found[0].local, "sha256:1");
        assert_eq!(found[1].local, "auth:git-1");
        // Neither is known by a full image id: both are looked up in the Engine first.
        assert_eq!((&found[0].id, &found[1].id), (&None, &None));
        let built = envelope(serde_json::json!([
            {"name": "api", "id": format!("sha256:{}", "b".repeat(64)), "tags": ["api:git-1"]}
        ]));
        let known = sources(&args, &built).unwrap();
        assert_eq!(known[0].id.as_deref(), Some(known[0].local.as_str()));

        let args = parse(&["--registry", "r.example.com", "--name", "auth"])
            .unwrap()
            .0;
        assert_eq!(sources(&args, &env).unwrap().len(), 1);

        let id = format!("sha256:{}", "a".repeat(64));
        let args = parse(&[
            "--repository",
            "r.example.com/x/a",
            "--image",
            &id,
            "-t",
            "1",
        ])
        .unwrap()
        .0;
        let by_id = sources(&args, &env).unwrap();
        assert_eq!(
            (by_id[0].name.as_str(), by_id[0].tags.as_slice()),
            ("a", &["1".to_owned()][..])
        );
        assert_eq!(by_id[0].id.as_deref(), Some(id.as_str()));
        let args = parse(&["--registry", "r.example.com", "--image", &id])
            .unwrap()
            .0;
        assert!(
            sources(&args, &env)
                .unwrap_err()
                .to_string()
                .contains("an image id has no name")
        );

        let args = parse(&["--repository", "r.example.com/a", "--image", "team/web:1"])
            .unwrap()
            .0;
        let only = sources(&args, &env).unwrap();
        assert_eq!(
            (only[0].name.as_str(), only[0].tags.as_slice()),
            ("web", &["1".to_owned()][..])
        );
    }

    #[test]
    fn bad_sources_are_usage_errors() {
        let env = envelope(serde_json::json!([
            {"name": "api", "tags": ["api:1"]}, {"name": "auth", "tags": ["auth:1"]}
        ]));
        let cases: &[(&[&str], &str)] = &[
            (&["--registry", "r.example.com"], "no images to push"),
            (
                &["--repository", "r.example.com/a"],
                "--repository names one repository",
            ),
            (
                &["--registry", "r.example.com", "--image", "Bad:ref"],
                "not an image reference",
            ),
            (
                &["--registry", "r.example.com", "--name", "web"],
                "no image of that name",
            ),
        ];
        for (i, (flags, needle)) in cases.iter().enumerate() {
            let args = parse(flags).unwrap().0;
            let input = if i == 0 {
                Envelope::default()
            } else {
                env.clone()
            };
            let err = sources(&args, &input).unwrap_err();
            assert_eq!(err.exit().code(), 2, "{flags:?}");
            assert!(err.to_string().contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn two_images_may_not_claim_one_tag() {
        let env = envelope(serde_json::json!([
            {"name": "api", "tags": ["api:1"]}, {"name": "api2", "tags": ["api2:1"]}
        ]));
        let args = parse(&["--ecr"]).unwrap().0;
        let found = sources(&args, &env).unwrap();
        assert!(check_tag_claims(&found, &Destination::Ecr).is_ok());
        let args = parse(&[
            "--registry",
            "r.example.com",
            "--image",
            "a/web:1",
            "--image",
            "b/web:1",
        ])
        .unwrap()
        .0;
        let found = sources(&args, &env).unwrap();
        let err = check_tag_claims(&found, &destination(&args).unwrap()).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(
            err.to_string()
                .contains("r.example.com/web:1 would receive two images"),
            "{err}"
        );
    }

    #[test]
    fn entries_replace_earlier_ones_for_the_same_tag() {
        let mut env = envelope(serde_json::json!([{"name": "api", "tags": ["api:1"]}]));
        let repo = Repository {
            host: "r.example.com".into(),
            path: "api".into(),
        };
        let source = Source {
            index: Some(0),
            name: "api".into(),
            local: "api:1".into(),
            id: None,
            tags: vec!["1".into()],
        };
        for digest in ["sha256:a", "sha256:b"] {
            record(
                &mut env,
                &JobResult {
                    source: source.clone(),
                    pushed: vec![entry(&repo, "1", digest, false, false)],
                },
            );
        }
        assert_eq!(env.images[0].pushed.len(), 1);
        assert_eq!(
            env.images[0].pushed[0].reference,
            "r.example.com/api@sha256:b"
        );
    }

    #[test]
    fn the_default_from_tag_is_the_short_commit() {
        let env: Envelope = serde_json::from_value(serde_json::json!({
            "git": {"commit": "3f2a1c9d00000000000000000000000000000000"}
        }))
        .unwrap();
        assert_eq!(default_from_tag(&env).unwrap(), "git-3f2a1c9");
        let dirty: Envelope = serde_json::from_value(serde_json::json!({
            "git": {"commit": "3f2a1c9d00000000000000000000000000000000", "dirty": true}
        }))
        .unwrap();
        assert_eq!(default_from_tag(&dirty).unwrap(), "git-3f2a1c9-dirty");
        let released: Envelope = serde_json::from_value(serde_json::json!({
            "git": {"commit": "3f2a1c9d00000000000000000000000000000000", "dirty": true},
            "release": {"version": "1.0.0", "tag": "v1.0.0", "commit": "abcdef0123456789"}
        }))
        .unwrap();
        assert_eq!(default_from_tag(&released).unwrap(), "git-abcdef0");
    }
}
