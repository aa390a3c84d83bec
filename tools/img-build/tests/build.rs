//! img-build against the real Docker Engine (`scripts/services up docker`).
//!
//! Every test makes its own `FROM scratch` context in a temp dir (busybox from Debian's
//! `busybox-static` as the payload), names its images uniquely so tests run in parallel,
//! and removes its images at the end. A test that needs the Engine fails, loudly, when the
//! Engine cannot be reached.

use serde_json::{Value, json};
use shipkit_tests::docker::{busybox, docker, require_engine};
use shipkit_tests::{Cmd, Output, unique};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn img_build() -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_img-build"))
}

/// Panics with a clear message when dockerd is not reachable: these tests must not pass
/// without it.
fn require_docker() {
    require_engine();
    busybox();
}

/// Removes the images named by these references when dropped (best effort).
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = docker(&["rmi", "-f", reference]);
        }
    }
}

/// Removes every image, intermediate ones included, carrying the label
/// `dev.shipkit.test=<value>` when dropped: a failed or interrupted build leaves its
/// intermediate images untagged, and only a label set by the Dockerfile's first step finds
/// them (best effort).
struct CleanupLabelled(String);

impl Drop for CleanupLabelled {
    fn drop(&mut self) {
        let filter = format!("label=dev.shipkit.test={}", self.0);
        let out = docker(&["images", "-a", "-q", "--filter", &filter]);
        let ids: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        for id in ids {
            let _ = docker(&["rmi", "-f", &id]);
        }
    }
}

/// A build context in a temp dir: busybox plus the given Dockerfile.
struct Context {
    dir: tempfile::TempDir,
}

impl Context {
    fn new(dockerfile: &str) -> Context {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(busybox(), dir.path().join("busybox")).unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        // Unique content, so that no test reuses another test's image by its digest.
        std::fs::write(dir.path().join("id.txt"), unique("imgb-context")).unwrap();
        Context { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn arg(&self) -> String {
        self.path().display().to_string()
    }

    fn write(&self, rel: &str, content: &str) -> &Context {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }
}

/// The paths in the image's filesystem under `prefix/` (via `docker create` + `export`),
/// with the kind of each entry.
fn files_in_image(reference: &str, prefix: &str) -> BTreeSet<String> {
    let created = docker(&["create", reference, "/bin/busybox"]);
    assert!(created.status.success(), "docker create: {created:?}");
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let exported = docker(&["export", &id]);
    let _ = docker(&["rm", "-f", &id]);
    assert!(exported.status.success(), "docker export failed");
    let mut archive = tar::Archive::new(exported.stdout.as_slice());
    let mut files = BTreeSet::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let rel = match prefix {
            "" => Some(path.as_str()),
            _ => path.strip_prefix(&format!("{prefix}/")),
        };
        if let Some(rel) = rel {
            let kind = match entry.header().entry_type() {
                tar::EntryType::Symlink => format!(
                    " -> {}",
                    entry.link_name().unwrap().unwrap().to_string_lossy()
                ),
                tar::EntryType::Directory => "/".to_owned(),
                _ => String::new(),
            };
            files.insert(format!("{rel}{kind}"));
        }
    }
    files
}

/// The content of one file in the image.
fn file_in_image(reference: &str, path: &str) -> String {
    let out = docker(&["run", "--rm", reference, "/bin/busybox", "cat", path]);
    assert!(out.status.success(), "docker run cat {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The labels of an image, as the Engine reports them.
fn image_labels(reference: &str) -> Value {
    let out = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        reference,
    ]);
    assert!(out.status.success(), "{reference} does not exist");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

fn image_id(reference: &str) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    assert!(out.status.success(), "{reference} does not exist");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The one image of a successful run.
fn only_image(out: &Output) -> Value {
    out.assert_code(0);
    let envelope = out.json();
    let images = envelope["images"].as_array().expect("images[]");
    assert_eq!(images.len(), 1, "{envelope}");
    images[0].clone()
}

/// Every test Dockerfile copies the context's unique `id.txt` first, so that no two tests
/// share a cached layer: one test removing its images must not prune a parent another
/// test's build is using (the classic builder fails with "unknown parent image ID").
const SIMPLE: &str = "FROM scratch\nCOPY id.txt /id.txt\nCOPY busybox /bin/busybox\nCOPY . /ctx\n";

#[test]
fn dockerignore_decides_what_reaches_the_image() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    ctx.write(
        ".dockerignore",
        "# a comment line\n\
         **/*.log\n\
         docs/\n\
         !docs/keep.md\n\
         /build\n\
         *.tmp\n\
         !important.tmp\n\
         secret?.txt\n\
         Dockerfile\n\
         nested/**/cache\n",
    )
    .write("a.txt", "a")
    .write("x.log", "x")
    .write("sub/y.log", "y")
    .write("sub/keep.txt", "k")
    .write("docs/keep.md", "keep")
    .write("docs/drop.md", "drop")
    .write("build/out.bin", "bin")
    .write("z.tmp", "z")
    .write("important.tmp", "i")
    .write("secret1.txt", "s")
    .write("secret10.txt", "s10")
    .write("# a comment line", "not a comment: a file")
    .write("nested/a/b/cache/c.bin", "c")
    .write("nested/a/kept.txt", "kept");
    std::os::unix::fs::symlink("a.txt", ctx.path().join("link")).unwrap();
    let name = unique("imgb-ignore");
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);

    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .run();
    only_image(&out);

    let files = files_in_image(&tag, "ctx");
    let expected: BTreeSet<String> = [
        "# a comment line",
        ".dockerignore",
        "a.txt",
        "busybox",
        "docs/",
        "docs/keep.md",
        "id.txt",
        "important.tmp",
        "link -> a.txt",
        "nested/",
        "nested/a/",
        "nested/a/b/",
        "nested/a/kept.txt",
        "secret10.txt",
        "sub/",
        "sub/keep.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // The Dockerfile was sent (the build ran) and, being ignored, is not copied.
    assert_eq!(files, expected);
}

#[test]
fn build_args_reach_run_steps_from_flags_and_the_environment() {
    require_docker();
    let ctx = Context::new(
        "FROM scratch\nCOPY id.txt /id.txt\nCOPY busybox /bin/busybox\nSHELL [\"/bin/busybox\", \"sh\", \"-c\"]\n\
         ARG GREETING\nARG FROM_ENV\nARG UNSET=default\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING $FROM_ENV $UNSET > /args\"]\n",
    );
    let name = unique("imgb-args");
    let _cleanup = Cleanup(vec![format!("{name}:t")]);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .args([
            "--build-arg",
            "GREETING=hello world",
            "--build-arg",
            "FROM_ENV",
        ])
        .args(["--build-arg", "UNSET"])
        .env("FROM_ENV", "from-env")
        .env_remove("UNSET")
        .run();
    only_image(&out);
    assert_eq!(
        file_in_image(&format!("{name}:t"), "/args"),
        "hello world from-env default\n"
    );
}

#[test]
fn a_failing_run_step_fails_with_the_step_and_its_output() {
    require_docker();
    let name = unique("imgb-fail");
    let ctx = Context::new(&format!(
        "FROM scratch\nLABEL dev.shipkit.test={name}\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo preparing; echo boom >&2; exit 3\"]\n",
    ));
    let _intermediates = CleanupLabelled(name.clone());
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let build = |builder: &str| {
        let out = img_build()
            .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
            .args(["--builder", builder])
            .run();
        out.assert_code(1);
        let envelope = out.json();
        assert_eq!(envelope["failed"]["tool"], "img-build");
        assert_eq!(envelope["failed"]["exit_code"], 1);
        let error = envelope["failed"]["error"].as_str().unwrap().to_owned();
        assert!(error.contains("\n  boom"), "{error}");
        assert!(error.contains("\n  preparing"), "{error}");
        assert!(!error.contains('\u{1b}'), "terminal escapes in {error:?}");
        assert!(
            out.stderr.contains("img-build: error: building"),
            "{}",
            out.stderr
        );
        assert!(!image_exists(&tag));
        error
    };
    // BuildKit (the default) numbers the steps that make layers: COPY, RUN.
    let error = build("buildkit");
    assert!(
        error.contains("failed at [2/2] RUN [\"/bin/busybox\""),
        "{error}"
    );
    assert!(error.contains("exit code: 3"), "{error}");
    // The classic builder is still there, with its own numbering.
    let error = build("classic");
    assert!(error.contains("Step 4/"), "{error}");
    assert!(error.contains(" : RUN [\"/bin/busybox\""), "{error}");
    assert!(error.contains("returned a non-zero code: 3"), "{error}");
}

/// On a terminal BuildKit's steps are drawn live, as `docker buildx` draws them: a timer per
/// running step with the last line it printed, and a line per finished step; the step's
/// output is not printed line by line (the plain lines are for logs).
#[test]
fn on_a_terminal_running_steps_are_drawn_live_with_their_last_line() {
    require_docker();
    let ctx = Context::new(&format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n{BUSYBOX_SHELL}\
         RUN for i in 1 2 3 4 5 6; do echo tick $i; /bin/busybox sleep 0.4; done\n",
    ));
    let name = unique("imgb-live");
    let _cleanup = Cleanup(vec![format!("{name}:t")]);
    let out_dir = tempfile::tempdir().unwrap();
    let envelope = out_dir.path().join("envelope.json");
    let command = format!(
        "{} --context {} --name {name} --tag t --no-cache > {}",
        env!("CARGO_BIN_EXE_img-build"),
        ctx.arg(),
        envelope.display()
    );
    // `script` gives the tool a terminal and records what it drew.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("GITHUB_ACTIONS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(std::fs::read_to_string(&envelope).unwrap().contains(&name));
    assert!(screen.contains("RUN for i in"), "{screen}");
    assert!(
        screen.contains(" DONE "),
        "the finished step's line: {screen}"
    );
    assert!(
        screen.contains("› tick"),
        "the live line of the running step: {screen}"
    );
    assert!(
        !screen.contains("] tick"),
        "output printed line by line: {screen}"
    );
}

#[test]
fn an_unchanged_context_is_reused_and_a_one_byte_change_rebuilds() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    ctx.write("app.txt", "version 1\n");
    let name = unique("imgb-cache");
    let _cleanup = Cleanup(vec![
        format!("{name}:first"),
        format!("{name}:second"),
        format!("{name}:third"),
    ]);
    let build = |tag: &str| {
        img_build()
            .args(["--context", &ctx.arg(), "--name", &name, "--tag", tag])
            .run()
    };

    let first = build("first");
    let built = only_image(&first);
    assert_eq!(built["cache_hit"], false);
    assert!(built["build_ms"].as_u64().is_some(), "{built}");
    assert!(
        first.stderr.contains("[1/3] COPY id.txt /id.txt"),
        "{}",
        first.stderr
    );
    let id = built["id"].as_str().unwrap().to_owned();

    let second = build("second");
    let reused = only_image(&second);
    assert_eq!(reused["cache_hit"], true, "{reused}");
    assert_eq!(reused["id"], id.as_str());
    assert!(reused.get("build_ms").is_none(), "{reused}");
    assert!(
        !second.stderr.contains("[1/3]"),
        "built again:\n{}",
        second.stderr
    );
    assert_eq!(reused["context_bytes"], built["context_bytes"]);
    // The reused image got the new tag, and still answers to the old one.
    assert_eq!(image_id(&format!("{name}:second")), id);
    assert_eq!(image_id(&format!("{name}:first")), id);

    ctx.write("app.txt", "version 2\n");
    let third = build("third");
    let rebuilt = only_image(&third);
    assert_eq!(rebuilt["cache_hit"], false);
    assert_ne!(rebuilt["id"], id.as_str());
    assert_eq!(
        file_in_image(&format!("{name}:third"), "/ctx/app.txt"),
        "version 2\n"
    );
}

#[test]
fn no_cache_builds_even_when_nothing_changed() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-nocache");
    let _cleanup = Cleanup(vec![format!("{name}:a"), format!("{name}:b")]);
    let args = ["--context", &ctx.arg(), "--name", &name];
    only_image(&img_build().args(args).args(["--tag", "a"]).run());
    let out = img_build()
        .args(args)
        .args(["--tag", "b", "--no-cache", "--pull"])
        .run();
    let image = only_image(&out);
    assert_eq!(image["cache_hit"], false);
    // Every step ran again: none came from BuildKit's cache.
    assert!(
        out.stderr.contains("[3/3] COPY . /ctx DONE"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("CACHED"), "{}", out.stderr);
}

#[test]
fn two_contexts_in_one_call_and_chained_calls_append() {
    require_docker();
    let api = Context::new(SIMPLE);
    api.write("who", "api");
    let auth = Context::new(SIMPLE);
    auth.write("who", "auth");
    let (api_name, auth_name) = (unique("imgb-api"), unique("imgb-auth"));
    let _cleanup = Cleanup(vec![format!("{api_name}:t"), format!("{auth_name}:t")]);
    let upstream = json!({
        "schema": "shipkit/v1",
        "images": [{"name": "earlier", "tags": ["earlier:1"]},
                   {"name": api_name, "tags": ["stale"]}],
        "custom": {"kept": true}
    });
    let out = img_build()
        .args(["--context", &api.arg(), "--context", &auth.arg()])
        .args(["--name", &api_name, "--name", &auth_name, "--tag", "t"])
        .stdin_json(&upstream)
        .run();
    out.assert_code(0);
    let envelope = out.json();
    let names: Vec<&str> = envelope["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["earlier", api_name.as_str(), auth_name.as_str()]);
    assert_eq!(
        envelope["images"][1]["tags"],
        json!([format!("{api_name}:t")])
    );
    assert_eq!(envelope["custom"], json!({"kept": true}));
    assert_eq!(file_in_image(&format!("{api_name}:t"), "/ctx/who"), "api");
    assert_eq!(file_in_image(&format!("{auth_name}:t"), "/ctx/who"), "auth");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn default_tags_follow_git_and_a_dirty_tree_says_so() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    ctx.write("app.txt", "one\n");
    git(ctx.path(), &["init", "-q", "-b", "Feature/Login"]);
    git(
        ctx.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://bot:s3cret-token@example.com/org/repo.git",
        ],
    );
    git(ctx.path(), &["add", "."]);
    git(ctx.path(), &["commit", "-q", "-m", "first"]);
    let sha = git(ctx.path(), &["rev-parse", "HEAD"]);
    let short = &sha[..7];
    let name = unique("imgb-git");
    let clean_tags = [
        format!("{name}:git-{short}"),
        format!("{name}:feature-login"),
    ];
    let dirty_tags = [
        format!("{name}:git-{short}-dirty"),
        format!("{name}:feature-login-dirty"),
    ];
    let _cleanup = Cleanup(clean_tags.iter().chain(&dirty_tags).cloned().collect());

    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name])
        .run();
    let image = only_image(&out);
    assert_eq!(image["tags"], json!(clean_tags));
    let envelope = out.json();
    assert_eq!(envelope["git"]["commit"], sha.as_str());
    assert_eq!(envelope["git"]["branch"], "Feature/Login");
    assert_eq!(envelope["git"]["dirty"], false);
    let labels = &image["labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.com/org/repo.git"
    );
    assert_eq!(labels["org.opencontainers.image.title"], name.as_str());
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
    for tag in &clean_tags {
        assert_eq!(image_id(tag), image["id"].as_str().unwrap());
    }
    assert_eq!(image_labels(&clean_tags[0]), image["labels"]);
    // BuildKit sets all labels in the image config, in no step of its own; the image has the
    // user's Dockerfile and .dockerignore.
    assert!(!out.stderr.contains("LABEL"), "{}", out.stderr);
    assert_eq!(file_in_image(&clean_tags[0], "/ctx/Dockerfile"), SIMPLE);
    let files = files_in_image(&clean_tags[0], "ctx");
    assert!(
        !files.iter().any(|f| f.starts_with(".dockerfile")),
        "{files:?}"
    );
    assert!(!files.contains(".dockerignore"), "{files:?}");

    ctx.write("app.txt", "two\n");
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name])
        .run();
    let image = only_image(&out);
    assert_eq!(image["tags"], json!(dirty_tags));
    assert_eq!(out.json()["git"]["dirty"], true);
    assert!(image_exists(&dirty_tags[0]));
}

#[test]
fn templates_use_the_upstream_git_and_release() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-tpl");
    let expected = [format!("{name}:v1.4.0"), format!("{name}:abcdef1-main")];
    let _cleanup = Cleanup(expected.to_vec());
    let upstream = json!({
        "git": {"commit": "abcdef1234567890abcdef1234567890abcdef12", "branch": "main", "dirty": false},
        "release": {"version": "1.4.0", "tag": "v1.4.0"}
    });
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name])
        .args([
            "--tag",
            "v{version}",
            "--tag",
            "{short_sha}-{branch}{dirty}",
        ])
        .env("SOURCE_DATE_EPOCH", "1714564800")
        .stdin_json(&upstream)
        .run();
    let image = only_image(&out);
    assert_eq!(image["tags"], json!(expected));
    assert_eq!(image["labels"]["org.opencontainers.image.version"], "1.4.0");
    assert_eq!(
        image["labels"]["org.opencontainers.image.created"],
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(
        image["labels"]["org.opencontainers.image.revision"],
        "abcdef1234567890abcdef1234567890abcdef12"
    );
}

#[test]
fn a_dockerfile_outside_the_context_is_sent_but_not_copied() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    std::fs::remove_file(ctx.path().join("Dockerfile")).unwrap();
    ctx.write("app.txt", "x");
    let elsewhere = tempfile::tempdir().unwrap();
    let dockerfile: PathBuf = elsewhere.path().join("Build.dockerfile");
    std::fs::write(&dockerfile, SIMPLE).unwrap();
    let name = unique("imgb-outside");
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .args(["--file", &dockerfile.display().to_string()])
        .run();
    only_image(&out);
    let files = files_in_image(&tag, "ctx");
    assert_eq!(
        files,
        ["app.txt", "busybox", "id.txt"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

#[test]
fn dry_run_computes_everything_and_builds_nothing() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-dry");
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let out = img_build()
        .args([
            "--context",
            &ctx.arg(),
            "--name",
            &name,
            "--tag",
            "t",
            "--dry-run",
        ])
        .run();
    let image = only_image(&out);
    assert_eq!(image["dry_run"], true);
    assert_eq!(image["cache_hit"], false);
    assert_eq!(image["tags"], json!([tag]));
    assert!(
        image["labels"]["dev.shipkit.context-digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(image.get("id").is_none());
    assert!(!image_exists(&tag));
}

#[test]
fn bad_input_exits_2_before_anything_is_built() {
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-bad");
    let tag = format!("{name}:t");
    let base = ["--context", &ctx.arg(), "--name", &name, "--tag", "t"];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--context".into(),
                "/nonexistent/ctx".into(),
                "--tag".into(),
                "t".into(),
            ],
            "does not exist",
        ),
        (
            vec!["--file".into(), "/nonexistent/Dockerfile".into()],
            "no Dockerfile at /nonexistent/Dockerfile",
        ),
        (vec!["--build-arg".into(), "=x".into()], "bad --build-arg"),
        (
            vec!["--tag".into(), "{nope}".into()],
            "unknown placeholder {nope}",
        ),
        (vec!["--tag".into(), "{version}".into()], "no release"),
    ];
    for (extra, needle) in cases {
        let args: Vec<String> = if extra[0] == "--context" {
            extra.clone()
        } else {
            base.iter()
                .map(|s| s.to_string())
                .chain(extra.clone())
                .collect()
        };
        let out = img_build().args(&args).run();
        out.assert_usage_error(needle);
        assert_eq!(out.json()["failed"]["exit_code"], 2, "{args:?}");
    }
    // Outside git, the default tag has no commit to name.
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name])
        .run();
    out.assert_usage_error("pass --tag");
    // A bad .dockerignore pattern is bad input too.
    ctx.write(".dockerignore", "[\n");
    let out = img_build().args(base).run();
    out.assert_usage_error("bad pattern");
    if docker(&["version"]).status.success() {
        assert!(!image_exists(&tag));
    }
}

#[test]
fn an_unreachable_engine_is_a_job_failure_that_names_it() {
    let ctx = Context::new(SIMPLE);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", "x", "--tag", "t"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("cannot reach the Docker Engine at unix:///nonexistent/docker.sock"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json()["failed"]["exit_code"], 1);
}

#[test]
fn upstream_failure_is_passed_through() {
    let upstream = json!({"failed": {"tool": "release-tag", "error": "x", "exit_code": 1}});
    let out = img_build().args(["--tag", "t"]).stdin_json(&upstream).run();
    out.assert_code(3);
    assert_eq!(out.json()["failed"]["tool"], "release-tag");
}

#[test]
fn under_github_actions_each_image_is_a_group_with_outputs() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-actions");
    let _cleanup = Cleanup(vec![format!("{name}:t")]);
    let files = tempfile::tempdir().unwrap();
    let output = files.path().join("output");
    let summary = files.path().join("summary");
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", output.display().to_string())
        .env("GITHUB_STEP_SUMMARY", summary.display().to_string())
        .run();
    let image = only_image(&out);
    assert!(
        out.stderr.contains(&format!("::group::img-build {name}\n")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("::endgroup::"), "{}", out.stderr);
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(
        outputs.contains(&format!("image_id={}\n", image["id"].as_str().unwrap())),
        "{outputs}"
    );
    assert!(outputs.contains(&format!("tags={name}:t\n")), "{outputs}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains(&format!("| {name} |")), "{summary}");
}

#[test]
fn a_dockerfile_the_engine_cannot_parse_is_bad_input() {
    require_docker();
    let ctx = Context::new("FROM scratch\nBOGUS instruction\n");
    let name = unique("imgb-parse");
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .run();
    out.assert_code(2);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("unknown instruction: BOGUS"), "{error}");
    assert!(!image_exists(&format!("{name}:t")));
}

/// The files `docker build` itself (the CLI's legacy builder path) puts in the image for the
/// same context and `.dockerignore`: the reference img-build must agree with.
fn files_docker_sends(ctx: &Context, reference: &str) -> BTreeSet<String> {
    files_docker_sends_with(ctx, reference, &[])
}

fn files_docker_sends_with(ctx: &Context, reference: &str, extra: &[&str]) -> BTreeSet<String> {
    let context = ctx.arg();
    // --no-cache: the legacy builder's cache lookup races the other tests' `docker rmi` of
    // the parent images it would reuse ("unable to find image"); these builds are small.
    let mut args = vec!["build", "-q", "--no-cache", "-t", reference];
    args.extend(extra);
    args.push(&context);
    let out = docker(&args); // the legacy builder (DOCKER_BUILDKIT=0)
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_in_image(reference, "ctx")
}

#[test]
fn dockerignore_agrees_with_docker_build_itself() {
    require_docker();
    let cases = [
        "**/*.md\n!README*.md\nREADME-secret.md\n",
        "vendor\n!**/*.go\n",
        "*\n!dir\n",
        "dir/*/\n.hidden\n**/.x\n",
        "/dir/sub\n!dir/sub/b.md\n",
        "deep/**/d.log\nfoo\\[1\\].txt\n",
        "**\n!dir/sub/**\n",
        "node_modules/\n*.txt\n!a.txt\n",
        "[a-c]*\n!a.txt\n",
        "dir\n!dir/sub\ndir/sub/.x\n",
        "  # not a comment\n# a comment\n\n./dir/../vendor/\n*/keep\n",
        "?.txt\ndeep/*/b\n!deep/a/b/c\n",
    ];
    for (i, ignore) in cases.iter().enumerate() {
        let ctx = Context::new("FROM scratch\nCOPY . /ctx\n");
        for file in [
            "a.txt",
            "b.txt",
            ".hidden",
            "README.md",
            "README-secret.md",
            "CHANGES.md",
            "dir/a.txt",
            "dir/sub/b.md",
            "dir/sub/.x",
            "dir/other/c.txt",
            "vendor/lib.go",
            "vendor/keep/x.go",
            "node_modules/p/index.js",
            "foo[1].txt",
            "weird name.txt",
            "deep/a/b/c/d.log",
            "deep/a/b/e.txt",
            "  # not a comment",
        ] {
            ctx.write(file, file);
        }
        ctx.write(".dockerignore", ignore);
        let name = unique("imgb-agree");
        let (ours, theirs) = (format!("{name}:ours"), format!("{name}:docker"));
        let _cleanup = Cleanup(vec![ours.clone(), theirs.clone()]);
        let out = img_build()
            .args(["--context", &ctx.arg(), "--name", &name, "--tag", "ours"])
            .run();
        only_image(&out);
        assert_eq!(
            files_in_image(&ours, "ctx"),
            files_docker_sends(&ctx, &theirs),
            "case {i}: .dockerignore {ignore:?}"
        );
    }
}

#[test]
fn an_interrupted_build_exits_130_and_leaves_no_image() {
    require_docker();
    let name = unique("imgb-interrupt");
    let ctx = Context::new(&format!(
        "FROM scratch\nLABEL dev.shipkit.test={name}\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo started; sleep 60\"]\n",
    ));
    let _intermediates = CleanupLabelled(name.clone());
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_img-build"))
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the RUN step has started, reading stderr line by line.
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("started"));
    assert!(started, "the RUN step never started");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let begun = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(
        begun.elapsed().as_secs() < 30,
        "took {:?} to stop",
        begun.elapsed()
    );
    let envelope: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(envelope["failed"]["exit_code"], 130);
    assert!(!image_exists(&tag));
}

#[test]
fn a_target_stage_is_built_and_labelled() {
    require_docker();
    let ctx = Context::new(
        "FROM scratch AS base\nCOPY id.txt /stage-base\nCOPY busybox /bin/busybox\n\
         FROM base AS final\nCOPY id.txt /stage-final\n",
    );
    let name = unique("imgb-target");
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let out = img_build()
        .args([
            "--context",
            &ctx.arg(),
            "--name",
            &name,
            "--tag",
            "t",
            "--target",
            "base",
        ])
        .args(["--label", "team=core \"quoted\" $NOT_EXPANDED"])
        .run();
    let image = only_image(&out);
    let labels = image_labels(&tag);
    assert_eq!(labels, image["labels"]);
    assert_eq!(labels["team"], "core \"quoted\" $NOT_EXPANDED");
    let files = files_in_image(&tag, "");
    assert!(files.contains("stage-base"), "{files:?}");
    assert!(!files.contains("stage-final"), "{files:?}");

    // Without --target the labels are one appended instruction; quoting survives it.
    let whole = unique("imgb-whole");
    let _cleanup_whole = Cleanup(vec![format!("{whole}:t")]);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &whole, "--tag", "t"])
        .args(["--label", "team=core \"quoted\" $NOT_EXPANDED"])
        .run();
    let image = only_image(&out);
    let labels = image_labels(&format!("{whole}:t"));
    assert_eq!(labels, image["labels"]);
    assert_eq!(labels["team"], "core \"quoted\" $NOT_EXPANDED");
    assert!(files_in_image(&format!("{whole}:t"), "").contains("stage-final"));
}

#[test]
fn an_ignored_dockerfile_in_a_subfolder_agrees_with_docker_build() {
    require_docker();
    let ctx = Context::new("FROM scratch\nCOPY . /ctx\n");
    std::fs::rename(ctx.path().join("Dockerfile"), ctx.path().join("id.txt.tmp")).unwrap();
    ctx.write("build/Dockerfile", "FROM scratch\nCOPY . /ctx\n")
        .write("build/notes.txt", "n")
        .write("app.txt", "a")
        .write(".dockerignore", "build\nid.txt.tmp\n");
    let name = unique("imgb-subdf");
    let (ours, theirs) = (format!("{name}:ours"), format!("{name}:docker"));
    let _cleanup = Cleanup(vec![ours.clone(), theirs.clone()]);
    let dockerfile = ctx.path().join("build/Dockerfile").display().to_string();
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "ours"])
        .args(["--file", &dockerfile])
        .run();
    only_image(&out);
    assert_eq!(
        files_in_image(&ours, "ctx"),
        files_docker_sends_with(&ctx, &theirs, &["-f", &dockerfile])
    );
}

#[test]
fn every_flag_can_come_from_the_environment() {
    let api = Context::new(SIMPLE);
    let web = Context::new(SIMPLE);
    // A dry run against no Engine: the plan is made, the cache is not checked.
    let out = img_build()
        .env("IMG_BUILD_CONTEXT", format!("{},{}", api.arg(), web.arg()))
        .env("IMG_BUILD_NAME", "api,web")
        .env("IMG_BUILD_TAG", "{name}-x,latest")
        .env("IMG_BUILD_BUILD_ARG", "A=1,2\nB=3")
        .env("IMG_BUILD_LABEL", "team=core,infra\nowner=me")
        .env("IMG_BUILD_TARGET", "final")
        .env("IMG_BUILD_NO_CACHE", "true")
        .env("IMG_BUILD_DRY_RUN", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("dry run without the cache check"),
        "{}",
        out.stderr
    );
    let envelope = out.json();
    let images = envelope["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["tags"], json!(["api:api-x", "api:latest"]));
    assert_eq!(images[1]["tags"], json!(["web:web-x", "web:latest"]));
    assert_eq!(images[0]["labels"]["team"], "core,infra");
    assert_eq!(images[0]["labels"]["owner"], "me");
    assert_eq!(images[0]["dry_run"], true);
    assert!(images[0].get("cache_hit").is_none());
    // Build args and target are part of the digest: the same inputs by flag agree.
    let by_flags = img_build()
        .args([
            "--context",
            &api.arg(),
            "--name",
            "api",
            "--tag",
            "latest",
            "--dry-run",
        ])
        .args([
            "--build-arg",
            "A=1,2",
            "--build-arg",
            "B=3",
            "--target",
            "final",
        ])
        .args(["--label", "team=core,infra", "--label", "owner=me"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    let digest = |image: &Value| image["labels"]["dev.shipkit.context-digest"].clone();
    assert_eq!(digest(&only_image(&by_flags)), digest(&images[0]));
}

/// `docker builder prune` empties BuildKit's whole cache, cache mounts included: the test
/// that does it and the test that needs a cache mount to last take turns.
static BUILDER_CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

const BUSYBOX_SHELL: &str = "SHELL [\"/bin/busybox\", \"sh\", \"-c\"]\n";

#[test]
fn a_cache_mount_persists_between_builds_and_bind_and_tmpfs_mounts_work() {
    require_docker();
    let _turn = BUILDER_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = unique("imgb-mount");
    let ctx = Context::new(&format!(
        "FROM scratch AS tools\nCOPY busybox /bin/busybox\n\
         FROM tools\n{BUSYBOX_SHELL}COPY app.txt /app.txt\n\
         RUN --mount=type=cache,id={cache},target=/cache \
             --mount=type=bind,from=tools,source=/bin,target=/tools \
             --mount=type=tmpfs,target=/scratch \
             /tools/busybox echo run >> /cache/runs && /bin/busybox wc -l < /cache/runs > /runs \
             && /bin/busybox touch /scratch/x && /bin/busybox mount | /bin/busybox grep -c ' /scratch type tmpfs' > /tmpfs\n",
    ));
    let name = unique("imgb-mount");
    let _cleanup = Cleanup(vec![format!("{name}:1"), format!("{name}:2")]);
    for (round, app) in [(1, "one"), (2, "two")] {
        ctx.write("app.txt", app);
        let tag = round.to_string();
        only_image(
            &img_build()
                .args(["--context", &ctx.arg(), "--name", &name, "--tag", &tag])
                .run(),
        );
        let reference = format!("{name}:{tag}");
        // The RUN ran in both builds (app.txt changed), and saw the first one's file.
        assert_eq!(file_in_image(&reference, "/runs").trim(), tag);
        assert_eq!(file_in_image(&reference, "/tmpfs").trim(), "1");
        let files = files_in_image(&reference, "");
        assert!(!files.contains("cache/runs"), "{files:?}");
        assert!(!files.contains("scratch/x"), "{files:?}");
    }
}

#[test]
fn independent_stages_run_in_parallel_and_target_stops_at_a_stage() {
    require_docker();
    let ctx = Context::new(&format!(
        "FROM scratch AS base\nCOPY busybox /bin/busybox\n{BUSYBOX_SHELL}\
         FROM base AS left\nCOPY id.txt /id.txt\nRUN echo left; /bin/busybox sleep 2; echo l > /left\n\
         FROM base AS right\nCOPY id.txt /id.txt\nRUN echo right; /bin/busybox sleep 2; echo r > /right\n\
         FROM base AS final\nCOPY --from=left /left /left\nCOPY --from=right /right /right\n\
         FROM base AS unused\nRUN exit 1\n",
    ));
    let name = unique("imgb-stages");
    let _cleanup = Cleanup(vec![format!("{name}:t")]);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .args(["--target", "final"])
        .run();
    only_image(&out);
    let files = files_in_image(&format!("{name}:t"), "");
    assert!(
        files.contains("left") && files.contains("right"),
        "{files:?}"
    );
    // Both sleeps started before either ended; the stage after --target never ran.
    let position = |needle: &str| {
        out.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", out.stderr))
    };
    let started = position("] left\n").max(position("] right\n"));
    let first_done = out
        .stderr
        .lines()
        .filter(|l| l.contains("/bin/busybox sleep 2") && l.contains(" DONE "))
        .map(position)
        .min()
        .expect("the RUN steps finished");
    assert!(started < first_done, "not in parallel:\n{}", out.stderr);
    assert!(!out.stderr.contains("RUN exit 1"), "{}", out.stderr);
}

#[test]
fn secrets_reach_the_run_step_and_nothing_else() {
    require_docker();
    let file_secret = unique("file-secret-value");
    let env_secret = unique("env-secret-value");
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("npmrc");
    std::fs::write(&secret_file, &file_secret).unwrap();
    let ctx = Context::new(&format!(
        "FROM scratch\nCOPY id.txt /id.txt\nCOPY busybox /bin/busybox\n{BUSYBOX_SHELL}\
         RUN --mount=type=secret,id=npm --mount=type=secret,id=token \
             /bin/busybox sha256sum /run/secrets/npm /run/secrets/token > /sums \
             && echo token is $(/bin/busybox cat /run/secrets/token)\n",
    ));
    let name = unique("imgb-secret");
    let tag = format!("{name}:t");
    let _cleanup = Cleanup(vec![tag.clone()]);
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .args(["--secret", &format!("id=npm,src={}", secret_file.display())])
        .args(["--secret", "id=token,env=IMGB_TEST_TOKEN"])
        .env("IMGB_TEST_TOKEN", &env_secret)
        .env("GITHUB_ACTIONS", "true")
        .run();
    only_image(&out);
    // The RUN read both values.
    let sums = file_in_image(&tag, "/sums");
    for value in [&file_secret, &env_secret] {
        let sha = sha256_hex(value.as_bytes());
        assert!(sums.contains(&sha), "{value}: {sums}");
    }
    // It printed one; the log shows it masked, and Actions was told to mask both.
    assert!(out.stderr.contains("token is ***"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("::add-mask::{env_secret}")),
        "{}",
        out.stderr
    );
    let saved = docker(&["save", &tag]);
    assert!(saved.status.success());
    let history = docker(&["history", "--no-trunc", &tag]);
    let inspect = docker(&["image", "inspect", &tag]);
    for value in [&file_secret, &env_secret] {
        let found = |bytes: &[u8]| bytes.windows(value.len()).any(|w| w == value.as_bytes());
        assert!(!found(&saved.stdout), "{value} is in docker save");
        assert!(!found(&history.stdout), "{value} is in the history");
        assert!(!found(&inspect.stdout), "{value} is in the image config");
        assert!(!found(out.stdout.as_bytes()), "{value} is in the envelope");
        let stderr_without_masks = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !found(stderr_without_masks.as_bytes()),
            "{value} is in stderr"
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn bad_secrets_and_cache_flags_exit_2_before_anything_is_built() {
    let ctx = Context::new(SIMPLE);
    let run = |args: &[&str]| {
        img_build()
            .args(["--context", &ctx.arg(), "--name", "x", "--tag", "t"])
            .args(args)
            .env_remove("IMGB_UNSET_VAR")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .run()
    };
    run(&["--secret", "id=a"]).assert_usage_error("no src or env");
    run(&["--secret", "src=/etc/hostname"]).assert_usage_error("no id");
    run(&["--secret", "id=a,src=/nonexistent/file"])
        .assert_usage_error("cannot read /nonexistent/file");
    run(&["--secret", "id=a,env=IMGB_UNSET_VAR"]).assert_usage_error("IMGB_UNSET_VAR is not set");
    run(&["--secret", "id=a,env=HOME", "--builder", "classic"])
        .assert_usage_error("--secret needs BuildKit");
    run(&["--cache-to", "registry"]).assert_usage_error("only `inline`");
    run(&["--cache-from", "Bad:Ref"]).assert_usage_error("--cache-from Bad:Ref");
}

#[test]
fn a_fresh_runner_reuses_every_unchanged_step_from_the_registry() {
    require_docker();
    let services = shipkit_tests::services();
    let registry = &services["SHIPKIT_REGISTRY"];
    let password = std::fs::read_to_string(&services["SHIPKIT_REGISTRY_PASSWORD_FILE"]).unwrap();
    let config = tempfile::tempdir().unwrap();
    shipkit_tests::docker::Docker::with_config(config.path()).login(
        registry,
        &services["SHIPKIT_REGISTRY_USER"],
        password.trim(),
    );
    fresh_runner_rebuild(registry, config.path(), &[]);
}

/// ECR as a fresh Actions runner meets it: no `docker login` anywhere, only AWS credentials.
/// img-push pushes with its ECR token, and img-build pulls the cache with its own.
#[test]
fn a_fresh_runner_reuses_the_cache_from_ecr_without_a_docker_login() {
    require_docker();
    let empty_config = tempfile::tempdir().unwrap();
    let ecr_host = shipkit_tests::ecr::ecr_host();
    let second = fresh_runner_rebuild(&ecr_host, empty_config.path(), &["--create-repository"]);
    assert!(!second.stderr.contains("no ECR login"), "{}", second.stderr);
}

/// A cache is an optimisation: when no ECR login can be had, the build goes on without it
/// and says why.
#[test]
fn an_ecr_cache_without_a_login_is_a_warning_and_the_build_goes_on() {
    require_docker();
    let ctx = Context::new(SIMPLE);
    let name = unique("imgb-nologin");
    let _cleanup = Cleanup(vec![format!("{name}:t")]);
    let cache = format!("{}/{{name}}:main", shipkit_tests::ecr::ecr_host());
    let out = img_build()
        .args(["--context", &ctx.arg(), "--name", &name, "--tag", "t"])
        .args(["--cache-from", &cache])
        .env("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .run();
    only_image(&out);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("no ECR login"))
        .unwrap_or_else(|| panic!("no warning in:\n{}", out.stderr));
    assert!(warning.contains("warning:"), "{warning}");
    assert!(warning.contains("GetAuthorizationToken"), "{warning}");
}

/// Builds a context with a slow step and `--cache-to inline`, pushes it to `registry` as
/// `:main` with img-push, then plays a fresh runner (no image, no BuildKit cache), changes
/// the last file and builds again with `--cache-from` that `:main`: every step but the changed
/// one must be `CACHED`. `docker_config` is the Docker configuration both tools see.
fn fresh_runner_rebuild(registry: &str, docker_config: &Path, push_args: &[&str]) -> Output {
    let ctx = Context::new(&format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n{BUSYBOX_SHELL}COPY id.txt /id.txt\n\
         RUN echo installing; /bin/busybox sleep 1; echo deps > /deps\nCOPY app.txt /app.txt\n",
    ));
    ctx.write("app.txt", "version 1\n");
    let name = unique("imgb-fresh");
    let repository = format!("{registry}/{name}");
    let main = format!("{repository}:main");
    let _cleanup = Cleanup(vec![
        format!("{name}:main"),
        main.clone(),
        format!("{name}:next"),
    ]);
    let build = |tag: &str, extra: &[&str]| {
        img_build()
            .args(["--context", &ctx.arg(), "--name", &name, "--tag", tag])
            .args(extra)
            .env("DOCKER_CONFIG", docker_config.display().to_string())
            .run()
    };
    let first = build("main", &["--cache-to", "inline"]);
    only_image(&first);
    let pushed = Cmd::new(shipkit_tests::workspace_bin("img-push"))
        .args(["--registry", registry])
        .args(push_args)
        .env("DOCKER_CONFIG", docker_config.display().to_string())
        .stdin(first.stdout.clone())
        .run();
    pushed.assert_code(0);

    // A fresh runner: none of the images, none of BuildKit's cache.
    let _turn = BUILDER_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    for reference in [format!("{name}:main"), main.clone()] {
        let _ = docker(&["rmi", "-f", &reference]);
    }
    let pruned = docker(&["builder", "prune", "-af"]);
    assert!(pruned.status.success(), "{pruned:?}");
    ctx.write("app.txt", "version 2\n");
    let second = build("next", &["--cache-from", &main, "--cache-to", "inline"]);
    only_image(&second);
    let steps: Vec<&str> = second
        .stderr
        .lines()
        .filter(|l| l.starts_with('[') && (l.ends_with("CACHED") || l.contains(" DONE ")))
        .collect();
    let cached = |step: &str| {
        steps
            .iter()
            .any(|l| l.contains(step) && l.ends_with("CACHED"))
    };
    for step in ["COPY busybox", "COPY id.txt", "RUN echo installing"] {
        assert!(cached(step), "{step} not CACHED:\n{}", second.stderr);
    }
    assert!(!cached("COPY app.txt"), "{}", second.stderr);
    assert!(!second.stderr.contains("] installing"), "{}", second.stderr);
    assert_eq!(
        file_in_image(&format!("{name}:next"), "/app.txt"),
        "version 2\n"
    );
    second
}
