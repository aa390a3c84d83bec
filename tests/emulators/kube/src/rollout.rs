//! The Deployment controller's decisions, as pure functions: the pod-template hash, how far
//! a rolling update may scale the new and old ReplicaSets (maxSurge / maxUnavailable), and the
//! status and conditions `kubectl rollout status` reads.

use serde_json::{Value, json};

/// `pod-template-hash`: a short, stable name for a pod template (the label on the
/// ReplicaSet and its pods, and the ReplicaSet's name suffix).
pub fn template_hash(template: &Value) -> String {
    // FNV-1a over the JSON with sorted keys: the same template reached by another path
    // (`kubectl rollout undo` copies it back from a ReplicaSet) hashes the same.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical(template).to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| CHARS[((h >> (i * 6)) % CHARS.len() as u64) as usize] as char)
        .collect()
}

/// `v` with every object's keys in sorted order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// An int-or-percent (`1`, `"25%"`) of `total`, rounded up or down.
pub fn scaled(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// `(maxSurge, maxUnavailable)` of a RollingUpdate strategy for `replicas` (both 0 would
/// deadlock: the API server refuses it, the controller treats unavailable as 1).
pub fn surge_and_unavailable(strategy: &Value, replicas: i64) -> (i64, i64) {
    let ru = &strategy["rollingUpdate"];
    let surge = scaled(ru.get("maxSurge").unwrap_or(&json!("25%")), replicas, true);
    let mut unavailable = scaled(
        ru.get("maxUnavailable").unwrap_or(&json!("25%")),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

/// One ReplicaSet as the Deployment controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rs {
    pub name: String,
    /// `spec.replicas`.
    pub desired: i64,
    /// `status.replicas`, `readyReplicas`, `availableReplicas`.
    pub current: i64,
    pub ready: i64,
    pub available: i64,
}

/// The new ReplicaSet's next `spec.replicas` in a rolling update: up to `replicas`, while
/// all ReplicaSets together stay within `replicas + maxSurge`.
pub fn scale_up_new(replicas: i64, surge: i64, new: &Rs, old: &[Rs]) -> i64 {
    if new.desired >= replicas {
        return replicas;
    }
    let total: i64 = new.desired + old.iter().map(|r| r.desired).sum::<i64>();
    let room = (replicas + surge - total).max(0);
    (new.desired + room).min(replicas)
}

/// The old ReplicaSets' next `spec.replicas`: scaled down only as far as keeps
/// `replicas - maxUnavailable` pods available overall, oldest (first) first; pods that are not
/// available are removed first since they count for nothing.
pub fn scale_down_old(replicas: i64, unavailable: i64, new: &Rs, old: &[Rs]) -> Vec<i64> {
    let min_available = replicas - unavailable;
    let available: i64 = new.available + old.iter().map(|r| r.available).sum::<i64>();
    let mut budget = (available - min_available).max(0);
    old.iter()
        .map(|r| {
            // Unavailable pods of an old ReplicaSet go at once.
            let unhealthy = (r.desired - r.available).max(0);
            let mut next = r.desired - unhealthy;
            let cut = budget.min(next);
            next -= cut;
            budget -= cut;
            next.max(0)
        })
        .collect()
}

/// The Deployment's status counts from its ReplicaSets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// The ReplicaSets' `spec.replicas`, summed (what `unavailableReplicas` counts against).
    pub desired: i64,
    pub replicas: i64,
    pub updated: i64,
    pub ready: i64,
    pub available: i64,
}

pub fn counts(new: Option<&Rs>, old: &[Rs]) -> Counts {
    let all = new.into_iter().chain(old.iter());
    let mut c = Counts::default();
    for r in all {
        c.desired += r.desired;
        c.replicas += r.current;
        c.ready += r.ready;
        c.available += r.available;
    }
    c.updated = new.map_or(0, |n| n.current);
    c
}

/// Whether the rollout is complete: every replica updated and available, no old pods left.
pub fn complete(replicas: i64, c: &Counts) -> bool {
    c.updated == replicas && c.replicas == replicas && c.available == replicas
}

/// A condition as the API shows it.
pub fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
    previous: Option<&Value>,
) -> Value {
    let status = if status { "True" } else { "False" };
    // lastTransitionTime moves only when the status flips; lastUpdateTime on every change.
    let transition = previous
        .filter(|p| p["status"] == status)
        .and_then(|p| p["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_owned();
    let same = previous
        .is_some_and(|p| p["status"] == status && p["reason"] == reason && p["message"] == message);
    let update = if same {
        previous
            .and_then(|p| p["lastUpdateTime"].as_str())
            .unwrap_or(now)
            .to_owned()
    } else {
        now.to_owned()
    };
    json!({"type": kind, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition, "reason": reason, "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(desired: i64, available: i64) -> Rs {
        Rs {
            name: "x".into(),
            desired,
            current: desired,
            ready: available,
            available,
        }
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let s = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
        assert_eq!(surge_and_unavailable(&s, 3), (1, 0));
        assert_eq!(surge_and_unavailable(&s, 4), (1, 1));
        let zero = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        assert_eq!(surge_and_unavailable(&zero, 3), (0, 1));
    }

    #[test]
    fn a_rolling_update_surges_then_scales_down_only_what_stays_available() {
        // replicas 3, surge 1, unavailable 0: the new RS may go to 1 while the old keeps 3.
        let old = [rs(3, 3)];
        assert_eq!(scale_up_new(3, 1, &rs(0, 0), &old), 1);
        // Not yet available: the old one keeps all 3.
        assert_eq!(scale_down_old(3, 0, &rs(1, 0), &old), [3]);
        // Once the new pod is available, one old pod may go.
        assert_eq!(scale_down_old(3, 0, &rs(1, 1), &old), [2]);
        assert_eq!(scale_up_new(3, 1, &rs(1, 1), &[rs(2, 2)]), 2);
    }

    #[test]
    fn a_new_replica_set_that_never_becomes_available_holds_the_old_one() {
        let old = [rs(2, 2)];
        let new = rs(1, 0);
        assert_eq!(scale_up_new(2, 1, &new, &old), 1);
        assert_eq!(scale_down_old(2, 0, &new, &old), [2]);
    }

    #[test]
    fn the_hash_is_stable_and_differs_per_template() {
        let a = json!({"spec": {"containers": [{"image": "a"}]}});
        let b = json!({"spec": {"containers": [{"image": "b"}]}});
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 10);
        let ab = json!({"metadata": {"labels": {"x": "1"}}, "spec": {}});
        let ba = json!({"spec": {}, "metadata": {"labels": {"x": "1"}}});
        assert_eq!(
            template_hash(&ab),
            template_hash(&ba),
            "key order does not matter"
        );
    }

    #[test]
    fn conditions_keep_their_transition_time_while_the_status_holds() {
        let first = condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "m",
            "t1",
            None,
        );
        let again = condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "m",
            "t2",
            Some(&first),
        );
        assert_eq!(again, first);
        let flipped = condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "m",
            "t3",
            Some(&again),
        );
        assert_eq!(flipped["lastTransitionTime"], "t3");
    }
}
