//! `/openapi/v3` and one document per group version. They declare each resource's
//! operations with `x-kubernetes-group-version-kind` and the `fieldValidation` parameter on
//! `patch`, which is what kubectl's default `--validate=strict` looks for before it leaves
//! validation to the server (the schemas themselves are not served).

use serde_json::{Map, Value, json};

use crate::resources::{self, ResourceType};

/// The path of a group version's document, relative to `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the documents, each with a hash kubectl caches by.
pub fn root() -> Value {
    let mut paths = Map::new();
    let mut gvs = vec![("", "v1")];
    gvs.extend(resources::groups());
    for (g, v) in gvs {
        let p = gv_path(g, v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=shipkit-{}", env!("CARGO_PKG_VERSION"))}));
    }
    json!({"paths": paths})
}

fn params(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect()
}

fn operation(rt: &ResourceType, action: &str, query: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", rt.kind),
        "parameters": params(query),
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    })
}

/// The document of one group version (`api/v1`, `apis/apps/v1`), None when not served.
pub fn document(path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>()[..] {
        ["api", v] => ("", v),
        ["apis", g, v] => (g, v),
        _ => return None,
    };
    let types = resources::in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let write = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    let patch = [
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "force",
        "pretty",
    ];
    let mut paths = Map::new();
    for rt in types {
        let base = format!("/{}", gv_path(group, version));
        let scope = if rt.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let collection = format!("{base}{scope}/{}", rt.plural);
        paths.insert(collection.clone(), json!({
            "get": operation(rt, "list", &["labelSelector", "fieldSelector", "limit", "continue", "watch", "resourceVersion"]),
            "post": operation(rt, "post", &write),
        }));
        let item = json!({
            "get": operation(rt, "get", &["pretty"]),
            "put": operation(rt, "put", &write),
            "patch": operation(rt, "patch", &patch),
            "delete": operation(rt, "delete", &["dryRun", "propagationPolicy", "gracePeriodSeconds"]),
        });
        paths.insert(format!("{collection}/{{name}}"), item);
        if rt.has_status {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({
                    "get": operation(rt, "get", &["pretty"]),
                    "put": operation(rt, "put", &write),
                    "patch": operation(rt, "patch", &patch),
                }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_declares_field_validation_for_every_kind_kubectl_checks() {
        let doc = document("apis/apps/v1").unwrap();
        let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            p["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == "fieldValidation")
        );
        assert!(
            root()["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert!(document("apis/nope/v1").is_none());
    }
}
