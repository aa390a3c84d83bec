//! The bad-input corpus: every shipkit tool, fed what a user or an upstream step gets wrong —
//! malformed, truncated, binary and huge JSON on stdin, the wrong JSON shape, another schema
//! major, wrong types inside known sections, unknown and conflicting flags, bad durations,
//! statuses, ports, regexes, URLs and image references, missing and unreadable files, task
//! definitions with unknown fields, manifests that are not YAML or lack a kind or name or name
//! a kind the cluster lacks, a context that is not a directory, a repository without commits.
//!
//! Each case must end as DESIGN.md says bad input ends: exit 2, one `<tool>: error: …` line on
//! stderr that names what is wrong and where (the case's needle: a file, a line and column, a
//! field path, a flag), the same message in the `failed` section of the envelope on stdout —
//! and nothing changed anywhere: the registry's catalogue and moto's ECR repositories (names
//! under this run's prefix), local images, the ECS emulator's task definitions and services,
//! the Kubernetes emulator's resourceVersions and the git tags (local and remote) are the
//! same after every case as before any. The emulators and repositories are this binary's
//! own, so other tests' work cannot blur the comparison.
//!
//! The files the cases read live in `tests/corpus/bad-input/`; the table below says which
//! tool reads which, with what flags, and what its error must name.

use common::Envelope;
use shipkit_tests::ecs::{EcsEmulator, ecs_client, register_web};
use shipkit_tests::kube::KubeEmulator;
use shipkit_tests::state::{
    ecr_repositories, ecs_state, git_tags, kube_resource_versions, local_images,
    registry_repositories,
};
use shipkit_tests::{Cmd, Output, repo_root, services, unique};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The ECS cluster and service the ecs-roll cases name (they exist: only the input is bad).
const CLUSTER: &str = "dev";
const SERVICE: &str = "web";

/// One bad input: a tool, how it is run, and what its one error line must contain.
struct Case {
    name: &'static str,
    tool: &'static str,
    args: Vec<String>,
    stdin: Vec<u8>,
    needles: Vec<String>,
}

impl Case {
    fn new(name: &'static str, tool: &'static str) -> Case {
        Case {
            name,
            tool,
            args: Vec::new(),
            stdin: Vec::new(),
            needles: Vec::new(),
        }
    }

    fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Case {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    fn stdin(mut self, input: impl Into<Vec<u8>>) -> Case {
        self.stdin = input.into();
        self
    }

    /// The error line must contain each of `needles` (what is wrong, and where).
    fn names<S: AsRef<str>>(mut self, needles: impl IntoIterator<Item = S>) -> Case {
        self.needles
            .extend(needles.into_iter().map(|n| n.as_ref().to_owned()));
        self
    }
}

/// What the cases run against: this binary's own emulators and repositories, the corpus.
struct World {
    /// Names in the shared services (registry, moto, Docker) start with it.
    prefix: String,
    corpus: PathBuf,
    work: tempfile::TempDir,
    kube: KubeEmulator,
    ecs: EcsEmulator,
    /// A repository with one releasable commit, its `origin` a bare repository.
    repo: PathBuf,
    remote: PathBuf,
    /// `git init` and nothing else.
    no_commits: PathBuf,
}

impl World {
    fn start() -> World {
        services();
        let prefix = unique("bi");
        let work = tempfile::tempdir().expect("a work directory");
        let kube = KubeEmulator::start();
        kube.kubectl_with_input(
            &["--context", "staging", "apply", "-f", "-"],
            Some(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: existing, namespace: default}\ndata: {a: \"1\"}\n",
            ),
        );
        let ecs = EcsEmulator::start(&["--clusters", CLUSTER]);
        create_idle_service(&ecs.url());
        let (repo, remote, no_commits) = repositories(work.path());
        World {
            prefix,
            corpus: repo_root().join("tests/corpus/bad-input"),
            work,
            kube,
            ecs,
            repo,
            remote,
            no_commits,
        }
    }

    /// A file of the corpus, as an argument.
    fn corpus(&self, path: &str) -> String {
        let path = self.corpus.join(path);
        assert!(path.exists(), "{} is not in the corpus", path.display());
        path.display().to_string()
    }

    /// A corpus file's bytes (for stdin).
    fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.corpus(path)).expect("a corpus file")
    }

    /// A path in the work directory (nothing there unless a case's setup made it).
    fn work(&self, name: &str) -> String {
        self.work.path().join(name).display().to_string()
    }

    /// An image name no one else uses.
    fn image(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The run of `case`: its tool, flags, environment and stdin.
    fn command(&self, case: &Case) -> Cmd {
        let settings = services();
        let mut cmd = Cmd::tool(case.tool)
            .args(&case.args)
            .stdin(case.stdin.clone())
            .env("KUBECONFIG", self.kube.kubeconfig.display().to_string())
            .env("AWS_ENDPOINT_URL_ECS", self.ecs.url())
            .env("DOCKER_CONFIG", self.work("docker-config"))
            .current_dir(self.work.path());
        for (key, value) in settings {
            // The shared services' settings, but this binary's own ECS emulator.
            if key.starts_with("AWS_") && key != "AWS_ENDPOINT_URL_ECS" || key == "DOCKER_HOST" {
                cmd = cmd.env(&key, value);
            }
        }
        cmd
    }

    /// Everything a case could have changed.
    fn snapshot(&self) -> BTreeMap<&'static str, Vec<String>> {
        let flat = |map: BTreeMap<String, Vec<String>>| {
            map.into_iter()
                .map(|(k, v)| format!("{k}: {v:?}"))
                .collect::<Vec<_>>()
        };
        BTreeMap::from([
            (
                "registry catalogue",
                flat(registry_repositories(&self.prefix)),
            ),
            ("moto's ECR repositories", ecr_repositories(&self.prefix)),
            ("local images", local_images(&self.prefix)),
            ("the ECS emulator", ecs_state(&self.ecs.url(), &[CLUSTER])),
            (
                "the Kubernetes emulator (staging)",
                kube_resource_versions(&self.kube, "staging"),
            ),
            ("git tags", git_tags(&self.repo)),
            ("the remote's git tags", git_tags(&self.remote)),
        ])
    }
}

/// Service `web` in cluster `dev`, with no task wanted (so nothing runs and nothing moves).
fn create_idle_service(endpoint: &str) {
    let endpoint = endpoint.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let client = ecs_client(&endpoint).await;
                let arn = register_web(&client, SERVICE, "busybox:bad-input").await;
                client
                    .create_service()
                    .cluster(CLUSTER)
                    .service_name(SERVICE)
                    .task_definition(arn)
                    .desired_count(0)
                    .send()
                    .await
                    .expect("CreateService");
            });
    })
    .join()
    .expect("creating the ECS service");
}

/// A repository with a `feat:` commit and a bare `origin`; a repository without commits.
fn repositories(work: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let git = shipkit_tests::git;
    let repo = work.join("repo");
    let remote = work.join("remote.git");
    let no_commits = work.join("no-commits");
    for dir in [&repo, &remote, &no_commits, &work.join("not-a-repository")] {
        std::fs::create_dir_all(dir).expect("a repository directory");
    }
    git(&remote, &["init", "--quiet", "--bare"]);
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("app.txt"), "v1\n").expect("a file to commit");
    git(&repo, &["add", "app.txt"]);
    git(
        &repo,
        &["commit", "--quiet", "-m", "feat: the first feature"],
    );
    git(&repo, &["tag", "--annotate", "-m", "v0.1.0", "v0.1.0"]);
    std::fs::write(repo.join("app.txt"), "v2\n").expect("a file to commit");
    git(
        &repo,
        &["commit", "--quiet", "-am", "fix: a fix to release"],
    );
    git(
        &repo,
        &["remote", "add", "origin", &remote.display().to_string()],
    );
    git(&repo, &["push", "--quiet", "origin", "refs/tags/v0.1.0"]);
    git(&no_commits, &["init", "--quiet"]);
    (repo, remote, no_commits)
}

/// Bytes that are no text at all (every byte value, over and over).
fn binary() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// A 100 MB envelope whose one wrong field comes after the padding: the reader must get there.
fn huge_envelope() -> Vec<u8> {
    let padding = "x".repeat(100 * 1024 * 1024);
    format!("{{\"schema\":\"shipkit/v1\",\"padding\":\"{padding}\",\n\"images\":{{}}}}\n")
        .into_bytes()
}

/// The whole corpus.
fn cases(w: &World) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(envelope_cases(w));
    cases.extend(flag_cases(w));
    cases.extend(img_build_cases(w));
    cases.extend(img_push_cases(w));
    cases.extend(ecs_roll_cases(w));
    cases.extend(k8s_apply_cases(w));
    cases.extend(release_tag_cases(w));
    cases.extend(health_wait_cases(w));
    cases
}

/// Documents on stdin (or `--input`) that are not a usable envelope: the same reader in every
/// tool, so the cases are spread across the six.
fn envelope_cases(w: &World) -> Vec<Case> {
    let registry = services()["SHIPKIT_REGISTRY"].clone();
    let push = || Case::new("", "img-push").args(["--registry", &registry]);
    let ecs = || Case::new("", "ecs-roll").args(["--cluster", CLUSTER, "--service", SERVICE]);
    let k8s = || {
        Case::new("", "k8s-apply").args([
            "--context",
            "staging",
            "-f",
            &w.corpus("manifests/no-kind.yaml"),
        ])
    };
    let health = || Case::new("", "health-wait").args(["--url", "http://127.0.0.1:9/"]);
    let tag = || Case::new("", "release-tag").args(["--repo", &w.repo.display().to_string()]);
    let build = || {
        Case::new("", "img-build").args([
            "--context",
            &w.corpus("contexts/ok"),
            "-t",
            &format!("{}:v1", w.image("ok")),
        ])
    };
    let named = |mut case: Case, name: &'static str| {
        case.name = name;
        case
    };
    vec![
        named(push(), "malformed JSON")
            .stdin(w.read("envelope/malformed.json"))
            .names(["input (stdin) is not valid JSON", "line 1 column 37"]),
        named(k8s(), "truncated JSON")
            .stdin(w.read("envelope/truncated.json"))
            .names(["not valid JSON: EOF while parsing", "line 1 column 64"]),
        named(ecs(), "binary on stdin")
            .stdin(binary())
            .names(["input (stdin) is not valid JSON", "line 1 column 1"]),
        named(health(), "a JSON array instead of an object")
            .stdin(w.read("envelope/array.json"))
            .names(["must be a JSON object", "found an array"]),
        named(tag(), "a JSON string instead of an object")
            .stdin(w.read("envelope/string.json"))
            .names(["must be a JSON object", "found a string"]),
        named(build(), "a JSON number instead of an object")
            .stdin(w.read("envelope/number.json"))
            .names(["must be a JSON object", "found a number"]),
        named(push(), "another schema major")
            .stdin(w.read("envelope/schema-v2.json"))
            .names(["\"shipkit/v2\" (major version 2)", "reads shipkit/v1"]),
        named(k8s(), "another document format")
            .stdin(w.read("envelope/schema-other.json"))
            .names(["\"other/v1\"", "not a shipkit envelope"]),
        named(ecs(), "schema of the wrong type")
            .stdin(w.read("envelope/schema-number.json"))
            .names(["field `schema` must be a string"]),
        named(push(), "images: {}")
            .stdin(w.read("envelope/images-object.json"))
            .names(["field `images`", "expected a sequence", "line 1 column 32"]),
        named(k8s(), "pushed[].digest: 5")
            .stdin(w.read("envelope/digest-number.json"))
            .names(["field `images[0].pushed[0].digest`", "integer `5`"]),
        named(health(), "deployments: a string")
            .stdin(w.read("envelope/deployments-string.json"))
            .args(["--from-deployments"])
            .names(["field `deployments`", "expected a sequence"]),
        named(tag(), "release: an array")
            .stdin(w.read("envelope/release-array.json"))
            .names(["field `release`"]),
        named(build(), "git.dirty: a string")
            .stdin(w.read("envelope/git-dirty-string.json"))
            .names(["field `git.dirty`", "expected a boolean"]),
        named(health(), "health[].target: a number")
            .stdin(w.read("envelope/health-target-number.json"))
            .names(["field `health[0].target`"]),
        named(
            push(),
            "cache_hit: a string, on line 4 of a pretty envelope",
        )
        .stdin(w.read("envelope/cache-hit-string.json"))
        .names(["field `images[0].cache_hit`", "line 4 column"]),
        named(health(), "100 MB of JSON, wrong at the end")
            .stdin(huge_envelope())
            .names(["field `images`", "line 2 column"]),
        named(push(), "--input a directory")
            .args(["--input", &w.corpus("contexts")])
            .names(["cannot read --input", "contexts"]),
        named(ecs(), "--input a missing file")
            .args(["--input", &w.work("no-such-envelope.json")])
            .names(["cannot read --input", "no-such-envelope.json"]),
        named(
            push(),
            "an image tag in the envelope that is not a reference",
        )
        .stdin(w.read("envelope/tag-not-a-reference.json"))
        .names([
            "image api in the envelope",
            "\"NOT A REF\" is not an image reference",
        ]),
    ]
}

/// Flags clap refuses: unknown, conflicting, missing, malformed values.
fn flag_cases(w: &World) -> Vec<Case> {
    let repo = w.repo.display().to_string();
    let mut cases: Vec<Case> = [
        "img-build",
        "img-push",
        "ecs-roll",
        "k8s-apply",
        "release-tag",
        "health-wait",
    ]
    .into_iter()
    .map(|tool| {
        Case::new("an unknown flag", tool)
            .args(["--no-such-flag"])
            .names(["unexpected argument '--no-such-flag'"])
    })
    .collect();
    cases.extend([
        Case::new("--ecr with --registry", "img-push")
            .args(["--ecr", "--registry", "localhost:5000"])
            .names(["'--ecr' cannot be used with '--registry"]),
        Case::new("--version with --bump", "release-tag")
            .args(["--repo", &repo, "--version", "1.0.0", "--bump", "minor"])
            .names(["'--version <X.Y.Z>' cannot be used with '--bump"]),
        Case::new("--current with --bump", "release-tag")
            .args(["--repo", &repo, "--current", "--bump", "major"])
            .names(["'--current' cannot be used with '--bump"]),
        Case::new("--cluster without --service", "ecs-roll")
            .args(["--cluster", CLUSTER])
            .names(["required arguments were not provided", "--service"]),
        Case::new("--prune without --applyset", "k8s-apply")
            .args([
                "--context",
                "staging",
                "-f",
                &w.corpus("manifests/no-kind.yaml"),
            ])
            .args(["--prune"])
            .names(["required arguments were not provided", "--applyset"]),
        Case::new("a bad --retry-delay", "img-push")
            .args(["--registry", "localhost:5000", "--retry-delay", "5parsecs"])
            .names([
                "'5parsecs' for '--retry-delay <DURATION>'",
                "invalid duration",
            ]),
        Case::new("a bad --timeout", "ecs-roll")
            .args([
                "--cluster",
                CLUSTER,
                "--service",
                SERVICE,
                "--timeout",
                "10q",
            ])
            .names(["'10q' for '--timeout <DURATION>'"]),
        Case::new("a bad --timeout", "k8s-apply")
            .args([
                "--context",
                "staging",
                "-f",
                &w.corpus("manifests/no-kind.yaml"),
            ])
            .args(["--timeout", "3parsecs"])
            .names(["'3parsecs' for '--timeout <DURATION>'"]),
        Case::new("a bad --interval", "health-wait")
            .args(["--url", "http://127.0.0.1:9/", "--interval", "soon"])
            .names(["'soon' for '--interval <DURATION>'"]),
        Case::new("a --jobs of 0", "img-push")
            .args(["--registry", "localhost:5000", "--jobs", "0"])
            .names(["'0' for '--jobs <N>'", "not in 1..=64"]),
        Case::new("a negative --desired-count", "ecs-roll")
            .args([
                "--cluster",
                CLUSTER,
                "--service",
                SERVICE,
                "--desired-count=-3",
            ])
            .names(["--desired-count -3: must be 0 or more"]),
        Case::new("a --max-task-failures that is not a number", "ecs-roll")
            .args(["--cluster", CLUSTER, "--service", SERVICE])
            .args(["--max-task-failures", "x"])
            .names(["'x' for '--max-task-failures <N>'"]),
        Case::new("a --bump that is no level", "release-tag")
            .args(["--repo", &repo, "--bump", "huge"])
            .names(["'huge' for '--bump <BUMP>'"]),
        Case::new("a --label without =", "img-build")
            .args(["--context", &w.corpus("contexts/ok"), "--label", "novalue"])
            .names(["'novalue' for '--label <KEY=VALUE>'"]),
        Case::new("a --backoff that is no number", "health-wait")
            .args(["--url", "http://127.0.0.1:9/", "--backoff", "sideways"])
            .names(["'sideways' for '--backoff <BACKOFF>'"]),
        Case::new("--successes 0", "health-wait")
            .args(["--url", "http://127.0.0.1:9/", "--successes", "0"])
            .names(["'0' for '--successes <SUCCESSES>'"]),
    ]);
    cases
}

fn img_build_cases(w: &World) -> Vec<Case> {
    let tag = |name: &str| format!("{}:v1", w.image(name));
    let build = |context: &str| {
        Case::new("", "img-build").args(["--context", &w.corpus(context), "-t", &tag(context)])
    };
    let named = |mut case: Case, name: &'static str| {
        case.name = name;
        case
    };
    vec![
        Case::new("a context that is a file", "img-build")
            .args([
                "--context",
                &w.corpus("contexts/ok/README"),
                "-t",
                &tag("f"),
            ])
            .names(["context", "contexts/ok/README is not a directory"]),
        Case::new("a context that does not exist", "img-build")
            .args(["--context", &w.work("no-such-context"), "-t", &tag("m")])
            .names(["context", "no-such-context does not exist"]),
        named(
            build("contexts/no-dockerfile"),
            "a context without a Dockerfile",
        )
        .names(["no Dockerfile at", "no-dockerfile/Dockerfile"]),
        named(build("contexts/ok"), "--file that does not exist")
            .args(["--file", &w.work("Dockerfile.missing")])
            .names(["no Dockerfile at", "Dockerfile.missing"]),
        named(build("contexts/ok"), "an image name in capitals")
            .args(["--name", "Api Server"])
            .names(["invalid image name \"Api Server\""]),
        Case::new("a tag template with an unknown placeholder", "img-build")
            .args(["--context", &w.corpus("contexts/ok"), "-t", "api:{bogus}"])
            .names(["bad --tag \"api:{bogus}\"", "unknown placeholder {bogus}"]),
        Case::new("a tag that is not a reference", "img-build")
            .args(["--context", &w.corpus("contexts/ok"), "-t", "API:v1"])
            .names(["bad --tag \"API:v1\"", "not a valid image reference"]),
        named(build("contexts/ok"), "a --build-arg without a key")
            .args(["--build-arg", "=x"])
            .names(["bad --build-arg \"=x\""]),
        named(build("contexts/ok"), "a --platform that is no platform")
            .args(["--platform", "linux/"])
            .names([
                "'linux/' for '--platform <PLATFORM>'",
                "os[/arch[/variant]]",
            ]),
        named(
            build("contexts/ok"),
            "a --platform that is no platform, dry run",
        )
        .args(["--dry-run", "--platform", "linux/amd64/v8/extra"])
        .names(["'linux/amd64/v8/extra' for '--platform <PLATFORM>'"]),
        named(build("contexts/ok"), "two --name for one --context")
            .args(["--name", "a", "--name", "b"])
            .names(["--name was given 2 times for 1 --context"]),
        named(
            build("contexts/unknown-instruction"),
            "a Dockerfile that does not parse",
        )
        .names([
            "dockerfile parse error line 2",
            "COPYY",
            "unknown-instruction",
        ]),
        named(build("contexts/empty-dockerfile"), "an empty Dockerfile")
            .names(["empty-dockerfile", "cannot be empty"]),
        named(build("contexts/ok"), "a --target the Dockerfile lacks")
            .args(["--target", "nostage"])
            .names(["target", "nostage"]),
        named(
            build("contexts/bad-dockerignore"),
            "a .dockerignore pattern that does not parse",
        )
        .names(["bad-dockerignore/.dockerignore", "bad pattern \"logs/[\""]),
        Case::new("a repository without commits (default tags)", "img-build")
            .args(["--context", &w.no_commits.display().to_string()])
            .args(["--file", &w.corpus("contexts/ok/Dockerfile")])
            .names(["no-commits has no commit yet", "pass --tag"]),
    ]
}

fn img_push_cases(w: &World) -> Vec<Case> {
    let registry = services()["SHIPKIT_REGISTRY"].clone();
    let push = |name| Case::new(name, "img-push").args(["--registry", &registry]);
    vec![
        push("an --image that is not a reference")
            .args(["--image", "UPPER/Bad::ref"])
            .names(["--image: \"UPPER/Bad::ref\" is not an image reference"]),
        Case::new("a --registry that is no host", "img-push")
            .args([
                "--registry",
                "bad host",
                "--image",
                &format!("{}:v1", w.image("x")),
            ])
            .names(["--registry \"bad host\"", "is not a registry host"]),
        push("--username without --password-stdin")
            .args([
                "--username",
                "ci",
                "--image",
                &format!("{}:v1", w.image("x")),
            ])
            .names(["--username needs --password-stdin"]),
        push("nothing to push").names(["no images to push", "no --image was given"]),
        push("--promote with nothing to promote")
            .args(["--promote"])
            .names(["no images to promote"]),
        Case::new("--repository with two images", "img-push")
            .args(["--repository", &format!("{registry}/{}", w.image("one"))])
            .args(["--image", &format!("{}:a", w.image("a"))])
            .args(["--image", &format!("{}:b", w.image("b"))])
            .names(["--repository names one repository, but there are 2 images"]),
    ]
}

fn ecs_roll_cases(w: &World) -> Vec<Case> {
    let roll = |name| {
        Case::new(name, "ecs-roll").args(["--cluster", CLUSTER, "--service", SERVICE, "--no-wait"])
    };
    let file = |name, path| {
        roll(name)
            .args(["--task-definition-file", &w.corpus(path)])
            .names([path])
    };
    vec![
        roll("a --container without =")
            .args(["--container", "noequals"])
            .names(["'noequals' for '--container <NAME=REF>'"]),
        roll("a --container image that is not a reference")
            .args(["--container", "web=NOT A REF"])
            .names(["--container", "\"NOT A REF\" is not an image reference"]),
        roll("an --env without a container")
            .args(["--env", "bad"])
            .names(["'bad' for '--env <CONTAINER:KEY=VALUE>'"]),
        roll("an --endpoint for another service")
            .args(["--endpoint", "other=http://127.0.0.1:9/"])
            .names(["--endpoint other=", "not one of the --service names"]),
        roll("a --container the task definition lacks")
            .args(["--container", &format!("sidecar={}:v1", w.image("x"))])
            .names(["service web has no container sidecar (it has: web)"]),
        roll("a task definition file that does not exist")
            .args(["--task-definition-file", &w.work("taskdef.json")])
            .names(["cannot read", "taskdef.json"]),
        file(
            "a task definition file with an unknown field",
            "ecs/task-definition-unknown-field.json",
        )
        .names(["unknown task definition field 'cpuShares'"]),
        file(
            "a truncated task definition file",
            "ecs/task-definition-truncated.json",
        )
        .names(["line 2 column 0", "EOF while parsing"]),
        file(
            "a task definition whose family is a number",
            "ecs/task-definition-family-number.json",
        )
        .names(["'family'"]),
        file(
            "a task definition whose memory is a string",
            "ecs/task-definition-memory-string.json",
        )
        // The SDK's own reader names the offset and the value, not the field.
        .names(["offset 101", "found `lots`"]),
        file(
            "a task definition that is an array",
            "ecs/task-definition-array.json",
        ),
        roll("a service definition with an unknown field")
            .args([
                "--service-definition",
                &w.corpus("ecs/service-definition-unknown-field.json"),
            ])
            .names([
                "service-definition-unknown-field.json",
                "unknown service definition field 'autoScaling'",
            ]),
    ]
}

fn k8s_apply_cases(w: &World) -> Vec<Case> {
    let apply = |name, manifest: &str| {
        Case::new(name, "k8s-apply")
            .args(["--context", "staging", "-f", &w.corpus(manifest)])
            .names([manifest])
    };
    vec![
        apply("a manifest that is not YAML", "manifests/invalid.yaml")
            .names(["document 1: invalid YAML", "line 6 column 1"]),
        apply("a manifest without a kind", "manifests/no-kind.yaml").names(["document 1: no kind"]),
        apply("a manifest without a name", "manifests/no-name.yaml")
            .names(["document 1: no metadata.name"]),
        apply("a kind the cluster lacks", "manifests/unknown-kind.yaml")
            .names(["document 1: the cluster does not serve kind Widget in example.com/v1"]),
        apply(
            "a kind the cluster lacks, after one it has",
            "manifests/second-unknown.yaml",
        )
        .names(["document 2: the cluster does not serve kind Bogus in v1"]),
        apply("a document that is a YAML list", "manifests/list.yaml")
            .names(["document 1: not an object"]),
        apply(
            "a List whose items are no list",
            "manifests/list-items-not-a-list.yaml",
        )
        .names(["document 1: a List whose items is not a list"]),
        apply("replicas: three", "manifests/replicas-string.yaml")
            .names(["document 2: field `spec.replicas`: invalid type"]),
        apply(
            "a Service port that is a word",
            "manifests/port-string.yaml",
        )
        .names(["document 1: field `spec.ports[0].port`: invalid type"]),
        apply("one object twice", "manifests/duplicate.yaml")
            .names(["document 2: ConfigMap", "also defined at"]),
        Case::new("a manifest file that does not exist", "k8s-apply")
            .args(["--context", "staging", "-f", &w.work("missing.yaml")])
            .names(["-f", "missing.yaml: No such file or directory"]),
        Case::new("-k on a directory without kustomization.yaml", "k8s-apply")
            .args(["--context", "staging", "-k", &w.corpus("manifests")])
            .names(["-k", "manifests", "kustomization.yaml"]),
        Case::new("an --image without =", "k8s-apply")
            .args([
                "--context",
                "staging",
                "-f",
                &w.corpus("manifests/second-unknown.yaml"),
            ])
            .args(["--image", "noequals"])
            .names(["'noequals' for '--image <NAME=REF>'"]),
        Case::new("an --image that is not a reference", "k8s-apply")
            .args([
                "--context",
                "staging",
                "-f",
                &w.corpus("manifests/second-unknown.yaml"),
            ])
            .args(["--image", "web=NOT A REF"])
            .names(["\"NOT A REF\" is not an image reference"]),
        Case::new("a context the kubeconfig lacks", "k8s-apply")
            .args([
                "--context",
                "nowhere",
                "-f",
                &w.corpus("manifests/second-unknown.yaml"),
            ])
            .names(["nowhere"]),
        {
            let binary_manifest = w.work("binary.yaml");
            std::fs::write(&binary_manifest, binary()).expect("a binary manifest");
            Case::new("a manifest of binary bytes", "k8s-apply")
                .args(["--context", "staging", "-f", &binary_manifest])
                .names([
                    "cannot read",
                    "binary.yaml: stream did not contain valid UTF-8",
                ])
        },
    ]
}

fn release_tag_cases(w: &World) -> Vec<Case> {
    let repo = w.repo.display().to_string();
    let tag = |name| Case::new(name, "release-tag").args(["--repo", &repo]);
    vec![
        Case::new("a repository without commits", "release-tag")
            .args(["--repo", &w.no_commits.display().to_string()])
            .names(["no-commits has no commit yet"]),
        Case::new("a directory outside any repository", "release-tag")
            .args(["--repo", &w.work("not-a-repository")])
            .names(["not-a-repository is not inside a git repository"]),
        tag("a --version that is not semver")
            .args(["--version", "1.x"])
            .names(["--version \"1.x\" is not a semantic version"]),
        tag("an --initial-version that is not semver")
            .args(["--initial-version", "abc"])
            .names(["--initial-version \"abc\" is not a semantic version"]),
        tag("a --pre that is no identifier")
            .args(["--pre", "bad ident!"])
            .names(["--pre \"bad ident!\""]),
        tag("a --tag-prefix git refuses")
            .args(["--tag-prefix", "v.."])
            .names(["--tag-prefix \"v..\"", "not a valid git tag name"]),
        tag("--push to a remote that does not exist")
            .args(["--push", "--remote", "nosuch"])
            .names(["--remote \"nosuch\": no such remote"]),
        tag("a --changelog in a directory that does not exist")
            .args(["--changelog", &w.work("no-such-dir/CHANGELOG.md")])
            .names(["--changelog", "no-such-dir/CHANGELOG.md"]),
        tag("a --path that does not exist")
            .args(["--path", "services/nosuch"])
            .names(["--path services/nosuch: no such file or directory"]),
        tag("a --version older than the last release")
            .args(["--version", "0.0.1"])
            .names(["v0.0.1 would not be newer than v0.1.0"]),
    ]
}

fn health_wait_cases(w: &World) -> Vec<Case> {
    let wait = |name| Case::new(name, "health-wait").args(["--url", "http://127.0.0.1:9/"]);
    vec![
        wait("a --status that is no status")
            .args(["--status", "99x"])
            .names(["--status: invalid status \"99x\""]),
        wait("a --status out of range")
            .args(["--status", "999"])
            .names(["--status: invalid status \"999\""]),
        Case::new("a --url that is no URL", "health-wait")
            .args(["--url", "not a url"])
            .names(["--url: invalid URL \"not a url\""]),
        Case::new("a --url with another scheme", "health-wait")
            .args(["--url", "ftp://example.com/"])
            .names(["scheme \"ftp\" is not http or https"]),
        Case::new("a --tcp port out of range", "health-wait")
            .args(["--tcp", "localhost:99999"])
            .names(["invalid --tcp \"localhost:99999\": bad port"]),
        Case::new("a --tcp without a port", "health-wait")
            .args(["--tcp", "localhost"])
            .names(["invalid --tcp \"localhost\": no port"]),
        wait("a --connect-to with too few parts")
            .args(["--connect-to", "a:b"])
            .names(["--connect-to \"a:b\": too few parts"]),
        wait("a --body-regex that does not compile")
            .args(["--body-regex", "(["])
            .names(["--body-regex", "unclosed character class"]),
        wait("a --header without a colon")
            .args(["--header", "Authorization Bearer"])
            .names(["--header", "no ':'"]),
        wait("a --json without =")
            .args(["--json", "novalue"])
            .names(["invalid --json \"novalue\""]),
        wait("a --method that is no method")
            .args(["--method", "GE T"])
            .names(["--method \"GE T\" is not an HTTP method"]),
        wait("a --cacert that does not exist")
            .args(["--cacert", &w.work("ca.pem")])
            .names(["cannot read --cacert", "ca.pem"]),
        wait("a --cacert with no certificate")
            .args(["--cacert", &w.corpus("contexts/ok/README")])
            .names(["--cacert", "README holds no PEM certificate"]),
        wait("a --cacert that is a directory")
            .args(["--cacert", &w.corpus("contexts")])
            .names(["cannot read --cacert", "contexts"]),
        Case::new("no target", "health-wait").names(["no targets"]),
        Case::new("--from-deployments with no deployments", "health-wait")
            .args(["--from-deployments"])
            .names(["--from-deployments: the input has no deployments[].endpoints"]),
    ]
}

/// What is wrong with one case's run, if anything.
fn judge(case: &Case, out: &Output) -> Option<String> {
    let mut problems = Vec::new();
    if out.code != 2 {
        problems.push(format!("exit {} (expected 2)", out.code));
    }
    let prefix = format!("{}: error: ", case.tool);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    match errors.as_slice() {
        [line] if line.starts_with(&prefix) => {
            for needle in &case.needles {
                if !line.contains(needle.as_str()) {
                    problems.push(format!("the error line does not name {needle:?}"));
                }
            }
            match serde_json::from_str::<Envelope>(out.stdout.trim_end()) {
                Ok(envelope) => match envelope.failed {
                    Some(failed) => {
                        if failed.tool != case.tool || failed.exit_code != 2 {
                            problems.push(format!(
                                "failed names {} with exit_code {}",
                                failed.tool, failed.exit_code
                            ));
                        }
                        if failed.error != line[prefix.len()..] {
                            problems.push(format!(
                                "failed.error differs from the stderr line: {:?}",
                                failed.error
                            ));
                        }
                    }
                    None => problems.push("the envelope has no `failed`".into()),
                },
                Err(err) => problems.push(format!("stdout is not an envelope ({err})")),
            }
        }
        _ => problems.push(format!(
            "{} error line(s) (expected one `{prefix}…`)",
            errors.len()
        )),
    }
    if !out.stdout.ends_with('\n') || out.stdout.trim_end().contains('\n') {
        problems.push("stdout is not one JSON line".into());
    }
    match problems.is_empty() {
        true => None,
        false => Some(format!(
            "{} — {}: {}\n  stderr: {}\n  stdout: {}",
            case.tool,
            case.name,
            problems.join("; "),
            out.stderr.trim_end().replace('\n', "\n          "),
            truncate(&out.stdout, 600)
        )),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.trim_end().to_owned(),
    }
}

#[test]
fn every_tool_refuses_bad_input_with_one_line_exit_2_and_changes_nothing() {
    let world = World::start();
    let cases = cases(&world);
    let before = world.snapshot();

    // Cases run in parallel (each is a short process), a few at a time.
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(case) = cases.get(i) else { return };
                    let out = world.command(case).run();
                    if let Some(problem) = judge(case, &out) {
                        failures.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });

    let after = world.snapshot();
    let mut failures = failures.into_inner().unwrap();
    for (what, state) in &before {
        if after[what] != *state {
            failures.push(format!(
                "{what} changed:\n  before: {state:?}\n  after:  {:?}",
                after[what]
            ));
        }
    }
    let mut per_tool: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        *per_tool.entry(case.tool).or_default() += 1;
    }
    #[allow(clippy::print_stdout)] // the figure the README's Reliability section quotes
    {
        println!(
            "bad-input corpus: {} cases across {} tools {per_tool:?}, {} refused as the contract says",
            cases.len(),
            per_tool.len(),
            cases.len() - failures.len().min(cases.len())
        );
    }
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
