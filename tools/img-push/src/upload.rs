//! Carrying out one push job: report the skips, have the Engine push the first new tag (or
//! nothing, when the registry holds the manifest already), write the other tags by
//! manifest `PUT`, and check the digest with the registry.

use crate::engine::{self, Engine, LocalImage, PushError, PushProgress};
use crate::error::{EngineError, RegistryError};
use crate::manifest::Manifest;
use crate::plan::{LayerOutcome, TagAction};
use crate::record::{JobResult, entry};
use crate::reference::Repository;
use crate::registry::Registry;
use crate::retry::Retry;
use crate::sources::Source;
use crate::transfer::{Transfer, human_bytes};
use common::envelope::Pushed;
use common::short::short_digest;
use common::{Error, Result, Ui};
use std::collections::BTreeMap;
use std::time::Instant;

/// One image going to one repository: its tags and what to do with each.
#[derive(Debug, Clone)]
pub struct Job {
    pub source: Source,
    pub repository: Repository,
    /// What the Engine knows of the image; `None` when the registry alone settled every tag
    /// (all skipped), so the Engine was not asked.
    pub local: Option<LocalImage>,
    /// Tags in order, with the decision for each.
    pub tags: Vec<(String, TagAction)>,
}

/// What every job of a push shares: the registry, the Engine, and how to go about it.
pub struct Upload<'a> {
    pub registry: &'a Registry,
    /// `None` when no image needed the Engine (every tag was settled by the registry).
    pub engine: Option<&'a Engine>,
    pub retry: Retry,
    pub dry_run: bool,
    /// Progress bars (on a terminal, not under Actions); else a line per layer.
    pub bars: bool,
    pub ui: &'a Ui,
}

/// One job's image, where it goes, and the entries made so far.
struct Progress<'a> {
    source: &'a Source,
    repository: &'a Repository,
    pushed: Vec<Pushed>,
}

/// Pushes one job's tags: skips first, then one Engine push (or none when the registry has
/// the manifest already), then the other tags by manifest PUT. On failure, returns what
/// was done with the error.
pub async fn run_job(
    job: Job,
    upload: &Upload<'_>,
) -> std::result::Result<JobResult, (Vec<Pushed>, Error)> {
    let Job {
        source,
        repository,
        local,
        tags,
    } = job;
    let ui = upload.ui;
    let _group = ui.group(&format!("img-push {} → {repository}", source.name));
    let mut progress = Progress {
        source: &source,
        repository: &repository,
        pushed: Vec::new(),
    };
    let to_push = progress.skip_settled(tags, upload);
    let outcome = match to_push.is_empty() {
        true => Ok(()),
        false => {
            // A tag to push was not settled by the registry alone, so the image was looked up.
            let (Some(local), Some(engine)) = (local, upload.engine) else {
                unreachable!("an image with a tag to push is looked up in the Engine first")
            };
            progress.send(&to_push, &local, engine, upload).await
        }
    };
    let pushed = progress.pushed;
    match outcome {
        Ok(()) => Ok(JobResult { source, pushed }),
        Err(err) => Err((pushed, err)),
    }
}

impl Progress<'_> {
    /// Records the tags the registry has at this image already; returns the others.
    fn skip_settled(&mut self, tags: Vec<(String, TagAction)>, upload: &Upload) -> Vec<String> {
        let mut to_push = Vec::new();
        for (tag, action) in tags {
            match action {
                TagAction::Skip { digest } => {
                    upload.ui.line(&format!(
                        "{}: {} is already at {} (skipped)",
                        self.source.name,
                        self.repository.with_tag(&tag),
                        short_digest(&digest)
                    ));
                    self.record(&tag, &digest, true, upload.dry_run);
                }
                TagAction::Push => to_push.push(tag),
                TagAction::Conflict { .. } => unreachable!("conflicts stop the run before pushing"),
            }
        }
        to_push
    }

    /// Sends `to_push` (not empty): with --dry-run, says what would be pushed.
    async fn send(
        &mut self,
        to_push: &[String],
        local: &LocalImage,
        engine: &Engine,
        upload: &Upload<'_>,
    ) -> Result<()> {
        let known_digests = local.digests_in(self.repository);
        if upload.dry_run {
            let digest = known_digests.first().cloned().unwrap_or_default();
            for tag in to_push {
                upload.ui.line(&format!(
                    "{}: would push {} (dry run)",
                    self.source.name,
                    self.repository.with_tag(tag)
                ));
                self.record(tag, &digest, false, true);
            }
            return Ok(());
        }
        if let Some(manifest) = self.manifest_in_registry(&known_digests, upload).await? {
            return self.put_tags(to_push, &manifest, upload).await;
        }
        let (first, rest) = to_push.split_first().expect("to_push is not empty");
        let digest = self.engine_push(first, local, engine, upload).await?;
        self.record(first, &digest, false, false);
        if rest.is_empty() {
            return Ok(());
        }
        let manifest = upload
            .registry
            .get_manifest(&self.repository.path, &digest)
            .await?
            .ok_or(RegistryError::PushedManifestMissing {
                repository: self.repository.to_string(),
                digest,
            })?;
        self.put_tags(rest, &manifest, upload).await
    }

    /// The image's manifest, when the registry holds it already (under another tag): then
    /// the tags are written with no upload at all.
    async fn manifest_in_registry(
        &self,
        known_digests: &[String],
        upload: &Upload<'_>,
    ) -> Result<Option<Manifest>> {
        for digest in known_digests {
            let found = upload
                .registry
                .get_manifest(&self.repository.path, digest)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Writes `manifest` under each of `tags` (no upload: the registry has its layers).
    async fn put_tags(
        &mut self,
        tags: &[String],
        manifest: &Manifest,
        upload: &Upload<'_>,
    ) -> Result<()> {
        for tag in tags {
            let digest = upload
                .registry
                .put_manifest(&self.repository.path, tag, manifest)
                .await?;
            upload.ui.line(&format!(
                "{}: tagged {} at {} (manifest already in the registry)",
                self.source.name,
                self.repository.with_tag(tag),
                short_digest(&digest)
            ));
            self.record(tag, &digest, false, false);
        }
        Ok(())
    }

    /// Tags the local image for `repository:tag` and has the Engine push it, retrying
    /// transient failures; returns the digest, confirmed by the registry.
    async fn engine_push(
        &self,
        tag: &str,
        local: &LocalImage,
        engine: &Engine,
        upload: &Upload<'_>,
    ) -> Result<String> {
        let repository = self.repository;
        let target = repository.with_tag(tag);
        if let Some(credentials) = upload.registry.credentials() {
            upload
                .ui
                .mask(&engine::registry_auth_header(credentials, &repository.host));
        }
        engine.tag(&local.id, repository, tag).await?;
        let started = Instant::now();
        let mut attempt = 0;
        let digest = loop {
            match self.push_once(tag, engine, upload, started).await {
                Ok(digest) => break digest,
                Err(err) if err.transient && attempt < upload.retry.retries => {
                    attempt += 1;
                    let what = format!("pushing {target}");
                    upload.retry.wait(attempt, &what, &err.message).await;
                }
                Err(err) => {
                    return Err(EngineError::Push {
                        target,
                        why: err.message,
                        attempts: attempt + 1,
                    }
                    .into());
                }
            }
        };
        // The stream's word, checked against the registry's.
        match upload.registry.head_manifest(&repository.path, tag).await? {
            Some(remote) if remote == digest => Ok(digest),
            Some(remote) => Err(EngineError::DigestMismatch {
                target,
                reported: digest,
                registry: remote,
            }
            .into()),
            None => Err(EngineError::NotInRegistry { target }.into()),
        }
    }

    /// One push by the Engine, with bars for the bytes of each layer and overall on a
    /// terminal, or plain lines (a line per layer, a percentage every few seconds) in CI;
    /// says how it went.
    async fn push_once(
        &self,
        tag: &str,
        engine: &Engine,
        upload: &Upload<'_>,
        started: Instant,
    ) -> std::result::Result<String, PushError> {
        let (name, ui) = (&self.source.name, upload.ui);
        let target = self.repository.with_tag(tag);
        let overall_bar = ui.byte_bar(0, format!("{name} → {target}"));
        let mut layer_bars: Vec<common::ui::Progress> = Vec::new();
        let mut transfer = Transfer::default();
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let credentials = upload.registry.credentials();
        let result = engine
            .push(self.repository, tag, credentials, |event| match event {
                PushProgress::Layers(total) => transfer.layer_count = total,
                PushProgress::LayerDone(done, outcome) => {
                    transfer.layers_done = done;
                    let word = layer_word(outcome);
                    *counts.entry(word).or_default() += 1;
                    if !upload.bars {
                        let layers = transfer.layer_count;
                        ui.line(&format!("{name}: {target}: layer {done}/{layers} {word}"));
                    }
                }
                PushProgress::Bytes { current, total } => {
                    let now = Instant::now();
                    let (index, new) = transfer.bytes(current, total, now);
                    if upload.bars {
                        if new {
                            let label = format!("  layer of {}", human_bytes(total));
                            layer_bars.push(ui.byte_bar(total, label));
                        }
                        layer_bars[index].set_position(transfer.layer(index).sent);
                        let overall = transfer.overall();
                        overall_bar.set_length(overall.total);
                        overall_bar.set_position(overall.sent);
                    } else if transfer.plain_line_due(now) {
                        ui.line(&format!("{name}: {target}: {}", transfer.line(now)));
                    }
                }
            })
            .await;
        drop(layer_bars);
        drop(overall_bar);
        let digest = result?;
        let layers_text = counts
            .iter()
            .map(|(word, n)| format!("{n} {word}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sent = transfer.overall().sent;
        ui.line(&format!(
            "{name}: pushed {target} at {} in {:.1}s ({} sent; layers: {})",
            short_digest(&digest),
            started.elapsed().as_secs_f64(),
            human_bytes(sent),
            if layers_text.is_empty() {
                "none".to_owned()
            } else {
                layers_text
            }
        ));
        Ok(digest)
    }

    fn record(&mut self, tag: &str, digest: &str, skipped: bool, dry_run: bool) {
        self.pushed
            .push(entry(self.repository, tag, digest, skipped, dry_run));
    }
}

/// How a layer got into the registry, in a word for people.
fn layer_word(outcome: LayerOutcome) -> &'static str {
    match outcome {
        LayerOutcome::Pushed => "pushed",
        LayerOutcome::Existed => "already there",
        LayerOutcome::Mounted => "mounted",
    }
}
