//! Which container gets which image (pure).
//!
//! A container changes when its image's repository is one img-push pushed upstream
//! (`images[].pushed[]`): it gets that push's digest reference, so the service runs exactly
//! the bytes that were pushed, whatever happens to the tag later. `--container NAME=REF`
//! overrides the match for one container.

use common::envelope::Envelope;
use common::reference::Reference;
use common::{Error, Result};
use std::collections::BTreeMap;

/// An image on offer: the repository it was pushed to and its digest reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOffer {
    pub repository: String,
    pub reference: String,
}

/// The repository of an image reference, without tag or digest:
/// `host/ns/app:tag` → `host/ns/app`, `app@sha256:…` → `docker.io/library/app`.
///
/// Docker Hub's short forms are expanded so that `nginx` and `docker.io/library/nginx`
/// compare equal; a registry host keeps its port (`localhost:5000/app`).
pub fn repository_of(image: &str) -> String {
    // An image ECS would not accept either is compared as it is written.
    Reference::parse(image).map_or_else(|_| image.to_owned(), |r| r.normalized_repository())
}

/// The images pushed upstream, one per repository (every tag of one push shares its
/// digest). A push made with `--dry-run` put nothing in the registry and cannot be
/// deployed: that is bad input.
pub fn offers_from(envelope: &Envelope) -> Result<Vec<ImageOffer>> {
    let mut offers: BTreeMap<String, ImageOffer> = BTreeMap::new();
    for (_, pushed) in envelope.deployable_pushes()? {
        let repository = repository_of(&pushed.repository);
        if let Some(seen) = offers.get(&repository)
            && seen.reference != pushed.reference
        {
            return Err(Error::usage(format!(
                "two different images were pushed to {repository} upstream ({} and {}): \
                 which one to deploy is ambiguous",
                seen.reference, pushed.reference
            )));
        }
        offers.insert(
            repository.clone(),
            ImageOffer {
                repository,
                reference: pushed.reference.clone(),
            },
        );
    }
    Ok(offers.into_values().collect())
}

/// `--container NAME=REF`, checked: REF must be an image reference, or ECS would be given a
/// task definition whose tasks can never pull their image.
pub fn parse_container_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, reference)) if !name.trim().is_empty() && !reference.trim().is_empty() => {
            Reference::parse(reference.trim()).map_err(|e| e.to_string())?;
            Ok((name.trim().to_owned(), reference.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=IMAGE_REFERENCE, got '{text}'")),
    }
}

/// `--env CONTAINER:KEY=VALUE`, checked.
pub fn parse_env_override(text: &str) -> Result<EnvOverride, String> {
    let bad = || format!("expected CONTAINER:KEY=VALUE, got '{text}'");
    let (container, assignment) = text.split_once(':').ok_or_else(bad)?;
    let (key, value) = assignment.split_once('=').ok_or_else(bad)?;
    if container.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok(EnvOverride {
        container: container.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// One `--env CONTAINER:KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    pub container: String,
    pub key: String,
    pub value: String,
}

/// A container of the task definition: its name and current image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub name: String,
    pub image: String,
}

/// Decides the new image of each container: `overrides` first (every name must exist),
/// then a pushed repository equal to the container's. Returns `(container, new image)`
/// for the containers that match, whether or not the image differs.
pub fn choose_images(
    service: &str,
    containers: &[ContainerImage],
    offers: &[ImageOffer],
    overrides: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    for (name, _) in overrides {
        if !containers.iter().any(|c| &c.name == name) {
            return Err(Error::usage(format!(
                "--container {name}=…: service {service} has no container {name} (it has: {})",
                names(containers)
            )));
        }
    }
    let chosen: Vec<(String, String)> = containers
        .iter()
        .filter_map(|c| {
            let by_flag = overrides.iter().find(|(name, _)| name == &c.name);
            let by_push = || {
                let repository = repository_of(&c.image);
                offers.iter().find(|o| o.repository == repository)
            };
            match by_flag {
                Some((_, reference)) => Some((c.name.clone(), reference.clone())),
                None => by_push().map(|o| (c.name.clone(), o.reference.clone())),
            }
        })
        .collect();
    Ok(chosen)
}

/// The error for a service none of whose containers runs an image on offer.
pub fn no_match_error(
    service: &str,
    containers: &[ContainerImage],
    offers: &[ImageOffer],
) -> Error {
    let on_offer = offers
        .iter()
        .map(|o| o.repository.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let containers = containers
        .iter()
        .map(|c| format!("{} ({})", c.name, repository_of(&c.image)))
        .collect::<Vec<_>>()
        .join(", ");
    Error::usage(format!(
        "no container of service {service} runs an image pushed upstream: containers {containers}; \
         images on offer {}; use --container NAME=REF to choose",
        if on_offer.is_empty() {
            "none"
        } else {
            &on_offer
        }
    ))
}

fn names(containers: &[ContainerImage]) -> String {
    containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::envelope::{Image, Pushed};

    #[test]
    fn repositories_drop_tags_and_digests_and_keep_ports() {
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/auth-server";
        assert_eq!(repository_of(&format!("{ecr}:latest")), ecr);
        assert_eq!(
            repository_of(&format!("{ecr}@sha256:{}", "ab".repeat(32))),
            ecr
        );
        assert_eq!(
            repository_of(&format!("{ecr}:v1@sha256:{}", "ab".repeat(32))),
            ecr
        );
        assert_eq!(repository_of("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository_of("nginx:1.27"), "docker.io/library/nginx");
        assert_eq!(repository_of("team/app"), "docker.io/team/app");
    }

    fn pushed(repository: &str, digest: &str) -> Pushed {
        Pushed {
            repository: repository.into(),
            tag: "git-abc".into(),
            digest: digest.into(),
            reference: format!("{repository}@{digest}"),
            ..Default::default()
        }
    }

    fn envelope(pushes: Vec<Pushed>) -> Envelope {
        Envelope {
            images: vec![Image {
                name: "api".into(),
                pushed: pushes,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn every_tag_of_one_push_is_one_offer() {
        let mut second = pushed("r.example/api", "sha256:1");
        second.tag = "main".into();
        let offers = offers_from(&envelope(vec![pushed("r.example/api", "sha256:1"), second]));
        assert_eq!(
            offers.unwrap(),
            vec![ImageOffer {
                repository: "r.example/api".into(),
                reference: "r.example/api@sha256:1".into()
            }]
        );
    }

    #[test]
    fn a_dry_run_push_cannot_be_deployed() {
        let mut p = pushed("r.example/api", "sha256:1");
        p.dry_run = true;
        let err = offers_from(&envelope(vec![p])).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(err.to_string().contains("--dry-run"), "{err}");
    }

    #[test]
    fn two_digests_for_one_repository_are_ambiguous() {
        let err = offers_from(&envelope(vec![
            pushed("r.example/api", "sha256:1"),
            pushed("r.example/api", "sha256:2"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
    }

    fn containers() -> Vec<ContainerImage> {
        vec![
            ContainerImage {
                name: "app".into(),
                image: "r.example/api:latest".into(),
            },
            ContainerImage {
                name: "proxy".into(),
                image: "envoyproxy/envoy:v1".into(),
            },
        ]
    }

    #[test]
    fn containers_match_by_repository_and_flags_override() {
        let offers = vec![ImageOffer {
            repository: "r.example/api".into(),
            reference: "r.example/api@sha256:1".into(),
        }];
        let chosen = choose_images("api", &containers(), &offers, &[]).unwrap();
        assert_eq!(
            chosen,
            vec![("app".into(), "r.example/api@sha256:1".into())]
        );

        let overrides = vec![("proxy".to_owned(), "envoyproxy/envoy:v2".to_owned())];
        let chosen = choose_images("api", &containers(), &offers, &overrides).unwrap();
        assert_eq!(chosen.len(), 2);
        assert!(chosen.contains(&("proxy".into(), "envoyproxy/envoy:v2".into())));
    }

    #[test]
    fn an_override_for_a_missing_container_is_bad_input() {
        let overrides = vec![("db".to_owned(), "postgres:16".to_owned())];
        let err = choose_images("api", &containers(), &[], &overrides).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        assert!(err.to_string().contains("it has: app, proxy"), "{err}");
    }

    #[test]
    fn the_no_match_error_lists_containers_and_offers() {
        let offers = vec![ImageOffer {
            repository: "r.example/web".into(),
            reference: "r.example/web@sha256:1".into(),
        }];
        let err = no_match_error("api", &containers(), &offers).to_string();
        assert!(err.contains("app (r.example/api)"), "{err}");
        assert!(err.contains("images on offer r.example/web"), "{err}");
    }

    #[test]
    fn overrides_are_parsed_strictly() {
        let digest = format!("r/x@sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_container_override(&format!("app={digest}")).unwrap(),
            ("app".into(), digest)
        );
        assert!(parse_container_override("app").is_err());
        assert!(parse_container_override("=x").is_err());
        let err = parse_container_override("app=NOT A REF").unwrap_err();
        assert!(
            err.contains("\"NOT A REF\" is not an image reference"),
            "{err}"
        );
        assert!(parse_container_override("app=r/x@sha256:1").is_err());
        assert_eq!(
            parse_env_override("app:MODE=a=b").unwrap(),
            EnvOverride {
                container: "app".into(),
                key: "MODE".into(),
                value: "a=b".into()
            }
        );
        assert!(parse_env_override("MODE=1").is_err());
        assert!(parse_env_override("app:=1").is_err());
    }
}
