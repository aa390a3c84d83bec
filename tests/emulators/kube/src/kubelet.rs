//! The one node's kubelet: every pod's containers run on the local Docker Engine, labelled so
//! that the emulator's shutdown (and `scripts/services down`) removes exactly them, with the
//! container states, restarts and back-offs the API reports (`ErrImagePull`,
//! `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerConfigError`).
//!
//! Pods are synced all at once, and a container's start (pull, create, start) runs in the
//! background, as the kubelet's pod workers do: a slow pull or a slow Engine holds up no other
//! pod, and a rollout of N pods does not start them one after the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions,
};
use futures_util::StreamExt;
use serde_json::{Value, json};

use common::reference::Reference;
pub use emulator_node::remove_labelled;
use emulator_node::{ecr_credentials, is_ecr_host, pull_reference, remove_container};

use crate::environment::Source;
use crate::hosts::Entry;
use crate::resources;
use crate::store::{Cluster, WriteOptions};
use crate::time;

/// On every container: the emulator instance that started it.
pub const LABEL_INSTANCE: &str = "shipkit.kube-emulator.instance";
/// On every container: the emulator's `--listen` address (a restart on it removes leftovers).
pub const LABEL_LISTEN: &str = "shipkit.kube-emulator.listen";
/// On every container: the pod's uid.
pub const LABEL_POD_UID: &str = "shipkit.kube-emulator.pod-uid";
/// The node every pod is scheduled to.
pub const NODE: &str = "shipkit-node";

/// What the kubelet remembers of one container of one pod.
#[derive(Debug, Default, Clone)]
struct Tracked {
    id: Option<String>,
    image_id: String,
    restarts: i64,
    /// Consecutive failures (pulls or exits) that set the back-off.
    failures: u32,
    retry_at: Option<Instant>,
    waiting: Option<(String, String)>,
    started_at: Option<String>,
    last_terminated: Option<Value>,
    /// The container's address on the Docker bridge (the pod IP).
    ip: Option<String>,
    /// Ready: running, and the readiness probe (if any) passed.
    ready: bool,
    running_since: Option<Instant>,
    next_probe: Option<Instant>,
    next_liveness: Option<Instant>,
    liveness_failures: u32,
    probe_successes: u32,
    probe_failures: u32,
    /// A back-off event to record (`observe` has no cluster at hand).
    crash_event_due: bool,
    /// The container's `/etc/hosts` on this machine (Docker's `HostsPath`), once started.
    hosts_path: Option<std::path::PathBuf>,
    /// Its start runs in the background, which writes this entry back when done; until
    /// then a pass only reports it.
    starting: bool,
    /// A start wrote this entry back and no pass has reported it yet (so that an
    /// `ErrImagePull` is shown once before it turns `ImagePullBackOff`).
    unreported: bool,
}

/// What one container needs on a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Nothing: its start is in flight, it is done for good, or it is backing off.
    Wait,
    /// Pull, create and start it.
    Start,
    /// Look at the Docker container with this id.
    Observe(String),
}

/// What a container needs at `now` (pure); while backing off from a failed pull, its
/// `ErrImagePull` turns `ImagePullBackOff`, as the kubelet reports it.
fn next_step(image: &str, t: &mut Tracked, now: Instant) -> Next {
    if t.starting {
        return Next::Wait;
    }
    let unreported = std::mem::take(&mut t.unreported);
    if t.waiting.as_ref().is_some_and(|(r, _)| r == "Terminated") {
        // Done for good (restartPolicy Never, or OnFailure after a success).
        return Next::Wait;
    }
    if t.retry_at.is_some_and(|at| now < at) {
        if let Some((reason, msg)) = &t.waiting
            && reason == "ErrImagePull"
            && !unreported
        {
            t.waiting = Some((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\": {msg}"),
            ));
        }
        return Next::Wait;
    }
    match &t.id {
        None => Next::Start,
        Some(id) => Next::Observe(id.clone()),
    }
}

/// The back-off after `failures` consecutive failures: 10 s doubling to 5 min (the kubelet's).
pub fn back_off(failures: u32) -> Duration {
    Duration::from_secs((10u64 << failures.saturating_sub(1).min(5)).min(300))
}

pub struct Kubelet {
    docker: Docker,
    instance: String,
    listen: String,
    tracked: Mutex<HashMap<(String, String), Tracked>>,
    /// The container starts in flight (aborted at shutdown, before the containers go).
    starts: Mutex<tokio::task::JoinSet<()>>,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

impl Kubelet {
    pub fn new(docker: Docker, instance: String, listen: String) -> Self {
        Kubelet {
            docker,
            instance,
            listen,
            tracked: Mutex::new(HashMap::new()),
            starts: Mutex::new(tokio::task::JoinSet::new()),
        }
    }

    fn get(&self, key: &(String, String)) -> Tracked {
        self.tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn put(&self, key: (String, String), t: Tracked) {
        self.tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, t);
    }

    /// One pass over every pod of `cluster`, all at once: containers started (in the
    /// background), observed, restarted; each pod's status written when it changed.
    pub async fn sync(self: &Arc<Self>, cluster: &Arc<Cluster>, all_pod_uids: &mut Vec<String>) {
        let pods_type = resources::by_kind("v1", "Pod").expect("pods are built in");
        let pods = cluster.list(pods_type, "", &|_| true, None, None).items;
        let services_type = resources::by_kind("v1", "Service").expect("services are built in");
        let services = cluster.list(services_type, "", &|_| true, None, None).items;
        let names = crate::hosts::cluster_names(&services, &pods);
        {
            // Finished starts are collected here; they wrote their results themselves.
            let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            while starts.try_join_next().is_some() {}
        }
        all_pod_uids.extend(pods.iter().map(|p| text(&p["metadata"]["uid"]).to_owned()));
        futures_util::future::join_all(pods.iter().map(|pod| self.sync_pod(cluster, pod, &names)))
            .await;
    }

    /// One pod: each container's step, then its hosts file and its status.
    async fn sync_pod(self: &Arc<Self>, cluster: &Arc<Cluster>, pod: &Value, names: &[Entry]) {
        let pods_type = resources::by_kind("v1", "Pod").expect("pods are built in");
        let uid = text(&pod["metadata"]["uid"]).to_owned();
        let mut statuses = Vec::new();
        for c in pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let key = (uid.clone(), text(&c["name"]).to_owned());
            let mut t = self.get(&key);
            match next_step(text(&c["image"]), &mut t, Instant::now()) {
                Next::Wait if t.starting => {
                    // The start in flight owns the entry: report it, write nothing back.
                    statuses.push(container_status(&c, &t));
                    continue;
                }
                Next::Wait => {}
                Next::Start => {
                    t.starting = true;
                    self.put(key.clone(), t.clone());
                    self.spawn_start(cluster, pod, &c, key, t.clone());
                    statuses.push(container_status(&c, &t));
                    continue;
                }
                Next::Observe(id) => self.observe(pod, &c, id, &mut t).await,
            }
            if std::mem::take(&mut t.crash_event_due) {
                let msg = format!(
                    "Back-off restarting failed container {} in pod {}",
                    text(&c["name"]),
                    text(&pod["metadata"]["name"])
                );
                crate::events::record(cluster, pod, "Warning", "BackOff", &msg, "kubelet");
            }
            statuses.push(container_status(&c, &t));
            self.put(key, t);
        }
        let pod_ip = statuses
            .iter()
            .find_map(|s| s["_ip"].as_str().map(str::to_owned));
        for s in statuses.iter_mut() {
            s.as_object_mut().map(|m| m.remove("_ip"));
        }
        self.write_hosts(&uid, pod, pod_ip.as_deref(), names);
        let status = pod_status(pod, &statuses, pod_ip.as_deref());
        if pod["status"] != status {
            let ns = text(&pod["metadata"]["namespace"]).to_owned();
            let name = text(&pod["metadata"]["name"]).to_owned();
            let opts = WriteOptions {
                dry_run: false,
                manager: "kubelet".into(),
                subresource: "status".into(),
            };
            let _ = cluster.modify(pods_type, &ns, &name, &opts, &|live| {
                let mut p = live
                    .cloned()
                    .ok_or_else(|| crate::status::ApiError::bad_request("gone"))?;
                p["status"] = status.clone();
                Ok(p)
            });
        }
    }

    /// Starts a container in the background; the entry `key` is written back when done.
    fn spawn_start(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        pod: &Value,
        c: &Value,
        key: (String, String),
        mut t: Tracked,
    ) {
        let (kubelet, cluster, pod, c) = (self.clone(), cluster.clone(), pod.clone(), c.clone());
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(async move {
                kubelet.start(&cluster, &pod, &c, &mut t).await;
                t.starting = false;
                t.unreported = true;
                kubelet.put(key, t);
            });
    }

    /// Writes the pod's hosts file into each of its started containers where it differs (a
    /// replaced Service pod is found again on the next tick).
    fn write_hosts(&self, uid: &str, pod: &Value, pod_ip: Option<&str>, names: &[Entry]) {
        let mut content = None;
        for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let key = (uid.to_owned(), text(&c["name"]).to_owned());
            let Some(path) = self.get(&key).hosts_path else {
                continue;
            };
            let content =
                content.get_or_insert_with(|| crate::hosts::hosts_file(pod, pod_ip, names));
            match crate::hosts::write_if_changed(&path, content) {
                Ok(true) => tracing::debug!("wrote {} for pod {uid}", path.display()),
                Ok(false) => {}
                // A remote Docker Engine's files are not here: the names are then missing.
                Err(e) => tracing::debug!("cannot write {}: {e}", path.display()),
            }
        }
    }

    /// Removes the containers of pods no cluster has any more.
    pub async fn sweep(&self, live_pod_uids: &[String]) {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        for c in self
            .docker
            .list_containers(Some(opts))
            .await
            .unwrap_or_default()
        {
            let pod_uid = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_POD_UID))
                .cloned()
                .unwrap_or_default();
            if !live_pod_uids.contains(&pod_uid)
                && let Some(id) = c.id
            {
                remove_container(&self.docker, &id).await;
            }
        }
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked.retain(|(uid, _), _| live_pod_uids.contains(uid));
    }

    async fn start(&self, cluster: &Cluster, pod: &Value, c: &Value, t: &mut Tracked) {
        let image = text(&c["image"]).to_owned();
        let secrets = pull_secrets(cluster, pod);
        let policy = text(&c["imagePullPolicy"]);
        match ensure_image(&self.docker, &image, policy, &secrets).await {
            Ok(image_id) => t.image_id = image_id,
            Err(e) => {
                t.failures += 1;
                t.retry_at = Some(Instant::now() + back_off(t.failures));
                let message = format!("{e:#}");
                crate::events::record(
                    cluster,
                    pod,
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {message}"),
                    "kubelet",
                );
                crate::events::record(
                    cluster,
                    pod,
                    "Warning",
                    "Failed",
                    "Error: ErrImagePull",
                    "kubelet",
                );
                t.waiting = Some(("ErrImagePull".into(), message));
                return;
            }
        }
        let env = match environment(cluster, pod, c) {
            Ok(env) => env,
            Err(msg) => {
                t.retry_at = Some(Instant::now() + Duration::from_secs(2));
                t.waiting = Some(("CreateContainerConfigError".into(), msg));
                return;
            }
        };
        let labels = HashMap::from([
            (LABEL_INSTANCE.to_owned(), self.instance.clone()),
            (LABEL_LISTEN.to_owned(), self.listen.clone()),
            (
                LABEL_POD_UID.to_owned(),
                text(&pod["metadata"]["uid"]).to_owned(),
            ),
        ]);
        let strings = |k: &str| {
            c[k].as_array()
                .map(|a| a.iter().map(|s| text(s).to_owned()).collect::<Vec<_>>())
        };
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(env),
            entrypoint: strings("command"),
            cmd: strings("args"),
            working_dir: c["workingDir"].as_str().map(str::to_owned),
            // `hostname` in the pod says its pod name (or spec.hostname), as on a node.
            hostname: Some(crate::hosts::pod_hostname(pod)),
            labels: Some(labels),
            host_config: Some(HostConfig::default()),
            ..Default::default()
        };
        let docker_name = format!(
            "k8s_{}_{}_{}_{}",
            text(&c["name"]),
            text(&pod["metadata"]["name"]),
            text(&pod["metadata"]["namespace"]),
            &text(&pod["metadata"]["uid"])[..8.min(text(&pod["metadata"]["uid"]).len())]
        );
        let created = match self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(docker_name),
                    ..Default::default()
                }),
                body,
            )
            .await
        {
            Ok(created) => created,
            Err(e) => {
                t.failures += 1;
                t.retry_at = Some(Instant::now() + back_off(t.failures));
                t.waiting = Some(("CreateContainerError".into(), e.to_string()));
                return;
            }
        };
        t.id = Some(created.id.clone());
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            t.waiting = Some(("RunContainerError".into(), e.to_string()));
            return;
        }
        t.waiting = None;
        t.started_at = Some(time::now());
        let name = text(&c["name"]);
        crate::events::record(
            cluster,
            pod,
            "Normal",
            "Created",
            &format!("Created container {name}"),
            "kubelet",
        );
        crate::events::record(
            cluster,
            pod,
            "Normal",
            "Started",
            &format!("Started container {name}"),
            "kubelet",
        );
    }

    async fn observe(&self, pod: &Value, c: &Value, id: String, t: &mut Tracked) {
        let Ok(info) = self
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        else {
            // Removed behind our back: start it again.
            t.id = None;
            return;
        };
        t.hosts_path = info.hosts_path.filter(|p| !p.is_empty()).map(Into::into);
        let state = info.state.unwrap_or_default();
        let bridge_ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|nets| {
                nets.into_values()
                    .find_map(|n| n.ip_address.filter(|ip| !ip.is_empty()))
            });
        t.ip = bridge_ip.or(t.ip.take());
        if state.running.unwrap_or(false) {
            if t.started_at.is_none() {
                t.started_at = Some(time::now());
            }
            t.waiting = None;
            self.probe_liveness(c, &id, t).await;
            self.probe_readiness(c, &id, t).await;
            return;
        }
        t.ready = false;
        t.running_since = None;
        t.next_probe = None;
        if t.waiting
            .as_ref()
            .is_some_and(|(r, _)| r == "CrashLoopBackOff")
        {
            // The back-off is over: restart.
            t.restarts += 1;
            t.waiting = None;
            t.started_at = Some(time::now());
            t.probe_successes = 0;
            t.probe_failures = 0;
            if let Err(e) = self.docker.start_container(&id, None).await {
                t.waiting = Some(("RunContainerError".into(), e.to_string()));
            }
            return;
        }
        let code = state.exit_code.unwrap_or(0);
        t.last_terminated = Some(json!({"terminated": {
            "exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": t.started_at, "finishedAt": time::now(), "containerID": format!("docker://{id}"),
        }}));
        t.started_at = None;
        let policy = text(&pod["spec"]["restartPolicy"]);
        let restart = policy == "Always" || policy.is_empty() || policy == "OnFailure" && code != 0;
        if restart {
            t.failures += 1;
            t.retry_at = Some(Instant::now() + back_off(t.failures));
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}_{}",
                back_off(t.failures).as_secs(),
                text(&pod["spec"]["containers"][0]["name"]),
                text(&pod["metadata"]["name"]),
                text(&pod["metadata"]["namespace"])
            );
            t.waiting = Some(("CrashLoopBackOff".into(), msg));
            t.crash_event_due = true;
        } else {
            t.waiting = Some(("Terminated".into(), String::new()));
        }
    }

    /// The log of a pod's container (stdout and stderr interleaved), the last `tail` lines
    /// when given; None when the container never started. A restarted container keeps its
    /// earlier runs' output (the emulator restarts the same Docker container).
    pub async fn logs(&self, pod_uid: &str, container: &str, tail: Option<u64>) -> Option<String> {
        let id = self.get(&(pod_uid.to_owned(), container.to_owned())).id?;
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut stream = self.docker.logs(&id, Some(opts));
        while let Some(Ok(chunk)) = stream.next().await {
            out.extend_from_slice(&chunk.into_bytes());
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs the liveness probe when it is due; `failureThreshold` failures in a row kill the
    /// container, which then restarts (with the crash back-off) as the kubelet does.
    async fn probe_liveness(&self, c: &Value, id: &str, t: &mut Tracked) {
        let Some(probe) = c.get("livenessProbe").filter(|p| p.is_object()) else {
            return;
        };
        let timing = crate::probe::timing(probe);
        let now = Instant::now();
        let since = *t.running_since.get_or_insert(now);
        if now < t.next_liveness.unwrap_or(since + timing.initial_delay) {
            return;
        }
        t.next_liveness = Some(now + timing.period);
        let ip = t.ip.clone().unwrap_or_default();
        if crate::probe::run(&self.docker, id, &ip, c, probe).await {
            t.liveness_failures = 0;
            return;
        }
        t.liveness_failures += 1;
        if t.liveness_failures >= timing.failure_threshold {
            tracing::info!(
                "container {} failed its liveness probe: killing it",
                text(&c["name"])
            );
            t.liveness_failures = 0;
            t.next_liveness = None;
            let _ = self
                .docker
                .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
                .await;
        }
    }

    /// Runs the readiness probe when it is due and updates `ready` by its thresholds;
    /// without a probe a running container is ready.
    async fn probe_readiness(&self, c: &Value, id: &str, t: &mut Tracked) {
        let Some(probe) = c.get("readinessProbe").filter(|p| p.is_object()) else {
            t.ready = true;
            return;
        };
        let timing = crate::probe::timing(probe);
        let now = Instant::now();
        let since = *t.running_since.get_or_insert(now);
        let due = t.next_probe.unwrap_or(since + timing.initial_delay);
        if now < due {
            return;
        }
        t.next_probe = Some(now + timing.period);
        let ip = t.ip.clone().unwrap_or_default();
        if crate::probe::run(&self.docker, id, &ip, c, probe).await {
            t.probe_failures = 0;
            t.probe_successes += 1;
            if t.probe_successes >= timing.success_threshold {
                t.ready = true;
            }
        } else {
            t.probe_successes = 0;
            t.probe_failures += 1;
            if t.probe_failures >= timing.failure_threshold {
                t.ready = false;
            }
        }
    }

    /// Removes every container of this instance (at shutdown), the starts in flight
    /// stopped first.
    pub async fn remove_all(&self) -> usize {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
        remove_labelled(&self.docker, LABEL_INSTANCE, &self.instance).await
    }
}

/// The container's environment from the pod's namespace's ConfigMaps and Secrets (a missing
/// one is the pod's `CreateContainerConfigError`); skipped `envFrom` keys become events.
fn environment(cluster: &Cluster, pod: &Value, c: &Value) -> Result<Vec<String>, String> {
    let ns = text(&pod["metadata"]["namespace"]);
    let lookup = |source: Source, name: &str| {
        let rt = resources::by_kind("v1", source.kind()).expect("built in");
        cluster.get(rt, ns, name).ok()
    };
    let env = crate::environment::container_environment(ns, c, &lookup)?;
    for w in &env.warnings {
        crate::events::record(
            cluster,
            pod,
            "Warning",
            "InvalidEnvironmentVariableNames",
            w,
            "kubelet",
        );
    }
    Ok(env.vars)
}

fn container_status(c: &Value, t: &Tracked) -> Value {
    let running = t.id.is_some() && t.waiting.is_none() && t.started_at.is_some();
    let ready = running && t.ready;
    let state = match (&t.waiting, running) {
        (Some((reason, _)), _) if reason == "Terminated" => t
            .last_terminated
            .clone()
            .unwrap_or(json!({"terminated": {}})),
        (Some((reason, msg)), _) => json!({"waiting": {"reason": reason, "message": msg}}),
        (None, true) => json!({"running": {"startedAt": t.started_at}}),
        (None, false) => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    let mut s = json!({
        "name": c["name"], "image": c["image"], "imageID": t.image_id,
        "ready": ready, "started": running, "restartCount": t.restarts,
        "state": state,
        // The previous run, once there was a restart (a finished container's own end is `state`).
        "lastState": if t.restarts > 0 || t.waiting.as_ref().is_some_and(|(r, _)| r == "CrashLoopBackOff") {
            t.last_terminated.clone().unwrap_or(json!({}))
        } else {
            json!({})
        },
    });
    if let Some(id) = &t.id {
        s["containerID"] = json!(format!("docker://{id}"));
    }
    // Carried to pod_status, which takes it out again.
    if let Some(ip) = &t.ip {
        s["_ip"] = json!(ip);
    }
    s
}

/// The pod's phase and conditions from its containers' statuses.
fn pod_status(pod: &Value, statuses: &[Value], pod_ip: Option<&str>) -> Value {
    let prev = &pod["status"];
    let now = time::now();
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s["ready"] == json!(true));
    let all_terminated = !statuses.is_empty()
        && statuses
            .iter()
            .all(|s| s["state"]["terminated"].is_object());
    let phase = if all_terminated {
        if statuses
            .iter()
            .all(|s| s["state"]["terminated"]["exitCode"] == json!(0))
        {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if statuses
        .iter()
        .any(|s| s["state"]["running"].is_object() || s["restartCount"].as_i64().unwrap_or(0) > 0)
    {
        "Running"
    } else {
        "Pending"
    };
    let cond = |kind: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        let since = prev["conditions"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == kind && c["status"] == status)
            })
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
            .unwrap_or_else(|| now.clone());
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
    };
    json!({
        "phase": phase,
        "conditions": [cond("PodReadyToStartContainers", true), cond("Initialized", true), cond("Ready", all_ready), cond("ContainersReady", all_ready), cond("PodScheduled", true)],
        "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": pod_ip, "podIPs": pod_ip.map(|ip| vec![json!({"ip": ip})]),
        "startTime": prev["startTime"].as_str().map(str::to_owned).unwrap_or(now.clone()),
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// The Secrets the pod names in `imagePullSecrets` (those that exist, as the kubelet
/// goes on without a missing one).
fn pull_secrets(cluster: &Cluster, pod: &Value) -> Vec<Value> {
    let rt = resources::by_kind("v1", "Secret").expect("built in");
    let ns = text(&pod["metadata"]["namespace"]);
    pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| cluster.get(rt, ns, text(&r["name"])).ok())
        .collect()
}

/// The image's id, pulling it first unless it is there and the policy allows using it: with
/// the credentials of the pod's pull Secrets for the image's host, else, from an ECR host,
/// with a token from the ECR API (as EKS nodes do with their role).
async fn ensure_image(
    docker: &Docker,
    image: &str,
    policy: &str,
    secrets: &[Value],
) -> Result<String> {
    if policy != "Always"
        && let Ok(info) = docker.inspect_image(image).await
    {
        return Ok(info.id.unwrap_or_default());
    }
    let reference =
        Reference::parse(image).map_err(|e| anyhow!("failed to pull image \"{image}\": {e}"))?;
    let host = reference.domain.as_deref().unwrap_or("docker.io");
    let credentials = match crate::pull_secrets::credentials_for(host, secrets) {
        Some(from_secret) => Some(from_secret),
        None if is_ecr_host(host) => Some(
            ecr_credentials()
                .await
                .with_context(|| format!("getting an ECR token for {host}"))?,
        ),
        None => None,
    };
    let (from_image, tag) = pull_reference(&reference);
    let opts = CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, credentials);
    while let Some(item) = stream.next().await {
        item.map_err(|e| anyhow!("failed to pull and unpack image \"{image}\": {e}"))?;
    }
    let info = docker
        .inspect_image(image)
        .await
        .map_err(|e| anyhow!("{image} not found after pulling: {e}"))?;
    Ok(info.id.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_is_started_once_then_observed_and_a_failed_pull_is_shown_before_its_back_off() {
        let now = Instant::now();
        let mut t = Tracked::default();
        assert_eq!(next_step("app:v1", &mut t, now), Next::Start);
        // While its start runs in the background, nothing else is done to it.
        t.starting = true;
        assert_eq!(next_step("app:v1", &mut t, now), Next::Wait);
        // The start failed to pull: reported as ErrImagePull by the next pass...
        t = Tracked {
            waiting: Some(("ErrImagePull".into(), "manifest unknown".into())),
            failures: 1,
            retry_at: Some(now + back_off(1)),
            unreported: true,
            ..Default::default()
        };
        assert_eq!(next_step("app:v1", &mut t, now), Next::Wait);
        assert_eq!(t.waiting.as_ref().unwrap().0, "ErrImagePull");
        // ...then ImagePullBackOff until the back-off is over, then pulled again.
        assert_eq!(next_step("app:v1", &mut t, now), Next::Wait);
        let (reason, message) = t.waiting.clone().unwrap();
        assert_eq!(reason, "ImagePullBackOff");
        assert_eq!(
            message,
            "Back-off pulling image \"app:v1\": manifest unknown"
        );
        assert_eq!(next_step("app:v1", &mut t, now + back_off(1)), Next::Start);
        // Started: looked at on every pass from then on.
        t = Tracked {
            id: Some("c0ffee".into()),
            unreported: true,
            ..Default::default()
        };
        assert_eq!(
            next_step("app:v1", &mut t, now),
            Next::Observe("c0ffee".into())
        );
        t.waiting = Some(("Terminated".into(), String::new()));
        assert_eq!(next_step("app:v1", &mut t, now), Next::Wait);
    }

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| back_off(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_crashed_container_is_reported_in_back_off_with_its_last_exit() {
        let t = Tracked {
            id: Some("abc".into()),
            restarts: 2,
            waiting: Some(("CrashLoopBackOff".into(), "back-off 40s".into())),
            last_terminated: Some(json!({"terminated": {"exitCode": 3, "reason": "Error"}})),
            ..Default::default()
        };
        let s = container_status(&json!({"name": "app", "image": "x"}), &t);
        assert_eq!(s["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(s["lastState"]["terminated"]["exitCode"], 3);
        assert_eq!(s["restartCount"], 2);
        assert_eq!(s["ready"], false);
        let p = pod_status(&json!({"status": {}}), &[s], None);
        assert_eq!(p["phase"], "Running");
        assert_eq!(p["conditions"][2]["status"], "False");
    }
}
