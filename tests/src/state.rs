//! Snapshots of what a tool could change, for tests that prove it changed nothing: the
//! registry's catalogue, moto's ECR repositories, local images, an ECS emulator's task
//! definitions and services, a Kubernetes emulator's resourceVersions, a repository's tags.
//!
//! ```no_run
//! use shipkit_tests::state::{git_tags, registry_repositories};
//! let before = (registry_repositories("bi-1234"), git_tags(std::path::Path::new(".")));
//! // … run a tool that must refuse its input …
//! assert_eq!(before, (registry_repositories("bi-1234"), git_tags(std::path::Path::new("."))));
//! ```
//!
//! The shared services are used by every test at once, so their snapshots are restricted to
//! names under a prefix of the test's own ([`crate::unique`]); the emulators and repositories
//! are a test's own and snapshotted whole.

use crate::kube::KubeEmulator;
use crate::services;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

/// The repositories of the local registry (`SHIPKIT_REGISTRY`, basic auth with
/// `SHIPKIT_REGISTRY_USER` and the password in `SHIPKIT_REGISTRY_PASSWORD_FILE`) whose names
/// contain `prefix`, with their tags.
pub fn registry_repositories(prefix: &str) -> BTreeMap<String, Vec<String>> {
    // The catalogue comes in pages of at most 1000 names, each after the last name seen.
    let mut all: Vec<String> = Vec::new();
    loop {
        let path = match all.last() {
            Some(last) => format!("/v2/_catalog?n=1000&last={last}"),
            None => "/v2/_catalog?n=1000".to_owned(),
        };
        let page: Vec<String> = registry_get(&path)["repositories"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let full = page.len() == 1000;
        all.extend(page);
        if !full {
            break;
        }
    }
    let names: Vec<String> = all.into_iter().filter(|n| n.contains(prefix)).collect();
    names
        .into_iter()
        .map(|name| {
            let tags = registry_get(&format!("/v2/{name}/tags/list"));
            let mut tags: Vec<String> = tags["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            (name, tags)
        })
        .collect()
}

/// A GET of the local registry's API, decoded as JSON (plain HTTP on loopback).
fn registry_get(path: &str) -> serde_json::Value {
    let settings = services();
    let host = &settings["SHIPKIT_REGISTRY"];
    let user = &settings["SHIPKIT_REGISTRY_USER"];
    let password = std::fs::read_to_string(&settings["SHIPKIT_REGISTRY_PASSWORD_FILE"])
        .expect("the registry password file of services.env");
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.trim()));
    let mut stream =
        TcpStream::connect(host.replace("localhost", "127.0.0.1")).expect("the local registry");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .expect("a request to the registry");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the registry's answer");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "registry GET {path}: {head}"
    );
    let body = match head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        true => dechunk(body),
        false => body.to_owned(),
    };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("registry GET {path}: {e}: {body}"))
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The ECR repositories moto holds whose names contain `prefix`.
pub fn ecr_repositories(prefix: &str) -> Vec<String> {
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let client = crate::ecr::ecr_client().await;
            let mut names = Vec::new();
            let mut pages = client.describe_repositories().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.expect("moto's DescribeRepositories");
                names.extend(
                    page.repositories()
                        .iter()
                        .filter_map(|r| r.repository_name())
                        .filter(|n| n.contains(&prefix))
                        .map(str::to_owned),
                );
            }
            names.sort();
            names
        })
    })
    .join()
    .expect("the ECR snapshot thread")
}

/// The local images (`docker images`) whose references contain `prefix`, with their ids.
pub fn local_images(prefix: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .output()
        .expect("docker images");
    assert!(out.status.success(), "docker images failed");
    let mut images: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(prefix))
        .map(str::to_owned)
        .collect();
    images.sort();
    images
}

/// What an ECS emulator holds in `clusters`: every task definition ARN (active or not) and
/// each service's task definition, desired count and deployments.
pub fn ecs_state(endpoint: &str, clusters: &[&str]) -> Vec<String> {
    let endpoint = endpoint.to_owned();
    let clusters: Vec<String> = clusters.iter().map(|c| (*c).to_owned()).collect();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(ecs_snapshot(&endpoint, &clusters))
    })
    .join()
    .expect("the ECS snapshot thread")
}

async fn ecs_snapshot(endpoint: &str, clusters: &[String]) -> Vec<String> {
    let client = crate::ecs::ecs_client(endpoint).await;
    let mut state = Vec::new();
    for status in [
        aws_sdk_ecs::types::TaskDefinitionStatus::Active,
        aws_sdk_ecs::types::TaskDefinitionStatus::Inactive,
    ] {
        let listed = client
            .list_task_definitions()
            .status(status)
            .send()
            .await
            .expect("ListTaskDefinitions");
        state.extend(listed.task_definition_arns().iter().cloned());
    }
    for cluster in clusters {
        let services = client
            .list_services()
            .cluster(cluster)
            .send()
            .await
            .expect("ListServices");
        if services.service_arns().is_empty() {
            continue;
        }
        let described = client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.service_arns().to_vec()))
            .send()
            .await
            .expect("DescribeServices");
        for service in described.services() {
            let deployments: Vec<String> = service
                .deployments()
                .iter()
                .map(|d| format!("{:?}:{:?}", d.id(), d.task_definition()))
                .collect();
            state.push(format!(
                "{cluster}/{}: {:?} desired {} deployments {deployments:?}",
                service.service_name().unwrap_or_default(),
                service.task_definition(),
                service.desired_count()
            ));
        }
    }
    state.sort();
    state
}

/// Every object's resourceVersion in `context` of a Kubernetes emulator (ConfigMaps,
/// Deployments, Services, Secrets, Namespaces, …: what `kubectl get` lists with `all` and the
/// kinds the bad-input corpus names), plus the list's own resourceVersion, which any write
/// anywhere in the cluster moves.
pub fn kube_resource_versions(emulator: &KubeEmulator, context: &str) -> Vec<String> {
    let out = emulator.kubectl(&[
        "--context",
        context,
        "get",
        "namespaces,configmaps,secrets,services,deployments,statefulsets,daemonsets,jobs",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
    ]);
    let mut versions: Vec<String> = out.lines().map(str::to_owned).collect();
    versions.sort();
    let writes = emulator.writes();
    versions.push(format!("writes received: {}", writes.len()));
    versions
}

/// The tags of the repository at `dir` with the objects they name (`git for-each-ref`).
pub fn git_tags(dir: &Path) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/tags",
        ])
        .output()
        .expect("git for-each-ref");
    assert!(
        out.status.success(),
        "git for-each-ref in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
