//! `Table` (`meta.k8s.io/v1`) renderings, the columns `kubectl get` prints for each kind.

use serde_json::{Value, json};

use crate::time;

/// One column: name, type, and whether it is only shown with `-o wide` (priority 1).
type Column = (&'static str, &'static str, u8);

fn columns(kind: &str) -> Vec<Column> {
    let mut c: Vec<Column> = match kind {
        "Pod" => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        "Deployment" => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "ReplicaSet" => vec![
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "StatefulSet" => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        "DaemonSet" => vec![
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            ("Age", "string", 0),
        ],
        "Job" => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
        ],
        "Service" => vec![
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        "ConfigMap" => vec![
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "Secret" => vec![
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "Namespace" => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        "ServiceAccount" => vec![
            ("Name", "string", 0),
            ("Secrets", "integer", 0),
            ("Age", "string", 0),
        ],
        "Ingress" => vec![
            ("Name", "string", 0),
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            ("Age", "string", 0),
        ],
        "Event" => vec![
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _ => vec![("Name", "string", 0), ("Created At", "date", 0)],
    };
    c.shrink_to_fit();
    c
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

fn count(v: &Value) -> i64 {
    v.as_object().map(|m| m.len() as i64).unwrap_or(0)
}

fn template_join(obj: &Value, field: &str) -> String {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| text(&c[field]))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector(obj: &Value) -> String {
    let labels = if obj["spec"]["selector"]["matchLabels"].is_object() {
        &obj["spec"]["selector"]["matchLabels"]
    } else {
        &obj["spec"]["selector"]
    };
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

fn cells(kind: &str, obj: &Value) -> Vec<Value> {
    let name = json!(text(&obj["metadata"]["name"]));
    let created = obj["metadata"]["creationTimestamp"].as_str();
    let age = json!(time::age(created));
    let s = &obj["status"];
    match kind {
        "Pod" => {
            let statuses = s["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses.iter().map(|c| num(&c["restartCount"])).sum();
            let waiting = statuses
                .iter()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_owned));
            let phase =
                waiting.unwrap_or_else(|| s["phase"].as_str().unwrap_or("Pending").to_owned());
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(phase),
                json!(restarts.to_string()),
                age,
                json!(s["podIP"].as_str().unwrap_or("<none>")),
                json!(obj["spec"]["nodeName"].as_str().unwrap_or("<none>")),
            ]
        }
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                num(&s["readyReplicas"]),
                num(&obj["spec"]["replicas"])
            )),
            json!(num(&s["updatedReplicas"])),
            json!(num(&s["availableReplicas"])),
            age,
            json!(template_join(obj, "name")),
            json!(template_join(obj, "image")),
            json!(selector(obj)),
        ],
        "ReplicaSet" => vec![
            name,
            json!(num(&obj["spec"]["replicas"])),
            json!(num(&s["replicas"])),
            json!(num(&s["readyReplicas"])),
            age,
            json!(template_join(obj, "name")),
            json!(template_join(obj, "image")),
            json!(selector(obj)),
        ],
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                num(&s["readyReplicas"]),
                num(&obj["spec"]["replicas"])
            )),
            age,
            json!(template_join(obj, "name")),
            json!(template_join(obj, "image")),
        ],
        "DaemonSet" => {
            let node_selector = obj["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", text(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(num(&s["desiredNumberScheduled"])),
                json!(num(&s["currentNumberScheduled"])),
                json!(num(&s["numberReady"])),
                json!(num(&s["updatedNumberScheduled"])),
                json!(num(&s["numberAvailable"])),
                json!(node_selector),
                age,
            ]
        }
        "Job" => {
            let complete = s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True");
            let failed = s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Failed" && c["status"] == "True");
            let state = if complete {
                "Complete"
            } else if failed {
                "Failed"
            } else {
                "Running"
            };
            let completions = num(&obj["spec"]["completions"]).max(1);
            vec![
                name,
                json!(state),
                json!(format!("{}/{completions}", num(&s["succeeded"]))),
                json!(""),
                age,
            ]
        }
        "Service" => {
            let ports = obj["spec"]["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                num(&p["port"]),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<none>".into());
            let external = s["loadBalancer"]["ingress"]
                .as_array()
                .and_then(|i| i.first())
                .and_then(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(text(&obj["spec"]["type"])),
                json!(obj["spec"]["clusterIP"].as_str().unwrap_or("<none>")),
                json!(external),
                json!(ports),
                age,
                json!(selector(obj)),
            ]
        }
        "ConfigMap" => vec![
            name,
            json!(count(&obj["data"]) + count(&obj["binaryData"])),
            age,
        ],
        "Secret" => vec![
            name,
            json!(text(&obj["type"])),
            json!(count(&obj["data"])),
            age,
        ],
        "Namespace" => vec![name, json!(s["phase"].as_str().unwrap_or("Active")), age],
        "ServiceAccount" => vec![
            name,
            json!(obj["secrets"].as_array().map_or(0, Vec::len)),
            age,
        ],
        "Ingress" => {
            let hosts = obj["spec"]["rules"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|r| r["host"].as_str().unwrap_or("*").to_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "*".into());
            let address = s["loadBalancer"]["ingress"]
                .as_array()
                .and_then(|i| i.first())
                .and_then(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                .unwrap_or("")
                .to_owned();
            vec![
                name,
                json!(obj["spec"]["ingressClassName"].as_str().unwrap_or("<none>")),
                json!(hosts),
                json!(address),
                json!("80"),
                age,
            ]
        }
        "Event" => {
            let last = obj["lastTimestamp"]
                .as_str()
                .or(obj["eventTime"].as_str())
                .or(created);
            let involved = &obj["involvedObject"];
            vec![
                json!(time::age(last)),
                json!(text(&obj["type"])),
                json!(text(&obj["reason"])),
                json!(format!(
                    "{}/{}",
                    text(&involved["kind"]).to_lowercase(),
                    text(&involved["name"])
                )),
                json!(text(&obj["message"])),
            ]
        }
        _ => vec![name, json!(created.unwrap_or(""))],
    }
}

/// How much of each object a row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(s: Option<&str>) -> Include {
        match s {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

fn row(kind: &str, obj: &Value, include: Include) -> Value {
    let object = match include {
        Include::None => Value::Null,
        Include::Object => obj.clone(),
        Include::Metadata => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        }
    };
    json!({"cells": cells(kind, obj), "object": object})
}

/// A Table of `objects`; `with_columns` false leaves the column definitions out (watch
/// events after the first).
pub fn table(
    kind: &str,
    objects: &[Value],
    include: Include,
    resource_version: &str,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let defs: Vec<Value> = if with_columns {
        columns(kind)
            .into_iter()
            .map(|(name, ty, priority)| {
                let format = if name == "Name" { "name" } else { "" };
                json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": objects.iter().map(|o| row(kind, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_one_cell_per_column() {
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "Service",
            "ConfigMap",
            "Secret",
            "Namespace",
            "ServiceAccount",
            "Ingress",
            "Event",
            "Role",
        ] {
            let obj =
                json!({"metadata": {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}});
            let t = table(kind, &[obj], Include::Metadata, "1", None, true);
            assert_eq!(
                t["rows"][0]["cells"].as_array().unwrap().len(),
                t["columnDefinitions"].as_array().unwrap().len(),
                "{kind}"
            );
        }
    }

    #[test]
    fn deployment_cells_read_replicas_from_spec_and_status() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells("Deployment", &d);
        assert_eq!(c[1], "2/3");
        assert_eq!(c[2], 3);
        assert_eq!(c[7], "app=web");
    }
}
