//! `imagePullSecrets`: the credentials a pod's pull Secrets hold for one registry host, as the
//! kubelet's keyring reads them — `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, an
//! `auths` map) and the older `kubernetes.io/dockercfg` (`.dockercfg`, the map itself); each
//! entry by `username`/`password` or `auth` (base64 `user:password`), its key a host, a
//! `host/path` or a URL. Pure: the Secrets come from the caller.

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde_json::Value;

/// Docker Hub's names: a reference without a host, and the keys a config may use for it.
const DOCKER_HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The first of `secrets` (in the pod's order) with an entry for `host`, as credentials for
/// the Engine's pull; None when none has one.
pub fn credentials_for(host: &str, secrets: &[Value]) -> Option<DockerCredentials> {
    secrets.iter().find_map(|s| {
        entries(s)?
            .iter()
            .find(|(key, _)| same_registry(&key_host(key), host))
            .and_then(|(_, entry)| credentials(entry, host))
    })
}

/// The Secret's registry entries, by its type.
fn entries(secret: &Value) -> Option<serde_json::Map<String, Value>> {
    let (field, in_auths) = match secret["type"].as_str()? {
        "kubernetes.io/dockerconfigjson" => (".dockerconfigjson", true),
        "kubernetes.io/dockercfg" => (".dockercfg", false),
        _ => return None,
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][field].as_str()?)
        .ok()?;
    let config: Value = serde_json::from_slice(&raw).ok()?;
    let map = if in_auths { &config["auths"] } else { &config };
    map.as_object().cloned()
}

/// The host of a config key: `https://host/v1/` → `host`, `host/path` → `host`.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

fn same_registry(a: &str, b: &str) -> bool {
    a == b || DOCKER_HUB.contains(&a) && DOCKER_HUB.contains(&b)
}

/// One entry's user and password (`username`/`password`, else `auth`).
fn credentials(entry: &Value, host: &str) -> Option<DockerCredentials> {
    let (username, password) = match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(u), Some(p)) => (u.to_owned(), p.to_owned()),
        _ => {
            let auth = base64::engine::general_purpose::STANDARD
                .decode(entry["auth"].as_str()?)
                .ok()?;
            let auth = String::from_utf8(auth).ok()?;
            let (u, p) = auth.split_once(':')?;
            (u.to_owned(), p.to_owned())
        }
    };
    Some(DockerCredentials {
        username: Some(username),
        password: Some(password),
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn config_json(config: Value) -> Value {
        json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(&config.to_string())}})
    }

    fn user_and_password(c: Option<DockerCredentials>) -> Option<(String, String)> {
        c.map(|c| {
            (
                c.username.unwrap_or_default(),
                c.password.unwrap_or_default(),
            )
        })
    }

    #[test]
    fn the_entry_for_the_host_is_used_by_username_and_password_or_auth() {
        let secrets = [
            json!({"type": "Opaque", "data": {}}),
            config_json(json!({"auths": {"other:5000": {"username": "o", "password": "x"}}})),
            config_json(json!({"auths": {
                "https://localhost:5000/v1/": {"auth": b64("shipkit:pw:with:colons")},
                "registry.example.com": {"username": "u", "password": "p", "auth": b64("ignored:x")},
            }})),
        ];
        assert_eq!(
            user_and_password(credentials_for("localhost:5000", &secrets)),
            Some(("shipkit".into(), "pw:with:colons".into()))
        );
        assert_eq!(
            user_and_password(credentials_for("registry.example.com", &secrets)),
            Some(("u".into(), "p".into()))
        );
        assert!(credentials_for("elsewhere.example.com", &secrets).is_none());
        assert_eq!(
            credentials_for("localhost:5000", &secrets)
                .unwrap()
                .serveraddress
                .as_deref(),
            Some("localhost:5000")
        );
    }

    #[test]
    fn the_old_dockercfg_format_and_docker_hub_aliases_are_read() {
        let old = json!({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64(&json!({"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}).to_string())}});
        assert_eq!(
            user_and_password(credentials_for("docker.io", &[old])),
            Some(("hub".into(), "pw".into()))
        );
    }

    #[test]
    fn malformed_secrets_hold_no_credentials() {
        let bad = [
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "not base64!"}}),
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{not json")}}),
            config_json(json!({"auths": {"localhost:5000": {"auth": b64("no-colon")}}})),
        ];
        assert!(credentials_for("localhost:5000", &bad).is_none());
    }
}
