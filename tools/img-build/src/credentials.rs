//! Registry credentials for BuildKit's pulls of `--cache-from` images, read from the Docker
//! configuration (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) as `docker
//! login` and `aws ecr get-login-password | docker login` leave them. They go to the Engine
//! over the build's session only when BuildKit asks for a host, and are masked.

use bollard::auth::DockerCredentials;
use common::reference::Reference;
use common::{Error, Result, Ui};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The part of `config.json` that holds logins.
#[derive(Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The registry host of each `--cache-from` reference with the credentials the Docker
/// configuration has for it (hosts without any are left out: public images need none).
pub(crate) fn for_cache_from(
    references: &[String],
    ui: &Ui,
) -> Result<HashMap<String, DockerCredentials>> {
    let mut found = HashMap::new();
    if references.is_empty() {
        return Ok(found);
    }
    let Some(path) = config_path() else {
        return Ok(found);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(err) => {
            return Err(Error::usage(format!(
                "cannot read {}: {err}",
                path.display()
            )));
        }
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|err| {
        Error::usage(format!(
            "{} is not a valid Docker configuration: {err}",
            path.display()
        ))
    })?;
    for reference in references {
        let Ok(parsed) = Reference::parse(reference) else {
            continue;
        };
        let host = session_host(parsed.normalized_domain());
        if let Some(credentials) = config.credentials_for(&host) {
            for secret in [&credentials.password, &credentials.identitytoken]
                .into_iter()
                .flatten()
            {
                ui.mask(secret);
            }
            found.insert(host, credentials);
        }
    }
    Ok(found)
}

/// The host name BuildKit asks the session about (Docker Hub's is its registry's).
fn session_host(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
        other => other.to_owned(),
    }
}

impl DockerConfig {
    fn credentials_for(&self, host: &str) -> Option<DockerCredentials> {
        let key_host = |key: &str| {
            let key = key
                .strip_prefix("https://")
                .or_else(|| key.strip_prefix("http://"))
                .unwrap_or(key);
            key.split('/').next().unwrap_or(key).to_owned()
        };
        let hub = host == "registry-1.docker.io";
        let (_, entry) = self.auths.iter().find(|(key, _)| {
            let key = key_host(key);
            key == host || (hub && matches!(key.as_str(), "index.docker.io" | "docker.io"))
        })?;
        if let Some(token) = entry.identitytoken.clone().filter(|t| !t.is_empty()) {
            return Some(DockerCredentials {
                identitytoken: Some(token),
                serveraddress: Some(host.to_owned()),
                ..Default::default()
            });
        }
        let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => decode_auth(auth)?,
            (_, Some(user), Some(password)) => (user.clone(), password.clone()),
            _ => return None,
        };
        Some(DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        })
    }
}

/// `auth` is base64 of `user:password`.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_found_by_host() {
        let config: DockerConfig = serde_json::from_str(
            r#"{"auths": {
                "localhost:5000": {"auth": "c2hpcGtpdDpzM2NyZXQ="},
                "https://index.docker.io/v1/": {"username": "u", "password": "p"},
                "https://ecr.example.com": {"identitytoken": "tok"}
            }}"#,
        )
        .unwrap();
        let local = config.credentials_for("localhost:5000").unwrap();
        assert_eq!(local.username.as_deref(), Some("shipkit"));
        assert_eq!(local.password.as_deref(), Some("s3cret"));
        let hub = config.credentials_for(&session_host("docker.io")).unwrap();
        assert_eq!(hub.username.as_deref(), Some("u"));
        let ecr = config.credentials_for("ecr.example.com").unwrap();
        assert_eq!(ecr.identitytoken.as_deref(), Some("tok"));
        assert!(config.credentials_for("other:5000").is_none());
    }
}
