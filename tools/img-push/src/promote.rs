//! The promote job: copy the manifest at one tag to other tags through the registry API
//! (`GET` + `PUT` of the exact bytes, so the digest is unchanged); no Docker Engine.

use crate::config::{Config, PromoteRequest};
use crate::error::RegistryError;
use crate::manifest::Manifest;
use crate::plan::{self, PromoteAction};
use crate::record::{JobResult, entry, record_promotion};
use crate::reference::Repository;
use crate::registry::Registry;
use crate::report::report;
use crate::sources::Source;
use crate::target::{Target, connect, ready_repositories};
use common::envelope::Envelope;
use common::reference::{check_path, check_tag};
use common::registry_auth::Credentials;
use common::short::short_digest;
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// What to promote, the flags' defaults filled in from the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tags {
    /// The repositories (image names) to promote in.
    names: Vec<String>,
    from: String,
    to: Vec<String>,
}

/// One repository to promote: the source manifest and what to do with each destination tag.
struct Promotion {
    name: String,
    repository: Repository,
    manifest: Manifest,
    actions: Vec<(String, PromoteAction)>,
}

/// Promotes `request`'s tags in each repository, recording each repository as it is done.
pub async fn promote(
    config: &Config,
    request: &PromoteRequest,
    user_credentials: Option<Credentials>,
    envelope: &mut Envelope,
    ui: &Ui,
) -> Result<()> {
    let tags = tags(config, request, envelope)?;
    let names: Vec<&str> = tags.names.iter().map(String::as_str).collect();
    let target = connect(config, &names, user_credentials, ui).await?;
    let immutable = ready_repositories(&target, config, ui).await?;

    // Phase 1: read each source manifest and each destination tag; decide everything.
    let started = Instant::now();
    let promotions = observe_all(&target, &tags, &immutable, config.jobs).await?;
    check_conflicts(&promotions, &tags.from)?;

    // Phase 2: write the manifests.
    let mut done = Vec::new();
    for promotion in promotions {
        let index = envelope
            .images
            .iter()
            .position(|i| i.name == promotion.name);
        let (result, failure) =
            apply(promotion, index, &tags.from, &target.registry, config, ui).await;
        record_promotion(envelope, &result);
        if let Some(err) = failure {
            return Err(err.into());
        }
        done.push(result);
    }
    report(&done, started, config.dry_run, "promoted", ui);
    Ok(())
}

/// The names and tags to promote, checked; defaults from the envelope (see
/// [`default_from_tag`]; `--to-tag` defaults to the release's tag).
fn tags(config: &Config, request: &PromoteRequest, envelope: &Envelope) -> Result<Tags> {
    let names: Vec<String> = match request.names.is_empty() {
        false => request.names.clone(),
        true => envelope.images.iter().map(|i| i.name.clone()).collect(),
    };
    if names.is_empty() {
        return Err(Error::usage(
            "no images to promote: the input envelope has no images[] and no --name was given",
        ));
    }
    if names.len() > 1 && config.one_repository() {
        return Err(Error::usage(format!(
            "--repository names one repository, but there are {} images to promote: use \
             --registry, or one --name",
            names.len()
        )));
    }
    if !config.one_repository() {
        for name in &names {
            check_path(name).map_err(|why| Error::usage(format!("--name {name}: {why}")))?;
        }
    }
    let from = match &request.from_tag {
        Some(tag) => tag.clone(),
        None => default_from_tag(envelope)?,
    };
    let to: Vec<String> = match request.to_tags.is_empty() {
        false => request.to_tags.clone(),
        true => envelope
            .release
            .as_ref()
            .map(|r| r.tag.clone())
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect(),
    };
    if to.is_empty() {
        return Err(Error::usage(
            "--promote needs --to-tag: the envelope has no release.tag (pipe release-tag in, or \
             pass --to-tag)",
        ));
    }
    for tag in to.iter().chain([&from]) {
        check_tag(tag).map_err(Error::usage)?;
    }
    if to.contains(&from) {
        return Err(Error::usage(format!(
            "--from-tag and --to-tag are both {from}: nothing to promote"
        )));
    }
    Ok(Tags { names, from, to })
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

/// Reads the source manifest and each destination tag of every repository (reads only),
/// `jobs` at a time, and decides each destination tag.
async fn observe_all(
    target: &Target,
    tags: &Tags,
    immutable: &BTreeMap<Repository, bool>,
    jobs: usize,
) -> Result<Vec<Promotion>> {
    futures_util::stream::iter(tags.names.iter().zip(&target.repositories))
        .map(|(name, repository)| {
            let immutable = immutable.get(repository).copied().unwrap_or(false);
            observe(&target.registry, name, repository, tags, immutable)
        })
        .buffered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn observe(
    registry: &Registry,
    name: &str,
    repository: &Repository,
    tags: &Tags,
    immutable: bool,
) -> Result<Promotion> {
    let manifest = registry
        .get_manifest(&repository.path, &tags.from)
        .await?
        .ok_or_else(|| RegistryError::NothingToPromote {
            reference: repository.with_tag(&tags.from),
            name: name.to_owned(),
        })?;
    let mut actions = Vec::new();
    for to in &tags.to {
        let remote = registry.remote_tag(&repository.path, to, false).await?;
        let action = plan::decide_promote(&manifest.digest, &remote, immutable);
        actions.push((to.clone(), action));
    }
    Ok(Promotion {
        name: name.to_owned(),
        repository: repository.clone(),
        manifest,
        actions,
    })
}

/// Stops the run, before anything is written, when an immutable tag points elsewhere.
fn check_conflicts(promotions: &[Promotion], from: &str) -> Result<()> {
    let conflicts: Vec<String> = promotions
        .iter()
        .flat_map(|promotion| {
            let Promotion {
                repository,
                manifest,
                actions,
                ..
            } = promotion;
            actions
                .iter()
                .filter_map(move |(tag, action)| match action {
                    PromoteAction::Conflict { registry_digest } => Some(format!(
                        "{} is immutable and points at {registry_digest}, not at {} ({})",
                        repository.with_tag(tag),
                        manifest.digest,
                        repository.with_tag(from)
                    )),
                    _ => None,
                })
        })
        .collect();
    match conflicts.is_empty() {
        true => Ok(()),
        false => Err(Error::failed(conflicts.join("; "))),
    }
}

/// Writes one repository's destination tags (says what it would do, with --dry-run); stops
/// at the first failure, returning what was done and the failure.
async fn apply(
    promotion: Promotion,
    index: Option<usize>,
    from: &str,
    registry: &Registry,
    config: &Config,
    ui: &Ui,
) -> (JobResult, Option<RegistryError>) {
    let Promotion {
        name,
        repository,
        manifest,
        actions,
    } = promotion;
    let mut pushed = Vec::new();
    let mut failure = None;
    let dry_run = config.dry_run;
    for (tag, action) in actions {
        let target_ref = repository.with_tag(&tag);
        match action {
            PromoteAction::Skip => {
                ui.line(&format!(
                    "{name}: {target_ref} is already at {} (skipped)",
                    short_digest(&manifest.digest)
                ));
                pushed.push(entry(&repository, &tag, &manifest.digest, true, dry_run));
            }
            PromoteAction::Put if dry_run => {
                ui.line(&format!(
                    "{name}: would promote {} to {target_ref} (dry run)",
                    repository.with_tag(from)
                ));
                pushed.push(entry(&repository, &tag, &manifest.digest, false, true));
            }
            PromoteAction::Put => match registry
                .put_manifest(&repository.path, &tag, &manifest)
                .await
            {
                Ok(digest) => {
                    ui.line(&format!(
                        "{name}: promoted {} to {target_ref} at {}",
                        repository.with_tag(from),
                        short_digest(&digest)
                    ));
                    pushed.push(entry(&repository, &tag, &digest, false, false));
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            },
            PromoteAction::Conflict { .. } => unreachable!("conflicts stop the run"),
        }
    }
    let source = Source {
        index,
        name,
        local: String::new(),
        id: None,
        tags: Vec::new(),
    };
    (JobResult { source, pushed }, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Job, from_flags};

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

    #[test]
    fn promotion_tags_default_from_the_release_and_are_checked() {
        let tags_of = |flags: &[&str], envelope: serde_json::Value| {
            let config = from_flags(flags);
            let Job::Promote(request) = &config.job else {
                panic!("not a promotion")
            };
            tags(&config, request, &serde_json::from_value(envelope).unwrap())
        };
        let released = serde_json::json!({
            "images": [{"name": "api"}],
            "release": {"version": "1.0.0", "tag": "v1.0.0", "commit": "abcdef0123456789"}
        });
        assert_eq!(
            tags_of(&["--ecr", "--promote"], released.clone()).unwrap(),
            Tags {
                names: vec!["api".into()],
                from: "git-abcdef0".into(),
                to: vec!["v1.0.0".into()]
            }
        );
        let usage = |flags: &[&str], envelope| {
            let err = tags_of(flags, envelope).unwrap_err();
            assert_eq!(err.exit().code(), 2, "{flags:?}");
            err.to_string()
        };
        assert!(usage(&["--ecr", "--promote"], serde_json::json!({})).contains("no images"));
        let same = ["--ecr", "--promote", "--from-tag", "v1.0.0"];
        assert!(usage(&same, released).contains("both v1.0.0"));
        let no_release = serde_json::json!({"images": [{"name": "api"}], "git": {"commit": "abc"}});
        assert!(usage(&["--ecr", "--promote"], no_release).contains("needs --to-tag"));
    }

    #[test]
    fn an_immutable_destination_elsewhere_stops_the_promotion() {
        let promotion = |action| Promotion {
            name: "api".into(),
            repository: Repository {
                host: "r.example.com".into(),
                path: "api".into(),
            },
            manifest: Manifest {
                digest: "sha256:src".into(),
                media_type: "x".into(),
                bytes: Vec::new(),
            },
            actions: vec![("v1".into(), action)],
        };
        assert!(check_conflicts(&[promotion(PromoteAction::Put)], "git-1").is_ok());
        let conflict = PromoteAction::Conflict {
            registry_digest: "sha256:old".into(),
        };
        let err = check_conflicts(&[promotion(conflict)], "git-1").unwrap_err();
        assert_eq!(err.exit().code(), 1);
        assert_eq!(
            err.to_string(),
            "r.example.com/api:v1 is immutable and points at sha256:old, not at sha256:src \
             (r.example.com/api:git-1)"
        );
    }
}
