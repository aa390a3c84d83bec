//! moto's ECR API (`AWS_ENDPOINT_URL_ECR` of `target/services.env`) through `aws-sdk-ecr`, the
//! client the tools use: the login token of the local ECR host (GetAuthorizationToken) and
//! repositories. Blocking calls, each on a thread of its own with its own runtime, so a
//! `#[test]` and a `#[tokio::test]` call them alike.
//!
//! ```no_run
//! use shipkit_tests::ecr::{create_ecr_repository, ecr_login, ecr_repository};
//! let login = ecr_login(); // proxy endpoint `https://<ECR host>`, user `AWS`, password
//! create_ecr_repository("team/app");
//! assert_eq!(ecr_repository("team/app").unwrap().tag_mutability, "MUTABLE");
//! # let _ = login;
//! ```

use aws_sdk_ecr::error::ProvideErrorMetadata;
use base64::Engine as _;

use crate::services;

/// The ECR host of the local services when `target/services.env` does not name one.
pub const DEFAULT_ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The ECR host of the local services (`SHIPKIT_ECR_HOST`).
pub fn ecr_host() -> String {
    crate::services_env()
        .and_then(|env| env.get("SHIPKIT_ECR_HOST").cloned())
        .unwrap_or_else(|| DEFAULT_ECR_HOST.to_owned())
}

/// What GetAuthorizationToken gives: where to log in, and as whom.
#[derive(Debug, Clone)]
pub struct EcrLogin {
    /// `https://<ECR host>`.
    pub proxy_endpoint: String,
    /// Always `AWS`.
    pub user: String,
    pub password: String,
}

/// An ECR repository as DescribeRepositories tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRepository {
    pub name: String,
    pub scan_on_push: bool,
    /// `MUTABLE` or `IMMUTABLE`.
    pub tag_mutability: String,
}

/// An `aws-sdk-ecr` client for moto (region us-east-1, moto's test credentials, the SDK's
/// standard retries), as a tool configured by `target/services.env` has.
pub async fn ecr_client() -> aws_sdk_ecr::Client {
    let env = services();
    let endpoint = env
        .get("AWS_ENDPOINT_URL_ECR")
        .expect("AWS_ENDPOINT_URL_ECR is not in target/services.env: moto is not up");
    let config = crate::aws_config_for(endpoint).await;
    aws_sdk_ecr::Client::new(&config)
}

/// GetAuthorizationToken: the token is `base64("AWS:<password>")`.
pub fn ecr_login() -> EcrLogin {
    let answer = blocking(async {
        ecr_client()
            .await
            .get_authorization_token()
            .send()
            .await
            .map_err(|err| describe(&err))
    })
    .unwrap_or_else(|err| panic!("moto's ECR GetAuthorizationToken: {err}"));
    let data = answer
        .authorization_data()
        .first()
        .expect("GetAuthorizationToken answered no authorizationData");
    let token = data
        .authorization_token()
        .expect("GetAuthorizationToken answered no token");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("the ECR token is base64");
    let decoded = String::from_utf8(decoded).expect("the ECR token is text");
    let (user, password) = decoded
        .split_once(':')
        .expect("the ECR token is <user>:<password>");
    EcrLogin {
        proxy_endpoint: data.proxy_endpoint().unwrap_or_default().to_owned(),
        user: user.to_owned(),
        password: password.to_owned(),
    }
}

/// The password of the local ECR host (user `AWS`).
pub fn ecr_password() -> String {
    ecr_login().password
}

/// Creates an ECR repository in moto, as a real push to ECR needs (an existing one is fine).
pub fn create_ecr_repository(name: &str) {
    let created = blocking(async {
        ecr_client()
            .await
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| err.into_service_error())
    });
    match created {
        Ok(()) => {}
        Err(err) if err.is_repository_already_exists_exception() => {}
        Err(err) => panic!("moto's ECR CreateRepository {name}: {}", describe(&err)),
    }
}

/// DescribeRepositories for one repository; `Err` holds the error code
/// (`RepositoryNotFoundException`) or message.
pub fn ecr_repository(name: &str) -> Result<EcrRepository, String> {
    let answer = blocking(async {
        ecr_client()
            .await
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
            .map_err(|err| describe(&err))
    })?;
    let repository = answer
        .repositories()
        .first()
        .ok_or_else(|| format!("DescribeRepositories {name} answered no repository"))?;
    Ok(EcrRepository {
        name: repository.repository_name().unwrap_or_default().to_owned(),
        scan_on_push: repository
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        tag_mutability: repository
            .image_tag_mutability()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
    })
}

/// An SDK error as its code (`RepositoryNotFoundException`), else its message, else debug.
fn describe(err: &impl ProvideErrorMetadata) -> String {
    err.code()
        .or(err.message())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:?}", err.meta()))
}

/// Runs `future` to completion on a thread of its own with a runtime of its own: callers may
/// be inside a tokio runtime already, where blocking on another would panic.
fn blocking<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_is_for_the_ecr_host_and_a_repository_is_created_once() {
        let login = ecr_login();
        assert_eq!(login.proxy_endpoint, format!("https://{}", ecr_host()));
        assert_eq!(login.user, "AWS");
        assert!(!login.password.is_empty());

        let name = crate::unique("shipkit-tests/ecr");
        assert_eq!(
            ecr_repository(&name),
            Err("RepositoryNotFoundException".to_owned())
        );
        create_ecr_repository(&name);
        create_ecr_repository(&name); // already there: fine
        let repository = ecr_repository(&name).expect("created");
        assert_eq!(repository.name, name);
        assert_eq!(repository.tag_mutability, "MUTABLE");
    }

    #[tokio::test]
    async fn it_is_callable_from_inside_a_runtime() {
        assert!(!ecr_password().is_empty());
    }
}
