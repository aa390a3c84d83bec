//! Which container gets which image (pure).
//!
//! Every container and initContainer of a pod template (Deployment, StatefulSet, DaemonSet,
//! ReplicaSet, Job, CronJob, Pod) whose image is one pushed upstream gets the pushed digest
//! reference, so the cluster runs exactly the bytes that were pushed. An image matches a
//! push when its repository is the pushed repository (compared after Docker's normalisation,
//! [`common::reference`]), or else when its name (the last path component) is the envelope
//! image's name (`image: api-server` in a manifest, `images[].name: api-server`).
//! `--image NAME=REF` wins over both.

use crate::manifests::Manifest;
use common::Result;
use common::envelope::Envelope;
use common::reference::Reference;
use serde_json::Value;

/// An image on offer: what it matches, and the reference it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The envelope image's name, or the `--image` NAME.
    pub name: String,
    /// The normalised repository it matches (`docker.io/library/api`, `host/team/api`).
    pub repository: String,
    /// What a matching container gets.
    pub reference: String,
    /// From `--image` (matched first).
    pub from_flag: bool,
}

/// One container whose image was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// `Kind namespace/name` of the object.
    pub object: String,
    pub container: String,
    pub from: String,
    pub to: String,
}

/// What substituting images did across all manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substitution {
    pub replaced: Vec<Replacement>,
    /// Offers that matched no container (a warning: probably a wrong manifest or name).
    pub unmatched: Vec<String>,
    /// `(object, container, image)` left on a tag, which may move under the cluster's feet.
    pub mutable: Vec<(String, String, String)>,
}

/// `--image NAME=REF`, checked.
pub fn parse_image_override(text: &str) -> Result<(String, String), String> {
    let (name, reference) = text
        .split_once('=')
        .filter(|(n, r)| !n.trim().is_empty() && !r.trim().is_empty())
        .ok_or_else(|| format!("expected NAME=IMAGE_REFERENCE, got '{text}'"))?;
    Reference::parse(reference.trim()).map_err(|e| e.to_string())?;
    Ok((name.trim().to_owned(), reference.trim().to_owned()))
}

/// The offers: `--image` overrides first, then every push upstream. A push made with
/// `--dry-run` put nothing in the registry: that is bad input.
pub fn offers(envelope: &Envelope, overrides: &[(String, String)]) -> Result<Vec<Offer>> {
    let mut offers: Vec<Offer> = overrides
        .iter()
        .map(|(name, reference)| Offer {
            name: name.clone(),
            repository: normalized_repository(name).unwrap_or_else(|| name.clone()),
            reference: reference.clone(),
            from_flag: true,
        })
        .collect();
    for (image, pushed) in envelope.deployable_pushes()? {
        let repository =
            normalized_repository(&pushed.repository).unwrap_or(pushed.repository.clone());
        // A promotion adds the promoted repository after the original: both stay on offer,
        // each matched by its own repository; by name, the last one pushed wins.
        offers.retain(|o| o.from_flag || o.repository != repository);
        offers.push(Offer {
            name: image.name.clone(),
            repository,
            reference: pushed.reference.clone(),
            from_flag: false,
        });
    }
    Ok(offers)
}

fn normalized_repository(image: &str) -> Option<String> {
    Reference::parse(image)
        .ok()
        .map(|r| r.normalized_repository())
}

/// The offer for a container's `image`: a flag's before a push's; by repository before by
/// name; among pushes by name, the last.
fn offer_for<'a>(image: &str, offers: &'a [Offer]) -> Option<&'a Offer> {
    let parsed = Reference::parse(image).ok()?;
    let repository = parsed.normalized_repository();
    let name = parsed.name();
    let matches = |o: &&Offer| o.repository == repository;
    let named = |o: &&Offer| o.name == name || o.name == image;
    let flags = || offers.iter().filter(|o| o.from_flag);
    let pushes = || offers.iter().filter(|o| !o.from_flag);
    flags()
        .find(matches)
        .or_else(|| flags().find(named))
        .or_else(|| pushes().find(matches))
        .or_else(|| pushes().rfind(named))
}

/// The pod spec of an object of `kind`, where it has one.
pub fn pod_spec_mut<'a>(kind: &str, object: &'a mut Value) -> Option<&'a mut Value> {
    let spec = match kind {
        "Pod" => object.get_mut("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            object.pointer_mut("/spec/template/spec")
        }
        "CronJob" => object.pointer_mut("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }?;
    spec.is_object().then_some(spec)
}

/// Replaces matching images in every manifest, and says what it did.
pub fn substitute(manifests: &mut [Manifest], offers: &[Offer]) -> Substitution {
    let mut result = Substitution::default();
    let mut used = vec![false; offers.len()];
    for manifest in manifests.iter_mut() {
        let object = manifest.display_name();
        let kind = manifest.kind().to_owned();
        let Some(spec) = pod_spec_mut(&kind, &mut manifest.object) else {
            continue;
        };
        for list in ["initContainers", "containers"] {
            let Some(Value::Array(containers)) = spec.get_mut(list) else {
                continue;
            };
            for container in containers {
                let name = container["name"].as_str().unwrap_or_default().to_owned();
                let Some(image) = container["image"].as_str().map(str::to_owned) else {
                    continue;
                };
                let chosen = offer_for(&image, offers);
                if let Some(offer) = chosen {
                    if let Some(i) = offers.iter().position(|o| o == offer) {
                        used[i] = true;
                    }
                    if offer.reference != image {
                        container["image"] = Value::String(offer.reference.clone());
                        result.replaced.push(Replacement {
                            object: object.clone(),
                            container: name.clone(),
                            from: image.clone(),
                            to: offer.reference.clone(),
                        });
                    }
                }
                let now = chosen.map_or(image.as_str(), |o| o.reference.as_str());
                if !now.contains('@') {
                    result.mutable.push((object.clone(), name, now.to_owned()));
                }
            }
        }
    }
    result.unmatched = offers
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(o, _)| o.name.clone())
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    result
}

/// The images of every container of `object` (a manifest or live object), in order.
pub fn images_of(kind: &str, object: &Value) -> Vec<String> {
    let mut copy = object.clone();
    let Some(spec) = pod_spec_mut(kind, &mut copy) else {
        return Vec::new();
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec.get(*list).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse;
    use common::envelope::{Image, Pushed};

    const DIGEST: &str = "sha256:0123456789012345678901234567890123456789012345678901234567890123";
    const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn envelope(pushes: &[(&str, &str)]) -> Envelope {
        Envelope {
            images: pushes
                .iter()
                .map(|(name, repository)| Image {
                    name: (*name).into(),
                    pushed: vec![Pushed {
                        repository: (*repository).into(),
                        tag: "git-1".into(),
                        digest: DIGEST.into(),
                        reference: format!("{repository}@{DIGEST}"),
                        ..Pushed::default()
                    }],
                    ..Image::default()
                })
                .collect(),
            ..Envelope::default()
        }
    }

    fn manifests() -> Vec<Manifest> {
        let text = format!(
            "apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: shop}}
spec:
  template:
    spec:
      initContainers: [{{name: migrate, image: '{ECR}/api:old'}}]
      containers:
      - {{name: app, image: 'api-server:dev'}}
      - {{name: proxy, image: nginx}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly}}
spec: {{jobTemplate: {{spec: {{template: {{spec: {{containers: [{{name: job, image: 'docker.io/library/nginx:1'}}]}}}}}}}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: c}}
data: {{image: api-server}}
"
        );
        parse("app.yaml", &text).unwrap()
    }

    #[test]
    fn images_match_by_normalised_repository_or_by_name() {
        let offers = offers(
            &envelope(&[
                ("api", &format!("{ECR}/api")),
                ("api-server", &format!("{ECR}/api-server")),
                ("unused", &format!("{ECR}/unused")),
            ]),
            &[],
        )
        .unwrap();
        let mut manifests = manifests();
        let result = substitute(&mut manifests, &offers);
        let replaced: Vec<(&str, &str)> = result
            .replaced
            .iter()
            .map(|r| (r.container.as_str(), r.to.as_str()))
            .collect();
        let api = format!("{ECR}/api@{DIGEST}");
        let api_server = format!("{ECR}/api-server@{DIGEST}");
        assert_eq!(
            replaced,
            [("migrate", api.as_str()), ("app", api_server.as_str())]
        );
        assert_eq!(result.unmatched, ["unused"]);
        let mutable: Vec<&str> = result.mutable.iter().map(|m| m.2.as_str()).collect();
        assert_eq!(mutable, ["nginx", "docker.io/library/nginx:1"]);
        assert_eq!(
            images_of("Deployment", &manifests[0].object),
            [api.as_str(), api_server.as_str(), "nginx"]
        );
        assert_eq!(manifests[2].object["data"]["image"], "api-server");
    }

    #[test]
    fn an_image_flag_wins_and_matches_docker_hub_short_names() {
        let pinned = format!("nginx@{DIGEST}");
        let offers = offers(
            &envelope(&[("nginx", &format!("{ECR}/nginx"))]),
            &[("docker.io/library/nginx".into(), pinned.clone())],
        )
        .unwrap();
        let mut manifests = manifests();
        let result = substitute(&mut manifests, &offers);
        let to: Vec<&str> = result.replaced.iter().map(|r| r.to.as_str()).collect();
        assert_eq!(to, [pinned.as_str(), pinned.as_str()]);
        assert_eq!(result.unmatched, ["nginx"], "the push lost to the flag");
        assert_eq!(result.replaced[1].object, "CronJob nightly");
    }

    #[test]
    fn a_dry_run_push_cannot_be_deployed() {
        let mut envelope = envelope(&[("api", "r/api")]);
        envelope.images[0].pushed[0].dry_run = true;
        let err = offers(&envelope, &[]).unwrap_err();
        assert_eq!(err.exit(), common::Exit::Usage);
    }

    #[test]
    fn image_flags_are_checked() {
        assert!(parse_image_override("api=r/api@sha256:x").is_err());
        assert!(parse_image_override("=r/api").is_err());
        assert_eq!(
            parse_image_override("api = r/api:1").unwrap(),
            ("api".into(), "r/api:1".into())
        );
    }
}
