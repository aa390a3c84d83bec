//! The defaults the API server fills in (the built-in types' `SetDefaults_*`), so that what a
//! client reads back — and what `kubectl diff` compares — matches a real cluster. Pure.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Fills in `obj`'s defaults for its `kind`.
pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Deployment" => deployment(obj),
        "StatefulSet" => stateful_set(obj),
        "DaemonSet" => daemon_set(obj),
        "ReplicaSet" => {
            set(spec(obj), "replicas", json!(1));
            pod_template(obj);
        }
        "Job" => job(obj),
        "Pod" => {
            if let Some(s) = obj.get_mut("spec") {
                pod_spec(s);
            }
        }
        "Service" => service(obj),
        "Secret" => secret(obj),
        "Namespace" => namespace(obj),
        _ => {}
    }
}

fn set(m: &mut Map<String, Value>, key: &str, v: Value) {
    m.entry(key.to_owned()).or_insert(v);
}

fn obj_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

fn spec(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    obj_at(obj.as_object_mut().expect("an object"), "spec")
}

fn deployment(obj: &mut Value) {
    let s = spec(obj);
    set(s, "replicas", json!(1));
    set(s, "revisionHistoryLimit", json!(10));
    set(s, "progressDeadlineSeconds", json!(600));
    let strategy = obj_at(s, "strategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") == Some(&json!("RollingUpdate")) {
        let ru = obj_at(strategy, "rollingUpdate");
        set(ru, "maxSurge", json!("25%"));
        set(ru, "maxUnavailable", json!("25%"));
    }
    pod_template(obj);
}

fn stateful_set(obj: &mut Value) {
    let s = spec(obj);
    set(s, "replicas", json!(1));
    set(s, "podManagementPolicy", json!("OrderedReady"));
    set(s, "revisionHistoryLimit", json!(10));
    let us = obj_at(s, "updateStrategy");
    set(us, "type", json!("RollingUpdate"));
    if us.get("type") == Some(&json!("RollingUpdate")) {
        set(obj_at(us, "rollingUpdate"), "partition", json!(0));
    }
    let retention = obj_at(s, "persistentVolumeClaimRetentionPolicy");
    set(retention, "whenDeleted", json!("Retain"));
    set(retention, "whenScaled", json!("Retain"));
    pod_template(obj);
}

fn daemon_set(obj: &mut Value) {
    let s = spec(obj);
    set(s, "revisionHistoryLimit", json!(10));
    let us = obj_at(s, "updateStrategy");
    set(us, "type", json!("RollingUpdate"));
    if us.get("type") == Some(&json!("RollingUpdate")) {
        let ru = obj_at(us, "rollingUpdate");
        set(ru, "maxUnavailable", json!(1));
        set(ru, "maxSurge", json!(0));
    }
    pod_template(obj);
}

fn job(obj: &mut Value) {
    let s = spec(obj);
    set(s, "parallelism", json!(1));
    set(s, "completions", json!(1));
    set(s, "backoffLimit", json!(6));
    set(s, "completionMode", json!("NonIndexed"));
    set(s, "suspend", json!(false));
    set(s, "podReplacementPolicy", json!("TerminatingOrFailed"));
    set(s, "manualSelector", json!(false));
    pod_template(obj);
}

fn pod_template(obj: &mut Value) {
    let t = obj_at(spec(obj), "template");
    pod_spec(t.entry("spec").or_insert_with(|| json!({})));
}

/// Pod spec defaults, also inside every workload's template.
pub fn pod_spec(s: &mut Value) {
    let Some(m) = s.as_object_mut() else {
        return;
    };
    set(m, "restartPolicy", json!("Always"));
    set(m, "terminationGracePeriodSeconds", json!(30));
    set(m, "dnsPolicy", json!("ClusterFirst"));
    set(m, "securityContext", json!({}));
    set(m, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = m.get_mut(list) {
            cs.iter_mut().for_each(container);
        }
    }
}

fn container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(m) = c.as_object_mut() else {
        return;
    };
    set(m, "imagePullPolicy", json!(pull_policy(&image)));
    set(m, "terminationMessagePath", json!("/dev/termination-log"));
    set(m, "terminationMessagePolicy", json!("File"));
    set(m, "resources", json!({}));
    if let Some(Value::Array(ports)) = m.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = m.get_mut(probe) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            if let Some(Value::Object(h)) = p.get_mut("httpGet") {
                set(h, "scheme", json!("HTTP"));
            }
        }
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent` (a digest counts as a tag).
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn service(obj: &mut Value) {
    let s = spec(obj);
    set(s, "type", json!("ClusterIP"));
    set(s, "sessionAffinity", json!("None"));
    set(s, "internalTrafficPolicy", json!("Cluster"));
    set(s, "ipFamilies", json!(["IPv4"]));
    set(s, "ipFamilyPolicy", json!("SingleStack"));
    if let Some(Value::Array(ports)) = s.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set(p, "targetPort", port);
            }
        }
    }
}

fn secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    set(m, "type", json!("Opaque"));
    // stringData is write-only: folded into data, base64-encoded.
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = obj_at(m, "data");
        for (k, v) in sd {
            let text = v.as_str().unwrap_or_default().to_owned();
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(m) = obj.as_object_mut() {
        set(
            obj_at(obj_at(m, "metadata"), "labels"),
            "kubernetes.io/metadata.name",
            json!(name),
        );
        set(obj_at(m, "spec"), "finalizers", json!(["kubernetes"]));
        set(obj_at(m, "status"), "phase", json!("Active"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_deployment_gets_the_api_servers_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        apply("Deployment", &mut d);
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        let c = &s["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(s["template"]["spec"]["terminationGracePeriodSeconds"], 30);
    }

    #[test]
    fn explicit_values_win_and_recreate_has_no_rolling_update() {
        let mut d = json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}, "template": {"spec": {"containers": []}}}});
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn services_and_secrets_are_defaulted() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply("Service", &mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        let mut sec = json!({"stringData": {"k": "v"}});
        apply("Secret", &mut sec);
        assert_eq!(sec, json!({"type": "Opaque", "data": {"k": "dg=="}}));
    }
}
