//! `imagePullSecrets` (run with target/services.env sourced): an image in the password-protected
//! registry (`SHIPKIT_REGISTRY`, localhost:5000) is pulled with the credentials of the pod's
//! `kubernetes.io/dockerconfigjson` Secret, and without one the pull is refused.

mod support;

use base64::Engine as _;
use shipkit_tests::docker::Docker;
use shipkit_tests::ecs::build_image;
use support::{Emulator, RemoveOnDrop, eventually, try_jsonpath};

/// A pod running `image`, with `secret` as its pull Secret when given.
fn pod(name: &str, image: &str, secret: Option<&str>) -> String {
    let pull = secret.map_or(String::new(), |s| {
        format!("  imagePullSecrets: [{{name: {s}}}]\n")
    });
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{pull}  containers:\n  \
         - name: app\n    image: {image}\n    command: [\"/busybox\", \"sleep\", \"3600\"]\n"
    )
}

/// A `kubernetes.io/dockerconfigjson` Secret for `host` (kubectl's `create secret
/// docker-registry` sends protobuf, which the emulator refuses, so it is written out).
fn registry_secret(name: &str, host: &str, user: &str, password: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = serde_json::json!({"auths": {host: {
        "username": user, "password": password, "auth": b64(&format!("{user}:{password}")),
    }}});
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/dockerconfigjson\n\
         data: {{.dockerconfigjson: {}}}\n",
        b64(&config.to_string())
    )
}

fn waiting_reason(emu: &Emulator, pod: &str) -> Option<String> {
    try_jsonpath(
        emu,
        &format!("pod/{pod}"),
        "{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}",
    )
}

#[test]
fn an_image_in_a_private_registry_is_pulled_with_the_pods_pull_secret_only() {
    let env = shipkit_tests::services_env().expect("target/services.env: scripts/services up");
    let host = env["SHIPKIT_REGISTRY"].clone();
    let user = env["SHIPKIT_REGISTRY_USER"].clone();
    let password = std::fs::read_to_string(&env["SHIPKIT_REGISTRY_PASSWORD_FILE"])
        .expect("the registry password file")
        .trim()
        .to_owned();
    let image = format!(
        "{host}/kube-emulator-tests/private:{}",
        support::image("p").rsplit(':').next().unwrap_or("t")
    );
    build_image(&image, "FROM scratch\nCOPY busybox /busybox\n", &[]);
    let config = tempfile::tempdir().expect("a Docker config of the test's own");
    let docker = Docker::with_config(config.path());
    docker.login(&host, &user, &password);
    docker.ok(&["push", &image]);
    // Only the registry has it now: the kubelet must pull.
    docker.ok(&["rmi", &image]);
    let _remove = RemoveOnDrop(image.clone());
    let emu = Emulator::start_with_docker();

    emu.kubectl_with_input(&["apply", "-f", "-"], Some(&pod("anonymous", &image, None)));
    let refused = eventually(30, "the anonymous pull refused", &emu, || {
        waiting_reason(&emu, "anonymous")
            .filter(|r| r.starts_with("ErrImagePull|") || r.starts_with("ImagePullBackOff|"))
    });
    assert!(refused.contains(&image), "{refused}");
    emu.kubectl(&["delete", "pod", "anonymous", "--wait=false"]);

    let secret = registry_secret("regcred", &host, &user, &password);
    emu.kubectl_with_input(&["apply", "-f", "-"], Some(&secret));
    emu.kubectl_with_input(
        &["apply", "-f", "-"],
        Some(&pod("private", &image, Some("regcred"))),
    );
    emu.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/private",
        "--timeout=60s",
    ]);
    assert!(
        !emu.log().contains(&password),
        "the password is never logged"
    );
    drop(emu);
}
