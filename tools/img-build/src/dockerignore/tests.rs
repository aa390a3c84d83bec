//! The cases of moby/patternmatcher and buildkit's dockerignore, and Docker's documented
//! examples.

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
    let m =
        PatternMatcher::new(&read_patterns("docs\n!docs/keep\n**/*.log\n!important.log")).unwrap();
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
