//! Many objects at once, against a kube-emulator of each test's own (API only): the state
//! before the apply is read with one LIST per kind and namespace instead of a GET per object,
//! each tier is applied at once and reported in input order, and a second run writes nothing.

use common::envelope::Outcome;
use shipkit_tests::Cmd;
use shipkit_tests::kube::KubeEmulator;

mod support;
use support::deployment;

/// `n` each of ConfigMap, Secret, Service and Deployment in namespace `bulk`, interleaved, after
/// the Namespace.
fn objects(n: usize) -> String {
    let mut text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: bulk}\n".to_owned();
    for i in 1..=n {
        text.push_str(&format!(
            "---
apiVersion: v1
kind: ConfigMap
metadata: {{name: config-{i}, namespace: bulk}}
data: {{N: '{i}'}}
---
apiVersion: v1
kind: Secret
metadata: {{name: secret-{i}, namespace: bulk}}
stringData: {{password: pw-{i}}}
---
apiVersion: v1
kind: Service
metadata: {{name: svc-{i}, namespace: bulk}}
spec: {{selector: {{app: app-{i}}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}, namespace: bulk}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec: {{containers: [{{name: app, image: 'web:1'}}]}}
"
        ));
    }
    text
}

fn k8s_apply(emulator: &KubeEmulator, path: &str) -> Cmd {
    support::k8s_apply(emulator).args(["--no-wait", "-f", path])
}

/// The requests whose path is exactly `path` (not a longer one) with `method`.
fn requests_to(emulator: &KubeEmulator, method: &str, path: &str) -> usize {
    let prefix = format!("{method} {path}");
    emulator
        .requests()
        .iter()
        .filter(|r| {
            r.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with([':', ' ', '?']))
        })
        .count()
}

#[test]
fn many_objects_are_read_by_list_applied_tier_by_tier_in_input_order_and_not_rewritten() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bulk.yaml");
    std::fs::write(&path, objects(20)).unwrap();
    let path = path.display().to_string();

    let out = k8s_apply(&emulator, &path).run();
    out.assert_code(0);
    let d = deployment(&out);
    let names: Vec<String> = d
        .kubernetes
        .resources
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect();
    let mut expected = vec!["Namespace bulk".to_owned()];
    for kind in ["ConfigMap", "Secret", "Service", "Deployment"] {
        let prefix = match kind {
            "ConfigMap" => "config",
            "Secret" => "secret",
            "Service" => "svc",
            _ => "app",
        };
        expected.extend((1..=20).map(|i| format!("{kind} {prefix}-{i}")));
    }
    assert_eq!(names, expected, "resources[] in apply order");
    // Applied at once within a tier, yet told in input order.
    let told: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.ends_with(": created"))
        .collect();
    let expected_lines: Vec<String> = expected
        .iter()
        .map(|n| {
            let (kind, name) = n.split_once(' ').unwrap();
            match kind {
                "Namespace" => format!("Namespace {name}: created"),
                _ => format!("{kind} bulk/{name}: created"),
            }
        })
        .collect();
    assert_eq!(told, expected_lines);

    // One LIST per kind in the namespace (Services: a second one for their endpoints once
    // applied), no GET per object.
    for (list, one, lists) in [
        ("/api/v1/namespaces/bulk/configmaps", "config-7", 1),
        ("/api/v1/namespaces/bulk/secrets", "secret-7", 1),
        ("/api/v1/namespaces/bulk/services", "svc-7", 2),
        ("/apis/apps/v1/namespaces/bulk/deployments", "app-7", 1),
    ] {
        assert_eq!(requests_to(&emulator, "GET", list), lists, "LIST {list}");
        let get = format!("{list}/{one}");
        assert_eq!(requests_to(&emulator, "GET", &get), 0, "GET {get}");
    }

    // What no controller touches shows whether the no-op run wrote anything.
    let versions = || {
        emulator.kubectl(&[
            "--context",
            "staging",
            "-n",
            "bulk",
            "get",
            "configmaps,secrets",
            "-o",
            "jsonpath={..metadata.resourceVersion}",
        ])
    };
    let before = versions();
    let out = k8s_apply(&emulator, &path).run();
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::Unchanged);
    assert!(
        d.kubernetes
            .resources
            .unwrap()
            .iter()
            .all(|r| r.action == "unchanged")
    );
    assert_eq!(versions(), before, "the no-op run wrote something");
}
