//! Deciding what to do with each tag from what the registry and the local Engine say
//! (pure: observations in, decisions out; no I/O here).

/// What the registry has under one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The tag does not exist (or the repository is empty).
    Absent,
    /// The tag points at a manifest.
    At {
        /// The manifest digest (`Docker-Content-Digest`).
        digest: String,
        /// The digest of the image config it names, when it was read (single-image
        /// manifests only): equal to the local image id when it is the same image.
        config: Option<String>,
    },
}

/// What the local Engine knows of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// The image id (`sha256:…`, the digest of its config).
    pub id: String,
    /// Manifest digests this image is known by in the destination repository (from
    /// `RepoDigests`: earlier pushes or pulls).
    pub digests: Vec<String>,
}

/// What to do with one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagAction {
    /// The registry has the tag at this image already: nothing to send.
    Skip { digest: String },
    /// Upload (or re-point a tag whose manifest is already there).
    Push,
    /// The repository's tags are immutable and this one points at another image.
    Conflict { registry_digest: String },
}

/// Whether the registry alone shows the tag at the image with id `id`: it points at a
/// manifest whose config is that id (same config = same layers and settings). This needs no
/// Engine; any other answer ([`Remote::Absent`], another config, an index) is left to
/// [`decide_push`] with what the Engine knows.
pub fn is_at_image(id: &str, remote: &Remote) -> bool {
    matches!(remote, Remote::At { config: Some(config), .. } if !id.is_empty() && config == id)
}

/// Decides one tag of a push.
pub fn decide_push(local: &Local, remote: &Remote, immutable: bool) -> TagAction {
    match remote {
        Remote::Absent => TagAction::Push,
        Remote::At { digest, config } => {
            let same_manifest = local.digests.iter().any(|d| d == digest);
            // Same config digest = same layers and settings: the same image, even when it was
            // pushed from elsewhere and never pulled here.
            let same_config = config.as_deref() == Some(local.id.as_str());
            if same_manifest || same_config {
                TagAction::Skip {
                    digest: digest.clone(),
                }
            } else if immutable {
                TagAction::Conflict {
                    registry_digest: digest.clone(),
                }
            } else {
                TagAction::Push
            }
        }
    }
}

/// What to do with the destination tag of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromoteAction {
    /// The destination tag is already at the source digest.
    Skip,
    /// Write the source manifest under the destination tag.
    Put,
    /// The destination tag is immutable and points elsewhere.
    Conflict { registry_digest: String },
}

/// Decides a promotion of a manifest with `source_digest` to a tag now at `target`.
pub fn decide_promote(source_digest: &str, target: &Remote, immutable: bool) -> PromoteAction {
    match target {
        Remote::Absent => PromoteAction::Put,
        Remote::At { digest, .. } if digest == source_digest => PromoteAction::Skip,
        Remote::At { digest, .. } if immutable => PromoteAction::Conflict {
            registry_digest: digest.clone(),
        },
        Remote::At { .. } => PromoteAction::Put,
    }
}

/// The tags to push for an image: the tag of each local reference, then `extra`, each once.
pub fn tags_to_push(local_tags: &[String], extra: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in local_tags.iter().chain(extra) {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// Whether an error message from the Engine or a registry describes a passing condition
/// (network trouble, an overloaded or restarting registry) worth another attempt. Refusals
/// (unauthorized, denied, unknown name, invalid manifest) are not.
pub fn is_transient_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    const PERMANENT: &[&str] = &[
        "unauthorized",
        "authentication required",
        "denied",
        "forbidden",
        "name unknown",
        "manifest invalid",
        "tag invalid",
        "immutable",
        "no such image",
        "does not exist",
    ];
    const TRANSIENT: &[&str] = &[
        "connection refused",
        "connection reset",
        "connection closed",
        "broken pipe",
        "eof",
        "timeout",
        "timed out",
        "temporarily unavailable",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "internal server error",
        "too many requests",
        "toomanyrequests",
        " 500",
        " 502",
        " 503",
        " 504",
        " 429",
    ];
    !PERMANENT.iter().any(|p| m.contains(p)) && TRANSIENT.iter().any(|t| m.contains(t))
}

/// Whether an HTTP status from a registry is worth another attempt.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The manifest digest in a push status line (`git-1: digest: sha256:… size: 528`).
pub fn digest_in_status(status: &str) -> Option<String> {
    let start = status.find("digest: sha256:")? + "digest: ".len();
    let hex: String = status[start + "sha256:".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

/// A layer event of a push stream, by its status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// The Engine starts on a layer (`Preparing`): one more layer to account for.
    Preparing,
    /// Bytes are going up (`Pushing`).
    Pushing,
    /// The layer is in the registry: uploaded, already there, or mounted from another
    /// repository.
    Done(LayerOutcome),
}

/// How a layer got into the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOutcome {
    Pushed,
    Existed,
    Mounted,
}

/// Reads a push stream status.
pub fn layer_event(status: &str) -> Option<LayerEvent> {
    match status {
        "Preparing" => Some(LayerEvent::Preparing),
        "Pushing" => Some(LayerEvent::Pushing),
        "Pushed" => Some(LayerEvent::Done(LayerOutcome::Pushed)),
        "Layer already exists" => Some(LayerEvent::Done(LayerOutcome::Existed)),
        s if s.starts_with("Mounted from") => Some(LayerEvent::Done(LayerOutcome::Mounted)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(digest: &str, config: Option<&str>) -> Remote {
        Remote::At {
            digest: digest.into(),
            config: config.map(Into::into),
        }
    }

    fn local(id: &str, digests: &[&str]) -> Local {
        Local {
            id: id.into(),
            digests: digests.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_tag_at_a_known_digest_is_skipped() {
        let l = local("sha256:img", &["sha256:m1"]);
        assert_eq!(decide_push(&l, &Remote::Absent, false), TagAction::Push);
        assert_eq!(
            decide_push(&l, &at("sha256:m1", None), true),
            TagAction::Skip {
                digest: "sha256:m1".into()
            }
        );
        // Pushed from elsewhere, same image config: skipped as well.
        assert_eq!(
            decide_push(
                &local("sha256:img", &[]),
                &at("sha256:m9", Some("sha256:img")),
                true
            ),
            TagAction::Skip {
                digest: "sha256:m9".into()
            }
        );
    }

    #[test]
    fn only_a_manifest_with_the_image_id_as_config_settles_a_tag_without_the_engine() {
        assert!(is_at_image(
            "sha256:img",
            &at("sha256:m1", Some("sha256:img"))
        ));
        assert!(!is_at_image(
            "sha256:img",
            &at("sha256:m1", Some("sha256:other"))
        ));
        // An index (no config), a HEAD's answer, or no tag: the Engine must say.
        assert!(!is_at_image("sha256:img", &at("sha256:m1", None)));
        assert!(!is_at_image("sha256:img", &Remote::Absent));
        assert!(!is_at_image("", &at("sha256:m1", Some(""))));
        // What settles a tag without the Engine is a skip with it, too.
        let unknown = local("sha256:img", &[]);
        assert_eq!(
            decide_push(&unknown, &at("sha256:m1", Some("sha256:img")), true),
            TagAction::Skip {
                digest: "sha256:m1".into()
            }
        );
    }

    #[test]
    fn another_image_under_the_tag_is_overwritten_unless_immutable() {
        let l = local("sha256:img", &["sha256:m1"]);
        let other = at("sha256:m2", Some("sha256:other"));
        assert_eq!(decide_push(&l, &other, false), TagAction::Push);
        assert_eq!(
            decide_push(&l, &other, true),
            TagAction::Conflict {
                registry_digest: "sha256:m2".into()
            }
        );
    }

    #[test]
    fn promotions() {
        assert_eq!(
            decide_promote("sha256:a", &Remote::Absent, true),
            PromoteAction::Put
        );
        assert_eq!(
            decide_promote("sha256:a", &at("sha256:a", None), true),
            PromoteAction::Skip
        );
        assert_eq!(
            decide_promote("sha256:a", &at("sha256:b", None), false),
            PromoteAction::Put
        );
        assert_eq!(
            decide_promote("sha256:a", &at("sha256:b", None), true),
            PromoteAction::Conflict {
                registry_digest: "sha256:b".into()
            }
        );
    }

    #[test]
    fn tags_are_unique_and_ordered() {
        let tags = tags_to_push(
            &["git-1".into(), "main".into()],
            &["main".into(), "latest".into()],
        );
        assert_eq!(tags, ["git-1", "main", "latest"]);
    }

    #[test]
    fn transient_messages() {
        for m in [
            "received unexpected HTTP status: 503 Service Unavailable",
            "Put \"http://x/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
            "net/http: TLS handshake timeout",
            "unexpected EOF",
            "toomanyrequests: slow down",
        ] {
            assert!(is_transient_message(m), "{m}");
        }
        for m in [
            "unauthorized: authentication required",
            "denied: requested access to the resource is denied",
            "name unknown: repository name not known to registry",
            "tag does not exist: x",
        ] {
            assert!(!is_transient_message(m), "{m}");
        }
    }

    #[test]
    fn push_stream_lines() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            digest_in_status(&format!("git-1: digest: sha256:{hex} size: 528")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_in_status("Pushed"), None);
        assert_eq!(
            layer_event("Mounted from team/base"),
            Some(LayerEvent::Done(LayerOutcome::Mounted))
        );
        assert_eq!(
            layer_event("Layer already exists"),
            Some(LayerEvent::Done(LayerOutcome::Existed))
        );
        assert_eq!(layer_event("Waiting"), None);
    }
}
