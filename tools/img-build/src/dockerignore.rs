//! `.dockerignore` with Docker's exact semantics: the file format of `moby/buildkit`'s
//! `dockerignore.ReadAll`, the patterns of `moby/patternmatcher` (Go `filepath.Match` syntax,
//! `**`, `!` re-includes, the last matching pattern wins, a pattern that matches a directory
//! matches everything under it) and the rule of the docker CLI that the Dockerfile and
//! `.dockerignore` themselves are always sent.
//!
//! Everything here is pure: it decides, it reads no file.

use regex::Regex;
use std::fmt;

/// A pattern the Go implementation would refuse (`docker build` fails on it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written, after cleaning.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// Reads the lines of a `.dockerignore` file into patterns, as `dockerignore.ReadAll` does:
/// a UTF-8 BOM is dropped, lines starting with `#` (before trimming) are comments, blank
/// lines are skipped, each pattern is cleaned like Go's `filepath.Clean`, a leading `/` is
/// dropped, and `!` is kept in front.
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.split('\n') {
        // bufio.Scanner drops one trailing \r.
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        patterns.push(cleaned);
    }
    patterns
}

/// Go's `path.Clean` for slash-separated paths: collapse `//`, drop `.` elements, resolve
/// `..` against the element before it; an empty result is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone)]
enum MatchKind {
    /// The whole path equals the pattern.
    Exact,
    /// `dir/**`: the path starts with `dir/` (the pattern without its `**`).
    Prefix(String),
    /// `**/name`: the path ends with `/name` or is `name`.
    Suffix(String),
    /// Anything else, compiled the way patternmatcher compiles it.
    Regex(Regex),
}

/// One pattern of a `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: MatchKind,
}

impl Pattern {
    /// The pattern without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` re-include.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            MatchKind::Regex(regex) => regex.is_match(path),
        }
    }
}

/// What the patterns said about a directory, handed to its children
/// (`patternmatcher.MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// The patterns of one `.dockerignore`, in order (`patternmatcher.PatternMatcher`).
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns` (as returned by [`read_patterns`]); refuses what Go's
    /// `filepath.Match` refuses.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut matcher = PatternMatcher::default();
        for pattern in patterns {
            let text = pattern.as_ref().trim();
            if text.is_empty() {
                continue;
            }
            let mut text = clean(text);
            let exclusion = text.starts_with('!');
            if exclusion {
                if text.len() == 1 {
                    return Err(PatternError {
                        pattern: text,
                        reason: "illegal exclusion pattern \"!\"".to_owned(),
                    });
                }
                text.remove(0);
                matcher.exclusions = true;
            }
            validate_match_syntax(&text).map_err(|reason| PatternError {
                pattern: text.clone(),
                reason,
            })?;
            let kind = compile(&text).map_err(|reason| PatternError {
                pattern: text.clone(),
                reason,
            })?;
            matcher.patterns.push(Pattern {
                cleaned: text,
                exclusion,
                kind,
            });
        }
        Ok(matcher)
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` re-include.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (slash-separated, relative to the context) is excluded: the last
    /// pattern that matches it or one of its parent directories decides.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let parent = parent_of(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // An include cannot change an already excluded path, nor an exclusion an
            // included one.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(path);
            if !hit && parent != "." {
                hit = (1..=parent_dirs.len()).any(|n| pattern.matches(&parent_dirs[..n].join("/")));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// As [`matches_or_parent_matches`](Self::matches_or_parent_matches), reusing what the
    /// patterns said about the parent directory (`MatchesUsingParentResults`, what the docker
    /// CLI uses while it walks the context). Pass `MatchInfo::default()` for top-level paths.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let known_parent = !parent.parent_matched.is_empty();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known_parent && parent.parent_matched[i];
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && !known_parent {
                    let parent_path = parent_of(path);
                    if parent_path != "." {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        hit = (1..=dirs.len()).any(|n| pattern.matches(&dirs[..n].join("/")));
                    }
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether an excluded directory must still be walked because a `!` pattern names
    /// something under it (the docker CLI's rule: the pattern starts with `dir/`). Docker
    /// skips the directory otherwise, even if a `!**` pattern could match inside it.
    pub fn must_walk_excluded_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }
}

/// The patterns the docker CLI sends for a build: `patterns`, plus `!.dockerignore` and
/// `!<dockerfile>` when they would be excluded (`TrimBuildFilesFromExcludes`), so that both
/// always reach the Engine. `dockerfile` is relative to the context, slash-separated, or
/// `None` when it lives outside the context.
pub fn keep_build_files(mut patterns: Vec<String>, dockerfile: Option<&str>) -> Vec<String> {
    let excluded = |patterns: &[String], path: &str| {
        PatternMatcher::new(patterns).is_ok_and(|m| m.matches_or_parent_matches(path))
    };
    if excluded(&patterns, ".dockerignore") {
        patterns.push("!.dockerignore".to_owned());
    }
    if let Some(dockerfile) = dockerfile
        && excluded(&patterns, dockerfile)
    {
        patterns.push(format!("!{dockerfile}"));
    }
    patterns
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// Refuses what Go's `filepath.Match` refuses: a trailing `\`, an unclosed or empty `[...]`,
/// a range with no end.
fn validate_match_syntax(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // getEsc: one class character, possibly escaped; something must follow it.
    let class_char = |i: &mut usize| -> Result<(), String> {
        match chars.get(*i) {
            None | Some('-') | Some(']') => return Err("syntax error in pattern".to_owned()),
            Some('\\') => {
                *i += 1;
                if *i >= chars.len() {
                    return Err("syntax error in pattern".to_owned());
                }
            }
            Some(_) => {}
        }
        *i += 1;
        if *i >= chars.len() {
            return Err("syntax error in pattern".to_owned());
        }
        Ok(())
    };
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("syntax error in pattern (trailing \\)".to_owned());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    class_char(&mut i)?;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&mut i)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// patternmatcher's `compile`, character for character: `**` is any number of
/// directories, `*` and `?` stay within one (also inside `[...]`, as in Go), `[...]` classes
/// and `\` escapes pass through to the regular expression, which is then translated from
/// Go's RE2 syntax to Rust's.
fn compile(pattern: &str) -> Result<MatchKind, String> {
    let mut regex = String::from("^");
    let mut kind = Kind::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut index = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        regex.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if index == 0 {
                    kind = Kind::Suffix;
                }
            } else {
                regex.push_str("[^/]*");
                kind = Kind::Regex;
            }
        } else if ch == '?' {
            regex.push_str("[^/]");
            kind = Kind::Regex;
        } else if ".+()|{}$".contains(ch) {
            regex.push('\\');
            regex.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    regex.push('\\');
                    regex.push(next);
                    kind = Kind::Regex;
                }
                None => regex.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            regex.push(ch);
            kind = Kind::Regex;
        } else {
            regex.push(ch);
        }
        index += 1;
    }
    match kind {
        Kind::Exact => Ok(MatchKind::Exact),
        Kind::Prefix => Ok(MatchKind::Prefix(pattern[..pattern.len() - 2].to_owned())),
        Kind::Suffix => Ok(MatchKind::Suffix(pattern[2..].to_owned())),
        Kind::Regex => {
            regex.push('$');
            Regex::new(&re2_to_rust(&regex))
                .map(MatchKind::Regex)
                .map_err(|err| format!("cannot compile: {err}"))
        }
    }
}

/// Rewrites the character classes of an RE2 expression for Rust's regex: inside a class RE2
/// takes `[` (unless it opens `[:name:]`), `&`, `~` and a second `-` literally, where Rust
/// would read a nested class or a set operation.
fn re2_to_rust(re2: &str) -> String {
    let chars: Vec<char> = re2.chars().collect();
    let mut out = String::with_capacity(re2.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\\' {
            out.extend(chars[i..(i + 2).min(chars.len())].iter());
            i += 2;
            continue;
        }
        if ch != '[' {
            out.push(ch);
            i += 1;
            continue;
        }
        out.push('[');
        i += 1;
        if chars.get(i) == Some(&'^') {
            out.push('^');
            i += 1;
        }
        let mut first = true;
        while i < chars.len() {
            let c = chars[i];
            if c == ']' && !first {
                out.push(']');
                i += 1;
                break;
            }
            first = false;
            if c == '\\' {
                out.extend(chars[i..(i + 2).min(chars.len())].iter());
                i += 2;
                continue;
            }
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // A POSIX class such as [:alpha:], copied up to its `:]`.
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                if let Some(end) = end {
                    out.extend(chars[i..end + 2].iter());
                    i = end + 2;
                    continue;
                }
            }
            if matches!(c, '[' | ']' | '&' | '~') || (c == '-' && out.ends_with('-')) {
                out.push('\\');
            }
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

#[cfg(test)]
mod tests;
