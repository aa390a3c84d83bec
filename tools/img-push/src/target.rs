//! Connecting to where images go: the registry host (STS for `--ecr`), the repository of
//! each image, the login, and what ECR says of the repositories (creating missing ones).

use crate::config::Config;
use crate::ecr::{Ecr, RepositoryInfo, caller_account};
use crate::error::{EcrError, RegistryError};
use crate::reference::{Destination, Repository, is_loopback};
use crate::registry::{self, Registry};
use common::registry_auth::{self as auth, Credentials, Origin, ecr_host, ecr_host_name};
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

/// The registry host, its client, the repository of each image, and what ECR says of them.
pub struct Target {
    pub host: String,
    pub registry: Registry,
    pub ecr: Option<Ecr>,
    /// The repository of each name given to [`connect`], in order.
    pub repositories: Vec<Repository>,
    /// On ECR, each repository as DescribeRepositories found it (`None`: it does not exist);
    /// empty elsewhere.
    pub described: BTreeMap<Repository, Option<RepositoryInfo>>,
}

impl Target {
    /// Whether `repository` may hold tags: an ECR repository that does not exist holds none
    /// (any other registry creates repositories on push, so it is asked).
    pub fn exists(&self, repository: &Repository) -> bool {
        self.ecr.is_none() || matches!(self.described.get(repository), Some(Some(_)))
    }
}

/// Resolves the host (STS for --ecr), the repositories of `names`, the credentials and the
/// registry connection. Logging in to the registry and asking ECR about the repositories
/// only read, and neither needs the other: they run together.
pub async fn connect(
    config: &Config,
    names: &[&str],
    user_credentials: Option<Credentials>,
    ui: &Ui,
) -> Result<Target> {
    let destination = &config.destination;
    // The HTTPS client loads the system trust store: on a blocking thread, while the AWS
    // calls below run. ECR hosts are never loopback; a loopback registry is tried in plain
    // HTTP first and makes its HTTPS client only if it turns out to need one.
    let https = match destination {
        Destination::Ecr => true,
        Destination::Registry { host, .. } | Destination::Repository(Repository { host, .. }) => {
            !is_loopback(host)
        }
    }
    .then(|| tokio::task::spawn_blocking(registry::https_client));
    let (host, ecr) = resolve_host(destination).await?;
    let repositories: Vec<Repository> = names
        .iter()
        .map(|name| {
            destination
                .repository_for(name, Some(&host))
                .ok_or_else(|| Error::failed("no repository for the destination"))
        })
        .collect::<Result<_>>()?;
    let login = async {
        let credentials = credentials(&host, user_credentials, ecr.as_ref(), ui).await?;
        let https = match https {
            Some(task) => Some(
                task.await
                    .map_err(|err| RegistryError::Client(err.to_string()))??,
            ),
            None => None,
        };
        Ok::<_, Error>(Registry::connect(&host, credentials, https, config.retry, ui).await?)
    };
    let describe = describe(ecr.as_ref(), &repositories, config.jobs);
    let (registry, described) = tokio::try_join!(login, describe)?;
    Ok(Target {
        host,
        registry,
        ecr,
        repositories,
        described,
    })
}

/// The registry host, and an ECR client when it is an ECR registry (`--ecr`: the caller's
/// account, from STS, in the configured region).
async fn resolve_host(destination: &Destination) -> Result<(String, Option<Ecr>)> {
    Ok(match destination {
        Destination::Ecr => {
            let config = common::aws::load().await?;
            let region = common::aws::require_region(&config)?.to_string();
            let account = caller_account(&config).await?;
            let host = ecr_host_name(&account, &region);
            (host, Some(Ecr::new(&config, &account, &region)))
        }
        Destination::Registry { host, .. } | Destination::Repository(Repository { host, .. }) => {
            match ecr_host(host) {
                Some(ecr_host) => {
                    let config = common::aws::load_for_region(&ecr_host.region).await;
                    let ecr = Ecr::new(&config, &ecr_host.account, &ecr_host.region);
                    (host.clone(), Some(ecr))
                }
                None => (host.clone(), None),
            }
        }
    })
}

/// The credentials for `host`: the user's, else an ECR login, else the Docker
/// configuration's, else none.
async fn credentials(
    host: &str,
    user_credentials: Option<Credentials>,
    ecr: Option<&Ecr>,
    ui: &Ui,
) -> Result<Option<Credentials>> {
    let (credentials, origin) = match (user_credentials, ecr) {
        (Some(credentials), _) => (Some(credentials), Origin::Flags),
        (None, Some(ecr)) => (Some(ecr.login(ui).await?), Origin::Ecr),
        (None, None) => match auth::from_docker_config(host, ui)? {
            Some((credentials, origin)) => (Some(credentials), origin),
            None => (None, Origin::Anonymous),
        },
    };
    tracing::debug!("{host}: credentials from {origin}");
    Ok(credentials)
}

/// What ECR says of each repository (none elsewhere), `jobs` at a time.
async fn describe(
    ecr: Option<&Ecr>,
    repositories: &[Repository],
    jobs: usize,
) -> Result<BTreeMap<Repository, Option<RepositoryInfo>>> {
    let Some(ecr) = ecr else {
        return Ok(BTreeMap::new());
    };
    let unique: BTreeSet<&Repository> = repositories.iter().collect();
    futures_util::stream::iter(unique)
        .map(|repository| async move {
            let info = ecr.repository(&repository.path).await?;
            Ok::<_, Error>((repository.clone(), info))
        })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Whether each repository's tags are immutable, from what [`connect`] found; a missing
/// ECR repository is created when the policy says so (reported only, with --dry-run), else
/// an error.
pub async fn ready_repositories(
    target: &Target,
    config: &Config,
    ui: &Ui,
) -> Result<BTreeMap<Repository, bool>> {
    let policy = config.repositories;
    let create = policy.create;
    let mut immutable = BTreeMap::new();
    for repository in &target.repositories {
        if immutable.contains_key(repository) {
            continue;
        }
        let is_immutable = match (&target.ecr, target.described.get(repository)) {
            (None, _) => policy.immutable_tags,
            (Some(_), Some(Some(info))) => info.immutable || policy.immutable_tags,
            (Some(_), _) if create && config.dry_run => {
                ui.line(&format!(
                    "{repository}: would create the ECR repository (dry run)"
                ));
                policy.immutable_tags
            }
            (Some(ecr), _) if create => {
                let info = ecr
                    .create(&repository.path, policy.scan_on_push, policy.immutable_tags)
                    .await?;
                ui.line(&format!(
                    "{repository}: created the ECR repository ({} tags{})",
                    if info.immutable {
                        "immutable"
                    } else {
                        "mutable"
                    },
                    if policy.scan_on_push {
                        ", scan on push"
                    } else {
                        ""
                    }
                ));
                info.immutable
            }
            (Some(_), _) => {
                return Err(EcrError::MissingRepository {
                    path: repository.path.clone(),
                    host: target.host.clone(),
                }
                .into());
            }
        };
        immutable.insert(repository.clone(), is_immutable);
    }
    Ok(immutable)
}
