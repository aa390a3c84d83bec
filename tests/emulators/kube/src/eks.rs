//! The EKS side of the clusters: `DescribeCluster` as aws-sdk-eks calls it, and the bearer
//! tokens `aws eks get-token` makes (`k8s-aws-v1.` + unpadded base64url of a presigned STS
//! `GetCallerIdentity` URL), checked as the EKS authenticator checks them.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The account the emulated clusters belong to (the local ECR host's account).
pub const ACCOUNT: &str = "123456789012";
/// How old a token may be (the EKS authenticator's 15 minutes).
const MAX_AGE: Duration = Duration::from_secs(15 * 60);
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What the clusters need to check EKS tokens: the local STS endpoint's host (tokens
/// presigned for it are accepted besides the real STS hosts), the local credentials (to
/// check signatures), and the tokens already checked (kubectl sends the same one for minutes).
pub struct Authenticator {
    sts_hosts: Vec<String>,
    credentials: Option<(String, String)>,
    checked: std::sync::Mutex<std::collections::HashMap<(String, String), (String, SystemTime)>>,
}

impl Authenticator {
    /// From `AWS_ENDPOINT_URL_STS`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env() -> Self {
        let sts_hosts = std::env::var("AWS_ENDPOINT_URL_STS")
            .ok()
            .and_then(|u| url::Url::parse(&u).ok())
            .map(|u| {
                vec![format!(
                    "{}:{}",
                    u.host_str().unwrap_or(""),
                    u.port_or_known_default().unwrap_or(80)
                )]
            })
            .unwrap_or_default();
        let credentials = match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(id), Ok(secret)) => Some((id, secret)),
            _ => None,
        };
        Authenticator {
            sts_hosts,
            credentials,
            checked: Default::default(),
        }
    }

    /// The caller's ARN when `token` is a valid EKS token for `cluster`; Err says why not.
    pub async fn authenticate(&self, token: &str, cluster: &str) -> Result<String> {
        let key = (token.to_owned(), cluster.to_owned());
        let now = SystemTime::now();
        if let Some((arn, until)) = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && now < *until
        {
            return Ok(arn.clone());
        }
        let secret_of = |id: &str| {
            self.credentials
                .as_ref()
                .filter(|(k, _)| k == id)
                .map(|(_, s)| s.clone())
        };
        let presigned = check_token(token, cluster, &self.sts_hosts, &secret_of, now)?;
        let arn = caller(&presigned).await?;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.retain(|_, (_, until)| now < *until);
        checked.insert(key, (arn.clone(), now + Duration::from_secs(60)));
        Ok(arn)
    }
}

/// `DescribeCluster`'s answer for one cluster.
pub fn describe_cluster(name: &str, endpoint: &str, ca_pem: &str, region: &str) -> Value {
    json!({"cluster": {
        "name": name,
        "arn": format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
        "createdAt": 1_767_225_600.0,
        "version": "1.32",
        "endpoint": endpoint,
        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/eks-cluster"),
        "certificateAuthority": {"data": base64::engine::general_purpose::STANDARD.encode(ca_pem)},
        "status": "ACTIVE",
        "platformVersion": "eks.1",
        "tags": {},
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.96.0.0/12", "ipFamily": "ipv4"},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
    }})
}

/// What a presigned URL says, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub access_key_id: String,
}

/// The query parameters the authenticator lets through (lower-cased).
const ALLOWED: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(data.iter().copied())
        .collect();
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(Sha256::digest(&inner))
        .collect();
    Sha256::digest(&outer).to_vec()
}

fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The SigV4 signature of a presigned GET of `host` `/` with `params` (without the
/// signature) and the signed headers `host` and `x-k8s-aws-id: cluster`.
pub fn signature(
    secret: &str,
    host: &str,
    cluster: &str,
    params: &[(String, String)],
    payload_hash: &str,
) -> String {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut sorted: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    sorted.sort();
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let signed_headers = get("X-Amz-SignedHeaders");
    let headers: String = signed_headers
        .split(';')
        .map(|h| match h {
            "host" => format!("host:{host}\n"),
            "x-k8s-aws-id" => format!("x-k8s-aws-id:{cluster}\n"),
            other => format!("{other}:\n"),
        })
        .collect();
    let canonical = format!(
        "GET\n/\n{}\n{headers}\n{signed_headers}\n{payload_hash}",
        query.join("&")
    );
    let date = get("X-Amz-Date");
    let scope = get("X-Amz-Credential")
        .split_once('/')
        .map(|(_, s)| s)
        .unwrap_or("");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let parts: Vec<&str> = scope.split('/').collect();
    let mut key = format!("AWS4{secret}").into_bytes();
    for p in parts.iter().take(4) {
        key = hmac(&key, p.as_bytes());
    }
    hex(&hmac(&key, to_sign.as_bytes()))
}

/// `YYYYMMDDTHHMMSSZ` → a time.
fn amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 {
        return None;
    }
    crate::time::parse(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    ))
}

/// Checks an EKS token for `cluster` as the authenticator does: the prefix and encoding, an STS
/// `GetCallerIdentity` URL on an allowed host with only the allowed parameters, signed over
/// `x-k8s-aws-id`, not older than 15 minutes, and (the emulator knows the local credentials)
/// a valid SigV4 signature for this cluster's id. Err says why, for the log only.
pub fn check_token(
    token: &str,
    cluster: &str,
    sts_hosts: &[String],
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Result<Presigned> {
    let encoded = token
        .strip_prefix("k8s-aws-v1.")
        .ok_or_else(|| anyhow!("not a k8s-aws-v1 token"))?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .context("the token is not base64url")?;
    let url_text = String::from_utf8(raw).context("the token is not text")?;
    let url = url::Url::parse(&url_text).context("the token is not a URL")?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let real_sts = url.scheme() == "https"
        && (host == "sts.amazonaws.com"
            || host.starts_with("sts.") && host.ends_with(".amazonaws.com"));
    if !real_sts && !sts_hosts.contains(&host) {
        bail!("{host} is not an STS endpoint");
    }
    if url.path() != "/" {
        bail!("unexpected path {}", url.path());
    }
    let params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (k, _) in &params {
        if !ALLOWED.contains(&k.to_ascii_lowercase().as_str()) {
            bail!("query parameter {k} is not allowed");
        }
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if get("Action") != "GetCallerIdentity" {
        bail!("not GetCallerIdentity");
    }
    if !get("X-Amz-SignedHeaders")
        .split(';')
        .any(|h| h == "x-k8s-aws-id")
    {
        bail!("x-k8s-aws-id is not signed");
    }
    let signed_at = amz_date(&get("X-Amz-Date")).ok_or_else(|| anyhow!("bad X-Amz-Date"))?;
    if now.duration_since(signed_at).unwrap_or_default() > MAX_AGE {
        bail!("expired: signed at {}", get("X-Amz-Date"));
    }
    let access_key_id = get("X-Amz-Credential")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let secret =
        secret_of(&access_key_id).ok_or_else(|| anyhow!("unknown access key {access_key_id}"))?;
    let unsigned: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .cloned()
        .collect();
    let given = get("X-Amz-Signature");
    let valid = [EMPTY_SHA256, "UNSIGNED-PAYLOAD"]
        .iter()
        .any(|payload| signature(&secret, &host, cluster, &unsigned, payload) == given);
    if !valid {
        bail!("the signature does not match (another cluster's token, or tampered)");
    }
    Ok(Presigned {
        url: url_text,
        access_key_id,
    })
}

/// Asks the (local, plain-HTTP) STS endpoint who the token's access key is. moto cannot
/// answer the presigned GET itself (it routes an unsigned-header GET of `/` to S3), so the
/// emulator, having checked the signature itself, calls `GetCallerIdentity` for that key.
pub async fn caller(p: &Presigned) -> Result<String> {
    let url = url::Url::parse(&p.url)?;
    if url.scheme() != "http" {
        bail!("only the local STS endpoint can be called");
    }
    let hostport = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port().unwrap_or(80)
    );
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        p.access_key_id,
        body.len()
    );
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&hostport),
    )
    .await??;
    stream.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut resp)).await??;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed STS answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("STS answered {}", head.lines().next().unwrap_or(""));
    }
    // XML (<Arn>...</Arn>) or JSON ("Arn":"...").
    let arn = body
        .split_once("<Arn>")
        .and_then(|(_, r)| r.split_once("</Arn>"))
        .map(|(a, _)| a.to_owned())
        .or_else(|| {
            serde_json::from_str::<Value>(body).ok().and_then(|v| {
                v["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
                    .as_str()
                    .map(str::to_owned)
            })
        })
        .ok_or_else(|| anyhow!("no Arn in the STS answer"))?;
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_for(cluster: &str, date: &str, secret: &str) -> String {
        let mut params = vec![
            ("Action".to_owned(), "GetCallerIdentity".to_owned()),
            ("Version".to_owned(), "2011-06-15".to_owned()),
            ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            (
                "X-Amz-Credential".to_owned(),
                format!("testing/{}/us-east-1/sts/aws4_request", &date[..8]),
            ),
            ("X-Amz-Date".to_owned(), date.to_owned()),
            ("X-Amz-Expires".to_owned(), "60".to_owned()),
            (
                "X-Amz-SignedHeaders".to_owned(),
                "host;x-k8s-aws-id".to_owned(),
            ),
        ];
        let sig = signature(secret, "127.0.0.1:5001", cluster, &params, EMPTY_SHA256);
        params.push(("X-Amz-Signature".to_owned(), sig));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", uri_encode(v)))
            .collect();
        let url = format!("http://127.0.0.1:5001/?{}", query.join("&"));
        format!(
            "k8s-aws-v1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        )
    }

    fn check(token: &str, cluster: &str, now: &str) -> Result<Presigned> {
        let secret = |id: &str| (id == "testing").then(|| "testing".to_owned());
        check_token(
            token,
            cluster,
            &["127.0.0.1:5001".to_owned()],
            &secret,
            crate::time::parse(now).unwrap(),
        )
    }

    #[test]
    fn a_token_for_this_cluster_within_fifteen_minutes_passes() {
        let t = token_for("staging", "20261129T050000Z", "testing");
        assert!(check(&t, "staging", "2026-11-29T05:10:00Z").is_ok());
    }

    #[test]
    fn expired_other_cluster_tampered_and_malformed_tokens_fail() {
        let t = token_for("staging", "20261129T050000Z", "testing");
        assert!(
            check(&t, "staging", "2026-11-29T05:16:00Z")
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        assert!(
            check(&t, "production", "2026-11-29T05:01:00Z")
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let wrong_key = token_for("staging", "20261129T050000Z", "other-secret");
        assert!(check(&wrong_key, "staging", "2026-11-29T05:01:00Z").is_err());
        assert!(check("k8s-aws-v1.!!!", "staging", "2026-11-29T05:01:00Z").is_err());
        assert!(check("Bearer x", "staging", "2026-11-29T05:01:00Z").is_err());
        let url = "http://127.0.0.1:5001/?Action=GetCallerIdentity&X-Amz-Foo=1";
        let extra = format!(
            "k8s-aws-v1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        );
        assert!(
            check(&extra, "staging", "2026-11-29T05:01:00Z")
                .unwrap_err()
                .to_string()
                .contains("not allowed")
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
