//! The emulator's in-memory state: clusters, task definitions, services, deployments, tasks,
//! tags; and how each renders in the ECS wire shape.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};

use crate::rollout::RolloutState;

/// The account every ARN is in.
pub const ACCOUNT: &str = "123456789012";
/// The region every ARN is in.
pub const REGION: &str = "us-east-1";

/// Seconds since the epoch, as ECS's JSON timestamps are.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An ARN in the emulator's account and region.
pub fn arn(resource: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}")
}

/// A random lowercase hex id of `len` characters (task ids are 32).
pub fn hex_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A deployment id: `ecs-svc/` and 19 digits.
pub fn deployment_id() -> String {
    let mut rng = rand::rng();
    let first = rng.random_range(1..10u8);
    let rest: String = (0..18)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    format!("ecs-svc/{first}{rest}")
}

/// A random UUID-shaped string (event ids, container ARNs).
pub fn uuid() -> String {
    let h = hex_id(32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Everything the emulator knows.
#[derive(Debug, Default)]
pub struct State {
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Task definitions by family; revision N at index N-1.
    pub families: BTreeMap<String, Vec<TaskDefinition>>,
    /// Tags by resource ARN, in the wire shape (`[{key, value}]`).
    pub tags: HashMap<String, Vec<Value>>,
    /// Tasks by id, in every cluster, STOPPED ones too.
    pub tasks: BTreeMap<String, Task>,
}

/// A cluster.
#[derive(Debug)]
pub struct Cluster {
    /// `clusterName`
    pub name: String,
    /// `clusterArn`
    pub arn: String,
    /// Its services by name (ACTIVE and DRAINING ones).
    pub services: BTreeMap<String, Service>,
    /// Deleted services, kept so that DescribeServices answers INACTIVE for them.
    pub inactive_services: BTreeMap<String, Value>,
}

impl Cluster {
    /// A new ACTIVE cluster.
    pub fn new(name: &str) -> Self {
        Cluster {
            name: name.to_owned(),
            arn: arn(&format!("cluster/{name}")),
            services: BTreeMap::new(),
            inactive_services: BTreeMap::new(),
        }
    }
}

/// A registered task definition revision.
#[derive(Debug, Clone)]
pub struct TaskDefinition {
    /// `family`
    pub family: String,
    /// `revision`
    pub revision: u32,
    /// `taskDefinitionArn`
    pub arn: String,
    /// The whole definition as DescribeTaskDefinition returns it (the request plus the
    /// server-side fields).
    pub body: Value,
}

impl TaskDefinition {
    /// The container definitions.
    pub fn containers(&self) -> Vec<Value> {
        self.body
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether it is ACTIVE (not deregistered).
    pub fn active(&self) -> bool {
        self.body.get("status").and_then(Value::as_str) == Some("ACTIVE")
    }
}

/// A service event.
#[derive(Debug, Clone)]
pub struct ServiceEvent {
    /// `id`
    pub id: String,
    /// `createdAt`
    pub created_at: f64,
    /// `message`
    pub message: String,
}

/// A service.
#[derive(Debug)]
pub struct Service {
    /// `serviceName`
    pub name: String,
    /// `serviceArn`
    pub arn: String,
    /// The cluster's name.
    pub cluster: String,
    /// `desiredCount`
    pub desired_count: u32,
    /// `status`: ACTIVE or DRAINING.
    pub status: String,
    /// `deploymentConfiguration` with the defaults filled in.
    pub deployment_configuration: Value,
    /// `loadBalancers`
    pub load_balancers: Value,
    /// The loopback port standing in for the target group, when it has a load balancer.
    pub lb_port: Option<u16>,
    /// Fields kept as given and returned as they are (launchType, networkConfiguration, ...).
    pub extra: serde_json::Map<String, Value>,
    /// `createdAt`
    pub created_at: f64,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// Events, oldest first (rendered newest first).
    pub events: Vec<ServiceEvent>,
    /// Whether "has reached a steady state" was said for the current state.
    pub steady_reported: bool,
    /// The task definition of the last deployment that completed.
    pub last_completed_task_definition: Option<String>,
}

impl Service {
    /// Records an event worded like ECS's: `(service NAME) MESSAGE`.
    pub fn event(&mut self, message: impl AsRef<str>) {
        let message = format!("(service {}) {}", self.name, message.as_ref());
        tracing::info!(cluster = %self.cluster, "{message}");
        self.events.push(ServiceEvent {
            id: uuid(),
            created_at: now(),
            message,
        });
        // ECS returns the 100 most recent events.
        if self.events.len() > 100 {
            self.events.remove(0);
        }
    }

    /// The PRIMARY deployment's task definition ARN.
    pub fn task_definition(&self) -> &str {
        self.deployments
            .first()
            .map(|d| d.task_definition.as_str())
            .unwrap_or("")
    }

    /// `deploymentConfiguration.minimumHealthyPercent`, `maximumPercent`.
    pub fn percents(&self) -> (u32, u32) {
        let get = |k: &str, d: u32| {
            self.deployment_configuration
                .get(k)
                .and_then(Value::as_u64)
                .map(|v| v as u32)
                .unwrap_or(d)
        };
        (
            get("minimumHealthyPercent", 100),
            get("maximumPercent", 200),
        )
    }

    /// `deploymentConfiguration.deploymentCircuitBreaker` as (enable, rollback).
    pub fn circuit_breaker(&self) -> (bool, bool) {
        let cb = self
            .deployment_configuration
            .get("deploymentCircuitBreaker");
        let flag = |k: &str| {
            cb.and_then(|c| c.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        (flag("enable"), flag("rollback"))
    }

    /// Starts a new PRIMARY deployment; the others become ACTIVE.
    pub fn new_deployment(&mut self, task_definition: &str) -> String {
        for d in &mut self.deployments {
            d.status = "ACTIVE".into();
        }
        let id = deployment_id();
        let t = now();
        self.deployments.insert(
            0,
            Deployment {
                id: id.clone(),
                status: "PRIMARY".into(),
                task_definition: task_definition.to_owned(),
                desired_count: self.desired_count,
                created_at: t,
                updated_at: t,
                rollout_state: RolloutState::InProgress,
                rollout_state_reason: format!("ECS deployment {id} in progress."),
                last_failure_at: None,
            },
        );
        self.steady_reported = false;
        id
    }
}

/// A deployment of a service.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `id`: `ecs-svc/<19 digits>`
    pub id: String,
    /// `status`: PRIMARY or ACTIVE.
    pub status: String,
    /// `taskDefinition`
    pub task_definition: String,
    /// `desiredCount`
    pub desired_count: u32,
    /// `createdAt`
    pub created_at: f64,
    /// `updatedAt`
    pub updated_at: f64,
    /// `rolloutState`
    pub rollout_state: RolloutState,
    /// `rolloutStateReason`
    pub rollout_state_reason: String,
    /// When a task of it last failed.
    pub last_failure_at: Option<f64>,
}

/// A port a container publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkBinding {
    /// `containerPort`
    pub container_port: u16,
    /// `hostPort` (on 127.0.0.1)
    pub host_port: u16,
    /// `protocol`: tcp or udp
    pub protocol: String,
}

/// One container of a task.
#[derive(Debug, Clone)]
pub struct TaskContainer {
    /// `name`
    pub name: String,
    /// `containerArn`
    pub arn: String,
    /// `image`
    pub image: String,
    /// `essential`
    pub essential: bool,
    /// Whether its definition has a healthCheck.
    pub has_health_check: bool,
    /// The Docker container id (`runtimeId`), once created.
    pub docker_id: Option<String>,
    /// The Docker container name.
    pub docker_name: String,
    /// `lastStatus`: PENDING, RUNNING, STOPPED.
    pub last_status: String,
    /// `exitCode`
    pub exit_code: Option<i64>,
    /// `reason`
    pub reason: Option<String>,
    /// `healthStatus`: HEALTHY, UNHEALTHY, UNKNOWN.
    pub health_status: String,
    /// `networkBindings`
    pub bindings: Vec<NetworkBinding>,
    /// `imageDigest`
    pub image_digest: Option<String>,
}

/// A task.
#[derive(Debug, Clone)]
pub struct Task {
    /// The id (32 hex characters).
    pub id: String,
    /// `taskArn`
    pub arn: String,
    /// The cluster's name.
    pub cluster: String,
    /// The service's name, for tasks a service started.
    pub service: Option<String>,
    /// `startedBy`: the deployment id for service tasks.
    pub started_by: Option<String>,
    /// `group`: `service:NAME` or `family:FAMILY`.
    pub group: String,
    /// `taskDefinitionArn`
    pub task_definition_arn: String,
    /// `lastStatus`: PROVISIONING, PENDING, RUNNING, DEACTIVATING, STOPPED.
    pub last_status: String,
    /// `desiredStatus`: RUNNING or STOPPED.
    pub desired_status: String,
    /// `healthStatus`
    pub health_status: String,
    /// `cpu`, `memory` of the task definition.
    pub cpu: Option<String>,
    /// `memory`
    pub memory: Option<String>,
    /// `launchType`
    pub launch_type: String,
    /// `createdAt`
    pub created_at: f64,
    /// `pullStartedAt`
    pub pull_started_at: Option<f64>,
    /// `pullStoppedAt`
    pub pull_stopped_at: Option<f64>,
    /// `startedAt`
    pub started_at: Option<f64>,
    /// `stoppingAt`
    pub stopping_at: Option<f64>,
    /// `stoppedAt`
    pub stopped_at: Option<f64>,
    /// `stoppedReason`
    pub stopped_reason: Option<String>,
    /// `stopCode`
    pub stop_code: Option<String>,
    /// Whether it failed (exited, could not start, unhealthy): counts for the circuit breaker.
    pub failed: bool,
    /// Whether its containers are being created and started right now.
    pub starting: bool,
    /// Whether its containers are being (or were) torn down.
    pub teardown: bool,
    /// For services with a load balancer: whether its target port accepts connections.
    pub target_reachable: bool,
    /// `version`
    pub version: u64,
    /// Its containers.
    pub containers: Vec<TaskContainer>,
}

impl Task {
    /// Marks the task as stopping for a reason (desiredStatus STOPPED), once.
    pub fn begin_stop(&mut self, stop_code: &str, reason: &str, failed: bool) {
        if self.desired_status == "STOPPED" {
            return;
        }
        self.desired_status = "STOPPED".into();
        self.stopping_at = Some(now());
        self.stop_code = Some(stop_code.to_owned());
        self.stopped_reason = Some(reason.to_owned());
        self.failed = failed;
        if self.last_status != "STOPPED" {
            self.last_status = "DEACTIVATING".into();
        }
        self.version += 1;
    }

    /// The ECS wire shape (DescribeTasks).
    pub fn to_json(&self, tags: Option<&Vec<Value>>) -> Value {
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let mut v = json!({
                    "containerArn": c.arn,
                    "taskArn": self.arn,
                    "name": c.name,
                    "image": c.image,
                    "lastStatus": c.last_status,
                    "networkBindings": c.bindings.iter().map(|b| json!({
                        "bindIP": "127.0.0.1",
                        "containerPort": b.container_port,
                        "hostPort": b.host_port,
                        "protocol": b.protocol,
                    })).collect::<Vec<_>>(),
                    "networkInterfaces": [],
                    "healthStatus": c.health_status,
                });
                if let Some(id) = &c.docker_id {
                    v["runtimeId"] = json!(id);
                }
                if let Some(code) = c.exit_code {
                    v["exitCode"] = json!(code);
                }
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(d) = &c.image_digest {
                    v["imageDigest"] = json!(d);
                }
                v
            })
            .collect();
        let mut v = json!({
            "taskArn": self.arn,
            "clusterArn": arn(&format!("cluster/{}", self.cluster)),
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "healthStatus": self.health_status,
            "launchType": self.launch_type,
            "group": self.group,
            "createdAt": self.created_at,
            "version": self.version,
            "containers": containers,
            "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": []},
            "attachments": [],
            "availabilityZone": format!("{REGION}a"),
            "connectivity": "CONNECTED",
            "tags": tags.cloned().unwrap_or_default(),
        });
        let opt = |v: &mut Value, k: &str, x: Option<Value>| {
            if let Some(x) = x {
                v[k] = x;
            }
        };
        opt(
            &mut v,
            "startedBy",
            self.started_by.as_ref().map(|s| json!(s)),
        );
        opt(&mut v, "cpu", self.cpu.as_ref().map(|s| json!(s)));
        opt(&mut v, "memory", self.memory.as_ref().map(|s| json!(s)));
        opt(
            &mut v,
            "pullStartedAt",
            self.pull_started_at.map(|s| json!(s)),
        );
        opt(
            &mut v,
            "pullStoppedAt",
            self.pull_stopped_at.map(|s| json!(s)),
        );
        opt(&mut v, "startedAt", self.started_at.map(|s| json!(s)));
        opt(&mut v, "stoppingAt", self.stopping_at.map(|s| json!(s)));
        opt(&mut v, "stoppedAt", self.stopped_at.map(|s| json!(s)));
        opt(
            &mut v,
            "stoppedReason",
            self.stopped_reason.as_ref().map(|s| json!(s)),
        );
        opt(
            &mut v,
            "stopCode",
            self.stop_code.as_ref().map(|s| json!(s)),
        );
        if self.started_at.is_some() {
            v["connectivityAt"] = json!(self.created_at);
        }
        v
    }
}

impl State {
    /// Tasks of one service that the scheduler still wants running.
    pub fn live_tasks<'a>(
        &'a self,
        cluster: &'a str,
        service: &'a str,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.values().filter(move |t| {
            t.cluster == cluster
                && t.service.as_deref() == Some(service)
                && t.desired_status == "RUNNING"
        })
    }

    /// The ECS wire shape of a service (DescribeServices).
    pub fn service_json(&self, svc: &Service) -> Value {
        let count = |dep: Option<&str>| {
            let mut running = 0u32;
            let mut pending = 0u32;
            let mut failed = 0u32;
            for t in self.tasks.values() {
                if t.cluster != svc.cluster || t.service.as_deref() != Some(&svc.name) {
                    continue;
                }
                if let Some(d) = dep
                    && t.started_by.as_deref() != Some(d)
                {
                    continue;
                }
                if t.failed {
                    failed += 1;
                }
                if t.desired_status != "RUNNING" {
                    continue;
                }
                match t.last_status.as_str() {
                    "RUNNING" => running += 1,
                    "STOPPED" | "DEACTIVATING" => {}
                    _ => pending += 1,
                }
            }
            (running, pending, failed)
        };
        let deployments: Vec<Value> = svc
            .deployments
            .iter()
            .map(|d| {
                let (running, pending, failed) = count(Some(&d.id));
                let mut v = json!({
                    "id": d.id,
                    "status": d.status,
                    "taskDefinition": d.task_definition,
                    "desiredCount": d.desired_count,
                    "pendingCount": pending,
                    "runningCount": running,
                    "failedTasks": failed,
                    "createdAt": d.created_at,
                    "updatedAt": d.updated_at,
                    "rolloutState": d.rollout_state.as_str(),
                    "rolloutStateReason": d.rollout_state_reason,
                });
                if let Some(lt) = svc.extra.get("launchType") {
                    v["launchType"] = lt.clone();
                }
                if let Some(nc) = svc.extra.get("networkConfiguration") {
                    v["networkConfiguration"] = nc.clone();
                }
                v
            })
            .collect();
        let (running, pending, _) = count(None);
        let events: Vec<Value> = svc
            .events
            .iter()
            .rev()
            .map(|e| json!({"id": e.id, "createdAt": e.created_at, "message": e.message}))
            .collect();
        let mut v = json!({
            "serviceArn": svc.arn,
            "serviceName": svc.name,
            "clusterArn": arn(&format!("cluster/{}", svc.cluster)),
            "loadBalancers": svc.load_balancers,
            "serviceRegistries": [],
            "status": svc.status,
            "desiredCount": svc.desired_count,
            "runningCount": running,
            "pendingCount": pending,
            "taskDefinition": svc.task_definition(),
            "deploymentConfiguration": svc.deployment_configuration,
            "deployments": deployments,
            "events": events,
            "createdAt": svc.created_at,
            "placementConstraints": [],
            "placementStrategy": [],
            "schedulingStrategy": "REPLICA",
            "deploymentController": {"type": "ECS"},
            "createdBy": format!("arn:aws:iam::{ACCOUNT}:root"),
            "enableECSManagedTags": false,
            "propagateTags": "NONE",
            "enableExecuteCommand": false,
        });
        for (k, x) in &svc.extra {
            v[k] = x.clone();
        }
        v
    }
}
