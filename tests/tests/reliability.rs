//! Reliability across the tools: secrets that never leak, interruption that leaves a report
//! and nothing in the way of a rerun, two runs racing for one release.
//!
//! - Secrets: the tools run as under GitHub Actions (`GITHUB_ACTIONS=true`, `GITHUB_OUTPUT`,
//!   `GITHUB_STEP_SUMMARY` in a directory of the test's own) with known secrets — the local
//!   registry's password, moto's ECR token, the EKS token, a Secret's data in a manifest, an
//!   `Authorization` header — and every stdout, stderr, envelope and file written is searched
//!   for them (as given and base64-encoded): the only line allowed to hold one is the
//!   `::add-mask::` line that hides it, and it must come first.
//! - Interruption: SIGINT and SIGTERM during a build and a Kubernetes rollout wait: exit 130
//!   (both signals: the runner treats SIGTERM, which a cancelled Actions job sends, as the
//!   interruption it is, not as a crash), the partial envelope on stdout, and a rerun that
//!   completes and is idempotent.
//! - Concurrency: two `release-tag --push` for one commit from two clones: one tag, one loser
//!   with a clear exit 1.

use base64::Engine as _;
use common::Envelope;
use common::envelope::Outcome;
use shipkit_tests::docker::{busybox, docker};
use shipkit_tests::ecr::ecr_login;
use shipkit_tests::http_server::{HttpServer, Reply};
use shipkit_tests::kube::KubeEmulator;
use shipkit_tests::{Cmd, Output, services, unique, workspace_bin};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory standing for an Actions job: its `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY` and
/// whatever else the tools are asked to write.
struct ActionsJob {
    dir: tempfile::TempDir,
}

impl ActionsJob {
    fn new() -> ActionsJob {
        ActionsJob {
            dir: tempfile::tempdir().expect("a job directory"),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `cmd` as an Actions step runs it, with the local services' settings.
    fn step(&self, cmd: Cmd) -> Cmd {
        let mut cmd = cmd
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.path("github_output"))
            .env("GITHUB_STEP_SUMMARY", self.path("step_summary.md"))
            .env("DOCKER_CONFIG", self.path("docker-config"));
        for (key, value) in services() {
            if key.starts_with("AWS_") || key.starts_with("SHIPKIT_") || key == "DOCKER_HOST" {
                cmd = cmd.env(&key, value);
            }
        }
        cmd
    }

    /// Every file in the job's directory, with its text.
    fn files(&self) -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        let mut found = Vec::new();
        walk(self.dir.path(), &mut found);
        found
    }
}

/// A secret and the forms it could leak in (as given; base64, as in a Secret or a header).
fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ]
}

/// Where any form of `secrets` appears in `out` or the job's files, other than in the
/// `::add-mask::` line that must come before any use; each hit as `where: line`.
fn leaks(secrets: &[String], out: &Output, job: &ActionsJob) -> Vec<String> {
    let forms: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
    let mut texts = vec![
        ("stdout".to_owned(), out.stdout.clone()),
        ("stderr".to_owned(), out.stderr.clone()),
    ];
    texts.extend(
        job.files()
            .into_iter()
            .map(|(path, text)| (path.display().to_string(), text)),
    );
    let mut hits = Vec::new();
    for (place, text) in &texts {
        for form in &forms {
            for line in text.lines().filter(|l| l.contains(form.as_str())) {
                // A mask may cover more than the secret (`Bearer <token>`): it still hides it.
                let masking = place == "stderr" && line.starts_with("::add-mask::");
                if !masking {
                    hits.push(format!("{place}: {line}"));
                }
            }
        }
    }
    // A mask hides what follows it only: it must be the first line naming the secret.
    for form in &forms {
        let first = out.stderr.lines().position(|l| l.contains(form.as_str()));
        let mask = out
            .stderr
            .lines()
            .position(|l| l.starts_with("::add-mask::") && l.contains(form.as_str()));
        if let (Some(first), Some(mask)) = (first, mask)
            && first < mask
        {
            hits.push(format!(
                "stderr: the mask of a secret comes after line {first}"
            ));
        }
    }
    hits
}

/// Asserts the step ended with `code` and leaked none of `secrets`.
#[track_caller]
fn assert_no_leak(what: &str, out: &Output, code: i32, secrets: &[String], job: &ActionsJob) {
    out.assert_code(code);
    let hits = leaks(secrets, out, job);
    assert!(
        hits.is_empty(),
        "{what} leaked a secret:\n{}",
        hits.join("\n")
    );
}

/// A small local image `reference` (busybox and a file unique to it); removed by the caller.
fn small_image(reference: &str) {
    let dir = tempfile::tempdir().expect("a build context");
    std::fs::copy(busybox(), dir.path().join("busybox")).expect("busybox in the context");
    std::fs::write(dir.path().join("id.txt"), unique("reliability")).expect("a file");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY id.txt /id.txt\n",
    )
    .expect("a Dockerfile");
    let context = dir.path().display().to_string();
    let out = docker(&["build", "--no-cache", "-q", "-t", reference, &context]);
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes local images when dropped.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = docker(&["rmi", "-f", reference]);
        }
    }
}

#[test]
fn img_push_never_shows_the_registry_password_or_the_ecr_token() {
    let settings = services();
    let registry = settings["SHIPKIT_REGISTRY"].clone();
    let password = std::fs::read_to_string(&settings["SHIPKIT_REGISTRY_PASSWORD_FILE"])
        .expect("the registry password")
        .trim()
        .to_owned();
    let name = unique("rel-secret");
    let local = format!("{name}:v1");
    let mut cleanup = RemoveImages(vec![local.clone()]);
    small_image(&local);

    // The registry password, on stdin, with every request logged (-vv).
    let job = ActionsJob::new();
    let envelope = job.path("built.json");
    std::fs::write(
        &envelope,
        format!("{{\"schema\":\"shipkit/v1\",\"images\":[{{\"name\":\"{name}\",\"tags\":[\"{local}\"]}}]}}"),
    )
    .expect("the input envelope");
    let out = job
        .step(Cmd::tool("img-push"))
        .args([
            "--registry",
            &registry,
            "--username",
            "shipkit",
            "--password-stdin",
        ])
        .args([
            "--input",
            &envelope,
            "--output",
            &job.path("pushed.json"),
            "-vv",
        ])
        .stdin(password.clone())
        .run();
    cleanup.0.push(format!("{registry}/{name}:v1"));
    assert_no_leak(
        "img-push --password-stdin",
        &out,
        0,
        std::slice::from_ref(&password),
        &job,
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.strip_prefix("::add-mask::") == Some(password.as_str())),
        "the password was not masked before use:\n{}",
        out.stderr
    );

    // moto's ECR token (base64 `AWS:<password>`) and the password inside it.
    let login = ecr_login();
    let token = format!("{}:{}", login.user, login.password);
    let job = ActionsJob::new();
    let out = job
        .step(Cmd::tool("img-push"))
        .args(["--ecr", "--create-repository", "--image", &local, "-vv"])
        .run();
    cleanup
        .0
        .push(format!("{}/{name}:v1", settings["SHIPKIT_ECR_HOST"]));
    assert_no_leak(
        "img-push --ecr",
        &out,
        0,
        &[login.password.clone(), token],
        &job,
    );
}

#[test]
fn k8s_apply_never_shows_a_secrets_data_or_the_eks_token() {
    let emulator = KubeEmulator::start();
    let job = ActionsJob::new();
    let value = unique("s3cr3t-value");
    // The user's own file, outside what the job's files are searched in.
    let manifests = tempfile::tempdir().expect("a directory for the manifest");
    let manifest = manifests.path().join("secret.yaml").display().to_string();
    let write_secret = |value: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: app, namespace: default}}\n\
                 stringData: {{password: {value}}}\n---\n\
                 apiVersion: v1\nkind: Secret\nmetadata: {{name: app-b64, namespace: default}}\n\
                 data: {{token: {}}}\n",
                base64::engine::general_purpose::STANDARD.encode(value)
            ),
        )
        .expect("the manifest");
    };
    write_secret(&value);
    let eks = |job: &ActionsJob| {
        job.step(Cmd::tool("k8s-apply"))
            .env("AWS_ENDPOINT_URL_EKS", emulator.control_url())
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args(["--eks-cluster", "staging", "-f", &manifest, "-vv"])
    };
    let out = eks(&job).run();
    assert_no_leak(
        "k8s-apply (create)",
        &out,
        0,
        std::slice::from_ref(&value),
        &job,
    );
    assert!(
        emulator.log().contains("EKS token of"),
        "no EKS token was checked"
    );
    let tokens: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("k8s-aws-v1."))
        .collect();
    assert!(
        tokens.iter().all(|l| l.starts_with("::add-mask::")),
        "the EKS token was printed: {tokens:?}"
    );

    // A changed Secret, dry run and for real: the diff must not show either value.
    let new_value = unique("n3w-s3cr3t");
    write_secret(&new_value);
    let both = [value.clone(), new_value.clone()];
    let out = eks(&job).args(["--dry-run"]).run();
    assert_no_leak("k8s-apply --dry-run (changed Secret)", &out, 0, &both, &job);
    let out = eks(&job).run();
    assert_no_leak("k8s-apply (changed Secret)", &out, 0, &both, &job);
}

#[test]
fn health_wait_never_shows_the_authorization_header() {
    let token = unique("b3arer-t0ken");
    let expected = format!("Bearer {token}");
    let server = HttpServer::serving(move |request| {
        match request.header("authorization") == Some(expected.as_str()) {
            true if request.number >= 3 => Reply::ok("ok"),
            true => Reply::new(503, "warming up"),
            false => Reply::new(401, "who are you"),
        }
    });
    let job = ActionsJob::new();
    let out = job
        .step(Cmd::tool("health-wait"))
        .args([
            "--url",
            &server.url("/private"),
            "--interval",
            "100ms",
            "-vv",
        ])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--output", &job.path("health.json")])
        .run();
    assert_no_leak("health-wait", &out, 0, &[token], &job);
}

/// A tool started in the background with its stderr read line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(tool: &str, args: &[&str], env: &[(&str, String)]) -> Running {
        let mut command = Command::new(workspace_bin(tool));
        command
            .args(args)
            .env_remove("GITHUB_ACTIONS")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in services() {
            if key.starts_with("AWS_") || key == "DOCKER_HOST" {
                command.env(key, value);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the tool");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Waits (at most `within`) for a stderr line containing `text`.
    fn wait_for_line(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(text);
                self.stderr.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "no stderr line with {text:?} within {within:?}:\n{}",
            self.stderr.join("\n")
        );
    }

    /// Sends `signal` (`INT`, `TERM`) to the tool (by its pid) and collects how it ended.
    fn signal_and_wait(mut self, signal: &str) -> Output {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal}");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_string(&mut stdout)
            .expect("the tool's stdout");
        let status = self.child.wait().expect("the tool ends");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.stderr.push(line);
        }
        Output {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.join("\n"),
        }
    }
}

/// The interrupted run's envelope: exit 130 for either signal, `failed` saying so.
#[track_caller]
fn assert_interrupted(out: &Output) -> Envelope {
    out.assert_code(130);
    let envelope = out.envelope();
    let failed = envelope
        .failed
        .clone()
        .expect("the envelope says it was interrupted");
    assert_eq!(
        (failed.exit_code, failed.error.as_str()),
        (130, "interrupted")
    );
    envelope
}

#[test]
fn an_interrupted_kubernetes_rollout_wait_reports_in_progress_and_a_rerun_is_idempotent() {
    // Pods are stored, never run: the Deployment never becomes available.
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().expect("a directory for the manifest");
    let manifest = dir.path().join("web.yaml").display().to_string();
    // Each run a new image, so each has a rollout to wait for.
    let write_manifest = |tag: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: default}}\n\
                 spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
                 metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: \"busybox:{tag}\"}}]}}\n"
            ),
        )
        .expect("the manifest");
    };
    let env = [
        ("KUBECONFIG", emulator.kubeconfig.display().to_string()),
        ("K8S_APPLY_POLL", "250ms".to_owned()),
    ];
    let args = ["--context", "staging", "-f", &manifest, "--timeout", "2m"];
    for (signal, tag) in [("INT", "1"), ("TERM", "2")] {
        write_manifest(tag);
        let mut running = Running::start("k8s-apply", &args, &env);
        running.wait_for_line("Deployment default/web:", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(500));
        let out = running.signal_and_wait(signal);
        let envelope = assert_interrupted(&out);
        let deployment = &envelope.deployments[0];
        assert_eq!(
            deployment.outcome,
            Outcome::InProgress,
            "SIG{signal}: {}",
            out.stdout
        );
    }
    // Nothing is left in the way: the same apply again changes nothing and says so.
    let out = Cmd::tool("k8s-apply")
        .env("KUBECONFIG", emulator.kubeconfig.display().to_string())
        .args(["--context", "staging", "-f", &manifest, "--no-wait"])
        .run();
    out.assert_code(0);
    let envelope = out.envelope();
    assert_eq!(
        envelope.deployments[0].outcome,
        Outcome::Unchanged,
        "{}",
        out.stdout
    );
}

#[test]
fn an_interrupted_build_reports_it_and_a_rerun_builds_then_reuses() {
    let dir = tempfile::tempdir().expect("a build context");
    std::fs::copy(busybox(), dir.path().join("busybox")).expect("busybox in the context");
    std::fs::write(dir.path().join("id.txt"), unique("interrupted-build")).expect("a file");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY id.txt /id.txt\nARG PAUSE=0\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep $PAUSE\"]\n",
    )
    .expect("a Dockerfile");
    let context = dir.path().display().to_string();
    let reference = format!("{}:v1", unique("rel-build"));
    let _cleanup = RemoveImages(vec![reference.clone()]);
    for signal in ["INT", "TERM"] {
        let mut running = Running::start(
            "img-build",
            &[
                "--context",
                &context,
                "-t",
                &reference,
                "--build-arg",
                "PAUSE=60",
            ],
            &[],
        );
        // The RUN step has started (BuildKit: `[3/3] RUN …`; the classic builder: `Step 5/5 : RUN …`).
        running.wait_for_line("RUN [", Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(500));
        let out = running.signal_and_wait(signal);
        assert_interrupted(&out);
        assert!(
            shipkit_tests::docker::image_id(&reference).is_none(),
            "SIG{signal}: an interrupted build tagged {reference}"
        );
    }
    let build = || {
        Cmd::tool("img-build")
            .args([
                "--context",
                &context,
                "-t",
                &reference,
                "--build-arg",
                "PAUSE=0",
            ])
            .run()
    };
    let first = build();
    first.assert_code(0);
    assert_eq!(
        first.envelope().images[0].cache_hit,
        Some(false),
        "{}",
        first.stdout
    );
    let second = build();
    second.assert_code(0);
    assert_eq!(
        second.envelope().images[0].cache_hit,
        Some(true),
        "{}",
        second.stdout
    );
    assert_eq!(
        first.envelope().images[0].id,
        second.envelope().images[0].id
    );
}

#[test]
fn two_release_tag_pushes_for_one_commit_make_one_tag_and_one_clear_loser() {
    let dir = tempfile::tempdir().expect("a directory for the repositories");
    let git = |cwd: &Path, args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(cwd)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let remote = dir.path().join("remote.git");
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&remote).expect("the remote");
    std::fs::create_dir_all(&seed).expect("the seed");
    git(&remote, &["init", "--quiet", "--bare"]);
    git(&seed, &["init", "--quiet"]);
    git(
        &seed,
        &["commit", "--quiet", "--allow-empty", "-m", "feat: racing"],
    );
    git(
        &seed,
        &[
            "push",
            "--quiet",
            &remote.display().to_string(),
            "HEAD:refs/heads/main",
        ],
    );
    let clones: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|name| {
            let clone = dir.path().join(name);
            git(
                dir.path(),
                &[
                    "clone",
                    "--quiet",
                    "--branch",
                    "main",
                    &remote.display().to_string(),
                    &clone.display().to_string(),
                ],
            );
            clone
        })
        .collect();

    // Both compute v0.1.0 for the same commit and push at once, many times over so that the
    // two pushes really overlap at least once (each round starts from no tag).
    let mut losers = 0;
    for round in 0..3 {
        let outs: Vec<Output> = std::thread::scope(|scope| {
            let runs: Vec<_> = clones
                .iter()
                .enumerate()
                .map(|(i, clone)| {
                    scope.spawn(move || {
                        // The last round: the second run tags a second later, so its tag
                        // object differs and it must lose.
                        if round == 2 && i == 1 {
                            std::thread::sleep(Duration::from_millis(1100));
                        }
                        Cmd::tool("release-tag")
                            .env("GIT_COMMITTER_NAME", "t")
                            .env("GIT_COMMITTER_EMAIL", "t@example.com")
                            .args(["--repo", &clone.display().to_string(), "--push"])
                            .run()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().expect("a run")).collect()
        });
        // One tag on the remote. A run that says it pushed has exactly that tag object (two
        // runs in the same second make byte-identical annotated tags: both may then be
        // true); the other loses with exit 1 and the remote's refusal — also when the two
        // objects are identical and the remote's ref lock decided (seen: "cannot lock ref").
        let remote_tags = git(&remote, &["tag", "--list"]);
        assert_eq!(remote_tags.trim(), "v0.1.0", "round {round}");
        let on_remote = git(&remote, &["rev-parse", "refs/tags/v0.1.0"]);
        for (clone, out) in clones.iter().zip(&outs) {
            let local = git(clone, &["rev-parse", "refs/tags/v0.1.0"]);
            let release = out.envelope().release.expect("a release in the envelope");
            match out.code {
                0 => {
                    assert!(release.pushed, "round {round}: {}", out.stdout);
                    assert_eq!(local, on_remote, "round {round}: it claims another's tag");
                }
                1 => {
                    assert!(!release.pushed, "round {round}: the loser claims it pushed");
                    let error = out.envelope().failed.expect("the loser says why").error;
                    assert!(
                        error.contains("pushing v0.1.0") && error.contains("already exists"),
                        "round {round}: the loser's error is not clear: {error}"
                    );
                }
                other => panic!("round {round}: exit {other}: {out:#?}"),
            }
        }
        losers += outs.iter().filter(|o| o.code == 1).count();
        // Reset for the next round: no tag anywhere.
        git(&remote, &["tag", "-d", "v0.1.0"]);
        for clone in &clones {
            let _ = Command::new("git")
                .arg("-C")
                .arg(clone)
                .args(["tag", "-d", "v0.1.0"])
                .output();
        }
    }
    assert!(losers >= 1, "no run lost the race in any round");
}
