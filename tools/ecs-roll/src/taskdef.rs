//! The next task definition (pure): the current one with new images and environment,
//! compared with what runs, shown as a diff, and turned back into a registration.
//!
//! ECS has no "update task definition": a deployment registers a new revision with every
//! field of the current one. Forgetting a field (a secret, a volume, a log driver) silently
//! changes what runs, so [`registration`] copies every writable field of the SDK's
//! `TaskDefinition`, and a unit test fails when the SDK grows a field this code does not
//! know about.

use crate::images::EnvOverride;
use crate::offline::offline_client;
use aws_sdk_ecs::types::{
    ContainerDefinition, KeyValuePair, NetworkMode, PortMapping, Tag, TaskDefinition,
    TransportProtocol,
};
use common::{Error, Result};
use serde_json::Value;

/// The read-only fields of a described task definition, which a registration must not
/// (and cannot) carry; ECS sets them.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "task_definition_arn",
    "revision",
    "status",
    "requires_attributes",
    "compatibilities",
    "registered_at",
    "registered_by",
    "deregistered_at",
];

/// The containers of a task definition with their images.
pub fn container_images(td: &TaskDefinition) -> Vec<crate::images::ContainerImage> {
    td.container_definitions()
        .iter()
        .map(|c| crate::images::ContainerImage {
            name: c.name().unwrap_or_default().to_owned(),
            image: c.image().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// `base` with the chosen images and environment overrides applied. Every `--env`
/// container must exist.
pub fn with_changes(
    base: &TaskDefinition,
    images: &[(String, String)],
    env: &[EnvOverride],
) -> Result<TaskDefinition> {
    let mut next = base.clone();
    let containers = next.container_definitions.get_or_insert_with(Vec::new);
    for e in env {
        if !containers
            .iter()
            .any(|c| c.name.as_deref() == Some(&e.container))
        {
            return Err(Error::usage(format!(
                "--env {}:{}=…: the task definition has no container {}",
                e.container, e.key, e.container
            )));
        }
    }
    for container in containers.iter_mut() {
        let name = container.name.clone().unwrap_or_default();
        if let Some((_, image)) = images.iter().find(|(n, _)| n == &name) {
            container.image = Some(image.clone());
        }
        for e in env.iter().filter(|e| e.container == name) {
            set_env(container, &e.key, &e.value);
        }
    }
    Ok(next)
}

fn set_env(container: &mut ContainerDefinition, key: &str, value: &str) {
    let environment = container.environment.get_or_insert_with(Vec::new);
    match environment.iter_mut().find(|kv| kv.name() == Some(key)) {
        Some(kv) => kv.value = Some(value.to_owned()),
        None => environment.push(KeyValuePair::builder().name(key).value(value).build()),
    }
}

/// Whether two task definitions run the same thing: equal after [`normalized`], so that a
/// definition rendered from a file compares equal to the one ECS describes back (which
/// fills in defaults like `essential: true` and empty lists).
pub fn same_content(a: &TaskDefinition, b: &TaskDefinition) -> bool {
    normalized(a) == normalized(b)
}

/// The task definition without its read-only fields and with ECS's defaults made explicit.
pub fn normalized(td: &TaskDefinition) -> TaskDefinition {
    let mut td = td.clone();
    td.task_definition_arn = None;
    td.revision = 0;
    td.status = None;
    td.requires_attributes = None;
    td.compatibilities = None;
    td.registered_at = None;
    td.registered_by = None;
    td.deregistered_at = None;
    none_if_empty(&mut td.volumes);
    none_if_empty(&mut td.placement_constraints);
    none_if_empty(&mut td.requires_compatibilities);
    none_if_empty(&mut td.inference_accelerators);
    let network_mode = td.network_mode.clone();
    if let Some(containers) = td.container_definitions.as_mut() {
        for c in containers.iter_mut() {
            normalize_container(c, network_mode.as_ref());
        }
    }
    td
}

fn normalize_container(c: &mut ContainerDefinition, network_mode: Option<&NetworkMode>) {
    c.essential.get_or_insert(true);
    none_if_empty(&mut c.links);
    none_if_empty(&mut c.port_mappings);
    none_if_empty(&mut c.entry_point);
    none_if_empty(&mut c.command);
    none_if_empty(&mut c.environment);
    none_if_empty(&mut c.environment_files);
    none_if_empty(&mut c.mount_points);
    none_if_empty(&mut c.volumes_from);
    none_if_empty(&mut c.secrets);
    none_if_empty(&mut c.depends_on);
    none_if_empty(&mut c.dns_servers);
    none_if_empty(&mut c.dns_search_domains);
    none_if_empty(&mut c.extra_hosts);
    none_if_empty(&mut c.docker_security_options);
    none_if_empty(&mut c.ulimits);
    none_if_empty(&mut c.system_controls);
    none_if_empty(&mut c.resource_requirements);
    none_if_empty(&mut c.credential_specs);
    if c.docker_labels.as_ref().is_some_and(|l| l.is_empty()) {
        c.docker_labels = None;
    }
    // The order of environment variables means nothing to the container.
    if let Some(environment) = c.environment.as_mut() {
        environment.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(ports) = c.port_mappings.as_mut() {
        for p in ports.iter_mut() {
            normalize_port(p, network_mode);
        }
    }
}

/// ECS fills in `protocol: tcp`, and the host port: the container port where the task
/// shares a network namespace with the host or has its own ENI, 0 (dynamic) in bridge mode.
fn normalize_port(p: &mut PortMapping, network_mode: Option<&NetworkMode>) {
    p.protocol.get_or_insert(TransportProtocol::Tcp);
    if p.host_port.is_none() {
        p.host_port = match network_mode {
            Some(NetworkMode::Awsvpc | NetworkMode::Host) => p.container_port,
            _ => Some(0),
        };
    }
}

fn none_if_empty<T>(list: &mut Option<Vec<T>>) {
    if list.as_ref().is_some_and(Vec::is_empty) {
        *list = None;
    }
}

/// A unified diff of two task definitions with their tags, for `--dry-run` and `-v`: the
/// JSON each would be registered with (as `aws ecs register-task-definition` takes it),
/// ECS's defaults made explicit on both sides. Empty when they are the same.
pub async fn diff(from: (&TaskDefinition, &[Tag]), to: (&TaskDefinition, &[Tag])) -> String {
    let render = |json: serde_json::Value| serde_json::to_string_pretty(&json).unwrap_or_default();
    let from_json = render(registration_json(&normalized(from.0), from.1).await);
    let to_json = render(registration_json(&normalized(to.0), to.1).await);
    if from_json == to_json {
        return String::new();
    }
    similar::TextDiff::from_lines(&from_json, &to_json)
        .unified_diff()
        .context_radius(2)
        .header("live", "next")
        .to_string()
}

/// The JSON that RegisterTaskDefinition would send for `td` and `tags` (no read-only
/// fields, no absent ones), or `Null` if the SDK refuses to build the request.
pub async fn registration_json(td: &TaskDefinition, tags: &[Tag]) -> Value {
    let (client, sent) = offline_client(r#"{"taskDefinition":{}}"#.to_owned());
    if registration(&client, td, tags).send().await.is_err() {
        return Value::Null;
    }
    let body = sent.lock().map(|b| b.clone()).unwrap_or_default();
    body.and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// The registration of `td` with `tags`: every writable field, nothing read-only.
pub fn registration(
    client: &aws_sdk_ecs::Client,
    td: &TaskDefinition,
    tags: &[Tag],
) -> aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder
{
    let td = td.clone();
    client
        .register_task_definition()
        .set_family(td.family)
        .set_task_role_arn(td.task_role_arn)
        .set_execution_role_arn(td.execution_role_arn)
        .set_network_mode(td.network_mode)
        .set_container_definitions(td.container_definitions)
        .set_volumes(td.volumes)
        .set_placement_constraints(td.placement_constraints)
        .set_requires_compatibilities(td.requires_compatibilities)
        .set_cpu(td.cpu)
        .set_memory(td.memory)
        .set_pid_mode(td.pid_mode)
        .set_ipc_mode(td.ipc_mode)
        .set_proxy_configuration(td.proxy_configuration)
        .set_inference_accelerators(td.inference_accelerators)
        .set_ephemeral_storage(td.ephemeral_storage)
        .set_runtime_platform(td.runtime_platform)
        .set_enable_fault_injection(td.enable_fault_injection)
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
}

/// The fields [`registration`] copies, by their SDK names; the test below holds this list
/// against the SDK's own types.
pub const COPIED_FIELDS: &[&str] = &[
    "family",
    "task_role_arn",
    "execution_role_arn",
    "network_mode",
    "container_definitions",
    "volumes",
    "placement_constraints",
    "requires_compatibilities",
    "cpu",
    "memory",
    "pid_mode",
    "ipc_mode",
    "proxy_configuration",
    "inference_accelerators",
    "ephemeral_storage",
    "runtime_platform",
    "enable_fault_injection",
];

/// The short name of a task definition ARN: `family:revision`.
pub fn short_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
    use std::collections::BTreeSet;

    /// Field names from a `Debug` rendering of an SDK struct (`Name { a: .., b: .. }`).
    fn debug_field_names(debug: &str) -> BTreeSet<String> {
        let inner = debug
            .split_once('{')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let mut names = BTreeSet::new();
        let mut depth = 0usize;
        let mut current = String::new();
        for ch in inner.chars() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                ':' if depth == 0 => {
                    names.insert(current.trim().trim_start_matches(',').trim().to_owned());
                    current.clear();
                    continue;
                }
                ',' if depth == 0 => current.clear(),
                _ => {}
            }
            if depth == 0 && ch != ',' {
                current.push(ch);
            }
        }
        names
    }

    #[test]
    fn every_writable_field_of_the_sdk_task_definition_is_copied() {
        let described = debug_field_names(&format!("{:?}", TaskDefinition::builder().build()));
        let registrable = debug_field_names(&format!(
            "{:?}",
            RegisterTaskDefinitionInput::builder().build().unwrap()
        ));
        assert!(described.contains("family") && registrable.contains("tags"));
        let writable: BTreeSet<String> = described
            .iter()
            .filter(|f| !READ_ONLY_FIELDS.contains(&f.as_str()))
            .cloned()
            .collect();
        let copied: BTreeSet<String> = COPIED_FIELDS.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            writable, copied,
            "the SDK's TaskDefinition has fields registration() does not copy (or lost some)"
        );
        for field in &copied {
            assert!(
                registrable.contains(field),
                "RegisterTaskDefinition has no field {field}"
            );
        }
    }

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .build()
    }

    fn task_definition(containers: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition::builder()
            .family("api")
            .set_container_definitions(Some(containers))
            .build()
    }

    #[test]
    fn images_and_env_change_only_their_containers() {
        let base = task_definition(vec![
            container("app", "r/api:1"),
            container("log", "r/fluent:1"),
        ]);
        let env = vec![EnvOverride {
            container: "app".into(),
            key: "MODE".into(),
            value: "blue".into(),
        }];
        let next = with_changes(&base, &[("app".into(), "r/api@sha256:2".into())], &env).unwrap();
        let app = &next.container_definitions()[0];
        assert_eq!(app.image(), Some("r/api@sha256:2"));
        assert_eq!(app.environment()[0].value(), Some("blue"));
        assert_eq!(
            next.container_definitions()[1],
            base.container_definitions()[1]
        );
    }

    #[test]
    fn env_for_a_missing_container_is_bad_input() {
        let base = task_definition(vec![container("app", "r/api:1")]);
        let env = vec![EnvOverride {
            container: "db".into(),
            key: "X".into(),
            value: "1".into(),
        }];
        let err = with_changes(&base, &[], &env).unwrap_err();
        assert_eq!(err.exit().code(), 2);
    }

    #[test]
    fn ecs_defaults_and_read_only_fields_do_not_count_as_changes() {
        let rendered = task_definition(vec![
            ContainerDefinition::builder()
                .name("app")
                .image("r/api:1")
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .environment(KeyValuePair::builder().name("B").value("2").build())
                .environment(KeyValuePair::builder().name("A").value("1").build())
                .build(),
        ]);
        let described = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/api:7")
            .revision(7)
            .family("api")
            .volumes(aws_sdk_ecs::types::Volume::builder().build())
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("r/api:1")
                    .essential(true)
                    .port_mappings(
                        PortMapping::builder()
                            .container_port(8080)
                            .host_port(0)
                            .protocol(TransportProtocol::Tcp)
                            .build(),
                    )
                    .environment(KeyValuePair::builder().name("A").value("1").build())
                    .environment(KeyValuePair::builder().name("B").value("2").build())
                    .set_mount_points(Some(vec![]))
                    .build(),
            )
            .build();
        let mut described_no_volume = described.clone();
        described_no_volume.volumes = Some(vec![]);
        assert!(same_content(&rendered, &described_no_volume));
        // A real difference is seen and shown.
        let changed = with_changes(&rendered, &[("app".into(), "r/api:2".into())], &[]).unwrap();
        assert!(!same_content(&changed, &described_no_volume));
    }

    #[tokio::test]
    async fn the_diff_shows_changed_json_fields_only() {
        let live = task_definition(vec![container("app", "r/api:1")]);
        let next = with_changes(&live, &[("app".into(), "r/api:2".into())], &[]).unwrap();
        let tags = vec![Tag::builder().key("team").value("a").build()];
        assert!(diff((&live, &tags), (&live, &tags)).await.is_empty());
        let shown = diff((&live, &tags), (&next, &tags)).await;
        assert!(shown.contains("-      \"image\": \"r/api:1\""), "{shown}");
        assert!(shown.contains("+      \"image\": \"r/api:2\""), "{shown}");
        assert!(
            !shown.contains("None") && !shown.contains("Some("),
            "{shown}"
        );
    }

    #[test]
    fn short_names_are_family_and_revision() {
        assert_eq!(
            short_name("arn:aws:ecs:us-east-1:1:task-definition/api:7"),
            "api:7"
        );
    }

    #[tokio::test]
    async fn the_registration_is_the_wire_json_without_absent_fields() {
        let td = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/api:3")
            .revision(3)
            .family("api")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("r/api:1")
                    .build(),
            )
            .build();
        let tags = vec![Tag::builder().key("team").value("a").build()];
        let json = registration_json(&td, &tags).await;
        assert_eq!(json["family"], "api");
        assert_eq!(json["containerDefinitions"][0]["image"], "r/api:1");
        assert_eq!(json["tags"][0]["key"], "team");
        assert!(
            json.get("revision").is_none() && json.get("taskDefinitionArn").is_none(),
            "{json}"
        );
    }
}
