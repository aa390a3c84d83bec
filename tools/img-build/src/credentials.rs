//! Registry logins for BuildKit's pulls of `--cache-from` images, found as img-push finds
//! them: an ECR host gets an ECR login token (GetAuthorizationToken, through the ordinary AWS
//! configuration), any other host the Docker configuration's login (`auths`, `credHelpers`,
//! `credsStore`, as `docker login` leaves them). They go to the Engine over the build's
//! session only when BuildKit asks for a host, and are masked the moment they are read.
//!
//! A cache that cannot be pulled never fails a build (BuildKit builds without it, as buildx
//! does), so an ECR login that cannot be had is a warning; a Docker configuration that does
//! not parse is bad input, as it is for img-push.

use bollard::auth::DockerCredentials;
use common::reference::Reference;
use common::registry_auth::{self, Credentials, ecr_host};
use common::{Result, Ui};
use std::collections::{BTreeSet, HashMap};

/// The registry host of each `--cache-from` reference (as BuildKit's session asks for it)
/// with its login; hosts without one are left out (public images need none).
pub(crate) async fn for_cache_from(
    references: &[String],
    ui: &Ui,
) -> Result<HashMap<String, DockerCredentials>> {
    let hosts: BTreeSet<String> = references
        .iter()
        .filter_map(|reference| Reference::parse(reference).ok())
        .map(|parsed| parsed.normalized_domain().to_owned())
        .collect();
    let mut found = HashMap::new();
    for host in hosts {
        if let Some(credentials) = login_for(&host, ui).await? {
            let asked_as = session_host(&host);
            found.insert(asked_as.clone(), for_engine(credentials, &asked_as));
        }
    }
    Ok(found)
}

/// The login for `host`: ECR's token for an ECR host, else the Docker configuration's.
async fn login_for(host: &str, ui: &Ui) -> Result<Option<Credentials>> {
    let Some(ecr) = ecr_host(host) else {
        return Ok(registry_auth::from_docker_config(host, ui)?.map(|(credentials, _)| credentials));
    };
    let client = common::ecr::client_for(&ecr).await;
    match common::ecr::login(&client, ui).await {
        Ok(credentials) => Ok(Some(credentials)),
        Err(err) => {
            tracing::warn!(
                "--cache-from {host}: no ECR login ({err}); pulling the cache anonymously"
            );
            Ok(None)
        }
    }
}

/// The host name BuildKit asks the session about (Docker Hub's is its registry's).
fn session_host(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// The credentials as the Engine's session protocol carries them.
fn for_engine(credentials: Credentials, host: &str) -> DockerCredentials {
    let serveraddress = Some(host.to_owned());
    match credentials {
        Credentials::Basic { username, password } => DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress,
            ..Default::default()
        },
        Credentials::IdentityToken(token) => DockerCredentials {
            identitytoken: Some(token),
            serveraddress,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_is_asked_for_by_its_registry_host() {
        assert_eq!(session_host("docker.io"), "registry-1.docker.io");
        assert_eq!(session_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn an_identity_token_travels_as_one() {
        let engine = for_engine(Credentials::IdentityToken("tok".into()), "r.example.com");
        assert_eq!(engine.identitytoken.as_deref(), Some("tok"));
        assert_eq!(engine.password, None);
        let engine = for_engine(
            Credentials::Basic {
                username: "AWS".into(),
                password: "pw".into(),
            },
            "r.example.com",
        );
        assert_eq!(engine.username.as_deref(), Some("AWS"));
        assert_eq!(engine.serveraddress.as_deref(), Some("r.example.com"));
    }
}
