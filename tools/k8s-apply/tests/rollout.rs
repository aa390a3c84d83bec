//! k8s-apply waiting for real rollouts: a kube-emulator of each test's own whose kubelet runs
//! pods as containers on the local Docker Engine (`scripts/services up`; the images are
//! `FROM scratch` busybox, built locally). A Deployment rolls out; a missing image fails
//! within seconds with the registry's reason and is rolled back while the old pods serve; a
//! crashing image fails after --fail-after with its exit code and log lines, rolled back;
//! the end of a rollout is seen as the server reports it, whatever --poll says.

use common::envelope::Outcome;
use shipkit_tests::Cmd;
use shipkit_tests::ecr::ecr_host;
use shipkit_tests::ecs::{CRASH_EXIT_CODE, build_http_image, crashing_image};
use shipkit_tests::kube::KubeEmulator;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{RemoveImages, deployment};

/// A local image tag no other test uses.
fn image(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("k8s-apply-tests/{name}:{}-{n}", std::process::id())
}

/// A new local image `name` serving `v1` over HTTP, removed when the guard is dropped.
fn served_image(name: &str) -> (String, RemoveImages) {
    let v1 = image(name);
    build_http_image(&v1, &[("/index.html", "v1")]);
    let guard = RemoveImages(vec![v1.clone()]);
    (v1, guard)
}

fn web(replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports: [{{containerPort: 8080}}]
"
    )
}

fn k8s_apply(emulator: &KubeEmulator, manifest: &std::path::Path) -> Cmd {
    support::k8s_apply(emulator)
        .args(["--poll", "500ms", "--timeout", "90s"])
        .args(["--rollback-timeout", "90s", "-f"])
        .args([manifest.display().to_string()])
}

fn live(emulator: &KubeEmulator, path: &str) -> String {
    emulator.kubectl(&[
        "--context",
        "staging",
        "get",
        "deployment/web",
        "-o",
        &format!("jsonpath={path}"),
    ])
}

/// Applies `web` with `v1` and waits for it, as the first deploy does.
fn first_deploy(emulator: &KubeEmulator, dir: &std::path::Path, v1: &str) -> std::path::PathBuf {
    let manifest = dir.join("web.yaml");
    std::fs::write(&manifest, web(2, v1)).unwrap();
    let out = k8s_apply(emulator, &manifest).run();
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::Completed, "{}", out.stderr);
    assert_eq!(
        d.kubernetes.resources.unwrap()[0].outcome,
        Outcome::Completed
    );
    assert!(
        out.stderr
            .contains("Deployment default/web: 2 of 2 updated replicas available"),
        "{}",
        out.stderr
    );
    manifest
}

#[test]
fn a_deployment_rolls_out_and_completes() {
    let (v1, _images) = served_image("web");
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    first_deploy(&emulator, dir.path(), &v1);
    assert_eq!(live(&emulator, "{.status.availableReplicas}"), "2");
}

#[test]
fn the_end_of_a_rollout_is_seen_when_the_server_reports_it_not_at_the_next_poll() {
    // With --poll 1h the next look after the apply would be an hour away: the run completes
    // within its --timeout only because the watch wakes it as the Deployment changes.
    let (v1, _images) = served_image("web");
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, web(2, &v1)).unwrap();
    let out = support::k8s_apply(&emulator)
        .args(["--poll", "1h", "--timeout", "60s", "-f"])
        .args([manifest.display().to_string()])
        .run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).outcome,
        Outcome::Completed,
        "{}",
        out.stderr
    );
    assert_eq!(live(&emulator, "{.status.availableReplicas}"), "2");
}

#[test]
fn a_missing_image_fails_within_seconds_with_the_registrys_reason_and_is_rolled_back() {
    let (v1, _images) = served_image("web");
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    let manifest = first_deploy(&emulator, dir.path(), &v1);

    let ecr = ecr_host();
    let missing = format!("{ecr}/k8s-apply-tests/missing:v1");
    let t0 = Instant::now();
    let out = k8s_apply(&emulator, &manifest)
        .args(["--image", &format!("web={missing}"), "--fail-after", "5s"])
        .run();
    let took = t0.elapsed();
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stderr);
    let failure = d.failure.expect("a failure");
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].contains(&failure.reason.as_str()),
        "{failure:?}"
    );
    let k = &failure.kubernetes;
    assert_eq!(k.resource.as_deref(), Some("Deployment default/web"));
    assert_eq!(k.container.as_deref(), Some("app"));
    assert!(k.pod.as_deref().unwrap().starts_with("web-"), "{failure:?}");
    assert!(
        k.message.as_deref().unwrap().contains("missing"),
        "{failure:?}"
    );
    // The registry says "manifest unknown": no --fail-after wait (5 s here) before failing.
    assert!(took < Duration::from_secs(15), "reported after {took:?}");
    assert_eq!(
        live(&emulator, "{.spec.template.spec.containers[0].image}"),
        v1
    );
    assert_eq!(
        live(&emulator, "{.status.availableReplicas}"),
        "2",
        "the old pods serve"
    );
}

#[test]
fn a_crashing_image_fails_after_fail_after_with_its_exit_code_and_logs_and_is_rolled_back() {
    let (v1, crash) = (image("web"), image("crash"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    crashing_image(&crash);
    let _images = RemoveImages(vec![v1.clone(), crash.clone()]);
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    let manifest = first_deploy(&emulator, dir.path(), &v1);

    let out = k8s_apply(&emulator, &manifest)
        .args(["--image", &format!("web={crash}"), "--fail-after", "3s"])
        .run();
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stderr);
    let failure = d.failure.expect("a failure");
    assert_eq!(failure.reason, "CrashLoopBackOff", "{failure:?}");
    assert_eq!(failure.kubernetes.exit_code, Some(CRASH_EXIT_CODE));
    let logs = failure.kubernetes.logs.join("\n");
    assert!(logs.contains("crashing on purpose"), "{logs}");
    assert!(out.stderr.contains("exit code 3"), "{}", out.stderr);
    assert_eq!(
        live(&emulator, "{.spec.template.spec.containers[0].image}"),
        v1
    );
    assert_eq!(live(&emulator, "{.status.availableReplicas}"), "2");
}

fn stateful_set(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: default}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: [{{name: app, image: '{image}'}}]
"
    )
}

#[test]
fn a_stateful_set_with_a_bad_image_is_rolled_back_and_its_stuck_pod_replaced() {
    let (v1, _images) = served_image("db");
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("db.yaml");
    std::fs::write(&manifest, stateful_set(&v1)).unwrap();
    let out = k8s_apply(&emulator, &manifest).run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).outcome,
        Outcome::Completed,
        "{}",
        out.stderr
    );

    // Nothing listens there: a pull error that may be transient, so it fails after --fail-after.
    let out = k8s_apply(&emulator, &manifest)
        .args([
            "--image",
            "db=127.0.0.1:1/k8s-apply-tests/missing:v1",
            "--fail-after",
            "2s",
        ])
        .run();
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stderr);
    let failure = d.failure.expect("a failure");
    assert_eq!(
        failure.kubernetes.pod.as_deref(),
        Some("db-1"),
        "{failure:?}"
    );
    let pod_image = |pod: &str| {
        emulator.kubectl(&[
            "--context",
            "staging",
            "get",
            &format!("pod/{pod}"),
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
    };
    assert_eq!(
        pod_image("db-1"),
        v1,
        "the stuck pod was recreated from the restored template"
    );
    assert_eq!(pod_image("db-0"), v1);
    let ready = emulator.kubectl(&[
        "--context",
        "staging",
        "get",
        "statefulset/db",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "2");
}

fn job(name: &str, image: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: default}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: task, image: '{image}', command: ['/busybox', 'sh', '-c', '{command}']}}]
"
    )
}

#[test]
fn a_job_is_waited_for_until_complete_and_a_failed_one_is_deleted() {
    let (v1, _images) = served_image("task");
    let emulator = KubeEmulator::start_with_docker();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("jobs.yaml");
    std::fs::write(&manifest, job("migrate", &v1, "echo migrated")).unwrap();
    let out = k8s_apply(&emulator, &manifest).run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).outcome,
        Outcome::Completed,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Job default/migrate: completed"),
        "{}",
        out.stderr
    );

    std::fs::write(&manifest, job("broken", &v1, "exit 7")).unwrap();
    let out = k8s_apply(&emulator, &manifest).run();
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stderr);
    assert_eq!(d.failure.expect("a failure").reason, "BackoffLimitExceeded");
    let left = emulator.kubectl(&["--context", "staging", "get", "jobs", "-o", "name"]);
    assert_eq!(
        left.trim(),
        "job.batch/migrate",
        "the failed Job this run created is deleted"
    );
}
