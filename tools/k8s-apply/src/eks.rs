//! `--eks-cluster NAME`: the cluster found through the EKS API instead of a kubeconfig, with
//! the bearer token `aws eks get-token` makes, so no AWS CLI is needed at run time.
//!
//! - [`describe`]: `DescribeCluster` (aws-sdk-eks) for the API endpoint and its CA;
//! - [`token`]: `k8s-aws-v1.` + unpadded base64url of an STS `GetCallerIdentity` URL presigned
//!   with SigV4 (aws-sigv4) for 60 seconds, with the `x-k8s-aws-id: NAME` header signed — what
//!   the EKS authenticator checks. The token is a secret: it is masked before anything could
//!   print it, and it lives only in memory;
//! - [`kubeconfig`]: the three put together as an in-memory kubeconfig for kube-rs.

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningParams, SigningSettings, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use common::aws::SdkConfig;
use std::time::{Duration, SystemTime};

/// What the EKS API and STS said, on one line.
#[derive(Debug, thiserror::Error)]
pub enum EksError {
    /// DescribeCluster failed (no such cluster, no access, no endpoint).
    #[error("DescribeCluster {name}: {message}")]
    Describe { name: String, message: String },
    /// No credentials to sign the token with.
    #[error("no AWS credentials to make the EKS token: {0}")]
    Credentials(String),
    /// The token could not be signed.
    #[error("signing the EKS token: {0}")]
    Signing(String),
}

impl From<EksError> for common::Error {
    fn from(err: EksError) -> Self {
        common::Error::failed(err)
    }
}

/// A token is accepted for 15 minutes after it is made: a new one is made after this.
pub const RENEW_AFTER: Duration = Duration::from_secs(10 * 60);

/// Whether a token made `age` ago is due for renewal.
pub fn renewal_due(age: Duration) -> bool {
    age >= RENEW_AFTER
}

/// How long the presigned URL is valid (the authenticator takes 15 minutes from signing).
const PRESIGNED_FOR: Duration = Duration::from_secs(60);

/// The EKS cluster's API endpoint and CA (base64 of PEM, as DescribeCluster gives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksCluster {
    pub name: String,
    pub endpoint: String,
    pub ca_data: String,
}

/// `DescribeCluster NAME`.
pub async fn describe(config: &SdkConfig, name: &str) -> Result<EksCluster, EksError> {
    let conf = aws_sdk_eks::config::Builder::from(config)
        .retry_classifier(common::aws::TooManyRequests)
        .build();
    let client = aws_sdk_eks::Client::from_conf(conf);
    let fail = |message: String| EksError::Describe {
        name: name.to_owned(),
        message,
    };
    let out = client
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| fail(common::aws::error_line(&e)))?;
    let cluster = out
        .cluster
        .ok_or_else(|| fail("no cluster in the answer".into()))?;
    let endpoint = cluster
        .endpoint
        .ok_or_else(|| fail("the cluster has no endpoint yet".into()))?;
    let ca_data = cluster
        .certificate_authority
        .and_then(|ca| ca.data)
        .ok_or_else(|| fail("the cluster has no certificate authority".into()))?;
    Ok(EksCluster {
        name: name.to_owned(),
        endpoint,
        ca_data,
    })
}

/// The STS endpoint the token is presigned for: `AWS_ENDPOINT_URL_STS` (or
/// `AWS_ENDPOINT_URL`) as the SDKs honour it, else the region's public one.
pub fn sts_endpoint(region: &str, var: impl Fn(&str) -> Option<String>) -> String {
    var("AWS_ENDPOINT_URL_STS")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .filter(|url| !url.is_empty())
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// Makes the token for `cluster` with the credentials of `config`.
pub async fn token_for(config: &SdkConfig, cluster: &str) -> Result<String, EksError> {
    let region =
        common::aws::require_region(config).map_err(|e| EksError::Credentials(e.to_string()))?;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| EksError::Credentials("no credentials provider".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| EksError::Credentials(common::aws::error_line(&e)))?;
    let endpoint = sts_endpoint(region.as_ref(), |name| std::env::var(name).ok());
    token(
        credentials.into(),
        region.as_ref(),
        &endpoint,
        cluster,
        SystemTime::now(),
    )
}

/// The token (pure, given the time): see the module documentation.
pub fn token(
    identity: Identity,
    region: &str,
    sts_endpoint: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, EksError> {
    let url = format!("{sts_endpoint}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGNED_FOR);
    let params: SigningParams = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| EksError::Signing(e.to_string()))?
        .into();
    let headers = [("x-k8s-aws-id", cluster)];
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| EksError::Signing(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| EksError::Signing(e.to_string()))?
        .into_parts();
    let (_, query) = instructions.into_parts();
    let mut presigned = url;
    for (key, value) in query {
        presigned.push('&');
        presigned.push_str(key);
        presigned.push('=');
        presigned.push_str(&percent_encode(&value));
    }
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    ))
}

/// RFC 3986 percent-encoding of a query value (what SigV4 canonicalises to).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// An in-memory kubeconfig for `cluster` with `token` (context named `eks:NAME`).
pub fn kubeconfig(cluster: &EksCluster, token: &str) -> String {
    let quoted = |text: &str| serde_json::Value::String(text.to_owned()).to_string();
    let context = quoted(&format!("eks:{}", cluster.name));
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {context}
  user:
    token: {token}
contexts:
- name: {context}
  context:
    cluster: {name}
    user: {context}
current-context: {context}
",
        name = quoted(&cluster.name),
        server = quoted(&cluster.endpoint),
        ca = quoted(&cluster.ca_data),
        token = quoted(token),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_with_the_cluster_header_signed() {
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", "secret", None, None, "test").into();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let token = token(
            identity.clone(),
            "us-east-1",
            "http://127.0.0.1:5001",
            "staging",
            at,
        )
        .unwrap();
        let encoded = token.strip_prefix("k8s-aws-v1.").expect("the EKS prefix");
        assert!(!encoded.contains('='), "unpadded");
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:5001/?Action=GetCallerIdentity&Version=2011-06-15&"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20270115%2Fus-east-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20270115T080000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains("secret"));
        let other = super::token(
            identity,
            "us-east-1",
            "http://127.0.0.1:5001",
            "production",
            at,
        )
        .unwrap();
        assert_ne!(token, other, "the signature covers the cluster's name");
    }

    #[test]
    fn a_token_is_renewed_well_before_its_15_minutes() {
        assert!(!renewal_due(Duration::from_secs(60)));
        assert!(renewal_due(Duration::from_secs(10 * 60)));
        assert!(RENEW_AFTER < Duration::from_secs(14 * 60));
    }

    #[test]
    fn sts_is_the_configured_endpoint_or_the_regions() {
        assert_eq!(
            sts_endpoint("eu-west-1", |_| None),
            "https://sts.eu-west-1.amazonaws.com"
        );
        let local = |name: &str| {
            (name == "AWS_ENDPOINT_URL_STS").then(|| "http://127.0.0.1:5001/".to_owned())
        };
        assert_eq!(sts_endpoint("eu-west-1", local), "http://127.0.0.1:5001");
    }

    #[test]
    fn the_kubeconfig_reads_back_with_the_cluster_and_token() {
        let cluster = EksCluster {
            name: "staging".into(),
            endpoint: "https://127.0.0.1:6443".into(),
            ca_data: "Q0E=".into(),
        };
        let config =
            kube::config::Kubeconfig::from_yaml(&kubeconfig(&cluster, "k8s-aws-v1.abc")).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("eks:staging"));
        let server = config.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.server.clone());
        assert_eq!(server.as_deref(), Some("https://127.0.0.1:6443"));
        assert!(
            config.auth_infos[0]
                .auth_info
                .as_ref()
                .and_then(|a| a.token.as_ref())
                .is_some()
        );
    }
}
