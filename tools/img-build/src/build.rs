//! Building each planned image (doing): hash its context, reuse a local image with the same
//! content digest, or stream the context to the Engine's classic builder.

use crate::context::{self, HashingWriter};
use crate::engine::{BuildRequest, CachedImage, Engine, EngineError};
use crate::plan::{self, DigestInputs, LabelInputs};
use crate::prepare::{
    ImagePlan, Provenance, add_hidden_dockerfile, hidden_dockerfile_name,
    remove_entry_keeping_parents,
};
use crate::request::{BuilderChoice, Request, cache_from_for};
use crate::session::SessionData;
use common::envelope::Image;
use common::short::short_digest;
use common::{Error, Result, Ui};
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What every build shares: the request, where the images come from, their `created` time
/// and the Engine (absent only in a dry run without one).
pub(crate) struct Builder<'a> {
    request: &'a Request,
    provenance: &'a Provenance,
    /// The `org.opencontainers.image.created` label: SOURCE_DATE_EPOCH when set
    /// (reproducible builds), else now.
    created: String,
    engine: Option<Engine>,
    /// Whether the builds use BuildKit (decided once, from `--builder` and the Engine).
    buildkit: bool,
    /// What BuildKit's session hands out: `--secret` values, logins for `--cache-from`.
    session: SessionData,
}

impl<'a> Builder<'a> {
    /// Connects to the Engine; a dry run goes on without one (and without the cache check).
    pub(crate) async fn connect(
        request: &'a Request,
        provenance: &'a Provenance,
        ui: &Ui,
    ) -> Result<Builder<'a>> {
        let engine = match request.dry_run {
            false => Some(Engine::connect().await?),
            true => match Engine::connect().await {
                Ok(engine) => Some(engine),
                Err(err) => {
                    tracing::warn!("dry run without the cache check: {err}");
                    None
                }
            },
        };
        let created = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            });
        let buildkit = match &engine {
            Some(engine) => use_buildkit(request, engine, ui).await?,
            None => request.builder != Some(BuilderChoice::Classic),
        };
        let session = match buildkit && !request.dry_run {
            true => session_data(request, ui).await?,
            false => SessionData::default(),
        };
        Ok(Builder {
            request,
            provenance,
            created: plan::rfc3339(created),
            engine,
            buildkit,
            session,
        })
    }

    /// Builds one image, or reuses the local image of the same content digest.
    pub(crate) async fn build(&self, plan: ImagePlan, ui: &Ui) -> Result<Image> {
        let (digest, context_bytes) = self.hash_context(&plan, ui).await?;
        let labels = plan::labels(&LabelInputs {
            name: plan.name.clone(),
            commit: self
                .provenance
                .git
                .as_ref()
                .map(|g| g.commit.clone())
                .filter(|c| !c.is_empty()),
            source: plan.remote.clone(),
            created: self.created.clone(),
            version: self.provenance.version.clone(),
            user: self.request.labels.clone(),
            digest: digest.clone(),
        });
        let mut image = Image {
            name: plan.name.clone(),
            context: Some(plan.context_arg.clone()),
            dockerfile: Some(plan.dockerfile_arg.clone()),
            tags: plan.tags.clone(),
            labels: labels.clone(),
            cache_hit: Some(false),
            context_bytes: Some(context_bytes),
            dry_run: self.request.dry_run,
            ..Image::default()
        };
        let cached: Option<CachedImage> = match (&self.engine, self.request.no_cache) {
            (Some(engine), false) => engine.find_by_digest(&digest).await?,
            _ => None,
        };
        if let Some(cached) = cached {
            self.reuse(&plan, cached, &mut image, ui).await?;
            return Ok(image);
        }
        if self.request.dry_run {
            image.cache_hit = self.engine.as_ref().map(|_| false);
            ui.line(&format!(
                "{}: would build as {} (dry run)",
                plan.name,
                plan.tags.join(", ")
            ));
            return Ok(image);
        }
        let started = Instant::now();
        let (name, tags) = (plan.name.clone(), plan.tags.join(", "));
        let id = self.build_new(plan, &labels, ui).await?;
        let build_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        ui.line(&format!(
            "{name}: built {} in {:.1}s as {tags}",
            short_digest(&id),
            build_ms as f64 / 1000.0,
        ));
        image.id = Some(id);
        image.build_ms = Some(build_ms);
        Ok(image)
    }

    /// The content digest of the image (the context tar's sha256 with everything else that
    /// changes the build) and the context's size.
    async fn hash_context(&self, plan: &ImagePlan, ui: &Ui) -> Result<(String, u64)> {
        let name = &plan.name;
        let spinner = ui.spinner(format!("{name}: hashing the context"));
        let entries = plan.entries.clone();
        let (context_sha, context_bytes) = tokio::task::spawn_blocking(move || {
            let mut hasher = HashingWriter::default();
            context::write_tar(&entries, &mut hasher).map(|n| (hasher.finish(), n))
        })
        .await
        .map_err(|err| Error::failed(format!("hashing the context: {err}")))?
        .map_err(|err| Error::failed(format!("reading the context {}: {err}", plan.context_arg)))?;
        let digest = plan::content_digest(
            &context_sha,
            &DigestInputs {
                dockerfile: plan.dockerfile_in_tar.clone(),
                build_args: self.request.build_args.clone(),
                target: self.request.target.clone(),
                platform: self.request.platform.clone(),
                labels: self.request.labels.clone(),
            },
        );
        spinner.finish(
            ui,
            &format!(
                "{name}: context {} entries, {}, digest {}",
                plan.entries.len(),
                human_bytes(context_bytes),
                &digest[..19]
            ),
        );
        Ok((digest, context_bytes))
    }

    /// Tags the cached image (nothing in a dry run) and records it as reused.
    async fn reuse(
        &self,
        plan: &ImagePlan,
        cached: CachedImage,
        image: &mut Image,
        ui: &Ui,
    ) -> Result<()> {
        image.id = Some(cached.id.clone());
        image.cache_hit = Some(true);
        // The image keeps the labels of the build that made it (its revision, its time).
        image.labels = cached.labels;
        if !self.request.dry_run
            && let Some(engine) = &self.engine
        {
            for tag in &plan.tags {
                engine.tag(&cached.id, tag).await?;
            }
        }
        ui.line(&format!(
            "{}: unchanged, reusing {} as {}",
            plan.name,
            short_digest(&cached.id),
            plan.tags.join(", ")
        ));
        Ok(())
    }

    /// Streams the context to the classic builder and tags the image; returns its id.
    async fn build_new(
        &self,
        mut plan: ImagePlan,
        labels: &BTreeMap<String, String>,
        ui: &Ui,
    ) -> Result<String> {
        let engine = self
            .engine
            .as_ref()
            .ok_or_else(|| Error::failed("no Docker Engine connection"))?;
        // BuildKit sets every label in the image config at once; the classic builder would
        // commit a step per label.
        let (entries, dockerfile, label_param) = match self.buildkit {
            true => (
                std::mem::take(&mut plan.entries),
                plan.dockerfile_in_tar.clone(),
                labels.clone(),
            ),
            false => with_labels_in_dockerfile(&mut plan, labels, self.request.target.as_deref())?,
        };
        let name = &plan.name;
        let cache_from: Vec<String> = (self.request.cache_from.iter())
            .map(|template| cache_from_for(template, name))
            .collect();
        let entries = std::sync::Arc::new(entries);
        let request = || BuildRequest {
            name,
            entries: entries.clone(),
            dockerfile: &dockerfile,
            dockerfile_text: &plan.dockerfile_text,
            tags: &plan.tags,
            labels: &label_param,
            build_args: &self.request.build_args,
            target: self.request.target.as_deref(),
            platform: self.request.platform.as_deref(),
            no_cache: self.request.no_cache,
            pull: self.request.pull,
            buildkit: self.buildkit,
            cache_from: &cache_from,
            inline_cache: self.request.inline_cache,
            session: &self.session,
        };
        let id = match engine.build(request(), ui).await {
            Err(EngineError::Step(message)) if is_cache_lookup_race(&message) => {
                ui.line(&format!(
                    "{name}: the Engine lost an image while looking through its build cache \
                     (removed by someone else meanwhile); building again"
                ));
                engine.build(request(), ui).await?
            }
            other => other?,
        };
        for tag in plan.tags.iter().skip(1) {
            engine.tag(&id, tag).await?;
        }
        Ok(id)
    }
}

/// The secrets' values (masked from here on, on stderr and under Actions) and the logins
/// for the `--cache-from` registries.
async fn session_data(request: &Request, ui: &Ui) -> Result<SessionData> {
    let mut secrets = std::collections::HashMap::new();
    for secret in &request.secrets {
        let value = secret.value()?;
        let text = String::from_utf8_lossy(&value);
        ui.mask(&text);
        // A file's value often ends with a newline; its output rarely shows it.
        ui.mask(text.trim_end());
        secrets.insert(secret.id.clone(), value);
    }
    Ok(SessionData {
        secrets,
        // Registry hosts are not templated: any image name finds them.
        credentials: crate::credentials::for_cache_from(
            &(request.cache_from.iter())
                .map(|template| cache_from_for(template, "name"))
                .collect::<Vec<_>>(),
            ui,
        )
        .await?,
        ..SessionData::default()
    })
}

/// BuildKit unless the user chose the classic builder; without a choice, the classic builder
/// (with a note) when the Engine offers no BuildKit and nothing asked needs it.
async fn use_buildkit(request: &Request, engine: &Engine, ui: &Ui) -> Result<bool> {
    if request.builder == Some(BuilderChoice::Classic) {
        return Ok(false);
    }
    let Err(why) = engine.offers_buildkit().await else {
        return Ok(true);
    };
    let needs = match (request.secrets.is_empty(), request.inline_cache) {
        (false, _) => Some("--secret"),
        (true, true) => Some("--cache-to inline"),
        (true, false) => None,
    };
    match (request.builder, needs) {
        (Some(BuilderChoice::Buildkit), _) => {
            Err(Error::failed(format!("--builder buildkit: {why}")))
        }
        (None, Some(flag)) => Err(Error::failed(format!("{flag} needs BuildKit, and {why}"))),
        _ => {
            ui.line(&format!(
                "img-build: building with the classic builder: {why} (no BuildKit)"
            ));
            Ok(false)
        }
    }
}

/// The classic builder commits one step per label passed as a build parameter; one LABEL
/// instruction appended to (a hidden copy of) the Dockerfile sets them all in one step.
/// Returns the entries to send (taken from the plan, not copied), the Dockerfile to build
/// and the labels still to pass.
fn with_labels_in_dockerfile(
    plan: &mut ImagePlan,
    labels: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<(Vec<context::Entry>, String, BTreeMap<String, String>)> {
    let mut entries = std::mem::take(&mut plan.entries);
    let text = String::from_utf8_lossy(&plan.dockerfile_text);
    let Some(labelled) = plan::dockerfile_with_labels(&text, labels, target) else {
        return Ok((entries, plan.dockerfile_in_tar.clone(), labels.clone()));
    };
    let hidden = hidden_dockerfile_name(&plan.dockerfile_text);
    add_hidden_dockerfile(&mut entries, &hidden, labelled.into_bytes())
        .map_err(|err| Error::failed(format!("reading the context {}: {err}", plan.context_arg)))?;
    if plan.dockerfile_ignored {
        // The Engine would have removed it as the Dockerfile; it is not that any more.
        remove_entry_keeping_parents(&mut entries, &plan.dockerfile_in_tar);
    }
    Ok((entries, hidden, BTreeMap::new()))
}

/// Whether a failed build met the classic builder's cache-lookup race: looking for a cached
/// step, the Engine lists candidate images and then loads each; an image removed in between
/// (`docker rmi`, `docker image prune` by a parallel job) fails the whole build with
/// "unable to find image sha256:…", though nothing is wrong with it. Building again is safe.
fn is_cache_lookup_race(message: &str) -> bool {
    message.contains("unable to find image \"sha256:")
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cache_lookup_race_is_built_again() {
        assert!(is_cache_lookup_race(
            "building api failed at Step 2/5 : COPY id.txt /id.txt: unable to find image \"sha256:85979104f34c\""
        ));
        assert!(!is_cache_lookup_race(
            "building api failed at Step 1/1 : RUN x: The command 'x' returned a non-zero code: 3"
        ));
        assert!(!is_cache_lookup_race(
            "pull access denied for nope, repository does not exist"
        ));
    }
}
