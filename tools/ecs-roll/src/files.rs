//! Task and service definitions from JSON files, in the shapes the AWS CLI uses.
//!
//! A task definition file is what `aws ecs describe-task-definition` prints
//! (`{"taskDefinition": {…}, "tags": […]}`) or what `aws ecs register-task-definition
//! --cli-input-json` reads (the inner object, `tags` beside the fields). A service
//! definition file is `aws ecs create-service --cli-input-json`'s input.
//!
//! The files are decoded by the SDK's own deserializers ([`crate::offline`]): the JSON is
//! handed to an `aws_sdk_ecs::Client` whose HTTP client answers every request with it as a
//! DescribeTaskDefinition (or DescribeServices) response, all in memory. ECS's wire format
//! *is* this JSON, so every field the SDK knows, nested however deep, is read exactly as
//! ECS would send it, with no hand-written mirror of the ECS model to drift from the SDK.
//! Unknown top-level fields are refused, so a typo is not silently dropped.

use crate::offline::offline_client;
use aws_sdk_ecs::types::{Service, Tag, TaskDefinition};
use common::{Error, Result};
use serde_json::{Map, Value, json};
use std::path::Path;

/// Every field of a described task definition (read-only ones included) plus `tags`.
const TASK_DEFINITION_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "containerDefinitions",
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "revision",
    "volumes",
    "status",
    "requiresAttributes",
    "placementConstraints",
    "compatibilities",
    "runtimePlatform",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "inferenceAccelerators",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "registeredAt",
    "deregisteredAt",
    "registeredBy",
    "ephemeralStorage",
    "enableFaultInjection",
    "tags",
];

/// CreateService's input fields that ecs-roll passes on.
const SERVICE_FIELDS: &[&str] = &[
    "cluster",
    "serviceName",
    "taskDefinition",
    "availabilityZoneRebalancing",
    "loadBalancers",
    "serviceRegistries",
    "desiredCount",
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "role",
    "deploymentConfiguration",
    "placementConstraints",
    "placementStrategy",
    "networkConfiguration",
    "healthCheckGracePeriodSeconds",
    "schedulingStrategy",
    "deploymentController",
    "tags",
    "enableECSManagedTags",
    "propagateTags",
    "enableExecuteCommand",
];

/// A task definition read from a file, with its tags.
#[derive(Debug, Clone)]
pub struct TaskDefinitionFile {
    pub path: String,
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
}

impl TaskDefinitionFile {
    /// The family the file registers.
    pub fn family(&self) -> &str {
        self.task_definition.family().unwrap_or_default()
    }
}

/// A service definition read from a file.
#[derive(Debug, Clone)]
pub struct ServiceDefinitionFile {
    pub path: String,
    pub service: Service,
}

impl ServiceDefinitionFile {
    pub fn name(&self) -> &str {
        self.service.service_name().unwrap_or_default()
    }

    /// The family of the task definition the file names (`api`, `api:3` or an ARN).
    pub fn task_definition_family(&self) -> Option<&str> {
        self.service.task_definition().map(family_of)
    }
}

/// `api`, `api:3`, `arn:…:task-definition/api:3` → `api`.
pub fn family_of(task_definition: &str) -> &str {
    let short = crate::taskdef::short_name(task_definition);
    short.split(':').next().unwrap_or(short)
}

/// Reads a task definition file (bad JSON, unknown fields, a wrong type: exit 2).
pub async fn read_task_definition(path: &Path) -> Result<TaskDefinitionFile> {
    let shown = path.display().to_string();
    let mut object = read_object(path)?;
    // The describe-task-definition shape wraps the definition; the register shape does not.
    let tags = object.remove("tags");
    let mut inner = match object.remove("taskDefinition") {
        Some(Value::Object(inner)) if object.is_empty() => inner,
        Some(_) => {
            return Err(Error::usage(format!(
                "{shown}: 'taskDefinition' must be an object, with only 'tags' beside it"
            )));
        }
        None => object,
    };
    let tags = match (tags, inner.remove("tags")) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(format!("{shown}: 'tags' is given twice")));
        }
        (a, b) => a.or(b).unwrap_or(json!([])),
    };
    refuse_unknown_fields(&shown, &inner, TASK_DEFINITION_FIELDS, "task definition")?;
    if !inner.get("family").is_some_and(Value::is_string) {
        return Err(Error::usage(format!(
            "{shown}: 'family' (a string) is required"
        )));
    }
    let containers = inner.get("containerDefinitions").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        return Err(Error::usage(format!(
            "{shown}: 'containerDefinitions' (a non-empty list) is required"
        )));
    }
    let body = json!({ "taskDefinition": inner, "tags": tags }).to_string();
    let output = offline_client(body)
        .0
        .describe_task_definition()
        .task_definition("file")
        .send()
        .await
        .map_err(|e| {
            Error::usage(format!(
                "{shown}: not a task definition: {}",
                common::aws::error_line(&e)
            ))
        })?;
    Ok(TaskDefinitionFile {
        path: shown,
        task_definition: output
            .task_definition
            .unwrap_or_else(|| TaskDefinition::builder().build()),
        tags: output.tags.unwrap_or_default(),
    })
}

/// Reads a service definition file (CreateService's input shape).
pub async fn read_service_definition(path: &Path) -> Result<ServiceDefinitionFile> {
    let shown = path.display().to_string();
    let mut object = read_object(path)?;
    refuse_unknown_fields(&shown, &object, SERVICE_FIELDS, "service definition")?;
    if !object.get("serviceName").is_some_and(Value::is_string) {
        return Err(Error::usage(format!(
            "{shown}: 'serviceName' (a string) is required"
        )));
    }
    // CreateService says `role`, the described service `roleArn`.
    if let Some(role) = object.remove("role") {
        object.insert("roleArn".into(), role);
    }
    let body = json!({ "services": [object], "failures": [] }).to_string();
    let output = offline_client(body)
        .0
        .describe_services()
        .services("file")
        .send()
        .await
        .map_err(|e| {
            Error::usage(format!(
                "{shown}: not a service definition: {}",
                common::aws::error_line(&e)
            ))
        })?;
    let service = output
        .services
        .and_then(|mut s| s.pop())
        .ok_or_else(|| Error::usage(format!("{shown}: not a service definition")))?;
    Ok(ServiceDefinitionFile {
        path: shown,
        service,
    })
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read {shown}: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "{shown}: line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(Error::usage(format!("{shown}: expected a JSON object"))),
    }
}

fn refuse_unknown_fields(
    shown: &str,
    object: &Map<String, Value>,
    known: &[&str],
    what: &str,
) -> Result<()> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(Error::usage(format!(
            "{shown}: unknown {what} field '{unknown}' (ecs-roll knows: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const REGISTER_SHAPE: &str = r#"{
        "family": "auth",
        "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "auth", "image": "r/auth:latest", "memory": 64,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}],
            "healthCheck": {"command": ["CMD", "true"], "interval": 5},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}]
        }],
        "ephemeralStorage": {"sizeInGiB": 30},
        "tags": [{"key": "team", "value": "auth"}]
    }"#;

    #[tokio::test]
    async fn the_register_shape_is_read_with_every_nested_field() {
        let file = write(REGISTER_SHAPE);
        let td = read_task_definition(file.path()).await.unwrap();
        assert_eq!(td.family(), "auth");
        assert_eq!(td.tags[0].key(), Some("team"));
        let c = &td.task_definition.container_definitions()[0];
        assert_eq!(c.memory(), Some(64));
        assert_eq!(
            c.secrets()[0].value_from(),
            "arn:aws:ssm:us-east-1:1:parameter/db"
        );
        assert_eq!(c.health_check().unwrap().interval(), Some(5));
        assert_eq!(c.ulimits()[0].hard_limit(), 2048);
        assert_eq!(
            td.task_definition
                .ephemeral_storage()
                .unwrap()
                .size_in_gib(),
            30
        );
    }

    #[tokio::test]
    async fn the_describe_shape_is_read_too() {
        let inner: Value = serde_json::from_str(REGISTER_SHAPE).unwrap();
        let mut inner = inner.as_object().unwrap().clone();
        let tags = inner.remove("tags").unwrap();
        let file = write(&json!({"taskDefinition": inner, "tags": tags}).to_string());
        let td = read_task_definition(file.path()).await.unwrap();
        assert_eq!(td.family(), "auth");
        assert_eq!(td.tags.len(), 1);
    }

    #[tokio::test]
    async fn bad_files_are_usage_errors_naming_the_file() {
        for (text, needle) in [
            ("{\"family\": ", "line 1 column"),
            ("[]", "expected a JSON object"),
            (
                r#"{"family":"a","containerDefinition":[]}"#,
                "unknown task definition field 'containerDefinition'",
            ),
            (r#"{"containerDefinitions":[{"name":"a"}]}"#, "'family'"),
            (r#"{"family":"a","containerDefinitions":[]}"#, "non-empty"),
            (
                r#"{"family":"a","containerDefinitions":[{"name":"a","memory":"lots"}]}"#,
                "not a task definition",
            ),
        ] {
            let file = write(text);
            let err = read_task_definition(file.path()).await.unwrap_err();
            assert_eq!(err.exit().code(), 2, "{text}");
            let message = err.to_string();
            assert!(message.contains(needle), "{text}: {message}");
            assert!(
                message.contains(&file.path().display().to_string()),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn a_service_definition_keeps_load_balancers_and_deployment_settings() {
        let file = write(
            r#"{
            "serviceName": "auth", "cluster": "dev", "taskDefinition": "auth", "desiredCount": 2,
            "launchType": "EC2", "role": "arn:aws:iam::1:role/ecs",
            "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "auth", "containerPort": 8080}],
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true}}
        }"#,
        );
        let def = read_service_definition(file.path()).await.unwrap();
        assert_eq!(def.name(), "auth");
        assert_eq!(def.task_definition_family(), Some("auth"));
        assert_eq!(def.service.desired_count(), 2);
        assert_eq!(def.service.role_arn(), Some("arn:aws:iam::1:role/ecs"));
        assert_eq!(def.service.load_balancers()[0].container_port(), Some(8080));
        let breaker = def
            .service
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker())
            .unwrap();
        assert!(breaker.enable() && breaker.rollback());
    }

    #[tokio::test]
    async fn unsupported_service_fields_are_refused() {
        let file = write(r#"{"serviceName":"a","serviceConnectConfiguration":{}}"#);
        let err = read_service_definition(file.path()).await.unwrap_err();
        assert!(
            err.to_string().contains("serviceConnectConfiguration"),
            "{err}"
        );
    }

    #[test]
    fn families_come_from_names_and_arns() {
        assert_eq!(family_of("api"), "api");
        assert_eq!(family_of("api:3"), "api");
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/api:3"),
            "api"
        );
    }
}
