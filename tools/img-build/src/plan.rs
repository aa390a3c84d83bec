//! Deciding what to build and how to call it: names, tags, labels, build arguments and the
//! content digest. Pure functions; nothing here touches the disk, git or the Engine.

use common::short::short_commit;
use regex::Regex;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The image label that carries the content digest; a local image with the same value is
/// reused instead of building again.
pub const DIGEST_LABEL: &str = "dev.shipkit.context-digest";

/// The placeholders a `--tag` template may use.
pub const PLACEHOLDERS: &[&str] = &["sha", "short_sha", "branch", "version", "name", "dirty"];

/// What tag templates are filled with.
#[derive(Debug, Clone, Default)]
pub struct TagValues {
    /// The logical image name (the repository of tags that name none).
    pub name: String,
    /// The full commit id, when the context is in a git repository with a commit.
    pub sha: Option<String>,
    /// The branch, absent on a detached HEAD.
    pub branch: Option<String>,
    /// Whether the working tree has uncommitted changes.
    pub dirty: bool,
    /// The release version from the input envelope.
    pub version: Option<String>,
    /// Why `sha` is absent (shown when a tag needs it).
    pub no_git_reason: Option<String>,
}

/// The branch a GitHub Actions job runs for, for a checkout on a detached HEAD (pull
/// requests check out a merge commit): `GITHUB_HEAD_REF` (the pull request's branch), else
/// `GITHUB_REF_NAME` when `GITHUB_REF_TYPE` is `branch`. `var` looks variables up.
pub fn actions_branch(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("GITHUB_ACTIONS").as_deref() != Some("true") {
        return None;
    }
    let non_empty = |name: &str| var(name).filter(|v| !v.is_empty());
    non_empty("GITHUB_HEAD_REF").or_else(|| {
        (var("GITHUB_REF_TYPE").as_deref() == Some("branch"))
            .then(|| non_empty("GITHUB_REF_NAME"))
            .flatten()
    })
}

/// A branch name turned into a valid tag: lowercase, anything but `[a-z0-9_.-]` becomes
/// `-`, runs of `-` collapse, no leading `.` or `-`, at most 128 characters.
pub fn slug_tag(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars().flat_map(char::to_lowercase) {
        let ch = if ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '-' {
            ch
        } else {
            '-'
        };
        if ch == '-' && out.ends_with('-') {
            continue;
        }
        out.push(ch);
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('-');
    trimmed.chars().take(128).collect()
}

/// A folder name turned into a valid repository name component: lowercase, separators
/// `.`, `_`, `-` kept between alphanumerics, anything else becomes `-`.
pub fn slug_name(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with(['-', '.', '_']) {
            out.push(if matches!(ch, '.' | '_') { ch } else { '-' });
        }
    }
    out.trim_end_matches(['-', '.', '_']).to_owned()
}

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$",
    )
    .expect("valid regex")
});

static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let domain = r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)";
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    Regex::new(&format!(
        "^(?:{domain}/)?{component}(?:/{component})*:{tag}$"
    ))
    .expect("valid regex")
});

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("valid regex"));

/// Checks a logical image name (`api-server`, `team/api`).
pub fn check_name(name: &str) -> Result<(), String> {
    if NAME.is_match(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid image name {name:?}: use lowercase letters, digits and . _ - / (e.g. api-server)"
        ))
    }
}

/// One piece of a parsed tag template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder(String),
}

fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Text(rest.to_owned()));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("bad --tag {template:?}: '}}' without '{{'"));
            }
            Some(i) => {
                if i > 0 {
                    pieces.push(Piece::Text(rest[..i].to_owned()));
                }
                let after = &rest[i + 1..];
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("bad --tag {template:?}: '{{' without '}}'"))?;
                let key = &after[..end];
                if !PLACEHOLDERS.contains(&key) {
                    return Err(format!(
                        "bad --tag {template:?}: unknown placeholder {{{key}}} (known: {})",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                pieces.push(Piece::Placeholder(key.to_owned()));
                rest = &after[end + 1..];
            }
        }
    }
    Ok(pieces)
}

/// Checks the syntax of a tag template without filling it (unknown placeholders, braces).
pub fn check_template(template: &str) -> Result<(), String> {
    parse_template(template).map(|_| ())
}

/// Fills a `--tag` template. A template whose last path segment has a `:` is a whole
/// reference (`registry:5000/team/api:{short_sha}`); otherwise it is a tag of the image's
/// own name (`git-{short_sha}` → `api:git-3f2a1c9`).
pub fn render_tag(template: &str, values: &TagValues) -> Result<String, String> {
    let mut out = String::new();
    for piece in parse_template(template)? {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Placeholder(key) => out.push_str(&placeholder(&key, template, values)?),
        }
    }
    let last_segment = out.rsplit('/').next().unwrap_or(&out);
    let reference = if last_segment.contains(':') {
        out
    } else {
        if !TAG.is_match(&out) {
            return Err(format!(
                "bad --tag {template:?}: {out:?} is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)"
            ));
        }
        format!("{}:{out}", values.name)
    };
    if !REFERENCE.is_match(&reference) {
        return Err(format!(
            "bad --tag {template:?}: {reference:?} is not a valid image reference"
        ));
    }
    Ok(reference)
}

fn placeholder(key: &str, template: &str, values: &TagValues) -> Result<String, String> {
    let need_git = || {
        format!(
            "--tag {template:?} needs a git commit ({{{key}}}), but {}",
            values
                .no_git_reason
                .as_deref()
                .unwrap_or("there is no git information")
        )
    };
    Ok(match key {
        "sha" => values.sha.clone().ok_or_else(need_git)?,
        "short_sha" => short_commit(values.sha.as_deref().ok_or_else(need_git)?).to_owned(),
        "branch" => {
            let branch = values.branch.as_deref().ok_or_else(|| {
                format!("--tag {template:?} uses {{branch}}, but HEAD is not on a branch")
            })?;
            slug_tag(branch)
        }
        "version" => values.version.clone().ok_or_else(|| {
            format!(
                "--tag {template:?} uses {{version}}, but the input envelope has no release (run release-tag first)"
            )
        })?,
        "name" => values.name.clone(),
        "dirty" => if values.dirty { "-dirty" } else { "" }.to_owned(),
        other => return Err(format!("unknown placeholder {{{other}}}")),
    })
}

/// The tags used without `--tag`: `NAME:git-<short sha>` and `NAME:<branch slug>`, both with
/// `-dirty` when the tree has uncommitted changes (so a dirty build never takes the name of
/// a commit); no branch tag on a detached HEAD.
pub fn default_tags(values: &TagValues) -> Result<Vec<String>, String> {
    let sha = values.sha.as_deref().ok_or_else(|| {
        format!(
            "the default tag is git-<short sha>, but {}; pass --tag (e.g. --tag latest)",
            values
                .no_git_reason
                .as_deref()
                .unwrap_or("there is no git information")
        )
    })?;
    let dirty = if values.dirty { "-dirty" } else { "" };
    let mut tags = vec![format!("{}:git-{}{dirty}", values.name, short_commit(sha))];
    if let Some(branch) = values.branch.as_deref() {
        let slug = slug_tag(branch);
        if !slug.is_empty() {
            let tag: String = format!("{slug}{dirty}").chars().take(128).collect();
            tags.push(format!("{}:{tag}", values.name));
        }
    }
    Ok(tags)
}

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

    fn values() -> TagValues {
        TagValues {
            name: "api".into(),
            sha: Some("3f2a1c9d8e7f60718293a4b5c6d7e8f901234567".into()),
            branch: Some("feature/Login_Page".into()),
            dirty: false,
            version: Some("1.4.0".into()),
            no_git_reason: None,
        }
    }

    #[test]
    fn templates_fill_every_placeholder() {
        let v = values();
        assert_eq!(
            render_tag("git-{short_sha}", &v).unwrap(),
            "api:git-3f2a1c9"
        );
        assert_eq!(
            render_tag("{sha}", &v).unwrap(),
            "api:3f2a1c9d8e7f60718293a4b5c6d7e8f901234567"
        );
        assert_eq!(
            render_tag("{branch}", &v).unwrap(),
            "api:feature-login_page"
        );
        assert_eq!(render_tag("v{version}", &v).unwrap(), "api:v1.4.0");
        assert_eq!(
            render_tag("localhost:5000/team/{name}:{short_sha}{dirty}", &v).unwrap(),
            "localhost:5000/team/api:3f2a1c9"
        );
        let dirty = TagValues { dirty: true, ..v };
        assert_eq!(
            render_tag("{short_sha}{dirty}", &dirty).unwrap(),
            "api:3f2a1c9-dirty"
        );
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let v = values();
        let err = render_tag("{nope}", &v).unwrap_err();
        assert!(err.contains("unknown placeholder {nope}"), "{err}");
        assert!(render_tag("a{sha", &v).unwrap_err().contains("without"));
        assert!(render_tag("a}b", &v).unwrap_err().contains("without"));
        assert!(
            render_tag("-bad", &v)
                .unwrap_err()
                .contains("not a valid tag")
        );
        assert!(
            render_tag("Bad/Repo:x", &v)
                .unwrap_err()
                .contains("not a valid image reference")
        );
        let no_release = TagValues {
            version: None,
            ..values()
        };
        assert!(
            render_tag("{version}", &no_release)
                .unwrap_err()
                .contains("no release")
        );
        let no_git = TagValues {
            sha: None,
            no_git_reason: Some("/tmp/x is not inside a git repository".into()),
            ..values()
        };
        let err = render_tag("{short_sha}", &no_git).unwrap_err();
        assert!(err.contains("not inside a git repository"), "{err}");
        assert_eq!(render_tag("latest", &no_git).unwrap(), "api:latest");
        assert!(check_template("x-{short_sha}").is_ok());
        assert!(check_template("x-{bogus}").is_err());
    }

    #[test]
    fn default_tags_name_the_commit_and_the_branch() {
        assert_eq!(
            default_tags(&values()).unwrap(),
            ["api:git-3f2a1c9", "api:feature-login_page"]
        );
        let dirty = TagValues {
            dirty: true,
            ..values()
        };
        assert_eq!(
            default_tags(&dirty).unwrap(),
            ["api:git-3f2a1c9-dirty", "api:feature-login_page-dirty"]
        );
        let detached = TagValues {
            branch: None,
            ..values()
        };
        assert_eq!(default_tags(&detached).unwrap(), ["api:git-3f2a1c9"]);
        let no_git = TagValues {
            sha: None,
            ..values()
        };
        assert!(default_tags(&no_git).unwrap_err().contains("pass --tag"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug_tag("main"), "main");
        assert_eq!(slug_tag("Feature//Big Thing!"), "feature-big-thing");
        assert_eq!(slug_tag("-.hidden"), "hidden");
        assert_eq!(slug_tag(&"x".repeat(300)).len(), 128);
        assert_eq!(slug_name("Api_Server"), "api_server");
        assert_eq!(slug_name("My Service!"), "my-service");
        assert_eq!(slug_name("--x--"), "x");
        assert!(check_name("api-server").is_ok());
        assert!(check_name("team/api").is_ok());
        assert!(check_name("Api").is_err());
        assert!(check_name("-api").is_err());
    }

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
    fn actions_name_the_branch_of_a_detached_checkout() {
        fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        let pr = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_REF_NAME", "12/merge"),
            ("GITHUB_REF_TYPE", "branch"),
        ];
        assert_eq!(actions_branch(vars(&pr)).as_deref(), Some("feature/x"));
        let push = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
        ];
        assert_eq!(actions_branch(vars(&push)).as_deref(), Some("main"));
        let tag = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF_NAME", "v1.0.0"),
            ("GITHUB_REF_TYPE", "tag"),
        ];
        assert_eq!(actions_branch(vars(&tag)), None);
        assert_eq!(actions_branch(vars(&[("GITHUB_HEAD_REF", "x")])), None);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }
}
