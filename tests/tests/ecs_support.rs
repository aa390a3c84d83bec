//! The ECS test support (`shipkit_tests::ecs`) works end to end: an emulator of the test's
//! own, an image built here and pushed to the local ECR host, pulled back by the emulator
//! with moto's token, serving on the service's load-balancer port; a crashing image stops
//! its task with its exit code; injected throttling is retried by the SDK.
//!
//! Needs `scripts/services up` (Docker Engine, moto, the ECR registry) and
//! `cargo build -p ecs-emulator`.

use std::time::Duration;

use shipkit_tests::ecs::{
    CRASH_EXIT_CODE, EcsEmulator, TestImages, ecs_client, http_get, register_web, web_load_balancer,
};
use shipkit_tests::wait::wait_for;
use shipkit_tests::{services, unique};

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_image_serves_on_the_services_load_balancer_port() {
    services();
    let mut images = TestImages::new();
    let local = images.http(
        "shipkit-tests/ecs-support-web",
        &[("health", "ok\n"), ("index.html", "hello\n")],
    );
    let pushed = images.push_to_ecr(&local);
    // Only the registry has it now: the emulator must pull it, with the token from moto.
    images.remove_locally(&local);
    images.remove_locally(&pushed);

    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let service = unique("web");
    let task_definition = register_web(&client, &service, &pushed).await;
    client
        .create_service()
        .cluster("dev")
        .service_name(&service)
        .task_definition(&task_definition)
        .desired_count(1)
        .load_balancers(web_load_balancer(&service))
        .send()
        .await
        .expect("CreateService");

    let port = emulator.lb_port("dev", &service);
    let (first, last) = emulator.lb_ports();
    assert!((first..=last).contains(&port), "{port} in {first}-{last}");
    let body = wait_for(Duration::from_secs(60), "GET /health → 200", || async {
        match http_get(port, "/health") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    assert_eq!(body, "ok\n");
    assert_eq!(emulator.containers().len(), 1, "{}", emulator.log());

    let tasks = client
        .list_tasks()
        .cluster("dev")
        .service_name(&service)
        .send()
        .await
        .expect("ListTasks");
    let described = client
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(tasks.task_arns().to_vec()))
        .send()
        .await
        .expect("DescribeTasks");
    let container = &described.tasks()[0].containers()[0];
    let digest = pushed.split_once('@').expect("a digest reference").1;
    assert_eq!(container.image_digest(), Some(digest));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_image_stops_its_task_with_its_exit_code() {
    services();
    let mut images = TestImages::new();
    let local = images.crashing("shipkit-tests/ecs-support-crash");
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let service = unique("crash");
    let task_definition = register_web(&client, &service, &local).await;
    client
        .create_service()
        .cluster("dev")
        .service_name(&service)
        .task_definition(&task_definition)
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");

    let stopped = wait_for(Duration::from_secs(60), "a STOPPED task", || async {
        let arns = client
            .list_tasks()
            .cluster("dev")
            .service_name(&service)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
            .ok()?
            .task_arns()
            .to_vec();
        let tasks = client
            .describe_tasks()
            .cluster("dev")
            .set_tasks(Some(arns))
            .send()
            .await
            .ok()?;
        tasks
            .tasks()
            .iter()
            .find(|t| t.last_status() == Some("STOPPED"))
            .cloned()
    })
    .await;
    assert_eq!(
        stopped.stopped_reason(),
        Some("Essential container in task exited")
    );
    assert_eq!(stopped.containers()[0].exit_code(), Some(CRASH_EXIT_CODE));
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_throttling_is_retried_by_the_sdk() {
    let emulator = EcsEmulator::start(&["--throttle-every", "2"]);
    let client = ecs_client(&emulator.url()).await;
    for _ in 0..4 {
        client.list_clusters().send().await.expect("ListClusters");
    }
    emulator.set_faults(0, 0);
    assert!(
        emulator.log().contains("injected ThrottlingException"),
        "{}",
        emulator.log()
    );
}
