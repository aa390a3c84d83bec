//! The emulator of each test's own comes from the shared test support
//! (`shipkit_tests::kube`); here are only the manifests these tests apply.

#![allow(dead_code)] // each test file uses its own part of this module

pub use shipkit_tests::kube::KubeEmulator as Emulator;

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
