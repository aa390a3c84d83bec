//! Where images go: registry hosts and repositories (pure). Image references themselves are
//! parsed by [`common::reference`].

use common::reference::{
    Reference, ReferenceError, check_host, check_path, familiar_repository, is_registry_host,
};
use std::fmt;

/// A repository in a registry: where a tag is pushed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    /// Registry host with port (`localhost:5000`, `1234.dkr.ecr.eu-west-1.amazonaws.com`).
    pub host: String,
    /// Path inside the registry (`team/api`).
    pub path: String,
}

impl Repository {
    /// As Docker shows it in `RepoDigests`.
    pub fn familiar(&self) -> String {
        familiar_repository(Some(&self.host), &self.path)
    }

    /// `repository@digest`.
    pub fn by_digest(&self, digest: &str) -> String {
        format!("{self}@{digest}")
    }

    /// `repository:tag`.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{self}:{tag}")
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// Where images go, as the user said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `--ecr`: the caller's account and the configured region, repository = image name.
    Ecr,
    /// `--registry HOST[/PREFIX]`: repository = `HOST/PREFIX/<name>`.
    Registry { host: String, prefix: String },
    /// `--repository HOST/PATH`: one image, this exact repository.
    Repository(Repository),
}

impl Destination {
    /// Parses `--registry HOST[/PREFIX]`.
    pub fn registry(text: &str) -> Result<Destination, String> {
        let text = strip_scheme(text).trim_end_matches('/');
        let (host, prefix) = text.split_once('/').unwrap_or((text, ""));
        if !is_registry_host(host) {
            return Err(format!(
                "--registry {text:?}: {host:?} is not a registry host (it needs a '.' or a port, \
                 or is localhost)"
            ));
        }
        check_host(host).map_err(|why| format!("--registry {text:?}: {why}"))?;
        if !prefix.is_empty() {
            check_path(prefix).map_err(|why| format!("--registry {text:?}: {why}"))?;
        }
        Ok(Destination::Registry {
            host: host.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// Parses `--repository HOST/PATH`.
    pub fn repository(text: &str) -> Result<Destination, String> {
        let text = strip_scheme(text);
        let reference = Reference::parse(text).map_err(|why| format!("--repository: {why}"))?;
        let Some(host) = reference.domain else {
            return Err(format!(
                "--repository {text:?} names no registry host: write the whole repository URI \
                 (HOST/PATH, e.g. localhost:5000/team/api)"
            ));
        };
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(format!(
                "--repository {text:?} carries a tag or digest: give the repository only, and \
                 tags with --tag"
            ));
        }
        Ok(Destination::Repository(Repository {
            host,
            path: reference.path,
        }))
    }

    /// The repository for the image `name` when the registry host is `ecr_host` (for --ecr).
    pub fn repository_for(&self, name: &str, ecr_host: Option<&str>) -> Option<Repository> {
        match self {
            Destination::Ecr => ecr_host.map(|host| Repository {
                host: host.to_owned(),
                path: name.to_owned(),
            }),
            Destination::Registry { host, prefix } => Some(Repository {
                host: host.clone(),
                path: match prefix.as_str() {
                    "" => name.to_owned(),
                    prefix => format!("{prefix}/{name}"),
                },
            }),
            Destination::Repository(repository) => Some(repository.clone()),
        }
    }
}

fn strip_scheme(text: &str) -> &str {
    text.strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text)
}

/// Whether `host` is on this machine; such registries may speak plain HTTP, as Docker allows.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    };
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The tag of a local reference (`api:git-3f2a1c9` → `git-3f2a1c9`, `api` → `latest`),
/// `None` for a reference by digest only.
pub fn tag_of(local: &str) -> Result<Option<String>, ReferenceError> {
    Ok(Reference::parse(local)?.tag_or_default().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_make_repositories() {
        let d = Destination::registry("localhost:5000/team").unwrap();
        assert_eq!(
            d.repository_for("api", None).unwrap().to_string(),
            "localhost:5000/team/api"
        );
        let d = Destination::registry("https://reg.example.com/").unwrap();
        assert_eq!(
            d.repository_for("api", None).unwrap().to_string(),
            "reg.example.com/api"
        );
        assert!(Destination::registry("team").is_err());
        assert!(Destination::repository("api").is_err());
        assert!(Destination::repository("localhost:5000/api:1").is_err());
        let d = Destination::repository("localhost:5000/x/api").unwrap();
        assert_eq!(d.repository_for("other", None).unwrap().path, "x/api");
        let host = common::registry_auth::ecr_host_name("123456789012", "us-east-1");
        assert_eq!(
            Destination::Ecr
                .repository_for("api", Some(&host))
                .unwrap()
                .to_string(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
        );
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.0.1",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "reg.example.com",
            "10.0.0.1:5000",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn tags_of_local_references() {
        assert_eq!(tag_of("api:git-1").unwrap().as_deref(), Some("git-1"));
        assert_eq!(
            tag_of("localhost:5000/api").unwrap().as_deref(),
            Some("latest")
        );
        let digest = format!("api@sha256:{}", "0".repeat(64));
        assert_eq!(tag_of(&digest).unwrap(), None);
    }
}
