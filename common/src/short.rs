//! Short forms of long ids for people to read (stderr lines, step summaries). Never used
//! to name anything: the envelope always carries the full id.

/// The first 12 hex digits of a digest or image id, without its algorithm
/// (`sha256:3f2a1c9d…` → `3f2a1c9d0e1b`), as `docker images` shows ids.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.get(..12).unwrap_or(hex)
}

/// The first 7 characters of a commit id, as `git log --oneline` shows it.
pub fn short_commit(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_lose_their_algorithm_and_keep_twelve_digits() {
        let digest = "sha256:3f2a1c9d0e1b2c3d4e5f60718293a4b5c6d7e8f9";
        assert_eq!(short_digest(digest), "3f2a1c9d0e1b");
        assert_eq!(short_digest("3f2a1c9d0e1b2c3d"), "3f2a1c9d0e1b");
        assert_eq!(short_digest("sha256:abc"), "abc");
        assert_eq!(short_digest(""), "");
    }

    #[test]
    fn commits_keep_seven_characters() {
        assert_eq!(short_commit("3f2a1c9d0e1b"), "3f2a1c9");
        assert_eq!(short_commit("3f2a"), "3f2a");
    }
}
