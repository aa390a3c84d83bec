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
use common::envelope::{Bump, Change, Release};
use common::short::short_commit;
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

/// The release tags of one prefix, split by where they sit relative to HEAD.
struct Tags {
    /// Every release tag, reachable or not (a name computed must not exist anywhere).
    all: Vec<VersionTag>,
    /// Those on HEAD itself: left out of the computation, so a rerun recomputes the same
    /// release, then compared with its result.
    at_head: Vec<VersionTag>,
    /// Those reachable from HEAD, HEAD's own excluded: where the previous release is.
    reachable: Vec<VersionTag>,
    /// The versions of all tags but HEAD's: pre-release numbers must not collide.
    existing: Vec<semver::Version>,
}

impl Tags {
    fn read(dir: &Path, prefix: &str, head: &str) -> Result<Tags> {
        let (all, reachable_names) = repo::release_tags(dir, prefix)?;
        let (at_head, others): (Vec<VersionTag>, Vec<VersionTag>) =
            all.iter().cloned().partition(|t| t.commit == head);
        let existing = others.iter().map(|t| t.version.clone()).collect();
        let reachable = others
            .into_iter()
            .filter(|t| reachable_names.contains(&t.name))
            .collect();
        Ok(Tags {
            all,
            at_head,
            reachable,
            existing,
        })
    }
}

/// The previous releases and the commits since them.
struct History {
    /// The latest stable release reachable from HEAD.
    stable: Option<VersionTag>,
    /// A pre-release newer than `stable`: the candidate in flight.
    pending: Option<VersionTag>,
    /// The release the changes are counted from: `stable`, or the latest tag of any kind
    /// when making a pre-release.
    previous: Option<VersionTag>,
    /// The commits since `stable` (they decide the bump).
    since_stable: Vec<Commit>,
    /// The commits since `previous` (they are the release's changes).
    since_previous: Vec<Commit>,
}

impl History {
    fn read(args: &Args, tags: &Tags, pre_mode: bool) -> Result<History> {
        let dir = args.repo.as_path();
        let stable = plan::latest(&tags.reachable, false).cloned();
        // When making a stable release, HEAD's own pre-release tags count as the candidate
        // too (graduating `v2.0.0-rc.1` on the commit it tags gives `v2.0.0`).
        let candidates: Vec<VersionTag> = tags
            .reachable
            .iter()
            .chain(tags.at_head.iter().filter(|_| !pre_mode))
            .filter(|t| !t.version.pre.is_empty())
            .cloned()
            .collect();
        let pending = plan::latest(&candidates, true)
            .filter(|t| stable.as_ref().is_none_or(|s| t.version > s.version))
            .cloned();
        let previous = match pre_mode {
            true => plan::latest(&tags.reachable, true).cloned(),
            false => stable.clone(),
        };
        // A shallow clone (actions/checkout's default) may lack the release tags and the
        // commits since them: with no previous release in sight, any answer is a guess.
        if stable.is_none() && repo::is_shallow(dir)? {
            return Err(Error::usage(format!(
                "the repository is a shallow clone and no {}X.Y.Z tag is reachable: fetch \
                 the full history and tags (actions/checkout with fetch-depth: 0, or \
                 git fetch --unshallow --tags)",
                args.tag_prefix
            )));
        }
        let path = args.path.as_deref();
        let name = |tag: &Option<VersionTag>| tag.as_ref().map(|t| t.name.clone());
        let since_stable = repo::commits_since(dir, name(&stable).as_deref(), path)?;
        let since_previous = match name(&previous) == name(&stable) {
            true => since_stable.clone(),
            false => repo::commits_since(dir, name(&previous).as_deref(), path)?,
        };
        Ok(History {
            stable,
            pending,
            previous,
            since_stable,
            since_previous,
        })
    }

    fn facts<'a>(&'a self, tags: &'a Tags) -> Facts<'a> {
        Facts {
            stable: self.stable.as_ref().map(|t| &t.version),
            pending: self.pending.as_ref().map(|t| &t.version),
            since_stable: plan::level_of(&self.since_stable),
            since_previous: plan::level_of(&self.since_previous),
            existing: &tags.existing,
        }
    }

    fn previous_tag(&self) -> Option<String> {
        self.previous.as_ref().map(|t| t.name.clone())
    }
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
    let head = info.commit.as_str();
    let prefix = args.tag_prefix.as_str();

    let group = ui.group("Reading the release history");
    let tags = Tags::read(dir, prefix, head)?;
    let current = match args.current {
        true => {
            let Some(current) = plan::latest(&tags.at_head, true) else {
                return Err(Error::failed(format!(
                    "HEAD ({}) carries no release tag matching {prefix}X.Y.Z",
                    short_commit(head)
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
    let history = History::read(args, &tags, pre_mode)?;
    let decision = plan::decide(&request, &history.facts(&tags));
    tracing::debug!(
        "previous release {}, {} commit(s) since; decision {decision:?}",
        history.previous_tag().as_deref().unwrap_or("(none)"),
        history.since_previous.len()
    );
    drop(group);

    // A release HEAD already carries (`--current`, or a rerun) is reported, not made.
    let carried = current.or_else(|| {
        let on_head: Vec<VersionTag> = tags
            .at_head
            .iter()
            .filter(|t| pre_mode || t.version.pre.is_empty())
            .cloned()
            .collect();
        let carried = plan::latest(&on_head, true)?;
        match &decision {
            Decision::Release { version, .. } if *version > carried.version => None,
            _ => Some(carried.clone()),
        }
    });
    if let Some(carried) = carried {
        let bump = match &decision {
            Decision::Release { version, bump } if *version == carried.version => bump.clone(),
            _ => Bump::Explicit,
        };
        tracing::info!(
            "HEAD is already released as {}: nothing to tag",
            carried.name
        );
        let release = release_entry(&carried, &history, bump, args);
        return publish(args, envelope, ui, release, &history);
    }
    match decision {
        Decision::Nothing => nothing_to_release(args, envelope, ui, &history, head),
        Decision::Release { version, bump } => {
            let tag = VersionTag {
                name: format!("{prefix}{version}"),
                version,
                commit: head.to_owned(),
            };
            check_new_tag(args, &tags, &tag, info.dirty)?;
            let release = release_entry(&tag, &history, bump, args);
            create(args, &release, &history)?;
            publish(args, envelope, ui, release, &history)
        }
    }
}

/// No release: the envelope says so (`bump: none`, empty version and tag, so nothing
/// downstream can mistake the previous release for a new one).
fn nothing_to_release(
    args: &Args,
    envelope: &mut Envelope,
    ui: &Ui,
    history: &History,
    head: &str,
) -> Result<()> {
    envelope.release = Some(Release {
        previous_tag: history.previous_tag(),
        bump: Bump::None,
        commit: head.to_owned(),
        changes: changes(&history.since_previous),
        dry_run: args.dry_run,
        ..Release::default()
    });
    ui.set_output("version", "");
    ui.set_output("tag", "");
    ui.set_output("bump", "none");
    let since = history
        .previous_tag()
        .unwrap_or_else(|| "the first commit".to_owned());
    let count = history.since_previous.len();
    ui.summary(&format!(
        "**release-tag:** nothing to release since {since} ({count} commit(s), none releasable)\n"
    ));
    if args.require_change {
        return Err(Error::failed(format!(
            "nothing releasable since {since} (--require-change)"
        )));
    }
    tracing::info!("nothing releasable since {since} ({count} commit(s)); no tag");
    Ok(())
}

/// Refuses a new tag that would go backwards, exists elsewhere, or tag a dirty tree.
fn check_new_tag(args: &Args, tags: &Tags, tag: &VersionTag, dirty: bool) -> Result<()> {
    if let Some(latest) = plan::latest(&tags.reachable, true)
        && tag.version <= latest.version
    {
        return Err(Error::usage(format!(
            "{} would not be newer than {}, already released",
            tag.name, latest.name
        )));
    }
    if let Some(existing) = tags.all.iter().find(|t| t.name == tag.name) {
        return Err(Error::failed(format!(
            "tag {} already exists on commit {}, not on HEAD ({})",
            tag.name,
            short_commit(&existing.commit),
            short_commit(&tag.commit)
        )));
    }
    if dirty && !args.allow_dirty {
        return Err(Error::usage(format!(
            "the working tree at {} has uncommitted changes: commit or stash them, or pass \
             --allow-dirty",
            args.repo.display()
        )));
    }
    Ok(())
}

/// Creates the annotated tag (nothing under `--dry-run`).
fn create(args: &Args, release: &Release, history: &History) -> Result<()> {
    let since = history
        .previous_tag()
        .unwrap_or_else(|| "the first commit".to_owned());
    if args.dry_run {
        tracing::info!(
            "would tag {} ({}, since {since}): dry run, nothing created",
            release.tag,
            release.bump
        );
        return Ok(());
    }
    let message = changelog::tag_message(&release.tag, &history.since_previous);
    repo::create_tag(&args.repo, &release.tag, &message, args.sign)?;
    tracing::info!(
        "tagged {} on {} ({}, {} commit(s) since {since})",
        release.tag,
        short_commit(&release.commit),
        release.bump,
        history.since_previous.len()
    );
    Ok(())
}

/// Hands the release on: step outputs and summary, then (unless `--dry-run`) the push and
/// the changelog file. The envelope carries the release before anything can fail, so a
/// failed push still reports the tag that was made.
fn publish(
    args: &Args,
    envelope: &mut Envelope,
    ui: &Ui,
    mut release: Release,
    history: &History,
) -> Result<()> {
    let date = repo::head_date(&args.repo)?;
    let section = changelog::section(&release.tag, &date, &history.since_previous);
    envelope.release = Some(release.clone());
    ui.set_output("version", &release.version);
    ui.set_output("tag", &release.tag);
    ui.set_output("bump", release.bump.as_str());
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
        repo::push_tag(&args.repo, &args.remote, &release.tag)?;
        release.pushed = true;
        envelope.release = Some(release.clone());
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
fn release_entry(tag: &VersionTag, history: &History, bump: Bump, args: &Args) -> Release {
    Release {
        version: tag.version.to_string(),
        tag: tag.name.clone(),
        previous_tag: history.previous_tag(),
        bump,
        commit: tag.commit.clone(),
        pushed: false,
        changes: changes(&history.since_previous),
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
