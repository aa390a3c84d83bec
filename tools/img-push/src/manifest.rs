//! Manifests as a registry stores them: exact bytes, media type, digest (pure).

use sha2::Digest as _;

/// The manifest types a push or a promotion may meet, single images and indexes alike.
pub const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json";

/// A manifest as stored: its exact bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// The config digest of a single-image manifest (`config.digest`), which is the image id
    /// Docker shows locally.
    pub fn config_digest(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.bytes).ok()?;
        value["config"]["digest"].as_str().map(str::to_owned)
    }
}

/// The sha256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_know_their_config_and_digest() {
        let bytes = br#"{"schemaVersion":2,"config":{"digest":"sha256:abc"}}"#.to_vec();
        let manifest = Manifest {
            digest: sha256_digest(&bytes),
            media_type: "x".into(),
            bytes,
        };
        assert_eq!(manifest.config_digest().as_deref(), Some("sha256:abc"));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
