//! The Docker Registry HTTP API V2, for what needs no daemon: is a tag there and at which
//! digest, read a manifest, write a manifest under another tag (promotion).
//!
//! Auth follows the registry's `WWW-Authenticate` challenge: `Basic` (the CNCF registry with
//! htpasswd, ECR) or `Bearer` (a token from the realm, as Docker Hub, GHCR and Harbor do).
//! Loopback registries may speak plain HTTP, as Docker allows (one that answers a plain
//! `GET /v2/` as a registry is used so; otherwise HTTPS); every other host is HTTPS,
//! verified against the system trust store. Network errors, 5xx, 408 and 429 are retried
//! with backoff (see [`Retry`]); any other answer is final.

type Result<T, E = RegistryError> = std::result::Result<T, E>;

use crate::challenge::{Challenge, parse_challenge};
use crate::error::RegistryError;
use crate::manifest::{MANIFEST_TYPES, Manifest, sha256_digest};
use crate::plan::{self, Remote};
use crate::reference::is_loopback;
use crate::retry::Retry;
use base64::Engine as _;
use common::Ui;
use common::registry_auth::Credentials;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// One registry host, with its scheme, credentials and tokens.
pub struct Registry {
    host: String,
    base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
    retry: Retry,
    ui: Ui,
}

/// The result of one attempt: an answer, or a reason to try again.
enum Attempt {
    Answer(reqwest::Response),
    Transient(String),
}

impl Registry {
    /// Finds the registry's scheme (a loopback host that does not speak TLS is reached over
    /// plain HTTP) and checks the credentials against `GET /v2/`: refused credentials are a
    /// job failure here, before anything is pushed. `https` is a client from
    /// [`https_client`] made ahead of time, if any (else one is made here when needed).
    pub async fn connect(
        host: &str,
        credentials: Option<Credentials>,
        https: Option<reqwest::Client>,
        retry: Retry,
        ui: &Ui,
    ) -> Result<Registry> {
        // A loopback registry is asked in plain HTTP first, with a client that loads no
        // trust store (loading it is most of a short run's time): if it answers as a
        // registry, that is the scheme. Only the ping goes there; no credentials are sent.
        let (mut plain, mut ping) = (None, None);
        if is_loopback(host) {
            let client = http_client(false)?;
            let probe = client
                .get(format!("http://{host}/v2/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match probe {
                Ok(response)
                    if response
                        .headers()
                        .contains_key("docker-distribution-api-version") =>
                {
                    plain = Some(client);
                    ping = Some(response);
                }
                Ok(response) => tracing::debug!(
                    "{host}: plain HTTP answered {}, using HTTPS",
                    response.status()
                ),
                Err(err) => {
                    tracing::debug!("{host}: no plain HTTP ({}), using HTTPS", error_chain(&err))
                }
            }
        }
        let (base, http) = match plain {
            Some(client) => (format!("http://{host}"), client),
            None => match https {
                Some(client) => (format!("https://{host}"), client),
                None => (format!("https://{host}"), http_client(true)?),
            },
        };
        let registry = Registry {
            host: host.to_owned(),
            base,
            http,
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            retry,
            ui: ui.clone(),
        };
        let ping = match ping {
            Some(response) => response,
            None => registry.ping().await?,
        };
        registry.learn_challenge(ping).await?;
        Ok(registry)
    }

    /// The host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The credentials this client logs in with (the Engine pushes with the same).
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `GET /v2/` without credentials, retrying transient failures: the registry's
    /// challenge, if it wants one.
    async fn ping(&self) -> Result<reqwest::Response> {
        let url = format!("{}/v2/", self.base);
        let mut attempt = 0;
        loop {
            let why = match self.http.get(&url).send().await {
                Ok(response) if !plan::is_transient_status(response.status().as_u16()) => {
                    return Ok(response);
                }
                Ok(response) => format!("{}", response.status()),
                Err(err) => error_chain(&err),
            };
            if attempt >= self.retry.retries {
                return Err(RegistryError::GaveUp {
                    what: format!("GET {url}"),
                    why,
                    attempts: attempt + 1,
                });
            }
            attempt += 1;
            self.retry.wait(attempt, &format!("GET {url}"), &why).await;
        }
    }

    /// Learns from the ping how to authenticate. Credentials are sent from the first
    /// repository request on (a refusal there names the user); a registry that wants
    /// credentials when there are none is a job failure here, before anything is pushed.
    async fn learn_challenge(&self, ping: reqwest::Response) -> Result<()> {
        match ping.status() {
            status if status.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                let challenge = header(ping.headers(), WWW_AUTHENTICATE.as_str())
                    .and_then(|h| parse_challenge(&h));
                if self.credentials.is_none() || challenge.is_none() {
                    return Err(self.refusal(StatusCode::UNAUTHORIZED, ""));
                }
                *self.challenge.lock().expect("lock") = challenge;
                Ok(())
            }
            StatusCode::NOT_FOUND => Err(RegistryError::NotARegistry(self.host.clone())),
            status => Err(self.refusal(status, &registry_error(ping).await)),
        }
    }

    /// The registry's word on a tag: absent, or its digest (with the config digest when
    /// `with_config`, for comparing with a local image pushed from elsewhere).
    pub async fn remote_tag(&self, path: &str, tag: &str, with_config: bool) -> Result<Remote> {
        if !with_config {
            return Ok(match self.head_manifest(path, tag).await? {
                Some(digest) => Remote::At {
                    digest,
                    config: None,
                },
                None => Remote::Absent,
            });
        }
        Ok(match self.get_manifest(path, tag).await? {
            Some(manifest) => Remote::At {
                config: manifest.config_digest(),
                digest: manifest.digest,
            },
            None => Remote::Absent,
        })
    }

    /// `HEAD /v2/<path>/manifests/<reference>`: the digest, or `None` when there is none.
    pub async fn head_manifest(&self, path: &str, reference: &str) -> Result<Option<String>> {
        let url = format!("{}/v2/{path}/manifests/{reference}", self.base);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, MANIFEST_TYPES.parse().expect("static header"));
        let response = self
            .send(Method::HEAD, &url, Some(&pull_scope(path)), headers, None)
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                match header(response.headers(), "docker-content-digest") {
                    Some(digest) => Ok(Some(digest)),
                    // A registry that does not say the digest: read the manifest and hash it.
                    None => Ok(self.get_manifest(path, reference).await?.map(|m| m.digest)),
                }
            }
            status => Err(self.refusal(status, &format!("HEAD {path}:{reference}"))),
        }
    }

    /// `GET /v2/<path>/manifests/<reference>`: the manifest as stored, or `None`.
    pub async fn get_manifest(&self, path: &str, reference: &str) -> Result<Option<Manifest>> {
        let url = format!("{}/v2/{path}/manifests/{reference}", self.base);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, MANIFEST_TYPES.parse().expect("static header"));
        let response = self
            .send(Method::GET, &url, Some(&pull_scope(path)), headers, None)
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            status if status.is_success() => {}
            status => {
                let detail = registry_error(response).await;
                return Err(self.refusal(status, &format!("GET {path}:{reference}: {detail}")));
            }
        }
        let header_type = header(response.headers(), CONTENT_TYPE.as_str());
        let bytes = response
            .bytes()
            .await
            .map_err(|err| RegistryError::ReadingManifest {
                location: format!("{}/{path}:{reference}", self.host),
                why: error_chain(&err),
            })?
            .to_vec();
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .or(header_type)
            .unwrap_or_else(|| "application/vnd.docker.distribution.manifest.v2+json".into());
        Ok(Some(Manifest {
            digest: sha256_digest(&bytes),
            media_type,
            bytes,
        }))
    }

    /// `PUT /v2/<path>/manifests/<tag>` with the manifest's exact bytes, so the digest is
    /// unchanged; returns the digest the registry reports.
    pub async fn put_manifest(&self, path: &str, tag: &str, manifest: &Manifest) -> Result<String> {
        let url = format!("{}/v2/{path}/manifests/{tag}", self.base);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            manifest
                .media_type
                .parse()
                .map_err(|_| RegistryError::OddManifestType(manifest.media_type.clone()))?,
        );
        let response = self
            .send(
                Method::PUT,
                &url,
                Some(&push_scope(path)),
                headers,
                Some(manifest.bytes.clone()),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            let detail = registry_error(response).await;
            return Err(self.refusal(status, &format!("PUT {path}:{tag}: {detail}")));
        }
        let digest = header(response.headers(), "docker-content-digest")
            .unwrap_or_else(|| manifest.digest.clone());
        if digest != manifest.digest {
            return Err(RegistryError::StoredAsAnotherDigest {
                location: format!("{}/{path}:{tag}", self.host),
                stored: digest,
                expected: manifest.digest.clone(),
            });
        }
        Ok(digest)
    }

    /// A refusal as a job failure naming the host, with advice for 401/403.
    fn refusal(&self, status: StatusCode, detail: &str) -> RegistryError {
        let host = self.host.clone();
        let who = match &self.credentials {
            Some(credentials) => format!("as {}", credentials.username()),
            None => "without credentials".to_owned(),
        };
        match status {
            StatusCode::UNAUTHORIZED => RegistryError::LoginRefused {
                advice: match &self.credentials {
                    Some(_) => String::new(),
                    None => format!(
                        ": log in with `docker login {host}`, or pass --username and --password-stdin"
                    ),
                },
                host,
                who,
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                host,
                who,
                detail: detail.to_owned(),
            },
            status => RegistryError::Refused {
                host,
                detail: detail.to_owned(),
                status,
            },
        }
    }

    /// Sends a request with auth, answering one 401 challenge and retrying transient failures.
    async fn send(
        &self,
        method: Method,
        url: &str,
        scope: Option<&str>,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response> {
        let what = format!("{method} {url}");
        let mut attempt = 0;
        loop {
            match self.try_send(&method, url, scope, &headers, &body).await? {
                Attempt::Answer(response) => return Ok(response),
                Attempt::Transient(why) if attempt < self.retry.retries => {
                    attempt += 1;
                    self.retry.wait(attempt, &what, &why).await;
                }
                Attempt::Transient(why) => {
                    return Err(RegistryError::GaveUp {
                        what,
                        why,
                        attempts: attempt + 1,
                    });
                }
            }
        }
    }

    async fn try_send(
        &self,
        method: &Method,
        url: &str,
        scope: Option<&str>,
        headers: &HeaderMap,
        body: &Option<Vec<u8>>,
    ) -> Result<Attempt> {
        let mut answered_challenge = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(auth) = self.authorization(scope).await? {
                request = request.header(AUTHORIZATION, auth);
            }
            if let Some(body) = body {
                request = request.body(body.clone());
            }
            tracing::debug!("{method} {url}");
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => return Ok(Attempt::Transient(error_chain(&err))),
            };
            let status = response.status();
            if plan::is_transient_status(status.as_u16()) {
                let detail = registry_error(response).await;
                return Ok(Attempt::Transient(format!("{status}: {detail}")));
            }
            if status == StatusCode::UNAUTHORIZED
                && !answered_challenge
                && self.credentials.is_some()
            {
                let challenge = header(response.headers(), WWW_AUTHENTICATE.as_str())
                    .and_then(|h| parse_challenge(&h));
                let known = self.challenge.lock().expect("lock").clone();
                let Some(challenge) = challenge else {
                    return Ok(Attempt::Answer(response));
                };
                // Basic credentials the registry already refused are wrong: do not loop. A
                // refused token may have expired: it is fetched again, once.
                if known.as_ref() == Some(&challenge) && challenge == Challenge::Basic {
                    return Ok(Attempt::Answer(response));
                }
                let bearer = matches!(challenge, Challenge::Bearer { .. });
                *self.challenge.lock().expect("lock") = Some(challenge);
                if bearer && scope.is_none() {
                    return Ok(Attempt::Answer(response));
                }
                if let Some(scope) = scope {
                    self.tokens.lock().expect("lock").remove(scope);
                }
                answered_challenge = true;
                continue;
            }
            return Ok(Attempt::Answer(response));
        }
    }

    /// The `Authorization` header for a request in `scope`, fetching a token if needed.
    async fn authorization(&self, scope: Option<&str>) -> Result<Option<String>> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        let challenge = self.challenge.lock().expect("lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => match credentials {
                Credentials::Basic { username, password } => Ok(Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                ))),
                Credentials::IdentityToken(_) => {
                    Err(RegistryError::NeedsPassword(self.host.clone()))
                }
            },
            Some(Challenge::Bearer { realm, service }) => {
                let scope = scope.unwrap_or("registry:catalog:*");
                if let Some(token) = self.tokens.lock().expect("lock").get(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self
                    .fetch_token(&realm, service.as_deref(), scope, credentials)
                    .await?;
                self.ui.mask(&token);
                self.tokens
                    .lock()
                    .expect("lock")
                    .insert(scope.to_owned(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Asks the token service (`realm`) for a token for `scope`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: &Credentials,
    ) -> Result<String> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        query.append_pair("scope", scope);
        let request = match credentials {
            Credentials::Basic { username, password } => self
                .http
                .get(format!("{realm}?{}", query.finish()))
                .basic_auth(username, Some(password)),
            Credentials::IdentityToken(token) => {
                query
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("client_id", "shipkit")
                    .append_pair("refresh_token", token);
                self.http
                    .post(realm)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(query.finish())
            }
        };
        let response = request
            .send()
            .await
            .map_err(|err| RegistryError::TokenUnreachable {
                realm: realm.to_owned(),
                host: self.host.clone(),
                why: error_chain(&err),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::TokenRefused {
                realm: realm.to_owned(),
                scope: scope.to_owned(),
                user: credentials.username().to_owned(),
                status,
            });
        }
        let no_token = |what| RegistryError::NoToken {
            realm: realm.to_owned(),
            what,
        };
        let body = response.bytes().await.unwrap_or_default();
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| no_token("something other than a token"))?;
        value["token"]
            .as_str()
            .or(value["access_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| no_token("without a token"))
    }
}

/// The HTTPS client, with the system trust store. Loading the store takes milliseconds of
/// CPU and file reads, so a caller that knows it will need HTTPS may make it on a blocking
/// thread while other startup work runs, and hand it to [`Registry::connect`].
pub fn https_client() -> Result<reqwest::Client> {
    http_client(true)
}

/// The HTTP client: with the system trust store for HTTPS, or without any (plain HTTP).
fn http_client(tls: bool) -> Result<reqwest::Client> {
    let mut builder = common::http::client_builder("img-push", &Default::default())
        .map_err(|err| RegistryError::Client(err.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    if !tls {
        builder = builder.tls_certs_only(Vec::new());
    }
    builder
        .build()
        .map_err(|err| RegistryError::Client(err.to_string()))
}

fn pull_scope(path: &str) -> String {
    format!("repository:{path}:pull")
}

fn push_scope(path: &str) -> String {
    format!("repository:{path}:pull,push")
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The registry's error body (`{"errors":[{"code","message"}]}`) as `CODE: message`, or
/// the start of whatever else it said.
async fn registry_error(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let parsed = serde_json::from_str::<serde_json::Value>(&text).ok();
    let errors: Vec<String> = parsed
        .as_ref()
        .and_then(|v| v["errors"].as_array())
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("ERROR"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.len() {
        0 => "no details".to_owned(),
        n if n > 200 => format!("{}…", line.chars().take(200).collect::<String>()),
        _ => line,
    }
}

/// An error and its sources on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    common::aws::error_line(err)
}
