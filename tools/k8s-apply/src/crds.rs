//! Custom resources whose CustomResourceDefinition comes in the same apply (pure).
//!
//! The cluster does not serve such a kind until the CRD is created and `Established`, so
//! discovery alone would refuse it as unknown. [`defined_by`] reads what the input's CRDs
//! define (group, each served version, kind, plural, scope from their `spec`), so that
//! validation accepts their custom resources; the apply then creates the CRDs first, waits for
//! each to be `Established` ([`condition`]), discovers again, and applies the custom resources.

use crate::manifests::Manifest;
use kube::discovery::ApiResource;
use serde_json::Value;

/// A kind a CRD of the input defines, at one of its served versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Defined {
    /// The CRD's `metadata.name` (`widgets.example.com`).
    pub crd: String,
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// What the CustomResourceDefinitions among `manifests` define: one entry per served version.
pub fn defined_by(manifests: &[Manifest]) -> Vec<Defined> {
    manifests
        .iter()
        .filter(|m| m.kind() == "CustomResourceDefinition")
        .flat_map(|m| of_crd(&m.object))
        .collect()
}

fn of_crd(crd: &Value) -> Vec<Defined> {
    let spec = &crd["spec"];
    let (Some(name), Some(group), Some(kind), Some(plural)) = (
        crd["metadata"]["name"].as_str(),
        spec["group"].as_str(),
        spec["names"]["kind"].as_str(),
        spec["names"]["plural"].as_str(),
    ) else {
        return Vec::new();
    };
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| v["name"].as_str())
        .map(|version| Defined {
            crd: name.to_owned(),
            resource: ApiResource {
                group: group.to_owned(),
                version: version.to_owned(),
                api_version: format!("{group}/{version}"),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
            },
            // The API's default scope is Namespaced; only `Cluster` says otherwise.
            namespaced: spec["scope"].as_str() != Some("Cluster"),
        })
        .collect()
}

/// The kind `group`/`version`/`kind`, if a CRD of the input defines it.
pub fn find<'a>(
    defined: &'a [Defined],
    group: &str,
    version: &str,
    kind: &str,
) -> Option<&'a Defined> {
    defined.iter().find(|d| {
        d.resource.group == group && d.resource.version == version && d.resource.kind == kind
    })
}

/// Where a live CRD stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `Established` is `True`: its kind is served.
    Established,
    /// Not yet.
    Pending,
    /// `NamesAccepted` is `False` (its names conflict with another CRD's): it never will be.
    Refused(String),
}

/// Reads `status.conditions` of a live CRD.
pub fn condition(crd: &Value) -> Condition {
    let conditions = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of = |kind: &str| conditions.iter().find(|c| c["type"] == kind);
    if of("Established").is_some_and(|c| c["status"] == "True") {
        return Condition::Established;
    }
    match of("NamesAccepted") {
        Some(c) if c["status"] == "False" => Condition::Refused(format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("NamesNotAccepted"),
            c["message"].as_str().unwrap_or_default()
        )),
        _ => Condition::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse;
    use serde_json::json;

    const CRDS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true}
  - {name: v1beta1, served: false, storage: false}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions: [{name: v2, served: true, storage: true}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
";

    #[test]
    fn the_inputs_crds_define_their_served_versions_with_their_scope() {
        let defined = defined_by(&parse("crds.yaml", CRDS).unwrap());
        let widget = find(&defined, "example.com", "v1", "Widget").expect("Widget v1");
        assert_eq!(widget.crd, "widgets.example.com");
        assert_eq!(widget.resource.plural, "widgets");
        assert_eq!(widget.resource.api_version, "example.com/v1");
        assert!(widget.namespaced);
        assert!(find(&defined, "example.com", "v1beta1", "Widget").is_none());
        let gadget = find(&defined, "example.com", "v2", "Gadget").expect("Gadget v2");
        assert!(!gadget.namespaced);
        assert!(find(&defined, "other.com", "v2", "Gadget").is_none());
        assert_eq!(defined.len(), 2);
    }

    #[test]
    fn a_crd_is_established_pending_or_refused_by_its_conditions() {
        let with = |conditions: Value| json!({"status": {"conditions": conditions}});
        assert_eq!(condition(&json!({})), Condition::Pending);
        assert_eq!(
            condition(&with(json!([{"type": "NamesAccepted", "status": "True"}]))),
            Condition::Pending
        );
        assert_eq!(
            condition(&with(json!([
                {"type": "NamesAccepted", "status": "True"},
                {"type": "Established", "status": "True"}
            ]))),
            Condition::Established
        );
        assert_eq!(
            condition(&with(json!([{"type": "NamesAccepted", "status": "False",
                "reason": "PluralConflict", "message": "\"widgets\" is already in use"}]))),
            Condition::Refused("PluralConflict: \"widgets\" is already in use".into())
        );
    }
}
