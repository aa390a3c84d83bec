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
//! # Reruns
//! Tags on HEAD are left out of the computation, so a rerun computes the same release; when
//! HEAD already carries it, release-tag reports it and changes nothing.

pub mod changelog;
pub mod conventional;
pub mod plan;
pub mod repo;

use clap::Parser;
use common::envelope::{Change, Release};
use common::{CommonArgs, Envelope, Error, Result, Ui};
use conventional::Level;
use plan::{Commit, Decision, Facts, Request, VersionTag};
use std::path::{Path, PathBuf};

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
    #[arg(long, env = "RELEASE_TAG_MAJOR_ON_ZERO")]
    pub major_on_zero: bool,

    /// Sign the tag (`git tag --sign`, with your git signing configuration).
    #[arg(long, env = "RELEASE_TAG_SIGN")]
    pub sign: bool,

    /// Push the tag (and nothing else) to --remote.
    #[arg(long, env = "RELEASE_TAG_PUSH")]
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
    #[arg(long, env = "RELEASE_TAG_ALLOW_DIRTY")]
    pub allow_dirty: bool,

    /// Fail (exit 1) when there is nothing to release.
    #[arg(long, env = "RELEASE_TAG_REQUIRE_CHANGE")]
    pub require_change: bool,

    /// Describe the release HEAD already carries (its highest release tag); create nothing.
    /// Fails when HEAD carries no release tag.
    #[arg(
        long,
        env = "RELEASE_TAG_CURRENT",
        conflicts_with_all = ["bump", "version", "pre", "push", "sign", "changelog", "require_change"]
    )]
    pub current: bool,

    /// Prepend the release's Markdown section to FILE (created if missing).
    #[arg(long, env = "RELEASE_TAG_CHANGELOG", value_name = "FILE")]
    pub changelog: Option<PathBuf>,

    /// Compute and report the release; create, push and write nothing.
    #[arg(long, env = "RELEASE_TAG_DRY_RUN")]
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
        release(&args, envelope, ui)
    }
}

/// Checks the flags that clap cannot, before touching the repository.
fn request(args: &Args) -> Result<Request> {
    let prefix = &args.tag_prefix;
    let version = args
        .version
        .as_deref()
        .map(|text| plan::parse_version(text, prefix))
        .transpose()
        .map_err(Error::usage)?;
    let initial = semver::Version::parse(&args.initial_version).map_err(|err| {
        Error::usage(format!(
            "--initial-version {:?} is not a semantic version X.Y.Z: {err}",
            args.initial_version
        ))
    })?;
    if let Some(pre) = &args.pre {
        plan::validate_pre(pre).map_err(Error::usage)?;
        if version.as_ref().is_some_and(|v| !v.pre.is_empty()) {
            return Err(Error::usage(
                "--pre cannot be combined with a --version that has a pre-release part",
            ));
        }
    }
    Ok(Request {
        bump: args.bump.map(Level::from),
        version,
        pre: args.pre.clone(),
        initial,
        major_on_zero: args.major_on_zero,
    })
}

/// The whole job: read, decide, then (unless `--dry-run`) tag, push and write.
fn release(args: &Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let mut request = request(args)?;
    let dir = args.repo.as_path();
    common::git::work_tree_root(dir)?;
    let info = common::git::describe(dir)?;
    if envelope.git.is_none() {
        envelope.git = Some(info.clone());
    }
    let head = info.commit.clone();
    let prefix = args.tag_prefix.as_str();

    let group = ui.group("Reading the release history");
    let (tags, reachable) = repo::release_tags(dir, prefix)?;
    let (at_head, others): (Vec<VersionTag>, Vec<VersionTag>) =
        tags.iter().cloned().partition(|t| t.commit == head);
    let reachable_others: Vec<VersionTag> = others
        .iter()
        .filter(|t| reachable.contains(&t.name))
        .cloned()
        .collect();

    let current = match args.current {
        true => {
            let Some(current) = plan::latest(&at_head, true) else {
                return Err(Error::failed(format!(
                    "HEAD ({}) carries no release tag matching {prefix}X.Y.Z",
                    short(&head)
                )));
            };
            // Recompute as the release run would have, to report the same bump and changes.
            request.pre = current
                .version
                .pre
                .as_str()
                .split('.')
                .next()
                .filter(|ident| !ident.is_empty())
                .map(str::to_owned);
            Some(current.clone())
        }
        false => None,
    };
    let pre_mode =
        request.pre.is_some() || request.version.as_ref().is_some_and(|v| !v.pre.is_empty());

    let stable = plan::latest(&reachable_others, false);
    // A candidate in flight: when making a stable release, HEAD's own pre-release tags
    // count too (graduating `v2.0.0-rc.1` on the commit it tags gives `v2.0.0`).
    let candidates: Vec<VersionTag> = reachable_others
        .iter()
        .chain(at_head.iter().filter(|_| !pre_mode))
        .filter(|t| !t.version.pre.is_empty())
        .cloned()
        .collect();
    let pending =
        plan::latest(&candidates, true).filter(|t| stable.is_none_or(|s| t.version > s.version));
    let previous = match pre_mode {
        true => plan::latest(&reachable_others, true),
        false => stable,
    };
    // A shallow clone (actions/checkout's default) may lack the release tags and the
    // commits since them: with no previous release in sight, any answer would be a guess.
    if stable.is_none() && repo::is_shallow(dir)? {
        return Err(Error::usage(format!(
            "the repository is a shallow clone and no {prefix}X.Y.Z tag is reachable: fetch \
             the full history and tags (actions/checkout with fetch-depth: 0, or \
             git fetch --unshallow --tags)"
        )));
    }
    let path = args.path.as_deref();
    let since_stable = repo::commits_since(dir, stable.map(|t| t.name.as_str()), path)?;
    let since_previous = match previous.map(|t| &t.name) == stable.map(|t| &t.name) {
        true => since_stable.clone(),
        false => repo::commits_since(dir, previous.map(|t| t.name.as_str()), path)?,
    };
    let existing: Vec<semver::Version> = others.iter().map(|t| t.version.clone()).collect();
    let facts = Facts {
        stable: stable.map(|t| &t.version),
        pending: pending.map(|t| &t.version),
        since_stable: plan::level_of(&since_stable),
        since_previous: plan::level_of(&since_previous),
        existing: &existing,
    };
    let decision = plan::decide(&request, &facts);
    tracing::debug!(
        "previous release {}, {} commit(s) since; decision {decision:?}",
        previous.map_or("(none)", |t| t.name.as_str()),
        since_previous.len()
    );
    drop(group);

    let previous_tag = previous.map(|t| t.name.clone());
    let date = repo::head_date(dir)?;

    // A release HEAD already carries: `--current`, or a rerun.
    let carried = current.or_else(|| {
        let candidates: Vec<VersionTag> = at_head
            .iter()
            .filter(|t| pre_mode || t.version.pre.is_empty())
            .cloned()
            .collect();
        let carried = plan::latest(&candidates, true)?;
        match &decision {
            Decision::Release { version, .. } if *version > carried.version => None,
            _ => Some(carried.clone()),
        }
    });
    if let Some(carried) = carried {
        let bump = match &decision {
            Decision::Release { version, bump } if *version == carried.version => *bump,
            _ => "explicit",
        };
        let mut release = release_entry(&carried, previous_tag, bump, &since_previous, args);
        tracing::info!(
            "HEAD is already released as {}: nothing to tag",
            carried.name
        );
        envelope.release = Some(release.clone());
        publish(args, dir, ui, &mut release, &date, &since_previous)?;
        envelope.release = Some(release);
        return Ok(());
    }

    let (version, bump) = match decision {
        Decision::Release { version, bump } => (version, bump),
        Decision::Nothing => {
            envelope.release = Some(Release {
                previous_tag: previous_tag.clone(),
                bump: Level::None.name().to_owned(),
                commit: head.clone(),
                changes: changes(&since_previous),
                dry_run: args.dry_run,
                ..Release::default()
            });
            ui.set_output("version", "");
            ui.set_output("tag", "");
            ui.set_output("bump", "none");
            let since = previous_tag.as_deref().unwrap_or("the first commit");
            ui.summary(&format!(
                "**release-tag:** nothing to release since {since} ({} commit(s), none releasable)\n",
                since_previous.len()
            ));
            if args.require_change {
                return Err(Error::failed(format!(
                    "nothing releasable since {since} (--require-change)"
                )));
            }
            tracing::info!(
                "nothing releasable since {since} ({} commit(s)); no tag",
                since_previous.len()
            );
            return Ok(());
        }
    };

    let name = format!("{prefix}{version}");
    if let Some(latest) = plan::latest(&reachable_others, true)
        && version <= latest.version
    {
        return Err(Error::usage(format!(
            "{name} would not be newer than {}, already released",
            latest.name
        )));
    }
    if let Some(existing) = tags.iter().find(|t| t.name == name) {
        return Err(Error::failed(format!(
            "tag {name} already exists on commit {}, not on HEAD ({})",
            short(&existing.commit),
            short(&head)
        )));
    }
    if info.dirty && !args.allow_dirty {
        return Err(Error::usage(format!(
            "the working tree at {} has uncommitted changes: commit or stash them, or pass --allow-dirty",
            dir.display()
        )));
    }

    let planned = VersionTag {
        name: name.clone(),
        version,
        commit: head.clone(),
    };
    let mut release = release_entry(&planned, previous_tag.clone(), bump, &since_previous, args);
    if args.dry_run {
        tracing::info!(
            "would tag {name} ({bump}, from {}): dry run, nothing created",
            previous_tag.as_deref().unwrap_or("no previous release")
        );
    } else {
        repo::create_tag(
            dir,
            &name,
            &changelog::tag_message(&name, &since_previous),
            args.sign,
        )?;
        tracing::info!(
            "tagged {name} on {} ({bump}, {} commit(s) since {})",
            short(&head),
            since_previous.len(),
            previous_tag.as_deref().unwrap_or("the first commit")
        );
    }
    // From here on the tag exists: a failure below still hands on what was done.
    envelope.release = Some(release.clone());
    publish(args, dir, ui, &mut release, &date, &since_previous)?;
    envelope.release = Some(release);
    Ok(())
}

/// Pushes the tag, writes the changelog, the step outputs and the summary.
fn publish(
    args: &Args,
    dir: &Path,
    ui: &Ui,
    release: &mut Release,
    date: &str,
    commits: &[Commit],
) -> Result<()> {
    let section = changelog::section(&release.tag, date, commits);
    ui.set_output("version", &release.version);
    ui.set_output("tag", &release.tag);
    ui.set_output("bump", &release.bump);
    ui.summary(&section);
    if args.dry_run {
        if args.push {
            tracing::info!("would push {} to {}", release.tag, args.remote);
        }
        if let Some(file) = &args.changelog {
            tracing::info!(
                "would prepend the {} section to {}",
                release.tag,
                file.display()
            );
        }
        return Ok(());
    }
    if args.push {
        repo::push_tag(dir, &args.remote, &release.tag)?;
        release.pushed = true;
        tracing::info!("pushed {} to {}", release.tag, args.remote);
    }
    if let Some(file) = &args.changelog {
        write_changelog(file, &release.tag, &section)?;
    }
    Ok(())
}

/// Prepends `section` to `file` unless it already has the release's section.
fn write_changelog(file: &Path, tag: &str, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(Error::failed(format!(
                "cannot read {}: {err}",
                file.display()
            )));
        }
    };
    match changelog::prepend(&existing, tag, section) {
        Some(text) => {
            std::fs::write(file, text)
                .map_err(|err| Error::failed(format!("cannot write {}: {err}", file.display())))?;
            tracing::info!("added the {tag} section to {}", file.display());
        }
        None => tracing::info!("{} already has a {tag} section", file.display()),
    }
    Ok(())
}

/// The envelope's `release` for `tag`.
fn release_entry(
    tag: &VersionTag,
    previous_tag: Option<String>,
    bump: &str,
    commits: &[Commit],
    args: &Args,
) -> Release {
    Release {
        version: tag.version.to_string(),
        tag: tag.name.clone(),
        previous_tag,
        bump: bump.to_owned(),
        commit: tag.commit.clone(),
        pushed: false,
        changes: changes(commits),
        dry_run: args.dry_run,
        extra: Default::default(),
    }
}

/// The envelope's `release.changes`: every commit, newest first.
fn changes(commits: &[Commit]) -> Vec<Change> {
    commits
        .iter()
        .map(|c| Change {
            kind: c.message.kind.clone(),
            scope: c.message.scope.clone(),
            subject: c.message.subject.clone(),
            breaking: c.message.breaking,
            commit: c.id.clone(),
            extra: Default::default(),
        })
        .collect()
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}
