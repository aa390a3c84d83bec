//! Writing what was done into the envelope: one `images[].pushed[]` entry per tag.

use crate::reference::Repository;
use crate::sources::Source;
use common::envelope::{Envelope, Image, Pushed};

/// How one job ended, per tag.
pub struct JobResult {
    pub source: Source,
    pub pushed: Vec<Pushed>,
}

/// The entry for `repository:tag` at `digest`.
pub fn entry(
    repository: &Repository,
    tag: &str,
    digest: &str,
    skipped: bool,
    dry_run: bool,
) -> Pushed {
    Pushed {
        repository: repository.to_string(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
        reference: match digest {
            "" => String::new(),
            digest => repository.by_digest(digest),
        },
        skipped,
        dry_run,
        extra: Default::default(),
    }
}

/// Adds a job's entries to its image in the envelope (replacing entries for the same
/// repository and tag), creating the image entry for an `--image` or `--name`.
pub fn record(envelope: &mut Envelope, result: &JobResult) {
    if result.pushed.is_empty() {
        return;
    }
    let image = match result.source.index {
        Some(index) => &mut envelope.images[index],
        None => {
            let position = envelope
                .images
                .iter()
                .position(|i| i.name == result.source.name);
            match position {
                Some(position) => &mut envelope.images[position],
                None => {
                    envelope.images.push(Image {
                        name: result.source.name.clone(),
                        id: result.source.id.clone(),
                        tags: match result.source.local.starts_with("sha256:") {
                            true => Vec::new(),
                            false => vec![result.source.local.clone()],
                        },
                        ..Image::default()
                    });
                    envelope.images.last_mut().expect("just pushed")
                }
            }
        }
    };
    for entry in &result.pushed {
        image
            .pushed
            .retain(|p| !(p.repository == entry.repository && p.tag == entry.tag));
        image.pushed.push(entry.clone());
    }
}

/// As [`record`], creating a bare image entry for a `--name` the envelope lacks.
pub fn record_promotion(envelope: &mut Envelope, result: &JobResult) {
    if result.source.index.is_none()
        && !envelope.images.iter().any(|i| i.name == result.source.name)
    {
        envelope.images.push(Image {
            name: result.source.name.clone(),
            ..Image::default()
        });
    }
    let source = Source {
        index: envelope
            .images
            .iter()
            .position(|i| i.name == result.source.name),
        ..result.source.clone()
    };
    record(
        envelope,
        &JobResult {
            source,
            pushed: result.pushed.clone(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_replace_earlier_ones_for_the_same_tag() {
        let mut env: Envelope = serde_json::from_value(
            serde_json::json!({"images": [{"name": "api", "tags": ["api:1"]}]}),
        )
        .unwrap();
        let repo = Repository {
            host: "r.example.com".into(),
            path: "api".into(),
        };
        let source = Source {
            index: Some(0),
            name: "api".into(),
            local: "api:1".into(),
            id: None,
            tags: vec!["1".into()],
        };
        for digest in ["sha256:a", "sha256:b"] {
            record(
                &mut env,
                &JobResult {
                    source: source.clone(),
                    pushed: vec![entry(&repo, "1", digest, false, false)],
                },
            );
        }
        assert_eq!(env.images[0].pushed.len(), 1);
        assert_eq!(
            env.images[0].pushed[0].reference,
            "r.example.com/api@sha256:b"
        );
    }
}
