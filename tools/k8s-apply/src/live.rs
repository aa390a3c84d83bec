//! The objects as they are before the apply (what a rollback restores), read with as few
//! calls as make sense: one LIST per kind and namespace that holds several of the manifests'
//! objects, one GET for each of the others. Which scopes to list is decided by [`scopes`]
//! (pure); [`LiveObjects::read`] does the reading.

use crate::cluster::{Cluster, KubeError, Target};
use futures_util::StreamExt;
use kube::discovery::ApiResource;
use serde_json::Value;
use std::collections::HashMap;

/// From this many objects of one kind in one namespace on, one LIST reads them all: it costs
/// about one GET, and a namespace rarely holds so many more objects than the manifests name
/// that listing it costs more than the GETs it saves.
pub const LISTED_FROM: usize = 3;

/// How many LISTs run at once.
const LISTED_AT_ONCE: usize = 8;

/// A kind (its resource type) in a namespace (`None`: cluster-scoped).
pub type Scope = (ApiResource, Option<String>);

/// The scopes that hold at least [`LISTED_FROM`] of `targets`, in first-seen order (pure).
pub fn scopes(targets: &[&Target]) -> Vec<Scope> {
    let mut counted: Vec<(Scope, usize)> = Vec::new();
    for target in targets {
        let scope = (target.resource.clone(), target.namespace.clone());
        match counted.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, n)) => *n += 1,
            None => counted.push((scope, 1)),
        }
    }
    counted
        .into_iter()
        .filter(|(_, n)| *n >= LISTED_FROM)
        .map(|(scope, _)| scope)
        .collect()
}

/// What the LISTs found, for the targets of the listed scopes.
#[derive(Debug, Default)]
pub struct LiveObjects {
    listed: Vec<Scope>,
    /// By `(apiVersion, plural, namespace, name)`.
    objects: HashMap<(String, String, Option<String>, String), Value>,
}

impl LiveObjects {
    /// LISTs every scope of [`scopes`]`(targets)`, several at once.
    pub async fn read(cluster: &Cluster, targets: &[&Target]) -> Result<LiveObjects, KubeError> {
        let listed = scopes(targets);
        let lists: Vec<Result<Vec<Value>, KubeError>> = futures_util::stream::iter(&listed)
            .map(|(resource, namespace)| cluster.list(resource, namespace.as_deref()))
            .buffered(LISTED_AT_ONCE)
            .collect()
            .await;
        let mut objects = HashMap::new();
        for ((resource, namespace), list) in listed.iter().zip(lists) {
            for object in list? {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let key = key(resource, namespace.as_ref(), name);
                objects.insert(key, object);
            }
        }
        Ok(LiveObjects { listed, objects })
    }

    /// The live `target` when its scope was listed (`Some(None)`: it does not exist); `None`
    /// when it must be read on its own.
    pub fn get(&self, target: &Target) -> Option<Option<Value>> {
        let scope = (target.resource.clone(), target.namespace.clone());
        if !self.listed.contains(&scope) {
            return None;
        }
        let key = key(&target.resource, target.namespace.as_ref(), &target.name);
        Some(self.objects.get(&key).cloned())
    }
}

fn key(
    resource: &ApiResource,
    namespace: Option<&String>,
    name: &str,
) -> (String, String, Option<String>, String) {
    (
        resource.api_version.clone(),
        resource.plural.clone(),
        namespace.cloned(),
        name.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, namespace: Option<&str>, name: &str) -> Target {
        Target {
            resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
            },
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    #[test]
    fn only_kinds_with_several_objects_in_one_namespace_are_listed() {
        let targets = [
            target("Namespace", None, "shop"),
            target("ConfigMap", Some("shop"), "a"),
            target("ConfigMap", Some("shop"), "b"),
            target("ConfigMap", Some("other"), "c"),
            target("ConfigMap", Some("shop"), "d"),
            target("Secret", Some("shop"), "a"),
            target("Secret", Some("shop"), "b"),
        ];
        let refs: Vec<&Target> = targets.iter().collect();
        let listed: Vec<(String, Option<String>)> = scopes(&refs)
            .into_iter()
            .map(|(r, ns)| (r.kind, ns))
            .collect();
        assert_eq!(listed, [("ConfigMap".to_owned(), Some("shop".to_owned()))]);
    }

    #[test]
    fn a_listed_scope_answers_for_its_objects_present_or_not_and_no_other() {
        let listed = target("ConfigMap", Some("shop"), "a");
        let live = LiveObjects {
            listed: vec![(listed.resource.clone(), Some("shop".into()))],
            objects: HashMap::from([(
                key(&listed.resource, Some(&"shop".into()), "a"),
                serde_json::json!({"metadata": {"name": "a"}}),
            )]),
        };
        assert!(matches!(live.get(&listed), Some(Some(_))));
        assert_eq!(
            live.get(&target("ConfigMap", Some("shop"), "new")),
            Some(None)
        );
        assert_eq!(live.get(&target("ConfigMap", Some("other"), "a")), None);
        assert_eq!(live.get(&target("Secret", Some("shop"), "a")), None);
    }
}
