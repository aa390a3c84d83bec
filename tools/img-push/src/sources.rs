//! Choosing what to push: the images of `--image` or of the envelope (filtered by
//! `--name`), each with its tags, checked before anything is asked of the outside (pure).

use crate::config::PushRequest;
use crate::plan;
use crate::reference::{Destination, tag_of};
use common::envelope::Envelope;
use common::reference::{Reference, check_digest, check_path};
use common::{Error, Result};
use std::collections::BTreeMap;

/// One image to push: where it is in the envelope, its local reference, its tags.
#[derive(Debug, Clone)]
pub struct Source {
    /// Index in `envelope.images`, when it came from there.
    pub index: Option<usize>,
    pub name: String,
    /// What to inspect and tag from: the image id, else its first local reference.
    pub local: String,
    /// The image id: known from the start when the envelope or `--image` gives it as a
    /// digest (then the registry alone can tell that a tag is at this image), else once
    /// inspected.
    pub id: Option<String>,
    pub tags: Vec<String>,
}

/// The images to push, from `--image` or the envelope (filtered by `--name`), checked.
pub fn sources(
    request: &PushRequest,
    destination: &Destination,
    envelope: &Envelope,
) -> Result<Vec<Source>> {
    let sources = match request.images.is_empty() {
        false => request
            .images
            .iter()
            .map(|text| from_image_flag(text, request, destination))
            .collect::<Result<Vec<_>>>()?,
        true => from_envelope(request, envelope)?,
    };
    check_sources(&sources, destination)?;
    Ok(sources)
}

/// One `--image`: a local reference, or an image id (which names no repository, so its
/// tags are the `--tag` ones only and `--repository` must say where it goes).
fn from_image_flag(text: &str, request: &PushRequest, destination: &Destination) -> Result<Source> {
    if check_digest(text).is_ok() {
        let Destination::Repository(repository) = destination else {
            return Err(Error::usage(format!(
                "--image {text}: an image id has no name to make a repository from: \
                 use --repository, or a named reference (name:tag)"
            )));
        };
        return Ok(Source {
            index: None,
            name: repository
                .path
                .rsplit('/')
                .next()
                .unwrap_or("image")
                .to_owned(),
            local: text.to_owned(),
            id: Some(text.to_owned()),
            tags: plan::tags_to_push(&[], &request.tags),
        });
    }
    let parsed = Reference::parse(text).map_err(|why| Error::usage(format!("--image: {why}")))?;
    let own = tag_of(text).map_err(Error::usage)?;
    Ok(Source {
        index: None,
        name: parsed.name().to_owned(),
        local: text.to_owned(),
        id: None,
        tags: plan::tags_to_push(&own.into_iter().collect::<Vec<_>>(), &request.tags),
    })
}

/// The envelope's images (those of `--name`, when given).
fn from_envelope(request: &PushRequest, envelope: &Envelope) -> Result<Vec<Source>> {
    for name in &request.names {
        if !envelope.images.iter().any(|i| &i.name == name) {
            return Err(Error::usage(format!(
                "--name {name}: the input envelope has no image of that name"
            )));
        }
    }
    let mut sources = Vec::new();
    for (index, image) in envelope.images.iter().enumerate() {
        if !request.names.is_empty() && !request.names.contains(&image.name) {
            continue;
        }
        let mut own = Vec::new();
        for tag in &image.tags {
            let parsed = tag_of(tag).map_err(|why| {
                Error::usage(format!("image {} in the envelope: {why}", image.name))
            })?;
            own.extend(parsed);
        }
        let local = image
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .or_else(|| image.tags.first().cloned())
            .ok_or_else(|| {
                Error::usage(format!(
                    "image {} in the envelope has neither an id nor a tag to push",
                    image.name
                ))
            })?;
        // img-build's id is the digest of the image config, which names every layer by
        // content: a registry manifest with that config is this image.
        let id = Some(local.clone()).filter(|l| check_digest(l).is_ok());
        sources.push(Source {
            index: Some(index),
            name: image.name.clone(),
            local,
            id,
            tags: plan::tags_to_push(&own, &request.tags),
        });
    }
    Ok(sources)
}

/// Something to push, one image per `--repository`, a tag for each, names fit for a
/// repository.
fn check_sources(sources: &[Source], destination: &Destination) -> Result<()> {
    if sources.is_empty() {
        return Err(Error::usage(
            "no images to push: the input envelope has no images[] (pipe img-build into \
             img-push) and no --image was given",
        ));
    }
    let one_repository = matches!(destination, Destination::Repository(_));
    if sources.len() > 1 && one_repository {
        return Err(Error::usage(format!(
            "--repository names one repository, but there are {} images ({}): use --registry, \
             or --name/--image to pick one",
            sources.len(),
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for source in sources {
        if source.tags.is_empty() {
            return Err(Error::usage(format!(
                "image {} has no tag to push: pass --tag",
                source.name
            )));
        }
        if !one_repository {
            check_path(&source.name)
                .map_err(|why| Error::usage(format!("image name {}: {why}", source.name)))?;
        }
    }
    Ok(())
}

/// Refuses two images going to the same `repository:tag` (checked before anything is sent:
/// with --ecr the host is not known yet, but it is the same for every image).
pub fn check_tag_claims(sources: &[Source], destination: &Destination) -> Result<()> {
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        let Some(repository) = destination.repository_for(&source.name, Some("ecr")) else {
            continue;
        };
        for tag in &source.tags {
            let target = repository.with_tag(tag);
            if let Some(other) = claimed.insert(target, index)
                && other != index
            {
                let shown = match destination {
                    Destination::Ecr => format!("{}:{tag}", repository.path),
                    _ => repository.with_tag(tag),
                };
                return Err(Error::usage(format!(
                    "{shown} would receive two images ({} and {})",
                    sources[other].local, source.local
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Job, from_flags};

    fn envelope(images: serde_json::Value) -> Envelope {
        serde_json::from_value(serde_json::json!({"images": images})).unwrap()
    }

    /// The sources a command line chooses from `envelope`.
    fn sources_of(flags: &[&str], envelope: &Envelope) -> Result<Vec<Source>> {
        let config: Config = from_flags(flags);
        let Job::Push(request) = &config.job else {
            panic!("not a push: {flags:?}")
        };
        sources(request, &config.destination, envelope)
    }

    #[test]
    fn sources_come_from_the_envelope_or_image_flags() {
        let env = envelope(serde_json::json!([
            {"name": "api", "id": "sha256:1", "tags": ["api:git-1", "localhost:5000/x/api:main"]},
            {"name": "auth", "tags": ["auth:git-1"]}
        ]));
        let flags = ["--registry", "r.example.com", "--tag", "latest"];
        let found = sources_of(&flags, &env).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].tags, ["git-1", "main", "latest"]);
        assert_eq!(found[0].local, "sha256:1");
        assert_eq!(found[1].local, "auth:git-1");
        // Neither is known by a full image id: both are looked up in the Engine first.
        assert_eq!((&found[0].id, &found[1].id), (&None, &None));
        let built = envelope(serde_json::json!([
            {"name": "api", "id": format!("sha256:{}", "b".repeat(64)), "tags": ["api:git-1"]}
        ]));
        let known = sources_of(&flags, &built).unwrap();
        assert_eq!(known[0].id.as_deref(), Some(known[0].local.as_str()));

        let flags = ["--registry", "r.example.com", "--name", "auth"];
        assert_eq!(sources_of(&flags, &env).unwrap().len(), 1);

        let id = format!("sha256:{}", "a".repeat(64));
        let flags = [
            "--repository",
            "r.example.com/x/a",
            "--image",
            &id,
            "-t",
            "1",
        ];
        let by_id = sources_of(&flags, &env).unwrap();
        assert_eq!(
            (by_id[0].name.as_str(), by_id[0].tags.as_slice()),
            ("a", &["1".to_owned()][..])
        );
        assert_eq!(by_id[0].id.as_deref(), Some(id.as_str()));
        let flags = ["--registry", "r.example.com", "--image", &id];
        assert!(
            sources_of(&flags, &env)
                .unwrap_err()
                .to_string()
                .contains("an image id has no name")
        );

        let flags = ["--repository", "r.example.com/a", "--image", "team/web:1"];
        let only = sources_of(&flags, &env).unwrap();
        assert_eq!(
            (only[0].name.as_str(), only[0].tags.as_slice()),
            ("web", &["1".to_owned()][..])
        );
    }

    #[test]
    fn bad_sources_are_usage_errors() {
        let env = envelope(serde_json::json!([
            {"name": "api", "tags": ["api:1"]}, {"name": "auth", "tags": ["auth:1"]}
        ]));
        let cases: &[(&[&str], &str)] = &[
            (&["--registry", "r.example.com"], "no images to push"),
            (
                &["--repository", "r.example.com/a"],
                "--repository names one repository",
            ),
            (
                &["--registry", "r.example.com", "--image", "Bad:ref"],
                "not an image reference",
            ),
            (
                &["--registry", "r.example.com", "--name", "web"],
                "no image of that name",
            ),
        ];
        for (i, (flags, needle)) in cases.iter().enumerate() {
            let input = if i == 0 {
                Envelope::default()
            } else {
                env.clone()
            };
            let err = sources_of(flags, &input).unwrap_err();
            assert_eq!(err.exit().code(), 2, "{flags:?}");
            assert!(err.to_string().contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn two_images_may_not_claim_one_tag() {
        let env = envelope(serde_json::json!([
            {"name": "api", "tags": ["api:1"]}, {"name": "api2", "tags": ["api2:1"]}
        ]));
        let found = sources_of(&["--ecr"], &env).unwrap();
        assert!(check_tag_claims(&found, &Destination::Ecr).is_ok());
        let flags = [
            "--registry",
            "r.example.com",
            "--image",
            "a/web:1",
            "--image",
            "b/web:1",
        ];
        let found = sources_of(&flags, &env).unwrap();
        let err = check_tag_claims(&found, &from_flags(&flags).destination).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(
            err.to_string()
                .contains("r.example.com/web:1 would receive two images"),
            "{err}"
        );
    }
}
