//! Registry credentials: from the user (`--username` + `--password-stdin`), from the Docker
//! configuration (`$DOCKER_CONFIG/config.json`: inline `auths`, `credHelpers`, `credsStore`),
//! or from ECR (`crate::ecr`, feature `ecr`); and what an ECR registry host names (account,
//! region). img-push logs in with them to push; img-build to pull `--cache-from` images.
//!
//! Every secret is handed to [`Ui::mask`] the moment it is read, so it is masked under
//! Actions and redacted from every byte this process writes; `Debug` never shows one.

use crate::{Error, Result, Ui};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or token used as one, as ECR's).
    Basic { username: String, password: String },
    /// An identity token (OAuth refresh token) stored by `docker login`.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

impl Credentials {
    /// The user name, for messages (`<token>` for an identity token).
    pub fn username(&self) -> &str {
        match self {
            Credentials::Basic { username, .. } => username,
            Credentials::IdentityToken(_) => "<token>",
        }
    }

    /// Registers the secret with the UI.
    pub fn mask(&self, ui: &Ui) {
        match self {
            Credentials::Basic { username, password } => {
                ui.mask(password);
                // The `user:password` pair as it travels in Basic auth and X-Registry-Auth.
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                ui.mask(&pair);
            }
            Credentials::IdentityToken(token) => ui.mask(token),
        }
    }
}

/// Where the credentials of a registry came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flags,
    Ecr,
    DockerConfig(String),
    Helper(String),
    Anonymous,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flags => f.write_str("--username/--password-stdin"),
            Origin::Ecr => f.write_str("ECR GetAuthorizationToken"),
            Origin::DockerConfig(path) => write!(f, "{path}"),
            Origin::Helper(helper) => write!(f, "docker-credential-{helper}"),
            Origin::Anonymous => f.write_str("no credentials"),
        }
    }
}

/// The user's own credentials: `username` (`--username`) with the password on stdin
/// (`--password-stdin`), masked at once; `None` without a user name.
pub fn from_user(username: Option<&str>, ui: &Ui) -> Result<Option<Credentials>> {
    let Some(username) = username else {
        return Ok(None);
    };
    let credentials = Credentials::Basic {
        username: username.to_owned(),
        password: password_from_stdin(ui)?,
    };
    credentials.mask(ui);
    Ok(Some(credentials))
}

/// Reads the password given on stdin: everything, less one trailing newline.
pub fn password_from_stdin(ui: &Ui) -> Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|err| Error::usage(format!("--password-stdin: cannot read stdin: {err}")))?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_owned();
    ui.mask(&password);
    if password.is_empty() {
        return Err(Error::usage("--password-stdin: stdin was empty"));
    }
    Ok(password)
}

/// The parts of `config.json` that say how to log in.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
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

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthEntry(***)")
    }
}

/// How the Docker configuration says to get credentials for a host.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Stored in `auths`.
    Inline(Credentials),
    /// Ask `docker-credential-<helper>` for `server`.
    Helper { helper: String, server: String },
    /// Nothing configured.
    None,
}

/// The keys under which `docker login` may have stored a host.
fn keys_for(host: &str) -> Vec<String> {
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ];
    }
    vec![
        host.into(),
        format!("https://{host}"),
        format!("http://{host}"),
    ]
}

/// The host part of a config key (`https://host/v1/` → `host`).
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

impl DockerConfig {
    /// Parses `config.json`; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<DockerConfig> {
        serde_json::from_str(text).map_err(|err| {
            Error::usage(format!("{path} is not a valid Docker configuration: {err}"))
        })
    }

    /// How to get credentials for `host` (helper for the host, inline, global store).
    pub fn lookup(&self, host: &str) -> Result<Lookup> {
        let keys = keys_for(host);
        let matches = |key: &str| keys.iter().any(|k| k == key) || key_host(key) == host;
        if let Some((key, helper)) = self.cred_helpers.iter().find(|(k, _)| matches(k)) {
            return Ok(Lookup::Helper {
                helper: helper.clone(),
                server: key.clone(),
            });
        }
        if let Some((key, entry)) = self.auths.iter().find(|(k, e)| {
            matches(k) && (e.auth.is_some() || e.username.is_some() || e.identitytoken.is_some())
        }) {
            if let Some(token) = entry.identitytoken.clone().filter(|t| !t.is_empty()) {
                return Ok(Lookup::Inline(Credentials::IdentityToken(token)));
            }
            let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => decode_auth(auth).ok_or_else(|| {
                    Error::usage(format!(
                        "the Docker configuration's auth for {key} is not base64 of user:password"
                    ))
                })?,
                (_, Some(user), Some(password)) => (user.clone(), password.clone()),
                _ => return Ok(Lookup::None),
            };
            return Ok(Lookup::Inline(Credentials::Basic { username, password }));
        }
        if let Some(helper) = self.creds_store.clone().filter(|h| !h.is_empty()) {
            let server = match keys.first() {
                Some(key) if key.starts_with("https://index.docker.io") => key.clone(),
                _ => host.to_owned(),
            };
            return Ok(Lookup::Helper { helper, server });
        }
        Ok(Lookup::None)
    }
}

/// Decodes an `auth` field: base64 of `user:password`.
pub fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Where the Docker configuration lives: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
        }
    }
}

/// Credentials for `host` from the Docker configuration, if it has any.
pub fn from_docker_config(host: &str, ui: &Ui) -> Result<Option<(Credentials, Origin)>> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::usage(format!("cannot read {shown}: {err}"))),
    };
    let config = DockerConfig::parse(&text, &shown)?;
    match config.lookup(host)? {
        Lookup::Inline(credentials) => {
            credentials.mask(ui);
            Ok(Some((credentials, Origin::DockerConfig(shown))))
        }
        Lookup::Helper { helper, server } => {
            let credentials = run_helper(&helper, &server, ui)?;
            Ok(credentials.map(|c| (c, Origin::Helper(helper))))
        }
        Lookup::None => Ok(None),
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with `server` on stdin. "Not found" is no
/// credentials; a missing or failing helper is a job failure naming it (never its output,
/// which may hold a secret).
pub fn run_helper(helper: &str, server: &str, ui: &Ui) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| HelperError::CannotRun {
            program: program.clone(),
            why: err.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // The helper reads the server name; a helper that exits early must not hang us.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child.wait_with_output().map_err(|err| HelperError::Wait {
        program: program.clone(),
        why: err.to_string(),
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(HelperError::Failed {
            program,
            server: server.to_owned(),
            status: output.status,
        }
        .into());
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|_| HelperError::NotJson {
        program,
        server: server.to_owned(),
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let credentials = match answer.username.as_str() {
        "<token>" => Credentials::IdentityToken(answer.secret),
        _ => Credentials::Basic {
            username: answer.username,
            password: answer.secret,
        },
    };
    credentials.mask(ui);
    Ok(Some(credentials))
}

/// A Docker credential helper (`docker-credential-<name>`) could not be run or failed. Its
/// output is never shown: it may hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The program is missing or cannot be started.
    #[error(
        "the Docker configuration names the credential helper {program}, which cannot be run: \
         {why}"
    )]
    CannotRun { program: String, why: String },
    /// Waiting for it failed.
    #[error("{program} get: {why}")]
    Wait { program: String, why: String },
    /// It exited with a failure (other than "credentials not found").
    #[error("{program} get {server} failed ({status})")]
    Failed {
        program: String,
        server: String,
        status: std::process::ExitStatus,
    },
    /// It answered something other than its JSON.
    #[error("{program} get {server} did not answer JSON")]
    NotJson { program: String, server: String },
}

impl From<HelperError> for Error {
    fn from(err: HelperError) -> Error {
        Error::Failed(err.into())
    }
}

/// An ECR registry host: its account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

/// `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` → account and region.
pub fn ecr_host(host: &str) -> Option<EcrHost> {
    let host = host.split(':').next().unwrap_or(host);
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once('.')?;
    let region = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (valid_account && valid_region).then(|| EcrHost {
        account: account.to_owned(),
        region: region.to_owned(),
    })
}

/// The ECR registry host of `account` in `region`.
pub fn ecr_host_name(account: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_are_recognised() {
        assert_eq!(
            ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(EcrHost {
                account: "123456789012".into(),
                region: "eu-west-1".into()
            })
        );
        assert_eq!(
            ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
                .unwrap()
                .region,
            "cn-north-1"
        );
        assert_eq!(ecr_host("localhost:5000"), None);
        assert_eq!(ecr_host("12345.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(
            ecr_host_name("1", "cn-north-1"),
            "1.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
    }

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn inline_auths_are_decoded() {
        let config = DockerConfig::parse(
            r#"{"auths": {"https://reg.example.com/v1/": {"auth": "dTpwOnc="},
                          "localhost:5000": {"username": "a", "password": "b"}}}"#,
            "config.json",
        )
        .unwrap();
        assert_eq!(
            config.lookup("reg.example.com").unwrap(),
            Lookup::Inline(basic("u", "p:w"))
        );
        assert_eq!(
            config.lookup("localhost:5000").unwrap(),
            Lookup::Inline(basic("a", "b"))
        );
        assert_eq!(config.lookup("other.example.com").unwrap(), Lookup::None);
    }

    #[test]
    fn helpers_win_over_inline_and_the_store_comes_last() {
        let config = DockerConfig::parse(
            r#"{"auths": {"a.example.com": {"auth": "dTpw"}, "b.example.com": {}},
                "credHelpers": {"a.example.com": "ecr-login"},
                "credsStore": "pass"}"#,
            "config.json",
        )
        .unwrap();
        assert_eq!(
            config.lookup("a.example.com").unwrap(),
            Lookup::Helper {
                helper: "ecr-login".into(),
                server: "a.example.com".into()
            }
        );
        assert_eq!(
            config.lookup("b.example.com").unwrap(),
            Lookup::Helper {
                helper: "pass".into(),
                server: "b.example.com".into()
            }
        );
        assert_eq!(
            config.lookup("docker.io").unwrap(),
            Lookup::Helper {
                helper: "pass".into(),
                server: "https://index.docker.io/v1/".into()
            }
        );
    }

    #[test]
    fn identity_tokens_and_bad_auth() {
        let config = DockerConfig::parse(
            r#"{"auths": {"t.example.com": {"auth": "", "identitytoken": "tok"},
                          "bad.example.com": {"auth": "!!!"}}}"#,
            "config.json",
        )
        .unwrap();
        assert_eq!(
            config.lookup("t.example.com").unwrap(),
            Lookup::Inline(Credentials::IdentityToken("tok".into()))
        );
        let err = config.lookup("bad.example.com").unwrap_err();
        assert!(!err.to_string().contains("!!!"), "{err}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", basic("u", "hunter22"));
        assert!(!text.contains("hunter22"), "{text}");
        let text = format!("{:?}", Credentials::IdentityToken("hunter22".into()));
        assert!(!text.contains("hunter22"), "{text}");
    }
}
