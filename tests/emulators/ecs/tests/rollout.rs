//! Services with real containers: rolling updates behind the target-group stand-in, crashing
//! tasks and the circuit breaker, images pulled from the ECR stand-in, and the AWS CLI as a
//! fidelity check. Needs `scripts/services up` (Docker Engine; ECR + moto for the pull test).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, DesiredStatus,
    LoadBalancer, Service,
};
use serde_json::json;
use shipkit_tests::docker::{Docker, docker};
use shipkit_tests::ecr::{ecr_host, ecr_login};
use shipkit_tests::unique;
use shipkit_tests::wait::wait_for;
use support::{EmulatorProcess, TestImages, http_get, httpd_container};

const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";

async fn register(emu: &EmulatorProcess, family: &str, container: serde_json::Value) -> String {
    let (status, _, v) = emu.call(
        "RegisterTaskDefinition",
        &json!({"family": family, "networkMode": "bridge", "containerDefinitions": [container]}),
    );
    assert_eq!(status, 200, "{v}");
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("arn")
        .to_owned()
}

async fn describe(ecs: &Client, service: &str) -> Service {
    let out = ecs
        .describe_services()
        .cluster("dev")
        .services(service)
        .send()
        .await
        .expect("describe services");
    out.services().first().cloned().expect("the service")
}

/// Waits until the service runs only `task_definition`, COMPLETED, all desired tasks running.
async fn wait_stable(ecs: &Client, service: &str, task_definition: &str, secs: u64) -> Service {
    wait_for(
        Duration::from_secs(secs),
        &format!("{service} stable on {task_definition}"),
        || async {
            let s = describe(ecs, service).await;
            let d = s.deployments();
            (d.len() == 1
                && d[0].task_definition() == Some(task_definition)
                && d[0].rollout_state() == Some(&DeploymentRolloutState::Completed)
                && s.running_count() == s.desired_count())
            .then_some(s)
        },
    )
    .await
}

fn events(s: &Service) -> Vec<String> {
    s.events()
        .iter()
        .filter_map(|e| e.message().map(str::to_owned))
        .collect()
}

async fn create_web_service(ecs: &Client, name: &str, td: &str, desired: i32, breaker: bool) {
    ecs.create_service()
        .cluster("dev")
        .service_name(name)
        .task_definition(td)
        .desired_count(desired)
        .launch_type(aws_sdk_ecs::types::LaunchType::Ec2)
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(TG)
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .maximum_percent(200)
                .minimum_healthy_percent(100)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(breaker)
                        .rollback(breaker)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create service");
}

/// Sends GETs to the target-group port until told to stop: every answer, in order.
fn poll_lb(
    port: u16,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Result<(u16, String), String>>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::SeqCst) && seen.len() < 2000 {
            seen.push(http_get(port, "/").map(|(s, b)| (s, b.trim().to_owned())));
            std::thread::sleep(Duration::from_millis(50));
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_keeps_serving_through_the_target_group() {
    let mut images = TestImages::new();
    let v1 = images.build("httpd", "v1");
    let v2 = images.build("httpd", "v2");
    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let td1 = register(&emu, "web", httpd_container(&v1)).await;
    // v2 takes 2 s to listen: docker-proxy accepts on its port at once, the target group must not.
    let mut slow = httpd_container(&v2);
    slow["entryPoint"] = json!(["/busybox", "sh", "-c"]);
    slow["command"] = json!(["sleep 2; exec /busybox httpd -f -p 8080 -h /www"]);
    let td2 = register(&emu, "web", slow).await;
    assert!(td2.ends_with("task-definition/web:2"), "{td2}");

    create_web_service(&ecs, "web", &td1, 2, false).await;
    let s = wait_stable(&ecs, "web", &td1, 60).await;
    let first_deployment = s.deployments()[0].id().expect("id").to_owned();
    assert!(
        first_deployment.starts_with("ecs-svc/") && first_deployment.len() == "ecs-svc/".len() + 19
    );
    let port = emu.lb_port("dev", "web");
    assert_eq!(emu.lb_port_text("dev", "web"), (200, port.to_string()));
    assert_eq!(emu.lb_port_text("dev", "nope").0, 404);
    assert_eq!(
        http_get(port, "/").expect("the target group answers"),
        (200, "v1".into())
    );

    // Roll to v2 while a client keeps asking through the target group.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll_lb(port, stop.clone());
    let updated = ecs
        .update_service()
        .cluster("dev")
        .service("web")
        .task_definition("web:2")
        .send()
        .await
        .expect("update");
    let svc = updated.service().expect("service");
    let deployments = svc.deployments();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0].status(), Some("PRIMARY"));
    assert_eq!(
        deployments[0].rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    assert_eq!(deployments[1].status(), Some("ACTIVE"));
    assert_eq!(deployments[1].id(), Some(first_deployment.as_str()));
    let new_deployment = deployments[0].id().expect("id").to_owned();
    let s = wait_stable(&ecs, "web", &td2, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = poller.join().expect("poller");

    let failures: Vec<_> = seen.iter().filter(|r| !matches!(r, Ok((200, _)))).collect();
    assert!(
        failures.is_empty(),
        "the target group failed during the rollout: {failures:?}"
    );
    let bodies: Vec<&str> = seen
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(_, b)| b.as_str())
        .collect();
    assert_eq!(bodies.first(), Some(&"v1"));
    assert_eq!(bodies.last(), Some(&"v2"));
    assert_eq!(
        bodies.iter().collect::<BTreeSet<_>>().len(),
        2,
        "{bodies:?}"
    );
    assert_eq!(s.deployments()[0].id(), Some(new_deployment.as_str()));

    // Old tasks were stopped only once new ones were running.
    let old = ecs
        .list_tasks()
        .cluster("dev")
        .started_by(&first_deployment)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .expect("list old");
    let new = ecs
        .list_tasks()
        .cluster("dev")
        .started_by(&new_deployment)
        .send()
        .await
        .expect("list new");
    assert_eq!((old.task_arns().len(), new.task_arns().len()), (2, 2));
    let old = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(old.task_arns().to_vec()))
        .send()
        .await
        .expect("old");
    let new = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(new.task_arns().to_vec()))
        .send()
        .await
        .expect("new");
    let first_new_start = new
        .tasks()
        .iter()
        .filter_map(|t| t.started_at())
        .map(|t| t.as_secs_f64())
        .fold(f64::MAX, f64::min);
    for t in old.tasks() {
        let stopping = t.stopping_at().expect("stoppingAt").as_secs_f64();
        assert!(
            stopping >= first_new_start,
            "an old task stopped before any new one ran"
        );
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("ServiceSchedulerInitiated")
        );
    }
    for t in new.tasks() {
        assert_eq!(t.last_status(), Some("RUNNING"));
        let binding = &t.containers()[0].network_bindings()[0];
        assert_eq!(binding.container_port(), Some(8080));
        assert_eq!(binding.bind_ip(), Some("127.0.0.1"));
        let host_port = binding.host_port().expect("host port") as u16;
        assert_eq!(
            http_get(host_port, "/").expect("the task itself"),
            (200, "v2".into())
        );
    }

    // Events read like ECS's, newest first.
    let ev = events(&s);
    assert_eq!(ev[0], "(service web) has reached a steady state.");
    assert!(
        ev.iter()
            .any(|e| e.starts_with("(service web) has started 2 tasks: (task ")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e.starts_with("(service web) has stopped ")
                && e.contains(" running tasks: (task ")),
        "{ev:?}"
    );
    assert!(ev.iter().any(
        |e| *e == format!("(service web) (deployment {new_deployment}) deployment completed.")
    ));

    // DeleteService removes the containers.
    let e = ecs
        .delete_service()
        .cluster("dev")
        .service("web")
        .send()
        .await
        .expect_err("scaled above 0");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&e),
        Some("InvalidParameterException")
    );
    let d = ecs
        .delete_service()
        .cluster("dev")
        .service("web")
        .force(true)
        .send()
        .await
        .expect("delete");
    assert_eq!(d.service().and_then(|s| s.status()), Some("DRAINING"));
    wait_for(Duration::from_secs(30), "the containers to go", || async {
        emu.containers().is_empty().then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(10),
        "the service to be INACTIVE",
        || async { (describe(&ecs, "web").await.status() == Some("INACTIVE")).then_some(()) },
    )
    .await;
    emu.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_tasks_stop_with_exit_codes_and_the_circuit_breaker_rolls_back() {
    let mut images = TestImages::new();
    let v1 = images.build("httpd", "v1");
    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let good = register(&emu, "crashy", httpd_container(&v1)).await;
    let mut crash = httpd_container(&v1);
    crash["command"] = json!(["/busybox", "sh", "-c", "exit 3"]);
    let bad = register(&emu, "crashy", crash).await;

    create_web_service(&ecs, "crashy", &good, 1, true).await;
    wait_stable(&ecs, "crashy", &good, 60).await;
    let port = emu.lb_port("dev", "crashy");

    let updated = ecs
        .update_service()
        .cluster("dev")
        .service("crashy")
        .task_definition(&bad)
        .send()
        .await
        .expect("update");
    let ours = updated.service().expect("service").deployments()[0]
        .id()
        .expect("id")
        .to_owned();

    // Our deployment fails (3 tasks, the minimum threshold) and ECS rolls back on its own.
    let saw_failed = Arc::new(AtomicBool::new(false));
    let s = wait_for(Duration::from_secs(90), "the rollback to complete", || {
        let ecs = ecs.clone();
        let ours = ours.clone();
        let good = good.clone();
        let saw = saw_failed.clone();
        async move {
            let s = describe(&ecs, "crashy").await;
            if s.deployments().iter().any(|d| {
                d.id() == Some(&ours) && d.rollout_state() == Some(&DeploymentRolloutState::Failed)
            }) {
                saw.store(true, Ordering::SeqCst);
            }
            let d = s.deployments();
            (d.len() == 1
                && d[0].id() != Some(&ours)
                && d[0].task_definition() == Some(good.as_str())
                && d[0].rollout_state() == Some(&DeploymentRolloutState::Completed))
            .then_some(s)
        }
    })
    .await;
    assert!(
        saw_failed.load(Ordering::SeqCst),
        "the deployment was never FAILED: {:?}",
        events(&s)
    );
    assert_eq!(
        http_get(port, "/").expect("old tasks kept serving"),
        (200, "v1".into())
    );
    let ev = events(&s);
    assert!(
        ev.contains(&format!(
            "(service crashy) (deployment {ours}) deployment failed: tasks failed to start."
        )),
        "{ev:?}"
    );

    // The stopped tasks of our deployment tell why.
    let stopped = ecs
        .list_tasks()
        .cluster("dev")
        .started_by(&ours)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .expect("list");
    assert!(stopped.task_arns().len() >= 3, "{:?}", stopped.task_arns());
    let tasks = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(stopped.task_arns().to_vec()))
        .send()
        .await
        .expect("describe");
    for t in tasks.tasks() {
        assert_eq!(
            t.stopped_reason(),
            Some("Essential container in task exited")
        );
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("EssentialContainerExited")
        );
        assert_eq!(t.task_definition_arn(), Some(bad.as_str()));
        wait_for(Duration::from_secs(10), "the task to be STOPPED", || {
            let ecs = ecs.clone();
            let arn = t.task_arn().expect("arn").to_owned();
            async move {
                let d = ecs
                    .describe_tasks()
                    .cluster("dev")
                    .tasks(arn)
                    .send()
                    .await
                    .ok()?;
                let t = d.tasks().first()?.clone();
                (t.last_status() == Some("STOPPED")).then_some(())
            }
        })
        .await;
        assert_eq!(t.containers()[0].exit_code(), Some(3));
    }
    ecs.delete_service()
        .cluster("dev")
        .service("crashy")
        .force(true)
        .send()
        .await
        .expect("delete");
    wait_for(Duration::from_secs(30), "the containers to go", || async {
        emu.containers().is_empty().then_some(())
    })
    .await;
    emu.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_and_scaling_are_not_deployments_and_sigterm_removes_every_container() {
    let mut images = TestImages::new();
    let v1 = images.build("httpd", "v1");
    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let td = register(&emu, "sig", httpd_container(&v1)).await;
    ecs.create_service()
        .cluster("dev")
        .service_name("sig")
        .task_definition(&td)
        .desired_count(2)
        .send()
        .await
        .expect("create");
    let s = wait_stable(&ecs, "sig", &td, 60).await;
    let deployment = s.deployments()[0].id().expect("id").to_owned();

    // A task stopped by hand is replaced by the same deployment; it is not a failure.
    let running = ecs
        .list_tasks()
        .cluster("dev")
        .service_name("sig")
        .send()
        .await
        .expect("list");
    let victim = running.task_arns()[0].clone();
    let stopped = ecs
        .stop_task()
        .cluster("dev")
        .task(&victim)
        .reason("testing")
        .send()
        .await
        .expect("stop");
    assert_eq!(
        stopped.task().and_then(|t| t.desired_status()),
        Some("STOPPED")
    );
    let s = wait_for(Duration::from_secs(60), "a replacement task", || async {
        let l = ecs
            .list_tasks()
            .cluster("dev")
            .service_name("sig")
            .send()
            .await
            .ok()?;
        let s = describe(&ecs, "sig").await;
        (l.task_arns().len() == 2 && !l.task_arns().contains(&victim) && s.running_count() == 2)
            .then_some(s)
    })
    .await;
    assert_eq!(s.deployments().len(), 1);
    assert_eq!(s.deployments()[0].id(), Some(deployment.as_str()));
    assert_eq!(s.deployments()[0].failed_tasks(), 0);
    let d = ecs
        .describe_tasks()
        .cluster("dev")
        .tasks(&victim)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.tasks()[0].stop_code().map(|c| c.as_str()),
        Some("UserInitiated")
    );
    assert_eq!(d.tasks()[0].stopped_reason(), Some("testing"));

    // Scaling changes the count of the same deployment.
    ecs.update_service()
        .cluster("dev")
        .service("sig")
        .desired_count(3)
        .send()
        .await
        .expect("scale");
    let s = wait_for(Duration::from_secs(60), "3 running", || async {
        let s = describe(&ecs, "sig").await;
        (s.running_count() == 3
            && s.events().first().and_then(|e| e.message())
                == Some("(service sig) has reached a steady state."))
        .then_some(s)
    })
    .await;
    assert_eq!(s.deployments().len(), 1);
    assert_eq!(s.deployments()[0].id(), Some(deployment.as_str()));
    assert_eq!(s.deployments()[0].desired_count(), 3);
    wait_for(Duration::from_secs(30), "3 containers", || async {
        (emu.containers().len() == 3).then_some(())
    })
    .await;

    let port = emu.port;
    emu.terminate();
    let out = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=shipkit.ecs-emulator.listen=127.0.0.1:{port}"),
    ]);
    assert!(
        out.stdout.is_empty(),
        "containers left: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The image lives only in the ECR stand-in: the emulator pulls it with a token from the ECR
/// API (moto), as the ECS agent does with the task execution role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pulled_from_ecr_with_a_token_from_the_ecr_api() {
    shipkit_tests::services();
    let host = ecr_host();
    let mut images = TestImages::new();
    let local = images.build("httpd", "from-ecr");
    let remote = format!("{host}/shipkit-ecs-emulator-test:{}", unique("t"));
    images.tag(&local, &remote);

    // Push with a token from the ECR API's GetAuthorizationToken, in a throwaway Docker config.
    let login = ecr_login();
    let config = tempfile::tempdir().expect("tempdir");
    let client = Docker::with_config(config.path());
    client.login(&host, &login.user, &login.password);
    client.ok(&["push", &remote]);
    images.untag(&remote);

    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let td = register(&emu, "pulled", httpd_container(&remote)).await;
    ecs.create_service()
        .cluster("dev")
        .service_name("pulled")
        .task_definition(&td)
        .desired_count(1)
        .send()
        .await
        .expect("create");
    wait_stable(&ecs, "pulled", &td, 90).await;
    let tasks = ecs
        .list_tasks()
        .cluster("dev")
        .service_name("pulled")
        .send()
        .await
        .expect("list");
    let d = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(tasks.task_arns().to_vec()))
        .send()
        .await
        .expect("describe");
    let c = &d.tasks()[0].containers()[0];
    assert!(
        c.image_digest().is_some_and(|d| d.starts_with("sha256:")),
        "{c:?}"
    );
    let host_port = c.network_bindings()[0].host_port().expect("port") as u16;
    assert_eq!(
        http_get(host_port, "/").expect("served"),
        (200, "from-ecr".into())
    );
    ecs.delete_service()
        .cluster("dev")
        .service("pulled")
        .force(true)
        .send()
        .await
        .expect("delete");
    wait_for(Duration::from_secs(30), "the containers to go", || async {
        emu.containers().is_empty().then_some(())
    })
    .await;
    emu.terminate();
    // The pulled image is ours to remove too.
    images.track(&remote);
}

/// Fidelity check: the AWS CLI (botocore's own ECS model and waiter) works against the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_registers_updates_and_waits_for_a_stable_service() {
    // scripts/services up installs it and names it in target/services.env (AWS_CLI, and
    // first on the PATH there).
    let aws = std::env::var_os("AWS_CLI")
        .map(std::path::PathBuf::from)
        .filter(|path| path.is_file())
        .or_else(|| which("aws"))
        .expect(
            "the AWS CLI is not installed: `scripts/services up` installs it \
             (then source target/services.env), or `pip install awscli`",
        );
    let mut images = TestImages::new();
    let v1 = images.build("httpd", "cli-v1");
    let v2 = images.build("httpd", "cli-v2");
    let mut emu = EmulatorProcess::start(&[]);
    let url = emu.url();
    let cli = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(&aws)
            .args([
                "--endpoint-url",
                &url,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("running aws");
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let containers = |image: &str| json!([httpd_container(image)]).to_string();
    let r = cli(&[
        "ecs",
        "register-task-definition",
        "--family",
        "cli",
        "--network-mode",
        "bridge",
        "--container-definitions",
        &containers(&v1),
    ]);
    assert_eq!(r["taskDefinition"]["revision"], 1);
    cli(&[
        "ecs",
        "create-service",
        "--cluster",
        "dev",
        "--service-name",
        "cli",
        "--task-definition",
        "cli",
        "--desired-count",
        "1",
    ]);
    cli(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "dev",
        "--services",
        "cli",
    ]);
    let r = cli(&[
        "ecs",
        "register-task-definition",
        "--family",
        "cli",
        "--network-mode",
        "bridge",
        "--container-definitions",
        &containers(&v2),
    ]);
    assert_eq!(r["taskDefinition"]["revision"], 2);
    let u = cli(&[
        "ecs",
        "update-service",
        "--cluster",
        "dev",
        "--service",
        "cli",
        "--task-definition",
        "cli:2",
    ]);
    assert_eq!(
        u["service"]["deployments"].as_array().map(Vec::len),
        Some(2)
    );
    cli(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "dev",
        "--services",
        "cli",
    ]);
    let d = cli(&[
        "ecs",
        "describe-services",
        "--cluster",
        "dev",
        "--services",
        "cli",
    ]);
    let deployments = d["services"][0]["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(deployments.len(), 1);
    assert!(
        deployments[0]["taskDefinition"]
            .as_str()
            .is_some_and(|t| t.ends_with("task-definition/cli:2"))
    );
    assert_eq!(deployments[0]["runningCount"], 1);
    cli(&[
        "ecs",
        "delete-service",
        "--cluster",
        "dev",
        "--service",
        "cli",
        "--force",
    ]);
    wait_for(Duration::from_secs(30), "the containers to go", || async {
        emu.containers().is_empty().then_some(())
    })
    .await;
    emu.terminate();
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Container health checks become Docker health checks: the old task stays until the new one
/// is HEALTHY; environment and entryPoint reach the container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_gate_the_rollout_and_env_and_entry_point_are_honoured() {
    let mut images = TestImages::new();
    let image = images.build("httpd", "unused");
    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let container = |greeting: &str, check: &str| {
        json!({
            "name": "web",
            "image": image,
            "entryPoint": ["/busybox", "sh", "-c"],
            "command": ["echo $GREETING > /www/index.html && exec /busybox httpd -f -p 8080 -h /www"],
            "environment": [{"name": "GREETING", "value": greeting}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "healthCheck": {"command": ["CMD", "/busybox", "wget", "-q", "-O", "/dev/null", check], "interval": 1, "timeout": 1, "retries": 2},
        })
    };
    let td1 = register(
        &emu,
        "checked",
        container("hello", "http://127.0.0.1:8080/"),
    )
    .await;
    let td2 = register(
        &emu,
        "checked",
        container("never", "http://127.0.0.1:8080/missing"),
    )
    .await;
    create_web_service(&ecs, "checked", &td1, 1, true).await;
    let s = wait_stable(&ecs, "checked", &td1, 60).await;
    let first = s.deployments()[0].id().expect("id").to_owned();
    let port = emu.lb_port("dev", "checked");
    assert_eq!(http_get(port, "/").expect("served"), (200, "hello".into()));
    let tasks = ecs
        .list_tasks()
        .cluster("dev")
        .service_name("checked")
        .send()
        .await
        .expect("list");
    let d = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(tasks.task_arns().to_vec()))
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.tasks()[0].health_status().map(|h| h.as_str()),
        Some("HEALTHY")
    );

    // v2 runs but never passes its health check: it is replaced as unhealthy, the breaker
    // trips, and the healthy v1 task served all along.
    ecs.update_service()
        .cluster("dev")
        .service("checked")
        .task_definition(&td2)
        .send()
        .await
        .expect("update");
    let s = wait_for(Duration::from_secs(120), "the rollback", || async {
        let s = describe(&ecs, "checked").await;
        let d = s.deployments();
        (d.len() == 1
            && d[0].task_definition() == Some(td1.as_str())
            && d[0].id() != Some(first.as_str())
            && d[0].rollout_state() == Some(&DeploymentRolloutState::Completed))
        .then_some(s)
    })
    .await;
    assert_eq!(
        http_get(port, "/").expect("still served"),
        (200, "hello".into())
    );
    let ev = events(&s);
    assert!(
        ev.iter()
            .any(|e| e.contains("deployment failed: tasks failed to start.")),
        "{ev:?}"
    );
    let failed = ecs
        .list_tasks()
        .cluster("dev")
        .family("checked")
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .expect("list");
    let d = ecs
        .describe_tasks()
        .cluster("dev")
        .set_tasks(Some(failed.task_arns().to_vec()))
        .send()
        .await
        .expect("describe");
    let unhealthy = d
        .tasks()
        .iter()
        .filter(|t| t.stopped_reason() == Some("Task failed container health checks"))
        .count();
    assert!(
        unhealthy >= 3,
        "{:?}",
        d.tasks()
            .iter()
            .map(|t| t.stopped_reason())
            .collect::<Vec<_>>()
    );
    ecs.delete_service()
        .cluster("dev")
        .service("checked")
        .force(true)
        .send()
        .await
        .expect("delete");
    wait_for(Duration::from_secs(30), "the containers to go", || async {
        emu.containers().is_empty().then_some(())
    })
    .await;
    emu.terminate();
}

/// An image that cannot be pulled: the task stops with CannotPullContainerError.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_stops_the_task_with_the_reason() {
    let mut emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;
    let missing = format!(
        "localhost:5000/shipkit-ecs-emulator-test/missing:{}",
        unique("t")
    );
    let td = register(&emu, "nopull", httpd_container(&missing)).await;
    let s = ecs
        .create_service()
        .cluster("dev")
        .service_name("nopull")
        .task_definition(&td)
        .desired_count(1)
        .send()
        .await
        .expect("create");
    let deployment = s.service().expect("service").deployments()[0]
        .id()
        .expect("id")
        .to_owned();
    let task = wait_for(Duration::from_secs(60), "a stopped task", || async {
        let l = ecs
            .list_tasks()
            .cluster("dev")
            .started_by(&deployment)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .ok()?;
        let arn = l.task_arns().first()?.clone();
        let d = ecs
            .describe_tasks()
            .cluster("dev")
            .tasks(arn)
            .send()
            .await
            .ok()?;
        d.tasks()
            .first()
            .filter(|t| t.last_status() == Some("STOPPED"))
            .cloned()
    })
    .await;
    assert!(
        task.stopped_reason()
            .is_some_and(|r| r.starts_with("CannotPullContainerError:")),
        "{:?}",
        task.stopped_reason()
    );
    assert_eq!(
        task.stop_code().map(|c| c.as_str()),
        Some("TaskFailedToStart")
    );
    let services = ecs
        .list_services()
        .cluster("dev")
        .send()
        .await
        .expect("list services");
    assert_eq!(
        services.service_arns(),
        ["arn:aws:ecs:us-east-1:123456789012:service/dev/nopull"]
    );
    ecs.delete_service()
        .cluster("dev")
        .service("nopull")
        .force(true)
        .send()
        .await
        .expect("delete");
    emu.terminate();
}
