//! The `.dockerignore` reader and matcher (img-build's `dockerignore` module): any file gives
//! patterns, a matcher or an error; the two ways of matching a path (with and without the
//! parent's results) agree.
#![no_main]

// img-build's own source file, compiled here without the rest of img-build (bollard, tonic):
// the module is pure and needs only `regex`.
#[allow(dead_code)]
#[path = "../../tools/img-build/src/dockerignore.rs"]
mod dockerignore;

use dockerignore::{MatchInfo, PatternMatcher, read_patterns};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (file, path) = input;
    let patterns = read_patterns(file);
    let Ok(matcher) = PatternMatcher::new(&patterns) else {
        return;
    };
    // The walker sees paths relative to the context: never rooted, never above it, never
    // the context itself.
    let path = dockerignore::clean(path);
    if path.starts_with('/') || path == "." || path == ".." || path.starts_with("../") {
        return;
    }
    let direct = matcher.matches_or_parent_matches(&path);
    // Walk down to `path` as the context walker does, carrying each parent's results.
    let mut info = MatchInfo::default();
    let mut so_far = String::new();
    let mut walked = false;
    for part in path.split('/') {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        (walked, info) = matcher.matches_using_parent_results(&so_far, &info);
    }
    assert_eq!(direct, walked, "{patterns:?} on {path:?}");
    let _ = matcher.must_walk_excluded_dir(&path);
});
