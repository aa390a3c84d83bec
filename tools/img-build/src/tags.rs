//! Image names and tags (deciding, pure): names made from folders, `--tag` templates and
//! their placeholders, the default tags of a commit and its branch.

use common::short::short_commit;
use regex::Regex;
use std::sync::LazyLock;

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
}
