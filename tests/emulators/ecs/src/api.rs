//! The ECS operations: request JSON in, response JSON or an ECS error out. They change the
//! state only; containers are started and stopped by the reconciler (`engine`).

use serde_json::{Map, Value, json};

use crate::Emulator;
use crate::state::{Cluster, Service, State, TaskDefinition, arn, now};

/// An error in the ECS wire shape: HTTP status, `__type` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400 for every client error).
    pub status: u16,
    /// The error type (`ClusterNotFoundException`, ...), sent as `__type` and `x-amzn-ErrorType`.
    pub kind: &'static str,
    /// The message.
    pub message: String,
}

impl ApiError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            kind,
            message: message.into(),
        }
    }
    fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }
    fn cluster_not_found() -> Self {
        Self::new("ClusterNotFoundException", "Cluster not found.")
    }
    fn service_not_found() -> Self {
        Self::new("ServiceNotFoundException", "Service not found.")
    }
    /// An operation the emulator does not implement (or ECS does not have).
    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            "UnknownOperationException",
            format!(
                "ecs-emulator does not implement the operation '{op}' (see tests/emulators/ecs/README.md)"
            ),
        )
    }
    /// A request body that is not a JSON object.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }
    /// An injected throttling error.
    pub fn throttling() -> Self {
        Self::new("ThrottlingException", "Rate exceeded")
    }
}

type ApiResult = Result<Value, ApiError>;

/// The operations the emulator implements.
pub const OPERATIONS: &[&str] = &[
    "CreateCluster",
    "DescribeClusters",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "DeregisterTaskDefinition",
    "ListTaskDefinitions",
    "CreateService",
    "DescribeServices",
    "UpdateService",
    "DeleteService",
    "ListTasks",
    "DescribeTasks",
    "StopTask",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "ListServices",
    "ListClusters",
];

/// Runs one operation.
pub fn call(emu: &Emulator, op: &str, req: &Value) -> ApiResult {
    match op {
        "DeleteService" => delete_service(emu, req),
        "CreateService" => create_service(emu, req),
        _ => {
            let mut st = emu.state.lock().unwrap_or_else(|e| e.into_inner());
            let st = &mut *st;
            match op {
                "CreateCluster" => create_cluster(st, req),
                "DescribeClusters" => describe_clusters(st, req),
                "RegisterTaskDefinition" => register_task_definition(st, req),
                "DescribeTaskDefinition" => describe_task_definition(st, req),
                "DeregisterTaskDefinition" => deregister_task_definition(st, req),
                "ListTaskDefinitions" => list_task_definitions(st, req),
                "DescribeServices" => describe_services(st, req),
                "UpdateService" => update_service(st, req),
                "ListTasks" => list_tasks(st, req),
                "DescribeTasks" => describe_tasks(st, req),
                "StopTask" => stop_task(st, req),
                "TagResource" => tag_resource(st, req),
                "UntagResource" => untag_resource(st, req),
                "ListTagsForResource" => list_tags_for_resource(st, req),
                "ListServices" => list_services(st, req),
                "ListClusters" => {
                    let arns: Vec<&str> = st.clusters.values().map(|c| c.arn.as_str()).collect();
                    paginate(req, arns, "clusterArns")
                }
                _ => Err(ApiError::unknown_operation(op)),
            }
        }
    }
}

fn s<'a>(req: &'a Value, key: &str) -> Option<&'a str> {
    req.get(key).and_then(Value::as_str)
}

fn required<'a>(req: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    s(req, key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("{key} must be specified.")))
}

fn last_segment(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// The cluster a request names (`cluster`: name or ARN; default `default`).
fn cluster_name(req: &Value) -> &str {
    s(req, "cluster").map(last_segment).unwrap_or("default")
}

fn cluster_mut<'a>(st: &'a mut State, req: &Value) -> Result<&'a mut Cluster, ApiError> {
    st.clusters
        .get_mut(cluster_name(req))
        .ok_or_else(ApiError::cluster_not_found)
}

fn tags_of(req: &Value) -> Option<Vec<Value>> {
    req.get("tags").and_then(Value::as_array).cloned()
}

fn includes_tags(req: &Value) -> bool {
    req.get("include")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "TAGS"))
}

fn merge_tags(st: &mut State, resource: &str, tags: Vec<Value>) {
    let entry = st.tags.entry(resource.to_owned()).or_default();
    for t in tags {
        let key = t.get("key").cloned();
        entry.retain(|e| e.get("key").cloned() != key);
        entry.push(t);
    }
}

// ------------------------------------------------------------------ clusters --

fn cluster_json(st: &State, c: &Cluster, with_tags: bool) -> Value {
    let (mut running, mut pending) = (0, 0);
    for t in st
        .tasks
        .values()
        .filter(|t| t.cluster == c.name && t.desired_status == "RUNNING")
    {
        if t.last_status == "RUNNING" {
            running += 1
        } else {
            pending += 1
        }
    }
    let mut v = json!({
        "clusterArn": c.arn,
        "clusterName": c.name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": c.services.values().filter(|s| s.status == "ACTIVE").count(),
        "statistics": [],
        "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    });
    if with_tags {
        v["tags"] = json!(st.tags.get(&c.arn).cloned().unwrap_or_default());
    }
    v
}

/// Creates a cluster (also used for the clusters that exist from the start).
pub fn ensure_cluster(st: &mut State, name: &str) -> String {
    st.clusters
        .entry(name.to_owned())
        .or_insert_with(|| Cluster::new(name))
        .arn
        .clone()
}

fn create_cluster(st: &mut State, req: &Value) -> ApiResult {
    let name = s(req, "clusterName").unwrap_or("default").to_owned();
    let arn = ensure_cluster(st, &name);
    if let Some(tags) = tags_of(req) {
        merge_tags(st, &arn, tags);
    }
    let c = &st.clusters[&name];
    Ok(json!({"cluster": cluster_json(st, c, true)}))
}

fn describe_clusters(st: &mut State, req: &Value) -> ApiResult {
    let names: Vec<String> = match req.get("clusters").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => vec!["default".into()],
    };
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for n in names {
        match st.clusters.get(last_segment(&n)) {
            Some(c) => clusters.push(cluster_json(st, c, includes_tags(req))),
            None => failures.push(
                json!({"arn": arn(&format!("cluster/{}", last_segment(&n))), "reason": "MISSING"}),
            ),
        }
    }
    Ok(json!({"clusters": clusters, "failures": failures}))
}

// --------------------------------------------------------- task definitions --

/// Finds a task definition by `family`, `family:revision` or ARN; `family` alone means the
/// latest ACTIVE revision.
pub fn find_task_definition<'a>(st: &'a State, reference: &str) -> Option<&'a TaskDefinition> {
    let r = reference
        .strip_prefix(&arn("task-definition/"))
        .unwrap_or(reference);
    let r = if r.starts_with("arn:") {
        r.rsplit('/').next().unwrap_or(r)
    } else {
        r
    };
    match r.rsplit_once(':') {
        Some((family, rev)) => {
            let rev: usize = rev.parse().ok()?;
            st.families.get(family)?.get(rev.checked_sub(1)?)
        }
        None => st.families.get(r)?.iter().rev().find(|td| td.active()),
    }
}

fn requires_attributes(body: &Value) -> Vec<Value> {
    let mut names = vec!["com.amazonaws.ecs.capability.docker-remote-api.1.18"];
    let containers = body
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.iter().any(|c| c.get("healthCheck").is_some()) {
        names.push("ecs.capability.container-health-check");
    }
    if body.get("taskRoleArn").is_some() {
        names.push("com.amazonaws.ecs.capability.task-iam-role");
    }
    if body.get("executionRoleArn").is_some()
        && containers.iter().any(|c| {
            c.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| i.contains(".dkr.ecr."))
        })
    {
        names.push("ecs.capability.execution-role-ecr-pull");
    }
    if containers.iter().any(|c| {
        c.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.contains(".dkr.ecr."))
    }) {
        names.push("com.amazonaws.ecs.capability.ecr-auth");
    }
    names.into_iter().map(|n| json!({"name": n})).collect()
}

fn register_task_definition(st: &mut State, req: &Value) -> ApiResult {
    let Some(obj) = req.as_object() else {
        return Err(ApiError::client("The request is not a JSON object."));
    };
    let family = required(req, "family")
        .map_err(|_| ApiError::client("Family must be specified."))?
        .to_owned();
    if !family
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || family.len() > 255
    {
        return Err(ApiError::client(
            "Family contains invalid characters: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed.",
        ));
    }
    let containers = obj.get("containerDefinitions").and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        return Err(ApiError::client("Container list cannot be empty."));
    };
    for c in containers {
        if c.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::client(
                "Container.name should not be null or empty.",
            ));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::client(
                "Container.image should not be null or empty.",
            ));
        }
    }
    let revision = st.families.get(&family).map_or(0, Vec::len) as u32 + 1;
    let td_arn = arn(&format!("task-definition/{family}:{revision}"));
    let mut body = Map::new();
    body.insert("taskDefinitionArn".into(), json!(td_arn));
    for (k, v) in obj {
        if k != "tags" {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert("revision".into(), json!(revision));
    body.insert("status".into(), json!("ACTIVE"));
    let body_v = Value::Object(body.clone());
    body.insert(
        "requiresAttributes".into(),
        json!(requires_attributes(&body_v)),
    );
    let mut compat = vec!["EXTERNAL", "EC2"];
    if s(req, "networkMode") == Some("awsvpc")
        && req.get("cpu").is_some()
        && req.get("memory").is_some()
    {
        compat.push("FARGATE");
    }
    body.insert("compatibilities".into(), json!(compat));
    body.insert("registeredAt".into(), json!(now()));
    body.insert(
        "registeredBy".into(),
        json!(format!("arn:aws:iam::{}:root", crate::state::ACCOUNT)),
    );
    let td = TaskDefinition {
        family: family.clone(),
        revision,
        arn: td_arn.clone(),
        body: Value::Object(body),
    };
    st.families.entry(family).or_default().push(td.clone());
    let tags = tags_of(req).unwrap_or_default();
    if !tags.is_empty() {
        merge_tags(st, &td_arn, tags.clone());
    }
    Ok(json!({"taskDefinition": td.body, "tags": tags}))
}

fn describe_task_definition(st: &mut State, req: &Value) -> ApiResult {
    let r = required(req, "taskDefinition")?;
    let td = find_task_definition(st, r)
        .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
    let mut v = json!({"taskDefinition": td.body});
    if includes_tags(req) {
        v["tags"] = json!(st.tags.get(&td.arn).cloned().unwrap_or_default());
    }
    Ok(v)
}

fn deregister_task_definition(st: &mut State, req: &Value) -> ApiResult {
    let r = required(req, "taskDefinition")?;
    if !r.contains(':') || find_task_definition(st, r).is_none() {
        return Err(ApiError::client(
            "The specified task definition does not exist.",
        ));
    }
    let (family, revision) = {
        let td = find_task_definition(st, r)
            .ok_or_else(|| ApiError::client("The specified task definition does not exist."))?;
        (td.family.clone(), td.revision)
    };
    let td = &mut st.families.get_mut(&family).expect("found above")[revision as usize - 1];
    td.body["status"] = json!("INACTIVE");
    td.body["deregisteredAt"] = json!(now());
    Ok(json!({"taskDefinition": td.body}))
}

fn list_task_definitions(st: &mut State, req: &Value) -> ApiResult {
    let status = s(req, "status").unwrap_or("ACTIVE");
    let prefix = s(req, "familyPrefix");
    let mut arns: Vec<&str> = st
        .families
        .iter()
        .filter(|(f, _)| prefix.is_none_or(|p| f.as_str() == p))
        .flat_map(|(_, tds)| tds.iter())
        .filter(|td| td.body["status"] == status)
        .map(|td| td.arn.as_str())
        .collect();
    if s(req, "sort") == Some("DESC") {
        arns.reverse();
    }
    paginate(req, arns, "taskDefinitionArns")
}

fn paginate(req: &Value, items: Vec<&str>, key: &str) -> ApiResult {
    let start: usize = s(req, "nextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let max = req.get("maxResults").and_then(Value::as_u64).unwrap_or(100) as usize;
    let page: Vec<&str> = items.iter().skip(start).take(max).copied().collect();
    let mut v = json!({ key: page });
    if start + max < items.len() {
        v["nextToken"] = json!((start + max).to_string());
    }
    Ok(v)
}

// ------------------------------------------------------------------ services --

fn default_deployment_configuration(given: Option<&Value>, base: Option<&Value>) -> Value {
    let mut v = base.cloned().unwrap_or_else(|| {
        json!({
            "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        })
    });
    if let Some(Value::Object(g)) = given {
        for (k, x) in g {
            v[k] = x.clone();
        }
    }
    v
}

fn service_key(req: &Value, key: &str) -> Result<String, ApiError> {
    Ok(last_segment(required(req, key)?).to_owned())
}

fn check_load_balancers(td: &TaskDefinition, lbs: &Value) -> Result<(), ApiError> {
    for lb in lbs.as_array().into_iter().flatten() {
        let name = lb
            .get("containerName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let port = lb.get("containerPort").and_then(Value::as_u64);
        let container = td.containers().into_iter().find(|c| c["name"] == name);
        let Some(container) = container else {
            return Err(ApiError::invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        let mapped = container
            .get("portMappings")
            .and_then(Value::as_array)
            .is_some_and(|pm| {
                pm.iter()
                    .any(|m| m.get("containerPort").and_then(Value::as_u64) == port)
            });
        if !mapped {
            return Err(ApiError::invalid(format!(
                "The container {name} did not have a container port {} defined.",
                port.unwrap_or(0)
            )));
        }
    }
    Ok(())
}

fn create_service(emu: &Emulator, req: &Value) -> ApiResult {
    let name = required(req, "serviceName")?.to_owned();
    let cluster = cluster_name(req).to_owned();
    let load_balancers = req
        .get("loadBalancers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let wants_lb = load_balancers.as_array().is_some_and(|a| !a.is_empty());
    {
        let mut st = emu.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let c = cluster_mut(st, req)?;
        if c.services.contains_key(&name) {
            return Err(ApiError::invalid("Creation of service was not idempotent."));
        }
        let td_ref = required(req, "taskDefinition")?;
        let td = find_task_definition(st, td_ref)
            .ok_or_else(|| ApiError::invalid("TaskDefinition not found."))?;
        if !td.active() {
            return Err(ApiError::invalid(format!(
                "TaskDefinition is inactive ({}).",
                td.arn
            )));
        }
        check_load_balancers(td, &load_balancers)?;
    }
    // The target-group stand-in: bound before the service exists so that a failure is an error.
    let lb_port = if wants_lb {
        Some(emu.bind_target_group(&cluster, &name).map_err(|e| {
            ApiError::new(
                "ServerException",
                format!("ecs-emulator: no load-balancer port free: {e:#}"),
            )
        })?)
    } else {
        None
    };
    let mut st = emu.state.lock().unwrap_or_else(|e| e.into_inner());
    let st = &mut *st;
    // A concurrent CreateService of the same name won the race while the port was bound.
    if st
        .clusters
        .get(&cluster)
        .is_none_or(|c| c.services.contains_key(&name))
    {
        if lb_port.is_some() {
            emu.release_target_group(&cluster, &name);
        }
        return Err(ApiError::invalid("Creation of service was not idempotent."));
    }
    let td_arn = find_task_definition(st, required(req, "taskDefinition")?)
        .map(|t| t.arn.clone())
        .unwrap_or_default();
    let mut extra = Map::new();
    for k in [
        "launchType",
        "networkConfiguration",
        "healthCheckGracePeriodSeconds",
        "placementConstraints",
        "placementStrategy",
        "propagateTags",
        "enableECSManagedTags",
        "enableExecuteCommand",
        "schedulingStrategy",
        "deploymentController",
        "platformVersion",
        "capacityProviderStrategy",
        "serviceRegistries",
    ] {
        if let Some(v) = req.get(k) {
            extra.insert(k.into(), v.clone());
        }
    }
    if !extra.contains_key("launchType") && !extra.contains_key("capacityProviderStrategy") {
        extra.insert("launchType".into(), json!("EC2"));
    }
    if let Some(role) = s(req, "role") {
        extra.insert("roleArn".into(), json!(role));
    }
    let svc_arn = arn(&format!("service/{cluster}/{name}"));
    let mut svc = Service {
        name: name.clone(),
        arn: svc_arn.clone(),
        cluster: cluster.clone(),
        desired_count: req.get("desiredCount").and_then(Value::as_u64).unwrap_or(0) as u32,
        status: "ACTIVE".into(),
        deployment_configuration: default_deployment_configuration(
            req.get("deploymentConfiguration"),
            None,
        ),
        load_balancers,
        lb_port,
        extra,
        created_at: now(),
        deployments: Vec::new(),
        events: Vec::new(),
        steady_reported: false,
        last_completed_task_definition: None,
    };
    svc.new_deployment(&td_arn);
    if let Some(tags) = tags_of(req) {
        merge_tags(st, &svc_arn, tags);
    }
    let c = cluster_mut(st, req)?;
    c.inactive_services.remove(&name);
    c.services.insert(name.clone(), svc);
    let svc = &st.clusters[&cluster].services[&name];
    Ok(json!({"service": st.service_json(svc)}))
}

fn list_services(st: &mut State, req: &Value) -> ApiResult {
    let c = st
        .clusters
        .get(cluster_name(req))
        .ok_or_else(ApiError::cluster_not_found)?;
    let launch_type = s(req, "launchType");
    let arns: Vec<&str> = c
        .services
        .values()
        .filter(|svc| svc.status == "ACTIVE")
        .filter(|svc| {
            launch_type
                .is_none_or(|l| svc.extra.get("launchType").and_then(Value::as_str) == Some(l))
        })
        .map(|svc| svc.arn.as_str())
        .collect();
    paginate(req, arns, "serviceArns")
}

fn describe_services(st: &mut State, req: &Value) -> ApiResult {
    let cluster = cluster_name(req).to_owned();
    let c = st
        .clusters
        .get(&cluster)
        .ok_or_else(ApiError::cluster_not_found)?;
    let names: Vec<&str> = req
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        return Err(ApiError::invalid("Services cannot be empty."));
    }
    if names.len() > 10 {
        return Err(ApiError::invalid(
            "Too many services specified. Maximum allowed is 10.",
        ));
    }
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for n in names {
        let n = last_segment(n);
        if let Some(svc) = c.services.get(n) {
            let mut v = st.service_json(svc);
            if includes_tags(req) {
                v["tags"] = json!(st.tags.get(&svc.arn).cloned().unwrap_or_default());
            }
            services.push(v);
        } else if let Some(v) = c.inactive_services.get(n) {
            services.push(v.clone());
        } else {
            failures
                .push(json!({"arn": arn(&format!("service/{cluster}/{n}")), "reason": "MISSING"}));
        }
    }
    Ok(json!({"services": services, "failures": failures}))
}

fn update_service(st: &mut State, req: &Value) -> ApiResult {
    let name = service_key(req, "service")?;
    let cluster = cluster_name(req).to_owned();
    let td_arn = match s(req, "taskDefinition") {
        Some(r) => {
            let td = find_task_definition(st, r)
                .ok_or_else(|| ApiError::invalid("TaskDefinition not found."))?;
            if !td.active() {
                return Err(ApiError::invalid(format!(
                    "TaskDefinition is inactive ({}).",
                    td.arn
                )));
            }
            Some(td.clone())
        }
        None => None,
    };
    let c = cluster_mut(st, req)?;
    let svc = c.services.get_mut(&name).ok_or_else(|| {
        if c.inactive_services.contains_key(&name) {
            ApiError::new("ServiceNotActiveException", "Service was not ACTIVE.")
        } else {
            ApiError::service_not_found()
        }
    })?;
    if svc.status != "ACTIVE" {
        return Err(ApiError::new(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    if let Some(td) = &td_arn
        && let Some(lbs) = req.get("loadBalancers").or(Some(&svc.load_balancers))
    {
        check_load_balancers(td, lbs)?;
    }
    if let Some(dc) = req.get("deploymentConfiguration") {
        svc.deployment_configuration =
            default_deployment_configuration(Some(dc), Some(&svc.deployment_configuration));
    }
    if let Some(k) = req.get("healthCheckGracePeriodSeconds") {
        svc.extra
            .insert("healthCheckGracePeriodSeconds".into(), k.clone());
    }
    if let Some(k) = req.get("networkConfiguration") {
        svc.extra.insert("networkConfiguration".into(), k.clone());
    }
    if let Some(n) = req.get("desiredCount").and_then(Value::as_u64) {
        let n = n as u32;
        if n != svc.desired_count {
            svc.desired_count = n;
            if let Some(p) = svc.deployments.first_mut() {
                p.desired_count = n;
                p.updated_at = now();
            }
            svc.steady_reported = false;
        }
    }
    let changed_td = td_arn
        .as_ref()
        .is_some_and(|td| td.arn != svc.task_definition());
    let force = req
        .get("forceNewDeployment")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if changed_td || force {
        let td = td_arn
            .map(|t| t.arn)
            .unwrap_or_else(|| svc.task_definition().to_owned());
        svc.new_deployment(&td);
    }
    let svc = &st.clusters[&cluster].services[&name];
    Ok(json!({"service": st.service_json(svc)}))
}

fn delete_service(emu: &Emulator, req: &Value) -> ApiResult {
    let name = service_key(req, "service")?;
    let cluster = cluster_name(req).to_owned();
    let force = req.get("force").and_then(Value::as_bool).unwrap_or(false);
    let v = {
        let mut st = emu.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let c = cluster_mut(st, req)?;
        let svc = c
            .services
            .get_mut(&name)
            .ok_or_else(ApiError::service_not_found)?;
        if svc.status != "ACTIVE" {
            return Err(ApiError::new(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        if svc.desired_count > 0 && !force {
            return Err(ApiError::invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        svc.status = "DRAINING".into();
        svc.desired_count = 0;
        for d in &mut svc.deployments {
            d.desired_count = 0;
        }
        let svc = &st.clusters[&cluster].services[&name];
        st.service_json(svc)
    };
    emu.release_target_group(&cluster, &name);
    Ok(json!({"service": v}))
}

// --------------------------------------------------------------------- tasks --

fn task_id(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

fn list_tasks(st: &mut State, req: &Value) -> ApiResult {
    let cluster = cluster_name(req).to_owned();
    let c = st
        .clusters
        .get(&cluster)
        .ok_or_else(ApiError::cluster_not_found)?;
    let service = s(req, "serviceName").map(last_segment);
    if let Some(n) = service
        && !c.services.contains_key(n)
        && !c.inactive_services.contains_key(n)
    {
        return Err(ApiError::service_not_found());
    }
    let desired = s(req, "desiredStatus").unwrap_or("RUNNING");
    let started_by = s(req, "startedBy");
    let family = s(req, "family");
    let launch_type = s(req, "launchType");
    let mut tasks: Vec<&crate::state::Task> = st
        .tasks
        .values()
        .filter(|t| t.cluster == cluster)
        .filter(|t| service.is_none_or(|n| t.service.as_deref() == Some(n)))
        .filter(|t| started_by.is_none_or(|b| t.started_by.as_deref() == Some(b)))
        .filter(|t| {
            family.is_none_or(|f| {
                t.task_definition_arn
                    .contains(&format!("task-definition/{f}:"))
            })
        })
        .filter(|t| launch_type.is_none_or(|l| t.launch_type == l))
        .filter(|t| t.desired_status == desired)
        .collect();
    tasks.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    paginate(
        req,
        tasks.iter().map(|t| t.arn.as_str()).collect(),
        "taskArns",
    )
}

fn describe_tasks(st: &mut State, req: &Value) -> ApiResult {
    let cluster = cluster_name(req).to_owned();
    if !st.clusters.contains_key(&cluster) {
        return Err(ApiError::cluster_not_found());
    }
    let refs: Vec<&str> = req
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if refs.is_empty() {
        return Err(ApiError::invalid("Tasks cannot be empty."));
    }
    if refs.len() > 100 {
        return Err(ApiError::invalid(
            "Too many tasks specified. Maximum allowed is 100.",
        ));
    }
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for r in refs {
        match st.tasks.get(task_id(r)).filter(|t| t.cluster == cluster) {
            Some(t) => tasks.push(t.to_json(if includes_tags(req) {
                st.tags.get(&t.arn)
            } else {
                None
            })),
            None => failures.push(
                json!({"arn": arn(&format!("task/{cluster}/{}", task_id(r))), "reason": "MISSING"}),
            ),
        }
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

fn stop_task(st: &mut State, req: &Value) -> ApiResult {
    let cluster = cluster_name(req).to_owned();
    if !st.clusters.contains_key(&cluster) {
        return Err(ApiError::cluster_not_found());
    }
    let id = task_id(required(req, "task")?).to_owned();
    let reason = s(req, "reason")
        .unwrap_or("Task stopped by user")
        .to_owned();
    let t = st
        .tasks
        .get_mut(&id)
        .filter(|t| t.cluster == cluster)
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    t.begin_stop("UserInitiated", &reason, false);
    Ok(json!({"task": t.to_json(None)}))
}

// ---------------------------------------------------------------------- tags --

fn resource_exists(st: &State, resource: &str) -> bool {
    st.clusters
        .values()
        .any(|c| c.arn == resource || c.services.values().any(|s| s.arn == resource))
        || st.families.values().flatten().any(|td| td.arn == resource)
        || st.tasks.values().any(|t| t.arn == resource)
}

fn tag_resource(st: &mut State, req: &Value) -> ApiResult {
    let resource = required(req, "resourceArn")?.to_owned();
    if !resource_exists(st, &resource) {
        return Err(ApiError::invalid(
            "The specified resource could not be found.",
        ));
    }
    merge_tags(st, &resource, tags_of(req).unwrap_or_default());
    Ok(json!({}))
}

fn untag_resource(st: &mut State, req: &Value) -> ApiResult {
    let resource = required(req, "resourceArn")?.to_owned();
    if !resource_exists(st, &resource) {
        return Err(ApiError::invalid(
            "The specified resource could not be found.",
        ));
    }
    let keys: Vec<Value> = req
        .get("tagKeys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(tags) = st.tags.get_mut(&resource) {
        tags.retain(|t| !keys.contains(&t["key"]));
    }
    Ok(json!({}))
}

fn list_tags_for_resource(st: &mut State, req: &Value) -> ApiResult {
    let resource = required(req, "resourceArn")?;
    if !resource_exists(st, resource) {
        return Err(ApiError::invalid(
            "The specified resource could not be found.",
        ));
    }
    Ok(json!({"tags": st.tags.get(resource).cloned().unwrap_or_default()}))
}
