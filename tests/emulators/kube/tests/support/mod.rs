//! The emulator of each test's own comes from the shared test support
//! (`shipkit_tests::kube`); here are only the manifests these tests apply.

#![allow(dead_code)] // each test file uses its own part of this module

pub use shipkit_tests::kube::KubeEmulator as Emulator;

use std::time::{Duration, Instant};

/// A local image tag no other test uses.
pub fn image(name: &str) -> String {
    format!(
        "kube-emulator-tests/{name}:{}-{}",
        std::process::id(),
        rand_suffix()
    )
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()) << 7
    )
}

pub fn jsonpath(emu: &Emulator, what: &str, path: &str) -> String {
    emu.kubectl_with_input(&["get", what, "-o", &format!("jsonpath={path}")], None)
}

/// Like [`jsonpath`], None while kubectl cannot answer it (no pod yet, no status yet).
pub fn try_jsonpath(emu: &Emulator, what: &str, path: &str) -> Option<String> {
    let out = emu.run_kubectl(&["get", what, "-o", &format!("jsonpath={path}")], None);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` until it returns Some, or fails after `secs` with `what`.
pub fn eventually<T>(secs: u64, what: &str, emu: &Emulator, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what} within {secs}s\n--- emulator log:\n{}",
            emu.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Removes the image when the test ends, passed or not (declared before the emulator, so
/// dropped after it has removed its containers).
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

/// A Deployment manifest with `replicas` and `image`.
pub fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
"
    )
}

/// A ConfigMap manifest.
pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}
