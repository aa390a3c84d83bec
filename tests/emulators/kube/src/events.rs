//! Events (core/v1), as the kubelet and the controllers record them for `kubectl get events`
//! and `kubectl describe`: a repeated event (same object, reason and message) counts up.

use serde_json::{Value, json};

use crate::resources;
use crate::store::{Cluster, WriteOptions};
use crate::time;

/// The event's name: the object's name and a hash of what happened (so a repeat finds it).
pub fn event_name(object: &Value, reason: &str, message: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}|{reason}|{message}", object["metadata"]["uid"]).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{}.{h:016x}",
        object["metadata"]["name"].as_str().unwrap_or("object")
    )
}

/// Records that `reason` happened to `object` (`kind` `Normal` or `Warning`), reported by
/// `component`.
pub fn record(
    c: &Cluster,
    object: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let events = resources::by_kind("v1", "Event").expect("built in");
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let name = event_name(object, reason, message);
    let now = time::now();
    let opts = WriteOptions {
        dry_run: false,
        manager: component.to_owned(),
        subresource: String::new(),
    };
    let r = c.modify(events, &ns, &name, &opts, &|live| {
        Ok(match live {
            Some(e) => {
                let mut e = e.clone();
                e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
                e["lastTimestamp"] = json!(now);
                e
            }
            None => json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {
                    "apiVersion": object["apiVersion"], "kind": object["kind"], "namespace": object["metadata"]["namespace"],
                    "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
                    "resourceVersion": object["metadata"]["resourceVersion"],
                },
                "reason": reason, "message": message, "type": kind, "count": 1,
                "source": {"component": component}, "reportingComponent": component, "reportingInstance": "",
                "firstTimestamp": now, "lastTimestamp": now, "eventTime": null,
            }),
        })
    });
    if let Err(e) = r {
        tracing::debug!("{}: recording event {reason}: {}", c.name, e.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_event_counts_up_and_a_new_one_is_separate() {
        let c = Cluster::new("t");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"}});
        record(&c, &pod, "Warning", "BackOff", "back-off", "kubelet");
        record(&c, &pod, "Warning", "BackOff", "back-off", "kubelet");
        record(&c, &pod, "Normal", "Pulled", "pulled", "kubelet");
        let events = resources::by_kind("v1", "Event").unwrap();
        let list = c.list(events, "default", &|_| true, None, None).items;
        assert_eq!(list.len(), 2);
        let backoff = list.iter().find(|e| e["reason"] == "BackOff").unwrap();
        assert_eq!(backoff["count"], 2);
        assert_eq!(backoff["involvedObject"]["name"], "p");
    }
}
