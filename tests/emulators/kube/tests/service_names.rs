//! Pods reach Services by name (run with target/services.env sourced): the kubelet writes each
//! container's `/etc/hosts`, so busybox `nc redis 6379` in a `FROM scratch` image reaches the
//! Service's pod, and a replaced pod is found again.

mod support;

use shipkit_tests::ecs::build_image;
use support::{Emulator, RemoveOnDrop, eventually, image};

const NS: &str = "shop";

/// A Namespace, a `redis` Deployment answering `PONG <its hostname>` on 6379 to every
/// connection, its Service, and a `client` Deployment that asks it by the short and the full
/// name every second (printing what it got) and is Ready only while the short name answers.
fn manifests(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: redis, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: redis}}}}
  template:
    metadata: {{labels: {{app: redis}}}}
    spec:
      containers:
      - name: redis
        image: {image}
        command: ["/busybox", "nc", "-ll", "-p", "6379", "-e", "/busybox", "sh", "-c", "echo PONG $(/busybox hostname)"]
---
apiVersion: v1
kind: Service
metadata: {{name: redis, namespace: {NS}}}
spec:
  selector: {{app: redis}}
  ports: [{{port: 6379}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      containers:
      - name: client
        image: {image}
        command: ["/busybox", "sh", "-c", "while true; do echo \"short: $(/busybox nc -w 2 redis 6379 </dev/null)\"; echo \"full: $(/busybox nc -w 2 redis.{NS}.svc.cluster.local 6379 </dev/null)\"; /busybox sleep 1; done"]
        readinessProbe:
          exec: {{command: ["/busybox", "sh", "-c", "/busybox nc -w 2 redis 6379 </dev/null | /busybox grep -q PONG"]}}
          periodSeconds: 1
"#
    )
}

/// The name of the one Ready pod labelled `app`, once there is one (and only one).
fn ready_pod(emu: &Emulator, app: &str) -> Option<String> {
    let selector = format!("app={app}");
    let path = "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}";
    let out = emu.run_kubectl(
        &["get", "pods", "-n", NS, "-l", &selector, "-o", path],
        None,
    );
    let out = String::from_utf8_lossy(&out.stdout);
    let pods: Vec<&str> = out.lines().collect();
    match pods.as_slice() {
        [one] => one.strip_suffix(" True").map(str::to_owned),
        _ => None,
    }
}

/// Whether the client's last lines say the short and the full name reached `redis_pod`.
fn client_reached(emu: &Emulator, client: &str, redis_pod: &str) -> bool {
    let out = emu.run_kubectl(&["logs", "-n", NS, client, "--tail=4"], None);
    let log = String::from_utf8_lossy(&out.stdout);
    log.contains(&format!("short: PONG {redis_pod}"))
        && log.contains(&format!("full: PONG {redis_pod}"))
}

#[test]
fn a_pod_reaches_a_service_by_its_names_and_finds_a_replaced_pod_again() {
    let img = image("names");
    build_image(&img, "FROM scratch\nCOPY busybox /busybox\n", &[]);
    let _remove = RemoveOnDrop(img.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&manifests(&img)),
    );
    let out = emu.kubectl(&[
        "rollout",
        "status",
        "-n",
        NS,
        "deployment/client",
        "--timeout=60s",
    ]);
    assert!(
        out.contains("successfully rolled out"),
        "ready only through the name: {out}"
    );

    let first = eventually(20, "a ready redis pod", &emu, || ready_pod(&emu, "redis"));
    let client = eventually(20, "a ready client pod", &emu, || ready_pod(&emu, "client"));
    eventually(20, "the client reaching redis by both names", &emu, || {
        client_reached(&emu, &client, &first).then_some(())
    });

    emu.kubectl(&["delete", "pod", "-n", NS, &first, "--wait=false"]);
    let second = eventually(40, "a new ready redis pod", &emu, || {
        ready_pod(&emu, "redis").filter(|p| *p != first)
    });
    eventually(20, "the client reaching the new redis pod", &emu, || {
        client_reached(&emu, &client, &second).then_some(())
    });
    drop(emu);
}
