//! One cluster's state: objects as JSON, a monotonic resourceVersion, the event history that
//! watches replay, and the write path every verb shares (defaults, generation, no-op check).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::defaults;
use crate::resources::{self, ResourceType};
use crate::status::ApiError;
use crate::time;

/// How many events a watch can resume from by default; older resourceVersions get 410 Gone.
pub const HISTORY: usize = 5000;

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The resource's qualified name (`deployments.apps`).
    pub resource: String,
    pub namespace: String,
    pub object: Value,
}

/// `(qualified resource, namespace, name)`; namespace empty for cluster-scoped objects.
type Key = (String, String, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// The newest resourceVersion no longer in `history`.
    compacted: u64,
    next_cluster_ip: u32,
    /// How many events are kept.
    keep: usize,
}

/// One cluster.
pub struct Cluster {
    pub name: String,
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
}

/// Past events to replay, and the receiver of the ones to come.
pub type Replay = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// A list's answer.
pub struct ListResult {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
}

/// What a write may be asked besides its body.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub manager: String,
    /// `status` for the status subresource.
    pub subresource: String,
}

impl Cluster {
    /// A cluster with the namespaces every cluster has.
    pub fn new(name: &str) -> Self {
        Self::with_history(name, HISTORY)
    }

    /// A cluster keeping the last `keep` events for watches to resume from.
    pub fn with_history(name: &str, keep: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let c = Cluster {
            name: name.to_owned(),
            state: Mutex::new(State {
                next_cluster_ip: 1,
                keep: keep.max(1),
                ..State::default()
            }),
            events,
        };
        let ns = resources::by_kind("v1", "Namespace").expect("namespaces are built in");
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
            let _ = c.create(ns, "", obj, &WriteOptions::default());
        }
        c
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&key(rt, ns, name))
            .cloned()
            .ok_or_else(|| not_found(rt, name))
    }

    /// Objects of `rt` in `ns` (every namespace when `ns` is empty) that `keep` accepts,
    /// in name order, at most `limit` from after `continue_from`.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: &str,
        keep: &dyn Fn(&Value) -> bool,
        limit: Option<usize>,
        continue_from: Option<&str>,
    ) -> ListResult {
        let st = self.lock();
        let resource = rt.qualified();
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut last_position = String::new();
        // Keys sort by resource, then namespace: the objects listed are one run of the map
        // (the controllers list every tick, so no scan of every object).
        let start = (resource.clone(), ns.to_owned(), String::new());
        for ((r, n, name), obj) in st.objects.range(start..) {
            if *r != resource || !ns.is_empty() && n != ns {
                break;
            }
            let position = format!("{n}/{name}");
            if continue_from.is_some_and(|c| position.as_str() <= c) || !keep(obj) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                continue_token = Some(last_position);
                break;
            }
            items.push(obj.clone());
            last_position = position;
        }
        ListResult {
            items,
            resource_version: st.rv,
            continue_token,
        }
    }

    /// Calls `visit` with every object of `rt` (in `ns`; every namespace when empty) without
    /// copying it: for the controllers' passes, which need a few fields of many objects.
    pub fn visit(&self, rt: &ResourceType, ns: &str, visit: &mut dyn FnMut(&Value)) {
        let st = self.lock();
        let resource = rt.qualified();
        let start = (resource.clone(), ns.to_owned(), String::new());
        for ((r, n, _), obj) in st.objects.range(start..) {
            if *r != resource || !ns.is_empty() && n != ns {
                break;
            }
            visit(obj);
        }
    }

    /// Creates `obj` (its name, or `generateName` + a suffix).
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        check_identity(rt, ns, None, &mut obj)?;
        if obj["metadata"]["name"].as_str().unwrap_or("").is_empty() {
            let prefix = obj["metadata"]["generateName"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &kind_group(rt),
                    "",
                    rt.group,
                    rt.kind,
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            obj["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix()));
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        check_namespace_exists(&st, rt, ns)?;
        if st.objects.contains_key(&key(rt, ns, &name)) {
            return Err(ApiError::already_exists(
                &rt.qualified(),
                &name,
                rt.group,
                rt.plural,
            ));
        }
        let mut before =
            json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name}});
        if rt.namespaced {
            before["metadata"]["namespace"] = json!(ns);
        }
        crate::managed::record_update(
            &before,
            &mut obj,
            &opts.manager,
            &rt.api_version(),
            &time::now(),
            "",
        );
        commit(&mut st, &self.events, rt, ns, None, obj, opts)
    }

    /// Replaces the object (PUT), or its status with `opts.subresource == "status"`.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        check_identity(rt, ns, Some(name), &mut obj)?;
        let old = st
            .objects
            .get(&key(rt, ns, name))
            .cloned()
            .ok_or_else(|| not_found(rt, name))?;
        if let Some(rv) = obj["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            && old["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::stale(&rt.qualified(), name, rt.group, rt.plural));
        }
        let mut new = scope_to_subresource(rt, &old, obj, &opts.subresource);
        if let Some(mf) = new["metadata"].get("managedFields").cloned() {
            // A client sending managedFields back unchanged keeps them; anything else is ours.
            if mf != old["metadata"]["managedFields"] {
                new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
            }
        } else {
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        }
        crate::managed::record_update(
            &old,
            &mut new,
            &opts.manager,
            &rt.api_version(),
            &time::now(),
            &opts.subresource,
        );
        commit(&mut st, &self.events, rt, ns, Some(&old), new, opts)
    }

    /// Computes the new object from the live one (absent: `None`) with `change`, then writes
    /// it: the shared path of every patch type and of server-side apply.
    pub fn modify(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &WriteOptions,
        change: &dyn Fn(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        let mut st = self.lock();
        let old = st.objects.get(&key(rt, ns, name)).cloned();
        if old.is_none() {
            check_namespace_exists(&st, rt, ns)?;
        }
        let mut new = change(old.as_ref())?;
        check_identity(rt, ns, Some(name), &mut new)?;
        let created = old.is_none();
        if let Some(old) = &old {
            new = scope_to_subresource(rt, old, new, &opts.subresource);
        }
        let out = commit(&mut st, &self.events, rt, ns, old.as_ref(), new, opts)?;
        Ok((out, created))
    }

    /// Deletes the object (marks it when it has finalizers), answering it as it was.
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.delete_with(rt, ns, name, opts, None)
    }

    /// Like [`Cluster::delete`], adding `finalizer` first (the garbage collector's `orphan` or
    /// `foregroundDeletion`, from the propagation policy) in the same write that marks it.
    pub fn delete_with(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &WriteOptions,
        finalizer: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let k = key(rt, ns, name);
        let old = st
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(rt, name))?;
        if opts.dry_run {
            return Ok(old);
        }
        let mut marked = old.clone();
        if let Some(f) = finalizer {
            add_finalizer(&mut marked, f);
        }
        let has_finalizers = marked["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old["metadata"].get("deletionTimestamp").is_some() {
                return Ok(old);
            }
            marked["metadata"]["deletionTimestamp"] = json!(time::now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            return store(&mut st, &self.events, rt, ns, marked, "MODIFIED");
        }
        let gone = remove(&mut st, &self.events, rt, ns, name);
        if rt.kind == "Namespace" {
            let inside: Vec<Key> = st
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .cloned()
                .collect();
            for (resource, n, obj_name) in inside {
                if let Some(t) = resources::all_in(&self.name)
                    .into_iter()
                    .find(|t| t.qualified() == resource)
                {
                    remove(&mut st, &self.events, t, &n, &obj_name);
                }
            }
        }
        Ok(gone.unwrap_or(old))
    }

    /// Every object of every type that `keep` accepts, with its resource (`plural.group`).
    pub fn find_all(&self, keep: &dyn Fn(&Value) -> bool) -> Vec<(String, Value)> {
        self.lock()
            .objects
            .iter()
            .filter(|(_, o)| keep(o))
            .map(|((resource, _, _), o)| (resource.clone(), o.clone()))
            .collect()
    }

    /// The objects a watch starts with (as ADDED) and a receiver for what changes after them,
    /// taken together.
    pub fn list_and_watch(
        &self,
        rt: &ResourceType,
        ns: &str,
        keep: &dyn Fn(&Value) -> bool,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Arc<Event>>) {
        let st = self.lock();
        let resource = rt.qualified();
        let items = st
            .objects
            .iter()
            .filter(|((r, n, _), o)| *r == resource && (ns.is_empty() || n == ns) && keep(o))
            .map(|(_, o)| o.clone())
            .collect();
        (items, st.rv, self.events.subscribe())
    }

    /// The events after `rv` (for a watch to replay) and a receiver for the ones to come,
    /// taken together so that none falls between; 410 Gone when `rv` is no longer kept.
    pub fn watch_from(&self, rv: u64) -> Result<Replay, ApiError> {
        let st = self.lock();
        if rv < st.compacted {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                st.compacted + 1
            )));
        }
        let past = st.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((past, self.events.subscribe()))
    }
}

fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
    (
        rt.qualified(),
        if rt.namespaced {
            ns.to_owned()
        } else {
            String::new()
        },
        name.to_owned(),
    )
}

fn not_found(rt: &ResourceType, name: &str) -> ApiError {
    ApiError::not_found(&rt.qualified(), name, rt.group, rt.plural)
}

/// `Deployment.apps`, as the API server names a kind in "is invalid" messages.
pub fn kind_group(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.kind.to_owned()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn check_namespace_exists(st: &State, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    if st
        .objects
        .contains_key(&("namespaces".into(), String::new(), ns.to_owned()))
    {
        Ok(())
    } else {
        Err(ApiError::not_found("namespaces", ns, "", "namespaces"))
    }
}

/// The body names the same kind, name and namespace as the URL (filled in where absent).
fn check_identity(
    rt: &ResourceType,
    ns: &str,
    name: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let kind = obj["kind"].as_str().unwrap_or(rt.kind).to_owned();
    let av = obj["apiVersion"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| rt.api_version());
    if kind != rt.kind || av != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    obj["kind"] = json!(rt.kind);
    obj["apiVersion"] = json!(rt.api_version());
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    if let Some(name) = name {
        match meta["name"].as_str() {
            None | Some("") => meta["name"] = json!(name),
            Some(n) if n != name => {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            Some(_) => {}
        }
    }
    if rt.namespaced {
        match meta["namespace"].as_str() {
            None | Some("") => meta["namespace"] = json!(ns),
            Some(n) if n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(_) => {}
        }
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

/// A write to the main resource leaves `status` as it was; a write to `status` changes
/// nothing else.
fn scope_to_subresource(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    subresource: &str,
) -> Value {
    if subresource == "status" {
        let mut out = old.clone();
        out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if out["status"].is_null() {
            out.as_object_mut().map(|m| m.remove("status"));
        }
        out["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        return out;
    }
    if rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
    }
    new
}

/// The shared end of every write: defaults, server-owned metadata, generation, the no-op
/// check, then (unless a dry run) the new resourceVersion and the event.
fn commit(
    st: &mut State,
    events: &broadcast::Sender<Arc<Event>>,
    rt: &ResourceType,
    ns: &str,
    old: Option<&Value>,
    mut new: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    defaults::apply(rt.kind, &mut new);
    if rt.kind == "Service" && new["spec"]["clusterIP"].is_null() {
        let ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let n = st.next_cluster_ip;
                st.next_cluster_ip += 1;
                format!("10.96.{}.{}", n / 250, n % 250 + 1)
            });
        new["spec"]["clusterIP"] = json!(ip);
        new["spec"]["clusterIPs"] = json!([ip]);
    }
    let meta = new["metadata"]
        .as_object_mut()
        .expect("checked by check_identity");
    for k in [
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "generation",
        "selfLink",
    ] {
        meta.remove(k);
    }
    match old {
        Some(o) => {
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                if let Some(v) = o["metadata"].get(k) {
                    meta.insert(k.into(), v.clone());
                }
            }
            if rt.tracks_generation() && o.get("spec") != new.get("spec") {
                let g = o["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                new["metadata"]["generation"] = json!(g);
            }
            new["metadata"]["resourceVersion"] = o["metadata"]["resourceVersion"].clone();
            if new == *o {
                return Ok(new);
            }
        }
        None => {
            meta.insert("uid".into(), json!(uuid()));
            meta.insert("creationTimestamp".into(), json!(time::now()));
            if rt.tracks_generation() {
                meta.insert("generation".into(), json!(1));
            }
        }
    }
    if opts.dry_run {
        if old.is_none() {
            new["metadata"]
                .as_object_mut()
                .map(|m| m.remove("resourceVersion"));
        }
        return Ok(new);
    }
    let finalized = new["metadata"].get("deletionTimestamp").is_some()
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty());
    if finalized {
        let name = new["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Ok(remove(st, events, rt, ns, &name).unwrap_or(new));
    }
    store(
        st,
        events,
        rt,
        ns,
        new,
        if old.is_some() { "MODIFIED" } else { "ADDED" },
    )
}

/// Adds `finalizer` to the object's `metadata.finalizers` unless it is there.
fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let list = &mut obj["metadata"]["finalizers"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|f| f == finalizer)
    {
        items.push(json!(finalizer));
    }
}

fn store(
    st: &mut State,
    events: &broadcast::Sender<Arc<Event>>,
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    kind: &'static str,
) -> Result<Value, ApiError> {
    st.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    st.objects.insert(key(rt, ns, &name), obj.clone());
    publish(st, events, rt, ns, kind, obj.clone());
    Ok(obj)
}

fn remove(
    st: &mut State,
    events: &broadcast::Sender<Arc<Event>>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Option<Value> {
    let mut obj = st.objects.remove(&key(rt, ns, name))?;
    st.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
    publish(st, events, rt, ns, "DELETED", obj.clone());
    Some(obj)
}

fn publish(
    st: &mut State,
    events: &broadcast::Sender<Arc<Event>>,
    rt: &ResourceType,
    ns: &str,
    kind: &'static str,
    object: Value,
) {
    let e = Arc::new(Event {
        rv: st.rv,
        kind,
        resource: rt.qualified(),
        namespace: if rt.namespaced {
            ns.to_owned()
        } else {
            String::new()
        },
        object,
    });
    st.history.push_back(e.clone());
    while st.history.len() > st.keep {
        if let Some(old) = st.history.pop_front() {
            st.compacted = old.rv;
        }
    }
    let _ = events.send(e);
}

/// A random RFC 4122 version-4 UUID.
pub fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        8 | (b[8] & 3),
        &h(8..10)[1..],
        h(10..16)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    }

    fn cms() -> &'static ResourceType {
        resources::by_kind("v1", "ConfigMap").unwrap()
    }

    #[test]
    fn resource_versions_grow_and_an_unchanged_update_writes_nothing() {
        let c = Cluster::new("t");
        let opts = WriteOptions {
            manager: "test".into(),
            ..Default::default()
        };
        let a = c
            .create(cms(), "default", cm("a", json!({"k": "1"})), &opts)
            .unwrap();
        let rv: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let same = c.update(cms(), "default", "a", a.clone(), &opts).unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let changed = c
            .update(cms(), "default", "a", cm("a", json!({"k": "2"})), &opts)
            .unwrap();
        let rv2: u64 = changed["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv);
        assert_eq!(changed["metadata"]["uid"], a["metadata"]["uid"]);
    }

    #[test]
    fn a_stale_update_conflicts_and_a_missing_namespace_is_not_found() {
        let c = Cluster::new("t");
        let opts = WriteOptions::default();
        let a = c
            .create(cms(), "default", cm("a", json!({})), &opts)
            .unwrap();
        c.update(cms(), "default", "a", cm("a", json!({"x": "1"})), &opts)
            .unwrap();
        let err = c.update(cms(), "default", "a", a, &opts).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let err = c
            .create(cms(), "nope", cm("b", json!({})), &opts)
            .unwrap_err();
        assert_eq!(err.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn lists_page_with_limit_and_continue() {
        let c = Cluster::new("t");
        for n in ["a", "b", "c"] {
            c.create(cms(), "default", cm(n, json!({})), &WriteOptions::default())
                .unwrap();
        }
        let page = c.list(cms(), "default", &|_| true, Some(2), None);
        assert_eq!(page.items.len(), 2);
        let next = c.list(
            cms(),
            "default",
            &|_| true,
            Some(2),
            page.continue_token.as_deref(),
        );
        assert_eq!(next.items.len(), 1);
        assert_eq!(next.items[0]["metadata"]["name"], "c");
        assert!(next.continue_token.is_none());
    }

    #[test]
    fn a_watch_replays_from_a_resource_version() {
        let c = Cluster::new("t");
        let rv = c.resource_version();
        c.create(
            cms(),
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .unwrap();
        c.delete(cms(), "default", "a", &WriteOptions::default())
            .unwrap();
        let (past, _) = c.watch_from(rv).unwrap();
        let kinds: Vec<&str> = past.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["ADDED", "DELETED"]);
    }

    #[test]
    fn a_watch_from_before_the_kept_history_is_gone() {
        let c = Cluster::with_history("t", 2);
        let rv = c.resource_version();
        for n in ["a", "b", "c"] {
            c.create(cms(), "default", cm(n, json!({})), &WriteOptions::default())
                .unwrap();
        }
        let err = c.watch_from(rv).map(|_| ()).expect_err("410");
        assert_eq!((err.code, err.reason), (410, "Expired"));
        assert!(c.watch_from(c.resource_version() - 1).is_ok());
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
