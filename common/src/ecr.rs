//! An ECR login, as `aws ecr get-login-password` gets it: GetAuthorizationToken's
//! `user:password`, masked the moment it is read. img-push logs in with it to push, img-build
//! to pull `--cache-from` images from ECR on a runner that never ran `docker login`.

use crate::Ui;
use crate::registry_auth::{Credentials, EcrHost, decode_auth};

/// Why there is no login.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The call failed (the SDK's error and its sources on one line).
    #[error("ECR GetAuthorizationToken: {0}")]
    Call(String),
    /// It answered no token.
    #[error("ECR GetAuthorizationToken answered no token")]
    NoToken,
    /// Its token is not base64 `user:password`.
    #[error("ECR GetAuthorizationToken answered a token that is not base64 user:password")]
    BadToken,
}

impl From<LoginError> for crate::Error {
    fn from(err: LoginError) -> crate::Error {
        crate::Error::Failed(err.into())
    }
}

/// The login `client` gets for its registry. The token's `expiresAt` is not checked: it is
/// valid for 12 hours when fresh, and the local stand-in hands out a fixed, long-past date.
pub async fn login(client: &aws_sdk_ecr::Client, ui: &Ui) -> Result<Credentials, LoginError> {
    let output = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|err| LoginError::Call(crate::aws::error_line(&err)))?;
    let data = output
        .authorization_data()
        .first()
        .ok_or(LoginError::NoToken)?;
    let token = data.authorization_token().ok_or(LoginError::NoToken)?;
    ui.mask(token);
    let (username, password) = decode_auth(token).ok_or(LoginError::BadToken)?;
    let credentials = Credentials::Basic { username, password };
    credentials.mask(ui);
    if let Some(endpoint) = data.proxy_endpoint() {
        tracing::debug!("ECR registry endpoint: {endpoint}");
    }
    Ok(credentials)
}

/// An ECR client for the registry at `host`: the AWS configuration as usual, in the host's
/// region whatever the configuration says.
pub async fn client_for(host: &EcrHost) -> aws_sdk_ecr::Client {
    let config = crate::aws::load_for_region(&host.region).await;
    let conf = aws_sdk_ecr::config::Builder::from(&config)
        .retry_classifier(crate::aws::TooManyRequests)
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}
