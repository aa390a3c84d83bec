//! The order a task's containers start in and the Docker links each one gets, decided from
//! the container definitions alone (pure; the engine carries it out).
//!
//! ECS on EC2 with bridge networking implements a container definition's `links` as Docker's
//! legacy links (`HostConfig.Links`, `<container>:<alias>`), so the linking container finds the
//! other by name in its `/etc/hosts`; Docker refuses a link to a container that is not running,
//! so a linked container starts first. `dependsOn` orders the start the same way. Every
//! `dependsOn` condition is treated as `START` here: the emulator does not wait for a
//! dependency to be `HEALTHY` or to have exited (`COMPLETE`, `SUCCESS`).

use serde_json::Value;

/// One container to start, in start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStart {
    /// Its index among the task's container definitions.
    pub index: usize,
    /// Docker's `HostConfig.Links`: `<docker name of the linked container>:<alias>`.
    pub links: Vec<String>,
}

/// A container's name and the names of the task's containers it needs started before it:
/// those of `links` (`name` or `name:alias`) and of `dependsOn[].containerName`.
fn needs(def: &Value) -> (String, Vec<String>) {
    let name = def["name"].as_str().unwrap_or_default().to_owned();
    let linked = def["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|link| {
            link.split_once(':')
                .map_or(link, |(name, _)| name)
                .to_owned()
        });
    let depends = def["dependsOn"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["containerName"].as_str())
        .map(str::to_owned);
    let mut before: Vec<String> = linked.chain(depends).collect();
    before.sort_unstable();
    before.dedup();
    (name, before)
}

/// The start plan of a task whose container definitions are `defs`, Docker-named `docker_names`
/// (same order). Containers start after those they link to or depend on, otherwise in the
/// order of the definition. `links` are given to Docker only when `bridge` (Docker's default
/// bridge network, where ECS supports them). A link or dependency on a container the task does
/// not have, or a cycle, is an error naming it (the task then fails to start).
pub fn plan_start(
    defs: &[Value],
    docker_names: &[String],
    bridge: bool,
) -> Result<Vec<ContainerStart>, String> {
    let needs: Vec<(String, Vec<String>)> = defs.iter().map(needs).collect();
    let index_of = |name: &str| needs.iter().position(|(n, _)| n == name);
    let mut before: Vec<Vec<usize>> = Vec::with_capacity(defs.len());
    for (name, wanted) in &needs {
        let mut indices = Vec::new();
        for other in wanted {
            match index_of(other) {
                Some(i) if other != name => indices.push(i),
                Some(_) => return Err(format!("container {name} links to or depends on itself")),
                None => {
                    return Err(format!(
                        "container {name} links to or depends on {other}, which is not a container of the task"
                    ));
                }
            }
        }
        before.push(indices);
    }
    let mut started = vec![false; defs.len()];
    let mut plan = Vec::with_capacity(defs.len());
    while plan.len() < defs.len() {
        // The first container, in definition order, whose prerequisites have all started.
        let next = (0..defs.len())
            .find(|&i| !started[i] && before[i].iter().all(|&b| started[b]))
            .ok_or_else(|| {
                let waiting: Vec<&str> = (0..defs.len())
                    .filter(|&i| !started[i])
                    .map(|i| needs[i].0.as_str())
                    .collect();
                format!(
                    "containers {} link to or depend on each other in a cycle",
                    waiting.join(", ")
                )
            })?;
        started[next] = true;
        plan.push(ContainerStart {
            index: next,
            links: if bridge {
                docker_links(&defs[next], &needs, docker_names)
            } else {
                Vec::new()
            },
        });
    }
    Ok(plan)
}

/// `links` of one definition as Docker's `<docker name>:<alias>` (the alias is the container's
/// name when the link gives none).
fn docker_links(
    def: &Value,
    needs: &[(String, Vec<String>)],
    docker_names: &[String],
) -> Vec<String> {
    def["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|link| {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let i = needs.iter().position(|(n, _)| n == name)?;
            Some(format!("{}:{alias}", docker_names.get(i)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ecs-f-1-c{i}-task")).collect()
    }

    fn order(plan: &[ContainerStart]) -> Vec<usize> {
        plan.iter().map(|c| c.index).collect()
    }

    #[test]
    fn containers_without_links_start_in_definition_order() {
        let defs = [json!({"name": "a"}), json!({"name": "b"})];
        let plan = plan_start(&defs, &names(2), true).unwrap();
        assert_eq!(order(&plan), [0, 1]);
        assert!(plan.iter().all(|c| c.links.is_empty()));
    }

    #[test]
    fn a_linked_container_starts_first_and_is_linked_by_its_docker_name() {
        let defs = [
            json!({"name": "auth-server", "links": ["redis"]}),
            json!({"name": "redis"}),
            json!({"name": "cache", "links": ["redis:kv"]}),
        ];
        let plan = plan_start(&defs, &names(3), true).unwrap();
        assert_eq!(order(&plan), [1, 0, 2]);
        assert_eq!(plan[1].links, ["ecs-f-1-c1-task:redis"]);
        assert_eq!(plan[2].links, ["ecs-f-1-c1-task:kv"]);
    }

    #[test]
    fn depends_on_orders_the_start_without_linking() {
        let defs = [
            json!({"name": "app", "dependsOn": [{"containerName": "migrate", "condition": "COMPLETE"}]}),
            json!({"name": "migrate", "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}),
            json!({"name": "db"}),
        ];
        let plan = plan_start(&defs, &names(3), true).unwrap();
        assert_eq!(order(&plan), [2, 1, 0]);
        assert!(plan.iter().all(|c| c.links.is_empty()));
    }

    #[test]
    fn links_are_docker_links_only_on_the_bridge() {
        let defs = [json!({"name": "a", "links": ["b"]}), json!({"name": "b"})];
        let plan = plan_start(&defs, &names(2), false).unwrap();
        assert_eq!(order(&plan), [1, 0]);
        assert!(plan.iter().all(|c| c.links.is_empty()));
    }

    #[test]
    fn unknown_containers_and_cycles_are_errors_that_name_them() {
        let unknown = [json!({"name": "a", "links": ["redis"]})];
        let err = plan_start(&unknown, &names(1), true).unwrap_err();
        assert!(err.contains("a links to or depends on redis"), "{err}");
        let cycle = [
            json!({"name": "a", "links": ["b"]}),
            json!({"name": "b", "dependsOn": [{"containerName": "a"}]}),
            json!({"name": "c"}),
        ];
        let err = plan_start(&cycle, &names(3), true).unwrap_err();
        assert!(
            err.contains("containers a, b link to or depend on each other"),
            "{err}"
        );
        let itself = [json!({"name": "a", "links": ["a"]})];
        assert!(
            plan_start(&itself, &names(1), true)
                .unwrap_err()
                .contains("itself")
        );
    }
}
