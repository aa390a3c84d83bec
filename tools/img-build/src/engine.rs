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

/// What can go wrong talking to the Docker Engine. Every variant is a job failure (exit 1);
/// the message is one line, except a failed step, which ends with the build's last output.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// ListImages failed.
    #[error("listing local images")]
    List(#[source] bollard::errors::Error),
    /// TagImage failed.
    #[error("tagging {id} as {reference}")]
    Tag {
        id: String,
        reference: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A tag to give the image is not an image reference (checked earlier; kept for safety).
    #[error("tagging {id}")]
    Reference {
        id: String,
        #[source]
        source: common::reference::ReferenceError,
    },
    /// A build step failed: the Dockerfile's or the build's fault, said by the builder.
    #[error("{0}")]
    Step(String),
    /// The Engine refused to start the build (bad options, unknown platform, …).
    #[error("building {name}: the Engine refused the build (HTTP {status}): {message}")]
    Refused {
        name: String,
        status: u16,
        message: String,
    },
    /// The build's response stream broke off.
    #[error("building {name}: {detail}")]
    Stream { name: String, detail: String },
    /// Reading or sending the context failed.
    #[error("sending the context of {name}: {message}")]
    Context { name: String, message: String },
    /// The thread writing the context panicked or was cancelled.
    #[error("context writer: {0}")]
    Writer(String),
    /// The build finished without saying which image it made.
    #[error("the build of {name} returned no image id")]
    NoImageId { name: String },
}

impl From<EngineError> for Error {
    fn from(err: EngineError) -> Error {
        match err {
            // A 400 before the first step is the Engine saying the request itself is bad (a
            // Dockerfile that does not parse, an unknown --target or --platform): bad input,
            // and nothing was built.
            EngineError::Refused { status: 400, .. } => Error::usage(err),
            err => Error::Failed(anyhow::Error::new(err)),
        }
    }
}

/// How the context writer ended: bytes written, or whether the failure was ours (a local
/// read error) rather than the Engine hanging up, and its message.
type Written = std::result::Result<u64, (bool, String)>;

impl Engine {
    /// Connects through `DOCKER_HOST` or the default socket at a negotiated API version
    /// (`common::docker`). The request timeout is long: a build's response headers come only
    /// after the whole context is uploaded.
    pub async fn connect() -> Result<Engine> {
        let docker = common::docker::connect(Duration::from_secs(24 * 3600)).await?;
        Ok(Engine { docker })
    }

    /// The newest local image labelled with `digest`, if any.
    pub async fn find_by_digest(&self, digest: &str) -> Result<Option<CachedImage>, EngineError> {
        let filters = HashMap::from([("label", vec![format!("{DIGEST_LABEL}={digest}")])]);
        let images = self
            .docker
            .list_images(Some(
                ListImagesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::List)?;
        Ok(images
            .into_iter()
            .max_by_key(|image| image.created)
            .map(|image| CachedImage {
                id: image.id,
                labels: image.labels.into_iter().collect(),
            }))
    }

    /// Points `reference` (`repo:tag`) at image `id`.
    pub async fn tag(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_reference(reference).map_err(|source| EngineError::Reference {
            id: id.to_owned(),
            source,
        })?;
        self.docker
            .tag_image(
                id,
                Some(TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build()),
            )
            .await
            .map_err(|source| EngineError::Tag {
                id: id.to_owned(),
                reference: reference.to_owned(),
                source,
            })
    }

    /// Builds with the classic builder, streaming the context tar from a blocking thread
    /// through a bounded channel. Returns the image id.
    pub async fn build(&self, request: BuildRequest<'_>, ui: &Ui) -> Result<String, EngineError> {
        let (tx, mut rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let entries = request.entries.clone();
        let writer = tokio::task::spawn_blocking(move || write_context(&entries, tx));
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let stream = self.docker.build_image(
            build_options(&request),
            None,
            Some(bollard::body_try_stream(body)),
        );
        let (image_id, failure) = follow(stream, request.name, || writer.is_finished(), ui).await;
        let written = writer
            .await
            .map_err(|err| EngineError::Writer(err.to_string()))?;
        blame(request.name, written, failure)?;
        match image_id {
            Some(id) => Ok(id),
            // Older engines may not send the aux message: ask by tag.
            None => self.image_id_of(&request).await,
        }
    }

    /// The id of the image the build tagged first, for an Engine that did not say.
    async fn image_id_of(&self, request: &BuildRequest<'_>) -> Result<String, EngineError> {
        let no_id = || EngineError::NoImageId {
            name: request.name.to_owned(),
        };
        let tag = request.tags.first().ok_or_else(no_id)?;
        self.docker
            .inspect_image(tag)
            .await
            .ok()
            .and_then(|i| i.id)
            .ok_or_else(no_id)
    }
}

/// The classic builder's query: one tag (the others are added after), labels, arguments.
fn build_options(request: &BuildRequest<'_>) -> bollard::query_parameters::BuildImageOptions {
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
    options.build()
}

/// Writes the context tar into the channel the build's body reads (on a blocking thread).
fn write_context(entries: &[Entry], tx: mpsc::Sender<std::io::Result<bytes::Bytes>>) -> Written {
    let mut out = ChannelWriter::new(tx);
    match write_tar(entries, &mut out).and_then(|n| out.flush().map(|()| n)) {
        Ok(n) => Ok(n),
        Err(err) => {
            // A broken pipe means the Engine stopped reading: its own answer says why.
            let ours = err.kind() != std::io::ErrorKind::BrokenPipe;
            let message = err.to_string();
            out.fail(err);
            Err((ours, message))
        }
    }
}

/// Reads the build's stream to its end, showing the steps; returns the image id it reported
/// and the failure it ended with, if any. `writer_done` says whether the context was sent.
async fn follow(
    mut stream: impl futures_util::Stream<
        Item = std::result::Result<bollard::models::BuildInfo, bollard::errors::Error>,
    > + Unpin,
    name: &str,
    writer_done: impl Fn() -> bool,
    ui: &Ui,
) -> (Option<String>, Option<EngineError>) {
    let mut tracker = StepTracker::default();
    let mut image_id = None;
    let spinner = ui.spinner(format!("building {name}"));
    let mut failure = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(err) => {
                failure = Some(stream_failure(name, &tracker, err, writer_done()));
                break;
            }
        };
        if let Some(text) = info.stream.as_deref() {
            for event in tracker.feed(text) {
                show(ui, &spinner, &event);
            }
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
    }
    for event in tracker.finish() {
        show(ui, &spinner, &event);
    }
    (image_id, failure)
}

/// What an error in the build's stream means.
fn stream_failure(
    name: &str,
    tracker: &StepTracker,
    err: bollard::errors::Error,
    context_sent: bool,
) -> EngineError {
    match err {
        bollard::errors::Error::DockerStreamError { error } => {
            EngineError::Step(tracker.failure(name, &error))
        }
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Refused {
            name: name.to_owned(),
            status: status_code,
            message: message.trim().to_owned(),
        },
        err => EngineError::Stream {
            name: name.to_owned(),
            detail: match context_sent {
                true => err.to_string(),
                false => format!("the Engine stopped: {err}"),
            },
        },
    }
}

/// Which failure to report: a local read error is the cause of everything after it;
/// otherwise the Engine's answer says more than the broken pipe it left us.
fn blame(name: &str, written: Written, failure: Option<EngineError>) -> Result<(), EngineError> {
    match (written, failure) {
        (Err((true, message)), _) | (Err((false, message)), None) => Err(EngineError::Context {
            name: name.to_owned(),
            message,
        }),
        (_, Some(failure)) => Err(failure),
        (Ok(_), None) => Ok(()),
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

    #[test]
    fn a_refused_request_is_bad_input_and_a_server_error_a_failure() {
        let refused = |status| EngineError::Refused {
            name: "api".into(),
            status,
            message: "dockerfile parse error line 2: unknown instruction: BOGUS".into(),
        };
        assert_eq!(Error::from(refused(400)).exit(), common::Exit::Usage);
        assert_eq!(Error::from(refused(500)).exit(), common::Exit::Failed);
    }
}
