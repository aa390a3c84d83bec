//! Manifests: the Kubernetes objects to apply, read from YAML or JSON text and checked before
//! anything is sent (pure).
//!
//! A file holds one or more documents (`---`); a document is one object or a `List` of them
//! (`kind: List`, or any `…List` kind with `items`), as `kubectl apply -f` reads them. Empty
//! documents are skipped. Every object must name `apiVersion`, `kind` and `metadata.name`:
//! anything else is a [`ManifestError`] naming the file and the document (exit 2).

use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Where an object came from: a file (or `kustomize DIR`), its document, its `List` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file as given (or `kustomize build DIR`).
    pub origin: String,
    /// The document in that file, from 1.
    pub document: usize,
    /// The item of a `List` document, from 1.
    pub item: Option<usize>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.origin, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        Ok(())
    }
}

/// One object to apply, as the manifest wrote it (images and namespace filled in later).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub source: Source,
    /// The object: a JSON object with `apiVersion`, `kind` and `metadata.name`.
    pub object: Value,
}

/// A manifest that cannot be applied: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct ManifestError {
    /// Where the problem is.
    pub at: Source,
    pub problem: String,
}

impl Manifest {
    /// `apiVersion` (`apps/v1`, `v1`).
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `metadata.namespace`, when the manifest names one.
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"]
            .as_str()
            .filter(|ns| !ns.is_empty())
    }

    /// `(group, version)` of `apiVersion` (`apps/v1` → `("apps", "v1")`, `v1` → `("", "v1")`).
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version().split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version()),
        }
    }

    /// `Kind namespace/name` (or `Kind name`), as people read it.
    pub fn display_name(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }

    /// Sets `metadata.namespace` (or removes it, for a cluster-scoped kind).
    pub fn set_namespace(&mut self, namespace: Option<&str>) {
        let Some(metadata) = self.object["metadata"].as_object_mut() else {
            return;
        };
        match namespace {
            Some(ns) => {
                metadata.insert("namespace".into(), Value::String(ns.to_owned()));
            }
            None => {
                metadata.remove("namespace");
            }
        }
    }
}

/// Whether a file of this name holds manifests (`.yaml`, `.yml`, `.json`).
pub fn is_manifest_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Every object in `text` (the content of `origin`), checked. JSON files hold one document;
/// anything else is read as YAML, which may hold several.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let documents = if origin.to_ascii_lowercase().ends_with(".json") {
        let at = |problem: String| ManifestError {
            at: Source {
                origin: origin.to_owned(),
                document: 1,
                item: None,
            },
            problem,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| at(format!("invalid JSON: {e}")))?;
        vec![value]
    } else {
        yaml_documents(origin, text)?
    };
    let mut manifests = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let source = Source {
            origin: origin.to_owned(),
            document: index + 1,
            item: None,
        };
        manifests.extend(objects_of(source, document)?);
    }
    Ok(manifests)
}

/// The documents of a YAML text as JSON values (`null` for an empty document).
fn yaml_documents(origin: &str, text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let at = |problem: String| ManifestError {
            at: Source {
                origin: origin.to_owned(),
                document: index + 1,
                item: None,
            },
            problem,
        };
        let yaml = serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| at(format!("invalid YAML: {e}")))?;
        let json = serde_json::to_value(&yaml)
            .map_err(|e| at(format!("not representable as JSON: {e}")))?;
        documents.push(json);
    }
    Ok(documents)
}

/// The objects of one document: none (empty), one, or a `List`'s items.
fn objects_of(source: Source, document: Value) -> Result<Vec<Manifest>, ManifestError> {
    if document.is_null() {
        return Ok(Vec::new());
    }
    let is_list = document["kind"]
        .as_str()
        .is_some_and(|kind| kind.ends_with("List"))
        && document.get("items").is_some();
    if !is_list {
        return Ok(vec![checked(source, document)?]);
    }
    let Value::Array(items) = document["items"].clone() else {
        return Err(ManifestError {
            at: source,
            problem: "a List whose items is not a list".into(),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let source = Source {
                item: Some(i + 1),
                ..source.clone()
            };
            checked(source, item)
        })
        .collect()
}

/// The object, when it names what `kubectl apply` needs.
fn checked(source: Source, object: Value) -> Result<Manifest, ManifestError> {
    let fail = |problem: &str| ManifestError {
        at: source.clone(),
        problem: problem.to_owned(),
    };
    let Value::Object(map) = &object else {
        return Err(fail(
            "not an object (a mapping with apiVersion, kind, metadata)",
        ));
    };
    let text_at = |map: &Map<String, Value>, key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if !text_at(map, "apiVersion") {
        return Err(fail("no apiVersion"));
    }
    if !text_at(map, "kind") {
        return Err(fail("no kind"));
    }
    match map.get("metadata").and_then(Value::as_object) {
        Some(metadata) if text_at(metadata, "name") => {}
        _ => return Err(fail("no metadata.name")),
    }
    check_known_kind(&object).map_err(|problem| fail(&problem))?;
    Ok(Manifest { source, object })
}

/// A built-in kind is read into its Kubernetes type (k8s-openapi's), so a field of the wrong
/// type (`replicas: "three"`) is refused here, naming its path, before anything is applied;
/// the API server would refuse it only when its turn came, after the objects before it.
/// Other kinds (custom resources) are the API server's to check.
fn check_known_kind(object: &Value) -> Result<(), String> {
    use k8s_openapi::api::{apps, batch, core, networking};
    fn read<T: serde::de::DeserializeOwned>(object: &Value) -> Result<(), String> {
        serde_path_to_error::deserialize::<_, T>(object)
            .map(drop)
            .map_err(|err| format!("field `{}`: {}", err.path(), err.inner()))
    }
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("apps/v1", "Deployment") => read::<apps::v1::Deployment>(object),
        ("apps/v1", "StatefulSet") => read::<apps::v1::StatefulSet>(object),
        ("apps/v1", "DaemonSet") => read::<apps::v1::DaemonSet>(object),
        ("batch/v1", "Job") => read::<batch::v1::Job>(object),
        ("batch/v1", "CronJob") => read::<batch::v1::CronJob>(object),
        ("v1", "Service") => read::<core::v1::Service>(object),
        ("v1", "ConfigMap") => read::<core::v1::ConfigMap>(object),
        ("v1", "Secret") => read::<core::v1::Secret>(object),
        ("v1", "Pod") => read::<core::v1::Pod>(object),
        ("networking.k8s.io/v1", "Ingress") => read::<networking::v1::Ingress>(object),
        _ => Ok(()),
    }
}

/// Refuses two manifests for one object (same group, kind, namespace and name): which one
/// should win is not for k8s-apply to guess.
pub fn refuse_duplicates(manifests: &[Manifest]) -> Result<(), ManifestError> {
    for (i, later) in manifests.iter().enumerate() {
        let same = |m: &&Manifest| {
            m.group_version().0 == later.group_version().0
                && m.kind() == later.kind()
                && m.namespace() == later.namespace()
                && m.name() == later.name()
        };
        if let Some(first) = manifests[..i].iter().find(same) {
            return Err(ManifestError {
                at: later.source.clone(),
                problem: format!(
                    "{} is also defined at {}",
                    later.display_name(),
                    first.source
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
";

    #[test]
    fn multi_document_yaml_gives_each_object_with_its_document_number() {
        let manifests = parse("app.yaml", TWO).unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].display_name(), "ConfigMap one");
        assert_eq!(manifests[1].display_name(), "Deployment shop/api");
        assert_eq!(manifests[1].source.to_string(), "app.yaml, document 3");
        assert_eq!(manifests[1].group_version(), ("apps", "v1"));
        assert_eq!(manifests[0].group_version(), ("", "v1"));
    }

    #[test]
    fn a_list_gives_its_items() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"ServiceList","metadata":{"name":"b"}}]}"#;
        let manifests = parse("list.json", text).unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(
            manifests[1].source.to_string(),
            "list.json, document 1, item 2"
        );
        let err = parse(
            "l.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "l.yaml, document 1, item 1: no metadata.name"
        );
    }

    #[test]
    fn documents_without_what_apply_needs_are_named_with_their_place() {
        let cases = [
            ("kind: ConfigMap\nmetadata: {name: a}\n", "no apiVersion"),
            ("apiVersion: v1\nmetadata: {name: a}\n", "no kind"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
                "no metadata.name",
            ),
            ("apiVersion: v1\nkind: ConfigMap\n", "no metadata.name"),
            ("- a\n- b\n", "not an object"),
        ];
        for (text, problem) in cases {
            let text = format!(
                "{}---\n{text}",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"
            );
            let err = parse("bad.yaml", &text).unwrap_err();
            assert_eq!(err.at.document, 2, "{text}");
            assert!(
                err.to_string().starts_with("bad.yaml, document 2: "),
                "{err}"
            );
            assert!(err.problem.contains(problem), "{err} for {text}");
        }
    }

    #[test]
    fn a_built_in_kind_with_a_field_of_the_wrong_type_is_refused_naming_its_path() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  \
                    replicas: three\n  selector: {matchLabels: {app: d}}\n  template:\n    \
                    metadata: {labels: {app: d}}\n    spec: {containers: [{name: c, image: x}]}\n";
        let err = parse("d.yaml", text).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("d.yaml, document 1: field `spec.replicas`: invalid type"),
            "{err}"
        );
        let fixed = text.replace("three", "3");
        assert_eq!(parse("d.yaml", &fixed).unwrap().len(), 1);
        // A custom resource's fields are the API server's to check.
        let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: three}\n";
        assert_eq!(parse("w.yaml", widget).unwrap().len(), 1);
    }

    #[test]
    fn invalid_yaml_and_json_are_errors_naming_the_document() {
        let err = parse("x.yaml", "apiVersion: v1\n---\nkind: [unclosed\n").unwrap_err();
        assert_eq!(err.at.document, 2);
        assert!(err.problem.starts_with("invalid YAML"), "{err}");
        let err = parse("x.json", "{\"apiVersion\": ").unwrap_err();
        assert!(err.problem.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn manifest_files_are_yaml_yml_and_json() {
        assert!(
            is_manifest_file("a.yaml") && is_manifest_file("B.YML") && is_manifest_file("c.json")
        );
        assert!(!is_manifest_file("kustomization.txt") && !is_manifest_file("README.md"));
    }

    #[test]
    fn the_same_object_twice_is_refused() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let manifests = parse("dup.yaml", text).unwrap();
        let err = refuse_duplicates(&manifests).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dup.yaml, document 2: ConfigMap a is also defined at dup.yaml, document 1"
        );
        assert!(refuse_duplicates(&manifests[..1]).is_ok());
    }

    #[test]
    fn the_namespace_is_set_or_removed() {
        let mut m = parse("a.yaml", TWO).unwrap().remove(0);
        m.set_namespace(Some("shop"));
        assert_eq!(m.namespace(), Some("shop"));
        m.set_namespace(None);
        assert_eq!(m.namespace(), None);
    }
}
