//! k8s-apply against a kube-emulator of each test's own, API only (`--no-docker`: objects are
//! stored and controllers run, pods never start): bad input, upstream failure, create then
//! unchanged, dry run, conflicts, and a rollback after a timeout.
//!
//! Needs the workspace binaries (`cargo build -p kube-emulator`; `cargo test --workspace`
//! builds them).

use common::Envelope;
use common::envelope::{Deployment, Outcome, Platform};
use serde_json::{Value, json};
use shipkit_tests::Cmd;
use shipkit_tests::kube::KubeEmulator;

mod support;
use support::{deployment, envelope, k8s_apply, write};

const DIGEST: &str = "sha256:0123456789012345678901234567890123456789012345678901234567890123";
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The shop: a Namespace, a ConfigMap with LOG_LEVEL, a Secret, a Deployment of `api-server`.
fn shop(log_level: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: shop}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers: [{{name: app, image: 'api-server:dev'}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: shop}}
data: {{LOG_LEVEL: {log_level}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: shop}}
stringData: {{password: s3cret-value-{log_level}}}
"
    )
}

/// What img-push writes after pushing `api-server` to ECR.
fn pushed() -> Value {
    let repository = format!("{ECR}/api-server");
    json!({"schema": "shipkit/v1", "images": [{"name": "api-server", "pushed": [{
        "repository": repository, "tag": "git-abc1234", "digest": DIGEST,
        "reference": format!("{repository}@{DIGEST}"), "skipped": false}]}]})
}

/// `(kind, action, outcome)` of each resource.
fn resources(d: &Deployment) -> Vec<(String, String, String)> {
    d.kubernetes
        .resources
        .as_ref()
        .expect("resources[]")
        .iter()
        .map(|r| (r.kind.clone(), r.action.clone(), r.outcome.to_string()))
        .collect()
}

/// What a write by k8s-apply would move: the resourceVersions of the objects no controller
/// touches, and the Deployment's generation and k8s-apply's managed-fields entry (its status
/// is the controllers' to write).
fn resource_versions(emulator: &KubeEmulator) -> String {
    let get = |args: &[&str]| {
        let mut argv = vec!["--context", "staging", "-n", "shop", "get"];
        argv.extend_from_slice(args);
        emulator.kubectl(&argv)
    };
    [
        get(&["namespace/shop", "-o", "jsonpath={.metadata.resourceVersion}"]),
        get(&["configmaps,secrets", "-o", "jsonpath={..metadata.resourceVersion}"]),
        get(&[
            "deployment/api",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.generation} {.metadata.managedFields[?(@.manager==\"k8s-apply\")].time}",
        ]),
    ]
    .join(" | ")
}

#[test]
fn bad_manifests_exit_2_naming_file_and_document_and_nothing_is_sent() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "invalid.yaml",
            format!("{}---\nkind: [unclosed\n", shop("info")),
            "document 5: invalid YAML",
        ),
        (
            "noname.yaml",
            format!(
                "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{}}\n",
                shop("info")
            ),
            "document 5: no metadata.name",
        ),
        (
            "nokind.json",
            r#"{"apiVersion": "v1", "metadata": {"name": "x"}}"#.to_owned(),
            "nokind.json, document 1: no kind",
        ),
        (
            "unknown.yaml",
            format!(
                "{}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n",
                shop("info")
            ),
            "document 5: the cluster does not serve kind Widget",
        ),
    ];
    for (name, text, needle) in cases {
        let path = write(dir.path(), name, &text);
        let out = k8s_apply(&emulator)
            .args(["-f", &path])
            .stdin_json(&pushed())
            .run();
        out.assert_usage_error(needle);
        let envelope = envelope(&out);
        assert_eq!(envelope.failed.as_ref().map(|f| f.exit_code), Some(2));
        assert!(envelope.deployments.is_empty());
    }
    let out = k8s_apply(&emulator)
        .args(["-f", &dir.path().join("missing.yaml").display().to_string()])
        .run();
    out.assert_usage_error("missing.yaml");
    assert_eq!(
        emulator.writes(),
        Vec::<String>::new(),
        "the emulator received writes"
    );
}

#[test]
fn an_upstream_failure_is_passed_on_unchanged_with_exit_3() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "shop.yaml", &shop("info"));
    let input = json!({"schema": "shipkit/v1", "failed": {"tool": "img-push", "error": "denied", "exit_code": 1}});
    let out = k8s_apply(&emulator)
        .args(["-f", &path])
        .stdin_json(&input)
        .run();
    out.assert_code(3);
    assert_eq!(out.json(), input);
    assert!(emulator.writes().is_empty());
}

#[test]
fn apply_creates_with_the_pushed_digest_and_a_second_run_changes_nothing() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "shop.yaml", &shop("info"));
    let out = k8s_apply(&emulator)
        .args(["-f", &path, "--no-wait"])
        .stdin_json(&pushed())
        .run();
    out.assert_code(0);
    let first = deployment(&out);
    assert_eq!(first.platform, Platform::Kubernetes);
    assert_eq!(first.cluster.as_deref(), Some("staging"));
    assert_eq!(first.kubernetes.context.as_deref(), Some("staging"));
    assert_eq!(first.kubernetes.namespaces, Some(vec!["shop".to_owned()]));
    let digest_reference = format!("{ECR}/api-server@{DIGEST}");
    assert_eq!(first.images, std::slice::from_ref(&digest_reference));
    assert_eq!(
        resources(&first),
        [
            ("Namespace".into(), "created".into(), "started".into()),
            ("ConfigMap".into(), "created".into(), "started".into()),
            ("Secret".into(), "created".into(), "started".into()),
            ("Deployment".into(), "created".into(), "started".into()),
        ],
        "applied in dependency order"
    );
    assert_eq!(
        first.kubernetes.resources.as_ref().unwrap()[3].generation,
        Some(1)
    );
    let image = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "deployment/api",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, digest_reference);
    let managers = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "configmap/settings",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(managers, "k8s-apply");

    let before = resource_versions(&emulator);
    assert!(
        before.ends_with('Z'),
        "k8s-apply's managed-fields time is read: {before}"
    );
    let out = k8s_apply(&emulator)
        .args(["-f", &path])
        .stdin_json(&pushed())
        .run();
    out.assert_code(0);
    let second = deployment(&out);
    assert_eq!(second.outcome, Outcome::Unchanged);
    assert!(
        resources(&second)
            .iter()
            .all(|(_, action, outcome)| action == "unchanged" && outcome == "unchanged")
    );
    assert_eq!(
        resource_versions(&emulator),
        before,
        "a no-op run wrote something"
    );
    assert!(!out.stderr.contains("s3cret-value"), "{}", out.stderr);
}

#[test]
fn a_dry_run_shows_a_diff_with_secrets_redacted_and_changes_nothing() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "shop.yaml", &shop("info"));
    k8s_apply(&emulator)
        .args(["-f", &path, "--no-wait"])
        .stdin_json(&pushed())
        .run()
        .assert_code(0);
    let before = resource_versions(&emulator);

    let changed = write(dir.path(), "changed.yaml", &shop("debug"));
    let out = k8s_apply(&emulator)
        .args(["-f", &changed, "--dry-run"])
        .stdin_json(&pushed())
        .run();
    out.assert_code(0);
    let planned = deployment(&out);
    assert_eq!(planned.outcome, Outcome::Planned);
    assert!(planned.dry_run);
    let diff = planned.diff.clone().expect("a diff");
    assert!(
        diff.contains("-  LOG_LEVEL: info\n+  LOG_LEVEL: debug\n"),
        "{diff}"
    );
    assert!(diff.contains("--- live/Secret shop/creds"), "{diff}");
    assert!(diff.contains("password: '*** (after)'"), "{diff}");
    assert!(
        !diff.contains("managedFields") && !diff.contains("status:"),
        "{diff}"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("s3cret-value"), "a secret leaked: {text}");
        // base64 of the values, as the API stores them
        assert!(
            !text.contains("czNjcmV0LXZhbHVl"),
            "a secret leaked: {text}"
        );
    }
    let actions = resources(&planned);
    assert_eq!(
        actions[1],
        ("ConfigMap".into(), "configured".into(), "planned".into())
    );
    assert_eq!(
        actions[0],
        ("Namespace".into(), "unchanged".into(), "unchanged".into())
    );
    assert_eq!(
        resource_versions(&emulator),
        before,
        "the dry run changed something"
    );
}

#[test]
fn a_conflict_names_the_manager_and_fields_and_applies_nothing_until_forced() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    emulator.kubectl_with_input(
        &["--context", "staging", "apply", "--server-side", "--field-manager", "ops", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {LOG_LEVEL: trace}\n"),
    );
    let path = write(dir.path(), "shop.yaml", &shop("info"));
    let out = k8s_apply(&emulator)
        .args(["-f", &path, "--no-wait"])
        .stdin_json(&pushed())
        .run();
    out.assert_code(1);
    let error = envelope(&out).failed.expect("failed").error;
    assert!(
        error.contains("conflict with \"ops\"") && error.contains(".data.LOG_LEVEL"),
        "{error}"
    );
    assert!(error.contains("ConfigMap shop/settings"), "{error}");
    let deployments = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "deployments,secrets",
        "-o",
        "name",
    ]);
    assert_eq!(deployments, "", "nothing is applied after a conflict");

    let out = k8s_apply(&emulator)
        .args(["-f", &path, "--no-wait", "--force-conflicts"])
        .stdin_json(&pushed())
        .run();
    out.assert_code(0);
    let value = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "configmap/settings",
        "-o",
        "jsonpath={.data.LOG_LEVEL}",
    ]);
    assert_eq!(value, "info");
    let applied = resources(&deployment(&out));
    assert_eq!(
        applied[1],
        ("ConfigMap".into(), "configured".into(), "started".into())
    );
    assert_eq!(
        applied[3],
        ("Deployment".into(), "created".into(), "started".into())
    );
}

#[test]
fn a_rollout_that_times_out_is_rolled_back_and_exits_124() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {LOG_LEVEL: info}\n";
    let base = write(dir.path(), "base.yaml", config);
    k8s_apply(&emulator)
        .args(["-f", &base])
        .run()
        .assert_code(0);

    // The ConfigMap changes and a Deployment is new; its pods never run here.
    let path = write(dir.path(), "shop.yaml", &shop("debug"));
    let out = k8s_apply(&emulator)
        .args(["-f", &path, "--timeout", "2s", "--rollback-timeout", "5s"])
        .stdin_json(&pushed())
        .run();
    out.assert_code(124);
    let rolled_back = deployment(&out);
    assert_eq!(rolled_back.outcome, Outcome::RolledBack);
    let failure = rolled_back.failure.clone().expect("a failure");
    assert_eq!(failure.reason, "Timeout");
    assert_eq!(
        failure.kubernetes.resource.as_deref(),
        Some("Deployment shop/api")
    );
    assert!(rolled_back.finished_at.is_some());
    assert!(
        out.stderr.contains("Deployment shop/api: deleted"),
        "{}",
        out.stderr
    );
    let value = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "configmap/settings",
        "-o",
        "jsonpath={.data.LOG_LEVEL}",
    ]);
    assert_eq!(value, "info", "the ConfigMap is restored");
    let left = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "shop",
        "get",
        "deployments,secrets",
        "-o",
        "name",
    ]);
    assert_eq!(left, "", "what this run created is deleted");
}

#[test]
fn an_interrupt_mid_wait_writes_the_partial_envelope_exits_130_and_blocks_no_later_run() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "shop.yaml", &shop("info"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8s-apply"))
        .env("KUBECONFIG", &emulator.kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .args(["--context", "staging", "-f", &path, "--poll", "250ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Waiting starts once the Deployment is applied: its first progress line says so.
    let mut seen = String::new();
    let t0 = std::time::Instant::now();
    while !seen.contains("Deployment shop/api: waiting") {
        let mut buf = [0u8; 512];
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0 && t0.elapsed().as_secs() < 30,
            "no wait started: {seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let envelope: Envelope = serde_json::from_slice(&out.stdout).expect("the partial envelope");
    assert_eq!(envelope.failed.as_ref().map(|f| f.exit_code), Some(130));
    let d = &envelope.deployments[0];
    assert_eq!(d.outcome, Outcome::InProgress);
    assert_eq!(
        resources(d)[3],
        ("Deployment".into(), "created".into(), "in_progress".into())
    );

    let out = k8s_apply(&emulator).args(["-f", &path, "--no-wait"]).run();
    out.assert_code(0);
    assert_eq!(deployment(&out).outcome, Outcome::Unchanged);
}

/// k8s-apply with the local AWS settings (moto's STS, the test credentials) and the
/// emulator's EKS API, instead of a kubeconfig.
fn k8s_apply_eks(emulator: &KubeEmulator, cluster: &str) -> Cmd {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_k8s-apply"));
    for (key, value) in
        shipkit_tests::services_env().expect("target/services.env: scripts/services up")
    {
        if key.starts_with("AWS_") {
            cmd = cmd.env(&key, value);
        }
    }
    cmd.env("AWS_ENDPOINT_URL_EKS", emulator.control_url())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["--eks-cluster", cluster])
}

#[test]
fn eks_cluster_finds_the_cluster_through_the_eks_api_with_a_token_the_cluster_checks() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: through-eks}\ndata: {a: b}\n",
    );
    let out = k8s_apply_eks(&emulator, "production")
        .args(["-f", &path])
        .run();
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d.cluster.as_deref(), Some("production"));
    assert_eq!(d.kubernetes.context.as_deref(), Some("eks:production"));
    assert_eq!(
        resources(&d),
        [("ConfigMap".into(), "created".into(), "completed".into())]
    );
    let found = emulator.kubectl(&[
        "--context",
        "production",
        "get",
        "configmap/through-eks",
        "-o",
        "name",
    ]);
    assert_eq!(found.trim(), "configmap/through-eks");
    assert!(
        emulator.log().contains("EKS token of"),
        "the cluster checked an EKS token"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("k8s-aws-v1."),
            "the token was printed: {text}"
        );
    }

    let out = k8s_apply_eks(&emulator, "nope").args(["-f", &path]).run();
    out.assert_code(1);
    let error = envelope(&out).failed.expect("failed").error;
    assert!(
        error.contains("DescribeCluster nope") && error.contains("ResourceNotFoundException"),
        "{error}"
    );
}

fn config_map(name: &str) -> String {
    format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n")
}

#[test]
fn prune_with_an_applyset_deletes_what_left_the_manifests_and_kubectl_sees_the_same_set() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let get = |args: &[&str]| {
        let mut argv = vec!["--context", "staging", "-n", "default", "get"];
        argv.extend_from_slice(args);
        emulator.kubectl(&argv)
    };
    let web = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: app, image: nginx}]}\n";
    let all = write(
        dir.path(),
        "all.yaml",
        &format!("{}{}{web}", config_map("keep"), config_map("drop")),
    );
    let set = ["--prune", "--applyset", "shop-set", "--no-wait"];
    let out = k8s_apply(&emulator).args(["-f", &all]).args(set).run();
    out.assert_code(0);
    let id = k8s_apply::applyset::id("shop-set", "default");
    assert_eq!(deployment(&out).kubernetes.applyset, Some(id.clone()));
    let parent = get(&[
        "secret/shop-set",
        "-o",
        "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id} {.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}",
    ]);
    assert_eq!(parent, format!("{id} ConfigMap,Deployment.apps"));
    let selector = format!("applyset.kubernetes.io/part-of={id}");
    assert_eq!(
        get(&["configmaps,deployments", "-l", &selector, "-o", "name"])
            .lines()
            .count(),
        3
    );

    let fewer = write(dir.path(), "fewer.yaml", &config_map("keep"));
    let out = k8s_apply(&emulator)
        .args(["-f", &fewer, "--dry-run"])
        .args(&set[..3])
        .run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).kubernetes.pruned.unwrap(),
        ["ConfigMap default/drop", "Deployment default/web"]
    );
    assert_eq!(
        get(&["configmaps,deployments", "-l", &selector, "-o", "name"])
            .lines()
            .count(),
        3,
        "a dry run prunes nothing"
    );

    let out = k8s_apply(&emulator).args(["-f", &fewer]).args(set).run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).kubernetes.pruned.unwrap(),
        ["ConfigMap default/drop", "Deployment default/web"]
    );
    assert_eq!(
        get(&["configmaps,deployments", "-l", &selector, "-o", "name"]),
        "configmap/keep\n"
    );
    let kinds = get(&[
        "secret/shop-set",
        "-o",
        "jsonpath={.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}",
    ]);
    assert_eq!(kinds, "ConfigMap");

    // kubectl's own applyset of the same name and namespace has the same id.
    let theirs = write(dir.path(), "theirs.yaml", &config_map("kubectls"));
    let out = std::process::Command::new(shipkit_tests::kube::KUBECTL)
        .env("KUBECONFIG", &emulator.kubeconfig)
        .env("KUBECTL_APPLYSET", "true")
        .args([
            "--context",
            "staging",
            "-n",
            "default",
            "apply",
            "--server-side",
            "--prune",
            "--applyset=kubectl-set",
            "-f",
            &theirs,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubectl_id = get(&[
        "secret/kubectl-set",
        "-o",
        "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id}",
    ]);
    assert_eq!(
        kubectl_id,
        k8s_apply::applyset::id("kubectl-set", "default")
    );
}

#[test]
fn under_actions_it_groups_the_wait_and_writes_step_outputs_and_a_summary() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cm.yaml", &config_map("settings"));
    let (outputs, summary) = (dir.path().join("out"), dir.path().join("summary"));
    let out = k8s_apply(&emulator)
        .args(["-f", &path])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", outputs.display().to_string())
        .env("GITHUB_STEP_SUMMARY", summary.display().to_string())
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("::group::waiting for the rollout"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("::endgroup::"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        "outcome=completed\n"
    );
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(
        table.contains("| ConfigMap default/settings | created | completed |"),
        "{table}"
    );
}
