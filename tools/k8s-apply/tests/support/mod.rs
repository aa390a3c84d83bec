//! What k8s-apply's test files share: running it against a test's own emulator, decoding its
//! stdout (byte for byte as written), writing manifests, removing the images a test tagged.

#![allow(dead_code)] // each test file uses its own part of this module

use common::Envelope;
use common::envelope::Deployment;
use shipkit_tests::kube::KubeEmulator;
use shipkit_tests::{Cmd, Output};
use std::path::Path;

/// k8s-apply on the emulator's `staging` context, polling every 250 ms (`--poll` beats it).
pub fn k8s_apply(emulator: &KubeEmulator) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_k8s-apply"))
        .env("KUBECONFIG", emulator.kubeconfig.display().to_string())
        .env("K8S_APPLY_POLL", "250ms")
        .args(["--context", "staging"])
}

/// Writes `text` to `dir/name`; the path as text, for `-f`.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Stdout decoded into [`Envelope`]; re-encoded, it is byte for byte what k8s-apply wrote
/// (the typed Kubernetes fields lose, reorder and reformat nothing).
#[track_caller]
pub fn envelope(out: &Output) -> Envelope {
    let written = out.stdout.trim_end_matches('\n');
    let envelope: Envelope = serde_json::from_str(written)
        .unwrap_or_else(|e| panic!("stdout is not an Envelope ({e}): {written}\n{}", out.stderr));
    assert_eq!(serde_json::to_string(&envelope).unwrap(), written);
    envelope
}

/// The one deployment entry of [`envelope`].
#[track_caller]
pub fn deployment(out: &Output) -> Deployment {
    let envelope = envelope(out);
    assert_eq!(envelope.deployments.len(), 1, "{}", out.stderr);
    envelope.deployments[0].clone()
}

/// Removes the local images a test tagged when dropped, whatever the test's outcome.
#[derive(Default)]
pub struct RemoveImages(pub Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", reference])
                .output();
        }
    }
}
