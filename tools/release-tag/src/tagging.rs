//! The whole job (doing): read the history, decide, then (unless `--dry-run`) tag, push and
//! write the changelog; the envelope gets the release before anything can fail.

use crate::changelog;
use crate::history::{History, Tags};
use crate::job::Job;
use crate::plan::{self, Decision, VersionTag};
use crate::record::{changes, release_entry};
use crate::repo::Repo;
use common::envelope::{Bump, Release};
use common::short::short_commit;
use common::{Envelope, Error, Result, Ui};
use std::path::Path;

/// The whole job: read, decide, then (unless `--dry-run`) tag, push and write.
pub(crate) fn release(job: &Job, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let mut request = job.request.clone();
    let repo = Repo::open(&job.repo)?;
    check_job_against_repo(job, &repo)?;
    let info = repo.describe()?;
    if envelope.git.is_none() {
        envelope.git = Some(info.clone());
    }
    let head = info.commit.as_str();
    let prefix = job.tag_prefix.as_str();

    let group = ui.group("Reading the release history");
    let tags = Tags::read(&repo, prefix, head)?;
    let current = match job.current {
        true => Some(current_release(&tags, prefix, head, &mut request)?),
        false => None,
    };
    let pre_mode =
        request.pre.is_some() || request.version.as_ref().is_some_and(|v| !v.pre.is_empty());
    let history = History::read(job, &repo, &tags, pre_mode)?;
    let decision = plan::decide(&request, &history.facts(&tags));
    tracing::debug!(
        "previous release {}, {} commit(s) since; decision {decision:?}",
        history.previous_tag().as_deref().unwrap_or("(none)"),
        history.since_previous().len()
    );
    drop(group);

    // A release HEAD already carries (`--current`, or a rerun) is reported, not made.
    let carried = current.or_else(|| carried_release(&tags, pre_mode, &decision));
    if let Some(carried) = carried {
        let bump = match &decision {
            Decision::Release { version, bump } if *version == carried.version => bump.clone(),
            _ => Bump::Explicit,
        };
        tracing::info!(
            "HEAD is already released as {}: nothing to tag",
            carried.name
        );
        let notes = notes(job, ui, &history);
        let release = release_entry(&carried, history, bump, job);
        return publish(job, &repo, envelope, ui, release, notes.as_deref());
    }
    match decision {
        Decision::Nothing => nothing_to_release(job, envelope, ui, history, head),
        Decision::Release { version, bump } => {
            let tag = VersionTag {
                name: format!("{prefix}{version}"),
                version,
                commit: head.to_owned(),
            };
            check_new_tag(job, &tags, &history, &tag, info.dirty)?;
            let notes = notes(job, ui, &history);
            let release = release_entry(&tag, history, bump, job);
            create(job, &repo, &release, notes.as_deref())?;
            publish(job, &repo, envelope, ui, release, notes.as_deref())
        }
    }
}

/// The release's grouped changes ([`changelog::sections`]), built once for the tag's message,
/// the step summary and the changelog file; `None` under `--dry-run` with no step summary,
/// where nothing shows them (on a long history, building them was a tenth of the run).
fn notes(job: &Job, ui: &Ui, history: &History) -> Option<String> {
    let shown = !job.dry_run || ui.writes_summary();
    shown.then(|| changelog::sections(history.since_previous()))
}

/// Bad input that only the repository can reveal, refused before anything is read or made
/// (exit 2): a tag prefix git would refuse, an unknown `--remote`, a `--path` that is not
/// there, a `--changelog` in a directory that does not exist. Found later, the tag would
/// already exist when the push or the changelog failed.
fn check_job_against_repo(job: &Job, repo: &Repo) -> Result<()> {
    let sample = format!("{}1.0.0", job.tag_prefix);
    if !repo.is_valid_tag_name(&sample) {
        return Err(Error::usage(format!(
            "--tag-prefix {:?}: {sample:?} is not a valid git tag name (see git check-ref-format)",
            job.tag_prefix
        )));
    }
    if job.push && !looks_like_url_or_path(&job.remote) && !repo.has_remote(&job.remote) {
        return Err(Error::usage(format!(
            "--remote {:?}: no such remote in {} (`git remote -v` lists them)",
            job.remote,
            job.repo.display()
        )));
    }
    if let Some(path) = &job.path
        && !job.repo.join(path).exists()
    {
        return Err(Error::usage(format!(
            "--path {}: no such file or directory in {}",
            path.display(),
            job.repo.display()
        )));
    }
    if let Some(file) = &job.changelog {
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|dir| !dir.is_dir()) || file.is_dir() {
            return Err(Error::usage(format!(
                "--changelog {}: not a file in an existing directory",
                file.display()
            )));
        }
    }
    Ok(())
}

/// A remote given as a URL or a path (which git pushes to without a configured name).
fn looks_like_url_or_path(remote: &str) -> bool {
    remote.contains(':') || remote.contains('/') || remote.starts_with('.')
}

/// `--current`: the release tag on HEAD; `request.pre` is set to its pre-release kind, so
/// that the same bump and changes are recomputed as the release run made them.
fn current_release(
    tags: &Tags,
    prefix: &str,
    head: &str,
    request: &mut plan::Request,
) -> Result<VersionTag> {
    let Some(current) = plan::latest(&tags.at_head, true) else {
        return Err(Error::failed(format!(
            "HEAD ({}) carries no release tag matching {prefix}X.Y.Z",
            short_commit(head)
        )));
    };
    request.pre = current
        .version
        .pre
        .as_str()
        .split('.')
        .next()
        .filter(|ident| !ident.is_empty())
        .map(str::to_owned);
    Ok(current.clone())
}

/// The release HEAD already carries (a rerun), unless the decision is a newer one.
fn carried_release(tags: &Tags, pre_mode: bool, decision: &Decision) -> Option<VersionTag> {
    let on_head: Vec<VersionTag> = tags
        .at_head
        .iter()
        .filter(|t| pre_mode || t.version.pre.is_empty())
        .cloned()
        .collect();
    let carried = plan::latest(&on_head, true)?;
    match decision {
        Decision::Release { version, .. } if *version > carried.version => None,
        _ => Some(carried.clone()),
    }
}

/// No release: the envelope says so (`bump: none`, empty version and tag, so nothing
/// downstream can mistake the previous release for a new one).
fn nothing_to_release(
    job: &Job,
    envelope: &mut Envelope,
    ui: &Ui,
    history: History,
    head: &str,
) -> Result<()> {
    let since = history
        .previous_tag()
        .unwrap_or_else(|| "the first commit".to_owned());
    let count = history.since_previous().len();
    envelope.release = Some(Release {
        previous_tag: history.previous_tag(),
        bump: Bump::None,
        commit: head.to_owned(),
        changes: changes(history.into_since_previous()),
        dry_run: job.dry_run,
        ..Release::default()
    });
    ui.set_output("version", "");
    ui.set_output("tag", "");
    ui.set_output("bump", "none");
    ui.summary(&format!(
        "**release-tag:** nothing to release since {since} ({count} commit(s), none releasable)\n"
    ));
    if job.require_change {
        return Err(Error::failed(format!(
            "nothing releasable since {since} (--require-change)"
        )));
    }
    tracing::info!("nothing releasable since {since} ({count} commit(s)); no tag");
    Ok(())
}

/// Refuses a new tag that would go backwards, exists elsewhere, or tag a dirty tree.
fn check_new_tag(
    job: &Job,
    tags: &Tags,
    history: &History,
    tag: &VersionTag,
    dirty: bool,
) -> Result<()> {
    if let Some(latest) = &history.latest
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
    if dirty && !job.allow_dirty {
        return Err(Error::usage(format!(
            "the working tree at {} has uncommitted changes: commit or stash them, or pass \
             --allow-dirty",
            job.repo.display()
        )));
    }
    Ok(())
}

/// Creates the annotated tag (nothing under `--dry-run`).
fn create(job: &Job, repo: &Repo, release: &Release, notes: Option<&str>) -> Result<()> {
    let since = release
        .previous_tag
        .as_deref()
        .unwrap_or("the first commit");
    if job.dry_run {
        tracing::info!(
            "would tag {} ({}, since {since}): dry run, nothing created",
            release.tag,
            release.bump
        );
        return Ok(());
    }
    // Outside a dry run the notes are always built (see `notes`).
    let message = changelog::tag_message(&release.tag, notes.unwrap_or_default());
    repo.create_tag(&release.tag, &message, job.sign)?;
    tracing::info!(
        "tagged {} on {} ({}, {} commit(s) since {since})",
        release.tag,
        short_commit(&release.commit),
        release.bump,
        release.changes.len()
    );
    Ok(())
}

/// Hands the release on: step outputs and summary, then (unless `--dry-run`) the push and
/// the changelog file. The envelope carries the release before anything can fail, so a
/// failed push still reports the tag that was made.
fn publish(
    job: &Job,
    repo: &Repo,
    envelope: &mut Envelope,
    ui: &Ui,
    release: Release,
    notes: Option<&str>,
) -> Result<()> {
    let section = match notes {
        Some(notes) => Some(changelog::section(&release.tag, &repo.head_date()?, notes)),
        None => None,
    };
    ui.set_output("version", &release.version);
    ui.set_output("tag", &release.tag);
    ui.set_output("bump", release.bump.as_str());
    if let Some(section) = &section {
        ui.summary(section);
    }
    let tag = release.tag.clone();
    envelope.release = Some(release);
    if job.dry_run {
        if job.push {
            tracing::info!("would push {tag} to {}", job.remote);
        }
        if let Some(file) = &job.changelog {
            tracing::info!("would prepend the {tag} section to {}", file.display());
        }
        return Ok(());
    }
    if job.push {
        repo.push_tag(&job.remote, &tag)?;
        if let Some(release) = &mut envelope.release {
            release.pushed = true;
        }
        tracing::info!("pushed {tag} to {}", job.remote);
    }
    if let (Some(file), Some(section)) = (&job.changelog, &section) {
        write_changelog(file, &tag, section)?;
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
