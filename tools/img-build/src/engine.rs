//! The calls to the Docker Engine: connecting (with API version negotiation), whether it
//! offers BuildKit, finding an image by its content digest, tagging, and building (BuildKit
//! or the classic builder) from a streamed context.

use crate::context::{ChannelWriter, Entry, write_tar};
use crate::plan::DIGEST_LABEL;
use crate::progress::{BuildEvent, StepTracker, VertexTracker};
use crate::session::SessionData;
use bollard::Docker;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, ListImagesOptionsBuilder, TagImageOptionsBuilder,
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
    /// The Dockerfile's path in the context tar (classic builder).
    pub dockerfile: &'a str,
    /// The Dockerfile itself (BuildKit reads it through the session).
    pub dockerfile_text: &'a [u8],
    pub tags: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub no_cache: bool,
    pub pull: bool,
    /// BuildKit (else the classic builder).
    pub buildkit: bool,
    /// Images whose layers (BuildKit: whose inline cache metadata) the build may reuse.
    pub cache_from: &'a [String],
    /// BuildKit: write the inline cache metadata into the image's config.
    pub inline_cache: bool,
    /// BuildKit: the secrets and registry logins its session hands out (never in the
    /// request itself); the context and Dockerfile are added per build.
    pub session: &'a SessionData,
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
    /// The BuildKit session could not be opened.
    #[error("building {name}: {message}")]
    Session { name: String, message: String },
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
            // BuildKit accepts the request and refuses the Dockerfile in the stream instead,
            // before any step runs: the same bad input.
            EngineError::Step(ref message) if is_dockerfile_refused(message) => Error::usage(err),
            err => Error::Failed(anyhow::Error::new(err)),
        }
    }
}

/// Whether BuildKit's Dockerfile front end refused the Dockerfile itself (it does not parse,
/// it is empty, the `--target` stage is not in it): its "failed to create LLB definition",
/// said before the build has a single step to run.
fn is_dockerfile_refused(message: &str) -> bool {
    message.contains("failed to create LLB definition")
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

    /// Whether the Engine can build with BuildKit: API 1.39 (Engine 18.09) or newer on
    /// Linux; Windows Engines have only the classic builder. `Err` says why not.
    pub async fn offers_buildkit(&self) -> std::result::Result<(), String> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|err| format!("the Engine did not say its version ({err})"))?;
        let api = version.api_version.unwrap_or_default();
        let os = version.os.unwrap_or_default();
        if os != "linux" {
            return Err(format!("the Engine runs on {os}"));
        }
        match api_at_least(&api, (1, 39)) {
            true => Ok(()),
            false => Err(format!("the Engine speaks API {api}, BuildKit needs 1.39")),
        }
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

    /// Builds (BuildKit or the classic builder), streaming the context tar from a blocking
    /// thread through a bounded channel. Returns the image id.
    pub async fn build(&self, request: BuildRequest<'_>, ui: &Ui) -> Result<String, EngineError> {
        let (image_id, failure, written) = match request.buildkit {
            true => self.build_with_buildkit(&request, ui).await?,
            false => self.build_classic(&request, ui).await?,
        };
        blame(request.name, written, failure)?;
        match image_id {
            Some(id) => Ok(id),
            // Older engines may not send the aux message: ask by tag.
            None => self.image_id_of(&request).await,
        }
    }

    /// The classic builder reads the context as a tar in the request's body, streamed from
    /// a blocking thread through a bounded channel.
    async fn build_classic(
        &self,
        request: &BuildRequest<'_>,
        ui: &Ui,
    ) -> Result<(Option<String>, Option<EngineError>, Written), EngineError> {
        let (tx, mut rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let entries = request.entries.clone();
        let writer = tokio::task::spawn_blocking(move || write_context(&entries, tx));
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let stream = self.docker.build_image(
            build_options(request, None),
            None,
            Some(bollard::body_try_stream(body)),
        );
        let tracker = Tracker::Classic(StepTracker::default());
        let (image_id, failure) =
            follow(stream, request.name, tracker, || writer.is_finished(), ui).await;
        let written = writer
            .await
            .map_err(|err| EngineError::Writer(err.to_string()))?;
        Ok((image_id, failure, written))
    }

    /// BuildKit pulls the context, the Dockerfile and the secrets through img-build's
    /// session (`crate::session`), opened before the build names it.
    async fn build_with_buildkit(
        &self,
        request: &BuildRequest<'_>,
        ui: &Ui,
    ) -> Result<(Option<String>, Option<EngineError>, Written), EngineError> {
        let session_id = session_id(request.name);
        let data = SessionData {
            context: request.entries.clone(),
            dockerfile: request.dockerfile_text.to_vec(),
            ..request.session.clone()
        };
        let _session = crate::session::open(&common::docker::engine_host(), &session_id, data)
            .await
            .map_err(|message| EngineError::Session {
                name: request.name.to_owned(),
                message,
            })?;
        let stream = self.docker.build_image(
            build_options(request, Some(&session_id)),
            None,
            Some(bollard::body_full(bytes::Bytes::new())),
        );
        let tracker = Tracker::BuildKit(VertexTracker::default());
        let (image_id, failure) = follow(stream, request.name, tracker, || true, ui).await;
        Ok((image_id, failure, Ok(0)))
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

/// Whether the API version `text` (`1.41`) is at least `min`.
fn api_at_least(text: &str, min: (u32, u32)) -> bool {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

/// A BuildKit session id, unique on this Engine: the process and the time.
fn session_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("img-build-{name}-{}-{nanos}", std::process::id())
}

/// The build's query: one tag (the others are added after), labels, arguments, and for
/// BuildKit its version, session and cache options.
fn build_options(
    request: &BuildRequest<'_>,
    session_id: Option<&str>,
) -> bollard::query_parameters::BuildImageOptions {
    let mut build_args = request.build_args.clone();
    if request.buildkit && request.inline_cache {
        // BuildKit's documented switch for the inline cache exporter.
        build_args.insert("BUILDKIT_INLINE_CACHE".to_owned(), "1".to_owned());
    }
    let mut options = BuildImageOptionsBuilder::new()
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
        .buildargs(&build_args.into_iter().collect::<HashMap<_, _>>());
    options = match session_id {
        // The context and the Dockerfile come through the session (`remote=client-session`,
        // as `docker build` asks for them).
        Some(session_id) => options
            .version(BuilderVersion::BuilderBuildKit)
            .session(session_id)
            .remote("client-session")
            .dockerfile(crate::filesync::DOCKERFILE),
        None => options.dockerfile(request.dockerfile),
    };
    if !request.cache_from.is_empty() {
        options = options.cachefrom(&request.cache_from.to_vec());
    }
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
    mut tracker: Tracker,
    writer_done: impl Fn() -> bool,
    ui: &Ui,
) -> (Option<String>, Option<EngineError>) {
    let mut image_id = None;
    let mut view = StepView::new(ui, name);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(err) => {
                failure = Some(stream_failure(name, &tracker, err, writer_done()));
                break;
            }
        };
        let mut events = Vec::new();
        match (&mut tracker, info.stream.as_deref(), info.aux) {
            (Tracker::Classic(classic), Some(text), _) => events = classic.feed(text),
            (Tracker::BuildKit(buildkit), _, Some(BuildInfoAux::BuildKit(status))) => {
                events = buildkit.feed(&status)
            }
            (_, _, Some(BuildInfoAux::Default(image))) => image_id = image.id.or(image_id),
            // BuildKit's stream also carries plain text (the image id once more, warnings).
            (Tracker::BuildKit(_), Some(text), _) => tracing::debug!("{}", text.trim()),
            _ => {}
        }
        for event in events {
            view.show(event);
        }
    }
    if let Tracker::Classic(classic) = &mut tracker {
        for event in classic.finish() {
            view.show(event);
        }
    }
    (image_id, failure)
}

/// Reads one builder's output.
enum Tracker {
    Classic(StepTracker),
    BuildKit(VertexTracker),
}

impl Tracker {
    fn failure(&self, name: &str, engine_error: &str) -> String {
        match self {
            Tracker::Classic(classic) => classic.failure(name, engine_error),
            Tracker::BuildKit(buildkit) => buildkit.failure(name, engine_error),
        }
    }
}

/// What an error in the build's stream means.
fn stream_failure(
    name: &str,
    tracker: &Tracker,
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

/// How a build's steps are shown. Off a terminal (CI, logs): a line when a step begins and
/// when it ends, and every line it prints, labelled with its step when BuildKit runs steps in
/// parallel. On a terminal, as `docker buildx` does: a line per finished step, and below them
/// a live timer per running step with the last line it printed; the output itself is shown
/// again only if the build fails (its last lines, in the error).
struct StepView<'a> {
    ui: &'a Ui,
    /// `building api` while the classic builder runs: it names the current step.
    overall: common::ui::Progress,
    /// BuildKit's running steps on a terminal: their name and timer, by vertex id.
    running: HashMap<String, (String, common::ui::Progress)>,
}

/// How much of a running step's name is shown before its last output line on a terminal
/// (`[2/5] RUN make -j4 all… › compiling foo.c`); the rest of the line is cut to fit.
const LIVE_NAME_CHARS: usize = 40;

impl<'a> StepView<'a> {
    fn new(ui: &'a Ui, name: &str) -> StepView<'a> {
        StepView {
            ui,
            overall: ui.spinner(format!("building {name}")),
            running: HashMap::new(),
        }
    }

    fn show(&mut self, event: BuildEvent) {
        let (ui, live) = (self.ui, self.ui.draws_bars());
        match event {
            BuildEvent::Step(step) => {
                self.overall.set_message(step.clone());
                ui.line(&step);
            }
            BuildEvent::Output(line) => ui.line(&format!("  {line}")),
            BuildEvent::Detail(line) => tracing::debug!("{}", line.trim()),
            BuildEvent::Began { id, name } if live => {
                let timer = ui.timer(name.clone());
                self.running.insert(id, (name, timer));
            }
            BuildEvent::Began { name, .. } => ui.line(&name),
            BuildEvent::StepOutput { id, line, .. } if live => {
                if let Some((name, timer)) = self.running.get(&id) {
                    timer.set_message(format!("{} › {line}", shorten(name, LIVE_NAME_CHARS)));
                }
            }
            BuildEvent::StepOutput { label, line, .. } => ui.line(&format!("  {label} {line}")),
            BuildEvent::Ended { id, line } => {
                // Dropping the timer clears it; the line takes its place above the others.
                self.running.remove(&id);
                ui.line(&line);
            }
        }
    }
}

/// `text` cut to `chars` characters, with `…` when it was longer.
fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
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
    fn long_step_names_are_shortened_for_the_live_view() {
        assert_eq!(shorten("[2/5] RUN make", 40), "[2/5] RUN make");
        assert_eq!(shorten("[2/5] RUN make all", 9), "[2/5] RUN…");
        assert_eq!(shorten("[1/1] RUN écho", 12), "[1/1] RUN éc…");
    }

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
    fn buildkit_needs_api_1_39() {
        assert!(api_at_least("1.41", (1, 39)));
        assert!(api_at_least("1.39", (1, 39)));
        assert!(api_at_least("2.0", (1, 39)));
        assert!(!api_at_least("1.38", (1, 39)));
        assert!(!api_at_least("", (1, 39)));
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
        let step = |message: &str| Error::from(EngineError::Step(message.into())).exit();
        assert_eq!(
            step(
                "building api failed: failed to solve with frontend dockerfile.v0: failed to create LLB definition: the Dockerfile cannot be empty"
            ),
            common::Exit::Usage
        );
        assert_eq!(
            step("building api failed at [2/2] RUN exit 3: exit code: 3"),
            common::Exit::Failed
        );
    }
}
