//! HTTPS per cluster: authentication, routing of the Kubernetes REST paths to discovery,
//! OpenAPI and the verbs, content negotiation (JSON or Table).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::propagation::Policy;
use crate::resources::{self, ResourceType};
use crate::status::ApiError;
use crate::store::{Cluster, WriteOptions};
use crate::table::{self, Include};
use crate::{auth, discovery, managed, merge, openapi, schema, time, watch};

pub type Body = BoxBody<Bytes, Infallible>;

/// What every request of one cluster shares.
pub struct Served {
    pub cluster: Arc<Cluster>,
    /// Checks EKS (`k8s-aws-v1.`) tokens.
    pub eks: Arc<crate::eks::Authenticator>,
    /// The node's kubelet (pods/log), None without the Docker Engine.
    pub kubelet: Option<Arc<crate::kubelet::Kubelet>>,
    pub token: String,
    /// `https://127.0.0.1:PORT`.
    pub address: String,
}

/// Accepts TLS connections until the task is aborted.
pub async fn serve(served: Arc<Served>, listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let served = served.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| handle(served.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// A JSON answer.
pub fn json_response(status: u16, body: &Value, content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json")
}

const TABLE_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// The parsed parts of a request the verbs need.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept_table: bool,
    pub content_type: String,
    pub user_agent: String,
    pub body: Bytes,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true") | Some("1"))
    }

    fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
    }

    /// `fieldManager`, else what the API server derives from the User-Agent (`kubectl`).
    fn manager(&self) -> String {
        match self.q("fieldManager") {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => self.user_agent.split('/').next().unwrap_or("").to_owned(),
        }
    }
}

async fn handle(served: Arc<Served>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let authorization = header("authorization");
    let mut authorized = auth::bearer_ok(Some(&authorization), &served.token);
    if let Some(token) = authorization
        .strip_prefix("Bearer ")
        .filter(|t| t.starts_with("k8s-aws-v1."))
    {
        match served
            .eks
            .authenticate(token.trim(), &served.cluster.name)
            .await
        {
            Ok(arn) => {
                tracing::debug!("{}: EKS token of {arn}", served.cluster.name);
                authorized = true;
            }
            Err(e) => tracing::info!("{}: EKS token refused: {e:#}", served.cluster.name),
        }
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let accept = header("accept");
    let r = Req {
        method: req.method().clone(),
        path: if path.is_empty() { "/".into() } else { path },
        query,
        accept_table: accept.contains("as=Table"),
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        body: Bytes::new(),
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let r = Req { body, ..r };
    if !authorized && !auth::anonymous_ok(&r.path) {
        tracing::info!("{}: {} {}: 401", served.cluster.name, r.method, r.path);
        return Ok(error_response(&ApiError::unauthorized()));
    }
    let response = route(&served, &r).await.unwrap_or_else(|e| {
        tracing::info!(
            "{}: {} {}: {} {}",
            served.cluster.name,
            r.method,
            r.path,
            e.code,
            e.message
        );
        error_response(&e)
    });
    tracing::debug!(
        "{}: {} {} -> {}",
        served.cluster.name,
        r.method,
        r.path,
        response.status()
    );
    Ok(response)
}

/// A resource request: which type, namespace, name and subresource the path names.
struct Target {
    rt: &'static ResourceType,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(cluster: &str, path: &str) -> Option<Result<Target, ApiError>> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let is_plural = |p: &str| resources::find_in(cluster, group, version, p).is_some();
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..]
            if is_plural(plural) && *plural != "namespaces"
                || (*plural == "namespaces" && !more.is_empty()) =>
        {
            (ns.to_string(), &rest[2..])
        }
        _ => (String::new(), rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Some(Err(ApiError::no_route(path))),
    };
    let Some(rt) = resources::find_in(cluster, group, version, plural) else {
        return Some(Err(ApiError::no_route(path)));
    };
    let cluster_scoped_in_namespace = !rt.namespaced && !namespace.is_empty();
    let namespaced_object_without_namespace =
        rt.namespaced && namespace.is_empty() && name.is_some();
    if cluster_scoped_in_namespace || namespaced_object_without_namespace {
        return Some(Err(ApiError::no_route(path)));
    }
    Some(Ok(Target {
        rt,
        namespace,
        name,
        subresource: sub,
    }))
}

async fn route(served: &Served, r: &Req) -> Result<Response<Body>, ApiError> {
    const JSON: &str = "application/json";
    if r.method == Method::GET {
        let fixed = match r.path.as_str() {
            "/version" => Some(discovery::version()),
            "/api" => Some(discovery::core_versions(&served.address)),
            "/apis" => Some(discovery::groups(&served.cluster.name)),
            "/openapi/v3" => Some(openapi::root()),
            "/healthz" | "/readyz" | "/livez" => {
                let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/plain"));
                return Ok(resp);
            }
            _ => None,
        };
        if let Some(v) = fixed {
            return Ok(json_response(200, &v, JSON));
        }
        if let Some(p) = r.path.strip_prefix("/openapi/v3/") {
            return openapi::document(p)
                .map(|d| json_response(200, &d, JSON))
                .ok_or_else(|| ApiError::no_route(&r.path));
        }
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let gv = match segs.as_slice() {
            ["api", v] => Some(("", *v)),
            ["apis", g, v] => Some((*g, *v)),
            _ => None,
        };
        if let Some((g, v)) = gv {
            return discovery::resource_list(&served.cluster.name, g, v)
                .map(|d| json_response(200, &d, JSON))
                .ok_or_else(|| ApiError::no_route(&r.path));
        }
        if let ["apis", g] = segs.as_slice() {
            let groups = discovery::groups(&served.cluster.name);
            return groups["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == *g).cloned())
                .map(|mut x| {
                    x["kind"] = json!("APIGroup");
                    x["apiVersion"] = json!("v1");
                    json_response(200, &x, JSON)
                })
                .ok_or_else(|| ApiError::no_route(&r.path));
        }
    }
    let target = match parse_target(&served.cluster.name, &r.path) {
        Some(t) => t?,
        None => return Err(ApiError::no_route(&r.path)),
    };
    verb(served, r, &target).await
}

async fn verb(served: &Served, r: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let c = &served.cluster;
    let rt = t.rt;
    let sub = t.subresource.clone().unwrap_or_default();
    let served_subresource = sub.is_empty() || sub == "status" && rt.has_status;
    if !served_subresource {
        if sub == "log" && rt.kind == "Pod" && r.method == Method::GET {
            return pod_log(served, &t.namespace, t.name.as_deref().unwrap_or(""), r).await;
        }
        return Err(ApiError::no_route(&r.path));
    }
    let opts = WriteOptions {
        dry_run: r.dry_run(),
        manager: r.manager(),
        subresource: sub.clone(),
    };
    match (&r.method, &t.name) {
        (&Method::GET, None) if r.flag("watch") => watch::serve(c.clone(), rt, &t.namespace, r),
        (&Method::GET, None) => list(c, rt, &t.namespace, r),
        (&Method::GET, Some(name)) => {
            let obj = c.get(rt, &t.namespace, name)?;
            Ok(object_response(200, rt, &obj, r))
        }
        (&Method::POST, None) => {
            let obj = parse_body(r)?;
            let warnings = validate(rt, &obj, r, false)?;
            let created = c.create(rt, &t.namespace, obj, &opts)?;
            Ok(with_warnings(
                object_response(201, rt, &created, r),
                &warnings,
            ))
        }
        (&Method::PUT, Some(name)) => {
            let obj = parse_body(r)?;
            let warnings = validate(rt, &obj, r, false)?;
            let updated = c.update(rt, &t.namespace, name, obj, &opts)?;
            Ok(with_warnings(
                object_response(200, rt, &updated, r),
                &warnings,
            ))
        }
        (&Method::PATCH, Some(name)) => patch(c, rt, &t.namespace, name, r, &opts),
        (&Method::DELETE, Some(name)) => {
            let policy = Policy::from_request(r.q("propagationPolicy"), &r.body)?;
            let gone = c.delete_with(rt, &t.namespace, name, &opts, policy.finalizer())?;
            Ok(object_response(200, rt, &gone, r))
        }
        (&Method::DELETE, None) => {
            let keep = selector_filter(r)?;
            let policy = Policy::from_request(r.q("propagationPolicy"), &r.body)?;
            let listed = c.list(rt, &t.namespace, &*keep, None, None);
            let mut items = Vec::new();
            for obj in listed.items {
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
                if let Ok(gone) = c.delete_with(rt, &ns, &name, &opts, policy.finalizer()) {
                    items.push(gone);
                }
            }
            Ok(json_response(
                200,
                &list_json(rt, items, c.resource_version(), None),
                "application/json",
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            r.method, r.path
        ))),
    }
}

/// `GET .../pods/<name>/log` (`container`, `tailLines`; `follow` answers what there is so far).
async fn pod_log(
    served: &Served,
    ns: &str,
    name: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let pods = resources::by_kind("v1", "Pod").expect("pods are built in");
    let pod = served.cluster.get(pods, ns, name)?;
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = match (r.q("container"), containers.as_slice()) {
        (Some(c), _) => c.to_owned(),
        (None, [one]) => (*one).to_owned(),
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if !containers.contains(&container.as_str()) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let tail = r.q("tailLines").and_then(|t| t.parse::<u64>().ok());
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let text = match &served.kubelet {
        Some(k) => k.logs(uid, &container, tail).await,
        None => None,
    };
    let Some(text) = text else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed());
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn parse_body(r: &Req) -> Result<Value, ApiError> {
    if r.content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        // kubectl's typed clients (`kubectl create configmap ...`) send protobuf.
        return Err(ApiError::unsupported_body(&r.content_type));
    }
    serde_json::from_slice(&r.body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e} (YAML bodies other than JSON are not supported by the emulator)"))
    })
}

/// A scalar of the wrong JSON type cannot be decoded, whatever `fieldValidation` says: 400, in
/// the words of the API server's decoder (server-side apply: of its typed patch).
fn check_types(rt: &ResourceType, obj: &Value, apply: bool) -> Result<(), ApiError> {
    let Some(wrong) = schema::wrong_types(rt.kind, obj).into_iter().next() else {
        return Ok(());
    };
    let (kind, version) = (rt.kind, rt.api_version());
    Err(ApiError::bad_request(match apply {
        true => format!(
            "failed to create typed patch object ({}/{}; {version}, Kind={kind}): .{}: expected {}, got {}",
            obj["metadata"]["namespace"].as_str().unwrap_or(""),
            obj["metadata"]["name"].as_str().unwrap_or(""),
            wrong.path,
            wrong.expected,
            wrong.got
        ),
        false => format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal {} into Go struct field .{} of type {}",
            wrong.got, wrong.path, wrong.expected
        ),
    }))
}

/// `fieldValidation`: Strict refuses unknown fields (422 for apply, 400 otherwise), Warn (the
/// default) answers them as warnings, Ignore says nothing.
fn validate(rt: &ResourceType, obj: &Value, r: &Req, apply: bool) -> Result<Vec<String>, ApiError> {
    check_types(rt, obj, apply)?;
    let unknown = schema::unknown_fields(rt.kind, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    match r.q("fieldValidation").unwrap_or("Warn") {
        "Strict" if apply => {
            let name = obj["metadata"]["name"].as_str().unwrap_or("");
            Err(ApiError::undeclared_fields(rt, name, &unknown))
        }
        "Strict" => {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                rt.kind,
                rt.api_version(),
                rt.kind,
                list.join(", ")
            )))
        }
        "Ignore" => Ok(Vec::new()),
        _ => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()),
    }
}

fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "\\\""))) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

fn patch(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    r: &Req,
    opts: &WriteOptions,
) -> Result<Response<Body>, ApiError> {
    let ct = r
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let body = parse_body(r)?;
    let now = time::now();
    let api_version = rt.api_version();
    let warnings;
    let (obj, created) = match ct.as_str() {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            if r.q("fieldManager").unwrap_or("").is_empty() {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requests must have a fieldManager",
                ));
            }
            warnings = validate(rt, &body, r, true)?;
            let force = r.flag("force");
            let req = managed::ApplyRequest {
                manager: &opts.manager,
                force,
                api_version: &api_version,
                now: &now,
                subresource: &opts.subresource,
            };
            c.modify(rt, ns, name, opts, &|live| {
                let skeleton;
                let base = match live {
                    Some(l) => l,
                    None => {
                        let mut s = json!({"apiVersion": api_version, "kind": rt.kind, "metadata": {"name": name}});
                        if rt.namespaced {
                            s["metadata"]["namespace"] = json!(ns);
                        }
                        skeleton = s;
                        &skeleton
                    }
                };
                managed::apply(base, &body, &req).map_err(|conflicts| ApiError::field_conflicts(&conflicts, name, rt.group, rt.plural))
            })?
        }
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => {
            warnings = Vec::new();
            c.modify(rt, ns, name, opts, &|live| {
                let live = live.ok_or_else(|| {
                    ApiError::not_found(&rt.qualified(), name, rt.group, rt.plural)
                })?;
                let mut new = live.clone();
                match ct.as_str() {
                    "application/merge-patch+json" => merge::json_merge(&mut new, &body),
                    "application/strategic-merge-patch+json" => {
                        merge::strategic_merge(&mut new, &body)
                    }
                    _ => merge::json_patch(&mut new, &body).map_err(ApiError::bad_request)?,
                }
                check_types(rt, &new, false)?;
                let unknown = schema::unknown_fields(rt.kind, &new);
                if !unknown.is_empty() && r.q("fieldValidation") == Some("Strict") {
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: unknown field \"{}\"",
                        unknown[0]
                    )));
                }
                managed::record_update(
                    live,
                    &mut new,
                    &opts.manager,
                    &api_version,
                    &now,
                    &opts.subresource,
                );
                Ok(new)
            })?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(with_warnings(
        object_response(if created { 201 } else { 200 }, rt, &obj, r),
        &warnings,
    ))
}

/// Which objects a list or watch keeps.
pub type Filter = Box<dyn Fn(&Value) -> bool + Send + Sync>;

/// The label and field selectors of a request, as one filter.
pub fn selector_filter(r: &Req) -> Result<Filter, ApiError> {
    let labels = crate::selectors::parse_labels(r.q("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = crate::selectors::parse_fields(r.q("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok(Box::new(move |obj: &Value| {
        crate::selectors::labels_match(&labels, obj["metadata"].get("labels"))
            && crate::selectors::fields_match(&fields, obj)
    }))
}

fn list_json(rt: &ResourceType, items: Vec<Value>, rv: u64, continue_token: Option<&str>) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": items})
}

fn list(c: &Cluster, rt: &ResourceType, ns: &str, r: &Req) -> Result<Response<Body>, ApiError> {
    let keep = selector_filter(r)?;
    let limit = r
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let listed = c.list(
        rt,
        ns,
        &*keep,
        limit,
        r.q("continue").filter(|s| !s.is_empty()),
    );
    if r.accept_table {
        let t = table::table(
            table::kind_of(rt),
            &listed.items,
            Include::parse(r.q("includeObject")),
            &listed.resource_version.to_string(),
            listed.continue_token.as_deref(),
            true,
        );
        return Ok(json_response(200, &t, TABLE_TYPE));
    }
    let body = list_json(
        rt,
        listed.items,
        listed.resource_version,
        listed.continue_token.as_deref(),
    );
    Ok(json_response(200, &body, "application/json"))
}

fn object_response(status: u16, rt: &ResourceType, obj: &Value, r: &Req) -> Response<Body> {
    if r.accept_table && r.method == Method::GET {
        let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or("");
        let t = table::table(
            table::kind_of(rt),
            std::slice::from_ref(obj),
            Include::parse(r.q("includeObject")),
            rv,
            None,
            true,
        );
        return json_response(status, &t, TABLE_TYPE);
    }
    json_response(status, obj, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_type_namespace_name_and_subresource() {
        let t = parse_target("t", "/apis/apps/v1/namespaces/web/deployments/api/status")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                t.rt.kind,
                t.namespace.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("Deployment", "web", Some("api"), Some("status"))
        );
        let t = parse_target("t", "/api/v1/namespaces/web")
            .unwrap()
            .unwrap();
        assert_eq!((t.rt.kind, t.name.as_deref()), ("Namespace", Some("web")));
        let t = parse_target("t", "/api/v1/namespaces/web/status")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.rt.kind, t.subresource.as_deref()),
            ("Namespace", Some("status"))
        );
        let t = parse_target("t", "/api/v1/pods").unwrap().unwrap();
        assert_eq!((t.rt.kind, t.namespace.as_str(), t.name), ("Pod", "", None));
        assert!(
            parse_target("t", "/api/v1/pods/x").unwrap().is_err(),
            "a namespaced object needs its namespace"
        );
        assert!(parse_target("t", "/api/v1/nope").unwrap().is_err());
        assert!(parse_target("t", "/version").is_none());
    }
}
