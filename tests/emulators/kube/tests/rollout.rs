//! Controllers and the kubelet on the local Docker Engine (run with target/services.env
//! sourced): Deployments roll out through ReplicaSets to pods that are real containers, and
//! `kubectl rollout status` reads them as it reads a real cluster.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use shipkit_tests::ecs::{CRASH_EXIT_CODE, build_http_image, build_image, crashing_image};
use support::{Emulator, deployment};

/// A local image tag no other test uses.
fn image(name: &str) -> String {
    format!(
        "kube-emulator-tests/{name}:{}-{}",
        std::process::id(),
        rand_suffix()
    )
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()) << 7
    )
}

fn jsonpath(emu: &Emulator, what: &str, path: &str) -> String {
    emu.ok(&["get", what, "-o", &format!("jsonpath={path}")], None)
}

/// Like [`jsonpath`], None while kubectl cannot answer it (no pod yet, no status yet).
fn try_jsonpath(emu: &Emulator, what: &str, path: &str) -> Option<String> {
    let out = emu.run(&["get", what, "-o", &format!("jsonpath={path}")], None);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` until it returns Some, or fails after `secs` with `what`.
fn eventually<T>(secs: u64, what: &str, emu: &Emulator, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what} within {secs}s\n--- emulator log:\n{}",
            emu.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The containers (any state) made from `image`.
fn containers_of(image: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("ancestor={image}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn remove_image(reference: &str) {
    let _ = Command::new("docker")
        .args(["rmi", "-f", reference])
        .output();
}

#[test]
fn a_deployment_rolls_out_to_containers_and_a_new_template_gets_a_new_replica_set() {
    let (v1, v2) = (image("web"), image("web"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    build_http_image(&v2, &[("/index.html", "v2")]);
    let emu = Emulator::start_with_docker();
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, &v1)),
    );
    let out = emu.ok(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = emu.ok(&["get", "pods", "-l", "app=web", "--no-headers"], None);
    assert_eq!(
        pods.lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count(),
        2,
        "{pods}"
    );
    let first_rs = jsonpath(&emu, "replicasets", "{.items[0].metadata.name}");
    assert_eq!(
        jsonpath(
            &emu,
            &format!("rs/{first_rs}"),
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "1"
    );

    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, &v2)),
    );
    let out = emu.ok(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let rs = emu.ok(&["get", "replicasets", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,DESIRED:.spec.replicas,REV:.metadata.annotations.deployment\\.kubernetes\\.io/revision"], None);
    let rows: Vec<Vec<&str>> = rs.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{rs}");
    assert!(
        rows.iter()
            .any(|r| r[0] == first_rs && r[1] == "0" && r[2] == "1"),
        "old one scaled down: {rs}"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] != first_rs && r[1] == "2" && r[2] == "2"),
        "new one at revision 2: {rs}"
    );
    let images = jsonpath(&emu, "pods", "{.items[*].spec.containers[0].image}");
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        [v2.as_str(), v2.as_str()],
        "old pods gone"
    );

    // Background deletion: the ReplicaSets, pods and containers follow the Deployment.
    assert_eq!(containers_of(&v2).len(), 2);
    emu.ok(&["delete", "deployment", "web"], None);
    eventually(
        20,
        "ReplicaSets, pods and their containers deleted",
        &emu,
        || {
            let left = emu.ok(&["get", "replicasets,pods", "--no-headers"], None);
            (left.trim().is_empty() && containers_of(&v2).is_empty()).then_some(())
        },
    );
    drop(emu);
    remove_image(&v1);
    remove_image(&v2);
}

#[test]
fn a_missing_image_is_image_pull_back_off_then_progress_deadline_exceeded_while_old_pods_serve() {
    let v1 = image("served");
    build_http_image(&v1, &[("/index.html", "v1")]);
    let emu = Emulator::start_with_docker();
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("api", 2, &v1)),
    );
    emu.ok(
        &["rollout", "status", "deployment/api", "--timeout=60s"],
        None,
    );
    // A registry that answers, without this repository: its own "not found" comes back.
    let ecr = std::env::var("SHIPKIT_ECR_HOST")
        .expect("SHIPKIT_ECR_HOST: source target/services.env (scripts/services up)");
    let missing = format!("{ecr}/kube-emulator-tests/missing:v1");
    let manifest = deployment("api", 2, &missing).replace(
        "spec:\n  replicas",
        "spec:\n  progressDeadlineSeconds: 6\n  replicas",
    );
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    let message = eventually(30, "a pod in ImagePullBackOff", &emu, || {
        let out = try_jsonpath(
            &emu,
            "pods",
            "{range .items[*]}{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}{\"\\n\"}{end}",
        )?;
        out.lines()
            .find(|l| l.starts_with("ImagePullBackOff|"))
            .map(str::to_owned)
    });
    assert!(message.contains(&missing), "{message}");
    let t0 = Instant::now();
    let out = emu.run(
        &["rollout", "status", "deployment/api", "--timeout=60s"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(
        jsonpath(&emu, "deployment/api", "{.status.availableReplicas}"),
        "2",
        "the old pods keep serving"
    );
    let reason = jsonpath(
        &emu,
        "deployment/api",
        "{.status.conditions[?(@.type==\"Progressing\")].reason}",
    );
    assert_eq!(reason, "ProgressDeadlineExceeded");
    drop(emu);
    remove_image(&v1);
}

#[test]
fn a_crashing_container_restarts_into_crash_loop_back_off_with_its_exit_code() {
    let crash = image("crash");
    crashing_image(&crash);
    let emu = Emulator::start_with_docker();
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("crash", 1, &crash)),
    );
    let seen = eventually(40, "CrashLoopBackOff after a restart", &emu, || {
        let out = try_jsonpath(
            &emu,
            "pods",
            "{.items[0].status.containerStatuses[0].state.waiting.reason} {.items[0].status.containerStatuses[0].restartCount} {.items[0].status.containerStatuses[0].lastState.terminated.exitCode}",
        )?;
        let f: Vec<&str> = out.split_whitespace().collect();
        (f.len() == 3 && f[0] == "CrashLoopBackOff" && f[1] != "0")
            .then(|| f.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    });
    assert_eq!(seen[2], CRASH_EXIT_CODE.to_string());
    // The container's own output, through pods/log (what k8s-apply shows of a crash).
    let pod = jsonpath(&emu, "pods", "{.items[0].metadata.name}");
    let log = emu.ok(&["logs", &pod, "--tail=1"], None);
    assert_eq!(log.trim(), "crashing on purpose");
    let row = emu.ok(&["get", "pods", "--no-headers"], None);
    assert!(
        row.contains("CrashLoopBackOff"),
        "kubectl get shows the reason: {row}"
    );
    let pid = emu.pid().to_string();
    drop(emu);
    // The emulator's shutdown removed its containers.
    assert!(
        containers_of(&crash).is_empty(),
        "containers left after emulator {pid} stopped"
    );
    remove_image(&crash);
}

fn job(name: &str, image: &str, script: &str, backoff_limit: u32) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: {backoff_limit}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: {image}
        command: [/busybox, sh, -c, \"{script}\"]
"
    )
}

#[test]
fn a_job_completes_or_fails_with_backoff_limit_exceeded() {
    let sh = image("sh");
    build_image(&sh, "FROM scratch\nCOPY busybox /busybox\n", &[]);
    let emu = Emulator::start_with_docker();
    let manifest = format!(
        "{}---\n{}",
        job("ok", &sh, "echo done", 2),
        job("bad", &sh, "exit 4", 1)
    );
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    emu.ok(
        &[
            "wait",
            "--for=condition=complete",
            "job/ok",
            "--timeout=60s",
        ],
        None,
    );
    assert_eq!(jsonpath(&emu, "job/ok", "{.status.succeeded}"), "1");
    let pod = jsonpath(
        &emu,
        "pods",
        "{.items[?(@.metadata.labels.job-name==\"ok\")].metadata.name}",
    );
    assert_eq!(emu.ok(&["logs", &pod], None).trim(), "done");
    emu.ok(
        &["wait", "--for=condition=failed", "job/bad", "--timeout=60s"],
        None,
    );
    assert_eq!(
        jsonpath(
            &emu,
            "job/bad",
            "{.status.conditions[?(@.type==\"Failed\")].reason}"
        ),
        "BackoffLimitExceeded"
    );
    assert_eq!(
        jsonpath(&emu, "job/bad", "{.status.failed}"),
        "2",
        "backoffLimit 1: the second failure ends it"
    );
    let codes = jsonpath(
        &emu,
        "pods",
        "{.items[?(@.metadata.labels.job-name==\"bad\")].status.containerStatuses[0].state.terminated.exitCode}",
    );
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["4", "4"]);
    let table = emu.ok(&["get", "jobs"], None);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains("Complete") && l.contains("1/1")),
        "{table}"
    );
    drop(emu);
    remove_image(&sh);
}

fn stateful_set(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
spec:
  serviceName: {name}
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
"
    )
}

#[test]
fn a_stateful_set_rolls_out_in_order_and_a_reverted_template_needs_the_stuck_pod_deleted() {
    let (v1, v2) = (image("db"), image("db"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    build_http_image(&v2, &[("/index.html", "v2")]);
    let emu = Emulator::start_with_docker();
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v1)),
    );
    let out = emu.ok(
        &["rollout", "status", "statefulset/db", "--timeout=60s"],
        None,
    );
    assert!(
        // What kubectl says when rollingUpdate.partition is set: the API server defaults it to 0.
        out.contains("partitioned roll out complete: 2 new pods have been updated"),
        "{out}"
    );
    assert_eq!(
        jsonpath(&emu, "pods", "{.items[*].metadata.name}"),
        "db-0 db-1"
    );

    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v2)),
    );
    emu.ok(
        &["rollout", "status", "statefulset/db", "--timeout=60s"],
        None,
    );
    let images = jsonpath(&emu, "pods", "{.items[*].spec.containers[0].image}");
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        [v2.as_str(), v2.as_str()]
    );
    let revisions = jsonpath(
        &emu,
        "statefulset/db",
        "{.status.currentRevision} {.status.updateRevision}",
    );
    let r: Vec<&str> = revisions.split_whitespace().collect();
    assert_eq!(r[0], r[1], "{revisions}");

    // A bad template stops at the highest ordinal; reverting it leaves that pod stuck, as a
    // real StatefulSet does, until it is deleted.
    let missing = "127.0.0.1:1/kube-emulator-tests/missing:v1";
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, missing)),
    );
    eventually(30, "db-1 on the bad image", &emu, || {
        let reason = try_jsonpath(
            &emu,
            "pod/db-1",
            "{.status.containerStatuses[0].state.waiting.reason}",
        )?;
        (reason == "ErrImagePull" || reason == "ImagePullBackOff").then_some(())
    });
    assert_eq!(
        jsonpath(&emu, "pod/db-0", "{.spec.containers[0].image}"),
        v2,
        "the rollout stopped at db-1"
    );
    emu.ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v2)),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        jsonpath(&emu, "pod/db-1", "{.spec.containers[0].image}"),
        missing,
        "still stuck"
    );
    emu.ok(&["delete", "pod", "db-1"], None);
    emu.ok(
        &["rollout", "status", "statefulset/db", "--timeout=60s"],
        None,
    );
    assert_eq!(
        jsonpath(&emu, "pod/db-1", "{.spec.containers[0].image}"),
        v2
    );
    drop(emu);
    remove_image(&v1);
    remove_image(&v2);
}

#[test]
fn a_daemon_set_runs_one_pod_on_the_node_and_rolls_a_new_template() {
    let (v1, v2) = (image("agent"), image("agent"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    build_http_image(&v2, &[("/index.html", "v2")]);
    let emu = Emulator::start_with_docker();
    let ds = |image: &str| {
        deployment("agent", 1, image)
            .replace("kind: Deployment", "kind: DaemonSet")
            .replace("  replicas: 1\n", "")
    };
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&ds(&v1)));
    let out = emu.ok(
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
        None,
    );
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&ds(&v2)));
    emu.ok(
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
        None,
    );
    assert_eq!(
        jsonpath(&emu, "pods", "{.items[*].spec.containers[0].image}"),
        v2
    );
    let row = emu.ok(&["get", "daemonset", "agent", "--no-headers"], None);
    assert_eq!(
        row.split_whitespace().take(6).collect::<Vec<_>>(),
        ["agent", "1", "1", "1", "1", "1"],
        "{row}"
    );
    drop(emu);
    remove_image(&v1);
    remove_image(&v2);
}

fn with_readiness(manifest: &str, probe: &str) -> String {
    manifest.replace(
        "        ports:\n",
        &format!("        readinessProbe:\n          {probe}\n          periodSeconds: 1\n        ports:\n"),
    )
}

#[test]
fn readiness_probes_decide_ready_and_a_never_ready_template_keeps_the_old_pods() {
    let web = image("probed");
    build_http_image(&web, &[("/healthz", "ok")]);
    let emu = Emulator::start_with_docker();
    let tcp = with_readiness(&deployment("web", 2, &web), "tcpSocket: {port: 8080}");
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&tcp));
    emu.ok(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    let ips = jsonpath(&emu, "pods", "{.items[*].status.podIP}");
    assert_eq!(
        ips.split_whitespace().count(),
        2,
        "each pod has its IP: {ips}"
    );

    let never = with_readiness(
        &deployment("web", 2, &web),
        "httpGet: {path: /missing, port: 8080}",
    );
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&never));
    let row = eventually(30, "a new pod running but not ready", &emu, || {
        let pods = emu.ok(&["get", "pods", "--no-headers"], None);
        pods.lines()
            .find(|l| l.contains("0/1") && l.contains("Running"))
            .map(str::to_owned)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        emu.ok(&["get", "pods", "--no-headers"], None)
            .contains(row.split_whitespace().next().unwrap())
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.status.updatedReplicas} {.status.availableReplicas}"
        ),
        "1 2",
        "the old pods still serve"
    );

    let good = with_readiness(
        &deployment("web", 2, &web),
        "httpGet: {path: /healthz, port: 8080}",
    );
    emu.ok(&["apply", "--server-side", "-f", "-"], Some(&good));
    emu.ok(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    drop(emu);
    remove_image(&web);
}
