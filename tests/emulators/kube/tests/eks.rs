//! The EKS side, through the real AWS CLI (run with target/services.env sourced: moto's STS,
//! the fake credentials, `AWS_CLI`): DescribeCluster, and tokens from `aws eks get-token`
//! accepted by their cluster only, by kubectl with a static `--token` and through an `exec`
//! kubeconfig, as EKS users run it.

mod support;

use std::process::Command;

use serde_json::Value;
use support::Emulator;

fn aws() -> Command {
    Command::new(
        std::env::var("AWS_CLI")
            .expect("AWS_CLI: source target/services.env (scripts/services up)"),
    )
}

fn aws_json(args: &[&str]) -> Value {
    let out = aws()
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn token(cluster: &str) -> String {
    let v = aws_json(&["eks", "get-token", "--cluster-name", cluster]);
    v["status"]["token"].as_str().unwrap().to_owned()
}

#[test]
fn describe_cluster_gives_the_endpoint_and_the_ca_kubectl_needs() {
    let emu = Emulator::start();
    let endpoint = emu.control_url();
    let v = aws_json(&[
        "eks",
        "describe-cluster",
        "--name",
        "production",
        "--endpoint-url",
        &endpoint,
    ]);
    let c = &v["cluster"];
    assert_eq!(c["status"], "ACTIVE");
    let server = emu.kubectl_with_input(
        &[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[?(@.name==\"production\")].cluster.server}",
        ],
        None,
    );
    assert_eq!(c["endpoint"], server.as_str());
    let ca = emu.kubectl_with_input(
        &[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[?(@.name==\"production\")].cluster.certificate-authority-data}",
        ],
        None,
    );
    assert_eq!(c["certificateAuthority"]["data"], ca.as_str());
    let out = aws()
        .args([
            "eks",
            "describe-cluster",
            "--name",
            "nope",
            "--endpoint-url",
            &endpoint,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"));
}

#[test]
fn an_eks_token_is_accepted_by_its_cluster_only_and_a_tampered_one_is_refused() {
    let emu = Emulator::start();
    let staging = token("staging");
    let ok = emu.kubectl_with_input(
        &[
            "--context",
            "staging",
            "--token",
            &staging,
            "get",
            "namespaces",
            "default",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(ok.trim(), "namespace/default");
    let other = emu.run_kubectl(
        &[
            "--context",
            "production",
            "--token",
            &staging,
            "get",
            "namespaces",
        ],
        None,
    );
    assert!(
        !other.status.success(),
        "a staging token must not open production"
    );
    assert!(String::from_utf8_lossy(&other.stderr).contains("provide credentials"));
    // One character of the signed URL changed.
    let mut tampered = staging.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let out = emu.run_kubectl(
        &[
            "--context",
            "staging",
            "--token",
            &tampered,
            "get",
            "namespaces",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(emu.log().contains("EKS token refused"), "{}", emu.log());
}

#[test]
fn an_exec_kubeconfig_running_aws_eks_get_token_works() {
    let emu = Emulator::start();
    let server = emu.kubectl_with_input(
        &[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[?(@.name==\"staging\")].cluster.server}",
        ],
        None,
    );
    let ca = emu.kubectl_with_input(
        &[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[?(@.name==\"staging\")].cluster.certificate-authority-data}",
        ],
        None,
    );
    let aws_cli = std::env::var("AWS_CLI").unwrap();
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "staging", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "eks", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": aws_cli,
            "args": ["eks", "get-token", "--cluster-name", "staging", "--output", "json"],
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": "staging", "context": {"cluster": "staging", "user": "eks"}}],
        "current-context": "staging",
    });
    let path = emu.dir().join("kubeconfig-eks");
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    let out = emu.kubectl_with_input(
        &[
            "--kubeconfig",
            path.to_str().unwrap(),
            "get",
            "namespaces",
            "kube-system",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(out.trim(), "namespace/kube-system");
}
