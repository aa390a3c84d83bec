//! The fields the built-in kinds declare, deep enough to catch the unknown fields a manifest
//! typo produces (`fieldValidation=Strict`), and the scalar fields whose JSON type a real
//! API server's decoder checks (`replicas: three` cannot be an int32: 400, whatever the
//! validation mode). A field typed `*` is not looked into.

use serde_json::Value;

/// `(field, type)` pairs of one type; type `*` accepts anything, `[T]` is a list of `T`;
/// `int32`, `int64`, `bool` and `string` are scalars of that JSON type (or null).
fn declared(type_name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match type_name {
        "ObjectMeta" => &[
            ("name", "*"),
            ("generateName", "*"),
            ("namespace", "*"),
            ("labels", "*"),
            ("annotations", "*"),
            ("finalizers", "*"),
            ("ownerReferences", "*"),
            ("uid", "*"),
            ("resourceVersion", "*"),
            ("generation", "*"),
            ("creationTimestamp", "*"),
            ("deletionTimestamp", "*"),
            ("deletionGracePeriodSeconds", "*"),
            ("managedFields", "*"),
            ("selfLink", "*"),
        ],
        "DeploymentSpec" => &[
            ("replicas", "int32"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("strategy", "*"),
            ("minReadySeconds", "int32"),
            ("revisionHistoryLimit", "int32"),
            ("paused", "bool"),
            ("progressDeadlineSeconds", "int32"),
        ],
        "StatefulSetSpec" => &[
            ("replicas", "int32"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("volumeClaimTemplates", "*"),
            ("serviceName", "string"),
            ("podManagementPolicy", "*"),
            ("updateStrategy", "*"),
            ("revisionHistoryLimit", "int32"),
            ("minReadySeconds", "int32"),
            ("persistentVolumeClaimRetentionPolicy", "*"),
            ("ordinals", "*"),
        ],
        "DaemonSetSpec" => &[
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("updateStrategy", "*"),
            ("minReadySeconds", "int32"),
            ("revisionHistoryLimit", "int32"),
        ],
        "ReplicaSetSpec" => &[
            ("replicas", "int32"),
            ("minReadySeconds", "int32"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
        ],
        "JobSpec" => &[
            ("parallelism", "int32"),
            ("completions", "int32"),
            ("activeDeadlineSeconds", "int64"),
            ("podFailurePolicy", "*"),
            ("successPolicy", "*"),
            ("backoffLimit", "int32"),
            ("backoffLimitPerIndex", "*"),
            ("maxFailedIndexes", "*"),
            ("selector", "*"),
            ("manualSelector", "*"),
            ("template", "PodTemplateSpec"),
            ("ttlSecondsAfterFinished", "int32"),
            ("completionMode", "*"),
            ("suspend", "bool"),
            ("podReplacementPolicy", "*"),
            ("managedBy", "*"),
        ],
        "PodTemplateSpec" => &[("metadata", "ObjectMeta"), ("spec", "PodSpec")],
        "PodSpec" => &[
            ("volumes", "*"),
            ("initContainers", "[Container]"),
            ("containers", "[Container]"),
            ("ephemeralContainers", "*"),
            ("restartPolicy", "*"),
            ("terminationGracePeriodSeconds", "int64"),
            ("activeDeadlineSeconds", "int64"),
            ("dnsPolicy", "*"),
            ("nodeSelector", "*"),
            ("serviceAccountName", "string"),
            ("serviceAccount", "*"),
            ("automountServiceAccountToken", "bool"),
            ("nodeName", "*"),
            ("hostNetwork", "bool"),
            ("hostPID", "*"),
            ("hostIPC", "*"),
            ("shareProcessNamespace", "*"),
            ("securityContext", "*"),
            ("imagePullSecrets", "*"),
            ("hostname", "*"),
            ("subdomain", "*"),
            ("affinity", "*"),
            ("schedulerName", "*"),
            ("tolerations", "*"),
            ("hostAliases", "*"),
            ("priorityClassName", "*"),
            ("priority", "*"),
            ("dnsConfig", "*"),
            ("readinessGates", "*"),
            ("runtimeClassName", "*"),
            ("enableServiceLinks", "*"),
            ("preemptionPolicy", "*"),
            ("overhead", "*"),
            ("topologySpreadConstraints", "*"),
            ("setHostnameAsFQDN", "*"),
            ("os", "*"),
            ("hostUsers", "*"),
            ("schedulingGates", "*"),
            ("resourceClaims", "*"),
            ("resources", "*"),
        ],
        "Container" => &[
            ("name", "string"),
            ("image", "string"),
            ("command", "*"),
            ("args", "*"),
            ("workingDir", "string"),
            ("ports", "*"),
            ("envFrom", "*"),
            ("env", "*"),
            ("resources", "*"),
            ("resizePolicy", "*"),
            ("restartPolicy", "*"),
            ("volumeMounts", "*"),
            ("volumeDevices", "*"),
            ("livenessProbe", "*"),
            ("readinessProbe", "*"),
            ("startupProbe", "*"),
            ("lifecycle", "*"),
            ("terminationMessagePath", "*"),
            ("terminationMessagePolicy", "*"),
            ("imagePullPolicy", "string"),
            ("securityContext", "*"),
            ("stdin", "bool"),
            ("stdinOnce", "*"),
            ("tty", "bool"),
        ],
        "ServiceSpec" => &[
            ("ports", "*"),
            ("selector", "*"),
            ("clusterIP", "string"),
            ("clusterIPs", "*"),
            ("type", "string"),
            ("externalIPs", "*"),
            ("sessionAffinity", "*"),
            ("loadBalancerIP", "*"),
            ("loadBalancerSourceRanges", "*"),
            ("externalName", "*"),
            ("externalTrafficPolicy", "*"),
            ("healthCheckNodePort", "*"),
            ("publishNotReadyAddresses", "*"),
            ("sessionAffinityConfig", "*"),
            ("ipFamilies", "*"),
            ("ipFamilyPolicy", "*"),
            ("allocateLoadBalancerNodePorts", "*"),
            ("loadBalancerClass", "*"),
            ("internalTrafficPolicy", "*"),
            ("trafficDistribution", "*"),
        ],
        _ => return None,
    })
}

/// The top-level fields of `kind`.
fn top_level(kind: &str) -> &'static [(&'static str, &'static str)] {
    const BASE: [(&str, &str); 3] = [
        ("apiVersion", "*"),
        ("kind", "*"),
        ("metadata", "ObjectMeta"),
    ];
    macro_rules! with_base {
        ($($f:expr),*) => {{
            const FIELDS: &[(&str, &str)] = &[BASE[0], BASE[1], BASE[2], $($f),*];
            FIELDS
        }};
    }
    match kind {
        "Deployment" => with_base!(("spec", "DeploymentSpec"), ("status", "*")),
        "StatefulSet" => with_base!(("spec", "StatefulSetSpec"), ("status", "*")),
        "DaemonSet" => with_base!(("spec", "DaemonSetSpec"), ("status", "*")),
        "ReplicaSet" => with_base!(("spec", "ReplicaSetSpec"), ("status", "*")),
        "Job" => with_base!(("spec", "JobSpec"), ("status", "*")),
        "Pod" => with_base!(("spec", "PodSpec"), ("status", "*")),
        "Service" => with_base!(("spec", "ServiceSpec"), ("status", "*")),
        "ConfigMap" => with_base!(("data", "*"), ("binaryData", "*"), ("immutable", "*")),
        "Secret" => with_base!(
            ("data", "*"),
            ("stringData", "*"),
            ("type", "*"),
            ("immutable", "*")
        ),
        "ServiceAccount" => with_base!(
            ("secrets", "*"),
            ("imagePullSecrets", "*"),
            ("automountServiceAccountToken", "*")
        ),
        "Role" | "ClusterRole" => with_base!(("rules", "*"), ("aggregationRule", "*")),
        "RoleBinding" | "ClusterRoleBinding" => with_base!(("subjects", "*"), ("roleRef", "*")),
        "Event" => &[("*", "*")],
        _ => with_base!(("spec", "*"), ("status", "*")),
    }
}

/// The unknown fields of `obj` (a `kind`), as paths: `spec.template.spec.containers[0].imagee`.
pub fn unknown_fields(kind: &str, obj: &Value) -> Vec<String> {
    let mut found = Found::default();
    check(top_level(kind), obj, "", &mut found);
    found.unknown
}

/// A scalar field of the wrong JSON type: where, what it should be, what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongType {
    pub path: String,
    pub expected: &'static str,
    pub got: &'static str,
}

/// The declared scalar fields of `obj` (a `kind`) whose JSON type is not theirs.
pub fn wrong_types(kind: &str, obj: &Value) -> Vec<WrongType> {
    let mut found = Found::default();
    check(top_level(kind), obj, "", &mut found);
    found.wrong
}

#[derive(Default)]
struct Found {
    unknown: Vec<String>,
    wrong: Vec<WrongType>,
}

/// The JSON type of `v`, in Go's decoder's words.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `v` fits the scalar type `ty`; `None` when `ty` is not a scalar type.
fn fits_scalar(ty: &str, v: &Value) -> Option<bool> {
    let fits = match ty {
        "int32" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "int64" => v.as_i64().is_some(),
        "bool" => v.is_boolean(),
        "string" => v.is_string(),
        _ => return None,
    };
    Some(fits || v.is_null())
}

fn check(fields: &[(&str, &'static str)], v: &Value, at: &str, out: &mut Found) {
    let Some(m) = v.as_object() else {
        return;
    };
    if fields.first().is_some_and(|(f, _)| *f == "*") {
        return;
    }
    for (k, child) in m {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        match fields.iter().find(|(f, _)| f == k) {
            None => out.unknown.push(path),
            Some((_, "*")) => {}
            Some((_, ty)) if fits_scalar(ty, child).is_some() => {
                if fits_scalar(ty, child) == Some(false) {
                    out.wrong.push(WrongType {
                        path,
                        expected: ty,
                        got: json_type(child),
                    });
                }
            }
            Some((_, ty)) => {
                if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                    let decl = declared(inner).unwrap_or(&[]);
                    for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                        check(decl, item, &format!("{path}[{i}]"), out);
                    }
                } else if let Some(decl) = declared(ty) {
                    check(decl, child, &path, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_are_found_at_every_depth_and_free_form_maps_are_not_checked() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"anything": "goes"}},
            "spec": {"replicass": 2, "template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}
        });
        assert_eq!(
            unknown_fields("Deployment", &d),
            ["spec.replicass", "spec.template.spec.containers[0].imagee"]
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}, "dta": {}});
        assert_eq!(unknown_fields("ConfigMap", &cm), ["dta"]);
    }

    #[test]
    fn scalars_of_the_wrong_json_type_are_found_and_null_is_not_one() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "three", "paused": null, "revisionHistoryLimit": 3_000_000_000_i64,
                     "template": {"spec": {"containers": [{"name": "a", "image": 5}]}}}
        });
        let wrong = wrong_types("Deployment", &d);
        let seen: Vec<(&str, &str, &str)> = wrong
            .iter()
            .map(|w| (w.path.as_str(), w.expected, w.got))
            .collect();
        assert_eq!(
            seen,
            [
                ("spec.replicas", "int32", "string"),
                ("spec.revisionHistoryLimit", "int32", "number"),
                ("spec.template.spec.containers[0].image", "string", "number"),
            ]
        );
        assert!(unknown_fields("Deployment", &d).is_empty());
    }
}
