//! The API surface through aws-sdk-ecs and raw JSON 1.1: error shapes, task definitions kept
//! field for field, fault injection. Each test runs its own emulator (needs the Docker Engine:
//! `scripts/services up docker`).

mod support;

use std::time::{Duration, Instant};

use aws_sdk_ecs::error::ProvideErrorMetadata;
use serde_json::{Value, json};
use support::{EmulatorProcess, raw_call};

#[test]
fn an_unknown_operation_gets_the_real_error_shape() {
    let emu = EmulatorProcess::start(&[]);
    let (status, error_type, body) = emu.call("ListContainerInstances", &json!({}));
    assert_eq!(status, 400);
    assert_eq!(error_type.as_deref(), Some("UnknownOperationException"));
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ListContainerInstances")),
        "{body}"
    );

    let (status, error_type, _) = raw_call(emu.port, "POST", "/", None, "{}");
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("UnknownOperationException"))
    );
}

#[tokio::test]
async fn missing_resources_get_the_ecs_error_types() {
    let emu = EmulatorProcess::start(&[]);
    let ecs = emu.client().await;

    let e = ecs
        .describe_services()
        .cluster("nope")
        .services("api")
        .send()
        .await
        .expect_err("no cluster");
    assert_eq!(e.code(), Some("ClusterNotFoundException"), "{e:?}");

    let e = ecs
        .update_service()
        .cluster("dev")
        .service("nope")
        .desired_count(1)
        .send()
        .await
        .expect_err("no service");
    assert_eq!(e.code(), Some("ServiceNotFoundException"), "{e:?}");

    let e = ecs
        .describe_task_definition()
        .task_definition("nope:1")
        .send()
        .await
        .expect_err("no td");
    assert_eq!(e.code(), Some("ClientException"), "{e:?}");
    assert!(e.into_service_error().is_client_exception());

    let e = ecs
        .create_service()
        .cluster("dev")
        .service_name("api")
        .task_definition("nope")
        .desired_count(1)
        .send()
        .await;
    assert_eq!(
        e.expect_err("no td").code(),
        Some("InvalidParameterException")
    );

    // DescribeServices reports what it cannot find as failures, like ECS.
    let out = ecs
        .describe_services()
        .cluster("dev")
        .services("ghost")
        .send()
        .await
        .expect("describe");
    assert!(out.services().is_empty());
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));
    assert_eq!(
        out.failures()[0].arn(),
        Some("arn:aws:ecs:us-east-1:123456789012:service/dev/ghost")
    );

    // Clusters: the defaults exist; CreateCluster is idempotent.
    let c = ecs
        .create_cluster()
        .cluster_name("extra")
        .send()
        .await
        .expect("create cluster");
    assert_eq!(
        c.cluster().and_then(|c| c.cluster_arn()),
        Some("arn:aws:ecs:us-east-1:123456789012:cluster/extra")
    );
    let d = ecs
        .describe_clusters()
        .clusters("dev")
        .clusters("extra")
        .clusters("nope")
        .send()
        .await
        .expect("describe");
    assert_eq!(d.clusters().len(), 2);
    assert_eq!(d.failures()[0].reason(), Some("MISSING"));
}

/// A task definition using most of what ECS has, including fields the emulator does not act on.
fn rich_task_definition(family: &str) -> Value {
    json!({
        "family": family,
        "taskRoleArn": "arn:aws:iam::123456789012:role/api-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "api",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api-server:git-3f2a1c9",
            "cpu": 128,
            "memory": 256,
            "memoryReservation": 128,
            "essential": true,
            "command": ["/api-server", "--port", "8080"],
            "environment": [{"name": "RUST_LOG", "value": "info"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
            "healthCheck": {"command": ["CMD", "/api-server", "--check"], "interval": 10, "timeout": 3, "retries": 2, "startPeriod": 5},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/api", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "api"}},
            "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
            "dockerLabels": {"team": "backend"},
            "stopTimeout": 20,
        }, {
            "name": "sidecar",
            "image": "localhost:5000/sidecar:1",
            "essential": false,
            "memory": 32,
            "dependsOn": [{"containerName": "api", "condition": "HEALTHY"}],
        }],
        "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        "requiresCompatibilities": ["EC2"],
        "cpu": "256",
        "memory": "512",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 30},
        "pidMode": "task",
        "ipcMode": "task",
        "tags": [{"key": "team", "value": "backend"}, {"key": "service", "value": "api"}],
    })
}

#[tokio::test]
async fn registered_task_definitions_come_back_with_every_field() {
    let emu = EmulatorProcess::start(&[]);
    let family = "rich";
    let request = rich_task_definition(family);
    let (status, _, registered) = emu.call("RegisterTaskDefinition", &request);
    assert_eq!(status, 200, "{registered}");
    let (status, _, described) = emu.call(
        "DescribeTaskDefinition",
        &json!({"taskDefinition": family, "include": ["TAGS"]}),
    );
    assert_eq!(status, 200, "{described}");
    let td = &described["taskDefinition"];
    for (k, v) in request.as_object().expect("object") {
        if k == "tags" {
            continue;
        }
        assert_eq!(&td[k], v, "field {k} changed");
    }
    assert_eq!(described["tags"], request["tags"]);
    assert_eq!(td, &registered["taskDefinition"]);
    assert_eq!(
        td["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1"
    );
    assert_eq!(td["revision"], 1);
    assert_eq!(td["status"], "ACTIVE");
    assert!(td["registeredAt"].is_number());
    assert!(
        td["compatibilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("EC2")))
    );
    let attrs: Vec<&str> = td["requiresAttributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        attrs.contains(&"ecs.capability.container-health-check"),
        "{attrs:?}"
    );
    // Only the server-side fields were added.
    let added: Vec<&String> = td
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| request.get(k.as_str()).is_none())
        .collect();
    assert_eq!(
        added,
        [
            "taskDefinitionArn",
            "revision",
            "status",
            "requiresAttributes",
            "compatibilities",
            "registeredAt",
            "registeredBy"
        ]
    );

    // The SDK reads it all back.
    let ecs = emu.client().await;
    let out = ecs
        .describe_task_definition()
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe");
    let sdk_td = out.task_definition().expect("task definition");
    let api = &sdk_td.container_definitions()[0];
    assert_eq!(api.health_check().map(|h| h.retries()), Some(Some(2)));
    assert_eq!(api.secrets()[0].name(), "DB_PASSWORD");
    assert_eq!(api.ulimits()[0].soft_limit(), 65536);
    assert_eq!(
        sdk_td.ephemeral_storage().map(|e| e.size_in_gib()),
        Some(30)
    );
    assert_eq!(
        sdk_td.volumes()[0].host().and_then(|h| h.source_path()),
        Some("/srv/data")
    );
    assert_eq!(out.tags().len(), 2);

    // Revisions go up per family; deregistered ones are INACTIVE and not "latest".
    let (_, _, second) = emu.call("RegisterTaskDefinition", &request);
    assert_eq!(second["taskDefinition"]["revision"], 2);
    let (_, _, other) = emu.call("RegisterTaskDefinition", &rich_task_definition("other"));
    assert_eq!(other["taskDefinition"]["revision"], 1);
    let d = ecs
        .deregister_task_definition()
        .task_definition("rich:2")
        .send()
        .await
        .expect("deregister");
    assert_eq!(
        d.task_definition()
            .and_then(|t| t.status())
            .map(|s| s.as_str()),
        Some("INACTIVE")
    );
    let latest = ecs
        .describe_task_definition()
        .task_definition("rich")
        .send()
        .await
        .expect("latest");
    assert_eq!(latest.task_definition().map(|t| t.revision()), Some(1));
    let list = ecs
        .list_task_definitions()
        .family_prefix("rich")
        .send()
        .await
        .expect("list");
    assert_eq!(
        list.task_definition_arns(),
        ["arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1"]
    );

    // Tags on a task definition through the tagging API.
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/rich:1";
    ecs.tag_resource()
        .resource_arn(arn)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("env")
                .value("dev")
                .build(),
        )
        .send()
        .await
        .expect("tag");
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags().len(), 3);
}

#[tokio::test]
async fn throttling_and_latency_can_be_injected() {
    let emu = EmulatorProcess::start(&["--throttle-every", "3"]);
    let no_retries = emu
        .client_with(aws_config::retry::RetryConfig::disabled())
        .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = no_retries.describe_clusters().clusters("dev").send().await;
        codes.push(r.err().and_then(|e| e.code().map(str::to_owned)));
    }
    let throttled: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.as_deref() == Some("ThrottlingException"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(throttled, [3, 6], "{codes:?}");

    // The SDK's standard retries get through.
    let ecs = emu.client().await;
    for _ in 0..6 {
        ecs.describe_clusters()
            .clusters("dev")
            .send()
            .await
            .expect("retried through throttling");
    }

    // At run time: throttling off, 300 ms latency.
    let (status, _, faults) = raw_call(
        emu.port,
        "POST",
        "/_emulator/faults",
        None,
        r#"{"throttleEvery": 0, "latencyMs": 300}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(faults, json!({"throttleEvery": 0, "latencyMs": 300}));
    let t0 = Instant::now();
    for _ in 0..3 {
        no_retries
            .describe_clusters()
            .clusters("dev")
            .send()
            .await
            .expect("no throttling now");
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
}
