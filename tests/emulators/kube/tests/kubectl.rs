//! kubectl 1.32, unmodified and with default flags, against the emulator.

mod support;

use std::time::Duration;

use support::{Emulator, config_map, deployment};

fn jsonpath(emu: &Emulator, what: &str, path: &str) -> String {
    emu.kubectl_with_input(&["get", what, "-o", &format!("jsonpath={path}")], None)
}

/// Waits until the emulator's controllers leave `what` alone (its resourceVersion the same
/// half a second apart): a status update landing between `kubectl diff`'s read of the live
/// object and its dry run shows in the diff, as it would against a real API server.
fn settled(emu: &Emulator, what: &str) {
    let version = || jsonpath(emu, what, "{.metadata.resourceVersion}");
    let mut last = version();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = version();
        if now == last {
            return;
        }
        last = now;
    }
    panic!("{what} kept changing for 10 s");
}

#[test]
fn discovery_and_openapi_answer_what_kubectl_asks() {
    let emu = Emulator::start();
    let version = emu.kubectl_with_input(&["version"], None);
    assert!(version.contains("Server Version: v1.32"), "{version}");
    let resources = emu.kubectl_with_input(&["api-resources"], None);
    let deployments = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .expect(&resources);
    assert!(
        deployments.contains("apps/v1")
            && deployments.contains("true")
            && deployments.contains("Deployment")
    );
    let crds = resources
        .lines()
        .find(|l| l.starts_with("customresourcedefinitions "))
        .unwrap();
    assert!(crds.contains("false"), "CRDs are cluster-scoped: {crds}");
    let openapi = emu.kubectl_with_input(&["get", "--raw", "/openapi/v3"], None);
    assert!(openapi.contains("apis/apps/v1"), "{openapi}");
}

#[test]
fn apply_server_side_creates_then_a_second_apply_changes_nothing() {
    let emu = Emulator::start();
    let manifest = format!(
        "{}---\n{}",
        deployment("web", 2, "nginx:1.27"),
        config_map("cfg", "1")
    );
    let out = emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    // The controllers write the Deployment's status (and its ReplicaSet) once: wait until
    // nothing moves, then apply again.
    let mut rv = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(700));
        let now = jsonpath(&emu, "deployment/web", "{.metadata.resourceVersion}");
        if now == rv {
            break;
        }
        rv = now;
    }
    let cm_rv = jsonpath(&emu, "configmap/cfg", "{.metadata.resourceVersion}");
    assert_eq!(
        jsonpath(&emu, "deployment/web", "{.metadata.generation}"),
        "1"
    );
    let out = emu.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "-f",
            "-",
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ],
        Some(&manifest),
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        [rv.as_str(), cm_rv.as_str()],
        "a no-op apply must not write"
    );
    assert_eq!(
        jsonpath(&emu, "deployment/web", "{.metadata.resourceVersion}"),
        rv
    );
    // The server's defaults are there, so that a diff shows only real changes.
    assert_eq!(
        jsonpath(&emu, "deployment/web", "{.spec.progressDeadlineSeconds}"),
        "600"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.spec.strategy.rollingUpdate.maxSurge}"
        ),
        "25%"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.spec.template.spec.containers[0].imagePullPolicy}"
        ),
        "IfNotPresent"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.metadata.managedFields[0].manager}"
        ),
        "kubectl"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.metadata.managedFields[0].operation}"
        ),
        "Apply"
    );
}

#[test]
fn an_unknown_field_is_refused_naming_it_and_nothing_is_created() {
    let emu = Emulator::start();
    let manifest = deployment("web", 2, "nginx:1.27").replace("replicas: 2", "replicass: 2");
    let out = emu.run_kubectl(&["apply", "--server-side", "-f", "-"], Some(&manifest));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replicass") && err.contains("field not declared in schema"),
        "{err}"
    );
    let get = emu.run_kubectl(&["get", "deployment", "web"], None);
    assert!(String::from_utf8_lossy(&get.stderr).contains("NotFound"));
}

/// A real API server decodes into typed fields, so `replicas: three` is refused whatever the
/// validation mode, by a create as by a server-side apply, and nothing is stored.
#[test]
fn a_field_of_the_wrong_type_is_refused_naming_it_and_nothing_is_created() {
    let emu = Emulator::start();
    let manifest = deployment("web", 2, "nginx:1.27").replace("replicas: 2", "replicas: three");
    for args in [
        &["apply", "--server-side", "-f", "-"][..],
        &["create", "--validate=false", "-f", "-"][..],
    ] {
        let out = emu.run_kubectl(args, Some(&manifest));
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("BadRequest") && err.contains("spec.replicas") && err.contains("int32"),
            "{args:?}: {err}"
        );
        let get = emu.run_kubectl(&["get", "deployment", "web"], None);
        assert!(String::from_utf8_lossy(&get.stderr).contains("NotFound"));
    }
}

#[test]
fn two_managers_conflict_until_one_forces() {
    let emu = Emulator::start();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.27")),
    );
    let theirs = deployment("web", 3, "nginx:1.27");
    let out = emu.run_kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "ops",
            "-f",
            "-",
        ],
        Some(&theirs),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    assert!(
        err.contains("--force-conflicts"),
        "kubectl's own advice follows the 409: {err}"
    );
    assert_eq!(jsonpath(&emu, "deployment/web", "{.spec.replicas}"), "2");
    emu.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "ops",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&theirs),
    );
    assert_eq!(jsonpath(&emu, "deployment/web", "{.spec.replicas}"), "3");
    assert_eq!(
        jsonpath(&emu, "deployment/web", "{.metadata.generation}"),
        "2"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.metadata.managedFields[*].manager}"
        ),
        "kubectl ops"
    );
}

#[test]
fn diff_server_side_shows_exactly_the_changed_field() {
    let emu = Emulator::start();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.27")),
    );
    settled(&emu, "deployment/web");
    let same = emu.run_kubectl(
        &["diff", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.27")),
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "no change, no diff: {}",
        String::from_utf8_lossy(&same.stdout)
    );
    let out = emu.run_kubectl(
        &["diff", "--server-side", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.28")),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .filter(|l| !l.contains("generation:"))
        .collect();
    assert_eq!(
        changed,
        ["-      - image: nginx:1.27", "+      - image: nginx:1.28"],
        "{text}"
    );
    assert_eq!(
        jsonpath(
            &emu,
            "deployment/web",
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.27",
        "a diff is a dry run"
    );
}

#[test]
fn get_prints_the_kinds_columns() {
    let emu = Emulator::start();
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&format!(
            "{}---\n{}",
            deployment("web", 2, "nginx:1.27"),
            config_map("cfg", "1")
        )),
    );
    let out = emu.kubectl_with_input(&["get", "deployments"], None);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // The controllers may or may not have acted yet (the columns, not the timing, are
    // what this checks): READY is n/2, UP-TO-DATE and AVAILABLE are counts up to 2.
    assert_eq!(row[0], "web");
    let count = |column: &str| column.parse::<u32>().ok().filter(|n| *n <= 2);
    let ready = row[1].strip_suffix("/2").and_then(count);
    assert!(
        ready.is_some() && count(row[2]).is_some() && count(row[3]).is_some(),
        "{row:?}"
    );
    let wide = emu.kubectl_with_input(&["get", "deployment", "web", "-o", "wide"], None);
    assert!(
        wide.contains("nginx:1.27") && wide.contains("app=web"),
        "{wide}"
    );
    let cms = emu.kubectl_with_input(&["get", "configmaps", "-l", "missing=label"], None);
    assert!(cms.is_empty(), "{cms}");
    let cms = emu.kubectl_with_input(&["get", "cm", "--chunk-size=1"], None);
    assert!(cms.starts_with("NAME") && cms.contains("cfg "), "{cms}");
}

#[test]
fn get_watch_sees_added_modified_deleted_in_order() {
    let emu = Emulator::start();
    // One object already there: kubectl prints it first, which says the watch is set up.
    emu.kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&config_map("seed", "1")),
    );
    let lines = emu.lines_until(
        &["get", "configmaps", "--watch", "--output-watch-events"],
        Duration::from_secs(20),
        |l| l.starts_with("DELETED") && l.contains(" w "),
        || {
            emu.kubectl_with_input(
                &["apply", "--server-side", "-f", "-"],
                Some(&config_map("w", "1")),
            );
            emu.kubectl_with_input(&["label", "configmap", "w", "tier=web"], None);
            emu.kubectl_with_input(&["delete", "configmap", "w"], None);
        },
    );
    let events: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        .filter(|(_, name)| *name == "w")
        .collect();
    assert_eq!(
        events,
        [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")],
        "{lines:?}"
    );
}

#[test]
fn a_wrong_token_is_unauthorized_and_the_clusters_are_apart() {
    let emu = Emulator::start();
    let out = emu.run_kubectl(&["get", "configmaps", "--token", "not-the-token"], None);
    assert!(!out.status.success());
    // What client-go says for a 401.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the server has asked for the client to provide credentials"),
        "{err}"
    );
    emu.kubectl_with_input(
        &["--context", "staging", "apply", "--server-side", "-f", "-"],
        Some(&config_map("only-staging", "1")),
    );
    let prod = emu.run_kubectl(
        &[
            "--context",
            "production",
            "get",
            "configmap",
            "only-staging",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&prod.stderr).contains("NotFound"));
    let contexts = emu.kubectl_with_input(&["config", "get-contexts", "-o", "name"], None);
    assert_eq!(
        contexts.lines().collect::<Vec<_>>(),
        ["production", "staging"]
    );
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[test]
fn a_crd_once_established_serves_its_custom_resources_in_that_cluster_only() {
    let emu = Emulator::start();
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(CRD));
    emu.kubectl_with_input(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    );
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n";
    let out = emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(widget));
    assert!(
        out.contains("widget.example.com/w1 serverside-applied"),
        "{out}"
    );
    let table = emu.kubectl_with_input(&["get", "wg"], None);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE"]);
    assert_eq!(
        jsonpath(&emu, "widget/w1", "{.spec.size} {.metadata.generation}"),
        "3 1"
    );
    let prod = emu.run_kubectl(&["--context", "production", "get", "widgets"], None);
    assert!(!prod.status.success(), "production has no such CRD");
    emu.kubectl_with_input(&["delete", "crd", "widgets.example.com"], None);
    let t0 = std::time::Instant::now();
    loop {
        let gone = emu.run_kubectl(&["get", "widgets"], None);
        if !gone.status.success() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "widgets still served after the CRD was deleted"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn client_side_apply_then_plain_diff_shows_exactly_the_changed_field() {
    let emu = Emulator::start();
    emu.kubectl_with_input(
        &["apply", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.27")),
    );
    settled(&emu, "deployment/web");
    let same = emu.run_kubectl(
        &["diff", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.27")),
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let out = emu.run_kubectl(
        &["diff", "-f", "-"],
        Some(&deployment("web", 2, "nginx:1.28")),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .filter(|l| !l.contains("generation:"))
        .collect();
    assert_eq!(
        changed,
        ["-      - image: nginx:1.27", "+      - image: nginx:1.28"],
        "{text}"
    );
}
