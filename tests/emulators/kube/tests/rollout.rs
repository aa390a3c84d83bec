//! Controllers and the kubelet on the local Docker Engine (run with target/services.env
//! sourced): Deployments roll out through ReplicaSets to pods that are real containers, and
//! `kubectl rollout status` reads them as it reads a real cluster.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shipkit_tests::ecs::{CRASH_EXIT_CODE, build_http_image, build_image, crashing_image};
use shipkit_tests::http_server::{HttpServer, Reply};
use support::{Emulator, RemoveOnDrop, deployment, eventually, image, jsonpath, try_jsonpath};

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

#[test]
fn a_deployment_rolls_out_to_containers_and_a_new_template_gets_a_new_replica_set() {
    let (v1, v2) = (image("web"), image("web"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    let _remove_v1 = RemoveOnDrop(v1.clone());
    build_http_image(&v2, &[("/index.html", "v2")]);
    let _remove_v2 = RemoveOnDrop(v2.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, &v1)),
    );
    let out = emu.kubectl_with_input(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = emu.kubectl_with_input(&["get", "pods", "-l", "app=web", "--no-headers"], None);
    assert_eq!(
        pods.lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count(),
        2,
        "{pods}"
    );
    let first_rs = jsonpath(&emu, "replicasets", "{.items[0].metadata.name}");
    let events = emu.kubectl_with_input(&["get", "events"], None);
    assert!(
        events.contains(&format!("Scaled up replica set {first_rs} from 0 to")),
        "{events}"
    );
    assert_eq!(
        jsonpath(
            &emu,
            &format!("rs/{first_rs}"),
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "1"
    );

    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, &v2)),
    );
    let out = emu.kubectl_with_input(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let rs = emu.kubectl_with_input(&["get", "replicasets", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,DESIRED:.spec.replicas,REV:.metadata.annotations.deployment\\.kubernetes\\.io/revision"], None);
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
    emu.kubectl_with_input(&["delete", "deployment", "web"], None);
    eventually(
        20,
        "ReplicaSets, pods and their containers deleted",
        &emu,
        || {
            let left = emu.kubectl_with_input(&["get", "replicasets,pods", "--no-headers"], None);
            (left.trim().is_empty() && containers_of(&v2).is_empty()).then_some(())
        },
    );
    drop(emu);
}

#[test]
fn a_missing_image_is_image_pull_back_off_then_progress_deadline_exceeded_while_old_pods_serve() {
    let v1 = image("served");
    build_http_image(&v1, &[("/index.html", "v1")]);
    let _remove_v1 = RemoveOnDrop(v1.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("api", 2, &v1)),
    );
    emu.kubectl_with_input(
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
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest));
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
    let events = emu.kubectl_with_input(&["get", "events"], None);
    assert!(events.contains("Failed to pull image"), "{events}");
    let t0 = Instant::now();
    let out = emu.run_kubectl(
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
}

/// A bare pod that sleeps, on `image`.
fn sleeping_pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  \
         - name: app\n    image: {image}\n    command: [\"/busybox\", \"sleep\", \"3600\"]\n"
    )
}

/// Lets the held manifest requests go when the test ends, passed or not.
struct Release(Arc<AtomicBool>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The kubelet's pods do not wait for one another (its pod workers): a pod whose image pull
/// hangs holds up no other, so a rollout of many pods does not start them one at a time.
/// A registry of the test's own holds every manifest request until released; a pod created
/// while one is held must run, and the held pod then reports the registry's answer.
#[test]
fn a_pod_runs_while_another_pods_image_pull_hangs() {
    let (held, release) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let _release = Release(release.clone());
    let registry = {
        let (held, release) = (held.clone(), release.clone());
        HttpServer::serving(move |request| {
            let v2 = |reply: Reply| {
                reply
                    .header("Docker-Distribution-API-Version", "registry/2.0")
                    .content_type(Some("application/json"))
            };
            if !request.path().contains("/manifests/") {
                return v2(Reply::ok("{}"));
            }
            held.fetch_add(1, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            v2(Reply::new(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ))
        })
    };
    let slow = format!(
        "127.0.0.1:{}/kube-emulator-tests/slow:v1",
        registry.addr().port()
    );
    let fast = image("fast");
    build_image(&fast, "FROM scratch\nCOPY busybox /busybox\n", &[]);
    let _remove = RemoveOnDrop(fast.clone());
    let emu = Emulator::start_with_docker();

    emu.kubectl_with_input(&["apply", "-f", "-"], Some(&sleeping_pod("slow", &slow)));
    eventually(30, "the slow pod's pull held by the registry", &emu, || {
        (held.load(Ordering::SeqCst) > 0).then_some(())
    });
    emu.kubectl_with_input(&["apply", "-f", "-"], Some(&sleeping_pod("fast", &fast)));
    eventually(
        30,
        "the fast pod running while the slow pull hangs",
        &emu,
        || (try_jsonpath(&emu, "pod/fast", "{.status.phase}")? == "Running").then_some(()),
    );
    let slow_state = jsonpath(&emu, "pod/slow", "{.status.containerStatuses[0].state}");
    assert!(
        !slow_state.contains("ErrImagePull") && !slow_state.contains("ImagePullBackOff"),
        "the slow pull is still held: {slow_state}"
    );

    release.store(true, Ordering::SeqCst);
    let message = eventually(30, "the slow pod's pull failing", &emu, || {
        let waiting = try_jsonpath(
            &emu,
            "pod/slow",
            "{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}",
        )?;
        (waiting.starts_with("ErrImagePull|") || waiting.starts_with("ImagePullBackOff|"))
            .then_some(waiting)
    });
    assert!(message.contains(&slow), "{message}");
    drop(emu);
}

#[test]
fn a_crashing_container_restarts_into_crash_loop_back_off_with_its_exit_code() {
    let crash = image("crash");
    crashing_image(&crash);
    let _remove_crash = RemoveOnDrop(crash.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(
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
    let events = emu.kubectl_with_input(&["get", "events"], None);
    assert!(
        events.lines().any(|l| l.contains("Warning")
            && l.contains("BackOff")
            && l.contains("Back-off restarting failed container app")),
        "{events}"
    );
    // The container's own output, through pods/log (what k8s-apply shows of a crash).
    let pod = jsonpath(&emu, "pods", "{.items[0].metadata.name}");
    let log = emu.kubectl_with_input(&["logs", &pod, "--tail=1"], None);
    assert_eq!(log.trim(), "crashing on purpose");
    let row = emu.kubectl_with_input(&["get", "pods", "--no-headers"], None);
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
    let _remove_sh = RemoveOnDrop(sh.clone());
    let emu = Emulator::start_with_docker();
    let manifest = format!(
        "{}---\n{}",
        job("ok", &sh, "echo done", 2),
        job("bad", &sh, "exit 4", 1)
    );
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    emu.kubectl_with_input(
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
    assert_eq!(emu.kubectl_with_input(&["logs", &pod], None).trim(), "done");
    emu.kubectl_with_input(
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
    let table = emu.kubectl_with_input(&["get", "jobs"], None);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains("Complete") && l.contains("1/1")),
        "{table}"
    );
    drop(emu);
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
    let _remove_v1 = RemoveOnDrop(v1.clone());
    build_http_image(&v2, &[("/index.html", "v2")]);
    let _remove_v2 = RemoveOnDrop(v2.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v1)),
    );
    let out = emu.kubectl_with_input(
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

    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v2)),
    );
    emu.kubectl_with_input(
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
    emu.kubectl_with_input(
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
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&stateful_set("db", 2, &v2)),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        jsonpath(&emu, "pod/db-1", "{.spec.containers[0].image}"),
        missing,
        "still stuck"
    );
    emu.kubectl_with_input(&["delete", "pod", "db-1"], None);
    emu.kubectl_with_input(
        &["rollout", "status", "statefulset/db", "--timeout=60s"],
        None,
    );
    assert_eq!(
        jsonpath(&emu, "pod/db-1", "{.spec.containers[0].image}"),
        v2
    );
    drop(emu);
}

#[test]
fn a_daemon_set_runs_one_pod_on_the_node_and_rolls_a_new_template() {
    let (v1, v2) = (image("agent"), image("agent"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    let _remove_v1 = RemoveOnDrop(v1.clone());
    build_http_image(&v2, &[("/index.html", "v2")]);
    let _remove_v2 = RemoveOnDrop(v2.clone());
    let emu = Emulator::start_with_docker();
    let ds = |image: &str| {
        deployment("agent", 1, image)
            .replace("kind: Deployment", "kind: DaemonSet")
            .replace("  replicas: 1\n", "")
    };
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&ds(&v1)));
    let out = emu.kubectl_with_input(
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
        None,
    );
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&ds(&v2)));
    emu.kubectl_with_input(
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
        None,
    );
    assert_eq!(
        jsonpath(&emu, "pods", "{.items[*].spec.containers[0].image}"),
        v2
    );
    let row = emu.kubectl_with_input(&["get", "daemonset", "agent", "--no-headers"], None);
    assert_eq!(
        row.split_whitespace().take(6).collect::<Vec<_>>(),
        ["agent", "1", "1", "1", "1", "1"],
        "{row}"
    );
    drop(emu);
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
    let _remove_web = RemoveOnDrop(web.clone());
    let emu = Emulator::start_with_docker();
    let tcp = with_readiness(&deployment("web", 2, &web), "tcpSocket: {port: 8080}");
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&tcp));
    emu.kubectl_with_input(
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
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&never));
    let row = eventually(30, "a new pod running but not ready", &emu, || {
        let pods = emu.kubectl_with_input(&["get", "pods", "--no-headers"], None);
        pods.lines()
            .find(|l| l.contains("0/1") && l.contains("Running"))
            .map(str::to_owned)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        emu.kubectl_with_input(&["get", "pods", "--no-headers"], None)
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
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&good));
    emu.kubectl_with_input(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    drop(emu);
}

/// `GET /index.html` through 127.0.0.1:`port`: the body, or None when the connection fails.
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}

#[test]
fn a_service_port_serves_ready_pods_only_and_never_drops_during_a_rollout() {
    let (v1, v2) = (image("svc"), image("svc"));
    build_http_image(&v1, &[("/index.html", "v1")]);
    let _remove_v1 = RemoveOnDrop(v1.clone());
    build_http_image(&v2, &[("/index.html", "v2")]);
    let _remove_v2 = RemoveOnDrop(v2.clone());
    let emu = Emulator::start_with_docker();
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n    targetPort: 8080\n";
    let probe = "readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}";
    let manifest = |image: &str| {
        format!(
            "{}---\n{service}",
            with_readiness(&deployment("web", 2, image), probe)
        )
    };
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest(&v1)));
    emu.kubectl_with_input(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    let port: u16 = eventually(
        20,
        "the Service's loopback port in its status",
        &emu,
        || {
            try_jsonpath(
                &emu,
                "service/web",
                "{.status.loadBalancer.ingress[0].ports[0].port}",
            )?
            .parse()
            .ok()
        },
    );
    let body = eventually(20, "v1 through the Service", &emu, || http_get(port));
    assert_eq!(body, "v1");

    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest(&v2)));
    let (mut answers, mut failures) = (Vec::new(), 0);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        match http_get(port) {
            Some(b) => answers.push(b),
            None => failures += 1,
        }
        let done = emu.run_kubectl(
            &["rollout", "status", "deployment/web", "--watch=false"],
            None,
        );
        if String::from_utf8_lossy(&done.stdout).contains("successfully rolled out") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        failures,
        0,
        "the Service always had a ready pod ({} answers)",
        answers.len()
    );
    assert!(answers.iter().any(|a| a == "v1"));
    assert_eq!(
        eventually(10, "v2 through the Service", &emu, || http_get(port)
            .filter(|b| b == "v2")),
        "v2"
    );
    drop(emu);
}

/// `GET path` with `Host: host` through 127.0.0.1:`port`: (status code, body).
fn http_get_host(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_owned(),
    ))
}

#[test]
fn an_ingress_routes_by_host_and_path_to_the_service_through_the_clusters_alb_port() {
    let auth = image("auth");
    build_http_image(&auth, &[("/auth", "auth ok")]);
    let _remove_auth = RemoveOnDrop(auth.clone());
    let emu = Emulator::start_with_docker();
    let rest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules:\n  - host: app.example.com\n    http:\n      paths:\n      - path: /auth\n        pathType: Prefix\n        backend:\n          service: {name: web, port: {name: http}}\n";
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&format!("{}---\n{rest}", deployment("web", 1, &auth))),
    );
    emu.kubectl_with_input(
        &["rollout", "status", "deployment/web", "--timeout=60s"],
        None,
    );
    let port: u16 = eventually(20, "the ALB port in the Ingress status", &emu, || {
        try_jsonpath(
            &emu,
            "ingress/web",
            "{.status.loadBalancer.ingress[0].ports[0].port}",
        )?
        .parse()
        .ok()
    });
    let (code, body) = eventually(20, "/auth through the Ingress", &emu, || {
        http_get_host(port, "app.example.com", "/auth").filter(|(c, _)| *c == 200)
    });
    assert_eq!((code, body.as_str()), (200, "auth ok"));
    assert_eq!(
        http_get_host(port, "other.example.com", "/auth").map(|(c, _)| c),
        Some(404),
        "another host has no rule"
    );
    assert_eq!(
        http_get_host(port, "app.example.com", "/other").map(|(c, _)| c),
        Some(404),
        "nor another path"
    );
    drop(emu);
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let web = image("live");
    build_http_image(&web, &[("/healthz", "ok")]);
    let _remove_web = RemoveOnDrop(web.clone());
    let emu = Emulator::start_with_docker();
    let manifest = with_readiness(&deployment("web", 1, &web), "tcpSocket: {port: 8080}").replace(
        "        readinessProbe:",
        "        livenessProbe: {httpGet: {path: /missing, port: 8080}, periodSeconds: 1, failureThreshold: 2}\n        readinessProbe:",
    );
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    let code = eventually(
        40,
        "a restart after the liveness probe failed",
        &emu,
        || {
            let out = try_jsonpath(
                &emu,
                "pods",
                "{.items[0].status.containerStatuses[0].restartCount} {.items[0].status.containerStatuses[0].lastState.terminated.exitCode}",
            )?;
            let f: Vec<&str> = out.split_whitespace().collect();
            (f.len() == 2 && f[0] != "0").then(|| f[1].to_owned())
        },
    );
    assert_eq!(code, "137", "killed (SIGKILL)");
}
