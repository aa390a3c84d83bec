//! How digests are shown to people (kept apart so that one shared display can replace it).

/// `sha256:` and the first 12 hex digits, `(unknown)` for none.
pub fn short_digest(digest: &str) -> &str {
    match digest {
        "" => "(unknown)",
        digest => &digest[..digest.len().min(19)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_for_people() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&digest), "sha256:abababababab");
        assert_eq!(short_digest(""), "(unknown)");
        assert_eq!(short_digest("sha256:1"), "sha256:1");
    }
}
