//! Deletion with `propagationPolicy`, as the API server and the garbage collector do it:
//! `Background` (the default) deletes the owner at once and the collector then deletes its
//! dependents ([`crate::controllers::collect_garbage`]); `Orphan` and `Foreground` mark the owner
//! (`deletionTimestamp` and the `orphan` or `foregroundDeletion` finalizer) and the collector,
//! every tick, removes the owner's reference from its dependents (Orphan) or deletes them
//! (Foreground; in the foreground too when they have dependents of their own) and waits for
//! those with `blockOwnerDeletion`, then takes the finalizer away, which deletes the owner.
//! [`Policy`] and [`next_steps`] decide; [`propagate_deletions`] does.

use serde_json::{Value, json};

use crate::resources;
use crate::status::ApiError;
use crate::store::{Cluster, WriteOptions};

/// The finalizer of an owner deleted with `Orphan`.
pub const ORPHAN: &str = "orphan";
/// The finalizer of an owner deleted with `Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";

/// A delete's `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Orphan,
    Background,
    Foreground,
}

impl Policy {
    /// From the `propagationPolicy` query parameter, else the `DeleteOptions` body (kubectl
    /// sends `{"propagationPolicy": ...}`; the old `orphanDependents: true` is Orphan);
    /// Background when neither says.
    pub fn from_request(query: Option<&str>, body: &[u8]) -> Result<Policy, ApiError> {
        let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the DeleteOptions body could not be decoded: {e}"))
            })?
        };
        let named = query.or_else(|| options["propagationPolicy"].as_str());
        match named {
            Some("Orphan") => Ok(Policy::Orphan),
            Some("Background") => Ok(Policy::Background),
            Some("Foreground") => Ok(Policy::Foreground),
            Some(other) => Err(ApiError::invalid(
                "DeleteOptions.meta.k8s.io",
                "",
                "meta.k8s.io",
                "DeleteOptions",
                &[(
                    "propagationPolicy".into(),
                    format!(
                        "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                )],
            )),
            None if options["orphanDependents"] == true => Ok(Policy::Orphan),
            None => Ok(Policy::Background),
        }
    }

    /// The finalizer the owner is marked with.
    pub fn finalizer(self) -> Option<&'static str> {
        match self {
            Policy::Orphan => Some(ORPHAN),
            Policy::Background => None,
            Policy::Foreground => Some(FOREGROUND),
        }
    }
}

/// An object: its resource (`plural.group`), namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Target {
    fn of(resource: &str, o: &Value) -> Target {
        Target {
            resource: resource.to_owned(),
            namespace: text(&o["metadata"]["namespace"]).to_owned(),
            name: text(&o["metadata"]["name"]).to_owned(),
        }
    }
}

/// What the collector does next for an owner being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Remove the owner's reference from this dependent.
    Unlink(Target),
    /// Delete this dependent, in the foreground when true (it has dependents itself).
    Delete(Target, bool),
    /// Take this finalizer off the owner, which deletes it.
    Finish(&'static str),
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|fs| fs.iter().any(|x| x == f))
}

fn deleting(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

/// The reference to `owner_uid` in `o`'s ownerReferences, if any.
fn reference_to<'a>(o: &'a Value, owner_uid: &str) -> Option<&'a Value> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["uid"] == owner_uid)
}

/// The next steps for `owner` (marked, with the `orphan` or `foregroundDeletion` finalizer)
/// given every object that has owner references (`(resource, object)`).
pub fn next_steps(owner: &Value, dependents: &[(String, Value)]) -> Vec<Step> {
    let uid = text(&owner["metadata"]["uid"]);
    let mine: Vec<&(String, Value)> = dependents
        .iter()
        .filter(|(_, d)| reference_to(d, uid).is_some())
        .collect();
    if has_finalizer(owner, ORPHAN) {
        let mut steps: Vec<Step> = mine
            .iter()
            .map(|(r, d)| Step::Unlink(Target::of(r, d)))
            .collect();
        steps.push(Step::Finish(ORPHAN));
        return steps;
    }
    let mut steps: Vec<Step> = mine
        .iter()
        .filter(|(_, d)| !deleting(d))
        .map(|(r, d)| {
            let d_uid = text(&d["metadata"]["uid"]);
            let has_own = dependents
                .iter()
                .any(|(_, x)| reference_to(x, d_uid).is_some());
            Step::Delete(Target::of(r, d), has_own)
        })
        .collect();
    let blocked = mine
        .iter()
        .any(|(_, d)| reference_to(d, uid).is_some_and(|r| r["blockOwnerDeletion"] == true));
    if !blocked {
        steps.push(Step::Finish(FOREGROUND));
    }
    steps
}

/// One pass of the collector over the owners being deleted with `Orphan` or `Foreground`.
pub fn propagate_deletions(c: &Cluster) {
    let marked =
        c.find_all(&|o| deleting(o) && (has_finalizer(o, ORPHAN) || has_finalizer(o, FOREGROUND)));
    if marked.is_empty() {
        return;
    }
    let dependents = c.find_all(&|o| {
        o["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    for (resource, owner) in &marked {
        let owner_target = Target::of(resource, owner);
        let uid = text(&owner["metadata"]["uid"]).to_owned();
        for step in next_steps(owner, &dependents) {
            if let Err(e) = take(c, &owner_target, &uid, &step) {
                tracing::debug!("{}: {step:?}: {}", c.name, e.message);
            }
        }
    }
}

fn opts() -> WriteOptions {
    WriteOptions {
        dry_run: false,
        manager: "generic-garbage-collector".into(),
        subresource: String::new(),
    }
}

/// Carries out one step (a vanished object is no error: the next tick sees the new state).
fn take(c: &Cluster, owner: &Target, owner_uid: &str, step: &Step) -> Result<(), ApiError> {
    let rt_of = |t: &Target| {
        resources::all_in(&c.name)
            .into_iter()
            .find(|rt| rt.qualified() == t.resource)
            .ok_or_else(|| ApiError::bad_request(format!("no resource {}", t.resource)))
    };
    let edit = |t: &Target, change: &dyn Fn(&mut Value)| {
        c.modify(rt_of(t)?, &t.namespace, &t.name, &opts(), &|live| {
            let mut o = live.cloned().ok_or_else(|| ApiError::bad_request("gone"))?;
            change(&mut o);
            Ok(o)
        })
        .map(|_| ())
    };
    match step {
        Step::Unlink(t) => edit(t, &|o| {
            if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != owner_uid);
            }
            if o["metadata"]["ownerReferences"] == json!([]) {
                o["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("ownerReferences"));
            }
        }),
        Step::Delete(t, foreground) => c
            .delete_with(
                rt_of(t)?,
                &t.namespace,
                &t.name,
                &opts(),
                foreground.then_some(FOREGROUND),
            )
            .map(|_| ()),
        Step::Finish(f) => edit(owner, &|o| {
            if let Some(fs) = o["metadata"]["finalizers"].as_array_mut() {
                fs.retain(|x| x != f);
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, uid: &str, owner: Option<&str>, block: bool) -> Value {
        let mut o = json!({"metadata": {"namespace": "default", "name": name, "uid": uid}});
        if let Some(owner) = owner {
            o["metadata"]["ownerReferences"] =
                json!([{"uid": owner, "controller": true, "blockOwnerDeletion": block}]);
        }
        o
    }

    fn marked(finalizer: &str) -> Value {
        let mut d = obj("web", "d1", None, false);
        d["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        d["metadata"]["finalizers"] = json!([finalizer]);
        d
    }

    fn target(resource: &str, name: &str) -> Target {
        Target {
            resource: resource.into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn the_policy_comes_from_the_query_or_the_body_and_defaults_to_background() {
        let from = |q, b: &str| Policy::from_request(q, b.as_bytes()).map_err(|e| e.code);
        assert_eq!(from(None, ""), Ok(Policy::Background));
        assert_eq!(
            from(None, r#"{"propagationPolicy":"Foreground"}"#),
            Ok(Policy::Foreground)
        );
        assert_eq!(
            from(Some("Orphan"), r#"{"propagationPolicy":"Foreground"}"#),
            Ok(Policy::Orphan)
        );
        assert_eq!(
            from(None, r#"{"kind":"DeleteOptions","orphanDependents":true}"#),
            Ok(Policy::Orphan)
        );
        assert_eq!(from(Some("Sideways"), ""), Err(422));
        assert_eq!(from(None, "{not json"), Err(400));
        assert_eq!(Policy::Foreground.finalizer(), Some(FOREGROUND));
        assert_eq!(Policy::Background.finalizer(), None);
    }

    #[test]
    fn orphaning_unlinks_every_dependent_then_finishes() {
        let deps = vec![
            (
                "replicasets.apps".to_owned(),
                obj("web-a", "r1", Some("d1"), true),
            ),
            (
                "replicasets.apps".to_owned(),
                obj("other", "r2", Some("zz"), true),
            ),
            ("pods".to_owned(), obj("web-a-x", "p1", Some("r1"), true)),
        ];
        assert_eq!(
            next_steps(&marked(ORPHAN), &deps),
            [
                Step::Unlink(target("replicasets.apps", "web-a")),
                Step::Finish(ORPHAN)
            ]
        );
    }

    #[test]
    fn foreground_deletes_dependents_and_waits_for_blocking_ones() {
        let deps = vec![
            (
                "replicasets.apps".to_owned(),
                obj("web-a", "r1", Some("d1"), true),
            ),
            ("pods".to_owned(), obj("web-a-x", "p1", Some("r1"), true)),
            (
                "configmaps".to_owned(),
                obj("loose", "c1", Some("d1"), false),
            ),
        ];
        assert_eq!(
            next_steps(&marked(FOREGROUND), &deps),
            [
                Step::Delete(target("replicasets.apps", "web-a"), true),
                Step::Delete(target("configmaps", "loose"), false),
            ],
            "the ReplicaSet has pods: deleted in the foreground; the owner waits"
        );
        let mut going = deps[0].clone();
        going.1["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(
            next_steps(&marked(FOREGROUND), &[going]),
            [],
            "still waiting"
        );
        let only_loose = [deps[2].clone()];
        assert_eq!(
            next_steps(&marked(FOREGROUND), &only_loose),
            [
                Step::Delete(target("configmaps", "loose"), false),
                Step::Finish(FOREGROUND)
            ],
            "a non-blocking dependent is not waited for"
        );
        assert_eq!(
            next_steps(&marked(FOREGROUND), &[]),
            [Step::Finish(FOREGROUND)]
        );
    }
}
