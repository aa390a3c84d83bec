//! `kubectl delete --cascade=orphan|foreground|background` against the emulator (the API
//! alone: pods are stored, never run): owner references removed and dependents kept, or the
//! owner held with `foregroundDeletion` until its blocking dependents are gone.

mod support;

use std::time::Duration;

use support::{Emulator, deployment, eventually, try_jsonpath};

fn names(emu: &Emulator, what: &str) -> Vec<String> {
    let out = emu.kubectl(&["get", what, "-o", "jsonpath={.items[*].metadata.name}"]);
    out.split_whitespace().map(str::to_owned).collect()
}

/// Applies a Deployment and waits until its ReplicaSet has made its `replicas` pods.
fn deployment_with_pods(emu: &Emulator, name: &str, replicas: usize) {
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment(name, replicas as u32, "nginx:1.27")),
    );
    eventually(20, "a ReplicaSet and its pods", emu, || {
        (names(emu, "replicasets").len() == 1 && names(emu, "pods").len() == replicas).then_some(())
    });
}

#[test]
fn cascade_orphan_deletes_the_deployment_and_leaves_its_replica_set_unowned_with_its_pods() {
    let emu = Emulator::start();
    deployment_with_pods(&emu, "web", 2);
    let rs = names(&emu, "replicasets").remove(0);
    let out = emu.kubectl(&["delete", "deployment", "web", "--cascade=orphan"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    assert!(names(&emu, "deployments").is_empty());
    // Several controller ticks later nothing has collected them.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(names(&emu, "replicasets"), std::slice::from_ref(&rs));
    let owners = emu.kubectl(&[
        "get",
        "rs",
        &rs,
        "-o",
        "jsonpath={.metadata.ownerReferences}",
    ]);
    assert_eq!(owners, "", "the owner reference is removed");
    assert_eq!(
        names(&emu, "pods").len(),
        2,
        "the pods stay, owned by the ReplicaSet"
    );

    // Background (kubectl's default) on the orphaned ReplicaSet takes its pods with it.
    emu.kubectl(&["delete", "rs", &rs]);
    eventually(10, "the pods collected", &emu, || {
        names(&emu, "pods").is_empty().then_some(())
    });
}

/// A ConfigMap owned by Deployment `owner` (blocking its deletion) that a finalizer of its own
/// keeps until the test removes it.
fn held_dependent(owner: &str, uid: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n  \
         ownerReferences:\n  - {{apiVersion: apps/v1, kind: Deployment, name: {owner}, uid: {uid}, blockOwnerDeletion: true}}\n"
    )
}

#[test]
fn cascade_foreground_keeps_the_deployment_marked_until_its_blocking_dependents_are_gone() {
    let emu = Emulator::start();
    deployment_with_pods(&emu, "web", 2);
    let uid = emu.kubectl(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]);
    emu.kubectl_with_input(&["apply", "-f", "-"], Some(&held_dependent("web", &uid)));
    emu.kubectl(&[
        "delete",
        "deployment",
        "web",
        "--cascade=foreground",
        "--wait=false",
    ]);

    eventually(15, "the ReplicaSet and pods deleted first", &emu, || {
        (names(&emu, "replicasets").is_empty() && names(&emu, "pods").is_empty()).then_some(())
    });
    let held = emu.kubectl(&[
        "get",
        "cm",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!held.is_empty(), "the held dependent is being deleted");
    std::thread::sleep(Duration::from_millis(1000));
    let marked = try_jsonpath(
        &emu,
        "deployment/web",
        "{.metadata.deletionTimestamp}|{.metadata.finalizers}",
    )
    .expect("the Deployment waits for its blocking dependent");
    let (since, finalizers) = marked.split_once('|').unwrap();
    assert!(!since.is_empty(), "{marked}");
    assert_eq!(finalizers, r#"["foregroundDeletion"]"#);

    emu.kubectl(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    emu.kubectl(&["wait", "--for=delete", "deployment/web", "--timeout=10s"]);
    assert!(names(&emu, "deployments").is_empty());
}

#[test]
fn an_unknown_propagation_policy_is_refused() {
    let emu = Emulator::start();
    deployment_with_pods(&emu, "web", 1);
    let out = emu.run_kubectl(
        &[
            "delete",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web?propagationPolicy=Sideways",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unsupported value: \"Sideways\""), "{err}");
    assert_eq!(names(&emu, "deployments"), ["web"]);
}
