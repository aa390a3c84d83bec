//! `metadata.managedFields`: who owns which field, server-side apply's conflicts and merge,
//! and the ownership an update (PUT, merge or strategic patch) takes. Pure functions.

use serde_json::{Value, json};

use crate::fields::{self, FieldSet};
use crate::merge;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: String,
    pub set: FieldSet,
}

/// The entries recorded on `obj`.
pub fn read(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_owned(),
            operation: e["operation"].as_str().unwrap_or("Update").to_owned(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: e["time"].as_str().unwrap_or_default().to_owned(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_owned(),
            set: fields::from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Writes `entries` into `obj`'s metadata (left out when there are none).
pub fn write(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&e.set),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

/// A field another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    /// As kubectl shows it: `.spec.replicas`.
    pub field: String,
}

/// What an apply is asked to do.
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub now: &'a str,
    pub subresource: &'a str,
}

/// Server-side apply of `applied` onto `live` (an empty skeleton when the object is new):
/// the merged object with its new managedFields, or the conflicts.
pub fn apply(live: &Value, applied: &Value, req: &ApplyRequest) -> Result<Value, Vec<Conflict>> {
    let mut entries = read(live);
    let claimed = fields::field_set(applied);
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, fields::Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.manager == req.manager && e.subresource == req.subresource {
            continue;
        }
        for p in e.set.intersection(&claimed) {
            // A list element both name is present for both: only values can differ.
            let element = p
                .last()
                .is_some_and(|t| t.starts_with("k:") || t.starts_with("v:"));
            if !element && fields::value_at(live, p) != fields::value_at(applied, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    field: fields::display(p),
                });
                taken.push((i, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflicts);
    }
    for (i, p) in taken {
        entries[i].set.remove(&p);
    }
    let mine = entries.iter().position(|e| {
        e.manager == req.manager && e.operation == "Apply" && e.subresource == req.subresource
    });
    let previous = mine.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut merged = live.clone();
    for p in previous.difference(&claimed) {
        let owned_by_other = entries
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != mine && e.set.contains(p));
        if !owned_by_other {
            fields::remove_at(&mut merged, p);
        }
    }
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        if req.subresource.is_empty() {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
            ] {
                meta.remove(k);
            }
        }
    }
    merge::apply_merge(&mut merged, &body);
    let entry = Entry {
        manager: req.manager.to_owned(),
        operation: "Apply".into(),
        api_version: req.api_version.to_owned(),
        time: req.now.to_owned(),
        subresource: req.subresource.to_owned(),
        set: claimed,
    };
    match mine {
        Some(i) => {
            // Same fields: keep the time, so that a repeated apply is a no-op.
            if entries[i].set == entry.set && entries[i].api_version == entry.api_version {
                entries[i].set = entry.set;
            } else {
                entries[i] = entry;
            }
        }
        None => entries.push(entry),
    }
    entries.retain(|e| !e.set.is_empty());
    write(&mut merged, &entries);
    Ok(merged)
}

/// Records an update by `manager` (operation `Update`): the fields it changed become its own
/// and are taken from every other manager; fields it removed are nobody's any more.
pub fn record_update(
    old: &Value,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    now: &str,
    subresource: &str,
) {
    let mut entries = read(old);
    if manager.is_empty() {
        // The emulator's own writes (the built-in namespaces) are nobody's.
        write(new, &entries);
        return;
    }
    let before = fields::field_set(old);
    let after = fields::field_set(new);
    let changed: FieldSet = after
        .iter()
        .filter(|p| fields::value_at(old, p) != fields::value_at(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = before.difference(&after).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        write(new, &entries);
        return;
    }
    for e in entries.iter_mut() {
        e.set
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        Some(e) => {
            e.set.extend(changed);
            e.time = now.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Update".into(),
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            subresource: subresource.to_owned(),
            set: changed,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    write(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            force,
            api_version: "v1",
            now: "2026-01-01T00:00:00Z",
            subresource: "",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    fn skeleton() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    }

    #[test]
    fn a_field_set_to_another_value_by_another_manager_conflicts_unless_forced() {
        let live = apply(
            &skeleton(),
            &cm(json!({"a": "1", "b": "2"})),
            &req("alice", false),
        )
        .unwrap();
        let err = apply(&live, &cm(json!({"a": "9"})), &req("bob", false)).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "alice".into(),
                api_version: "v1".into(),
                field: ".data.a".into()
            }]
        );
        let forced = apply(&live, &cm(json!({"a": "9"})), &req("bob", true)).unwrap();
        assert_eq!(forced["data"], json!({"a": "9", "b": "2"}));
        let entries = read(&forced);
        assert_eq!(entries[0].manager, "alice");
        assert!(
            !entries[0]
                .set
                .contains(&vec!["f:data".to_string(), "f:a".to_string()])
        );
        assert!(
            entries[1]
                .set
                .contains(&vec!["f:data".to_string(), "f:a".to_string()])
        );
    }

    #[test]
    fn list_elements_are_shared_and_only_their_fields_conflict() {
        let pod = |image: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": image}]}});
        let live = apply(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
            &pod("x:1"),
            &req("alice", false),
        )
        .unwrap();
        let err = apply(&live, &pod("x:2"), &req("bob", false)).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, r#".spec.containers[name="a"].image"#);
    }

    #[test]
    fn the_same_value_is_shared_without_conflict() {
        let live = apply(&skeleton(), &cm(json!({"a": "1"})), &req("alice", false)).unwrap();
        let shared = apply(&live, &cm(json!({"a": "1"})), &req("bob", false)).unwrap();
        assert_eq!(read(&shared).len(), 2);
    }

    #[test]
    fn a_field_left_out_of_the_next_apply_is_removed_unless_someone_else_owns_it() {
        let live = apply(
            &skeleton(),
            &cm(json!({"a": "1", "b": "2"})),
            &req("alice", false),
        )
        .unwrap();
        let shared = apply(&live, &cm(json!({"b": "2"})), &req("bob", false)).unwrap();
        let next = apply(&shared, &cm(json!({})), &req("alice", false)).unwrap();
        assert_eq!(next["data"], json!({"b": "2"}));
    }

    #[test]
    fn applying_the_same_object_twice_changes_nothing() {
        let once = apply(&skeleton(), &cm(json!({"a": "1"})), &req("alice", false)).unwrap();
        let mut r = req("alice", false);
        r.now = "2027-01-01T00:00:00Z";
        let twice = apply(&once, &cm(json!({"a": "1"})), &r).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn an_update_takes_the_fields_it_changes() {
        let live = apply(
            &skeleton(),
            &cm(json!({"a": "1", "b": "2"})),
            &req("alice", false),
        )
        .unwrap();
        let mut new = live.clone();
        new["data"]["a"] = json!("edited");
        record_update(&live, &mut new, "kubectl-edit", "v1", "t", "");
        let entries = read(&new);
        assert_eq!(entries[1].manager, "kubectl-edit");
        assert_eq!(entries[1].operation, "Update");
        assert_eq!(entries[1].set.len(), 1);
        let err = apply(&new, &cm(json!({"a": "1", "b": "2"})), &req("alice", false)).unwrap_err();
        assert_eq!(err[0].manager, "kubectl-edit");
    }
}
