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
//! Flags become a plan here and in [`config`]; deciding is pure, doing talks to one outside
//! system per module; [`record`] writes the envelope.
//! - [`config`]: the flags as a [`config::Config`] that knows nothing of clap;
//! - [`sources`]: which images to push, with which tags (pure);
//! - [`plan`]: skip / push / conflict decisions, push stream lines (pure);
//! - [`reference`](mod@reference): destinations, repositories, ECR hosts (pure; image references are
//!   [`common::reference`]);
//! - [`push`] and [`upload`]: the push job; [`promote`]: the promote job;
//! - [`target`]: connecting to the destination (host, login, ECR repositories);
//! - [`challenge`]: the registry's challenge; the credentials (flags, the Docker
//!   configuration and its helpers, ECR) are read by [`common::registry_auth`];
//! - [`registry`]: the registry HTTP API, and [`manifest`]s as it stores them; [`ecr`]: the
//!   ECR and STS calls; [`engine`]: the Docker Engine calls; [`error`]: what each of them
//!   can fail with, and the exit code;
//! - [`record`]: the envelope's `pushed[]` entries; [`report`]: Actions outputs, the step
//!   summary and the closing line; [`retry`]: the retry budget (the schedule is
//!   `common::retry`'s).

pub mod challenge;
pub mod config;
pub mod ecr;
pub mod engine;
pub mod error;
pub mod manifest;
pub mod plan;
pub mod promote;
pub mod push;
pub mod record;
pub mod reference;
pub mod registry;
pub mod report;
pub mod retry;
pub mod sources;
pub mod target;
pub mod transfer;
pub mod upload;

use common::envelope::Envelope;
use common::{CommonArgs, Result, Ui};
use config::{Config, Job};
use std::time::Duration;

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
    let config = Config::from_args(&args)?;
    let user_credentials = common::registry_auth::from_user(config.username.as_deref(), ui)?;
    match &config.job {
        Job::Push(request) => push::push(&config, request, user_credentials, envelope, ui).await,
        Job::Promote(request) => {
            promote::promote(&config, request, user_credentials, envelope, ui).await
        }
    }
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
}
