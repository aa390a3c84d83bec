//! Smoke test of the local services started by `scripts/services up`: each answers, through
//! the settings in `target/services.env` only, as the tools will see it.

use base64::Engine as _;
use serde_json::Value;
use shipkit_tests::ecr::ecr_login;
use shipkit_tests::{Cmd, services_env};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

fn env() -> BTreeMap<String, String> {
    services_env().expect("target/services.env is missing: run `make services-up` (make test does)")
}

fn var<'a>(env: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    env.get(key)
        .unwrap_or_else(|| panic!("{key} is not in target/services.env"))
}

/// One HTTP/1.0 exchange over an already connected stream; returns the raw response.
fn exchange(mut stream: impl Read + Write, request: &str) -> String {
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}

#[test]
fn docker_engine_answers_on_docker_host() {
    let env = env();
    let socket = var(&env, "DOCKER_HOST")
        .strip_prefix("unix://")
        .expect("DOCKER_HOST is a unix socket");
    let stream = UnixStream::connect(socket).expect("connect to the Docker Engine socket");
    let response = exchange(stream, "GET /version HTTP/1.0\r\nHost: docker\r\n\r\n");
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    // Debian's docker.io: the API version every tool must negotiate down to.
    assert_eq!(body["ApiVersion"], "1.41", "{body}");
}

fn basic_auth(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {encoded}")
}

#[test]
fn the_ecr_registry_is_served_over_trusted_tls_with_the_token_from_moto() {
    let env = env();
    // The registry token, as `aws ecr get-authorization-token` gets it.
    let login = ecr_login();
    assert_eq!(login.user, "AWS");
    assert_eq!(
        login.proxy_endpoint,
        format!("https://{}", var(&env, "SHIPKIT_ECR_HOST"))
    );
    let (endpoint, password) = (login.proxy_endpoint, login.password);
    let v2 = format!("{endpoint}/v2/");
    // No --cacert: the system trust store must already trust the local CA.
    let anonymous = Cmd::tool("health-wait")
        .args(["--url", &v2, "--status", "401", "--timeout", "10s"])
        .run();
    anonymous.assert_code(0);
    let authorized = Cmd::tool("health-wait")
        .args(["--url", &v2, "--status", "200", "--timeout", "10s"])
        .args(["-H", &basic_auth("AWS", &password)])
        .run();
    authorized.assert_code(0);
    assert!(!authorized.stderr.contains(&password) && !authorized.stdout.contains(&password));
}

#[test]
fn the_generic_registry_wants_its_password() {
    let env = env();
    let password = std::fs::read_to_string(var(&env, "SHIPKIT_REGISTRY_PASSWORD_FILE"))
        .expect("read the registry password file");
    let v2 = format!("http://{}/v2/", var(&env, "SHIPKIT_REGISTRY"));
    Cmd::tool("health-wait")
        .args(["--url", &v2, "--status", "401", "--timeout", "10s"])
        .run()
        .assert_code(0);
    Cmd::tool("health-wait")
        .args(["--url", &v2, "--status", "200", "--timeout", "10s"])
        .args([
            "-H",
            &basic_auth(var(&env, "SHIPKIT_REGISTRY_USER"), password.trim()),
        ])
        .run()
        .assert_code(0);
}

#[test]
fn moto_answers_for_sts_and_ecr() {
    let env = env();
    for key in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ECR"] {
        let url = format!("{}/moto-api/", var(&env, key));
        Cmd::tool("health-wait")
            .args(["--url", &url, "--timeout", "10s"])
            .run()
            .assert_code(0);
    }
    assert_eq!(var(&env, "AWS_REGION"), "us-east-1");
}

/// `AWS_ENDPOINT_URL_EKS` is the kube emulator's EKS API (moto's cannot hand out a usable
/// CA): the real AWS CLI describes each cluster as ACTIVE, at the server the kubeconfig names.
#[test]
fn the_eks_api_describes_the_kube_emulators_clusters_to_the_aws_cli() {
    let env = env();
    for (cluster, url_key) in [
        ("staging", "SHIPKIT_KUBE_STAGING_URL"),
        ("production", "SHIPKIT_KUBE_PRODUCTION_URL"),
    ] {
        let out = std::process::Command::new(var(&env, "AWS_CLI"))
            .args([
                "eks",
                "describe-cluster",
                "--name",
                cluster,
                "--output",
                "json",
            ])
            .envs(env.iter().filter(|(key, _)| key.as_str() != "PATH"))
            .output()
            .expect("run the AWS CLI");
        assert!(
            out.status.success(),
            "aws eks describe-cluster --name {cluster}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let described: Value = serde_json::from_slice(&out.stdout).expect("JSON from the AWS CLI");
        assert_eq!(described["cluster"]["status"], "ACTIVE", "{described}");
        assert_eq!(
            described["cluster"]["endpoint"],
            var(&env, url_key),
            "{described}"
        );
    }
}
