//! Comparing a live object with what an apply would make of it (pure): whether anything
//! changes (so an unchanged object is not written), and the unified diff `--dry-run` shows,
//! without managedFields and status, Secret values redacted as `kubectl diff` does.

use crate::cluster::FIELD_MANAGER;
use serde_json::{Map, Value};

/// `object` as far as an apply by [`FIELD_MANAGER`] is concerned: without `status` and other
/// managers' managed-fields entries (controllers write those at any moment, also between
/// reading the live object and the dry run), and without what changes on every write
/// (`resourceVersion`, the managers' timestamps). Two objects equal after this are the same
/// to this apply.
pub fn comparable(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        if let Some(Value::Array(managers)) = metadata.get_mut("managedFields") {
            managers.retain(|m| m["manager"] == FIELD_MANAGER);
            for manager in managers.iter_mut().filter_map(Value::as_object_mut) {
                manager.remove("time");
            }
        }
    }
    copy
}

/// Whether applying would change `live` into something else than `would_be` shows.
pub fn changes(live: &Value, would_be: &Value) -> bool {
    comparable(live) != comparable(would_be)
}

/// `object` as people compare it: no managedFields, status or bookkeeping metadata.
fn for_people(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            metadata.remove(key);
        }
    }
    copy
}

/// Replaces the values of a Secret's `data` and `stringData` on both sides: `***` where they
/// are equal, `*** (before)` and `*** (after)` where they differ, so the diff says which keys
/// change and never what they hold.
fn redact_secret_pair(live: &mut Value, would_be: &mut Value) {
    for field in ["data", "stringData"] {
        let before = live
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let after = would_be
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mark = |side: &Map<String, Value>, other: &Map<String, Value>, label: &str| {
            side.iter()
                .map(|(k, v)| {
                    let text = match other.get(k) == Some(v) {
                        true => "***".to_owned(),
                        false => format!("*** ({label})"),
                    };
                    (k.clone(), Value::String(text))
                })
                .collect::<Map<String, Value>>()
        };
        if let Some(map) = live.as_object_mut().filter(|_| !before.is_empty()) {
            map.insert(field.into(), Value::Object(mark(&before, &after, "before")));
        }
        if let Some(map) = would_be.as_object_mut().filter(|_| !after.is_empty()) {
            map.insert(field.into(), Value::Object(mark(&after, &before, "after")));
        }
    }
}

/// The unified diff from `live` (absent: the object is created) to `would_be`, headed by
/// `name`; empty when nothing changes.
pub fn unified(kind: &str, name: &str, live: Option<&Value>, would_be: &Value) -> String {
    let mut before = live.map(for_people);
    let mut after = for_people(would_be);
    if kind == "Secret" {
        let mut empty = Value::Object(Map::new());
        redact_secret_pair(before.as_mut().unwrap_or(&mut empty), &mut after);
    }
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap_or_else(|e| format!("# {e}\n"));
    let before_text = before.as_ref().map(yaml).unwrap_or_default();
    let after_text = yaml(&after);
    if before_text == after_text {
        return String::new();
    }
    similar::TextDiff::from_lines(&before_text, &after_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("would-be/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "7", "uid": "u",
                "managedFields": [{"manager": "k8s-apply", "time": "2026-01-01T00:00:00Z"}]},
            "data": {"a": "1"}, "status": {"x": 1}})
    }

    #[test]
    fn bookkeeping_is_not_a_change_but_content_and_owners_are() {
        let mut same = live();
        same["metadata"]["resourceVersion"] = json!("8");
        same["metadata"]["managedFields"][0]["time"] = json!("2026-02-02T00:00:00Z");
        assert!(!changes(&live(), &same));
        let mut data = live();
        data["data"]["a"] = json!("2");
        assert!(changes(&live(), &data));
        let mut owners = live();
        owners["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        assert!(
            changes(&live(), &owners),
            "k8s-apply's ownership is part of the object"
        );
        let mut controllers = live();
        controllers["status"] = json!({"replicas": 3});
        controllers["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": "kube-controller-manager", "subresource": "status"}));
        assert!(
            !changes(&live(), &controllers),
            "status is the controllers'"
        );
    }

    #[test]
    fn the_diff_leaves_out_managed_fields_and_status() {
        let mut after = live();
        after["data"]["a"] = json!("2");
        let diff = unified("ConfigMap", "ConfigMap c", Some(&live()), &after);
        assert!(
            diff.starts_with("--- live/ConfigMap c\n+++ would-be/ConfigMap c\n"),
            "{diff}"
        );
        assert!(diff.contains("-  a: '1'\n+  a: '2'\n"), "{diff}");
        assert!(
            !diff.contains("managedFields") && !diff.contains("status") && !diff.contains("uid"),
            "{diff}"
        );
        assert_eq!(unified("ConfigMap", "c", Some(&live()), &live()), "");
        let created = unified("ConfigMap", "c", None, &live());
        assert!(created.contains("+kind: ConfigMap"), "{created}");
    }

    #[test]
    fn secret_values_are_redacted_and_changed_keys_marked() {
        let secret = |data: Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data});
        let before = secret(json!({"same": "c2FtZQ==", "pw": "b2xk", "gone": "eA=="}));
        let after = secret(json!({"same": "c2FtZQ==", "pw": "bmV3", "added": "eQ=="}));
        let diff = unified("Secret", "Secret s", Some(&before), &after);
        for secret in ["c2FtZQ==", "b2xk", "bmV3", "eA==", "eQ=="] {
            assert!(!diff.contains(secret), "{secret} leaked: {diff}");
        }
        assert!(diff.contains("-  pw: '*** (before)'\n"), "{diff}");
        assert!(diff.contains("+  pw: '*** (after)'\n"), "{diff}");
        assert!(diff.contains("-  gone: '*** (before)'\n"), "{diff}");
        assert!(diff.contains("+  added: '*** (after)'"), "{diff}");
        assert!(diff.contains("   same: '***'"), "{diff}");
        let created = unified("Secret", "Secret s", None, &after);
        assert!(!created.contains("bmV3"), "{created}");
    }
}
