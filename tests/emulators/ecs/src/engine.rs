//! The reconciler: every tick it observes the containers of running tasks, asks
//! [`crate::rollout::decide`] what each service needs, applies the decisions to the state and
//! carries out the Docker calls they imply (start a task's containers, tear a task down).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HealthStatusEnum, HostConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::reference::Reference;

use crate::Emulator;
use crate::api::find_task_definition;
use crate::rollout::{
    Action, CircuitBreaker, DeploymentObservation, RolloutState, ServiceObservation, StopCause,
    TaskObservation, TaskPhase, decide,
};
use crate::startup::{ContainerStart, plan_start};
use crate::state::{NetworkBinding, State, Task, TaskContainer, arn, hex_id, now, uuid};
pub use emulator_node::remove_labelled;
use emulator_node::{ecr_credentials, is_ecr_host, pull_reference, remove_container};

/// The label every container the emulator starts carries: the emulator instance's id.
pub const LABEL_INSTANCE: &str = "shipkit.ecs-emulator.instance";
/// The label with the address the emulator listens on (to clean up after a crashed run).
pub const LABEL_LISTEN: &str = "shipkit.ecs-emulator.listen";
/// The label with the deployment id that started the task.
pub const LABEL_DEPLOYMENT: &str = "shipkit.ecs-emulator.deployment";

/// Docker work that a decision implies, carried out outside the state lock.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// Pull, create and start the task's containers.
    Start(String),
    /// Stop and remove the task's containers, then mark it STOPPED.
    Teardown(String),
}

/// Runs the reconciler until the process ends.
pub async fn run(emu: Arc<Emulator>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        reconcile_once(&emu).await;
    }
}

/// What one container looks like to Docker right now.
#[derive(Debug, Clone)]
struct ContainerObservation {
    running: bool,
    exit_code: Option<i64>,
    error: Option<String>,
    health: Option<String>,
}

/// A task to observe: its id, its containers' (index, Docker id), its target port.
type WatchedTask = (String, Vec<(usize, String)>, Option<u16>);
/// What was observed of a task: its containers, whether its target port answers.
type TaskObservations = (Vec<(usize, ContainerObservation)>, bool);

/// One reconcile pass.
pub async fn reconcile_once(emu: &Arc<Emulator>) {
    // 1. Observe the containers of running tasks (and whether load-balanced targets answer).
    let watched: Vec<WatchedTask> = {
        let st = emu.lock();
        st.tasks
            .values()
            .filter(|t| t.last_status == "RUNNING" && !t.teardown && !t.starting)
            .map(|t| {
                let ids = t
                    .containers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.docker_id.clone().map(|id| (i, id)))
                    .collect();
                (t.id.clone(), ids, target_port(&st, t))
            })
            .collect()
    };
    // Tasks are looked at concurrently, so that one slow target does not hold up the others.
    let looks = watched
        .into_iter()
        .map(|(task_id, containers, target)| async move {
            let mut obs = Vec::new();
            for (i, id) in containers {
                obs.push((i, observe_container(&emu.docker, &id).await));
            }
            let reachable = match target {
                Some(port) => target_answers(port).await,
                None => false,
            };
            (task_id, (obs, reachable))
        });
    let observed: HashMap<String, TaskObservations> = futures_util::future::join_all(looks)
        .await
        .into_iter()
        .collect();

    // 2. Apply observations, decide, apply decisions.
    let effects = {
        let mut st = emu.lock();
        apply_observations(&mut st, observed);
        let mut effects = schedule(&mut st);
        for t in st.tasks.values_mut() {
            if t.desired_status == "STOPPED"
                && !t.teardown
                && !t.starting
                && t.last_status != "STOPPED"
            {
                t.teardown = true;
                effects.push(Effect::Teardown(t.id.clone()));
            }
        }
        retire_drained_services(&mut st);
        // ECS shows stopped tasks for about an hour.
        let t = now();
        st.tasks
            .retain(|_, task| task.stopped_at.is_none_or(|at| t - at < 3600.0));
        emu.update_targets(&st);
        effects
    };

    // 3. Docker work, in the background so that a slow pull does not hold up the next tick.
    for e in effects {
        let emu = emu.clone();
        tokio::spawn(async move {
            match e {
                Effect::Start(id) => start_task(&emu, &id).await,
                Effect::Teardown(id) => teardown_task(&emu, &id).await,
            }
        });
    }
}

/// The target-group health check: an HTTP request to the target answered with anything at
/// all. (A TCP connect alone proves nothing: docker-proxy accepts on the host port before the
/// container listens, then closes the connection.)
async fn target_answers(port: u16) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(
            b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n",
        )
        .await
        .ok()?;
        let mut buf = [0u8; 1];
        (s.read(&mut buf).await.ok()? == 1).then_some(())
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// The host port of the load-balanced container port of a task, if its service has one.
fn target_port(st: &State, t: &Task) -> Option<u16> {
    let svc = st
        .clusters
        .get(&t.cluster)?
        .services
        .get(t.service.as_deref()?)?;
    let lb = svc.load_balancers.as_array()?.first()?;
    let name = lb.get("containerName")?.as_str()?;
    let port = lb.get("containerPort")?.as_u64()? as u16;
    let c = t.containers.iter().find(|c| c.name == name)?;
    c.bindings
        .iter()
        .find(|b| b.container_port == port && b.protocol == "tcp")
        .map(|b| b.host_port)
}

async fn observe_container(docker: &Docker, id: &str) -> ContainerObservation {
    match docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
    {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            let health = state.health.and_then(|h| h.status).map(|s| match s {
                HealthStatusEnum::HEALTHY => "HEALTHY".to_owned(),
                HealthStatusEnum::UNHEALTHY => "UNHEALTHY".to_owned(),
                _ => "UNKNOWN".to_owned(),
            });
            let running = state.running.unwrap_or(false);
            ContainerObservation {
                running,
                exit_code: if running { None } else { state.exit_code },
                error: state.error.filter(|e| !e.is_empty()),
                health,
            }
        }
        Err(e) => ContainerObservation {
            running: false,
            exit_code: None,
            error: Some(format!("container is gone: {e}")),
            health: None,
        },
    }
}

fn apply_observations(
    st: &mut State,
    observed: HashMap<String, (Vec<(usize, ContainerObservation)>, bool)>,
) {
    for (task_id, (containers, reachable)) in observed {
        let Some(t) = st.tasks.get_mut(&task_id) else {
            continue;
        };
        t.target_reachable = reachable;
        let mut essential_exited = false;
        for (i, o) in containers {
            let c = &mut t.containers[i];
            if let Some(h) = o.health {
                c.health_status = h;
            }
            if !o.running && c.last_status == "RUNNING" {
                c.last_status = "STOPPED".into();
                c.exit_code = o.exit_code;
                c.reason = o.error;
                if c.essential {
                    essential_exited = true;
                }
            }
        }
        let checked: Vec<&TaskContainer> = t
            .containers
            .iter()
            .filter(|c| c.essential && c.has_health_check)
            .collect();
        t.health_status = if checked.is_empty() {
            "UNKNOWN".into()
        } else if checked.iter().any(|c| c.health_status == "UNHEALTHY") {
            "UNHEALTHY".into()
        } else if checked.iter().all(|c| c.health_status == "HEALTHY") {
            "HEALTHY".into()
        } else {
            "UNKNOWN".into()
        };
        if essential_exited && t.desired_status == "RUNNING" {
            t.begin_stop(
                "EssentialContainerExited",
                "Essential container in task exited",
                true,
            );
            let (cluster, service, dep) =
                (t.cluster.clone(), t.service.clone(), t.started_by.clone());
            note_failure(st, &cluster, service.as_deref(), dep.as_deref());
        }
    }
}

/// Remembers that a task of a deployment failed (launch backoff, steady state said again).
fn note_failure(st: &mut State, cluster: &str, service: Option<&str>, deployment: Option<&str>) {
    let Some(svc) = service.and_then(|s| st.clusters.get_mut(cluster)?.services.get_mut(s)) else {
        return;
    };
    svc.steady_reported = false;
    if let Some(d) = svc
        .deployments
        .iter_mut()
        .find(|d| Some(d.id.as_str()) == deployment)
    {
        d.last_failure_at = Some(now());
    }
}

/// The scheduler's pass over every service: observation → decision → state changes.
fn schedule(st: &mut State) -> Vec<Effect> {
    let mut effects = Vec::new();
    let keys: Vec<(String, String)> = st
        .clusters
        .values()
        .flat_map(|c| c.services.keys().map(|s| (c.name.clone(), s.clone())))
        .collect();
    for (cluster, name) in keys {
        let obs = observe_service(st, &cluster, &name);
        let actions = decide(&obs);
        for a in actions {
            apply_action(st, &cluster, &name, a, &mut effects);
        }
    }
    effects
}

fn task_phase(st: &State, t: &Task) -> TaskPhase {
    if t.last_status != "RUNNING" {
        return TaskPhase::Pending;
    }
    match t.health_status.as_str() {
        "UNHEALTHY" => return TaskPhase::Unhealthy,
        "HEALTHY" => {}
        _ if t
            .containers
            .iter()
            .any(|c| c.essential && c.has_health_check) =>
        {
            return TaskPhase::Pending;
        }
        _ => {}
    }
    if target_port(st, t).is_some() && !t.target_reachable {
        return TaskPhase::Pending;
    }
    TaskPhase::Ready
}

fn observe_service(st: &State, cluster: &str, name: &str) -> ServiceObservation {
    let svc = &st.clusters[cluster].services[name];
    let (min, max) = svc.percents();
    let (cb_enable, cb_rollback) = svc.circuit_breaker();
    let tasks: Vec<TaskObservation> = st
        .live_tasks(cluster, name)
        .map(|t| TaskObservation {
            id: t.id.clone(),
            deployment_id: t.started_by.clone().unwrap_or_default(),
            phase: task_phase(st, t),
        })
        .collect();
    let deployments = svc
        .deployments
        .iter()
        .map(|d| DeploymentObservation {
            id: d.id.clone(),
            task_definition: d.task_definition.clone(),
            rollout_state: d.rollout_state,
            failed_tasks: st
                .tasks
                .values()
                .filter(|t| t.failed && t.started_by.as_deref() == Some(&d.id))
                .count() as u32,
            last_failure_at: d.last_failure_at,
        })
        .collect();
    ServiceObservation {
        desired_count: if svc.status == "ACTIVE" {
            svc.desired_count
        } else {
            0
        },
        minimum_healthy_percent: min,
        maximum_percent: max,
        circuit_breaker: cb_enable.then_some(CircuitBreaker {
            rollback: cb_rollback,
        }),
        deployments,
        tasks,
        last_completed_task_definition: svc.last_completed_task_definition.clone(),
        steady_reported: svc.steady_reported || svc.status != "ACTIVE",
        now: now(),
    }
}

fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn apply_action(
    st: &mut State,
    cluster: &str,
    name: &str,
    action: Action,
    effects: &mut Vec<Effect>,
) {
    match action {
        Action::Start {
            deployment_id,
            count,
        } => {
            let td_arn = {
                let svc = &st.clusters[cluster].services[name];
                let Some(d) = svc.deployments.iter().find(|d| d.id == deployment_id) else {
                    return;
                };
                d.task_definition.clone()
            };
            let Some(td) = find_task_definition(st, &td_arn).cloned() else {
                return;
            };
            let mut ids = Vec::new();
            for _ in 0..count {
                let task = new_task(cluster, Some(name), Some(&deployment_id), &td);
                ids.push(task.id.clone());
                effects.push(Effect::Start(task.id.clone()));
                st.tasks.insert(task.id.clone(), task);
            }
            let svc = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name));
            if let Some(svc) = svc {
                svc.event(format!(
                    "has started {} tasks: {}.",
                    ids.len(),
                    task_list(&ids)
                ));
            }
        }
        Action::Stop { task_ids, cause } => {
            let svc = &st.clusters[cluster].services[name];
            let primary = svc
                .deployments
                .first()
                .map(|d| d.id.clone())
                .unwrap_or_default();
            let target_group = svc
                .load_balancers
                .get(0)
                .and_then(|lb| lb.get("targetGroupArn"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            for id in &task_ids {
                let Some(t) = st.tasks.get_mut(id) else {
                    continue;
                };
                match cause {
                    StopCause::Scheduler => t.begin_stop(
                        "ServiceSchedulerInitiated",
                        &format!("Scaling activity initiated by (deployment {primary})"),
                        false,
                    ),
                    StopCause::Unhealthy => {
                        t.begin_stop(
                            "ServiceSchedulerInitiated",
                            "Task failed container health checks",
                            true,
                        );
                        let (c, s, d) =
                            (t.cluster.clone(), t.service.clone(), t.started_by.clone());
                        note_failure(st, &c, s.as_deref(), d.as_deref());
                    }
                }
            }
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            if let Some(tg) = target_group {
                svc.event(format!(
                    "has begun draining connections on {} tasks.",
                    task_ids.len()
                ));
                svc.event(format!(
                    "deregistered {} targets in (target-group {tg})",
                    task_ids.len()
                ));
            }
            svc.event(format!(
                "has stopped {} running tasks: {}.",
                task_ids.len(),
                task_list(&task_ids)
            ));
        }
        Action::Complete { deployment_id } => {
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            let Some(d) = svc.deployments.iter_mut().find(|d| d.id == deployment_id) else {
                return;
            };
            d.rollout_state = RolloutState::Completed;
            d.rollout_state_reason = format!("ECS deployment {deployment_id} completed.");
            d.updated_at = now();
            let td = d.task_definition.clone();
            svc.last_completed_task_definition = Some(td);
            svc.event(format!(
                "(deployment {deployment_id}) deployment completed."
            ));
        }
        Action::Fail { deployment_id } => {
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            let Some(d) = svc.deployments.iter_mut().find(|d| d.id == deployment_id) else {
                return;
            };
            d.rollout_state = RolloutState::Failed;
            d.rollout_state_reason =
                "ECS deployment circuit breaker: tasks failed to start.".into();
            d.updated_at = now();
            svc.event(format!(
                "(deployment {deployment_id}) deployment failed: tasks failed to start."
            ));
        }
        Action::Rollback {
            from_deployment_id,
            task_definition,
        } => {
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            let id = svc.new_deployment(&task_definition);
            if let Some(d) = svc.deployments.first_mut() {
                d.rollout_state_reason = format!(
                    "ECS deployment circuit breaker: rolling back to task definition {task_definition} after deployment {from_deployment_id} failed."
                );
            }
            svc.event(format!("(deployment {from_deployment_id}) rolling back to {task_definition} in deployment {id}."));
        }
        Action::Remove { deployment_ids } => {
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            svc.deployments
                .retain(|d| d.status == "PRIMARY" || !deployment_ids.contains(&d.id));
        }
        Action::SteadyState => {
            let Some(svc) = st
                .clusters
                .get_mut(cluster)
                .and_then(|c| c.services.get_mut(name))
            else {
                return;
            };
            svc.steady_reported = true;
            svc.event("has reached a steady state.");
        }
    }
}

/// A new task (PROVISIONING) of a task definition.
pub fn new_task(
    cluster: &str,
    service: Option<&str>,
    deployment: Option<&str>,
    td: &crate::state::TaskDefinition,
) -> Task {
    let id = hex_id(32);
    let task_arn = arn(&format!("task/{cluster}/{id}"));
    let containers = td
        .containers()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("").to_owned();
            TaskContainer {
                arn: arn(&format!("container/{cluster}/{id}/{}", uuid())),
                image: c["image"].as_str().unwrap_or("").to_owned(),
                essential: c.get("essential").and_then(Value::as_bool).unwrap_or(true),
                has_health_check: c.get("healthCheck").is_some(),
                docker_id: None,
                docker_name: docker_name(&td.family, td.revision, &name, &id),
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                health_status: "UNKNOWN".into(),
                bindings: Vec::new(),
                image_digest: None,
                name,
            }
        })
        .collect();
    let group = match service {
        Some(s) => format!("service:{s}"),
        None => format!("family:{}", td.family),
    };
    Task {
        arn: task_arn,
        cluster: cluster.to_owned(),
        service: service.map(str::to_owned),
        started_by: deployment.map(str::to_owned),
        group,
        task_definition_arn: td.arn.clone(),
        last_status: "PROVISIONING".into(),
        desired_status: "RUNNING".into(),
        health_status: "UNKNOWN".into(),
        cpu: td
            .body
            .get("cpu")
            .and_then(Value::as_str)
            .map(str::to_owned),
        memory: td
            .body
            .get("memory")
            .and_then(Value::as_str)
            .map(str::to_owned),
        launch_type: "EC2".into(),
        created_at: now(),
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        stopped_reason: None,
        stop_code: None,
        failed: false,
        starting: true,
        teardown: false,
        target_reachable: false,
        version: 1,
        containers,
        id,
    }
}

/// The Docker name of a task's container, like the ECS agent's:
/// `ecs-<family>-<revision>-<container>-<task id>`.
pub fn docker_name(family: &str, revision: u32, container: &str, task_id: &str) -> String {
    let clean: String = container
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("ecs-{family}-{revision}-{clean}-{task_id}")
}

fn retire_drained_services(st: &mut State) {
    let mut retire = Vec::new();
    for c in st.clusters.values() {
        for s in c.services.values().filter(|s| s.status == "DRAINING") {
            let busy = st.tasks.values().any(|t| {
                t.cluster == c.name
                    && t.service.as_deref() == Some(&s.name)
                    && t.last_status != "STOPPED"
            });
            if !busy {
                retire.push((c.name.clone(), s.name.clone()));
            }
        }
    }
    for (c, s) in retire {
        let Some(mut svc) = st
            .clusters
            .get_mut(&c)
            .and_then(|cl| cl.services.remove(&s))
        else {
            continue;
        };
        svc.status = "INACTIVE".into();
        svc.deployments.clear();
        let v = st.service_json(&svc);
        if let Some(cl) = st.clusters.get_mut(&c) {
            cl.inactive_services.insert(s, v);
        }
    }
}

// ------------------------------------------------------------- docker: start --

/// The Docker container configuration for one container definition of a task.
pub fn container_config(
    def: &Value,
    network_mode: Option<&str>,
    labels: HashMap<String, String>,
    links: Vec<String>,
    image: &str,
) -> ContainerCreateBody {
    let strings = |k: &str| -> Option<Vec<String>> {
        def.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    };
    let env: Vec<String> = def
        .get("environment")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(format!(
                "{}={}",
                e.get("name")?.as_str()?,
                e.get("value")?.as_str().unwrap_or("")
            ))
        })
        .collect();
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for m in def
        .get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(port) = m.get("containerPort").and_then(Value::as_u64) else {
            continue;
        };
        let proto = m.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
        let key = format!("{port}/{proto}");
        let host = m
            .get("hostPort")
            .and_then(Value::as_u64)
            .filter(|p| *p != 0);
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host.map(|p| p.to_string()).unwrap_or_default()),
            }]),
        );
    }
    let secs = |k: &str, default: i64| {
        def.get("healthCheck")
            .and_then(|h| h.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(default)
            * 1_000_000_000
    };
    let healthcheck = def.get("healthCheck").map(|h| HealthConfig {
        test: h.get("command").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }),
        interval: Some(secs("interval", 30)),
        timeout: Some(secs("timeout", 5)),
        retries: Some(h.get("retries").and_then(Value::as_i64).unwrap_or(3)),
        start_period: Some(secs("startPeriod", 0)),
        ..Default::default()
    });
    let mut labels = labels;
    if let Some(Value::Object(dl)) = def.get("dockerLabels") {
        for (k, v) in dl {
            if let Some(v) = v.as_str() {
                labels.insert(k.clone(), v.to_owned());
            }
        }
    }
    let network_mode = match network_mode {
        Some("host") => Some("host".to_owned()),
        Some("none") => Some("none".to_owned()),
        _ => None,
    };
    ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(env),
        cmd: strings("command"),
        entrypoint: strings("entryPoint"),
        working_dir: def
            .get("workingDirectory")
            .and_then(Value::as_str)
            .map(str::to_owned),
        user: def.get("user").and_then(Value::as_str).map(str::to_owned),
        hostname: def
            .get("hostname")
            .and_then(Value::as_str)
            .map(str::to_owned),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        labels: Some(labels),
        stop_timeout: def.get("stopTimeout").and_then(Value::as_i64),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            links: (!links.is_empty()).then_some(links),
            network_mode,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn fail_start(emu: &Emulator, task_id: &str, reason: String) {
    tracing::warn!(task = task_id, "{reason}");
    let mut st = emu.lock();
    let Some(t) = st.tasks.get_mut(task_id) else {
        return;
    };
    t.starting = false;
    let already_stopping = t.desired_status == "STOPPED";
    for c in &mut t.containers {
        if c.last_status != "STOPPED" {
            c.last_status = "STOPPED".into();
        }
        if c.reason.is_none() {
            c.reason = Some(reason.clone());
        }
    }
    if !already_stopping {
        t.begin_stop("TaskFailedToStart", &reason, true);
        let (c, s, d) = (t.cluster.clone(), t.service.clone(), t.started_by.clone());
        note_failure(&mut st, &c, s.as_deref(), d.as_deref());
    }
}

async fn start_task(emu: &Arc<Emulator>, task_id: &str) {
    if let Err(e) = start_task_inner(emu, task_id).await {
        fail_start(emu, task_id, format!("{e:#}"));
    }
}

async fn start_task_inner(emu: &Arc<Emulator>, task_id: &str) -> Result<()> {
    let (td, task) = {
        let mut st = emu.lock();
        let Some(t) = st.tasks.get_mut(task_id) else {
            return Ok(());
        };
        t.last_status = "PENDING".into();
        t.pull_started_at = Some(now());
        let t = t.clone();
        let td = find_task_definition(&st, &t.task_definition_arn)
            .cloned()
            .ok_or_else(|| anyhow!("task definition gone"))?;
        (td, t)
    };
    let defs = td.containers();
    let mut digests = Vec::new();
    for c in &task.containers {
        let d = ensure_image(&emu.docker, &c.image)
            .await
            .map_err(|e| anyhow!("CannotPullContainerError: {e:#}"))?;
        digests.push(d);
    }
    {
        let mut st = emu.lock();
        if let Some(t) = st.tasks.get_mut(task_id) {
            t.pull_stopped_at = Some(now());
            for (c, d) in t.containers.iter_mut().zip(&digests) {
                c.image_digest = d.clone();
            }
        }
    }
    let network_mode = td.body.get("networkMode").and_then(Value::as_str);
    // The task's containers' definitions, in the task's order.
    let task_defs: Vec<Value> = task
        .containers
        .iter()
        .map(|c| {
            defs.iter()
                .find(|d| d["name"] == c.name.as_str())
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let docker_names: Vec<String> = task
        .containers
        .iter()
        .map(|c| c.docker_name.clone())
        .collect();
    let bridge = !matches!(network_mode, Some("host" | "none"));
    let plan = plan_start(&task_defs, &docker_names, bridge)
        .map_err(|e| anyhow!("CannotCreateContainerError: {e}"))?;
    for ContainerStart { index: i, links } in plan {
        let c = &task.containers[i];
        if emu
            .lock()
            .tasks
            .get(task_id)
            .is_none_or(|t| t.desired_status == "STOPPED")
        {
            break;
        }
        let def = &task_defs[i];
        let labels = HashMap::from([
            ("com.amazonaws.ecs.cluster".to_owned(), task.cluster.clone()),
            ("com.amazonaws.ecs.task-arn".to_owned(), task.arn.clone()),
            (
                "com.amazonaws.ecs.container-name".to_owned(),
                c.name.clone(),
            ),
            (
                "com.amazonaws.ecs.task-definition-family".to_owned(),
                td.family.clone(),
            ),
            (
                "com.amazonaws.ecs.task-definition-version".to_owned(),
                td.revision.to_string(),
            ),
            (LABEL_INSTANCE.to_owned(), emu.instance.clone()),
            (LABEL_LISTEN.to_owned(), emu.listen.to_string()),
            (
                LABEL_DEPLOYMENT.to_owned(),
                task.started_by.clone().unwrap_or_default(),
            ),
        ]);
        let config = container_config(def, network_mode, labels, links, &c.image);
        let created = emu
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(c.docker_name.clone()),
                    ..Default::default()
                }),
                config,
            )
            .await
            .map_err(|e| anyhow!("CannotCreateContainerError: {e}"))?;
        {
            let mut st = emu.lock();
            if let Some(t) = st.tasks.get_mut(task_id) {
                t.containers[i].docker_id = Some(created.id.clone());
            }
        }
        emu.docker
            .start_container(&created.id, None)
            .await
            .map_err(|e| anyhow!("CannotStartContainerError: {e}"))?;
        let info = emu
            .docker
            .inspect_container(&created.id, None::<InspectContainerOptions>)
            .await
            .context("inspecting the started container")?;
        let mut bindings = Vec::new();
        for (key, b) in info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
        {
            let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for pb in b.unwrap_or_default() {
                if pb.host_ip.as_deref().is_some_and(|ip| ip.contains(':')) {
                    continue;
                }
                if let Some(hp) = pb.host_port.and_then(|p| p.parse::<u16>().ok()) {
                    bindings.push(NetworkBinding {
                        container_port: port,
                        host_port: hp,
                        protocol: proto.to_owned(),
                    });
                }
            }
        }
        bindings.sort_by_key(|b| b.container_port);
        let mut st = emu.lock();
        if let Some(t) = st.tasks.get_mut(task_id) {
            t.containers[i].bindings = bindings;
            t.containers[i].last_status = "RUNNING".into();
        }
    }
    let mut st = emu.lock();
    if let Some(t) = st.tasks.get_mut(task_id) {
        t.starting = false;
        if t.desired_status == "RUNNING" {
            t.last_status = "RUNNING".into();
            t.started_at = Some(now());
            t.version += 1;
        }
    }
    Ok(())
}

// -------------------------------------------------------------- docker: stop --

async fn teardown_task(emu: &Arc<Emulator>, task_id: &str) {
    let ids: Vec<(usize, String)> = {
        let st = emu.lock();
        let Some(t) = st.tasks.get(task_id) else {
            return;
        };
        t.containers
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.docker_id.clone().map(|d| (i, d)))
            .collect()
    };
    let mut exits = Vec::new();
    for (i, id) in ids {
        let _ = emu
            .docker
            .stop_container(
                &id,
                Some(StopContainerOptions {
                    t: Some(emu.stop_timeout_secs),
                    ..Default::default()
                }),
            )
            .await;
        let exit = match emu
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info.state.and_then(|s| s.exit_code),
            Err(_) => None,
        };
        exits.push((i, exit));
        remove_container(&emu.docker, &id).await;
    }
    let mut st = emu.lock();
    let Some(t) = st.tasks.get_mut(task_id) else {
        return;
    };
    for (i, exit) in exits {
        let c = &mut t.containers[i];
        if c.exit_code.is_none() {
            c.exit_code = exit;
        }
    }
    for c in &mut t.containers {
        c.last_status = "STOPPED".into();
    }
    t.last_status = "STOPPED".into();
    t.stopped_at = Some(now());
    t.version += 1;
}

// ------------------------------------------------------------------- images --

/// Makes sure the image is there: used as it is when the daemon already has it, else pulled
/// (from an ECR host with a token from the ECR API, like the ECS agent; from other registries
/// with the credentials in the Docker config file, like the agent's `ECS_ENGINE_AUTH_DATA`).
/// Returns the image's repo digest when it has one.
async fn ensure_image(docker: &Docker, image: &str) -> Result<Option<String>> {
    if let Ok(info) = docker.inspect_image(image).await {
        return Ok(info
            .repo_digests
            .and_then(|d| d.into_iter().next())
            .and_then(|d| d.split_once('@').map(|(_, x)| x.to_owned())));
    }
    let reference = Reference::parse(image)?;
    let host = reference.domain.as_deref();
    let credentials = match host {
        Some(h) if is_ecr_host(h) => Some(
            ecr_credentials()
                .await
                .with_context(|| format!("getting an ECR token for {h}"))?,
        ),
        Some(h) => docker_config_credentials(h),
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
        item.map_err(|e| anyhow!("pulling {image}: {e}"))?;
    }
    let info = docker
        .inspect_image(image)
        .await
        .map_err(|e| anyhow!("{image} not found after pulling: {e}"))?;
    Ok(info
        .repo_digests
        .and_then(|d| d.into_iter().next())
        .and_then(|d| d.split_once('@').map(|(_, x)| x.to_owned())))
}

/// Credentials for a registry from the Docker config file (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`), `auths.<host>.auth`.
fn docker_config_credentials(host: &str) -> Option<DockerCredentials> {
    let dir = std::env::var("DOCKER_CONFIG")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.docker")))?;
    let text = std::fs::read_to_string(format!("{dir}/config.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let auth = v.get("auths")?.get(host)?.get("auth")?.as_str()?;
    let decoded = base64_decode(auth)?;
    let (user, password) = decoded.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_owned()),
        password: Some(password.to_owned()),
        ..Default::default()
    })
}

/// Standard base64 (padding optional) to a UTF-8 string.
fn base64_decode(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in s.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=') {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_decodes_tokens() {
        assert_eq!(
            base64_decode("QVdTOnNlY3JldA==").as_deref(),
            Some("AWS:secret")
        );
        assert_eq!(
            base64_decode("c2hpcGtpdDpwdw").as_deref(),
            Some("shipkit:pw")
        );
    }

    #[test]
    fn container_definitions_map_to_docker() {
        let def = json!({
            "name": "web", "image": "img:1",
            "command": ["/busybox", "httpd", "-f"], "entryPoint": ["/x"],
            "environment": [{"name": "A", "value": "1"}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}, {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}],
            "healthCheck": {"command": ["CMD", "/busybox", "true"], "interval": 2, "retries": 2},
            "dockerLabels": {"team": "a"},
        });
        let c = container_config(
            &def,
            Some("bridge"),
            HashMap::new(),
            vec!["ecs-f-1-redis-t:redis".into()],
            "img:1",
        );
        assert_eq!(
            c.cmd,
            Some(vec!["/busybox".into(), "httpd".into(), "-f".into()])
        );
        assert_eq!(c.entrypoint, Some(vec!["/x".into()]));
        assert_eq!(c.env, Some(vec!["A=1".into()]));
        let hc = c.healthcheck.expect("healthcheck");
        assert_eq!(hc.interval, Some(2_000_000_000));
        assert_eq!(hc.timeout, Some(5_000_000_000));
        assert_eq!(hc.retries, Some(2));
        let pb = c
            .host_config
            .clone()
            .and_then(|h| h.port_bindings)
            .expect("bindings");
        assert_eq!(
            pb["8080/tcp"].as_ref().expect("8080")[0]
                .host_port
                .as_deref(),
            Some("")
        );
        assert_eq!(
            pb["53/udp"].as_ref().expect("53")[0].host_port.as_deref(),
            Some("5353")
        );
        assert_eq!(c.labels.expect("labels")["team"], "a");
        assert_eq!(
            c.host_config.and_then(|h| h.links),
            Some(vec!["ecs-f-1-redis-t:redis".to_owned()])
        );
    }

    #[test]
    fn docker_names_follow_the_agent() {
        assert_eq!(docker_name("api", 3, "web", "abc"), "ecs-api-3-web-abc");
    }
}
