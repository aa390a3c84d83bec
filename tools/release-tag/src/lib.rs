//! `release-tag`: the next semantic version from Conventional Commits, tagged, pushed, and
//! handed on in the envelope's `release` section.
//!
//! # How it decides
//! 1. The previous release is the tag of highest SemVer precedence named `--tag-prefix` +
//!    version and reachable from HEAD; tags that are not semver after the prefix are ignored,
//!    and so are pre-release tags unless a pre-release is being made ([`plan::latest`]).
//! 2. The commits since then are read as Conventional Commits ([`conventional::parse`]):
//!    breaking → major (minor below 1.0.0 unless `--major-on-zero`), `feat` → minor,
//!    `fix`/`perf`/revert → patch, anything else bumps nothing. A revert and the commit it
//!    reverts cancel out when both are in the release.
//! 3. [`plan::decide`] turns that into a version; `--bump`, `--version` and `--pre` override.
//!
//! # What it does
//! Creates an annotated tag on HEAD whose message is the grouped changelog, pushes only that
//! tag with `--push`, and prepends the same section to `--changelog FILE`. Deciding
//! ([`conventional`], [`plan`], [`changelog`]) is pure; [`repo`] is the only module that runs
//! git, always through the `git` command line.
//!
//! # Modules
//! - `lib.rs`: the flags; [`job`]: the flags turned once into a [`job::Job`];
//! - [`conventional`], [`plan`], [`changelog`] (deciding, pure): messages read, the version
//!   decided, the changelog written;
//! - `history` and [`repo`] (doing): the tags and commits, through the git command line;
//!   `tagging`: the job itself (tag, push, changelog file);
//! - `record`: the envelope's `release` section.
//!
//! # Reruns
//! Tags on HEAD are left out of the computation, so a rerun computes the same release; when
//! HEAD already carries it, release-tag reports it and changes nothing.

pub mod changelog;
pub mod conventional;
mod history;
pub mod job;
pub mod plan;
mod record;
pub mod repo;
mod tagging;

use clap::Parser;
use common::{CommonArgs, Envelope, Result, Ui};
use conventional::Level;
use job::Job;
use std::path::PathBuf;

/// The tool, for [`common::main`].
pub struct ReleaseTag;

const LONG_ABOUT: &str = "\
Compute the next semantic version from the Conventional Commits since the last release tag, \
create an annotated tag on HEAD whose message is the grouped changelog, optionally push \
that tag, and write the release into the envelope on stdout.

The previous release is the highest-precedence tag named PREFIX + semver reachable from HEAD \
(non-semver tags are ignored, and pre-release tags too unless --pre is given). Breaking \
changes (`type!:` or a `BREAKING CHANGE:` footer) bump major (minor below 1.0.0), `feat` \
bumps minor, `fix` and `perf` bump patch; other commits are listed as `other` and bump \
nothing. With nothing releasable no tag is made and release.bump is \"none\".

A rerun on a commit that already carries the computed tag reports it and changes nothing; \
--current describes the release at HEAD without computing a new one.

Examples:
  # staging -> production: tag the release, push the tag, promote the images
  release-tag --push | img-push --promote

  # what would the next release be?
  release-tag --dry-run --pretty

  # release candidates, then the release itself
  release-tag --pre rc --push        # v1.4.0-rc.1, v1.4.0-rc.2, ...
  release-tag --push                 # v1.4.0

  # one service of a monorepo
  release-tag --tag-prefix api-v --path services/api --changelog services/api/CHANGELOG.md

  # in the production job, after a tag push
  release-tag --current | k8s-apply ...";

/// release-tag's flags. Every flag can also be set with `RELEASE_TAG_<FLAG>`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "release-tag",
    about = "Tag the next semantic version computed from Conventional Commits, and hand it on.",
    long_about = LONG_ABOUT
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The repository to release (any directory inside its working tree).
    #[arg(
        long,
        env = "RELEASE_TAG_REPO",
        value_name = "DIR",
        default_value = "."
    )]
    pub repo: PathBuf,

    /// Release tags are PREFIX followed by the version (`api-v` for `api-v1.2.0`).
    #[arg(
        long,
        env = "RELEASE_TAG_TAG_PREFIX",
        value_name = "PREFIX",
        default_value = "v"
    )]
    pub tag_prefix: String,

    /// Count only the commits that touch DIR (a monorepo service; relative to --repo).
    #[arg(long, env = "RELEASE_TAG_PATH", value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// Bump by this much, whatever the commits say.
    #[arg(long, env = "RELEASE_TAG_BUMP", value_enum, conflicts_with = "version")]
    pub bump: Option<BumpLevel>,

    /// Release exactly this version (X.Y.Z[-PRE], with or without the prefix).
    #[arg(long, env = "RELEASE_TAG_VERSION", value_name = "X.Y.Z")]
    pub version: Option<String>,

    /// The first version, when no release tag is reachable yet.
    #[arg(
        long,
        env = "RELEASE_TAG_INITIAL_VERSION",
        value_name = "X.Y.Z",
        default_value = "0.1.0"
    )]
    pub initial_version: String,

    /// Make a pre-release X.Y.Z-IDENT.N (`--pre rc`: -rc.1, then -rc.2, ...). Releasing
    /// without --pre afterwards graduates to X.Y.Z.
    #[arg(long, env = "RELEASE_TAG_PRE", value_name = "IDENT")]
    pub pre: Option<String>,

    /// Below 1.0.0, let a breaking change bump major (to 1.0.0) instead of minor.
    #[arg(long, env = "RELEASE_TAG_MAJOR_ON_ZERO", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub major_on_zero: bool,

    /// Sign the tag (`git tag --sign`, with your git signing configuration).
    #[arg(long, env = "RELEASE_TAG_SIGN", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub sign: bool,

    /// Push the tag (and nothing else) to --remote.
    #[arg(long, env = "RELEASE_TAG_PUSH", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub push: bool,

    /// The remote to push the tag to.
    #[arg(
        long,
        env = "RELEASE_TAG_REMOTE",
        value_name = "NAME",
        default_value = "origin"
    )]
    pub remote: String,

    /// Tag even when the working tree has uncommitted changes.
    #[arg(long, env = "RELEASE_TAG_ALLOW_DIRTY", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_dirty: bool,

    /// Fail (exit 1) when there is nothing to release.
    #[arg(long, env = "RELEASE_TAG_REQUIRE_CHANGE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_change: bool,

    /// Describe the release HEAD already carries (its highest release tag); create nothing.
    /// Fails when HEAD carries no release tag.
    #[arg(
        long,
        env = "RELEASE_TAG_CURRENT",
        conflicts_with_all = ["bump", "version", "pre", "push", "sign", "changelog", "require_change"], action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub current: bool,

    /// Prepend the release's Markdown section to FILE (created if missing).
    #[arg(long, env = "RELEASE_TAG_CHANGELOG", value_name = "FILE")]
    pub changelog: Option<PathBuf>,

    /// Compute and report the release; create, push and write nothing.
    #[arg(long, env = "RELEASE_TAG_DRY_RUN", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,
}

/// `--bump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BumpLevel {
    Major,
    Minor,
    Patch,
}

impl From<BumpLevel> for Level {
    fn from(level: BumpLevel) -> Level {
        match level {
            BumpLevel::Major => Level::Major,
            BumpLevel::Minor => Level::Minor,
            BumpLevel::Patch => Level::Patch,
        }
    }
}

impl common::Tool for ReleaseTag {
    const NAME: &'static str = "release-tag";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        tagging::release(&Job::from_args(&args)?, envelope, ui)
    }
}
