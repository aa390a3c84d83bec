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
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        PatternMatcher::new(&[pattern])
            .unwrap_or_else(|err| panic!("{pattern}: {err}"))
            .matches_or_parent_matches(path)
    }

    /// The table of `moby/patternmatcher`'s `TestMatches` (paths without trailing slashes,
    /// which a walk never produces).
    #[test]
    fn patternmatcher_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**/", "file", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter(|(pattern, path, want)| matches(pattern, path) != *want)
            .map(|(pattern, path, want)| format!("{pattern:?} vs {path:?}: want {want}"))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The examples of Docker's `.dockerignore` documentation.
    #[test]
    fn documented_examples() {
        let m = |text: &str| PatternMatcher::new(&read_patterns(text)).unwrap();
        let temp = m("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(temp.matches_or_parent_matches("somedir/temporary.txt"));
        assert!(temp.matches_or_parent_matches("somedir/temp"));
        assert!(temp.matches_or_parent_matches("somedir/subdir/temporary.txt"));
        assert!(temp.matches_or_parent_matches("tempa"));
        assert!(!temp.matches_or_parent_matches("temporary.txt"));
        assert!(!temp.matches_or_parent_matches("# comment"));

        let go = m("**/*.go");
        assert!(go.matches_or_parent_matches("main.go"));
        assert!(go.matches_or_parent_matches("a/b/c.go"));
        assert!(!go.matches_or_parent_matches("a/b/c.rs"));

        let readme = m("*.md\n!README.md");
        assert!(readme.matches_or_parent_matches("CHANGES.md"));
        assert!(!readme.matches_or_parent_matches("README.md"));

        let secret_last = m("*.md\n!README*.md\nREADME-secret.md");
        assert!(secret_last.matches_or_parent_matches("README-secret.md"));
        assert!(!secret_last.matches_or_parent_matches("README-public.md"));
        assert!(secret_last.matches_or_parent_matches("other.md"));

        let secret_first = m("*.md\nREADME-secret.md\n!README*.md");
        assert!(!secret_first.matches_or_parent_matches("README-secret.md"));
    }

    #[test]
    fn a_directory_pattern_excludes_what_is_under_it() {
        let m = PatternMatcher::new(&read_patterns("build/\nnode_modules")).unwrap();
        assert!(m.matches_or_parent_matches("build"));
        assert!(m.matches_or_parent_matches("build/out/app.js"));
        assert!(m.matches_or_parent_matches("node_modules/x/index.js"));
        assert!(!m.matches_or_parent_matches("src/build.rs"));
        // Patterns are anchored at the context root.
        assert!(!m.matches_or_parent_matches("src/build/x"));
    }

    #[test]
    fn the_file_format_follows_read_all() {
        let text =
            "\u{feff}# comment\n  # not a comment\n\n/abs/path\r\n ! spaced \n./dot/../x//y/\n!\n";
        assert_eq!(
            read_patterns(text),
            ["# not a comment", "abs/path", "!spaced", "x/y", "!"]
        );
        assert_eq!(clean("a/./b/../../c"), "c");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean(""), ".");
    }

    #[test]
    fn bad_patterns_are_refused_like_go_does() {
        for bad in ["[", "a[", "[]", "[a-]", "a\\", "[^]", "!"] {
            assert!(PatternMatcher::new(&[bad]).is_err(), "{bad:?} accepted");
        }
        for good in ["[a]", "[a-z]*", "\\[x\\]", "[*]", "a*b?c", "[[]", "[&&]"] {
            assert!(PatternMatcher::new(&[good]).is_ok(), "{good:?} refused");
        }
        // As in Go: `*` inside a class still becomes `[^/]*`, so `[*]` is the regex
        // `[[^/]*]`, a run of `[`, `^`, `/` then `]`.
        assert!(!matches("[*]", "*"));
        assert!(matches("[*]", "]"));
        assert!(matches("a[[]b", "a[b"));
        assert!(matches("a[&]b", "a&b"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "x"));
    }

    #[test]
    fn the_last_matching_pattern_wins() {
        let m = PatternMatcher::new(&read_patterns("*\n!src\nsrc/*.tmp\n!src/keep.tmp")).unwrap();
        assert!(m.matches_or_parent_matches("Makefile"));
        assert!(!m.matches_or_parent_matches("src/main.rs"));
        assert!(m.matches_or_parent_matches("src/x.tmp"));
        assert!(!m.matches_or_parent_matches("src/keep.tmp"));
    }

    #[test]
    fn parent_results_agree_with_the_full_check_on_a_walk() {
        let m = PatternMatcher::new(&read_patterns("docs\n!docs/keep\n**/*.log\n!important.log"))
            .unwrap();
        let (docs, docs_info) = m.matches_using_parent_results("docs", &MatchInfo::default());
        assert!(docs);
        let (keep, _) = m.matches_using_parent_results("docs/keep", &docs_info);
        assert!(!keep);
        let (other, _) = m.matches_using_parent_results("docs/other", &docs_info);
        assert!(other);
        let (log, _) = m.matches_using_parent_results("important.log", &MatchInfo::default());
        assert!(!log);
        assert!(m.must_walk_excluded_dir("docs"));
        assert!(!m.must_walk_excluded_dir("doc"));
    }

    #[test]
    fn excluded_directories_are_skipped_unless_a_re_include_names_them() {
        let m = PatternMatcher::new(&read_patterns("vendor\n!**/*.go")).unwrap();
        // Docker's quirk: `!**/*.go` does not start with `vendor/`, so vendor/ is skipped.
        assert!(!m.must_walk_excluded_dir("vendor"));
        let none = PatternMatcher::new(&read_patterns("vendor")).unwrap();
        assert!(!none.must_walk_excluded_dir("vendor"));
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_always_sent() {
        let patterns = keep_build_files(read_patterns("*\n"), Some("Dockerfile"));
        let m = PatternMatcher::new(&patterns).unwrap();
        assert!(!m.matches_or_parent_matches("Dockerfile"));
        assert!(!m.matches_or_parent_matches(".dockerignore"));
        assert!(m.matches_or_parent_matches("other"));

        let nested = keep_build_files(read_patterns("build\n"), Some("build/Dockerfile"));
        assert_eq!(nested, ["build", "!build/Dockerfile"]);
        let m = PatternMatcher::new(&nested).unwrap();
        assert!(m.must_walk_excluded_dir("build"));

        let untouched = keep_build_files(read_patterns("*.md\n"), Some("Dockerfile"));
        assert_eq!(untouched, ["*.md"]);
    }
}
