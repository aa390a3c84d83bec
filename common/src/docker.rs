//! Connecting to the Docker Engine the way the user configured it (`DOCKER_HOST` or the
//! default socket), at an API version both sides speak.

use crate::error::{Error, Result};
use bollard::Docker;
use std::time::Duration;

/// Where the Engine is, as the user configured it.
pub fn engine_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Connects and negotiates the API version: Engine 20.10 (API 1.41) refuses a client that
/// asks for a newer version, and users run anything from 20.10 to the newest Engine.
/// `timeout` bounds each request (long streams such as builds and pushes want a long one).
/// An unreachable Engine is a job failure naming where it was looked for.
pub async fn connect(timeout: Duration) -> Result<Docker> {
    let host = engine_host();
    let unreachable = |err: &dyn std::fmt::Display| {
        Error::failed(format!("cannot reach the Docker Engine at {host}: {err}"))
    };
    let docker = Docker::connect_with_defaults()
        .map_err(|err| unreachable(&err))?
        .with_timeout(Duration::from_secs(30))
        .negotiate_version()
        .await
        .map_err(|err| unreachable(&err))?;
    tracing::debug!(
        "connected to the Docker Engine at {host}, API {}",
        docker.client_version()
    );
    Ok(docker.with_timeout(timeout))
}
