//! Tasks of several containers on bridge networking: `links` become Docker links (the linking
//! container finds the other by its alias in /etc/hosts), linked and `dependsOn` containers
//! start first, and a link to a container the task does not have fails the task's start.
//! Needs `scripts/services up` (the Docker Engine).

mod support;

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{DesiredStatus, Task};
use serde_json::{Value, json};
use shipkit_tests::docker::{docker, docker_ok};
use shipkit_tests::unique;
use shipkit_tests::wait::wait_for;
use support::{EmulatorProcess, TestImages, httpd_container};

/// busybox httpd serving `image`'s page on 8080, named `name`, with `extra` fields.
fn container(name: &str, image: &str, extra: Value) -> Value {
    let mut c = httpd_container(image);
    c["name"] = json!(name);
    c["portMappings"] = json!([]);
    for (k, v) in extra.as_object().expect("an object") {
        c[k] = v.clone();
    }
    c
}

/// Registers `containers` as a bridge task definition and runs it as a service of one task.
fn run_service(emu: &EmulatorProcess, service: &str, containers: Vec<Value>) {
    let (status, _, v) = emu.call(
        "RegisterTaskDefinition",
        &json!({"family": service, "networkMode": "bridge", "containerDefinitions": containers}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = emu.call(
        "CreateService",
        &json!({"cluster": "dev", "serviceName": service, "taskDefinition": service, "desiredCount": 1}),
    );
    assert_eq!(status, 200, "{v}");
}

/// The service's tasks with `desired` status, described.
async fn tasks(ecs: &Client, service: &str, desired: DesiredStatus) -> Vec<Task> {
    let arns = ecs
        .list_tasks()
        .cluster("dev")
        .service_name(service)
        .desired_status(desired)
        .send()
        .await
        .expect("list tasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster("dev")
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks")
        .tasks()
        .to_vec()
}

/// The Docker id of the task's container `name`.
fn runtime_id(task: &Task, name: &str) -> String {
    task.containers()
        .iter()
        .find(|c| c.name() == Some(name))
        .and_then(|c| c.runtime_id())
        .unwrap_or_else(|| panic!("no runtime id for {name} in {task:?}"))
        .to_owned()
}

/// Docker's `2026-01-02T03:04:05.123456789Z` as (the seconds as text, nanoseconds): the
/// fraction drops trailing zeros, so the text alone does not sort.
fn start_time(text: &str) -> (String, u64) {
    let (seconds, fraction) = text
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((text, "0"));
    let nanos = format!("{fraction:0<9}").parse().expect("nanoseconds");
    (seconds.to_owned(), nanos)
}

#[tokio::test(flavor = "multi_thread")]
async fn linked_containers_start_first_and_are_reached_by_their_alias() {
    let mut images = TestImages::new();
    let db_image = images.build("links-db", "from db\n");
    let web_image = images.build("links-web", "from web\n");
    let emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let service = unique("linked");
    // `web` comes first in the definition, yet needs `db` (a link) and `init` (dependsOn).
    run_service(
        &emu,
        &service,
        vec![
            container(
                "web",
                &web_image,
                json!({"links": ["db:backend"], "dependsOn": [{"containerName": "init", "condition": "START"}]}),
            ),
            container("db", &db_image, json!({})),
            container("init", &db_image, json!({"essential": false})),
        ],
    );
    let task = wait_for(Duration::from_secs(60), "the task RUNNING", || {
        let (ecs, service) = (ecs.clone(), service.clone());
        async move {
            tasks(&ecs, &service, DesiredStatus::Running)
                .await
                .into_iter()
                .find(|t| t.last_status() == Some("RUNNING"))
        }
    })
    .await;
    let (web, db, init) = (
        runtime_id(&task, "web"),
        runtime_id(&task, "db"),
        runtime_id(&task, "init"),
    );

    // Docker's link, by the agent-style container name, under the alias.
    let db_name = docker_ok(&["inspect", "--format", "{{.Name}}", &db]);
    let links = docker_ok(&["inspect", "--format", "{{json .HostConfig.Links}}", &web]);
    let links: Vec<String> = serde_json::from_str(&links).expect("Links is a JSON list");
    let web_name = docker_ok(&["inspect", "--format", "{{.Name}}", &web]);
    assert_eq!(links, [format!("{db_name}:{web_name}/backend")]);
    // ... so that `backend` answers from inside web, as redis does for auth-server.
    let out = docker(&[
        "exec",
        &web,
        "/busybox",
        "sh",
        "-c",
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /busybox nc -w 2 backend 8080",
    ]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("from db"), "{answer:?} {:?}", out.stderr);

    // Started after what it needs, by Docker's start times.
    let started = |id: &str| {
        start_time(&docker_ok(&[
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            id,
        ]))
    };
    assert!(started(&db) < started(&web), "db must start before web");
    assert!(started(&init) < started(&web), "init must start before web");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_to_a_container_the_task_lacks_fails_the_start() {
    let mut images = TestImages::new();
    let image = images.build("links-lonely", "alone\n");
    let emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let service = unique("unlinked");
    run_service(
        &emu,
        &service,
        vec![container("web", &image, json!({"links": ["redis"]}))],
    );
    let stopped = wait_for(Duration::from_secs(60), "a STOPPED task", || {
        let (ecs, service) = (ecs.clone(), service.clone());
        async move {
            tasks(&ecs, &service, DesiredStatus::Stopped)
                .await
                .into_iter()
                .next()
        }
    })
    .await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("TaskFailedToStart")
    );
    let reason = stopped.stopped_reason().unwrap_or_default();
    assert!(
        reason.contains("container web links to or depends on redis"),
        "{reason}"
    );
    assert!(emu.containers().is_empty(), "{:?}", emu.containers());
}
