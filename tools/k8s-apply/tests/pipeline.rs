//! The staging pipeline end to end, each tool's stdout fed to the next as a shell pipeline
//! would: img-build of a tiny `FROM scratch` busybox httpd image on the local Engine →
//! img-push --ecr to the local ECR host → k8s-apply of a Deployment, a Service and an Ingress
//! with a host on a kube-emulator of the test's own, whose kubelet pulls the image from ECR
//! and runs it on the Engine → health-wait --from-deployments through the Ingress's loopback
//! port (the ALB stand-in, routing by the `Host` header).
//!
//! Needs `scripts/services up` (Docker Engine, moto, the ECR registry) and the workspace
//! binaries (`cargo test --workspace` builds img-build, img-push, health-wait, kube-emulator).

use common::Envelope;
use common::envelope::Outcome;
use shipkit_tests::docker::busybox;
use shipkit_tests::kube::KubeEmulator;
use shipkit_tests::{Cmd, Output, services_env, unique};
use std::collections::BTreeMap;
use std::path::Path;

mod support;
use support::RemoveImages;

const HOST: &str = "shop.staging.example.test";

/// The tool with the local services' settings.
fn tool(name: &str, env: &BTreeMap<String, String>) -> Cmd {
    env.iter()
        .fold(Cmd::tool(name), |cmd, (key, value)| {
            cmd.env(key, value.clone())
        })
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
}

/// A context whose image serves `body` on `/health` with busybox httpd on 8080.
fn context(dir: &Path, body: &str) {
    std::fs::copy(busybox(), dir.join("busybox")).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/health"), body).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

/// The shop's manifests: `name` as a Deployment of 2 (the image by its img-build name, which
/// k8s-apply replaces by the pushed digest), a Service, an Ingress for [`HOST`].
fn manifests(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: {name}:dev
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: default}}
spec:
  rules:
  - host: {HOST}
    http:
      paths:
      - path: /health
        pathType: Prefix
        backend: {{service: {{name: {name}, port: {{number: 80}}}}}}
"
    )
}

#[track_caller]
fn envelope(tool: &str, out: &Output) -> Envelope {
    out.assert_code(0);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{tool}'s stdout is not an Envelope ({e}): {}", out.stderr))
}

#[test]
fn the_staging_pipeline_builds_pushes_applies_and_answers_through_the_ingress() {
    let env = services_env().expect("target/services.env is missing: run `scripts/services up`");
    let name = unique("shop");
    let dir = tempfile::tempdir().unwrap();
    let build_dir = dir.path().join(&name);
    std::fs::create_dir_all(&build_dir).unwrap();
    context(&build_dir, "ok from the new image\n");
    let mut tags = RemoveImages(Vec::new());

    let built = tool("img-build", &env)
        .args([
            "--context",
            &build_dir.display().to_string(),
            "--name",
            &name,
        ])
        .args(["--tag", "dev"])
        .run();
    tags.0.push(format!("{name}:dev"));
    envelope("img-build", &built);

    let docker_config = tempfile::tempdir().unwrap();
    let pushed = tool("img-push", &env)
        .env("DOCKER_CONFIG", docker_config.path().display().to_string())
        .args(["--ecr", "--create-repository"])
        .stdin(built.stdout.clone())
        .run();
    let pushes = envelope("img-push", &pushed);
    let push = pushes.images[0].pushed[0].clone();
    tags.0.push(format!("{}:{}", push.repository, push.tag));
    assert!(
        push.repository.starts_with(&env["SHIPKIT_ECR_HOST"]),
        "{push:?}"
    );

    let emulator = KubeEmulator::start_with_docker();
    let manifest = dir.path().join("shop.yaml");
    std::fs::write(&manifest, manifests(&name)).unwrap();
    let apply = tool("k8s-apply", &env)
        .env("KUBECONFIG", emulator.kubeconfig.display().to_string())
        .args([
            "--context",
            "staging",
            "--poll",
            "500ms",
            "--timeout",
            "120s",
        ])
        .args(["-f", &manifest.display().to_string()])
        .stdin(pushed.stdout.clone());
    let applied = apply.run();
    let deployed = envelope("k8s-apply", &applied);
    let deployment = &deployed.deployments[0];
    assert_eq!(deployment.outcome, Outcome::Completed, "{}", applied.stderr);
    assert_eq!(deployment.images, std::slice::from_ref(&push.reference));
    let image = emulator.kubectl(&[
        "--context",
        "staging",
        "get",
        &format!("deployment/{name}"),
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image, push.reference,
        "the pod template runs the pushed digest"
    );
    // The Ingress rule's host is the endpoint (DNS points it at the ALB); here the ALB is
    // the emulator's loopback port, reached as curl's --connect-to reaches it.
    let ingress = format!("http://{HOST}/health");
    assert!(
        deployment.endpoints.contains(&ingress),
        "no {ingress} in {:?}: {}",
        deployment.endpoints,
        applied.stderr
    );
    let balancer_port = emulator.kubectl(&[
        "--context",
        "staging",
        "get",
        "ingress",
        "-A",
        "-o",
        "jsonpath={.items[0].status.loadBalancer.ingress[0].ports[0].port}",
    ]);
    let balancer = format!("http://127.0.0.1:{balancer_port}/health");

    let checked = tool("health-wait", &env)
        .args([
            "--from-deployments",
            "--timeout",
            "60s",
            "--interval",
            "500ms",
        ])
        .args([
            "--connect-to",
            &format!("{HOST}:80:127.0.0.1:{balancer_port}"),
        ])
        .stdin(applied.stdout.clone())
        .run();
    let health = envelope("health-wait", &checked).health;
    let through_ingress = health
        .iter()
        .find(|h| h.target == ingress)
        .unwrap_or_else(|| panic!("{ingress} was not checked: {health:?}"));
    assert!(through_ingress.healthy, "{through_ingress:?}");
    assert_eq!(
        through_ingress.last.as_ref().and_then(|l| l.status),
        Some(200)
    );
    assert!(health.iter().all(|h| h.healthy), "{health:?}");

    // A rerun changes nothing and still says where the shop answers, so the same pipeline's
    // health check runs again instead of finding no endpoints.
    let again = apply.run();
    let unchanged = &envelope("k8s-apply", &again).deployments[0];
    assert_eq!(unchanged.outcome, Outcome::Unchanged, "{}", again.stderr);
    assert_eq!(unchanged.endpoints, deployment.endpoints);

    // The Ingress routes by host: another host gets no answer from the shop.
    let (status, body) = get(&balancer, "other.example.test");
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&balancer, HOST);
    assert_eq!((status, body.as_str()), (200, "ok from the new image\n"));
}

/// One HTTP/1.1 GET of `url` with `Host: host`; the status and body.
fn get(url: &str, host: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the Ingress port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
