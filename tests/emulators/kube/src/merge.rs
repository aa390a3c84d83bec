//! Merging one object into another: server-side apply's structural merge, JSON merge patch
//! (RFC 7386) and strategic merge patch (what kubectl's client-side apply, edit, label and
//! annotate send for built-in kinds). Pure functions over JSON.

use serde_json::{Map, Value};

use crate::fields::{ListKind, key_token, list_kind};

/// Server-side apply's merge of `applied` into `live`: maps merged field by field,
/// associative lists by key (new elements appended in applied order), sets unioned, anything
/// else replaced.
pub fn apply_merge(live: &mut Value, applied: &Value) {
    merge_with(live, applied, "", false);
}

/// Strategic merge patch: like [`apply_merge`], but `null` deletes a field, and the
/// `$patch`/`$retainKeys`/`$setElementOrder`/`$deleteFromPrimitiveList` directives are honoured
/// as far as kubectl sends them for the built-in kinds.
pub fn strategic_merge(live: &mut Value, patch: &Value) {
    merge_with(live, patch, "", true);
}

fn merge_with(live: &mut Value, patch: &Value, name: &str, strategic: bool) {
    match (live, patch) {
        (Value::Object(l), Value::Object(p)) => merge_maps(l, p, strategic),
        (Value::Array(l), Value::Array(p)) => merge_lists(l, p, name, strategic),
        (l, p) => *l = strip_directives(p),
    }
}

fn merge_maps(live: &mut Map<String, Value>, patch: &Map<String, Value>, strategic: bool) {
    if strategic && patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *live = strip_directives(&Value::Object(patch.clone()))
            .as_object()
            .cloned()
            .unwrap_or_default();
        return;
    }
    let retain: Option<Vec<String>> = patch.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let _ = field;
            continue;
        }
        if strategic && pv.is_null() {
            live.remove(k);
            continue;
        }
        match live.get_mut(k) {
            Some(lv) if lv.is_object() && pv.is_object() || lv.is_array() && pv.is_array() => {
                merge_with(lv, pv, k, strategic)
            }
            _ => {
                live.insert(k.clone(), strip_directives(pv));
            }
        }
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(items)), Some(del)) = (live.get_mut(field), pv.as_array())
        {
            items.retain(|i| !del.contains(i));
        }
    }
    if let Some(keep) = retain {
        live.retain(|k, _| keep.contains(k));
    }
}

fn merge_lists(live: &mut Vec<Value>, patch: &[Value], name: &str, strategic: bool) {
    let kind = list_kind(name, if live.is_empty() { patch } else { live });
    match kind {
        ListKind::Map(keys) => {
            for p in patch {
                let tok = key_token(keys, p);
                let directive = p.get("$patch").and_then(Value::as_str);
                let pos = live.iter().position(|l| key_token(keys, l) == tok);
                match (pos, directive) {
                    (Some(i), Some("delete")) if strategic => {
                        live.remove(i);
                    }
                    (None, Some("delete")) if strategic => {}
                    (Some(i), _) => merge_with(&mut live[i], p, "", strategic),
                    (None, _) => live.push(strip_directives(p)),
                }
            }
        }
        ListKind::Set => {
            for p in patch {
                if !live.contains(p) {
                    live.push(p.clone());
                }
            }
        }
        ListKind::Atomic => *live = patch.iter().map(strip_directives).collect(),
    }
}

/// `v` without strategic-merge directives (`$patch`, `$retainKeys`, `$setElementOrder/...`).
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// JSON merge patch (RFC 7386): objects merged, `null` deletes, anything else replaces.
pub fn json_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("just made an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// JSON patch (RFC 6902): add, remove, replace, test (what `kubectl patch --type=json` sends).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("an operation without \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("an operation without \"path\"")?;
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match kind {
            "add" | "replace" => set_pointer(target, path, value, kind == "add")?,
            "remove" => remove_pointer(target, path)?,
            "test" => {
                if target.pointer(path) != Some(&value) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("bad path {path:?}"))?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn set_pointer(target: &mut Value, path: &str, value: Value, insert: bool) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    let p = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("no parent for {path}"))?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index in {path}"))?;
            if insert && i <= a.len() {
                a.insert(i, value);
            } else if i < a.len() {
                a[i] = value;
            } else {
                return Err(format!("index out of range in {path}"));
            }
        }
        _ => return Err(format!("{parent} is not a container")),
    }
    Ok(())
}

fn remove_pointer(target: &mut Value, path: &str) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m
            .remove(&last)
            .map(|_| ())
            .ok_or_else(|| format!("nothing to remove at {path}")),
        Some(Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| format!("bad index in {path}"))?;
            if i < a.len() {
                a.remove(i);
                Ok(())
            } else {
                Err(format!("index out of range in {path}"))
            }
        }
        _ => Err(format!("nothing to remove at {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_merges_containers_by_name_and_replaces_atomic_lists() {
        let mut live = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "args": ["1", "2"]},
            {"name": "b", "image": "y"}
        ]}});
        apply_merge(
            &mut live,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "args": ["3"]}]}}),
        );
        assert_eq!(
            live["spec"]["containers"][0],
            json!({"name": "a", "image": "x", "args": ["3"]})
        );
        assert_eq!(
            live["spec"]["containers"][1],
            json!({"name": "b", "image": "z"})
        );
    }

    #[test]
    fn strategic_merge_deletes_with_null_and_patch_delete() {
        let mut live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        strategic_merge(
            &mut live,
            &json!({
                "metadata": {"labels": {"a": null}},
                "spec": {"$setElementOrder/containers": [{"name": "b"}], "containers": [{"name": "a", "$patch": "delete"}]}
            }),
        );
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "b"}]}})
        );
    }

    #[test]
    fn json_merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        json_merge(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_adds_replaces_and_removes() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "l": [1]});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "add", "path": "/l/-", "value": 2},
            ]),
        )
        .unwrap();
        assert_eq!(t, json!({"metadata": {"labels": {"b": "2"}}, "l": [1, 2]}));
        assert!(json_patch(&mut t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
