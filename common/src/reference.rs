//! Image references: parsing, checking and Docker's normalisation (pure).
//!
//! The grammar is Docker's (`distribution/reference`): `[domain/]path[:tag][@digest]`, where
//! the first of two or more components is a registry host (domain) when it contains `.` or
//! `:` or is `localhost`. (Docker also takes a first component with uppercase letters for a
//! host; here it stays a path and is refused as one, so a typo is an error, not a host.)
//!
//! [`Reference::parse`] keeps what was written (`domain` is `None` when the reference names
//! no registry host); the `normalized_*` methods apply Docker's rules on top:
//! - no registry host means Docker Hub, `docker.io` (and `index.docker.io` is `docker.io`);
//! - a one-component path on Docker Hub is in `library/` (`alpine` → `docker.io/library/alpine`);
//! - no tag and no digest means the tag `latest`.

use std::fmt;

/// Docker Hub, the registry of references that name no host.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";
/// Docker Hub's namespace for its official, one-component images (`alpine`).
const OFFICIAL_NAMESPACE: &str = "library/";
/// The longest repository name Docker accepts, counted in full: host and `library/` included
/// (`distribution/reference`'s `NameTotalLengthMax`).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed image reference, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry host (with port), when the reference names one.
    pub domain: Option<String>,
    /// The repository path inside the registry (`team/api`), as written.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// A text that is not an image reference: the text and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an image reference: {invalid}")]
pub struct ReferenceError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub invalid: Invalid,
}

/// What is wrong with one part of an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Nothing was given.
    #[error("it is empty")]
    Empty,
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid tag {0:?} (letters, digits, '_', '.', '-'; not starting with '.' or '-'; \
         at most 128)"
    )]
    Tag(String),
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("invalid digest {0:?} (expected sha256:<64 hex digits>)")]
    Digest(String),
    /// A repository path with uppercase letters, empty components or other characters.
    #[error(
        "invalid repository name {0:?} (lowercase letters, digits and '._-' between them, \
         components separated by '/')"
    )]
    Path(String),
    /// A registry host that is not a DNS name or IP with an optional port.
    #[error("invalid registry host {0:?}")]
    Host(String),
    /// A repository whose full name (`docker.io/library/…` included) is longer than Docker
    /// allows.
    #[error("repository name {0:?} is longer than {NAME_TOTAL_LENGTH_MAX} characters")]
    TooLong(String),
}

impl Reference {
    /// Parses `text`, saying what is wrong in a message fit for a usage error.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        parse_parts(text).map_err(|invalid| ReferenceError {
            text: text.to_owned(),
            invalid,
        })
    }

    /// The last path component: the image's logical name (`team/api` → `api`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The repository as written, without tag or digest (`localhost:5000/team/api`, `alpine`):
    /// what the Docker Engine API takes as the repository of a tag or pull.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag this reference means: its own, else `latest` unless it is by digest only
    /// (`api:git-1` → `git-1`, `api` → `latest`, `api@sha256:…` → none).
    pub fn tag_or_default(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG),
        }
    }

    /// The registry host, Docker Hub when none is named (`docker.io`, `localhost:5000`).
    pub fn normalized_domain(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("index.docker.io") => DEFAULT_REGISTRY,
            Some(domain) => domain,
        }
    }

    /// The path inside the registry with Docker Hub's `library/` for one-component names
    /// (`alpine` → `library/alpine`; `team/api` and `localhost:5000/api` unchanged).
    pub fn normalized_path(&self) -> String {
        if self.normalized_domain() == DEFAULT_REGISTRY && !self.path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}{}", self.path)
        } else {
            self.path.clone()
        }
    }

    /// The repository in full, so that two spellings of one repository compare equal
    /// (`alpine` and `docker.io/library/alpine` → `docker.io/library/alpine`).
    pub fn normalized_repository(&self) -> String {
        format!("{}/{}", self.normalized_domain(), self.normalized_path())
    }

    /// The whole reference in full: host, path, and tag (`latest` when there is neither tag
    /// nor digest) and digest (`alpine` → `docker.io/library/alpine:latest`).
    pub fn normalized(&self) -> String {
        let mut text = self.normalized_repository();
        if let Some(tag) = self.tag_or_default() {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }

    /// The repository as Docker shows it in `RepoDigests` (`api`, `team/api`,
    /// `localhost:5000/api`).
    pub fn familiar_repository(&self) -> String {
        familiar_repository(self.domain.as_deref(), &self.path)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(text)
    }
}

/// As written: `[domain/]path[:tag][@digest]`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse_parts(text: &str) -> Result<Reference, Invalid> {
    if text.is_empty() {
        return Err(Invalid::Empty);
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
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
        check_tag(tag)?;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (Some(first.to_owned()), rest),
        _ => (None, name),
    };
    if let Some(domain) = &domain {
        check_host(domain)?;
    }
    check_path(path)?;
    let reference = Reference {
        domain,
        path: path.to_owned(),
        tag,
        digest,
    };
    // Docker counts the name in full, as it normalizes it: a name it refuses is refused here,
    // and the normalized form of a name accepted here parses again.
    let full = reference.normalized_repository();
    if full.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Invalid::TooLong(full));
    }
    Ok(reference)
}

/// A repository as Docker shortens it: Docker Hub's `library/` images lose both host and
/// namespace, other Docker Hub images the host (`docker.io/library/alpine` → `alpine`).
pub fn familiar_repository(domain: Option<&str>, path: &str) -> String {
    match domain {
        None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => path
            .strip_prefix(OFFICIAL_NAMESPACE)
            .filter(|p| !p.contains('/'))
            .unwrap_or(path)
            .to_owned(),
        Some(domain) => format!("{domain}/{path}"),
    }
}

/// Whether the first of several components of a reference is a registry host rather than
/// the start of a path: it has a `.` or a port, or is `localhost`.
pub fn is_registry_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), Invalid> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if tag.len() > 128 || !first_ok || !rest_ok {
        return Err(Invalid::Tag(tag.to_owned()));
    }
    Ok(())
}

/// Checks a digest: `sha256:` and 64 lowercase hex digits.
pub fn check_digest(digest: &str) -> Result<(), Invalid> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(Invalid::Digest(digest.to_owned())),
    }
}

/// Checks a repository path: lowercase components `[a-z0-9]+([._-]+[a-z0-9]+)*` separated
/// by `/` (Docker also limits the separators; registries accept these).
pub fn check_path(path: &str) -> Result<(), Invalid> {
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
        return Err(Invalid::Path(path.to_owned()));
    }
    Ok(())
}

/// Checks a registry host: a DNS name or IP with an optional port.
pub fn check_host(host: &str) -> Result<(), Invalid> {
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
        return Err(Invalid::Host(host.to_owned()));
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
            "localhost:5000/Team/api",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not an image reference"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn errors_name_the_part_that_is_wrong() {
        let invalid = |text: &str| Reference::parse(text).unwrap_err().invalid;
        assert_eq!(invalid(""), Invalid::Empty);
        assert_eq!(invalid("api:-x"), Invalid::Tag("-x".into()));
        assert_eq!(
            invalid("api@sha256:12"),
            Invalid::Digest("sha256:12".into())
        );
        assert_eq!(invalid("a//b"), Invalid::Path("a//b".into()));
        assert_eq!(invalid("host:x/api"), Invalid::Host("host:x".into()));
        assert_eq!(
            Reference::parse("API:1").unwrap_err().to_string(),
            "\"API:1\" is not an image reference: invalid repository name \"API\" (lowercase \
             letters, digits and '._-' between them, components separated by '/')"
        );
    }

    #[test]
    fn docker_hub_is_the_default_registry_with_library_for_one_component_names() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/alpine", "docker.io/library/alpine:latest"),
            (
                "docker.io/library/alpine",
                "docker.io/library/alpine:latest",
            ),
            ("team/api:1", "docker.io/team/api:1"),
            ("docker.io/team/api", "docker.io/team/api:latest"),
            ("localhost/api", "localhost/api:latest"),
            ("localhost:5000/api", "localhost:5000/api:latest"),
            (
                "reg.example.com:443/a/b/c:v2",
                "reg.example.com:443/a/b/c:v2",
            ),
            ("[::1]:5000/api:1", "[::1]:5000/api:1"),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:git-1",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:git-1",
            ),
        ];
        for (text, normalized) in cases {
            assert_eq!(parse(text).normalized(), normalized, "{text}");
        }
        assert_eq!(
            parse("alpine").normalized_repository(),
            parse("docker.io/library/alpine:3").normalized_repository()
        );
        assert_eq!(
            parse("localhost:5000/api").normalized_domain(),
            "localhost:5000"
        );
        assert_eq!(parse("team/api").normalized_path(), "team/api");
    }

    #[test]
    fn digests_and_tags_together() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let r = parse(&format!("alpine@{digest}"));
        assert_eq!(r.tag_or_default(), None);
        assert_eq!(r.normalized(), format!("docker.io/library/alpine@{digest}"));
        let r = parse(&format!("localhost:5000/api:v1@{digest}"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.tag_or_default(), Some("v1"));
        assert_eq!(r.normalized(), format!("localhost:5000/api:v1@{digest}"));
        assert_eq!(parse("api").tag_or_default(), Some("latest"));
    }

    #[test]
    fn the_first_component_is_a_host_only_when_it_looks_like_one() {
        assert_eq!(parse("localhost/api").domain.as_deref(), Some("localhost"));
        assert_eq!(parse("localhost").domain, None);
        assert_eq!(parse("localhost:5000").path, "localhost");
        assert_eq!(parse("localhost:5000").tag.as_deref(), Some("5000"));
        assert!(Reference::parse("Registry/api").is_err());
        assert_eq!(parse("team/api").domain, None);
        assert_eq!(parse("host:5000/api").domain.as_deref(), Some("host:5000"));
    }

    #[test]
    fn references_print_as_written_and_repositories_without_tag() {
        let digest = format!("sha256:{}", "c".repeat(64));
        for text in [
            "api",
            "team/api:1",
            "localhost:5000/api",
            &format!("reg.example.com/a/b:v1@{digest}"),
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
        assert_eq!(
            parse("localhost:5000/team/api:v1").repository(),
            "localhost:5000/team/api"
        );
        assert_eq!(parse("api:v1").repository(), "api");
        assert_eq!(
            "api:1".parse::<Reference>().unwrap().tag.as_deref(),
            Some("1")
        );
    }

    /// Found by `make fuzz` (image_reference): a one-component name of 248 characters was
    /// accepted, but its normalized form (`docker.io/library/` in front) was refused, and
    /// Docker, which counts the name in full, refuses it too.
    #[test]
    fn the_length_limit_counts_the_name_in_full_as_docker_does() {
        let found = "doffffffffffffffffffffffffffffffffffffffffffffffffffffffffffck-------------------------ffffffck---------------------------------------fffffffffffffffffffffffffffffffffck-------------------------ffffffck----------------------------------------sha256o2";
        let err = Reference::parse(found).unwrap_err();
        assert!(matches!(err.invalid, Invalid::TooLong(_)), "{err}");
        assert!(
            err.to_string().contains("longer than 255 characters"),
            "{err}"
        );
        // `docker.io/library/` is 18 characters: 237 more fill the limit exactly.
        let longest = "a".repeat(237);
        assert_eq!(parse(&longest).normalized_repository().len(), 255);
        Reference::parse(&parse(&longest).normalized()).unwrap();
        assert!(Reference::parse(&"a".repeat(238)).is_err());
        // A host counts too; the tag and digest do not.
        let host = "registry.example.com:5000";
        let path = "b".repeat(255 - host.len() - 1);
        parse(&format!("{host}/{path}:1.0@sha256:{}", "c".repeat(64)));
        assert!(Reference::parse(&format!("{host}/{path}b")).is_err());
    }

    #[test]
    fn familiar_names_drop_docker_hub() {
        assert_eq!(
            familiar_repository(Some("docker.io"), "library/alpine"),
            "alpine"
        );
        assert_eq!(familiar_repository(None, "team/api"), "team/api");
        assert_eq!(
            familiar_repository(Some("registry-1.docker.io"), "library/a/b"),
            "library/a/b"
        );
        assert_eq!(
            familiar_repository(Some("localhost:5000"), "library/alpine"),
            "localhost:5000/library/alpine"
        );
    }
}
