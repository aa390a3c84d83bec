//! The push job: choose the images, ask the Engine and the registry what they have, decide
//! every tag before anything is sent, then push (see [`crate::upload`]) and record.

use crate::config::{Config, PushRequest};
use crate::engine::{Engine, LocalImage};
use crate::plan::{self, Remote, TagAction};
use crate::record::{JobResult, record};
use crate::reference::Repository;
use crate::report::report;
use crate::sources::{Source, check_tag_claims, sources};
use crate::target::{Target, connect, ready_repositories};
use crate::upload::{Job, Upload, run_job};
use common::envelope::Envelope;
use common::registry_auth::Credentials;
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

/// The images and what the Engine knows of each, filled in as it is asked.
struct Images {
    sources: Vec<Source>,
    locals: Vec<Option<LocalImage>>,
    /// Connected on first use: a re-push the registry settles alone needs no Engine.
    engine: Option<Engine>,
}

/// Pushes the images `request` names, adding `pushed[]` entries to `envelope` as each job
/// ends, so a failure leaves what was pushed in the envelope.
pub async fn push(
    config: &Config,
    request: &PushRequest,
    user_credentials: Option<Credentials>,
    envelope: &mut Envelope,
    ui: &Ui,
) -> Result<()> {
    let sources = sources(request, &config.destination, envelope)?;
    check_tag_claims(&sources, &config.destination)?;
    let mut images = Images {
        locals: vec![None; sources.len()],
        sources,
        engine: None,
    };
    // An image named by a reference is looked up in the Engine first, for its id: a
    // reference that names no image is bad input, found before any network call. An image
    // whose id is known waits: the registry may have all its tags already.
    let by_reference: Vec<usize> = (0..images.sources.len())
        .filter(|&i| images.sources[i].id.is_none())
        .collect();
    images.look_up(&by_reference).await?;

    let names: Vec<&str> = images.sources.iter().map(|s| s.name.as_str()).collect();
    let target = connect(config, &names, user_credentials, ui).await?;
    let remotes = observe_all(&target, &images, config.jobs).await?;
    images.look_up(&unsettled(&images, &remotes)).await?;
    let immutable = ready_repositories(&target, config, ui).await?;

    // Every decision is made before anything is pushed.
    let Images {
        sources,
        locals,
        engine,
    } = images;
    let jobs = decide(sources, &target.repositories, locals, remotes, &immutable);
    check_conflicts(&jobs)?;
    let upload = Upload {
        registry: &target.registry,
        engine: engine.as_ref(),
        retry: config.retry,
        dry_run: config.dry_run,
        bars: std::io::stderr().is_terminal() && ui.actions().is_none(),
        ui,
    };
    run_all(jobs, &upload, config, envelope).await
}

impl Images {
    /// Looks up the images at `which` in the Engine (connecting on first use),
    /// concurrently, filling in their ids; the first in order that does not exist is bad
    /// input.
    async fn look_up(&mut self, which: &[usize]) -> Result<()> {
        if which.is_empty() {
            return Ok(());
        }
        let engine = match &mut self.engine {
            Some(engine) => engine,
            None => self.engine.insert(Engine::connect().await?),
        };
        let found = futures_util::future::join_all(
            which
                .iter()
                .map(|&i| engine.inspect(&self.sources[i].local)),
        )
        .await;
        for (&i, found) in which.iter().zip(found) {
            let source = &mut self.sources[i];
            let local = found?.ok_or_else(|| {
                Error::usage(format!(
                    "no local image {} (image {}): build it first (img-build), or check --image",
                    source.local, source.name
                ))
            })?;
            source.id = Some(local.id.clone());
            self.locals[i] = Some(local);
        }
        Ok(())
    }
}

/// What the registry has under each tag of each image (reads only), `jobs` images at a time.
async fn observe_all(
    target: &Target,
    images: &Images,
    jobs: usize,
) -> Result<Vec<Vec<(String, Remote)>>> {
    let sources = images.sources.iter().zip(&target.repositories);
    futures_util::stream::iter(sources.zip(&images.locals))
        .map(|((source, repository), local)| observe(target, source, repository, local.as_ref()))
        .buffered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
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

/// Images known by id that the registry does not have at every tag: now the Engine must
/// have them (they are pushed, or compared by RepoDigests). One it does not have is bad
/// input, found before anything changes. One whose tags are all at a manifest with its id
/// as config is skipped without the Engine, even if it is no longer there locally: the
/// config digest names every layer by content, so the registry holds exactly this image
/// and there is nothing to push (idempotent after `docker image prune`, too).
fn unsettled(images: &Images, remotes: &[Vec<(String, Remote)>]) -> Vec<usize> {
    (0..images.sources.len())
        .filter(|&i| {
            images.locals[i].is_none() && {
                let id = images.sources[i].id.as_deref().unwrap_or_default();
                !remotes[i]
                    .iter()
                    .all(|(_, remote)| plan::is_at_image(id, remote))
            }
        })
        .collect()
}

/// Decides every tag of every image from what the Engine and the registry said.
fn decide(
    sources: Vec<Source>,
    repositories: &[Repository],
    locals: Vec<Option<LocalImage>>,
    remotes: Vec<Vec<(String, Remote)>>,
    immutable: &BTreeMap<Repository, bool>,
) -> Vec<Job> {
    sources
        .into_iter()
        .zip(repositories.iter().cloned())
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
        .collect()
}

/// Stops the run, before anything is pushed, when an immutable tag is at another image.
fn check_conflicts(jobs: &[Job]) -> Result<()> {
    let conflicts: Vec<String> = jobs
        .iter()
        .flat_map(|job| {
            job.tags.iter().filter_map(move |(tag, action)| match action {
                TagAction::Conflict { registry_digest } => Some(format!(
                    "{} is immutable and points at {registry_digest}, not at the local image {} \
                     ({})",
                    job.repository.with_tag(tag),
                    job.source.name,
                    local_digest_text(job)
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

/// What the local image is, for a conflict message: its digest in the repository if known,
/// else its id.
fn local_digest_text(job: &Job) -> String {
    let digests = job
        .local
        .as_ref()
        .map(|l| l.digests_in(&job.repository))
        .unwrap_or_default();
    match digests.first() {
        Some(digest) => digest.clone(),
        None => format!("image id {}", job.source.id.as_deref().unwrap_or_default()),
    }
}

/// Runs the jobs, `config.jobs` at a time, recording each as it ends (what a failed job
/// did, too); the first error is returned, later ones logged.
async fn run_all(
    jobs: Vec<Job>,
    upload: &Upload<'_>,
    config: &Config,
    envelope: &mut Envelope,
) -> Result<()> {
    let started = Instant::now();
    let mut results = futures_util::stream::iter(jobs)
        .map(|job| async move {
            let source = job.source.clone();
            (source, run_job(job, upload).await)
        })
        .buffer_unordered(config.jobs);
    let mut first_error = None;
    let mut done = Vec::new();
    while let Some((source, outcome)) = results.next().await {
        match outcome {
            Ok(result) => {
                record(envelope, &result);
                done.push(result);
            }
            Err((pushed, err)) => {
                record(envelope, &JobResult { source, pushed });
                if first_error.is_some() {
                    tracing::error!("{err}");
                } else {
                    first_error = Some(err);
                }
            }
        }
    }
    drop(results);
    report(&done, started, config.dry_run, "pushed", upload.ui);
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, id: Option<&str>, tags: &[&str]) -> Source {
        Source {
            index: None,
            name: name.into(),
            local: format!("{name}:{}", tags[0]),
            id: id.map(str::to_owned),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn at(digest: &str, config: Option<&str>) -> Remote {
        Remote::At {
            digest: digest.into(),
            config: config.map(str::to_owned),
        }
    }

    #[test]
    fn only_images_the_registry_does_not_hold_at_every_tag_need_the_engine() {
        let images = Images {
            sources: vec![
                source("settled", Some("sha256:i1"), &["1", "2"]),
                source("half", Some("sha256:i2"), &["1", "2"]),
                source("looked-up", None, &["1"]),
            ],
            locals: vec![None, None, Some(LocalImage::default())],
            engine: None,
        };
        let remotes = vec![
            vec![
                ("1".into(), at("sha256:m1", Some("sha256:i1"))),
                ("2".into(), at("sha256:m1", Some("sha256:i1"))),
            ],
            vec![
                ("1".into(), at("sha256:m2", Some("sha256:i2"))),
                ("2".into(), Remote::Absent),
            ],
            vec![("1".into(), Remote::Absent)],
        ];
        assert_eq!(unsettled(&images, &remotes), [1]);
    }

    #[test]
    fn an_immutable_tag_at_another_image_is_a_conflict_naming_both() {
        let repository = Repository {
            host: "r.example.com".into(),
            path: "api".into(),
        };
        let local = LocalImage {
            id: "sha256:local".into(),
            repo_digests: vec!["r.example.com/api@sha256:mine".into()],
        };
        let decide_with = |immutable: bool| {
            decide(
                vec![source("api", Some("sha256:local"), &["1", "2"])],
                std::slice::from_ref(&repository),
                vec![Some(local.clone())],
                vec![vec![
                    ("1".into(), at("sha256:mine", None)),
                    ("2".into(), at("sha256:other", None)),
                ]],
                &BTreeMap::from([(repository.clone(), immutable)]),
            )
        };
        let mutable = decide_with(false);
        assert_eq!(
            mutable[0].tags,
            [
                (
                    "1".to_owned(),
                    TagAction::Skip {
                        digest: "sha256:mine".into()
                    }
                ),
                ("2".to_owned(), TagAction::Push)
            ]
        );
        assert!(check_conflicts(&mutable).is_ok());
        let err = check_conflicts(&decide_with(true)).unwrap_err();
        assert_eq!(err.exit().code(), 1);
        assert_eq!(
            err.to_string(),
            "r.example.com/api:2 is immutable and points at sha256:other, not at the local \
             image api (sha256:mine)"
        );
    }
}
