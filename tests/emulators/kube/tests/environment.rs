//! A container's environment from ConfigMaps and Secrets (run with target/services.env
//! sourced): `envFrom` with a prefix and `optional`, `env` overriding it, and a missing
//! ConfigMap holding the pod in `CreateContainerConfigError` until it exists.

mod support;

use shipkit_tests::ecs::build_image;
use support::{Emulator, RemoveOnDrop, eventually, image, try_jsonpath};

/// A pod that prints its environment, then sleeps.
fn pod(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: printenv}}
spec:
  containers:
  - name: app
    image: {image}
    command: ["/busybox", "sh", "-c", "/busybox env; exec /busybox sleep 3600"]
    envFrom:
    - configMapRef: {{name: settings}}
    - secretRef: {{name: creds}}
      prefix: DB_
    - configMapRef: {{name: absent, optional: true}}
    env:
    - {{name: MODE, value: from-env}}
"#
    )
}

const SETTINGS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n\
data: {MODE: from-config-map, LEVEL: debug, 1st: skipped}\n";
const CREDS: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n\
stringData: {PASSWORD: s3cret}\n";

fn waiting(emu: &Emulator) -> Option<String> {
    try_jsonpath(
        emu,
        "pod/printenv",
        "{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
    )
}

#[test]
fn env_from_config_maps_and_secrets_and_a_missing_one_is_create_container_config_error() {
    let img = image("env");
    build_image(&img, "FROM scratch\nCOPY busybox /busybox\n", &[]);
    let _remove = RemoveOnDrop(img.clone());
    let emu = Emulator::start_with_docker();
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(CREDS));
    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&pod(&img)));
    let state = eventually(20, "CreateContainerConfigError", &emu, || {
        waiting(&emu).filter(|s| s.starts_with("CreateContainerConfigError"))
    });
    assert_eq!(
        state,
        "CreateContainerConfigError: configmap \"settings\" not found"
    );

    emu.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(SETTINGS));
    emu.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/printenv",
        "--timeout=30s",
    ]);
    let log = eventually(10, "the environment in the log", &emu, || {
        let log = emu.kubectl(&["logs", "printenv"]);
        log.contains("DB_PASSWORD=").then_some(log)
    });
    let vars: Vec<&str> = log.lines().collect();
    for expected in ["MODE=from-env", "LEVEL=debug", "DB_PASSWORD=s3cret"] {
        assert!(vars.contains(&expected), "{expected} in {log}");
    }
    assert!(
        !log.contains("from-config-map"),
        "env overrides envFrom: {log}"
    );
    let events = emu.kubectl(&["get", "events"]);
    assert!(
        events.contains("Keys [1st] from the EnvFrom configmap default/settings were skipped"),
        "{events}"
    );
    drop(emu);
}
