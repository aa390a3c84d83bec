//! `make demo`'s whole story, as CI can run it: `scripts/demo --story` on the local services —
//! dev on the ECS emulator, staging on the kube emulator's `staging` cluster through
//! `--eks-cluster`, a release tag in a scratch repository, production by promotion — then the
//! same command again, which must find nothing to do.
//!
//! What a user checks: every environment healthy through its load balancer (`/auth` answers
//! 200 only when auth-server reaches Redis by its name), production running exactly the
//! digests staging ran (promoted under the release's tag, not rebuilt), and a second run that
//! builds, pushes and applies nothing.
//!
//! Needs `scripts/services up` (all of it) and the workspace binaries in target/debug (`cargo
//! test --workspace` builds them). The demo keeps its envelopes in target/demo.

use serde_json::Value;
use shipkit_tests::{Cmd, Output, repo_root};
use std::collections::BTreeSet;

fn demo_story() -> Output {
    let out = Cmd::new(repo_root().join("scripts/demo"))
        .args(["--story"])
        .env(
            "SHIPKIT_BIN",
            repo_root().join("target/debug").display().to_string(),
        )
        .current_dir(repo_root())
        .run();
    assert_eq!(
        out.code, 0,
        "scripts/demo --story failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    out
}

fn envelope(name: &str) -> Value {
    let path = repo_root().join("target/demo").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The image references the envelope's Kubernetes deployment ran.
fn kubernetes_images(envelope: &Value) -> BTreeSet<String> {
    envelope["deployments"]
        .as_array()
        .expect("deployments[]")
        .iter()
        .filter(|d| d["platform"] == "kubernetes")
        .flat_map(|d| d["images"].as_array().cloned().unwrap_or_default())
        .map(|image| image.as_str().expect("an image reference").to_owned())
        .collect()
}

/// The digest part of each reference (`…@sha256:…`).
fn digests(images: &BTreeSet<String>) -> BTreeSet<String> {
    images
        .iter()
        .map(|image| {
            let (_, digest) = image
                .rsplit_once('@')
                .unwrap_or_else(|| panic!("{image} is not pinned by digest"));
            digest.to_owned()
        })
        .collect()
}

/// Every health[] entry is healthy, and there is one for `/auth`.
fn assert_healthy(name: &str, envelope: &Value) {
    let health = envelope["health"].as_array().expect("health[]");
    assert!(
        health.iter().all(|h| h["healthy"] == true),
        "{name}: {health:?}"
    );
    assert!(
        health
            .iter()
            .any(|h| h["target"].as_str().is_some_and(|t| t.ends_with("/auth"))),
        "{name}: no /auth check in {health:?}"
    );
}

#[test]
fn the_whole_story_deploys_production_from_stagings_digests_and_a_rerun_does_nothing() {
    let first = demo_story();
    for name in ["envelope.json", "staging.json", "production.json"] {
        assert_healthy(name, &envelope(name));
    }
    let staging = envelope("staging.json");
    let production = envelope("production.json");
    let staged = kubernetes_images(&staging);
    let released = kubernetes_images(&production);
    assert_eq!(
        staged.len(),
        3,
        "api-server, auth-server and redis: {staged:?}"
    );
    assert_eq!(
        digests(&staged),
        digests(&released),
        "production must run what staging ran"
    );
    let tag = production["release"]["tag"].as_str().expect("release.tag");
    assert!(
        tag.starts_with('v') && semver_like(&tag[1..]),
        "release tag {tag}"
    );
    assert!(
        first
            .stdout
            .contains("Production runs the digests staging ran"),
        "{}",
        first.stdout
    );

    let second = demo_story();
    assert!(
        second.stdout.contains(
            "Nothing changed since the last run: no rebuild, no push, nothing applied or deployed"
        ),
        "{}\n{}",
        second.stdout,
        second.stderr
    );
    assert_eq!(
        digests(&kubernetes_images(&envelope("production.json"))),
        digests(&staged)
    );
}

fn semver_like(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok())
}
