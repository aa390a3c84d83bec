//! Image references, registry hosts and repositories (pure).
//!
//! The grammar is Docker's (`distribution/reference`): `[domain/]path[:tag][@digest]`, where
//! the first component is a domain when it contains `.` or `:` or is `localhost`.

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host (with port), when the reference names one.
    pub domain: Option<String>,
    /// The repository path inside the registry (`team/api`).
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `text`, saying what is wrong in a message fit for a usage error.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| format!("{text:?} is not an image reference: {why}");
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|why| bad(&why))?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|why| bad(&why))?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if is_domain(first) => (Some(first.to_owned()), rest),
            _ => (None, name),
        };
        if let Some(domain) = &domain {
            check_host(domain).map_err(|why| bad(&why))?;
        }
        check_path(path).map_err(|why| bad(&why))?;
        Ok(Reference {
            domain,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The last path component: the image's logical name (`team/api` → `api`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The repository as Docker shows it in `RepoDigests` (`api`, `team/api`,
    /// `localhost:5000/api`).
    pub fn familiar_repository(&self) -> String {
        familiar(self.domain.as_deref(), &self.path)
    }
}

/// `host` as Docker shortens it: Docker Hub's `library/` images lose both.
fn familiar(domain: Option<&str>, path: &str) -> String {
    match domain {
        None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => path
            .strip_prefix("library/")
            .filter(|p| !p.contains('/'))
            .unwrap_or(path)
            .to_owned(),
        Some(domain) => format!("{domain}/{path}"),
    }
}

/// Whether the first component of a reference is a registry host.
fn is_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

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
        familiar(Some(&self.host), &self.path)
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
        if !is_domain(host) {
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
pub fn tag_of(local: &str) -> Result<Option<String>, String> {
    let reference = Reference::parse(local)?;
    Ok(match (reference.tag, reference.digest) {
        (Some(tag), _) => Some(tag),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_owned()),
    })
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if tag.len() > 128 || !first_ok || !rest_ok {
        return Err(format!(
            "invalid tag {tag:?} (letters, digits, '_', '.', '-'; not starting with '.' or '-'; \
             at most 128)"
        ));
    }
    Ok(())
}

/// Checks a digest: `sha256:` and 64 lowercase hex digits.
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "invalid digest {digest:?} (expected sha256:<64 hex digits>)"
        )),
    }
}

/// Checks a repository path: lowercase components `[a-z0-9]+([._-]+[a-z0-9]+)*` separated
/// by `/` (Docker also limits the separators; registries accept these).
pub fn check_path(path: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    };
    if path.is_empty() || path.len() > 255 || !path.split('/').all(component_ok) {
        return Err(format!(
            "invalid repository name {path:?} (lowercase letters, digits and '._-' between them, \
             components separated by '/')"
        ));
    }
    Ok(())
}

/// Checks a registry host: a DNS name or IP with an optional port.
pub fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => (ip, port.strip_prefix(':')),
            None => ("", None),
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if !name_ok || !port_ok {
        return Err(format!("invalid registry host {host:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    #[test]
    fn references_split_into_domain_path_tag_digest() {
        let r = parse("localhost:5000/team/api:git-3f2a1c9");
        assert_eq!(r.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(r.path, "team/api");
        assert_eq!(r.tag.as_deref(), Some("git-3f2a1c9"));
        assert_eq!(r.name(), "api");
        let r = parse("api");
        assert_eq!((r.domain, r.path.as_str(), r.tag), (None, "api", None));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("reg.example.com/api@{digest}"));
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(r.familiar_repository(), "reg.example.com/api");
        assert_eq!(parse("team/api:1").domain, None);
        assert_eq!(
            parse("docker.io/library/alpine").familiar_repository(),
            "alpine"
        );
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "API:1",
            "api:-x",
            "api@sha256:12",
            "a//b",
            "api:",
            "host:x/api",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(err.contains("is not an image reference"), "{bad}: {err}");
        }
    }

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
        let host = ecr_host_name("123456789012", "us-east-1");
        assert_eq!(
            Destination::Ecr
                .repository_for("api", Some(&host))
                .unwrap()
                .to_string(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
        );
    }

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
