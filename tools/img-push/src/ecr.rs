//! The ECR API, for what the registry API cannot do: a login token
//! (GetAuthorizationToken), whether a repository exists and whether its tags are immutable
//! (DescribeRepositories), creating one (CreateRepository); and STS GetCallerIdentity for
//! the account behind `--ecr`.
//!
//! Images and manifests are *not* read or written through this API (no DescribeImages,
//! BatchGetImage or PutImage): the registry HTTP API does that on ECR as on any registry —
//! ECR's registry endpoint authorises a manifest GET with the same IAM action as
//! BatchGetImage and a manifest PUT with PutImage, so the permissions needed are the same.
//! It also keeps one code path for every registry, and works with the local stand-ins,
//! where moto's ECR API does not see what is in the registry.

use crate::error::EcrError;
use common::Ui;
use common::registry_auth::Credentials;

type Result<T, E = EcrError> = std::result::Result<T, E>;

/// An ECR client for one registry (account and region).
pub struct Ecr {
    client: aws_sdk_ecr::Client,
    account: String,
}

/// What DescribeRepositories says of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryInfo {
    /// `imageTagMutability` is IMMUTABLE (with or without exclusions).
    pub immutable: bool,
}

/// The account of the caller (STS GetCallerIdentity).
pub async fn caller_account(config: &common::aws::SdkConfig) -> Result<String> {
    let conf = aws_sdk_sts::config::Builder::from(config)
        .retry_classifier(common::aws::TooManyRequests)
        .build();
    let identity = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| EcrError::call("STS GetCallerIdentity (the account for --ecr)", &err))?;
    identity
        .account()
        .map(str::to_owned)
        .ok_or(EcrError::NoAccount)
}

impl Ecr {
    /// A client for the registry of `account` in `region`.
    pub fn new(config: &common::aws::SdkConfig, account: &str, region: &str) -> Ecr {
        let conf = aws_sdk_ecr::config::Builder::from(config)
            .region(common::aws::Region::new(region.to_owned()))
            .retry_classifier(common::aws::TooManyRequests)
            .build();
        Ecr {
            client: aws_sdk_ecr::Client::from_conf(conf),
            account: account.to_owned(),
        }
    }

    /// A login for the registry: GetAuthorizationToken's `user:password`, masked at once.
    pub async fn login(&self, ui: &Ui) -> Result<Credentials> {
        Ok(common::ecr::login(&self.client, ui).await?)
    }

    /// The repository `name`, or `None` when it does not exist.
    pub async fn repository(&self, name: &str) -> Result<Option<RepositoryInfo>> {
        let result = self
            .client
            .describe_repositories()
            .registry_id(&self.account)
            .repository_names(name)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.repositories().first().map(|repo| RepositoryInfo {
                immutable: repo
                    .image_tag_mutability()
                    .is_some_and(|m| m.as_str().starts_with("IMMUTABLE")),
            })),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(EcrError::call(
                format!("ECR DescribeRepositories {name}"),
                &err,
            )),
        }
    }

    /// Creates the repository `name`; one created meanwhile by someone else is fine.
    pub async fn create(
        &self,
        name: &str,
        scan_on_push: bool,
        immutable: bool,
    ) -> Result<RepositoryInfo> {
        use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
        let result = self
            .client
            .create_repository()
            .registry_id(&self.account)
            .repository_name(name)
            .image_tag_mutability(match immutable {
                true => ImageTagMutability::Immutable,
                false => ImageTagMutability::Mutable,
            })
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(scan_on_push)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(RepositoryInfo { immutable }),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_already_exists_exception()) =>
            {
                Ok(self
                    .repository(name)
                    .await?
                    .unwrap_or(RepositoryInfo { immutable }))
            }
            Err(err) => Err(EcrError::call(format!("ECR CreateRepository {name}"), &err)),
        }
    }
}
