//! Field paths and field sets, as server-side apply tracks ownership (`managedFields[].fieldsV1`).
//!
//! A path is a list of tokens in the fieldsV1 spelling: `f:<field>` (a map or struct field),
//! `k:{"name":"app"}` (an element of an associative list, by its keys), `v:<json>` (an element of
//! a set, e.g. `finalizers`). Which lists are associative, and by which keys, follows the
//! built-in types' `x-kubernetes-list-map-keys` for the fields shipkit's manifests use; every
//! other list is atomic (owned and replaced as a whole).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// One path in fieldsV1 spelling.
pub type Path = Vec<String>;
/// A set of owned paths.
pub type FieldSet = BTreeSet<Path>;

/// How a list field is merged and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Elements identified by these key fields.
    Map(&'static [&'static str]),
    /// Elements identified by their value.
    Set,
    /// Owned and replaced as a whole.
    Atomic,
}

/// The list semantics of field `name` holding `items` (ports differ between containers and
/// Services, so the items decide).
pub fn list_kind(name: &str, items: &[Value]) -> ListKind {
    match name {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => ListKind::Map(&["name"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "conditions" => ListKind::Map(&["type"]),
        "ports" if items.iter().all(|i| i.get("containerPort").is_some()) && !items.is_empty() => {
            ListKind::Map(&["containerPort", "protocol"])
        }
        "ports" if items.iter().all(|i| i.get("port").is_some()) && !items.is_empty() => {
            ListKind::Map(&["port", "protocol"])
        }
        "finalizers" => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// Fields whose whole value is owned as one (`+structType=atomic`, `+mapType=atomic`).
fn atomic_map(name: &str) -> bool {
    matches!(name, "selector" | "matchLabels" | "nodeSelector")
}

/// The key token of list element `item` (`k:{"containerPort":80,"protocol":"TCP"}`), with
/// keys in sorted order and `protocol` defaulted as the API server's schema defaults it.
pub fn key_token(keys: &[&str], item: &Value) -> String {
    let mut m = BTreeMap::new();
    for k in keys {
        let v = match item.get(*k) {
            Some(v) => v.clone(),
            None if *k == "protocol" => json!("TCP"),
            None => continue,
        };
        m.insert((*k).to_owned(), v);
    }
    format!("k:{}", serde_json::to_string(&m).unwrap_or_default())
}

/// Whether list element `item` is the one `token` (a `k:` or `v:` token) names.
fn matches_token(keys_or_set: &ListKind, token: &str, item: &Value) -> bool {
    match keys_or_set {
        ListKind::Map(keys) => key_token(keys, item) == token,
        ListKind::Set => format!("v:{item}") == token,
        ListKind::Atomic => false,
    }
}

/// Top-level and metadata fields the API server never records as owned.
fn untracked(path: &[String]) -> bool {
    match path {
        [one] => matches!(one.as_str(), "f:apiVersion" | "f:kind" | "f:status"),
        [m, f] if m == "f:metadata" => !matches!(
            f.as_str(),
            "f:labels" | "f:annotations" | "f:finalizers" | "f:ownerReferences"
        ),
        _ => false,
    }
}

/// The set of leaf paths (and list elements) `obj` sets: what applying it claims.
pub fn field_set(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(obj, &mut Vec::new(), "", &mut out);
    out
}

fn collect(v: &Value, path: &mut Path, name: &str, out: &mut FieldSet) {
    if untracked(path) {
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() && !atomic_map(name) => {
            for (k, child) in m {
                path.push(format!("f:{k}"));
                collect(child, path, k, out);
                path.pop();
            }
        }
        Value::Array(items) => match list_kind(name, items) {
            ListKind::Map(keys) => {
                for item in items {
                    path.push(key_token(keys, item));
                    out.insert(path.clone());
                    collect(item, path, "", out);
                    path.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// The value at `path` in `obj` (None when absent).
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    let mut name = "";
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            cur = cur.get(f)?;
            name = f;
        } else {
            let items = cur.as_array()?;
            let kind = list_kind(name, items);
            cur = items.iter().find(|i| matches_token(&kind, tok, i))?;
            name = "";
        }
    }
    Some(cur)
}

/// Removes what `path` names from `obj` (a field, or a list element); absent is fine.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let name = parent_path
        .last()
        .and_then(|t| t.strip_prefix("f:"))
        .unwrap_or("")
        .to_owned();
    let Some(parent) = value_at_mut(obj, parent_path) else {
        return;
    };
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = parent.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = parent.as_array_mut() {
        let kind = list_kind(&name, items);
        items.retain(|i| !matches_token(&kind, last, i));
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    let mut name = String::new();
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
            name = f.to_owned();
        } else {
            let kind = list_kind(&name, cur.as_array()?);
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| matches_token(&kind, tok, i))?;
            name.clear();
        }
    }
    Some(cur)
}

/// A path as kubectl shows it in a conflict: `.spec.template.spec.containers[name="app"].image`.
pub fn display(path: &[String]) -> String {
    let mut s = String::new();
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = tok.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = tok.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// The fieldsV1 tree of a set: nested objects, `"."` marking an element that is itself owned.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for tok in path {
            cur = cur
                .entry(tok.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    // A member with children gets ".": {} so that it stays a member when read back.
    let mut tree = Value::Object(root);
    mark_members(&mut tree, &mut Vec::new(), set);
    tree
}

fn mark_members(node: &mut Value, path: &mut Path, set: &FieldSet) {
    let Some(m) = node.as_object_mut() else {
        return;
    };
    if !path.is_empty() && !m.is_empty() && set.contains(path) {
        m.insert(".".into(), json!({}));
    }
    for (k, child) in m.iter_mut() {
        if k == "." {
            continue;
        }
        path.push(k.clone());
        mark_members(child, path, set);
        path.pop();
    }
}

/// Reads a fieldsV1 tree back into a set.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    read_tree(tree, &mut Vec::new(), &mut out);
    out
}

fn read_tree(node: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = node.as_object() else {
        return;
    };
    if m.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    if m.contains_key(".") {
        out.insert(path.clone());
    }
    for (k, child) in m {
        if k == "." {
            continue;
        }
        path.push(k.clone());
        read_tree(child, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "nginx", "args": ["-x"], "ports": [{"containerPort": 80}]}
                ]}}
            }
        })
    }

    fn p(tokens: &[&str]) -> Path {
        tokens.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_field_set_has_leaves_list_elements_and_atomic_values_only() {
        let s = field_set(&deployment());
        let c = r#"k:{"name":"app"}"#;
        assert!(s.contains(&p(&["f:metadata", "f:labels", "f:app"])));
        assert!(s.contains(&p(&["f:spec", "f:replicas"])));
        assert!(
            s.contains(&p(&["f:spec", "f:selector"])),
            "selector is atomic"
        );
        assert!(s.contains(&p(&["f:spec", "f:template", "f:spec", "f:containers", c])));
        assert!(s.contains(&p(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            c,
            "f:args"
        ])));
        let port = r#"k:{"containerPort":80,"protocol":"TCP"}"#;
        assert!(s.contains(&p(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            c,
            "f:ports",
            port,
            "f:containerPort"
        ])));
        assert!(!s.iter().any(|p| p[0] == "f:apiVersion"
            || p.get(1).is_some_and(|t| t == "f:name") && p[0] == "f:metadata"));
    }

    #[test]
    fn fields_v1_round_trips_and_marks_owned_elements() {
        let s = field_set(&deployment());
        let tree = to_fields_v1(&s);
        let c = &tree["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"app"}"#];
        assert_eq!(c["."], json!({}));
        assert_eq!(c["f:image"], json!({}));
        assert_eq!(from_fields_v1(&tree), s);
    }

    #[test]
    fn values_are_found_and_removed_by_path() {
        let mut d = deployment();
        let img = p(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            r#"k:{"name":"app"}"#,
            "f:image",
        ]);
        assert_eq!(value_at(&d, &img), Some(&json!("nginx")));
        assert_eq!(
            display(&img),
            r#".spec.template.spec.containers[name="app"].image"#
        );
        remove_at(
            &mut d,
            &p(&[
                "f:spec",
                "f:template",
                "f:spec",
                "f:containers",
                r#"k:{"name":"app"}"#,
            ]),
        );
        assert_eq!(d["spec"]["template"]["spec"]["containers"], json!([]));
        remove_at(&mut d, &p(&["f:spec", "f:replicas"]));
        assert!(d["spec"].get("replicas").is_none());
    }

    #[test]
    fn service_and_container_ports_are_keyed_differently() {
        assert_eq!(
            list_kind("ports", &[json!({"port": 80})]),
            ListKind::Map(&["port", "protocol"])
        );
        assert_eq!(
            list_kind("ports", &[json!({"containerPort": 80})]),
            ListKind::Map(&["containerPort", "protocol"])
        );
        assert_eq!(list_kind("args", &[json!("a")]), ListKind::Atomic);
    }
}
