//! The Docker Engine calls: inspect the local image, tag it for the destination, push it.
//!
//! The Engine does the upload (layers it already sent are "already there", layers in another
//! repository of the same registry are mounted), so a push here is exactly a `docker push`.
//! Its stream tells the manifest digest in the last status line (`TAG: digest: sha256:…`).

use crate::error::EngineError;
use crate::plan::{self, LayerEvent, LayerOutcome};
use crate::reference::Repository;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use common::registry_auth::Credentials;
use futures_util::StreamExt;
use std::time::Duration;

/// The Engine connection.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What the Engine knows of a local image.
#[derive(Debug, Clone, Default)]
pub struct LocalImage {
    /// `sha256:…`.
    pub id: String,
    /// `repository@sha256:…`, one per repository it was pushed to or pulled from.
    pub repo_digests: Vec<String>,
}

impl LocalImage {
    /// The manifest digests this image has in `repository`.
    pub fn digests_in(&self, repository: &Repository) -> Vec<String> {
        let familiar = repository.familiar();
        self.repo_digests
            .iter()
            .filter_map(|rd| rd.split_once('@'))
            .filter(|(repo, _)| *repo == familiar || *repo == repository.to_string())
            .map(|(_, digest)| digest.to_owned())
            .collect()
    }
}

/// A failed push attempt.
#[derive(Debug)]
pub struct PushError {
    pub message: String,
    /// Worth another attempt (network trouble, a registry answering 5xx).
    pub transient: bool,
}

/// Progress of one push, as the stream tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushProgress {
    /// One more layer to push; the total so far.
    Layers(u64),
    /// A layer is in the registry; how many are, and how it got there.
    LayerDone(u64, LayerOutcome),
    /// Bytes of a layer sent so far, and the layer's size (`Pushing` with its
    /// `progressDetail`).
    Bytes { current: u64, total: u64 },
}

impl Engine {
    /// Connects to the Engine the user configured (`DOCKER_HOST`), negotiating the version;
    /// pushes of large images take long, so each request may last an hour.
    pub async fn connect() -> common::Result<Engine> {
        let docker = common::docker::connect(Duration::from_secs(3600)).await?;
        Ok(Engine { docker })
    }

    /// The local image named by `reference` (a tag or an id), or `None`.
    pub async fn inspect(&self, reference: &str) -> Result<Option<LocalImage>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(LocalImage {
                id: image.id.unwrap_or_default(),
                repo_digests: image.repo_digests.unwrap_or_default(),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(EngineError::Inspect {
                reference: reference.to_owned(),
                why: err.to_string(),
            }),
        }
    }

    /// Tags the local image `source` as `repository:tag`.
    pub async fn tag(
        &self,
        source: &str,
        repository: &Repository,
        tag: &str,
    ) -> Result<(), EngineError> {
        let options = TagImageOptions {
            repo: Some(repository.to_string()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(|err| EngineError::Tag {
                image: source.to_owned(),
                target: repository.with_tag(tag),
                why: err.to_string(),
            })
    }

    /// Pushes `repository:tag` once (no retry here) and returns the manifest digest the
    /// stream reported. `progress` hears of each layer.
    pub async fn push(
        &self,
        repository: &Repository,
        tag: &str,
        credentials: Option<&Credentials>,
        mut progress: impl FnMut(PushProgress),
    ) -> Result<String, PushError> {
        let options = PushImageOptions {
            tag: Some(tag.to_owned()),
            platform: None,
        };
        let credentials = credentials.map(|c| docker_credentials(c, &repository.host));
        let mut stream =
            self.docker
                .push_image(&repository.to_string(), Some(options), credentials);
        let (mut layers, mut done) = (0u64, 0u64);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(push_error)?;
            let Some(status) = info.status.as_deref() else {
                continue;
            };
            tracing::trace!("push {}: {status}", repository.with_tag(tag));
            if let Some(found) = plan::digest_in_status(status) {
                digest = Some(found);
                continue;
            }
            match plan::layer_event(status) {
                Some(LayerEvent::Preparing) => {
                    layers += 1;
                    progress(PushProgress::Layers(layers));
                }
                Some(LayerEvent::Done(outcome)) => {
                    done += 1;
                    progress(PushProgress::LayerDone(done, outcome));
                }
                Some(LayerEvent::Pushing) => {
                    let detail = info.progress_detail.as_ref();
                    let number = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
                    if let (Some(current), Some(total)) = (
                        detail.and_then(|d| number(d.current)),
                        detail.and_then(|d| number(d.total)),
                    ) && total > 0
                    {
                        progress(PushProgress::Bytes { current, total });
                    }
                }
                None => {}
            }
        }
        digest.ok_or_else(|| PushError {
            message: "the Engine finished the push without reporting a digest".to_owned(),
            transient: false,
        })
    }
}

/// What a failed push stream means. The Engine's own error (a registry refusing, a network
/// error between the Engine and the registry) is judged by its words; losing the connection to
/// the Engine mid-stream (a remote Engine's network, a proxy, a restarted daemon) is worth
/// another attempt: the push is idempotent and the Engine skips the layers already there.
fn push_error(err: bollard::errors::Error) -> PushError {
    use bollard::errors::Error as E;
    match err {
        E::DockerStreamError { error } => PushError {
            transient: plan::is_transient_message(&error),
            message: error,
        },
        E::DockerResponseServerError {
            status_code,
            message,
        } => PushError {
            transient: plan::is_transient_status(status_code)
                || plan::is_transient_message(&message),
            message: format!("the Engine answered {status_code}: {message}"),
        },
        connection @ (E::HyperResponseError { .. }
        | E::IOError { .. }
        | E::RequestTimeoutError
        | E::HyperLegacyError { .. }) => PushError {
            message: format!("the connection to the Docker Engine broke: {connection}"),
            transient: true,
        },
        other => PushError {
            transient: plan::is_transient_message(&other.to_string()),
            message: other.to_string(),
        },
    }
}

/// The credentials as the Engine takes them for a push to `host`.
fn docker_credentials(credentials: &Credentials, host: &str) -> DockerCredentials {
    match credentials {
        Credentials::Basic { username, password } => DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        },
        Credentials::IdentityToken(token) => DockerCredentials {
            identitytoken: Some(token.clone()),
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        },
    }
}

/// The `X-Registry-Auth` header the push will carry (base64 of the credentials' JSON), so
/// that it can be masked like the password it contains.
pub fn registry_auth_header(credentials: &Credentials, host: &str) -> String {
    use base64::Engine as _;
    let json = serde_json::to_string(&docker_credentials(credentials, host)).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_to_the_engine_is_retried_and_a_refusal_is_not() {
        let broken = push_error(bollard::errors::Error::IOError {
            err: std::io::ErrorKind::UnexpectedEof.into(),
        });
        assert!(broken.transient, "{}", broken.message);
        assert!(
            broken
                .message
                .contains("connection to the Docker Engine broke")
        );
        let refused = push_error(bollard::errors::Error::DockerStreamError {
            error: "denied: requested access to the resource is denied".into(),
        });
        assert!(!refused.transient);
        let busy = push_error(bollard::errors::Error::DockerResponseServerError {
            status_code: 503,
            message: "busy".into(),
        });
        assert!(busy.transient);
    }

    #[test]
    fn repo_digests_are_matched_by_repository() {
        let image = LocalImage {
            id: "sha256:i".into(),
            repo_digests: vec![
                "localhost:5000/api@sha256:a".into(),
                "localhost:5000/team/api@sha256:b".into(),
                "alpine@sha256:c".into(),
            ],
        };
        let repo = |host: &str, path: &str| Repository {
            host: host.into(),
            path: path.into(),
        };
        assert_eq!(
            image.digests_in(&repo("localhost:5000", "api")),
            ["sha256:a"]
        );
        assert_eq!(
            image.digests_in(&repo("docker.io", "library/alpine")),
            ["sha256:c"]
        );
        assert!(image.digests_in(&repo("localhost:5001", "api")).is_empty());
    }
}
