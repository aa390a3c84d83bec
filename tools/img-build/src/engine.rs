//! The calls to the Docker Engine: connecting (with API version negotiation), finding an
//! image by its content digest, tagging, and building with the classic builder from a
//! streamed context.

use crate::context::{ChannelWriter, Entry, write_tar};
use crate::plan::DIGEST_LABEL;
use crate::progress::{BuildEvent, StepTracker};
use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListImagesOptionsBuilder, TagImageOptionsBuilder,
};
use common::reference::{DEFAULT_TAG, Reference, ReferenceError};
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc;

/// A connection to the Engine, at the API version both sides speak.
pub struct Engine {
    docker: Docker,
}

/// An image found by its content digest.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

/// What one build needs.
pub struct BuildRequest<'a> {
    pub name: &'a str,
    /// Shared, so that a build started again sends the same entries without copying them.
    pub entries: std::sync::Arc<Vec<Entry>>,
    pub dockerfile: &'a str,
    pub tags: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub no_cache: bool,
    pub pull: bool,
}

impl Engine {
    /// Connects through `DOCKER_HOST` or the default socket at a negotiated API version
    /// (`common::docker`). The request timeout is long: a build's response headers come only
    /// after the whole context is uploaded.
    pub async fn connect() -> Result<Engine> {
        let docker = common::docker::connect(Duration::from_secs(24 * 3600)).await?;
        Ok(Engine { docker })
    }

    /// The newest local image labelled with `digest`, if any.
    pub async fn find_by_digest(&self, digest: &str) -> Result<Option<CachedImage>> {
        let filters = HashMap::from([("label", vec![format!("{DIGEST_LABEL}={digest}")])]);
        let images = self
            .docker
            .list_images(Some(
                ListImagesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|err| Error::failed(format!("listing local images: {err}")))?;
        Ok(images
            .into_iter()
            .max_by_key(|image| image.created)
            .map(|image| CachedImage {
                id: image.id,
                labels: image.labels.into_iter().collect(),
            }))
    }

    /// Points `reference` (`repo:tag`) at image `id`.
    pub async fn tag(&self, id: &str, reference: &str) -> Result<()> {
        let (repo, tag) = split_reference(reference)
            .map_err(|err| Error::failed(format!("tagging {id}: {err}")))?;
        self.docker
            .tag_image(
                id,
                Some(TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build()),
            )
            .await
            .map_err(|err| Error::failed(format!("tagging {id} as {reference}: {err}")))
    }

    /// Builds with the classic builder, streaming the context tar from a blocking thread
    /// through a bounded channel. Returns the image id.
    pub async fn build(&self, request: BuildRequest<'_>, ui: &Ui) -> Result<String> {
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(request.dockerfile)
            .rm(true)
            .forcerm(true)
            .nocache(request.no_cache)
            .labels(
                &request
                    .labels
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            )
            .buildargs(
                &request
                    .build_args
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            );
        if let Some(first) = request.tags.first() {
            options = options.t(first);
        }
        if let Some(target) = request.target {
            options = options.target(target);
        }
        if let Some(platform) = request.platform {
            options = options.platform(platform);
        }
        if request.pull {
            options = options.pull("1");
        }

        let (tx, mut rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let entries = request.entries;
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter::new(tx);
            match write_tar(&entries, &mut out).and_then(|n| out.flush().map(|()| n)) {
                Ok(n) => Ok(n),
                Err(err) => {
                    // A broken pipe means the Engine stopped reading: its own answer says why.
                    let ours = err.kind() != std::io::ErrorKind::BrokenPipe;
                    let message = err.to_string();
                    out.fail(err);
                    Err((ours, message))
                }
            }
        });
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut stream =
            self.docker
                .build_image(options.build(), None, Some(bollard::body_try_stream(body)));

        let mut tracker = StepTracker::default();
        let mut image_id = None;
        let spinner = ui.spinner(format!("building {}", request.name));
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref() {
                        for event in tracker.feed(text) {
                            show(ui, &spinner, &event);
                        }
                    }
                    if let Some(id) = info.aux.and_then(|aux| aux.id) {
                        image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    failure = Some(tracker.failure(request.name, &error));
                    break;
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                }) => {
                    failure = Some(format!(
                        "building {}: the Engine refused the build (HTTP {status_code}): {}",
                        request.name,
                        message.trim()
                    ));
                    break;
                }
                Err(err) => {
                    failure = Some(match writer.is_finished() {
                        true => format!("building {}: {err}", request.name),
                        false => format!("building {}: the Engine stopped: {err}", request.name),
                    });
                    break;
                }
            }
        }
        for event in tracker.finish() {
            show(ui, &spinner, &event);
        }
        drop(spinner);
        drop(stream);
        let written = writer
            .await
            .map_err(|err| Error::failed(format!("context writer: {err}")))?;
        // Which failure to report: a local read error is the cause of everything after it;
        // otherwise the Engine's answer says more than the broken pipe it left us.
        match (written, failure) {
            (Err((true, message)), _) | (Err((false, message)), None) => {
                return Err(Error::failed(format!(
                    "sending the context of {}: {message}",
                    request.name
                )));
            }
            (_, Some(failure)) => return Err(Error::failed(failure)),
            (Ok(_), None) => {}
        }
        let id = match image_id {
            Some(id) => id,
            // Older engines may not send the aux message: ask by tag.
            None => match request.tags.first() {
                Some(tag) => self
                    .docker
                    .inspect_image(tag)
                    .await
                    .ok()
                    .and_then(|i| i.id)
                    .ok_or_else(|| {
                        Error::failed(format!(
                            "the build of {} returned no image id",
                            request.name
                        ))
                    })?,
                None => {
                    return Err(Error::failed(format!(
                        "the build of {} returned no image id",
                        request.name
                    )));
                }
            },
        };
        Ok(id)
    }
}

fn show(ui: &Ui, spinner: &common::ui::Progress, event: &BuildEvent) {
    match event {
        BuildEvent::Step(step) => {
            spinner.set_message(step.clone());
            ui.line(step);
        }
        BuildEvent::Output(line) => ui.line(&format!("  {line}")),
        BuildEvent::Detail(line) => tracing::debug!("{}", line.trim()),
    }
}

/// `registry:5000/team/api:tag` → (`registry:5000/team/api`, `tag`), as the Engine's tag
/// call takes them; `latest` when the reference has no tag.
pub fn split_reference(reference: &str) -> Result<(String, String), ReferenceError> {
    let parsed = Reference::parse(reference)?;
    let tag = parsed.tag_or_default().unwrap_or(DEFAULT_TAG).to_owned();
    Ok((parsed.repository(), tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_colon() {
        let split = |reference| split_reference(reference).unwrap();
        assert_eq!(split("api:git-1"), ("api".into(), "git-1".into()));
        assert_eq!(
            split("localhost:5000/team/api:v1"),
            ("localhost:5000/team/api".into(), "v1".into())
        );
        assert_eq!(
            split("localhost:5000/api"),
            ("localhost:5000/api".into(), "latest".into())
        );
        assert!(split_reference("localhost:5000/API:v1").is_err());
    }
}
