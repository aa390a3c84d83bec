//! The order objects are applied in (pure): what others depend on first, so that a Pod never
//! starts before its ConfigMap, Secret or ServiceAccount exists, and an Ingress points at a
//! Service that is there. Within one rank the manifests' own order is kept.

use crate::manifests::Manifest;
use std::ops::Range;

/// The rank of a kind: Namespaces, CRDs, ServiceAccounts, ConfigMaps, Secrets, RBAC, Services,
/// anything else (custom resources, PVCs, policies), workloads, Ingresses.
pub fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ServiceAccount" => 2,
        "ConfigMap" => 3,
        "Secret" => 4,
        "ClusterRole" | "Role" => 5,
        "ClusterRoleBinding" | "RoleBinding" => 6,
        "Service" => 7,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob" | "Pod" => 9,
        "Ingress" => 10,
        _ => 8,
    }
}

/// Whether objects of `kind` roll out (and are waited for).
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

/// The tiers of objects in apply order, given their kinds: each run of consecutive objects
/// of one [`rank`], as index ranges. Nothing in a tier needs another object of it to exist
/// first, so a tier is applied at once.
pub fn tiers(kinds: &[&str]) -> Vec<Range<usize>> {
    let mut tiers: Vec<Range<usize>> = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        match tiers.last_mut() {
            Some(tier) if rank(kinds[tier.start]) == rank(kind) => tier.end = i + 1,
            _ => tiers.push(i..i + 1),
        }
    }
    tiers
}

/// `manifests` in apply order (a stable sort by [`rank`]).
pub fn in_apply_order(mut manifests: Vec<Manifest>) -> Vec<Manifest> {
    manifests.sort_by_key(|m| rank(m.kind()));
    manifests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse;

    #[test]
    fn dependencies_come_first_and_the_manifest_order_is_kept_within_a_kind() {
        let kinds = [
            "Ingress",
            "Deployment",
            "Service",
            "RoleBinding",
            "Role",
            "Secret",
            "ConfigMap",
            "ServiceAccount",
            "CustomResourceDefinition",
            "Namespace",
            "Widget",
            "Job",
        ];
        let mut text = String::new();
        for (i, kind) in kinds.iter().enumerate() {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: {kind}\nmetadata: {{name: n{i}}}\n"
            ));
        }
        text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\n");
        let ordered = in_apply_order(parse("a.yaml", &text).unwrap());
        let seen: Vec<String> = ordered
            .iter()
            .map(|m| format!("{} {}", m.kind(), m.name()))
            .collect();
        assert_eq!(
            seen,
            [
                "Namespace n9",
                "CustomResourceDefinition n8",
                "ServiceAccount n7",
                "ConfigMap n6",
                "ConfigMap second",
                "Secret n5",
                "Role n4",
                "RoleBinding n3",
                "Service n2",
                "Widget n10",
                "Deployment n1",
                "Job n11",
                "Ingress n0",
            ]
        );
        assert!(is_workload("StatefulSet") && !is_workload("CronJob"));
    }

    #[test]
    fn tiers_are_runs_of_one_rank_in_the_order_given() {
        // The applyset's parent Secret comes right after the Namespaces: a tier of its own.
        let kinds = [
            "Namespace",
            "Namespace",
            "Secret",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "StatefulSet",
            "Ingress",
        ];
        assert_eq!(tiers(&kinds), [0..2, 2..3, 3..5, 5..7, 7..8]);
        assert!(tiers(&[]).is_empty());
    }
}
