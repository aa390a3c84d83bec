//! `--prune --applyset NAME`: the set of objects an apply owns, recorded as kubectl's ApplySet
//! (KEP-3659) records it, so that kubectl and k8s-apply see the same members (pure).
//!
//! - the parent is the Secret `NAME` (in `--namespace`, else the context's), labelled
//!   `applyset.kubernetes.io/id: applyset-<base64url(sha256(NAME.NAMESPACE.Secret.))>-v1` —
//!   kubectl's id for `--applyset=NAME`;
//! - every member carries `applyset.kubernetes.io/part-of: <id>`;
//! - the parent lists the member kinds (`contains-group-kinds`, `Deployment.apps,Secret`) and
//!   the namespaces besides its own (`additional-namespaces`), so a later run knows where to
//!   look for members that are no longer in the manifests: those are pruned.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";

/// kubectl's ApplySet id of a Secret parent `name` in `namespace`.
pub fn id(name: &str, namespace: &str) -> String {
    let hashed = Sha256::digest(format!("{name}.{namespace}.Secret.").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hashed)
    )
}

/// `Kind.group` (`Deployment.apps`), or `Kind` for the core group.
pub fn group_kind(group: &str, kind: &str) -> String {
    match group {
        "" => kind.to_owned(),
        group => format!("{kind}.{group}"),
    }
}

/// `(group, kind)` of a `Kind.group`.
pub fn split_group_kind(text: &str) -> (&str, &str) {
    match text.split_once('.') {
        Some((kind, group)) => (group, kind),
        None => ("", text),
    }
}

/// Labels `object` as a member of the set `id`.
pub fn label_member(object: &mut Value, id: &str) {
    let metadata = &mut object["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    metadata["labels"][PART_OF_LABEL] = json!(id);
}

/// The parent Secret listing `group_kinds` and `namespaces` (its own left out).
pub fn parent(name: &str, namespace: &str, group_kinds: &[String], namespaces: &[String]) -> Value {
    let mut kinds = group_kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    let mut others: Vec<String> = namespaces
        .iter()
        .filter(|ns| *ns != namespace)
        .cloned()
        .collect();
    others.sort();
    others.dedup();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {ID_LABEL: id(name, namespace)},
            "annotations": {
                TOOLING: format!("k8s-apply/{}", env!("CARGO_PKG_VERSION")),
                GROUP_KINDS: kinds.join(","),
                NAMESPACES: others.join(","),
            }
        }
    })
}

/// `(group kinds, namespaces)` a live parent lists (its own namespace included).
pub fn listed(parent: &Value, namespace: &str) -> (Vec<String>, Vec<String>) {
    let annotation = |key: &str| {
        parent["metadata"]["annotations"][key]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    let mut namespaces = vec![namespace.to_owned()];
    namespaces.extend(annotation(NAMESPACES));
    (annotation(GROUP_KINDS), namespaces)
}

/// One object, by group kind, namespace and name.
pub type Member = (String, Option<String>, String);

/// The members found on the cluster that the manifests no longer have.
pub fn to_prune(found: &[Member], current: &[Member]) -> Vec<Member> {
    found
        .iter()
        .filter(|m| !current.contains(m))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_kubectls_for_a_secret_parent() {
        // kubectl: base64url(sha256("<name>.<namespace>.Secret.")) between applyset- and -v1.
        let id = id("shop", "default");
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert_ne!(id, super::id("shop", "other"));
    }

    #[test]
    fn group_kinds_are_written_and_read_as_kubectl_does() {
        assert_eq!(group_kind("apps", "Deployment"), "Deployment.apps");
        assert_eq!(group_kind("", "Secret"), "Secret");
        assert_eq!(
            split_group_kind("Ingress.networking.k8s.io"),
            ("networking.k8s.io", "Ingress")
        );
        assert_eq!(split_group_kind("ConfigMap"), ("", "ConfigMap"));
    }

    #[test]
    fn the_parent_lists_kinds_and_other_namespaces_and_reads_back() {
        let p = parent(
            "shop",
            "default",
            &[
                "Deployment.apps".into(),
                "ConfigMap".into(),
                "ConfigMap".into(),
            ],
            &["default".into(), "shop".into()],
        );
        assert_eq!(
            p["metadata"]["annotations"][GROUP_KINDS],
            "ConfigMap,Deployment.apps"
        );
        assert_eq!(p["metadata"]["annotations"][NAMESPACES], "shop");
        assert_eq!(p["metadata"]["labels"][ID_LABEL], id("shop", "default"));
        let (kinds, namespaces) = listed(&p, "default");
        assert_eq!(kinds, ["ConfigMap", "Deployment.apps"]);
        assert_eq!(namespaces, ["default", "shop"]);
    }

    #[test]
    fn members_no_longer_in_the_manifests_are_pruned() {
        let member =
            |kind: &str, name: &str| (kind.to_owned(), Some("default".to_owned()), name.to_owned());
        let found = [
            member("ConfigMap", "a"),
            member("ConfigMap", "old"),
            member("Deployment.apps", "a"),
        ];
        let current = [member("ConfigMap", "a"), member("Deployment.apps", "a")];
        assert_eq!(to_prune(&found, &current), [member("ConfigMap", "old")]);
        let mut object = json!({"metadata": {"name": "x"}});
        label_member(&mut object, "applyset-x-v1");
        assert_eq!(object["metadata"]["labels"][PART_OF_LABEL], "applyset-x-v1");
    }
}
