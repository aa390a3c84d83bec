//! img-build: builds Docker images through the Engine API, reproducibly, and only when
//! something changed.
//!
//! # What it does
//! For each `--context`, it reads the `.dockerignore` (Docker's exact rules), walks the tree
//! and makes a deterministic tar of it (sorted entries, fixed mtime, uid/gid 0, modes and
//! symlinks kept). The sha256 of that tar, with the Dockerfile's path, the build arguments,
//! target, platform and `--label`s, is the *content digest*. A local image labelled with
//! the same digest is reused (tagged, `cache_hit: true`) without calling build; otherwise
//! the tar is streamed to the classic builder (`POST /build`) and the image is built with
//! the digest as a label.
//!
//! # Modules
//! - [`dockerignore`]: `.dockerignore` parsing and matching (pure);
//! - [`plan`]: names, tag templates, labels, build arguments, the digest (pure);
//! - [`progress`]: reading the builder's output stream (pure);
//! - [`context`]: walking the tree and writing the tar (file I/O);
//! - [`engine`]: the Engine calls.

pub mod context;
pub mod dockerignore;
pub mod engine;
pub mod plan;
pub mod progress;

use common::actions::{ItemOutputs, SummaryTable, item_outputs};
use common::envelope::{Envelope, GitInfo, Image};
use common::short::short_digest;
use common::{CommonArgs, Error, Result, Ui};
use context::{Entry, HashingWriter, Source};
use engine::{BuildRequest, CachedImage, Engine};
use plan::{DigestInputs, LabelInputs, TagValues};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The tool, for [`common::main`].
pub struct ImgBuild;

const EXAMPLES: &str = "\
Examples:
  # Build services/api, tagged api:git-<short sha> and api:<branch>, then push it:
  img-build --context services/api | img-push --ecr

  # Two images in one call; the second run with unchanged contexts builds nothing:
  img-build --context services/api --context services/auth

  # Own tags and build arguments:
  img-build --context . --name web --tag 'git-{short_sha}{dirty}' --tag latest \\
            --build-arg NODE_ENV=production --build-arg NPM_TOKEN

  # What would be built, with which tags and labels, without building:
  img-build --context services/api --dry-run --pretty

Tags: without --tag, NAME:git-<short sha> and NAME:<branch>, with -dirty when the tree has
uncommitted changes. A --tag template may use {sha} {short_sha} {branch} {version} {name}
{dirty}; a template without ':' in its last path segment is a tag of NAME, otherwise a whole
reference (localhost:5000/team/{name}:{short_sha}).

Cache: the sha256 of the context tar, Dockerfile path, build args, target, platform and
--labels is stored in the label dev.shipkit.context-digest; an image carrying the same
digest is tagged and reused without building. Base images are not part of the digest:
--no-cache rebuilds (and turns off the Engine's layer cache).

Environment: every flag also reads IMG_BUILD_<FLAG> (IMG_BUILD_CONTEXT, IMG_BUILD_TAG, ...;
lists separated by ',' for contexts, files, names and tags, by newlines for build args and
labels). DOCKER_HOST chooses the Engine; SOURCE_DATE_EPOCH, when set, is the created label.";

/// img-build's flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "img-build",
    version,
    about = "Build Docker images through the Engine API, reproducibly and only when something changed.",
    after_help = EXAMPLES,
)]
pub struct Args {
    /// Build context directory; repeat to build several images in one call.
    #[arg(
        long = "context",
        value_name = "DIR",
        env = "IMG_BUILD_CONTEXT",
        value_delimiter = ',',
        default_value = "."
    )]
    pub contexts: Vec<PathBuf>,

    /// Dockerfile (default: <context>/Dockerfile); once per --context, in the same order.
    #[arg(
        long = "file",
        short = 'f',
        value_name = "PATH",
        env = "IMG_BUILD_FILE",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,

    /// Logical image name (default: the context folder's name); once per --context.
    #[arg(
        long = "name",
        value_name = "NAME",
        env = "IMG_BUILD_NAME",
        value_delimiter = ','
    )]
    pub names: Vec<String>,

    /// Tag template, repeatable; replaces the default tags (see below).
    #[arg(
        long = "tag",
        short = 't',
        value_name = "TEMPLATE",
        env = "IMG_BUILD_TAG",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,

    /// Build argument KEY=VALUE, or KEY to take the value from the environment; repeatable.
    #[arg(
        long = "build-arg",
        value_name = "KEY[=VALUE]",
        env = "IMG_BUILD_BUILD_ARG",
        value_delimiter = '\n'
    )]
    pub build_args: Vec<String>,

    /// Image label KEY=VALUE, repeatable (wins over the computed OCI labels).
    #[arg(
        long = "label",
        value_name = "KEY=VALUE",
        env = "IMG_BUILD_LABEL",
        value_delimiter = '\n',
        value_parser = common::cli::parse_key_value
    )]
    pub labels: Vec<(String, String)>,

    /// Build stage to stop at.
    #[arg(long, value_name = "STAGE", env = "IMG_BUILD_TARGET")]
    pub target: Option<String>,

    /// Target platform (os[/arch[/variant]]).
    #[arg(long, value_name = "PLATFORM", env = "IMG_BUILD_PLATFORM")]
    pub platform: Option<String>,

    /// Build even if an image with the same content digest exists, without layer cache.
    #[arg(long, env = "IMG_BUILD_NO_CACHE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,

    /// Always try to pull newer versions of the base images.
    #[arg(long, env = "IMG_BUILD_PULL", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub pull: bool,

    /// Compute digests, tags and labels (and whether the cache has the image) without
    /// building or tagging anything.
    #[arg(long, env = "IMG_BUILD_DRY_RUN", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl common::Tool for ImgBuild {
    const NAME: &'static str = "img-build";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        run(args, envelope, ui).await
    }
}

/// One image to build, decided before anything is sent.
#[derive(Debug)]
struct ImagePlan {
    name: String,
    /// The context as the user wrote it.
    context_arg: String,
    dockerfile_arg: String,
    /// The Dockerfile's path inside the tar.
    dockerfile_in_tar: String,
    /// The Dockerfile as the user wrote it.
    dockerfile_text: Vec<u8>,
    /// Whether the `.dockerignore` excludes the Dockerfile (inside the context) itself.
    dockerfile_ignored: bool,
    entries: Vec<Entry>,
    tags: Vec<String>,
    remote: Option<String>,
}

/// Decides everything, then builds (or reuses) each image in turn.
pub async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let specs = image_specs(&args)?;
    let build_args = build_args(&args.build_args)?;
    let user_labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    for template in &args.tags {
        plan::check_template(template).map_err(Error::usage)?;
    }

    let (git, no_git_reason) = match &envelope.git {
        Some(git) => (Some(git.clone()), None),
        None => match describe_git(&specs[0].context) {
            Ok(git) => (Some(git), None),
            Err(reason) => (None, Some(reason)),
        },
    };
    if envelope.git.is_none()
        && let Some(git) = &git
    {
        envelope.git = Some(git.clone());
    }
    let version = envelope.release.as_ref().map(|r| r.version.clone());

    let mut plans = Vec::new();
    let mut seen_tags: BTreeMap<String, String> = BTreeMap::new();
    for spec in &specs {
        let values = TagValues {
            name: spec.name.clone(),
            sha: git
                .as_ref()
                .map(|g| g.commit.clone())
                .filter(|c| !c.is_empty()),
            branch: git
                .as_ref()
                .and_then(|g| g.branch.clone())
                .or_else(|| plan::actions_branch(|name| std::env::var(name).ok())),
            dirty: git.as_ref().is_some_and(|g| g.dirty),
            version: version.clone(),
            no_git_reason: no_git_reason.clone(),
        };
        let mut tags = Vec::new();
        if args.tags.is_empty() {
            tags = plan::default_tags(&values).map_err(Error::usage)?;
        } else {
            for template in &args.tags {
                let tag = plan::render_tag(template, &values).map_err(Error::usage)?;
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        for tag in &tags {
            if let Some(other) = seen_tags.insert(tag.clone(), spec.name.clone()) {
                return Err(Error::usage(format!(
                    "the tag {tag} would name two images ({other} and {}); use {{name}} in --tag",
                    spec.name
                )));
            }
        }
        plans.push(plan_context(spec, tags)?);
    }

    let engine = match args.dry_run {
        false => Some(Engine::connect().await?),
        true => match Engine::connect().await {
            Ok(engine) => Some(engine),
            Err(err) => {
                tracing::warn!("dry run without the cache check: {err}");
                None
            }
        },
    };

    // SOURCE_DATE_EPOCH (reproducible builds) fixes the `created` label when set.
    let created = plan::rfc3339(
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            }),
    );
    let mut done = Vec::new();
    for plan in plans {
        let _group = ui.group(&format!("img-build {}", plan.name));
        let image = build_one(
            plan,
            &args,
            &build_args,
            &user_labels,
            git.as_ref(),
            version.as_deref(),
            &created,
            engine.as_ref(),
            ui,
        )
        .await?;
        envelope.upsert_image(image.clone());
        done.push(image);
    }
    report_outputs(&done, ui);
    Ok(())
}

/// A context, its Dockerfile and its name, checked.
#[derive(Debug)]
struct ImageSpec {
    context: PathBuf,
    context_arg: String,
    dockerfile: PathBuf,
    dockerfile_arg: String,
    name: String,
}

fn image_specs(args: &Args) -> Result<Vec<ImageSpec>> {
    let n = args.contexts.len();
    for (flag, count) in [("--file", args.files.len()), ("--name", args.names.len())] {
        if count != 0 && count != n {
            return Err(Error::usage(format!(
                "{flag} was given {count} times for {n} --context: give it once per --context, in the same order"
            )));
        }
    }
    let mut specs: Vec<ImageSpec> = Vec::new();
    for (i, context_arg) in args.contexts.iter().enumerate() {
        let shown = context_arg.display().to_string();
        let context = std::fs::canonicalize(context_arg)
            .map_err(|err| Error::usage(format!("context {shown} does not exist ({err})")))?;
        if !context.is_dir() {
            return Err(Error::usage(format!("context {shown} is not a directory")));
        }
        let dockerfile_arg = match args.files.get(i) {
            Some(file) => file.clone(),
            None => context_arg.join("Dockerfile"),
        };
        let dockerfile_shown = dockerfile_arg.display().to_string();
        let dockerfile = std::fs::canonicalize(&dockerfile_arg)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Error::usage(format!(
                    "no Dockerfile at {dockerfile_shown} (pass --file PATH)"
                ))
            })?;
        let name = match args.names.get(i) {
            Some(name) => name.clone(),
            None => {
                let folder = context
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let slug = plan::slug_name(&folder);
                if slug.is_empty() {
                    return Err(Error::usage(format!(
                        "cannot make an image name from the folder of {shown}: pass --name"
                    )));
                }
                slug
            }
        };
        plan::check_name(&name).map_err(Error::usage)?;
        if specs.iter().any(|s| s.name == name) {
            return Err(Error::usage(format!(
                "two contexts would build the image {name}: pass --name for each"
            )));
        }
        specs.push(ImageSpec {
            context,
            context_arg: shown,
            dockerfile,
            dockerfile_arg: dockerfile_shown,
            name,
        });
    }
    Ok(specs)
}

fn build_args(texts: &[String]) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for text in texts {
        match plan::parse_build_arg(text, |key| std::env::var(key).ok()).map_err(Error::usage)? {
            Some((key, value)) => {
                args.insert(key, value);
            }
            None => tracing::debug!("--build-arg {text}: not set in the environment, left out"),
        }
    }
    Ok(args)
}

/// The git state of `dir`, or why there is none.
fn describe_git(dir: &Path) -> std::result::Result<GitInfo, String> {
    common::git::describe(dir).map_err(|err| err.to_string())
}

/// Reads the `.dockerignore`, walks the context, adds a Dockerfile from outside it.
fn plan_context(spec: &ImageSpec, tags: Vec<String>) -> Result<ImagePlan> {
    let ignore_path = spec.context.join(".dockerignore");
    let ignore_text = match std::fs::read(&ignore_path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(Error::failed(format!(
                "reading {}: {err}",
                ignore_path.display()
            )));
        }
    };
    let inside = spec
        .dockerfile
        .strip_prefix(&spec.context)
        .ok()
        .map(|rel| rel.to_string_lossy().into_owned());
    let user_patterns = ignore_text
        .as_deref()
        .map(dockerignore::read_patterns)
        .unwrap_or_default();
    // Sent anyway, but removed by the Engine before any COPY (see `keep_build_files`).
    let dockerfile_ignored = inside.as_deref().is_some_and(|rel| {
        dockerignore::PatternMatcher::new(&user_patterns)
            .is_ok_and(|m| m.matches_or_parent_matches(rel))
    });
    let patterns = dockerignore::keep_build_files(user_patterns, inside.as_deref());
    let matcher = dockerignore::PatternMatcher::new(&patterns)
        .map_err(|err| Error::usage(format!("{}: {err}", ignore_path.display())))?;
    let mut entries = context::walk(&spec.context, &matcher)
        .map_err(|err| Error::failed(format!("reading the context {}: {err}", spec.context_arg)))?;

    let dockerfile_text = std::fs::read(&spec.dockerfile)
        .map_err(|err| Error::failed(format!("reading {}: {err}", spec.dockerfile_arg)))?;
    let dockerfile_in_tar = match inside {
        Some(rel) => rel,
        None => {
            // As the docker CLI does: add the outside Dockerfile under a hidden name, and
            // list that name in the .dockerignore so that it does not end up in the image.
            let hidden = hidden_dockerfile_name(&dockerfile_text);
            add_hidden_dockerfile(&mut entries, &hidden, dockerfile_text.clone()).map_err(
                |err| Error::failed(format!("reading the context {}: {err}", spec.context_arg)),
            )?;
            hidden
        }
    };
    let remote = common::git::git(&spec.context, &["remote", "get-url", "origin"])
        .ok()
        .filter(|r| !r.is_empty());
    Ok(ImagePlan {
        name: spec.name.clone(),
        context_arg: spec.context_arg.clone(),
        dockerfile_arg: spec.dockerfile_arg.clone(),
        dockerfile_in_tar,
        dockerfile_text,
        dockerfile_ignored,
        entries,
        tags,
        remote,
    })
}

/// The name under which a Dockerfile that is not sent as is (outside the context, or with
/// the labels appended) travels in the tar: the docker CLI's `.dockerfile.<id>`, named
/// after the content so that the tar stays deterministic.
fn hidden_dockerfile_name(content: &[u8]) -> String {
    let mut hasher = HashingWriter::default();
    // Writing to a hasher cannot fail.
    let _ = std::io::Write::write_all(&mut hasher, content);
    format!(".dockerfile.{}", &hasher.finish()[..20])
}

/// Puts `content` in the tar as `hidden` (replacing it if already there) and lists `hidden`
/// in the tar's `.dockerignore`, so that the Engine removes it before any `COPY`.
fn add_hidden_dockerfile(
    entries: &mut Vec<Entry>,
    hidden: &str,
    content: Vec<u8>,
) -> std::io::Result<()> {
    if let Some(entry) = entries.iter_mut().find(|e| e.name == hidden.as_bytes()) {
        entry.source = Source::Bytes(content);
        return Ok(());
    }
    let ignore = entries.iter_mut().find(|e| e.name == b".dockerignore");
    let mut text = match ignore.as_ref().map(|e| &e.source) {
        Some(Source::File(path)) => std::fs::read(path)?,
        Some(Source::Bytes(bytes)) => bytes.clone(),
        // As the docker CLI does: a .dockerignore made here ignores itself too.
        _ => b".dockerignore".to_vec(),
    };
    text.extend_from_slice(format!("\n{hidden}\n").as_bytes());
    match ignore {
        Some(entry) => entry.source = Source::Bytes(text),
        None => entries.push(Entry {
            name: b".dockerignore".to_vec(),
            mode: 0o644,
            source: Source::Bytes(text),
        }),
    }
    entries.push(Entry {
        name: hidden.as_bytes().to_vec(),
        mode: 0o644,
        source: Source::Bytes(content),
    });
    Ok(())
}

/// Drops the entry `name`, adding entries for its parent directories that the tar lacks (as
/// extracting then removing it would have left them).
fn remove_entry_keeping_parents(entries: &mut Vec<Entry>, name: &str) {
    let Some(index) = entries.iter().position(|e| e.name == name.as_bytes()) else {
        return;
    };
    entries.remove(index);
    let mut parents = Vec::new();
    let mut path = name;
    while let Some((parent, _)) = path.rsplit_once('/') {
        if !entries.iter().any(|e| e.name == parent.as_bytes()) {
            parents.push(Entry {
                name: parent.as_bytes().to_vec(),
                mode: 0o755,
                source: Source::Dir,
            });
        }
        path = parent;
    }
    for (offset, parent) in parents.into_iter().rev().enumerate() {
        entries.insert(index + offset, parent);
    }
}

#[allow(clippy::too_many_arguments)]
async fn build_one(
    plan: ImagePlan,
    args: &Args,
    build_args: &BTreeMap<String, String>,
    user_labels: &BTreeMap<String, String>,
    git: Option<&GitInfo>,
    version: Option<&str>,
    created: &str,
    engine: Option<&Engine>,
    ui: &Ui,
) -> Result<Image> {
    let name = plan.name.clone();
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
            build_args: build_args.clone(),
            target: args.target.clone(),
            platform: args.platform.clone(),
            labels: user_labels.clone(),
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
    let labels = plan::labels(&LabelInputs {
        name: name.clone(),
        commit: git.map(|g| g.commit.clone()).filter(|c| !c.is_empty()),
        source: plan.remote.clone(),
        created: created.to_owned(),
        version: version.map(str::to_owned),
        user: user_labels.clone(),
        digest: digest.clone(),
    });
    let mut image = Image {
        name: name.clone(),
        context: Some(plan.context_arg.clone()),
        dockerfile: Some(plan.dockerfile_arg.clone()),
        tags: plan.tags.clone(),
        labels: labels.clone(),
        cache_hit: Some(false),
        context_bytes: Some(context_bytes),
        dry_run: args.dry_run,
        ..Image::default()
    };

    let cached: Option<CachedImage> = match (engine, args.no_cache) {
        (Some(engine), false) => engine.find_by_digest(&digest).await?,
        _ => None,
    };
    if let Some(cached) = cached {
        image.id = Some(cached.id.clone());
        image.cache_hit = Some(true);
        // The image keeps the labels of the build that made it (its revision, its time).
        image.labels = cached.labels;
        if !args.dry_run
            && let Some(engine) = engine
        {
            for tag in &plan.tags {
                engine.tag(&cached.id, tag).await?;
            }
        }
        ui.line(&format!(
            "{name}: unchanged, reusing {} as {}",
            short_digest(&cached.id),
            plan.tags.join(", ")
        ));
        return Ok(image);
    }
    if args.dry_run {
        image.cache_hit = engine.map(|_| false);
        ui.line(&format!(
            "{name}: would build as {} (dry run)",
            plan.tags.join(", ")
        ));
        return Ok(image);
    }
    let engine = engine.ok_or_else(|| Error::failed("no Docker Engine connection"))?;
    // The classic builder commits one step per label passed as a build parameter; one LABEL
    // instruction appended to (a hidden copy of) the Dockerfile sets them all in one step.
    let mut entries = plan.entries;
    let mut dockerfile = plan.dockerfile_in_tar.clone();
    let mut label_param = labels.clone();
    let text = String::from_utf8_lossy(&plan.dockerfile_text);
    if let Some(labelled) = plan::dockerfile_with_labels(&text, &labels, args.target.as_deref()) {
        let hidden = hidden_dockerfile_name(&plan.dockerfile_text);
        add_hidden_dockerfile(&mut entries, &hidden, labelled.into_bytes()).map_err(|err| {
            Error::failed(format!("reading the context {}: {err}", plan.context_arg))
        })?;
        if plan.dockerfile_ignored {
            // The Engine would have removed it as the Dockerfile; it is not that any more.
            remove_entry_keeping_parents(&mut entries, &plan.dockerfile_in_tar);
        }
        dockerfile = hidden;
        label_param.clear();
    }
    let started = Instant::now();
    let entries = std::sync::Arc::new(entries);
    let request = || BuildRequest {
        name: &name,
        entries: entries.clone(),
        dockerfile: &dockerfile,
        tags: &plan.tags,
        labels: &label_param,
        build_args,
        target: args.target.as_deref(),
        platform: args.platform.as_deref(),
        no_cache: args.no_cache,
        pull: args.pull,
    };
    let id = match engine.build(request(), ui).await {
        Err(err) if is_cache_lookup_race(&err.to_string()) => {
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
    let build_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    ui.line(&format!(
        "{name}: built {} in {:.1}s as {}",
        short_digest(&id),
        build_ms as f64 / 1000.0,
        plan.tags.join(", ")
    ));
    image.id = Some(id);
    image.build_ms = Some(build_ms);
    Ok(image)
}

/// Whether a failed build met the classic builder's cache-lookup race: looking for a cached
/// step, the Engine lists candidate images and then loads each; an image removed in between
/// (`docker rmi`, `docker image prune` by a parallel job) fails the whole build with
/// "unable to find image sha256:…", though nothing is wrong with it. Building again is safe.
fn is_cache_lookup_race(message: &str) -> bool {
    message.contains("unable to find image \"sha256:")
}

/// Step outputs and the step summary under GitHub Actions.
fn report_outputs(images: &[Image], ui: &Ui) {
    let outputs: Vec<ItemOutputs> = images
        .iter()
        .map(|image| ItemOutputs {
            name: image.name.clone(),
            values: vec![
                ("image_id", image.id.clone().unwrap_or_default()),
                ("tags", image.tags.join(" ")),
            ],
        })
        .collect();
    ui.set_outputs(&item_outputs(&outputs));
    let mut table = SummaryTable::new(&["image", "tags", "id", "cache"]);
    for image in images {
        table.row([
            image.name.clone(),
            image.tags.join("<br>"),
            format!("`{}`", image.id.as_deref().map(short_digest).unwrap_or("-")),
            match (image.cache_hit, image.dry_run) {
                (_, true) => "dry run",
                (Some(true), _) => "reused",
                _ => "built",
            }
            .to_owned(),
        ]);
    }
    ui.summary(&table.to_markdown());
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

    fn entry(name: &str, source: Source) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: 0o644,
            source,
        }
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(Entry::name_lossy).collect()
    }

    #[test]
    fn a_removed_dockerfile_leaves_its_folders() {
        let mut entries = vec![
            entry("a", Source::Bytes(vec![])),
            entry("build/ci/Dockerfile", Source::Bytes(vec![])),
            entry("z", Source::Bytes(vec![])),
        ];
        remove_entry_keeping_parents(&mut entries, "build/ci/Dockerfile");
        assert_eq!(names(&entries), ["a", "build", "build/ci", "z"]);
        remove_entry_keeping_parents(&mut entries, "missing");
        assert_eq!(entries.len(), 4);
    }

    #[test]
    fn a_hidden_dockerfile_is_listed_in_the_dockerignore() {
        let hidden = hidden_dockerfile_name(b"FROM scratch\n");
        assert_eq!(hidden, hidden_dockerfile_name(b"FROM scratch\n"));
        assert!(
            hidden.starts_with(".dockerfile.") && hidden.len() == 32,
            "{hidden}"
        );

        let mut fresh = vec![entry("app", Source::Bytes(vec![]))];
        add_hidden_dockerfile(&mut fresh, &hidden, b"X".to_vec()).unwrap();
        assert_eq!(names(&fresh), ["app", ".dockerignore", hidden.as_str()]);
        assert_eq!(
            fresh[1].source,
            Source::Bytes(format!(".dockerignore\n{hidden}\n").into_bytes())
        );

        let mut existing = vec![entry(".dockerignore", Source::Bytes(b"*.md".to_vec()))];
        add_hidden_dockerfile(&mut existing, &hidden, b"X".to_vec()).unwrap();
        add_hidden_dockerfile(&mut existing, &hidden, b"Y".to_vec()).unwrap();
        assert_eq!(
            existing[0].source,
            Source::Bytes(format!("*.md\n{hidden}\n").into_bytes())
        );
        assert_eq!(existing[1].source, Source::Bytes(b"Y".to_vec()));
    }
}
