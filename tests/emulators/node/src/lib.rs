//! What the emulators' nodes (the ECS agent's stand-in, the kubelet's) share on the local
//! Docker Engine: how a reference is pulled, the ECR token a node with a role would get, and
//! removing the containers an emulator labelled.

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use common::reference::Reference;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the Engine's pull (`fromImage`, `tag`) takes for `reference`: `repo:tag` →
/// (`repo`, `tag`); `repo@digest` → (`repo@digest`, none); `repo` → (`repo`, `latest`).
pub fn pull_reference(reference: &Reference) -> (String, Option<String>) {
    match &reference.digest {
        Some(digest) => (format!("{}@{digest}", reference.repository()), None),
        None => (
            reference.repository(),
            reference.tag_or_default().map(str::to_owned),
        ),
    }
}

/// Whether `host` is an ECR registry (`<account>.dkr.ecr.<region>.amazonaws.com`).
pub fn is_ecr_host(host: &str) -> bool {
    host.contains(".dkr.ecr.")
}

/// Asks the ECR API (`AWS_ENDPOINT_URL_ECR`, a plain-HTTP local endpoint) for a token, as a
/// node with an instance role does. The local endpoint accepts any signature, so the request
/// carries a fixed one rather than the SDK.
pub async fn ecr_credentials() -> Result<DockerCredentials> {
    // Unset: the ECR API of shipkit's local services (moto on 5001, see scripts/README.md).
    let endpoint = std::env::var("AWS_ENDPOINT_URL_ECR")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| "http://127.0.0.1:5001".to_owned());
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| {
            anyhow!("AWS_ENDPOINT_URL_ECR={endpoint}: only http:// endpoints are supported")
        })?
        .trim_end_matches('/');
    let body = "{}";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken\r\n\
         Content-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(hostport),
    )
    .await??;
    stream.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut resp)).await??;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed answer from {endpoint}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(anyhow!(
            "{endpoint} answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    let v: Value = serde_json::from_str(body.trim()).context("ECR GetAuthorizationToken answer")?;
    let token = v["authorizationData"][0]["authorizationToken"]
        .as_str()
        .ok_or_else(|| anyhow!("no authorizationToken"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .context("authorizationToken is not base64")?;
    let decoded = String::from_utf8(decoded).context("authorizationToken is not text")?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| anyhow!("authorizationToken is not user:password"))?;
    Ok(DockerCredentials {
        username: Some(user.to_owned()),
        password: Some(password.to_owned()),
        ..Default::default()
    })
}

/// Removes a container and its anonymous volumes, running or not; a failure is only logged
/// (it may be gone already).
pub async fn remove_container(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    if let Err(e) = docker.remove_container(id, Some(opts)).await {
        tracing::debug!("removing container {id}: {e}");
    }
}

/// Removes every container labelled with `label=value`, concurrently (at start-up: leftovers
/// of a crashed run on the same address; at shutdown: this instance's). Returns how many.
pub async fn remove_labelled(docker: &Docker, label: &str, value: &str) -> usize {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])]);
    let opts = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = docker.list_containers(Some(opts)).await.unwrap_or_default();
    let n = list.len();
    let removals = list
        .into_iter()
        .filter_map(|c| c.id)
        .map(|id| async move { remove_container(docker, &id).await });
    futures_util::future::join_all(removals).await;
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_and_tag() {
        let pull = |image: &str| pull_reference(&Reference::parse(image).unwrap());
        assert_eq!(
            pull("localhost:5000/a/b:v1"),
            ("localhost:5000/a/b".into(), Some("v1".into()))
        );
        assert_eq!(
            pull("localhost:5000/a"),
            ("localhost:5000/a".into(), Some("latest".into()))
        );
        assert_eq!(
            pull("a.dkr.ecr.x/app:v1"),
            ("a.dkr.ecr.x/app".into(), Some("v1".into()))
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            pull(&format!("r/a@{digest}")),
            (format!("r/a@{digest}"), None)
        );
        assert!(is_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!is_ecr_host("localhost:5000"));
    }
}
