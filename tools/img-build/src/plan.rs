//! Deciding how to build: labels, build arguments and the content digest (names and tags
//! are in [`crate::tags`]). Pure functions; nothing here touches the disk, git or the Engine.

use serde_json::json;
use std::collections::BTreeMap;

/// The image label that carries the content digest; a local image with the same value is
/// reused instead of building again.
pub const DIGEST_LABEL: &str = "dev.shipkit.context-digest";

/// Parses one `--build-arg`: `KEY=VALUE`, or `KEY` alone for the value of the environment
/// variable `KEY` (`None` when it is unset: the Dockerfile's default applies, as with
/// `docker build`).
pub fn parse_build_arg(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, String> {
    let (key, value) = match text.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (text, None),
    };
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "bad --build-arg {text:?}: expected KEY=VALUE or KEY (taken from the environment)"
        ));
    }
    Ok(match value {
        Some(value) => Some((key.to_owned(), value)),
        None => env(key).map(|value| (key.to_owned(), value)),
    })
}

/// What the content digest covers besides the context bytes.
#[derive(Debug, Clone, Default)]
pub struct DigestInputs {
    /// The Dockerfile's path inside the context tar (its content is in the tar).
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// `--label`s: an image reused from the cache must carry the labels asked for.
    pub labels: BTreeMap<String, String>,
}

/// The content digest: sha256 over a versioned description of the inputs and the sha256 of
/// the context tar. Not covered: base images (`--no-cache` rebuilds), the commit and the
/// time (so an unchanged context on a new commit reuses the image).
pub fn content_digest(context_sha256: &str, inputs: &DigestInputs) -> String {
    let description = json!({
        "v": 1,
        "context_sha256": context_sha256,
        "dockerfile": inputs.dockerfile,
        "build_args": inputs.build_args,
        "target": inputs.target,
        "platform": inputs.platform,
        "labels": inputs.labels,
    });
    let mut writer = crate::context::HashingWriter::default();
    std::io::Write::write_all(&mut writer, description.to_string().as_bytes())
        .expect("hashing never fails");
    format!("sha256:{}", writer.finish())
}

/// What the OCI labels are made of.
#[derive(Debug, Clone, Default)]
pub struct LabelInputs {
    pub name: String,
    pub commit: Option<String>,
    /// The remote URL (credentials are stripped here).
    pub source: Option<String>,
    /// RFC 3339 time of the build.
    pub created: String,
    pub version: Option<String>,
    /// `--label`s; they win over the OCI labels computed here.
    pub user: BTreeMap<String, String>,
    pub digest: String,
}

/// The labels an image is built with: `org.opencontainers.image.{title,revision,source,
/// created,version}`, the user's labels over them, and the content digest.
pub fn labels(inputs: &LabelInputs) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let oci = |key: &str| format!("org.opencontainers.image.{key}");
    labels.insert(oci("title"), inputs.name.clone());
    labels.insert(oci("created"), inputs.created.clone());
    if let Some(commit) = &inputs.commit {
        labels.insert(oci("revision"), commit.clone());
    }
    if let Some(source) = &inputs.source {
        labels.insert(oci("source"), strip_credentials(source));
    }
    if let Some(version) = &inputs.version {
        labels.insert(oci("version"), version.clone());
    }
    labels.extend(inputs.user.clone());
    labels.insert(DIGEST_LABEL.to_owned(), inputs.digest.clone());
    labels
}

/// The Dockerfile with one `LABEL` instruction appended that sets every label in a single
/// step (the classic builder commits one step per label given as a build parameter).
/// `None` when appending is not safe, and the labels go as the build parameter: with a
/// `--target` (the last stage may not be the one built), with a line break in a label, or
/// when the Dockerfile ends on a line continuation. Values are quoted for the Dockerfile's
/// escape character (`# escape=` directive), `$` escaped so nothing is expanded.
pub fn dockerfile_with_labels(
    dockerfile: &str,
    labels: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Option<String> {
    if target.is_some() || labels.is_empty() {
        return None;
    }
    let breaks = |s: &String| s.contains(['\n', '\r']);
    if labels.iter().any(|(k, v)| breaks(k) || breaks(v)) {
        return None;
    }
    let escape = escape_directive(dockerfile);
    if dockerfile.trim_end().ends_with(escape) {
        return None;
    }
    let quote = |text: &str| {
        let mut out = String::from('"');
        for ch in text.chars() {
            if ch == '"' || ch == '$' || ch == escape {
                out.push(escape);
            }
            out.push(ch);
        }
        out.push('"');
        out
    };
    let mut out = dockerfile.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("LABEL");
    for (key, value) in labels {
        out.push(' ');
        out.push_str(&quote(key));
        out.push('=');
        out.push_str(&quote(value));
    }
    out.push('\n');
    Some(out)
}

/// The escape character a Dockerfile chose with a leading `# escape=` parser directive.
fn escape_directive(dockerfile: &str) -> char {
    for line in dockerfile.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") {
            return if value.trim() == "`" { '`' } else { '\\' };
        }
    }
    '\\'
}

/// A remote URL without user name or password (`https://x:token@host/r` → `https://host/r`).
/// scp-like remotes (`git@host:org/repo.git`) carry no secret and are kept.
pub fn strip_credentials(remote: &str) -> String {
    match url::Url::parse(remote) {
        Ok(mut url)
            if url.has_host() && (!url.username().is_empty() || url.password().is_some()) =>
        {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => remote.to_owned(),
    }
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_come_from_flags_or_the_environment() {
        let env = |k: &str| (k == "FROM_ENV").then(|| "e".to_owned());
        assert_eq!(
            parse_build_arg("A=b=c", env).unwrap(),
            Some(("A".into(), "b=c".into()))
        );
        assert_eq!(
            parse_build_arg("A=", env).unwrap(),
            Some(("A".into(), String::new()))
        );
        assert_eq!(
            parse_build_arg("FROM_ENV", env).unwrap(),
            Some(("FROM_ENV".into(), "e".into()))
        );
        assert_eq!(parse_build_arg("UNSET", env).unwrap(), None);
        assert!(parse_build_arg("=x", env).is_err());
        assert!(parse_build_arg("A B=x", env).is_err());
        assert!(parse_build_arg("", env).is_err());
    }

    #[test]
    fn the_digest_changes_with_each_input_and_only_then() {
        let base = DigestInputs {
            dockerfile: "Dockerfile".into(),
            ..Default::default()
        };
        let d = content_digest("aa", &base);
        assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
        assert_eq!(d, content_digest("aa", &base.clone()));
        assert_ne!(d, content_digest("ab", &base));
        let mut args = base.clone();
        args.build_args.insert("X".into(), "1".into());
        assert_ne!(d, content_digest("aa", &args));
        let target = DigestInputs {
            target: Some("t".into()),
            ..base.clone()
        };
        assert_ne!(d, content_digest("aa", &target));
        let platform = DigestInputs {
            platform: Some("linux/amd64".into()),
            ..base.clone()
        };
        assert_ne!(d, content_digest("aa", &platform));
        let file = DigestInputs {
            dockerfile: "other/Dockerfile".into(),
            ..base.clone()
        };
        assert_ne!(d, content_digest("aa", &file));
    }

    #[test]
    fn labels_follow_oci_and_user_labels_win() {
        let mut user = BTreeMap::new();
        user.insert(
            "org.opencontainers.image.title".to_owned(),
            "custom".to_owned(),
        );
        user.insert("team".to_owned(), "core".to_owned());
        let labels = labels(&LabelInputs {
            name: "api".into(),
            commit: Some("abc".into()),
            source: Some("https://user:tok3n@github.com/org/repo.git".into()),
            created: "2024-05-01T12:00:00Z".into(),
            version: Some("1.4.0".into()),
            user,
            digest: "sha256:00".into(),
        });
        let get = |k: &str| labels.get(k).map(String::as_str);
        assert_eq!(get("org.opencontainers.image.title"), Some("custom"));
        assert_eq!(get("org.opencontainers.image.revision"), Some("abc"));
        assert_eq!(
            get("org.opencontainers.image.source"),
            Some("https://github.com/org/repo.git")
        );
        assert_eq!(get("org.opencontainers.image.version"), Some("1.4.0"));
        assert_eq!(
            get("org.opencontainers.image.created"),
            Some("2024-05-01T12:00:00Z")
        );
        assert_eq!(get("team"), Some("core"));
        assert_eq!(get(DIGEST_LABEL), Some("sha256:00"));
    }

    #[test]
    fn labels_are_appended_in_one_quoted_instruction() {
        let mut labels = BTreeMap::new();
        labels.insert("a.b".to_owned(), "x y".to_owned());
        labels.insert("q".to_owned(), "say \"$HOME\" \\o/".to_owned());
        assert_eq!(
            dockerfile_with_labels("FROM scratch", &labels, None).unwrap(),
            "FROM scratch\nLABEL \"a.b\"=\"x y\" \"q\"=\"say \\\"\\$HOME\\\" \\\\o/\"\n"
        );
        let backtick = "# escape=`\nFROM scratch\n";
        assert_eq!(
            dockerfile_with_labels(backtick, &labels, None).unwrap(),
            "# escape=`\nFROM scratch\nLABEL \"a.b\"=\"x y\" \"q\"=\"say `\"`$HOME`\" \\o/\"\n"
        );
        assert!(dockerfile_with_labels("FROM scratch\n", &labels, Some("build")).is_none());
        assert!(dockerfile_with_labels("FROM scratch\nRUN x \\\n", &labels, None).is_none());
        let mut broken = labels.clone();
        broken.insert("n".to_owned(), "two\nlines".to_owned());
        assert!(dockerfile_with_labels("FROM scratch\n", &broken, None).is_none());
        assert!(dockerfile_with_labels("FROM scratch\n", &BTreeMap::new(), None).is_none());
    }

    #[test]
    fn credentials_are_stripped_from_remotes() {
        assert_eq!(
            strip_credentials("https://x-access-token:ghs_abc@github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(
            strip_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(
            strip_credentials("https://github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(strip_credentials("ssh://git@host/o/r"), "ssh://host/o/r");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }
}
