//! Every call to the Kubernetes API (kube-rs), with one-line errors: connecting through the
//! kubeconfig, discovery, reading, server-side apply (real and dry run), restoring, deleting,
//! pods and their logs. Objects travel as JSON values so the deciding modules stay plain.

use crate::eks;
use crate::request::Request;
use common::Ui;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, Config};
use serde_json::Value;

/// The field manager k8s-apply applies as.
pub const FIELD_MANAGER: &str = "k8s-apply";

/// A call to the API that failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig is missing, unreadable, or names no usable context.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// Discovery (`/api`, `/apis`) failed: the cluster cannot be reached or refused us.
    #[error("cannot discover the cluster's API at {server}: {}", api_line(.source))]
    Discovery {
        server: String,
        #[source]
        source: kube::Error,
    },
    /// Another field manager owns fields this apply sets (HTTP 409 on an apply).
    #[error("{what}: {message}")]
    Conflict { what: String, message: String },
    /// The API refused the object (400/422): it is the manifest's fault.
    #[error("{what}: {message}")]
    Refused { what: String, message: String },
    /// Any other failed call.
    #[error("{what}: {}", api_line(.source))]
    Call {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// A kube-rs error on one line: an API `Status` as its message, code and reason (kube-rs's own
/// Display repeats them inside a debug dump), with what to do about a 401 or 403.
fn api_line(err: &kube::Error) -> String {
    let kube::Error::Api(status) = err else {
        return err.to_string();
    };
    let said = format!("{} ({} {})", status.message, status.code, status.reason);
    match status.code {
        401 => format!(
            "{said}: the cluster does not accept these credentials — with --eks-cluster, the \
             AWS identity must be a user of the cluster (an EKS access entry, or the aws-auth \
             ConfigMap); with a kubeconfig, renew its user's token or certificate"
        ),
        403 => format!("{said}: the user may not do this; its Role or ClusterRole must allow it"),
        _ => said,
    }
}

impl KubeError {
    fn of_call(what: String, source: kube::Error) -> KubeError {
        match &source {
            kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict" => {
                KubeError::Conflict {
                    what,
                    message: status.message.clone(),
                }
            }
            kube::Error::Api(status) if matches!(status.code, 400 | 422) => KubeError::Refused {
                what,
                message: status.message.clone(),
            },
            _ => KubeError::Call { what, source },
        }
    }

    /// Whether the API answered 404 (the object, or its namespace, does not exist).
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Call { source: kube::Error::Api(s), .. } if s.code == 404)
    }
}

impl From<KubeError> for common::Error {
    fn from(err: KubeError) -> Self {
        match err {
            KubeError::Kubeconfig(_) => common::Error::usage(err),
            _ => common::Error::failed(err),
        }
    }
}

/// Which object: its resource type, namespace and name.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    /// Absent for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// `Kind namespace/name`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name),
            None => format!("{} {}", self.resource.kind, self.name),
        }
    }
}

/// A resolved kind: its resource type and whether it is namespaced.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// A connected cluster, with its discovery.
pub struct Cluster {
    /// Replaced when an EKS token is renewed.
    client: std::sync::RwLock<Client>,
    /// `--eks-cluster`: how to make the next token.
    renewal: Option<Renewal>,
    /// Replaced when the apply has created CRDs (their kinds are served from then on).
    discovery: std::sync::RwLock<Discovery>,
    /// The API groups discovery asks for (none: all of them).
    groups: Vec<String>,
    /// The kubeconfig context used.
    pub context: String,
    /// The context's cluster name (`deployments[].cluster`).
    pub name: String,
    /// The context's namespace, else `default`.
    pub default_namespace: String,
}

impl Cluster {
    /// Connects to the cluster `request` names: `--eks-cluster` through the EKS API, else
    /// the kubeconfig. Discovery asks only for the API `groups` the manifests use (`""` is
    /// the core group).
    pub async fn connect(request: &Request, groups: &[&str], ui: &Ui) -> common::Result<Cluster> {
        let Some(name) = &request.eks_cluster else {
            let kubeconfig =
                Kubeconfig::read().map_err(|e| KubeError::Kubeconfig(e.to_string()))?;
            return Ok(
                Cluster::from_kubeconfig(kubeconfig, request.context.as_deref(), groups).await?,
            );
        };
        let config = common::aws::load().await?;
        let eks = eks::describe(&config, name).await?;
        let token = eks::token_for(&config, name).await?;
        ui.mask(&token);
        let kubeconfig = Kubeconfig::from_yaml(&eks::kubeconfig(&eks, &token))
            .map_err(|e| KubeError::Kubeconfig(format!("the EKS cluster {name}: {e}")))?;
        let mut cluster = Cluster::from_kubeconfig(kubeconfig, None, groups).await?;
        cluster.name = name.clone();
        cluster.renewal = Some(Renewal {
            config,
            eks,
            ui: ui.clone(),
            made: std::sync::Mutex::new(std::time::Instant::now()),
        });
        Ok(cluster)
    }

    /// The client, with a fresh EKS token once the one in use is due for renewal (a wait can
    /// outlast a token's 15 minutes). A renewal that fails keeps the old token and says so.
    async fn client(&self) -> Client {
        if let Some(renewal) = &self.renewal
            && renewal.due()
        {
            match renewal.new_client().await {
                Ok(client) => {
                    if let Ok(mut current) = self.client.write() {
                        *current = client;
                    }
                }
                Err(e) => tracing::warn!("cannot renew the EKS token: {e}"),
            }
        }
        match self.client.read() {
            Ok(client) => client.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Connects through `kubeconfig` with `context` (else its current one) and runs
    /// discovery.
    pub async fn from_kubeconfig(
        kubeconfig: Kubeconfig,
        context: Option<&str>,
        groups: &[&str],
    ) -> Result<Cluster, KubeError> {
        let chosen = match context {
            Some(name) => name.to_owned(),
            None => kubeconfig.current_context.clone().ok_or_else(|| {
                KubeError::Kubeconfig("no current context; give --context".into())
            })?,
        };
        let named = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == chosen)
            .ok_or_else(|| {
                let known: Vec<&str> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                KubeError::Kubeconfig(format!(
                    "no context {chosen:?} (it has: {})",
                    known.join(", ")
                ))
            })?;
        let name = named
            .context
            .as_ref()
            .map_or_else(|| chosen.clone(), |c| c.cluster.clone());
        let options = KubeConfigOptions {
            context: Some(chosen.clone()),
            cluster: None,
            user: None,
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| KubeError::Kubeconfig(format!("context {chosen}: {e}")))?;
        let server = config.cluster_url.to_string();
        let default_namespace = config.default_namespace.clone();
        let client = crate::transient::client(config).map_err(|source| KubeError::Discovery {
            server: server.clone(),
            source,
        })?;
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let discovery = discover(client.clone(), &groups)
            .await
            .map_err(|source| KubeError::Discovery { server, source })?;
        Ok(Cluster {
            client: std::sync::RwLock::new(client),
            renewal: None,
            discovery: std::sync::RwLock::new(discovery),
            groups,
            context: chosen,
            name,
            default_namespace,
        })
    }

    /// Runs discovery again (the same groups), so that the kinds of CRDs established since
    /// are resolved.
    pub async fn rediscover(&self) -> Result<(), KubeError> {
        let client = self.client().await;
        let discovery = discover(client, &self.groups)
            .await
            .map_err(|source| KubeError::Call {
                what: "discovering the API again".into(),
                source,
            })?;
        match self.discovery.write() {
            Ok(mut current) => *current = discovery,
            Err(poisoned) => *poisoned.into_inner() = discovery,
        }
        Ok(())
    }

    fn discovery(&self) -> std::sync::RwLockReadGuard<'_, Discovery> {
        self.discovery
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The resource type of `apiVersion`/`kind`, when the cluster serves it.
    pub fn resolve(&self, group: &str, version: &str, kind: &str) -> Option<Resolved> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        self.discovery()
            .resolve_gvk(&gvk)
            .map(|(resource, caps)| Resolved {
                resource,
                namespaced: caps.scope == Scope::Namespaced,
            })
    }

    /// The resource type of `kind` in `group` at the version the cluster prefers.
    pub fn resolve_group_kind(&self, group: &str, kind: &str) -> Option<Resolved> {
        let (resource, caps) = self.discovery().get(group)?.recommended_kind(kind)?;
        Some(Resolved {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        })
    }

    /// The names of the objects of `resource` in `namespace` (all, for a cluster-scoped
    /// kind) that `selector` selects.
    pub async fn names_labelled(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<String>, KubeError> {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client().await, ns, resource),
            None => Api::all_with(self.client().await, resource),
        };
        match api.list(&ListParams::default().labels(selector)).await {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect()),
            // A namespace that is gone has nothing left to prune.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
            Err(e) => Err(KubeError::of_call(
                format!("listing {}", resource.plural),
                e,
            )),
        }
    }

    async fn api(&self, target: &Target) -> Api<DynamicObject> {
        let client = self.client().await;
        match &target.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &target.resource),
            None => Api::all_with(client, &target.resource),
        }
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, target: &Target) -> Result<Option<Value>, KubeError> {
        let found = self
            .api(target)
            .await
            .get_opt(&target.name)
            .await
            .map_err(|e| KubeError::of_call(format!("reading {}", target.display()), e))?;
        Ok(found.map(to_value))
    }

    /// The changes to one object after `resource_version`, as the API server streams them (a
    /// watch on its name, what `kubectl rollout status` keeps open); the stream ends when the
    /// server closes the watch (at the latest after 290 s, as kubectl asks).
    pub async fn changes(
        &self,
        target: &Target,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<DynamicObject>, kube::Error>>, KubeError> {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", target.name))
            .timeout(290);
        let changes = self
            .api(target)
            .await
            .watch(&params, resource_version)
            .await
            .map_err(|e| KubeError::of_call(format!("watching {}", target.display()), e))?;
        Ok(changes.boxed())
    }

    /// Every object of `resource` in `namespace` (all, for a cluster-scoped kind), each with
    /// its `apiVersion` and `kind` as a GET gives them (list items may omit them). A namespace
    /// that does not exist yet has none.
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client().await, ns, resource),
            None => Api::all_with(self.client().await, resource),
        };
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => {
                let scope = namespace.map(|ns| format!(" in {ns}")).unwrap_or_default();
                let what = format!("listing {}{scope}", resource.plural);
                return Err(KubeError::of_call(what, e));
            }
        };
        let types = kube::core::TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        };
        Ok(items
            .into_iter()
            .map(|mut object| {
                object.types = Some(types.clone());
                to_value(object)
            })
            .collect())
    }

    /// Server-side apply of `object` as [`FIELD_MANAGER`]; what the server made of it.
    pub async fn apply(
        &self,
        target: &Target,
        object: &Value,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, KubeError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        let what = match dry_run {
            true => format!("dry-run applying {}", target.display()),
            false => format!("applying {}", target.display()),
        };
        self.api(target)
            .await
            .patch(&target.name, &params, &Patch::Apply(object))
            .await
            .map(to_value)
            .map_err(|e| KubeError::of_call(what, e))
    }

    /// Puts `object` back in place of the live one (a rollback), whole.
    pub async fn replace(&self, target: &Target, object: &Value) -> Result<Value, KubeError> {
        let what = format!("restoring {}", target.display());
        let typed: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| KubeError::Refused {
                what: what.clone(),
                message: e.to_string(),
            })?;
        self.api(target)
            .await
            .replace(&target.name, &PostParams::default(), &typed)
            .await
            .map(to_value)
            .map_err(|e| KubeError::of_call(what, e))
    }

    /// Deletes the object (gone already counts as deleted).
    pub async fn delete(&self, target: &Target) -> Result<(), KubeError> {
        match self
            .api(target)
            .await
            .delete(&target.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(KubeError::of_call(
                format!("deleting {}", target.display()),
                e,
            )),
        }
    }

    /// The pods of `namespace` that `selector` (a label selector) selects.
    pub async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client().await, namespace);
        api.list(&ListParams::default().labels(selector))
            .await
            .map(|list| list.items)
            .map_err(|e| KubeError::of_call(format!("listing pods in {namespace}"), e))
    }

    /// Deletes the pods of `namespace` that `selector` selects; how many there were.
    pub async fn delete_pods(&self, namespace: &str, selector: &str) -> Result<usize, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client().await, namespace);
        let pods = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| KubeError::of_call(format!("listing pods in {namespace}"), e))?;
        for pod in &pods.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(KubeError::of_call(
                        format!("deleting pod {namespace}/{name}"),
                        e,
                    ));
                }
            }
        }
        Ok(pods.items.len())
    }

    /// The ReplicaSets of `namespace` that `selector` selects.
    pub async fn replica_sets(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<ReplicaSet>, KubeError> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client().await, namespace);
        api.list(&ListParams::default().labels(selector))
            .await
            .map(|list| list.items)
            .map_err(|e| KubeError::of_call(format!("listing replica sets in {namespace}"), e))
    }

    /// The last `lines` log lines of `container`'s previous run (a crashed container's).
    pub async fn last_logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        lines: i64,
    ) -> Result<Vec<String>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client().await, namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            previous: true,
            tail_lines: Some(lines),
            ..LogParams::default()
        };
        api.logs(pod, &params)
            .await
            .map(|text| text.lines().map(str::to_owned).collect())
            .map_err(|e| KubeError::of_call(format!("reading the logs of {pod}/{container}"), e))
    }
}

/// What makes the next EKS token.
struct Renewal {
    config: common::aws::SdkConfig,
    eks: eks::EksCluster,
    ui: Ui,
    made: std::sync::Mutex<std::time::Instant>,
}

impl Renewal {
    fn due(&self) -> bool {
        self.made
            .lock()
            .map(|made| eks::renewal_due(made.elapsed()))
            .unwrap_or(true)
    }

    async fn new_client(&self) -> Result<Client, String> {
        let token = eks::token_for(&self.config, &self.eks.name)
            .await
            .map_err(|e| e.to_string())?;
        self.ui.mask(&token);
        let kubeconfig = Kubeconfig::from_yaml(&eks::kubeconfig(&self.eks, &token))
            .map_err(|e| e.to_string())?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = crate::transient::client(config).map_err(|e| e.to_string())?;
        if let Ok(mut made) = self.made.lock() {
            *made = std::time::Instant::now();
        }
        Ok(client)
    }
}

/// Seeds the TLS library's random generator now, on a thread of its own. AWS-LC seeds it
/// from CPU jitter the first time it is used, which takes some 25 ms of CPU; started first
/// thing, that overlaps with reading the manifests instead of holding up the first
/// connection.
pub fn seed_tls_random() {
    std::thread::spawn(|| {
        let random = rustls::crypto::aws_lc_rs::default_provider().secure_random;
        let _ = random.fill(&mut [0u8; 16]);
    });
}

/// Discovery of `groups` (none named: all of them; pruning looks for kinds the manifests no
/// longer have).
async fn discover(client: Client, groups: &[String]) -> Result<Discovery, kube::Error> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    match groups.as_slice() {
        [] => Discovery::new(client).run().await,
        groups => Discovery::new(client).filter(groups).run().await,
    }
}

fn to_value(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

#[cfg(test)]
mod api_line_tests {
    use super::api_line;
    use kube::core::ErrorResponse;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(ErrorResponse {
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            code,
        })
    }

    #[test]
    fn api_errors_read_as_one_line_and_say_what_to_do_about_auth() {
        assert_eq!(
            api_line(&api(404, "NotFound", "namespaces \"shop\" not found")),
            "namespaces \"shop\" not found (404 NotFound)"
        );
        let unauthorized = api_line(&api(401, "Unauthorized", "Unauthorized"));
        assert!(unauthorized.starts_with("Unauthorized (401 Unauthorized): "));
        assert!(unauthorized.contains("EKS access entry"), "{unauthorized}");
        assert!(!unauthorized.contains("ErrorResponse"), "{unauthorized}");
    }
}
