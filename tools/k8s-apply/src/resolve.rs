//! Every manifest's resource type and namespace, settled before anything is read or sent:
//! discovery (or a CRD of the same input, [`crds`]) says what the kind is and whether it is
//! namespaced; the namespace follows kubectl's rules ([`settle_namespace`], pure).

use crate::cluster::{Cluster, Resolved, Target};
use crate::crds::{self, Defined};
use crate::manifests::{self, Manifest};
use crate::request::Request;
use common::{Error, Result};

/// Every manifest with its resource type, its namespace settled (exit 2 for an unknown kind,
/// a namespace that contradicts `--namespace`, or an object given twice). A kind the cluster
/// does not serve is known when a CRD among the manifests (`defined`) defines it.
pub fn resolve_all(
    cluster: &Cluster,
    request: &Request,
    manifests: Vec<Manifest>,
    defined: &[Defined],
) -> Result<Vec<(Manifest, Target)>> {
    let default_namespace = request
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let mut resolved = Vec::with_capacity(manifests.len());
    for mut manifest in manifests {
        let (group, version) = manifest.group_version();
        let found = cluster
            .resolve(group, version, manifest.kind())
            .or_else(|| {
                crds::find(defined, group, version, manifest.kind()).map(|d| Resolved {
                    resource: d.resource.clone(),
                    namespaced: d.namespaced,
                })
            });
        let Some(found) = found else {
            return Err(Error::usage(format!(
                "{}: the cluster does not serve kind {} in {}, nor does a CustomResourceDefinition \
                 among the manifests define it ({})",
                manifest.source,
                manifest.kind(),
                manifest.api_version(),
                manifest.display_name()
            )));
        };
        let namespace = settle_namespace(
            &manifest,
            found.namespaced,
            request.namespace.as_deref(),
            &default_namespace,
        )
        .map_err(|problem| Error::usage(format!("{}: {problem}", manifest.source)))?;
        manifest.set_namespace(namespace.as_deref());
        let target = Target {
            resource: found.resource,
            namespace,
            name: manifest.name().to_owned(),
        };
        resolved.push((manifest, target));
    }
    let manifests: Vec<Manifest> = resolved.iter().map(|(m, _)| m.clone()).collect();
    manifests::refuse_duplicates(&manifests).map_err(Error::usage)?;
    Ok(resolved)
}

/// The namespace of an object (pure): none for a cluster-scoped kind; its own, which must
/// agree with `--namespace` when both are given (as kubectl insists); else the default.
pub fn settle_namespace(
    manifest: &Manifest,
    namespaced: bool,
    flag: Option<&str>,
    default: &str,
) -> Result<Option<String>, String> {
    if !namespaced {
        return Ok(None);
    }
    match (manifest.namespace(), flag) {
        (Some(own), Some(flag)) if own != flag => Err(format!(
            "{} names namespace {own}, which does not match --namespace {flag}",
            manifest.display_name()
        )),
        (Some(own), _) => Ok(Some(own.to_owned())),
        (None, _) => Ok(Some(default.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse;

    #[test]
    fn namespaces_are_settled_as_kubectl_settles_them() {
        let with = parse(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n",
        )
        .unwrap()
        .remove(0);
        let without = parse(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            settle_namespace(&without, true, None, "default"),
            Ok(Some("default".into()))
        );
        assert_eq!(
            settle_namespace(&without, true, Some("x"), "x"),
            Ok(Some("x".into()))
        );
        assert_eq!(
            settle_namespace(&with, true, None, "default"),
            Ok(Some("shop".into()))
        );
        assert_eq!(
            settle_namespace(&with, true, Some("shop"), "shop"),
            Ok(Some("shop".into()))
        );
        assert_eq!(settle_namespace(&with, false, None, "default"), Ok(None));
        let err = settle_namespace(&with, true, Some("other"), "other").unwrap_err();
        assert!(err.contains("does not match --namespace other"), "{err}");
    }
}
