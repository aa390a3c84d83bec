//! The fields the built-in kinds declare, deep enough to catch the unknown fields a manifest
//! typo produces (`fieldValidation=Strict`). A field typed `*` is not looked into.

use serde_json::Value;

/// `(field, type)` pairs of one type; type `*` accepts anything, `[T]` is a list of `T`.
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
            ("replicas", "*"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("strategy", "*"),
            ("minReadySeconds", "*"),
            ("revisionHistoryLimit", "*"),
            ("paused", "*"),
            ("progressDeadlineSeconds", "*"),
        ],
        "StatefulSetSpec" => &[
            ("replicas", "*"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("volumeClaimTemplates", "*"),
            ("serviceName", "*"),
            ("podManagementPolicy", "*"),
            ("updateStrategy", "*"),
            ("revisionHistoryLimit", "*"),
            ("minReadySeconds", "*"),
            ("persistentVolumeClaimRetentionPolicy", "*"),
            ("ordinals", "*"),
        ],
        "DaemonSetSpec" => &[
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
            ("updateStrategy", "*"),
            ("minReadySeconds", "*"),
            ("revisionHistoryLimit", "*"),
        ],
        "ReplicaSetSpec" => &[
            ("replicas", "*"),
            ("minReadySeconds", "*"),
            ("selector", "*"),
            ("template", "PodTemplateSpec"),
        ],
        "JobSpec" => &[
            ("parallelism", "*"),
            ("completions", "*"),
            ("activeDeadlineSeconds", "*"),
            ("podFailurePolicy", "*"),
            ("successPolicy", "*"),
            ("backoffLimit", "*"),
            ("backoffLimitPerIndex", "*"),
            ("maxFailedIndexes", "*"),
            ("selector", "*"),
            ("manualSelector", "*"),
            ("template", "PodTemplateSpec"),
            ("ttlSecondsAfterFinished", "*"),
            ("completionMode", "*"),
            ("suspend", "*"),
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
            ("terminationGracePeriodSeconds", "*"),
            ("activeDeadlineSeconds", "*"),
            ("dnsPolicy", "*"),
            ("nodeSelector", "*"),
            ("serviceAccountName", "*"),
            ("serviceAccount", "*"),
            ("automountServiceAccountToken", "*"),
            ("nodeName", "*"),
            ("hostNetwork", "*"),
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
            ("name", "*"),
            ("image", "*"),
            ("command", "*"),
            ("args", "*"),
            ("workingDir", "*"),
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
            ("imagePullPolicy", "*"),
            ("securityContext", "*"),
            ("stdin", "*"),
            ("stdinOnce", "*"),
            ("tty", "*"),
        ],
        "ServiceSpec" => &[
            ("ports", "*"),
            ("selector", "*"),
            ("clusterIP", "*"),
            ("clusterIPs", "*"),
            ("type", "*"),
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
    let mut out = Vec::new();
    check(top_level(kind), obj, "", &mut out);
    out
}

fn check(fields: &[(&str, &str)], v: &Value, at: &str, out: &mut Vec<String>) {
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
            None => out.push(path),
            Some((_, "*")) => {}
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
}
