//! The Deployment and ReplicaSet controllers and the garbage collector, run on every tick
//! against one cluster's store (the decisions are in [`crate::rollout`]).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::resources::{self, ResourceType};
use crate::rollout::{self, Rs};
use crate::status::ApiError;
use crate::store::{Cluster, WriteOptions};
use crate::time;

const MANAGER: &str = "kube-controller-manager";

fn rt(api_version: &str, kind: &str) -> &'static ResourceType {
    resources::by_kind(api_version, kind).expect("a built-in kind")
}

fn opts(subresource: &str) -> WriteOptions {
    WriteOptions {
        dry_run: false,
        manager: MANAGER.into(),
        subresource: subresource.into(),
    }
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

/// Whether `o` is not being deleted: a controller leaves an owner that is (its dependents
/// are the garbage collector's to delete or orphan).
fn not_deleting(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_none()
}

/// The uid of `o`'s controlling owner.
fn controller_uid(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == json!(true))?["uid"]
        .as_str()
}

fn owner_ref(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name(owner),
        "uid": uid(owner), "controller": true, "blockOwnerDeletion": true,
    }])
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Writes `change` of the live object (main resource or `status`), ignoring a vanished
/// object: the next tick sees the new state.
fn write(c: &Cluster, t: &ResourceType, o: &Value, subresource: &str, change: impl Fn(&mut Value)) {
    let r = c.modify(t, namespace(o), name(o), &opts(subresource), &|live| {
        let mut new = live
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.qualified(), name(o), t.group, t.plural))?;
        change(&mut new);
        Ok(new)
    });
    if let Err(e) = r
        && e.code != 404
    {
        tracing::warn!("{}: writing {} {}: {}", c.name, t.kind, name(o), e.message);
    }
}

/// Whether a pod is Ready, and since when.
fn ready_since(pod: &Value) -> Option<SystemTime> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .and_then(|c| time::parse(c["lastTransitionTime"].as_str().unwrap_or("")))
}

/// Deletes ReplicaSets and pods whose controlling owner is gone (background propagation).
/// Every tick, over every owner and child: it reads them in place rather than listing copies.
pub fn collect_garbage(c: &Cluster) {
    for (child_kind, child_av, owner_kind, owner_av) in [
        ("ReplicaSet", "apps/v1", "Deployment", "apps/v1"),
        ("Pod", "v1", "ReplicaSet", "apps/v1"),
        ("Pod", "v1", "Job", "batch/v1"),
        ("Pod", "v1", "StatefulSet", "apps/v1"),
        ("Pod", "v1", "DaemonSet", "apps/v1"),
    ] {
        let mut owners = std::collections::HashSet::new();
        c.visit(rt(owner_av, owner_kind), "", &mut |o| {
            owners.insert(uid(o).to_owned());
        });
        let mut orphans = Vec::new();
        c.visit(rt(child_av, child_kind), "", &mut |child| {
            let Some(owner) = controller_uid(child) else {
                return;
            };
            let owned_by_kind = child["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["kind"] == owner_kind));
            if owned_by_kind && !owners.contains(owner) {
                orphans.push((namespace(child).to_owned(), name(child).to_owned()));
            }
        });
        for (ns, child) in orphans {
            let _ = c.delete(rt(child_av, child_kind), &ns, &child, &opts(""));
        }
    }
}

/// One pass of the Deployment controller over every Deployment.
pub fn reconcile_deployments(c: &Cluster, now: SystemTime) {
    let deployments = c
        .list(rt("apps/v1", "Deployment"), "", &|_| true, None, None)
        .items;
    for d in deployments {
        if d["metadata"].get("deletionTimestamp").is_none() {
            reconcile_deployment(c, &d, now);
        }
    }
}

fn replica_set_view(rs: &Value) -> Rs {
    Rs {
        name: name(rs).to_owned(),
        desired: num(&rs["spec"]["replicas"]),
        current: num(&rs["status"]["replicas"]),
        ready: num(&rs["status"]["readyReplicas"]),
        available: num(&rs["status"]["availableReplicas"]),
    }
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn reconcile_deployment(c: &Cluster, d: &Value, now: SystemTime) {
    let ns = namespace(d);
    let replicas = num(&d["spec"]["replicas"]);
    let template = &d["spec"]["template"];
    let hash = rollout::template_hash(template);
    let rs_type = rt("apps/v1", "ReplicaSet");
    let owned: Vec<Value> = c
        .list(
            rs_type,
            ns,
            &|rs| controller_uid(rs) == Some(uid(d)),
            None,
            None,
        )
        .items;
    let max_revision = owned.iter().map(revision).max().unwrap_or(0);
    let mut new = owned
        .iter()
        .find(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
        .cloned();
    let mut created = false;
    if new.is_none() && d["spec"]["paused"] != json!(true) {
        new = create_replica_set(c, d, &hash, max_revision + 1);
        created = new.is_some();
    }
    // A template rolled back to an older ReplicaSet's takes the next revision.
    if let Some(n) = &new
        && revision(n) < max_revision
    {
        let next = (max_revision + 1).to_string();
        write(c, rs_type, n, "", |o| {
            o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(next)
        });
    }
    let old: Vec<Value> = owned
        .iter()
        .filter(|rs| new.as_ref().is_none_or(|n| uid(n) != uid(rs)))
        .cloned()
        .collect();
    let old_view: Vec<Rs> = old.iter().map(replica_set_view).collect();
    let new_view = new.as_ref().map(replica_set_view);
    let strategy = &d["spec"]["strategy"];
    let (surge, unavailable) = rollout::surge_and_unavailable(strategy, replicas);
    if let (Some(n), Some(nv)) = (&new, &new_view)
        && d["spec"]["paused"] != json!(true)
    {
        let (new_target, old_targets) = if strategy["type"] == "Recreate" {
            let old_gone = old_view.iter().all(|r| r.current == 0);
            (if old_gone { replicas } else { 0 }, vec![0; old_view.len()])
        } else {
            (
                rollout::scale_up_new(replicas, surge, nv, &old_view),
                rollout::scale_down_old(replicas, unavailable, nv, &old_view),
            )
        };
        let scaled = |rs: &Value, from: i64, to: i64| {
            let (way, rs_name) = (if to > from { "up" } else { "down" }, name(rs));
            let msg = format!("Scaled {way} replica set {rs_name} from {from} to {to}");
            crate::events::record(
                c,
                d,
                "Normal",
                "ScalingReplicaSet",
                &msg,
                "deployment-controller",
            );
        };
        if new_target != nv.desired {
            write(c, rs_type, n, "", |o| {
                o["spec"]["replicas"] = json!(new_target)
            });
            scaled(n, nv.desired, new_target);
        }
        for (rs, target) in old.iter().zip(old_targets) {
            let from = num(&rs["spec"]["replicas"]);
            if target != from {
                write(c, rs_type, rs, "", |o| {
                    o["spec"]["replicas"] = json!(target)
                });
                scaled(rs, from, target);
            }
        }
    }
    let counts = rollout::counts(new_view.as_ref(), &old_view);
    write_deployment_status(
        c,
        d,
        &counts,
        new.as_ref().map(name).unwrap_or(""),
        unavailable,
        created,
        now,
    );
}

fn create_replica_set(c: &Cluster, d: &Value, hash: &str, revision: i64) -> Option<Value> {
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let replicas = num(&d["spec"]["replicas"]);
    let (surge, _) = rollout::surge_and_unavailable(&d["spec"]["strategy"], replicas);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", name(d)), "namespace": namespace(d),
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/revision": revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string(),
            },
            "ownerReferences": owner_ref(d),
        },
        "spec": {"replicas": 0, "minReadySeconds": num(&d["spec"]["minReadySeconds"]), "selector": selector, "template": template},
    });
    match c.create(rt("apps/v1", "ReplicaSet"), namespace(d), rs, &opts("")) {
        Ok(rs) => Some(rs),
        Err(e) => {
            tracing::warn!(
                "{}: creating a ReplicaSet for {}: {}",
                c.name,
                name(d),
                e.message
            );
            None
        }
    }
}

fn write_deployment_status(
    c: &Cluster,
    d: &Value,
    counts: &rollout::Counts,
    new_rs: &str,
    max_unavailable: i64,
    created: bool,
    now: SystemTime,
) {
    let replicas = num(&d["spec"]["replicas"]);
    let prev = &d["status"];
    let now_s = time::rfc3339(now);
    let find = |t: &str| {
        prev["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .cloned()
    };
    let prev_available = find("Available");
    let prev_progressing = find("Progressing");
    let available_ok = counts.available >= replicas - max_unavailable;
    let available = if available_ok {
        rollout::condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now_s,
            prev_available.as_ref(),
        )
    } else {
        rollout::condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now_s,
            prev_available.as_ref(),
        )
    };
    let moved = created
        || num(&prev["updatedReplicas"]) != counts.updated
        || num(&prev["readyReplicas"]) != counts.ready
        || num(&prev["availableReplicas"]) != counts.available
        || num(&prev["replicas"]) != counts.replicas
        || prev["observedGeneration"] != d["metadata"]["generation"];
    let deadline = Duration::from_secs(num(&d["spec"]["progressDeadlineSeconds"]).max(0) as u64);
    let last_progress = prev_progressing
        .as_ref()
        .and_then(|p| time::parse(p["lastUpdateTime"].as_str().unwrap_or("")));
    let timed_out = prev_progressing
        .as_ref()
        .is_some_and(|p| p["reason"] == "ProgressDeadlineExceeded");
    let progressing = if rollout::complete(replicas, counts) {
        rollout::condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_rs}\" has successfully progressed."),
            &now_s,
            prev_progressing.as_ref(),
        )
    } else if created || moved && !timed_out {
        rollout::condition(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{new_rs}\" is progressing."),
            &now_s,
            prev_progressing.as_ref(),
        )
    } else if timed_out
        || last_progress.is_some_and(|t| now.duration_since(t).unwrap_or_default() > deadline)
    {
        rollout::condition(
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{new_rs}\" has timed out progressing."),
            &now_s,
            prev_progressing.as_ref(),
        )
    } else {
        prev_progressing.clone().unwrap_or_else(|| {
            rollout::condition(
                "Progressing",
                true,
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{new_rs}\" is progressing."),
                &now_s,
                None,
            )
        })
    };
    let mut status = json!({"observedGeneration": d["metadata"]["generation"], "conditions": [available, progressing]});
    for (k, v) in [
        ("replicas", counts.replicas),
        ("updatedReplicas", counts.updated),
        ("readyReplicas", counts.ready),
        ("availableReplicas", counts.available),
        (
            "unavailableReplicas",
            (counts.desired - counts.available).max(0),
        ),
    ] {
        if v != 0 {
            status[k] = json!(v);
        }
    }
    if *prev != status {
        write(c, rt("apps/v1", "Deployment"), d, "status", |o| {
            o["status"] = status.clone()
        });
    }
}

/// One pass of the ReplicaSet controller: each ReplicaSet's pods created or deleted to
/// `spec.replicas`, and its status counted.
pub fn reconcile_replica_sets(c: &Cluster, now: SystemTime) {
    let pods_type = rt("v1", "Pod");
    for rs in c
        .list(rt("apps/v1", "ReplicaSet"), "", &not_deleting, None, None)
        .items
    {
        let pods: Vec<Value> = c
            .list(
                pods_type,
                namespace(&rs),
                &|p| {
                    controller_uid(p) == Some(uid(&rs))
                        && p["metadata"].get("deletionTimestamp").is_none()
                },
                None,
                None,
            )
            .items;
        let desired = num(&rs["spec"]["replicas"]);
        let have = pods.len() as i64;
        for _ in have..desired {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "generateName": format!("{}-", name(&rs)), "namespace": namespace(&rs),
                    "labels": rs["spec"]["template"]["metadata"]["labels"],
                    "ownerReferences": owner_ref(&rs),
                },
                "spec": rs["spec"]["template"]["spec"],
                "status": {"phase": "Pending", "qosClass": "BestEffort"},
            });
            // One node: scheduled at once.
            pod["spec"]["nodeName"] = json!(crate::kubelet::NODE);
            if let Some(a) = rs["spec"]["template"]["metadata"].get("annotations") {
                pod["metadata"]["annotations"] = a.clone();
            }
            if let Err(e) = c.create(pods_type, namespace(&rs), pod, &opts("")) {
                tracing::warn!(
                    "{}: creating a pod for {}: {}",
                    c.name,
                    name(&rs),
                    e.message
                );
            }
        }
        if have > desired {
            // Not-ready pods go first, then the newest.
            let mut doomed = pods.clone();
            doomed.sort_by_key(|p| {
                (
                    ready_since(p).is_some(),
                    std::cmp::Reverse(
                        p["metadata"]["creationTimestamp"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                    ),
                )
            });
            for p in doomed.iter().take((have - desired) as usize) {
                let _ = c.delete(pods_type, namespace(p), name(p), &opts(""));
            }
        }
        let min_ready = Duration::from_secs(num(&rs["spec"]["minReadySeconds"]).max(0) as u64);
        let live: Vec<&Value> = pods.iter().collect();
        let ready = live.iter().filter(|p| ready_since(p).is_some()).count() as i64;
        let available = live
            .iter()
            .filter(|p| {
                ready_since(p)
                    .is_some_and(|t| now.duration_since(t).unwrap_or_default() >= min_ready)
            })
            .count() as i64;
        let mut status = json!({"replicas": have.min(desired.max(have)), "observedGeneration": rs["metadata"]["generation"]});
        status["fullyLabeledReplicas"] = json!(have);
        for (k, v) in [("readyReplicas", ready), ("availableReplicas", available)] {
            if v != 0 {
                status[k] = json!(v);
            }
        }
        if have == 0 {
            status
                .as_object_mut()
                .map(|m| m.remove("fullyLabeledReplicas"));
        }
        if rs["status"] != status {
            write(c, rt("apps/v1", "ReplicaSet"), &rs, "status", |o| {
                o["status"] = status.clone()
            });
        }
    }
}

/// One pass of the Job controller: pods created up to `parallelism` until `completions`
/// succeed (`Complete`), or more than `backoffLimit` fail (`Failed`, `BackoffLimitExceeded`,
/// the rest of its pods deleted).
pub fn reconcile_jobs(c: &Cluster, now: SystemTime) {
    let pods_type = rt("v1", "Pod");
    for job in c
        .list(rt("batch/v1", "Job"), "", &not_deleting, None, None)
        .items
    {
        let finished = job["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        });
        let pods: Vec<Value> = c
            .list(
                pods_type,
                namespace(&job),
                &|p| controller_uid(p) == Some(uid(&job)),
                None,
                None,
            )
            .items;
        let phase = |p: &Value| {
            p["status"]["phase"]
                .as_str()
                .unwrap_or("Pending")
                .to_owned()
        };
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        // restartPolicy OnFailure restarts in place: each restart is a failure too.
        let restarts: i64 = pods
            .iter()
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|s| num(&s["restartCount"]))
            .sum();
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64 + restarts;
        let active: Vec<&Value> = pods
            .iter()
            .filter(|p| !matches!(phase(p).as_str(), "Succeeded" | "Failed"))
            .collect();
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let now_s = time::rfc3339(now);
        let mut status = if job["status"].is_object() {
            job["status"].clone()
        } else {
            json!({})
        };
        let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": now_s, "lastTransitionTime": now_s});
        let mut done = finished;
        if !finished && job["spec"]["suspend"] != json!(true) {
            if succeeded >= completions {
                let m = "Reached expected number of succeeded pods";
                status["conditions"] = json!([
                    condition("SuccessCriteriaMet", "CompletionsReached", m),
                    condition("Complete", "CompletionsReached", m)
                ]);
                status["completionTime"] = json!(now_s);
                done = true;
            } else if failed > backoff_limit {
                let m = "Job has reached the specified backoff limit";
                status["conditions"] = json!([
                    condition("FailureTarget", "BackoffLimitExceeded", m),
                    condition("Failed", "BackoffLimitExceeded", m)
                ]);
                for p in &active {
                    let _ = c.delete(pods_type, namespace(p), name(p), &opts(""));
                }
                done = true;
            } else {
                let wanted = parallelism.min(completions - succeeded) - active.len() as i64;
                for _ in 0..wanted.max(0) {
                    create_job_pod(c, &job);
                }
            }
            if status.get("startTime").is_none() {
                status["startTime"] = json!(now_s);
            }
        }
        let ready = active.iter().filter(|p| ready_since(p).is_some()).count() as i64;
        for (k, v) in [
            ("active", if done { 0 } else { active.len() as i64 }),
            ("succeeded", succeeded),
            ("failed", failed),
        ] {
            match status.as_object_mut() {
                Some(m) if v == 0 => {
                    m.remove(k);
                }
                _ => status[k] = json!(v),
            }
        }
        status["ready"] = json!(if done { 0 } else { ready });
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        if job["status"] != status {
            write(c, rt("batch/v1", "Job"), &job, "status", |o| {
                o["status"] = status.clone()
            });
        }
    }
}

/// A pod of `job`, labelled as the API server labels a Job's pod template.
fn create_job_pod(c: &Cluster, job: &Value) {
    let mut labels = job["spec"]["template"]["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid(job)),
        ("batch.kubernetes.io/job-name", name(job)),
        ("controller-uid", uid(job)),
        ("job-name", name(job)),
    ] {
        labels[k] = json!(v);
    }
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": format!("{}-", name(job)), "namespace": namespace(job), "labels": labels, "ownerReferences": owner_ref(job)},
        "spec": job["spec"]["template"]["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    pod["spec"]["nodeName"] = json!(crate::kubelet::NODE);
    if let Err(e) = c.create(rt("v1", "Pod"), namespace(job), pod, &opts("")) {
        tracing::warn!(
            "{}: creating a pod for job {}: {}",
            c.name,
            name(job),
            e.message
        );
    }
}

/// The pod of `sts` at `ordinal`, on `revision` (`<name>-<template hash>`).
fn stateful_pod(sts: &Value, ordinal: i64, revision: &str) -> Value {
    let pod_name = format!("{}-{ordinal}", name(sts));
    let mut labels = sts["spec"]["template"]["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["controller-revision-hash"] = json!(revision);
    labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
    labels["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": namespace(sts), "labels": labels, "ownerReferences": owner_ref(sts)},
        "spec": sts["spec"]["template"]["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    pod["spec"]["hostname"] = json!(pod_name);
    pod["spec"]["nodeName"] = json!(crate::kubelet::NODE);
    if let Some(service) = sts["spec"]["serviceName"].as_str() {
        pod["spec"]["subdomain"] = json!(service);
    }
    pod
}

/// One pass of the StatefulSet controller: pods `<name>-0..N-1` created in order (each once
/// the ones before are Ready, unless `podManagementPolicy: Parallel`), removed from the
/// highest ordinal down, and a new template rolled out from the highest ordinal down to
/// `partition`, one pod at a time once the others are Ready; `currentRevision` /
/// `updateRevision` as `kubectl rollout status` reads them.
pub fn reconcile_stateful_sets(c: &Cluster) {
    let pods_type = rt("v1", "Pod");
    let sts_type = rt("apps/v1", "StatefulSet");
    for sts in c.list(sts_type, "", &not_deleting, None, None).items {
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        let ordered = sts["spec"]["podManagementPolicy"] != "Parallel";
        let partition = num(&sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"]);
        let rolling = sts["spec"]["updateStrategy"]["type"] != "OnDelete";
        let update_revision = format!(
            "{}-{}",
            name(&sts),
            rollout::template_hash(&sts["spec"]["template"])
        );
        let pods: Vec<Value> = c
            .list(
                pods_type,
                namespace(&sts),
                &|p| controller_uid(p) == Some(uid(&sts)),
                None,
                None,
            )
            .items;
        let ordinal = |p: &Value| {
            name(p)
                .rsplit('-')
                .next()
                .and_then(|o| o.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        let revision = |p: &Value| {
            p["metadata"]["labels"]["controller-revision-hash"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        let current_revision = sts["status"]["currentRevision"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| update_revision.clone());
        let all_ready = |below: i64| {
            (0..below).all(|i| {
                pods.iter()
                    .any(|p| ordinal(p) == i && ready_since(p).is_some())
            })
        };
        // Create the missing ordinals (below `partition` on the current revision).
        for i in 0..replicas {
            if pods.iter().any(|p| ordinal(p) == i) {
                continue;
            }
            if ordered && !all_ready(i) {
                break;
            }
            let rev = if rolling && i < partition {
                &current_revision
            } else {
                &update_revision
            };
            if let Err(e) = c.create(
                pods_type,
                namespace(&sts),
                stateful_pod(&sts, i, rev),
                &opts(""),
            ) {
                tracing::warn!(
                    "{}: creating pod {i} of {}: {}",
                    c.name,
                    name(&sts),
                    e.message
                );
            }
            if ordered {
                break;
            }
        }
        // Scale down from the highest ordinal.
        let mut extra: Vec<&Value> = pods.iter().filter(|p| ordinal(p) >= replicas).collect();
        extra.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        for p in extra.iter().take(if ordered { 1 } else { extra.len() }) {
            let _ = c.delete(pods_type, namespace(p), name(p), &opts(""));
        }
        // Roll out: the highest ordinal not yet updated, once every pod is Ready.
        if rolling && extra.is_empty() && pods.len() as i64 == replicas && all_ready(replicas) {
            let next = pods
                .iter()
                .filter(|p| ordinal(p) >= partition && revision(p) != update_revision)
                .max_by_key(|p| ordinal(p));
            if let Some(p) = next {
                let _ = c.delete(pods_type, namespace(p), name(p), &opts(""));
            }
        }
        let live: Vec<&Value> = pods.iter().filter(|p| ordinal(p) < replicas).collect();
        let updated = live
            .iter()
            .filter(|p| revision(p) == update_revision)
            .count() as i64;
        let ready = live.iter().filter(|p| ready_since(p).is_some()).count() as i64;
        let done = updated == replicas && ready == replicas;
        let current = if done {
            update_revision.clone()
        } else {
            current_revision
        };
        let current_replicas = live.iter().filter(|p| revision(p) == current).count() as i64;
        let mut status = json!({
            "observedGeneration": sts["metadata"]["generation"], "replicas": live.len(),
            "currentRevision": current, "updateRevision": update_revision, "collisionCount": 0,
        });
        for (k, v) in [
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("currentReplicas", current_replicas),
            ("updatedReplicas", updated),
        ] {
            if v != 0 {
                status[k] = json!(v);
            }
        }
        if sts["status"] != status {
            write(c, sts_type, &sts, "status", |o| {
                o["status"] = status.clone()
            });
        }
    }
}

/// One pass of the DaemonSet controller on the one node: one pod per DaemonSet, replaced
/// (delete, then create) when the template changes; the status `kubectl rollout status` reads.
pub fn reconcile_daemon_sets(c: &Cluster) {
    let pods_type = rt("v1", "Pod");
    let ds_type = rt("apps/v1", "DaemonSet");
    for ds in c.list(ds_type, "", &not_deleting, None, None).items {
        let hash = rollout::template_hash(&ds["spec"]["template"]);
        let pods: Vec<Value> = c
            .list(
                pods_type,
                namespace(&ds),
                &|p| controller_uid(p) == Some(uid(&ds)),
                None,
                None,
            )
            .items;
        let revision = |p: &Value| {
            p["metadata"]["labels"]["controller-revision-hash"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        let on_delete = ds["spec"]["updateStrategy"]["type"] == "OnDelete";
        match pods.first() {
            None => {
                let mut labels = ds["spec"]["template"]["metadata"]["labels"].clone();
                if !labels.is_object() {
                    labels = json!({});
                }
                labels["controller-revision-hash"] = json!(hash);
                labels["pod-template-generation"] =
                    json!(num(&ds["metadata"]["generation"]).to_string());
                let mut pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"generateName": format!("{}-", name(&ds)), "namespace": namespace(&ds), "labels": labels, "ownerReferences": owner_ref(&ds)},
                    "spec": ds["spec"]["template"]["spec"],
                    "status": {"phase": "Pending", "qosClass": "BestEffort"},
                });
                pod["spec"]["nodeName"] = json!(crate::kubelet::NODE);
                if let Err(e) = c.create(pods_type, namespace(&ds), pod, &opts("")) {
                    tracing::warn!(
                        "{}: creating the pod of {}: {}",
                        c.name,
                        name(&ds),
                        e.message
                    );
                }
            }
            Some(p) if revision(p) != hash && !on_delete => {
                let _ = c.delete(pods_type, namespace(p), name(p), &opts(""));
            }
            Some(_) => {}
        }
        let current = pods.first();
        let scheduled = i64::from(current.is_some());
        let updated = i64::from(current.is_some_and(|p| revision(p) == hash));
        let ready = i64::from(current.is_some_and(|p| ready_since(p).is_some()));
        let mut status = json!({
            "observedGeneration": ds["metadata"]["generation"], "desiredNumberScheduled": 1,
            "currentNumberScheduled": scheduled, "numberMisscheduled": 0, "numberReady": ready,
        });
        for (k, v) in [
            ("updatedNumberScheduled", updated),
            ("numberAvailable", ready),
            ("numberUnavailable", 1 - ready),
        ] {
            if v != 0 {
                status[k] = json!(v);
            }
        }
        if ds["status"] != status {
            write(c, ds_type, &ds, "status", |o| o["status"] = status.clone());
        }
    }
}

/// One pass of the CRD controller: each CustomResourceDefinition's storage version served as
/// a resource type of this cluster, then `NamesAccepted` and `Established` (kubectl and
/// k8s-apply wait for the latter, then discover again); a deleted CRD's type is no longer
/// served and its objects are gone.
pub fn reconcile_crds(c: &Cluster) {
    let crd_type = rt("apiextensions.k8s.io/v1", "CustomResourceDefinition");
    let crds = c.list(crd_type, "", &|_| true, None, None).items;
    let mut served = Vec::new();
    for crd in crds {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or("");
        let names = &spec["names"];
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        let Some(version) = versions
            .iter()
            .find(|v| v["storage"] == json!(true))
            .or_else(|| versions.iter().find(|v| v["served"] == json!(true)))
        else {
            continue;
        };
        let (Some(plural), Some(kind)) = (names["plural"].as_str(), names["kind"].as_str()) else {
            continue;
        };
        let singular = names["singular"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| kind.to_lowercase());
        let shorts: Vec<String> = names["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        let namespaced = spec["scope"] != "Cluster";
        let has_status = version["subresources"]["status"].is_object();
        let version_name = version["name"].as_str().unwrap_or("v1");
        resources::register(
            &c.name,
            group,
            version_name,
            plural,
            &singular,
            kind,
            namespaced,
            &shorts,
            has_status,
        );
        served.push((group.to_owned(), plural.to_owned()));
        let now = time::now();
        let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
        let mut accepted = names.clone();
        if accepted.get("singular").is_none() {
            accepted["singular"] = json!(singular);
        }
        if accepted.get("listKind").is_none() {
            accepted["listKind"] = json!(format!("{kind}List"));
        }
        let established = crd["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
        if !established || crd["status"]["acceptedNames"] != accepted {
            let status = json!({
                "conditions": [
                    condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                    condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
                "acceptedNames": accepted,
                "storedVersions": [version_name],
            });
            write(c, crd_type, &crd, "status", |o| {
                o["status"] = status.clone()
            });
        }
    }
    for t in resources::all_in(&c.name)
        .into_iter()
        .filter(|t| resources::is_custom(t))
    {
        if !served.iter().any(|(g, p)| g == t.group && p == t.plural) {
            for o in c.list(t, "", &|_| true, None, None).items {
                let _ = c.delete(t, namespace(&o), name(&o), &opts(""));
            }
            resources::unregister(&c.name, t.group, t.plural);
        }
    }
}
