//! The resource types each cluster serves: group, version, plural, kind, scope. Discovery,
//! routing, OpenAPI and Table rendering all read this one table.

/// One served resource type (`/apis/<group>/<version>/<plural>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Whether `<plural>/status` is a subresource (status changes only through it).
    pub has_status: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: how kubectl names the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether `metadata.generation` is kept, counting changes of `spec` (the workloads,
    /// Ingress, CRDs; ConfigMaps, Services, Pods have none).
    pub fn tracks_generation(&self) -> bool {
        is_custom(self)
            || matches!(
                self.kind,
                "Deployment"
                    | "ReplicaSet"
                    | "StatefulSet"
                    | "DaemonSet"
                    | "Job"
                    | "Ingress"
                    | "CustomResourceDefinition"
                    | "HorizontalPodAutoscaler"
            )
    }
}

// One row of the table below, positional so that the table reads as one.
#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        has_status,
    }
}

/// Every built-in resource type, in discovery order.
pub static BUILTIN: &[ResourceType] = &[
    rt(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
    ),
    rt("", "v1", "pods", "pod", "Pod", true, &["po"], true),
    rt(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
    ),
    rt(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
    ),
    rt("", "v1", "secrets", "secret", "Secret", true, &[], false),
    rt(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    rt("", "v1", "events", "event", "Event", true, &["ev"], false),
    rt(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
    ),
    rt(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        true,
    ),
    rt(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        true,
    ),
    rt(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        true,
    ),
    rt("batch", "v1", "jobs", "job", "Job", true, &[], true),
    rt(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        true,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
    ),
    rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
    ),
    rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
    ),
];

/// The groups (other than core), each with its one version, in discovery order.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in BUILTIN.iter().filter(|r| !r.group.is_empty()) {
        if !out.iter().any(|(g, _)| *g == r.group) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resource type served at `group`/`version`/`plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource type of `apiVersion` + `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    BUILTIN
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Every resource type of one group version.
pub fn in_group_version(group: &str, version: &str) -> Vec<&'static ResourceType> {
    BUILTIN
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

/// The custom resource types each cluster serves (from its Established CRDs), leaked so that
/// they live as long as the built-in ones: a few per CRD, for the life of a test process.
static CUSTOM: std::sync::Mutex<Vec<(String, &'static ResourceType)>> =
    std::sync::Mutex::new(Vec::new());

fn custom() -> std::sync::MutexGuard<'static, Vec<(String, &'static ResourceType)>> {
    CUSTOM.lock().unwrap_or_else(|e| e.into_inner())
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// Serves a custom resource type in `cluster` (the same one again: nothing new).
#[allow(clippy::too_many_arguments)]
pub fn register(
    cluster: &str,
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[String],
    has_status: bool,
) -> &'static ResourceType {
    let mut all = custom();
    if let Some((_, rt)) = all.iter().find(|(c, rt)| {
        c == cluster
            && rt.group == group
            && rt.version == version
            && rt.plural == plural
            && rt.kind == kind
            && rt.namespaced == namespaced
    }) {
        return rt;
    }
    all.retain(|(c, rt)| !(c == cluster && rt.group == group && rt.plural == plural));
    let shorts: Vec<&'static str> = short_names.iter().map(|s| leak(s)).collect();
    let rt: &'static ResourceType = Box::leak(Box::new(ResourceType {
        group: leak(group),
        version: leak(version),
        plural: leak(plural),
        singular: leak(singular),
        kind: leak(kind),
        namespaced,
        short_names: Box::leak(shorts.into_boxed_slice()),
        has_status,
    }));
    all.push((cluster.to_owned(), rt));
    rt
}

/// Stops serving `group`'s `plural` in `cluster` (its CRD was deleted).
pub fn unregister(cluster: &str, group: &str, plural: &str) {
    custom().retain(|(c, rt)| !(c == cluster && rt.group == group && rt.plural == plural));
}

/// Whether `rt` is a custom resource type.
pub fn is_custom(rt: &ResourceType) -> bool {
    !BUILTIN
        .iter()
        .any(|b| b.group == rt.group && b.plural == rt.plural)
}

/// Every type `cluster` serves: the built-in ones, then its custom ones.
pub fn all_in(cluster: &str) -> Vec<&'static ResourceType> {
    let mut out: Vec<&'static ResourceType> = BUILTIN.iter().collect();
    out.extend(
        custom()
            .iter()
            .filter(|(c, _)| c == cluster)
            .map(|(_, rt)| *rt),
    );
    out
}

/// [`find`], custom types of `cluster` included.
pub fn find_in(
    cluster: &str,
    group: &str,
    version: &str,
    plural: &str,
) -> Option<&'static ResourceType> {
    all_in(cluster)
        .into_iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// [`groups`], custom groups of `cluster` included.
pub fn groups_in(cluster: &str) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in all_in(cluster).into_iter().filter(|r| !r.group.is_empty()) {
        if !out.iter().any(|(g, v)| *g == r.group && *v == r.version) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// [`in_group_version`], custom types of `cluster` included.
pub fn in_group_version_in(
    cluster: &str,
    group: &str,
    version: &str,
) -> Vec<&'static ResourceType> {
    all_in(cluster)
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_named_groups_are_addressed_as_kubectl_does() {
        let d = find("apps", "v1", "deployments").unwrap();
        assert_eq!(d.api_version(), "apps/v1");
        assert_eq!(d.qualified(), "deployments.apps");
        let p = by_kind("v1", "Pod").unwrap();
        assert_eq!(p.qualified(), "pods");
        assert!(!by_kind("v1", "Namespace").unwrap().namespaced);
        assert!(by_kind("apps/v1", "Pod").is_none());
    }

    #[test]
    fn custom_types_are_served_by_their_cluster_only() {
        let rt = register(
            "c1",
            "example.com",
            "v1",
            "widgets",
            "widget",
            "Widget",
            true,
            &["wg".into()],
            false,
        );
        assert!(is_custom(rt));
        assert_eq!(
            find_in("c1", "example.com", "v1", "widgets").map(|r| r.kind),
            Some("Widget")
        );
        assert!(find_in("c2", "example.com", "v1", "widgets").is_none());
        assert!(groups_in("c1").contains(&("example.com", "v1")));
        let again = register(
            "c1",
            "example.com",
            "v1",
            "widgets",
            "widget",
            "Widget",
            true,
            &[],
            false,
        );
        assert!(std::ptr::eq(rt, again));
        unregister("c1", "example.com", "widgets");
        assert!(find_in("c1", "example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn each_group_is_listed_once() {
        let g = groups();
        assert_eq!(g[0], ("apps", "v1"));
        assert_eq!(
            g.iter()
                .filter(|(n, _)| *n == "rbac.authorization.k8s.io")
                .count(),
            1
        );
    }
}
