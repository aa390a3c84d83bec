//! Reliability across the tools: secrets that never leak, interruption that leaves a report
//! and nothing in the way of a rerun, two runs racing for one release.
//!
//! - Secrets: the tools run as under GitHub Actions (`GITHUB_ACTIONS=true`, `GITHUB_OUTPUT`,
//!   `GITHUB_STEP_SUMMARY` in a directory of the test's own) with known secrets — the local
//!   registry's password, moto's ECR token, the EKS token, a Secret's data in a manifest, an
//!   `Authorization` header — and every stdout, stderr, envelope and file written is searched
//!   for them (as given and base64-encoded): the only line allowed to hold one is the
//!   `::add-mask::` line that hides it, and it must come first.
//! - Interruption: SIGINT and SIGTERM during a build, a push, a Kubernetes rollout wait, an
//!   ECS rollout wait and an ECS rollback: exit 130 (both signals: the runner treats SIGTERM,
//!   which a cancelled Actions job sends, as the interruption it is, not as a crash), the
//!   partial envelope on stdout saying what was done, nothing left in the way of a rerun, and
//!   a rerun that completes and is idempotent.
//! - Concurrency: two `release-tag --push` for one commit from two clones: one tag, one loser
//!   with a clear exit 1. Two ecs-roll runs rolling one ECS service to different images, and
//!   two k8s-apply runs applying one Deployment with different images, at once: the run
//!   whose change was replaced says `superseded` (exit 1) and rolls nothing back over the
//!   other's; neither reports success for the other's image.

use base64::Engine as _;
use common::Envelope;
use common::envelope::Outcome;
use shipkit_tests::docker::{build_fixture, busybox, docker};
use shipkit_tests::ecr::ecr_login;
use shipkit_tests::ecs::{
    EcsEmulator, TestImages, create_web_service, ecs_client, http_get, pushed_envelope, revisions,
    service_task_definition,
};
use shipkit_tests::fault_proxy::{Exchange, Fault, FaultProxy};
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
    build_fixture(dir.path(), reference);
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
    fn signal_and_wait(self, signal: &str) -> Output {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal}");
        self.finish()
    }

    /// Waits for the tool to end on its own and collects how it ended.
    fn finish(mut self) -> Output {
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

/// The ECS emulator's cluster the ECS tests use.
const CLUSTER: &str = "dev";

/// `cmd` with the local services' AWS settings, talking to the ECS emulator at `ecs`.
fn with_ecs(cmd: Cmd, ecs: &str) -> Cmd {
    let mut cmd = cmd;
    for (key, value) in services() {
        if key.starts_with("AWS_") {
            cmd = cmd.env(&key, value);
        }
    }
    cmd.env("AWS_ENDPOINT_URL_ECS", ecs)
}

/// Writes `envelope` to `name` in `dir` (a tool started by [`Running`] reads `--input FILE`).
fn input_file(dir: &Path, name: &str, envelope: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, envelope.to_string()).expect("the input envelope");
    path.display().to_string()
}

/// `family:revision` of a task definition ARN, as ecs-roll's lines name it.
fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Waits until the service's load balancer answers `path` with `body`.
async fn serving(emulator: &EcsEmulator, service: &str, path: &str, body: &str) {
    let port = emulator.lb_port(CLUSTER, service);
    shipkit_tests::wait::wait_for(
        Duration::from_secs(90),
        &format!("{service} to serve {body:?} on {path}"),
        || async move {
            http_get(port, path)
                .ok()
                .filter(|(status, text)| *status == 200 && text.contains(body))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_ecs_rollout_wait_reports_in_progress_and_a_rerun_follows_it_to_the_end() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let v1 = images.http("shipkit-tests/rel-web", &[("auth", "v1\n")]);
    let v1 = images.push_to_ecr(&v1);
    // v2 answers HTTP only 20 s after it starts: its deployment is in progress that long.
    let v2 = images.http_after(
        "shipkit-tests/rel-web",
        &[("auth", "v2\n")],
        Duration::from_secs(20),
    );
    let v2 = images.push_to_ecr(&v2);
    let service = unique("rel-web");
    let first = create_web_service(&client, CLUSTER, &service, &v1, 1, true).await;
    serving(&emulator, &service, "/auth", "v1").await;
    let dir = tempfile::tempdir().expect("a directory for the envelope");
    let input = input_file(dir.path(), "pushed.json", &pushed_envelope(&[&v2]));
    let env = [
        ("AWS_ENDPOINT_URL_ECS", emulator.url()),
        ("ECS_ROLL_POLL", "500ms".to_owned()),
        ("ECS_ROLL_STABLE_FOR", "1s".to_owned()),
    ];
    let args = [
        "--cluster",
        CLUSTER,
        "--service",
        &service,
        "--input",
        &input,
        "--timeout",
        "5m",
    ];
    // SIGINT during the first run's wait; SIGTERM during the rerun's, which must follow the
    // same deployment (nothing registered or deployed again).
    let mut followed: Option<String> = None;
    for signal in ["INT", "TERM"] {
        let mut running = Running::start("ecs-roll", &args, &env);
        running.wait_for_line("following deployment", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(500));
        let out = running.signal_and_wait(signal);
        let envelope = assert_interrupted(&out);
        let d = &envelope.deployments[0];
        assert_eq!(
            d.outcome,
            Outcome::InProgress,
            "SIG{signal}: {}",
            out.stdout
        );
        assert_eq!(
            d.ecs.previous_task_definition.as_deref(),
            Some(first.as_str())
        );
        let id = d.ecs.deployment_id.clone().expect("the deployment's id");
        assert_eq!(
            followed.get_or_insert(id.clone()),
            &id,
            "SIG{signal}: {}",
            out.stderr
        );
        assert_eq!(revisions(&client, &service).await, 2, "SIG{signal}");
    }
    // The rerun follows the deployment to its end; the one after changes nothing.
    let rerun = || {
        with_ecs(Cmd::tool("ecs-roll"), &emulator.url())
            .env("ECS_ROLL_POLL", "500ms")
            .env("ECS_ROLL_STABLE_FOR", "1s")
            .args(args)
            .run()
    };
    let done = tokio::task::block_in_place(rerun);
    done.assert_code(0);
    let d = &done.envelope().deployments[0];
    assert_eq!(d.outcome, Outcome::Completed, "{}", done.stdout);
    assert_eq!(d.ecs.deployment_id, followed, "{}", done.stderr);
    let second = service_task_definition(&client, CLUSTER, &service).await;
    assert_eq!(d.ecs.live_task_definition.as_deref(), Some(second.as_str()));
    assert_ne!(second, first);
    serving(&emulator, &service, "/auth", "v2").await;
    let again = tokio::task::block_in_place(rerun);
    again.assert_code(0);
    assert_eq!(
        again.envelope().deployments[0].outcome,
        Outcome::Unchanged,
        "{}",
        again.stdout
    );
    assert_eq!(revisions(&client, &service).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_ecs_rollback_reports_rolling_back_and_a_rerun_rolls_back_to_the_same() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let v1 = images.http("shipkit-tests/rel-web", &[("auth", "v1\n")]);
    let v1 = images.push_to_ecr(&v1);
    let deaf = images.deaf("shipkit-tests/rel-web");
    let deaf = images.push_to_ecr(&deaf);
    let service = unique("rel-web");
    let first = create_web_service(&client, CLUSTER, &service, &v1, 1, true).await;
    serving(&emulator, &service, "/auth", "v1").await;
    let dir = tempfile::tempdir().expect("a directory for the envelope");
    let input = input_file(dir.path(), "pushed.json", &pushed_envelope(&[&deaf]));
    let args = [
        "--cluster",
        CLUSTER,
        "--service",
        &service,
        "--input",
        &input,
        "--timeout",
        "3s",
    ];
    // The rollback must hold for a minute before it counts: the signal comes while it does.
    let env = [
        ("AWS_ENDPOINT_URL_ECS", emulator.url()),
        ("ECS_ROLL_POLL", "500ms".to_owned()),
        ("ECS_ROLL_STABLE_FOR", "60s".to_owned()),
    ];
    let rollback_line = format!("PRIMARY {}", short_task_definition(&first));
    for signal in ["INT", "TERM"] {
        let mut running = Running::start("ecs-roll", &args, &env);
        running.wait_for_line("rolling back to", Duration::from_secs(90));
        // The rollback's own deployment, seen by its first poll.
        running.wait_for_line(&rollback_line, Duration::from_secs(60));
        let out = running.signal_and_wait(signal);
        let envelope = assert_interrupted(&out);
        let d = &envelope.deployments[0];
        assert_eq!(
            d.outcome,
            Outcome::RollingBack,
            "SIG{signal}: {}",
            out.stdout
        );
        let failure = d.failure.as_ref().expect("why it is rolled back");
        assert!(
            failure.reason.contains("not rolled out after 3s"),
            "SIG{signal}: {}",
            out.stdout
        );
        assert!(
            d.ecs.rollback_deployment_id.is_some(),
            "SIG{signal}: {}",
            out.stdout
        );
        assert_eq!(
            d.ecs.previous_task_definition.as_deref(),
            Some(first.as_str())
        );
        // The service is on its way back already: ECS carries on without ecs-roll.
        assert_eq!(
            service_task_definition(&client, CLUSTER, &service).await,
            first
        );
    }
    // Nothing in the way: the same step again fails the same way and rolls back to the end.
    let out = tokio::task::block_in_place(|| {
        with_ecs(Cmd::tool("ecs-roll"), &emulator.url())
            .env("ECS_ROLL_POLL", "500ms")
            .env("ECS_ROLL_STABLE_FOR", "1s")
            .args(args)
            .run()
    });
    out.assert_code(124);
    let d = &out.envelope().deployments[0];
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stdout);
    assert_eq!(d.ecs.live_task_definition.as_deref(), Some(first.as_str()));
    assert_eq!(
        service_task_definition(&client, CLUSTER, &service).await,
        first
    );
    serving(&emulator, &service, "/auth", "v1").await;
}

/// A proxy to `registry` that holds every blob upload to repository `held` (15 s, then a
/// reset) while `hold` is set, and forwards everything else.
fn holding_proxy(
    registry: &str,
    held: &str,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> FaultProxy {
    let uploads = format!("/v2/{held}/blobs/uploads/");
    FaultProxy::builder(registry)
        .script(move |e: &Exchange| {
            let holding = hold.load(std::sync::atomic::Ordering::SeqCst);
            match holding && e.path().starts_with(&uploads) {
                true => Fault::Stall(Duration::from_secs(15)),
                false => Fault::Forward,
            }
        })
        .start()
}

/// Whether the proxy saw `repository:tag`'s manifest written and then read back (img-push
/// checks the digest with the registry before it records the push).
fn manifest_written_and_checked(proxy: &FaultProxy, repository: &str, tag: &str) -> bool {
    let manifest = format!("/v2/{repository}/manifests/{tag}");
    let log = proxy.log();
    let put = log
        .iter()
        .position(|l| l.method == "PUT" && l.target == manifest);
    put.is_some_and(|put| {
        log[put..]
            .iter()
            .any(|l| l.method == "HEAD" && l.target == manifest)
    })
}

/// The `(tag, digest, skipped)` entries img-push recorded for image `name`.
fn pushed_of(envelope: &Envelope, name: &str) -> Vec<(String, String, bool)> {
    envelope
        .images
        .iter()
        .filter(|i| i.name == name)
        .flat_map(|i| &i.pushed)
        .map(|p| (p.tag.clone(), p.digest.clone(), p.skipped))
        .collect()
}

#[test]
fn an_interrupted_push_reports_what_was_pushed_and_a_rerun_pushes_the_rest_once() {
    let settings = services();
    let registry = settings["SHIPKIT_REGISTRY"].clone();
    let password = std::fs::read_to_string(&settings["SHIPKIT_REGISTRY_PASSWORD_FILE"])
        .expect("the registry password")
        .trim()
        .to_owned();
    for signal in ["INT", "TERM"] {
        let (done, held) = (unique("rel-push-done"), unique("rel-push-held"));
        let locals = [format!("{done}:v1"), format!("{held}:v1")];
        let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let proxy = holding_proxy(&registry, &held, hold.clone());
        let _cleanup = RemoveImages(
            locals
                .iter()
                .cloned()
                .chain(
                    [done.clone(), held.clone()]
                        .iter()
                        .map(|n| format!("{}/{n}:v1", proxy.host())),
                )
                .collect(),
        );
        for local in &locals {
            small_image(local);
        }
        // The registry's user, as `docker login` to the proxy's address writes it.
        let job = ActionsJob::new();
        let config = job.path("docker-config");
        std::fs::create_dir_all(&config).expect("a Docker config directory");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("shipkit:{password}"));
        std::fs::write(
            Path::new(&config).join("config.json"),
            serde_json::json!({"auths": {proxy.host(): {"auth": auth}}}).to_string(),
        )
        .expect("the Docker config");
        let args = [
            "--registry",
            &proxy.host(),
            "--image",
            &locals[0],
            "--image",
            &locals[1],
            "--retries",
            "1",
            "--retry-delay",
            "100ms",
        ];
        let env = [("DOCKER_CONFIG", config.clone())];
        let running = Running::start("img-push", &args, &env);
        let t0 = Instant::now();
        while !(manifest_written_and_checked(&proxy, &done, "v1") && proxy.injected() > 0) {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "SIG{signal}: {done} was not pushed while {held} was held:\n{}",
                proxy.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        let out = running.signal_and_wait(signal);
        let envelope = assert_interrupted(&out);
        let pushed = pushed_of(&envelope, &done);
        assert_eq!(pushed.len(), 1, "SIG{signal}: {}", out.stdout);
        let (tag, digest, skipped) = pushed[0].clone();
        assert_eq!(
            (tag.as_str(), skipped),
            ("v1", false),
            "SIG{signal}: {}",
            out.stdout
        );
        assert!(digest.starts_with("sha256:"), "SIG{signal}: {}", out.stdout);
        assert!(
            pushed_of(&envelope, &held).is_empty(),
            "SIG{signal}: {}",
            out.stdout
        );

        // Nothing in the way: the rerun skips what was pushed and pushes the rest; the one
        // after pushes nothing. (The Engine does not cancel a push whose client went away
        // while a registry request hangs: the rerun's push of the held layers waits for
        // that request to end, here the proxy's 15 s stall, then completes.)
        hold.store(false, std::sync::atomic::Ordering::SeqCst);
        let push = || {
            let mut cmd = Cmd::tool("img-push").args(args);
            for (key, value) in &env {
                cmd = cmd.env(key, value.clone());
            }
            cmd.run()
        };
        let rerun = push();
        rerun.assert_code(0);
        let envelope = rerun.envelope();
        assert_eq!(
            pushed_of(&envelope, &done),
            [("v1".to_owned(), digest.clone(), true)],
            "SIG{signal}: {}",
            rerun.stdout
        );
        let rest = pushed_of(&envelope, &held);
        assert_eq!(rest.len(), 1, "SIG{signal}: {}", rerun.stdout);
        assert!(!rest[0].2, "SIG{signal}: {}", rerun.stdout);
        let again = push();
        again.assert_code(0);
        let envelope = again.envelope();
        for name in [&done, &held] {
            let entries = pushed_of(&envelope, name);
            assert!(
                entries.len() == 1 && entries[0].2,
                "SIG{signal}: {name} pushed again: {}",
                again.stdout
            );
        }
        assert_eq!(pushed_of(&envelope, &held)[0].1, rest[0].1);
    }
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
    let git = shipkit_tests::git;
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

#[tokio::test(flavor = "multi_thread")]
async fn two_ecs_rolls_of_one_service_at_once_never_claim_each_others_image() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let v1 = images.http("shipkit-tests/race-web", &[("auth", "v1\n")]);
    let v1 = images.push_to_ecr(&v1);
    let deaf = images.deaf("shipkit-tests/race-web");
    let deaf = images.push_to_ecr(&deaf);
    let v2 = images.http("shipkit-tests/race-web", &[("auth", "v2\n")]);
    let v2 = images.push_to_ecr(&v2);
    let service = unique("race-web");
    let first = create_web_service(&client, CLUSTER, &service, &v1, 1, true).await;
    serving(&emulator, &service, "/auth", "v1").await;
    let dir = tempfile::tempdir().expect("a directory for the envelopes");
    let slow_input = input_file(dir.path(), "deaf.json", &pushed_envelope(&[&deaf]));
    let env = [
        ("AWS_ENDPOINT_URL_ECS", emulator.url()),
        ("ECS_ROLL_POLL", "500ms".to_owned()),
        ("ECS_ROLL_STABLE_FOR", "1s".to_owned()),
    ];
    // The first run's image never becomes healthy: it is still waiting when the second run
    // rolls the service to v2.
    let mut slow = Running::start(
        "ecs-roll",
        &[
            "--cluster",
            CLUSTER,
            "--service",
            &service,
            "--input",
            &slow_input,
            "--timeout",
            "3m",
        ],
        &env,
    );
    slow.wait_for_line("following deployment", Duration::from_secs(60));
    let fast = tokio::task::block_in_place(|| {
        with_ecs(Cmd::tool("ecs-roll"), &emulator.url())
            .env("ECS_ROLL_POLL", "500ms")
            .env("ECS_ROLL_STABLE_FOR", "1s")
            .args([
                "--cluster",
                CLUSTER,
                "--service",
                &service,
                "--timeout",
                "3m",
            ])
            .stdin_json(&pushed_envelope(&[&v2]))
            .run()
    });
    let slow = tokio::task::block_in_place(|| slow.finish());
    let live = service_task_definition(&client, CLUSTER, &service).await;

    fast.assert_code(0);
    let won = &fast.envelope().deployments[0];
    assert_eq!(won.outcome, Outcome::Completed, "{}", fast.stdout);
    assert_eq!(won.ecs.live_task_definition.as_deref(), Some(live.as_str()));
    assert_eq!(won.images, std::slice::from_ref(&v2));

    slow.assert_code(1);
    let lost = &slow.envelope().deployments[0];
    assert_eq!(
        lost.outcome,
        Outcome::Superseded,
        "{}\n{}",
        slow.stdout,
        slow.stderr
    );
    assert_eq!(
        lost.ecs.live_task_definition.as_deref(),
        Some(live.as_str())
    );
    assert_ne!(lost.ecs.task_definition.as_deref(), Some(live.as_str()));
    assert!(lost.ecs.rollback_deployment_id.is_none(), "{}", slow.stdout);
    // Nothing was rolled back over the winner: v2 runs and serves.
    assert_ne!(live, first);
    serving(&emulator, &service, "/auth", "v2").await;
}

#[test]
fn two_k8s_applies_of_one_deployment_at_once_never_claim_each_others_image() {
    // Pods are stored, never run: the first run's rollout waits until the second replaces it.
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().expect("a directory for the manifests");
    let manifest = |name: &str, tag: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: default}}\n\
                 spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
                 metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: \"busybox:{tag}\"}}]}}\n"
            ),
        )
        .expect("a manifest");
        path.display().to_string()
    };
    let (first, second) = (manifest("a.yaml", "race-a"), manifest("b.yaml", "race-b"));
    let kubeconfig = emulator.kubeconfig.display().to_string();
    let env = [
        ("KUBECONFIG", kubeconfig.clone()),
        ("K8S_APPLY_POLL", "250ms".to_owned()),
    ];
    let mut waiting = Running::start(
        "k8s-apply",
        &["--context", "staging", "-f", &first, "--timeout", "2m"],
        &env,
    );
    waiting.wait_for_line("Deployment default/web:", Duration::from_secs(60));
    let other = Cmd::tool("k8s-apply")
        .env("KUBECONFIG", &kubeconfig)
        .args(["--context", "staging", "-f", &second, "--no-wait"])
        .run();
    let waiting = waiting.finish();
    let live = emulator.kubectl(&[
        "--context",
        "staging",
        "get",
        "deployment/web",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);

    other.assert_code(0);
    assert_eq!(other.envelope().deployments[0].outcome, Outcome::Started);
    waiting.assert_code(1);
    let lost = &waiting.envelope().deployments[0];
    assert_eq!(
        lost.outcome,
        Outcome::Superseded,
        "{}\n{}",
        waiting.stdout,
        waiting.stderr
    );
    let failure = lost.failure.as_ref().expect("why it stopped");
    assert_eq!(failure.reason, "Superseded", "{}", waiting.stdout);
    assert!(
        waiting.stderr.contains("busybox:race-b"),
        "it names what runs now: {}",
        waiting.stderr
    );
    // Nothing was rolled back over the other run's apply.
    assert_eq!(live.trim(), "busybox:race-b");
    assert!(
        !waiting.stderr.contains("rolling back"),
        "{}",
        waiting.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ecs_rolls_started_together_make_one_winner_and_one_superseded() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let mut version = |text: &str| {
        let local = images.http("shipkit-tests/race-web", &[("auth", text)]);
        images.push_to_ecr(&local)
    };
    let (v1, v2, v3) = (version("v1\n"), version("v2\n"), version("v3\n"));
    let service = unique("race-web");
    create_web_service(&client, CLUSTER, &service, &v1, 1, true).await;
    serving(&emulator, &service, "/auth", "v1").await;
    // Success must hold 5 s before it counts: far longer than the two runs take to start,
    // so neither can finish before the other has updated the service.
    let roll = |image: &str| {
        with_ecs(Cmd::tool("ecs-roll"), &emulator.url())
            .env("ECS_ROLL_POLL", "500ms")
            .env("ECS_ROLL_STABLE_FOR", "5s")
            .args([
                "--cluster",
                CLUSTER,
                "--service",
                &service,
                "--timeout",
                "3m",
            ])
            .stdin_json(&pushed_envelope(&[image]))
    };
    let (a, b) = (roll(&v2), roll(&v3));
    let outs = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let a = scope.spawn(|| a.run());
            let b = scope.spawn(|| b.run());
            [a.join().expect("run a"), b.join().expect("run b")]
        })
    });
    let live = service_task_definition(&client, CLUSTER, &service).await;
    let winners: Vec<usize> = (0..2).filter(|&i| outs[i].code == 0).collect();
    assert_eq!(winners.len(), 1, "one run wins: {outs:#?}");
    let (won, lost) = (&outs[winners[0]], &outs[1 - winners[0]]);
    let won_entry = &won.envelope().deployments[0];
    assert_eq!(won_entry.outcome, Outcome::Completed, "{}", won.stdout);
    assert_eq!(
        won_entry.ecs.live_task_definition.as_deref(),
        Some(live.as_str())
    );
    lost.assert_code(1);
    let lost_entry = &lost.envelope().deployments[0];
    assert_eq!(
        lost_entry.outcome,
        Outcome::Superseded,
        "{}\n{}",
        lost.stdout,
        lost.stderr
    );
    assert_eq!(
        lost_entry.ecs.live_task_definition.as_deref(),
        Some(live.as_str())
    );
    assert!(
        lost_entry.ecs.rollback_deployment_id.is_none(),
        "{}",
        lost.stdout
    );
    // What serves is the winner's image.
    let body = if won_entry.images == std::slice::from_ref(&v2) {
        "v2"
    } else {
        "v3"
    };
    serving(&emulator, &service, "/auth", body).await;
}
