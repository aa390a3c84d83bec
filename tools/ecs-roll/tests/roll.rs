//! ecs-roll against an ECS emulator of each test's own, which runs the tasks as real
//! containers on the local Docker Engine, pulling images from the local ECR host; and against
//! moto for the task-definition preservation check.
//!
//! Needs `scripts/services up` (Docker Engine, moto, the ECR registry) and the workspace
//! binaries (`cargo test --workspace` builds them).

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    ContainerDefinition, EphemeralStorage, HealthCheck, LogConfiguration, LogDriver, MountPoint,
    NetworkMode, PortMapping, RuntimePlatform, Secret, Tag, TaskDefinition, TaskDefinitionField,
    TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, Ulimit, UlimitName,
    Volume,
};
use serde_json::{Value, json};
use shipkit_tests::ecs::{
    Breaker, CRASH_EXIT_CODE, EcsEmulator, TestImages, create_guarded_web_service,
    create_web_service, ecs_client, http_get, pushed_envelope as pushed,
};
use shipkit_tests::wait::wait_for;
use shipkit_tests::{Cmd, Output};
use shipkit_tests::{services, unique};
use std::time::Duration;

const CLUSTER: &str = "dev";

/// ecs-roll pointed at `endpoint`, polling every second.
fn ecs_roll(endpoint: &str) -> Cmd {
    Cmd::tool("ecs-roll")
        .env("AWS_ENDPOINT_URL_ECS", endpoint)
        .env("ECS_ROLL_POLL", "1s")
        .env("ECS_ROLL_STABLE_FOR", "2s")
        .args(["--cluster", CLUSTER])
}

fn deployment(out: &Output) -> Value {
    out.json()["deployments"][0].clone()
}

/// Registers `family` (one container `web` running `image` on 8080) and creates service
/// `name` with `desired` tasks behind a load balancer; returns the task definition ARN.
async fn create_service(
    client: &Client,
    name: &str,
    image: &str,
    desired: i32,
    breaker: Breaker,
) -> String {
    create_guarded_web_service(client, CLUSTER, name, image, desired, true, breaker).await
}

/// An emulator of the test's own with a service of one task behind a load balancer that
/// serves `/auth` = "v1" from an image pushed to the local ECR host.
struct ServingV1 {
    emulator: EcsEmulator,
    client: Client,
    images: TestImages,
    service: String,
    /// The service's task definition ARN.
    first: String,
}

async fn serving_v1(breaker: Breaker) -> ServingV1 {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let good = images.http("shipkit-tests/roll-web", &[("auth", "v1\n")]);
    let good = images.push_to_ecr(&good);
    let service = unique("web");
    let first = create_service(&client, &service, &good, 1, breaker).await;
    serving(&emulator, &service, "/auth", "v1").await;
    ServingV1 {
        emulator,
        client,
        images,
        service,
        first,
    }
}

/// An image of the same repository that runs but never answers HTTP: never a healthy
/// target. Returns its digest reference in the local ECR host.
fn deaf_image(images: &mut TestImages) -> String {
    let deaf = TestImages::ecr_reference("shipkit-tests/roll-web");
    images.track(&deaf);
    shipkit_tests::ecs::build_image(
        &deaf,
        "FROM scratch\nCOPY busybox /busybox\nENTRYPOINT [\"/busybox\", \"sleep\", \"600\"]\n",
        &[],
    );
    images.push_to_ecr(&deaf)
}

/// Waits until the service's load-balancer port answers `path` with 200 and `body`.
async fn serving(emulator: &EcsEmulator, service: &str, path: &str, body: &str) {
    let port = emulator.lb_port(CLUSTER, service);
    wait_for(
        Duration::from_secs(90),
        &format!("{service} to serve {body:?} on {path}"),
        || async move {
            http_get(port, path)
                .ok()
                .filter(|(status, text)| *status == 200 && text.contains(body))
        },
    )
    .await;
}

/// The revisions registered for `family`.
async fn revisions(client: &Client, family: &str) -> usize {
    client
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("ListTaskDefinitions")
        .task_definition_arns()
        .len()
}

async fn service_task_definition(client: &Client, service: &str) -> String {
    client
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await
        .expect("DescribeServices")
        .services()[0]
        .task_definition()
        .expect("a task definition")
        .to_owned()
}

/// Runs a blocking tool invocation without stalling the test's runtime.
async fn run(cmd: Cmd) -> Output {
    tokio::task::spawn_blocking(move || cmd.run())
        .await
        .expect("the tool ran")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dev_pipeline_rolls_out_a_service_that_answers_and_a_rerun_changes_nothing() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let name = unique("auth");
    let context = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", context.path().join("busybox")).unwrap();
    std::fs::create_dir(context.path().join("www")).unwrap();
    std::fs::write(context.path().join("www/auth"), "authorised\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nEXPOSE 8080\n\
         ENTRYPOINT [\"/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    let mut images = TestImages::new();
    images.track(&format!("{name}:v1"));
    let files = tempfile::tempdir().unwrap();
    let ecr = shipkit_tests::ecr::ecr_host();
    let td_file = files.path().join("task.json");
    std::fs::write(
        &td_file,
        json!({
            "family": name, "networkMode": "bridge", "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "auth", "image": format!("{ecr}/{name}:latest"),
                "memory": 64, "essential": true,
                "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                "environment": [{"name": "MODE", "value": "dev"}]}],
            "tags": [{"key": "team", "value": "auth"}]
        })
        .to_string(),
    )
    .unwrap();
    let service_file = files.path().join("service.json");
    std::fs::write(
        &service_file,
        json!({
            "serviceName": name, "cluster": CLUSTER, "taskDefinition": name, "desiredCount": 1,
            "launchType": "EC2",
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
            "loadBalancers": [{"targetGroupArn": format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/1"),
                               "containerName": "auth", "containerPort": 8080}]
        })
        .to_string(),
    )
    .unwrap();

    let built = Cmd::tool("img-build")
        .args(["--context", context.path().to_str().unwrap()])
        .args(["--name", &name, "--tag", "v1"])
        .run();
    built.assert_code(0);
    let pushed = Cmd::tool("img-push")
        .args(["--ecr", "--create-repository"])
        .stdin(built.stdout.clone())
        .run();
    pushed.assert_code(0);
    let reference = pushed.json()["images"][0]["pushed"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    images.track(&reference);
    let roll = ecs_roll(&emulator.url())
        .args(["--service", &name])
        .args(["--task-definition-file", td_file.to_str().unwrap()])
        .args(["--service-definition", service_file.to_str().unwrap()])
        .args(["--endpoint", &format!("{name}=http://example.invalid/auth")])
        .stdin(pushed.stdout.clone());
    let out = run(roll.clone()).await;
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "completed", "{d}");
    assert_eq!(d["platform"], "ecs");
    assert_eq!(d["images"], json!([reference]));
    assert_eq!(d["endpoints"], json!(["http://example.invalid/auth"]));
    assert!(d["deployment_id"].as_str().unwrap().starts_with("ecs-svc/"));
    assert_eq!(d["task_definition"], d["live_task_definition"]);
    serving(&emulator, &name, "/auth", "authorised").await;
    // What runs is the pushed digest, with the file's other settings and tags.
    let (td, tags) = {
        let out = client
            .describe_task_definition()
            .task_definition(d["task_definition"].as_str().unwrap())
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        (out.task_definition.unwrap(), out.tags.unwrap_or_default())
    };
    let container = &td.container_definitions()[0];
    assert_eq!(container.image(), Some(reference.as_str()));
    assert_eq!(container.environment()[0].value(), Some("dev"));
    assert_eq!(tags, vec![Tag::builder().key("team").value("auth").build()]);

    // The same pipeline again: nothing registered, nothing deployed.
    let again = run(roll).await;
    again.assert_code(0);
    let d2 = deployment(&again);
    assert_eq!(d2["outcome"], "unchanged", "{d2}");
    assert_eq!(d2["task_definition"], d["task_definition"]);
    assert!(again.stderr.contains("unchanged"), "{}", again.stderr);
    assert_eq!(revisions(&client, &name).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_image_fails_fast_and_is_rolled_back_while_the_old_tasks_serve() {
    let ServingV1 {
        emulator,
        client,
        mut images,
        service,
        first,
    } = serving_v1(Breaker::Off).await;
    let bad = images.crashing("shipkit-tests/roll-web");
    let bad = images.push_to_ecr(&bad);

    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service])
        .stdin_json(&pushed(&[&bad])))
    .await;
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "rolled_back", "{d}");
    assert_eq!(d["previous_task_definition"], json!(first));
    assert_eq!(d["live_task_definition"], json!(first));
    let stopped = d["failure"]["stopped_tasks"].as_array().unwrap();
    assert!(stopped.len() >= 3, "{d}");
    assert_eq!(
        stopped[0]["containers"][0]["exit_code"],
        json!(CRASH_EXIT_CODE)
    );
    assert!(
        out.stderr.contains(&format!("exit {CRASH_EXIT_CODE}"))
            && out.stderr.contains("Essential container in task exited"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json()["failed"]["tool"], "ecs-roll");
    // The old task never stopped serving, and the service is back on the old revision.
    let port = emulator.lb_port(CLUSTER, &service);
    assert_eq!(http_get(port, "/auth").unwrap(), (200, "v1\n".to_owned()));
    assert_eq!(service_task_definition(&client, &service).await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_circuit_breakers_rollback_is_recognised() {
    let ServingV1 {
        emulator,
        mut images,
        service,
        first,
        ..
    } = serving_v1(Breaker::Rollback).await;
    let bad = images.crashing("shipkit-tests/roll-web");
    let bad = images.push_to_ecr(&bad);

    // No fail-fast: ECS's circuit breaker decides.
    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service, "--max-task-failures", "0"])
        .stdin_json(&pushed(&[&bad])))
    .await;
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "rolled_back_by_ecs", "{d}");
    assert_eq!(d["live_task_definition"], json!(first));
    assert!(d.get("rollback_deployment_id").is_none(), "{d}");
    assert!(
        out.stderr.contains("ECS rolled the deployment back"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_services_roll_in_parallel_through_throttling() {
    services();
    // Every third ECS call is throttled; the SDK's retries absorb it.
    let emulator = EcsEmulator::start(&["--throttle-every", "3"]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let api_v1 = images.http("shipkit-tests/roll-api", &[("health", "api v1\n")]);
    let api_v1 = images.push_to_ecr(&api_v1);
    let api_v2 = images.http("shipkit-tests/roll-api", &[("health", "api v2\n")]);
    let api_v2 = images.push_to_ecr(&api_v2);
    let auth_v1 = images.http("shipkit-tests/roll-auth", &[("auth", "auth v1\n")]);
    let auth_v1 = images.push_to_ecr(&auth_v1);
    let auth_v2 = images.http("shipkit-tests/roll-auth", &[("auth", "auth v2\n")]);
    let auth_v2 = images.push_to_ecr(&auth_v2);
    let (api, auth) = (unique("api"), unique("auth"));
    create_service(&client, &api, &api_v1, 1, Breaker::Off).await;
    create_service(&client, &auth, &auth_v1, 1, Breaker::Off).await;
    serving(&emulator, &api, "/health", "api v1").await;
    serving(&emulator, &auth, "/auth", "auth v1").await;

    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &api, "--service", &auth])
        .stdin_json(&pushed(&[&api_v2, &auth_v2])))
    .await;
    out.assert_code(0);
    let deployments = out.json()["deployments"].as_array().unwrap().clone();
    assert_eq!(deployments.len(), 2);
    for (d, (service, image)) in deployments.iter().zip([(&api, &api_v2), (&auth, &auth_v2)]) {
        assert_eq!(d["service"], json!(service));
        assert_eq!(d["outcome"], "completed", "{d}");
        assert_eq!(d["images"], json!([image]));
    }
    serving(&emulator, &api, "/health", "api v2").await;
    serving(&emulator, &auth, "/auth", "auth v2").await;
    assert!(
        emulator.log().contains("ThrottlingException") || emulator.log().contains("throttl"),
        "the emulator throttled nothing:\n{}",
        emulator.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_that_never_becomes_healthy_times_out_with_124_and_is_rolled_back() {
    let ServingV1 {
        emulator,
        client,
        mut images,
        service,
        first,
    } = serving_v1(Breaker::Off).await;
    let deaf = deaf_image(&mut images);

    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service, "--timeout", "5s"])
        .stdin_json(&pushed(&[&deaf])))
    .await;
    out.assert_code(124);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "rolled_back", "{d}");
    assert_eq!(d["live_task_definition"], json!(first));
    assert!(
        d["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("not rolled out after 5s"),
        "{d}"
    );
    assert_eq!(service_task_definition(&client, &service).await, first);
    let port = emulator.lb_port(CLUSTER, &service);
    assert_eq!(http_get(port, "/auth").unwrap().0, 200);
}

/// A task definition using every kind of field a careless copy loses.
fn rich_task_definition(family: &str, image: &str) -> TaskDefinition {
    TaskDefinition::builder()
        .family(family)
        .network_mode(NetworkMode::Bridge)
        .task_role_arn("arn:aws:iam::123456789012:role/app")
        .execution_role_arn("arn:aws:iam::123456789012:role/ecsTaskExecution")
        .volumes(
            Volume::builder()
                .name("data")
                .host(
                    aws_sdk_ecs::types::HostVolumeProperties::builder()
                        .source_path("/srv/data")
                        .build(),
                )
                .build(),
        )
        .placement_constraints(
            TaskDefinitionPlacementConstraint::builder()
                .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                .expression("attribute:ecs.instance-type =~ t3.*")
                .build(),
        )
        .runtime_platform(
            RuntimePlatform::builder()
                .operating_system_family(aws_sdk_ecs::types::OsFamily::Linux)
                .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::X8664)
                .build(),
        )
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(40).build())
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(image)
                .essential(true)
                .memory(128)
                .port_mappings(
                    PortMapping::builder()
                        .container_port(8080)
                        .host_port(0)
                        .build(),
                )
                .secrets(
                    Secret::builder()
                        .name("DB_PASSWORD")
                        .value_from("arn:aws:ssm:us-east-1:123456789012:parameter/db")
                        .build()
                        .unwrap(),
                )
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", "/ecs/app")
                        .options("awslogs-region", "us-east-1")
                        .build()
                        .unwrap(),
                )
                .health_check(
                    HealthCheck::builder()
                        .command("CMD-SHELL")
                        .command("wget -q -O- http://127.0.0.1:8080/health")
                        .interval(10)
                        .retries(3)
                        .build()
                        .unwrap(),
                )
                .ulimits(
                    Ulimit::builder()
                        .name(UlimitName::Nofile)
                        .soft_limit(1024)
                        .hard_limit(4096)
                        .build()
                        .unwrap(),
                )
                .mount_points(
                    MountPoint::builder()
                        .source_volume("data")
                        .container_path("/data")
                        .read_only(true)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// Registers the rich task definition with tags through `client`, creates a service with no
/// tasks, rolls it with `--no-wait` and checks that the new revision equals the old one but
/// for the image.
async fn rich_task_definition_survives_a_roll(endpoint: &str, client: &Client) {
    let family = unique("rich");
    let old_image = format!("{}/{family}:old", shipkit_tests::ecr::ecr_host());
    let new_image = format!(
        "{}/{family}@sha256:{}",
        shipkit_tests::ecr::ecr_host(),
        "a".repeat(64)
    );
    let td = rich_task_definition(&family, &old_image);
    let tags = vec![
        Tag::builder().key("team").value("platform").build(),
        Tag::builder().key("cost-centre").value("42").build(),
    ];
    let registered = ecs_roll::taskdef::registration(client, &td, &tags)
        .send()
        .await
        .expect("RegisterTaskDefinition")
        .task_definition
        .unwrap();
    let arn = registered.task_definition_arn().unwrap().to_owned();
    client
        .create_service()
        .cluster(CLUSTER)
        .service_name(&family)
        .task_definition(&arn)
        .desired_count(0)
        .send()
        .await
        .expect("CreateService");

    let out = run(ecs_roll(endpoint)
        .args(["--service", &family, "--no-wait"])
        .stdin_json(&pushed(&[&new_image])))
    .await;
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "started", "{d}");
    let described = client
        .describe_task_definition()
        .task_definition(d["task_definition"].as_str().unwrap())
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let mut expected = registered.clone();
    expected.container_definitions.as_mut().unwrap()[0].image = Some(new_image.clone());
    let after = described.task_definition.unwrap();
    assert_ne!(after.task_definition_arn(), Some(arn.as_str()));
    let shown = ecs_roll::taskdef::diff((&expected, &[]), (&after, &[])).await;
    assert_eq!(
        ecs_roll::taskdef::normalized(&after),
        ecs_roll::taskdef::normalized(&expected),
        "{shown}"
    );
    let mut got_tags = described.tags.unwrap_or_default();
    got_tags.sort_by(|a, b| a.key.cmp(&b.key));
    let mut want_tags = tags;
    want_tags.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got_tags, want_tags);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_task_definition_field_survives_a_roll_on_the_emulator() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    rich_task_definition_survives_a_roll(&emulator.url(), &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_task_definition_field_survives_a_roll_on_moto() {
    let env = services();
    let moto = env
        .get("AWS_ENDPOINT_URL_ECR")
        .expect("moto's URL in target/services.env")
        .clone();
    let client = ecs_client(&moto).await;
    client
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("CreateCluster on moto");
    rich_task_definition_survives_a_roll(&moto, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_the_change_and_registers_nothing() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let service = unique("web");
    let ecr = shipkit_tests::ecr::ecr_host();
    let old = format!("{ecr}/{service}:old");
    let new = format!("{ecr}/{service}@sha256:{}", "b".repeat(64));
    let first = create_service(&client, &service, &old, 0, Breaker::Off).await;

    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service, "--dry-run"])
        .stdin_json(&pushed(&[&new])))
    .await;
    out.assert_code(0);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "planned");
    assert_eq!(d["dry_run"], true);
    assert!(d["diff"].as_str().unwrap().contains(&new), "{d}");
    assert!(
        out.stderr.contains("would deploy") && out.stderr.contains(&new),
        "{}",
        out.stderr
    );
    assert_eq!(revisions(&client, &service).await, 1);
    assert_eq!(service_task_definition(&client, &service).await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_anything_changes() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let service = unique("web");
    let ecr = shipkit_tests::ecr::ecr_host();
    let first = create_service(
        &client,
        &service,
        &format!("{ecr}/{service}:old"),
        0,
        Breaker::Off,
    )
    .await;
    let other = format!("{ecr}/something-else@sha256:{}", "c".repeat(64));
    let ours = format!("{ecr}/{service}@sha256:{}", "d".repeat(64));
    let missing = unique("missing");

    // An image that no container runs: the containers and the offer are listed.
    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service])
        .stdin_json(&pushed(&[&other])))
    .await;
    out.assert_usage_error("no container of service");
    assert!(
        out.stderr.contains(&format!("web ({ecr}/{service})")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{ecr}/something-else")),
        "{}",
        out.stderr
    );

    // A container that does not exist.
    run(ecs_roll(&emulator.url()).args(["--service", &service, "--container", "ghost=busybox:1"]))
        .await
        .assert_usage_error("has no container ghost");

    // One good service and one that does not exist: neither is touched.
    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service, "--service", &missing])
        .stdin_json(&pushed(&[&ours])))
    .await;
    out.assert_code(1);
    assert!(
        out.stderr.contains("--service-definition"),
        "{}",
        out.stderr
    );

    // Malformed flags and files.
    run(ecs_roll(&emulator.url()).args(["--service", &service, "--timeout", "soon"]))
        .await
        .assert_usage_error("invalid duration");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "{\"family\": \"x\",").unwrap();
    run(ecs_roll(&emulator.url()).args([
        "--service",
        &service,
        "--task-definition-file",
        file.path().to_str().unwrap(),
    ]))
    .await
    .assert_usage_error("line 1 column");
    run(ecs_roll(&emulator.url())
        .args(["--service", &service])
        .stdin("{not json"))
    .await
    .assert_code(2);
    // No region anywhere.
    let home = tempfile::tempdir().unwrap();
    run(ecs_roll(&emulator.url())
        .args(["--service", &service])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("HOME", home.path().to_str().unwrap())
        .env(
            "AWS_CONFIG_FILE",
            home.path().join("none").to_str().unwrap(),
        )
        .stdin_json(&pushed(&[&ours])))
    .await
    .assert_usage_error("no AWS region");

    assert_eq!(revisions(&client, &service).await, 1);
    assert_eq!(service_task_definition(&client, &service).await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_upstream_step_is_never_deployed() {
    // No emulator at all: nothing may be called.
    let upstream = json!({"schema": "shipkit/v1", "images": [],
        "failed": {"tool": "img-push", "error": "registry down", "exit_code": 1}});
    let out = run(ecs_roll("http://127.0.0.1:1")
        .args(["--service", "api"])
        .stdin_json(&upstream))
    .await;
    out.assert_code(3);
    assert_eq!(out.json(), upstream);
    assert!(
        out.stderr.contains("upstream step img-push failed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_actions_the_step_summary_gets_a_table_and_the_step_outputs_are_set() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let service = unique("web");
    let image = format!("{}/{service}:v1", shipkit_tests::ecr::ecr_host());
    let first = create_service(&client, &service, &image, 0, Breaker::Off).await;
    // Unchanged only once its first deployment is over: one still in progress is followed.
    wait_for(
        Duration::from_secs(30),
        "the first deployment to complete",
        || {
            let (client, service) = (client.clone(), service.clone());
            async move {
                let described = client
                    .describe_services()
                    .cluster(CLUSTER)
                    .services(&service)
                    .send()
                    .await
                    .ok()?;
                let deployments = described.services().first()?.deployments();
                deployments
                    .iter()
                    .all(|d| d.rollout_state().map(|s| s.as_str()) == Some("COMPLETED"))
                    .then_some(())
            }
        },
    )
    .await;
    let summary = tempfile::NamedTempFile::new().unwrap();
    let outputs = tempfile::NamedTempFile::new().unwrap();

    let out = run(ecs_roll(&emulator.url())
        .args([
            "--service",
            &service,
            "--container",
            &format!("web={image}"),
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path().to_str().unwrap())
        .env("GITHUB_OUTPUT", outputs.path().to_str().unwrap()))
    .await;
    out.assert_code(0);
    assert_eq!(deployment(&out)["outcome"], "unchanged");
    let markdown = std::fs::read_to_string(summary.path()).unwrap();
    let revision = first.rsplit('/').next().unwrap();
    assert!(
        markdown.contains(&format!("| {CLUSTER}/{service} | unchanged | {revision} |")),
        "{markdown}"
    );
    let outputs = std::fs::read_to_string(outputs.path()).unwrap();
    assert!(outputs.contains("outcome=unchanged"), "{outputs}");
    assert!(
        outputs.contains(&format!("task_definition={first}")),
        "{outputs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_writes_what_is_known_and_exits_130() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let good = images.http("shipkit-tests/roll-web", &[("auth", "v1\n")]);
    let good = images.push_to_ecr(&good);
    let service = unique("web");
    create_service(&client, &service, &good, 0, Breaker::Off).await;
    // A new desired count of 1 with an image that never becomes a healthy target keeps the
    // deployment in progress for as long as we like.
    let deaf = deaf_image(&mut images);

    let mut child = Command::new(shipkit_tests::workspace_bin("ecs-roll"))
        .args([
            "--cluster",
            CLUSTER,
            "--service",
            &service,
            "--desired-count",
            "1",
        ])
        .env("AWS_ENDPOINT_URL_ECS", emulator.url())
        .env("ECS_ROLL_POLL", "1s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(pushed(&[&deaf]).to_string().as_bytes())
            .unwrap();
    }
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("following deployment") {
            break;
        }
    }
    assert!(seen.contains("following deployment"), "{seen}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    let envelope: Value = serde_json::from_str(&stdout).unwrap();
    let d = &envelope["deployments"][0];
    assert_eq!(d["outcome"], "in_progress", "{envelope}");
    assert!(
        d["deployment_id"].as_str().unwrap().starts_with("ecs-svc/"),
        "{envelope}"
    );
    assert!(
        d["task_definition"].as_str().unwrap().ends_with(":2"),
        "{envelope}"
    );
    assert_eq!(envelope["failed"]["exit_code"], 130);
}

#[tokio::test(flavor = "multi_thread")]
async fn crashing_tasks_without_a_load_balancer_are_never_reported_completed() {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let good = images.http("shipkit-tests/roll-web", &[("health", "v1\n")]);
    let good = images.push_to_ecr(&good);
    let bad = images.crashing("shipkit-tests/roll-web");
    let bad = images.push_to_ecr(&bad);
    let service = unique("web");
    // Nothing but the tasks' own state tells whether they serve: the emulator may catch the
    // crashing tasks all RUNNING at one tick and mark the rollout COMPLETED.
    let first = create_web_service(&client, CLUSTER, &service, &good, 2, false).await;
    wait_for(Duration::from_secs(60), "two running tasks", || {
        let client = client.clone();
        let service = service.clone();
        async move {
            let described = client
                .describe_services()
                .cluster(CLUSTER)
                .services(&service)
                .send()
                .await
                .ok()?;
            (described.services()[0].running_count() == 2).then_some(())
        }
    })
    .await;

    let out = run(ecs_roll(&emulator.url())
        .args(["--service", &service])
        .stdin_json(&pushed(&[&bad])))
    .await;
    out.assert_code(1);
    let d = deployment(&out);
    assert_eq!(d["outcome"], "rolled_back", "{d}");
    assert_eq!(d["live_task_definition"], json!(first));
}
