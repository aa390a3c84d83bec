//! A CustomResourceDefinition and its custom resources in one apply, against a kube-emulator
//! of each test's own (API only): the custom resource is accepted though the cluster does not
//! serve its kind yet, applied once the CRD is Established; a dry run lists it as created,
//! unchecked by the server; a custom resource that fails to apply takes its new CRD with it
//! in the rollback.

use common::envelope::{Deployment, Outcome};
use shipkit_tests::kube::KubeEmulator;

mod support;
use support::{deployment, k8s_apply, write};

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

/// A Widget in `namespace`, listed before its CRD and after a Namespace (`gadgets`), as a
/// kustomize build may order them.
fn widgets(namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: gadgets}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {{name: w1, namespace: {namespace}}}
spec: {{size: 3}}
---
{CRD}"
    )
}

/// `Kind name: action outcome` of each resource.
fn resources(d: &Deployment) -> Vec<String> {
    d.kubernetes
        .resources
        .as_ref()
        .expect("resources[]")
        .iter()
        .map(|r| format!("{} {}: {} {}", r.kind, r.name, r.action, r.outcome))
        .collect()
}

fn crd_exists(emulator: &KubeEmulator) -> bool {
    let names = emulator.kubectl(&["--context", "staging", "get", "crd", "-o", "name"]);
    names.contains("widgets.example.com")
}

#[test]
fn a_crd_and_its_custom_resource_apply_together_the_resource_once_the_crd_is_established() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "widgets.yaml", &widgets("gadgets"));

    let out = k8s_apply(&emulator).args(["-f", &path, "--dry-run"]).run();
    out.assert_code(0);
    let planned = deployment(&out);
    assert_eq!(planned.outcome, Outcome::Planned);
    assert_eq!(
        resources(&planned),
        [
            "Namespace gadgets: created planned",
            "CustomResourceDefinition widgets.example.com: created planned",
            "Widget w1: created planned",
        ]
    );
    assert!(
        out.stderr.contains(
            "Widget gadgets/w1: created (dry run; not checked by the server, which cannot know \
             the kind before CustomResourceDefinition widgets.example.com of this apply exists)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        planned
            .diff
            .as_deref()
            .unwrap_or_default()
            .contains("+  size: 3"),
        "{:?}",
        planned.diff
    );
    assert!(!crd_exists(&emulator), "the dry run created the CRD");

    let out = k8s_apply(&emulator).args(["-f", &path]).run();
    out.assert_code(0);
    let applied = deployment(&out);
    assert_eq!(applied.outcome, Outcome::Completed, "{}", out.stderr);
    assert_eq!(
        resources(&applied),
        [
            "Namespace gadgets: created completed",
            "CustomResourceDefinition widgets.example.com: created completed",
            "Widget w1: created completed",
        ]
    );
    let established = out
        .stderr
        .find("CustomResourceDefinition widgets.example.com: established");
    let created = out.stderr.find("Widget gadgets/w1: created");
    assert!(
        established.is_some() && established < created,
        "{}",
        out.stderr
    );
    let size = emulator.kubectl(&[
        "--context",
        "staging",
        "-n",
        "gadgets",
        "get",
        "widget/w1",
        "-o",
        "jsonpath={.spec.size}",
    ]);
    assert_eq!(size, "3");

    let out = k8s_apply(&emulator).args(["-f", &path]).run();
    out.assert_code(0);
    assert_eq!(
        deployment(&out).outcome,
        Outcome::Unchanged,
        "{}",
        out.stderr
    );
}

#[test]
fn a_custom_resource_that_cannot_be_applied_rolls_back_the_crd_created_for_it() {
    let emulator = KubeEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    // Its namespace exists nowhere: the API refuses it (404) once its kind is served.
    let path = write(dir.path(), "widgets.yaml", &widgets("nowhere"));
    let out = k8s_apply(&emulator).args(["-f", &path]).run();
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d.outcome, Outcome::RolledBack, "{}", out.stderr);
    let failure = d.failure.expect("a failure");
    assert_eq!(failure.reason, "ApplyFailed");
    assert_eq!(
        failure.kubernetes.resource.as_deref(),
        Some("Widget nowhere/w1")
    );
    assert!(
        out.stderr
            .contains("CustomResourceDefinition widgets.example.com: deleted"),
        "{}",
        out.stderr
    );
    assert!(!crd_exists(&emulator), "the CRD was left behind");
}
