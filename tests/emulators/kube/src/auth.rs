//! Who may call a cluster: a bearer token equal to the static token in the kubeconfig.
//! (EKS tokens, `k8s-aws-v1.` presigned STS URLs, are not checked yet: see README.md.)

/// Whether the `Authorization` header value carries `token`. Compared in constant time:
/// the token is a credential.
pub fn bearer_ok(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Paths a real API server answers without credentials (health checks).
pub fn anonymous_ok(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/livez")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(bearer_ok(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_ok(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_ok(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_ok(None, "s3cret"));
        assert!(anonymous_ok("/healthz") && !anonymous_ok("/api"));
    }
}
