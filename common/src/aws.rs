//! Loading the AWS configuration the ordinary way, and saying what went wrong on one line.
//!
//! [`load`] goes through `aws_config::defaults(BehaviorVersion::latest())`, so everything the
//! AWS CLI honours applies as usual: `AWS_PROFILE`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! the shared config and credentials files, `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` (how the local services stand in for ECR, STS and ECS), web
//! identity, container and instance credentials. SSO profiles are not compiled in.
//!
//! SDK errors are nested (`SdkError` → operation error → service error → I/O error); their
//! `Debug` spans dozens of lines. [`error_line`] renders the whole cause chain on one line,
//! as `aws_smithy_types::error::display::DisplayErrorContext` does.

use crate::error::{Error, Result};
pub use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};

/// Loads the SDK configuration from the environment, profile and instance metadata, and
/// checks that a region is configured: without one no AWS endpoint can be chosen, which is
/// a usage error (exit 2) found before any request is sent.
pub async fn load() -> Result<SdkConfig> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    require_region(&config)?;
    Ok(config)
}

/// Loads the SDK configuration as [`load`] does, for `region` whatever the configuration
/// says (an ECR registry host names its region).
pub async fn load_for_region(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .load()
        .await
}

/// The configured region, or a usage error saying how to set one.
pub fn require_region(config: &SdkConfig) -> Result<Region> {
    config.region().cloned().ok_or_else(|| {
        Error::usage(
            "no AWS region configured: set AWS_REGION, or a region in the profile chosen by \
             AWS_PROFILE (~/.aws/config)",
        )
    })
}

/// The error and its sources on one line (`a: b: c`), each cause once, without line breaks.
/// For an SDK error this reads like `service error: RepositoryNotFoundException: The
/// repository with name 'api' does not exist…` or `dispatch failure: io error: … Connection
/// refused`.
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Many errors repeat their source in their own message; keep each piece once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let line = parts.join(": ");
    if line.contains("no providers in chain provided credentials") {
        // The SDK's words name its internals, not what to do.
        return NO_CREDENTIALS.to_owned();
    }
    line
}

/// What [`error_line`] says when no credential source gave any credentials.
pub const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE, or \
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, \
aws-actions/configure-aws-credentials with an OIDC role";

/// A job failure (exit 1) saying what was being done and why the SDK call failed, on one line.
pub fn failed(doing: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    Error::failed(format!("{doing}: {}", error_line(err)))
}

/// Retries an HTTP 429 (Too Many Requests) as throttling, whatever its body. The SDK retries
/// throttling only when the body names a throttling error code, as AWS's own answers do; a
/// proxy, gateway or endpoint in front of the API may answer 429 in plain text, which the SDK
/// would report at once as an unreadable error. Each client gets it:
/// `Builder::from(&config).retry_classifier(TooManyRequests)`.
#[derive(Debug, Clone, Copy)]
pub struct TooManyRequests;

impl ClassifyRetry for TooManyRequests {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        ctx.response()
            .map_or(RetryAction::NoActionIndicated, |response| {
                retry_for_status(response.status().as_u16())
            })
    }

    fn name(&self) -> &'static str {
        "HTTP 429 Too Many Requests"
    }
}

/// What [`TooManyRequests`] says of an answer's status (pure).
fn retry_for_status(status: u16) -> RetryAction {
    match status {
        429 => RetryAction::throttling_error(),
        _ => RetryAction::NoActionIndicated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_is_retried_as_throttling_and_other_answers_are_left_to_the_sdk() {
        assert_eq!(retry_for_status(429), RetryAction::throttling_error());
        for status in [200, 400, 404, 500, 503] {
            assert_eq!(
                retry_for_status(status),
                RetryAction::NoActionIndicated,
                "{status}"
            );
        }
    }

    use std::fmt;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_cause_chain_is_one_line_without_repeats() {
        let err = Layer(
            "service error",
            Some(Box::new(Layer(
                "RepositoryNotFoundException: no\nrepository api",
                Some(Box::new(Layer("no repository api", None))),
            ))),
        );
        assert_eq!(
            error_line(&err),
            "service error: RepositoryNotFoundException: no repository api"
        );
    }

    #[test]
    fn no_credentials_says_where_they_come_from() {
        let err = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "other: the credential provider was not enabled",
                Some(Box::new(Layer(
                    "no providers in chain provided credentials",
                    None,
                ))),
            ))),
        );
        assert_eq!(error_line(&err), NO_CREDENTIALS);
        assert!(NO_CREDENTIALS.contains("AWS_PROFILE"));
    }

    #[test]
    fn a_missing_region_is_a_usage_error() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let err = require_region(&config).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
    }
}
