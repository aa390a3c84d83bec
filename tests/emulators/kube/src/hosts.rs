//! Service names for pods through `/etc/hosts`, as the kubelet manages each pod's hosts file.
//!
//! dockerd here runs with `--iptables=false`, so Docker's embedded DNS is out, and one port-53
//! server cannot be shared by the many emulators tests start in parallel. A static binary's
//! resolver (busybox `nc NAME PORT`, Go's, musl's) reads `/etc/hosts` first, so the kubelet
//! writes every Service name there: `NAME` (same namespace), `NAME.NAMESPACE`,
//! `NAME.NAMESPACE.svc` and `NAME.NAMESPACE.svc.cluster.local` → the IP of a ready pod backing
//! it (so a name reaches the pod's port, the `targetPort`, as a headless Service's does), and
//! StatefulSet pods' `HOSTNAME.SUBDOMAIN...` names. [`cluster_names`] (once a pass) and
//! [`hosts_file`] (per pod) decide the content (pure); [`write_if_changed`] writes it in place.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::selectors;

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The lines every pod's hosts file starts with (the kubelet's).
const HEADER: &str = "# Kubernetes-managed hosts file (kube-emulator).\n\
127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
fe00::0\tip6-mcastprefix\n\
fe00::1\tip6-allnodes\n\
fe00::2\tip6-allrouters\n";

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The pod's host name: `spec.hostname`, else its name (at most 63 characters, as the
/// kubelet truncates it).
pub fn pod_hostname(pod: &Value) -> String {
    let name = pod["spec"]["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| text(&pod["metadata"]["name"]));
    name.chars().take(63).collect::<String>()
}

/// A name the cluster resolves: a Service's (`NAME`) or a pod's under its subdomain
/// (`HOSTNAME.SUBDOMAIN`), in `namespace`, to `ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub namespace: String,
    pub name: String,
    pub ip: String,
    /// The pod's uid for a pod's name (its own file has its own line instead).
    pub pod_uid: Option<String>,
}

/// Every name of the cluster, given all its Services and pods (once a pass, for every pod).
pub fn cluster_names(services: &[Value], pods: &[Value]) -> Vec<Entry> {
    let service_entries = services.iter().filter_map(|svc| {
        Some(Entry {
            namespace: text(&svc["metadata"]["namespace"]).to_owned(),
            name: text(&svc["metadata"]["name"]).to_owned(),
            ip: backing_ip(svc, pods)?,
            pod_uid: None,
        })
    });
    let pod_entries = pods.iter().filter_map(|p| {
        Some(Entry {
            namespace: text(&p["metadata"]["namespace"]).to_owned(),
            name: subdomain_name(p, services)?,
            ip: ready_ip(p)?,
            pod_uid: Some(text(&p["metadata"]["uid"]).to_owned()),
        })
    });
    service_entries.chain(pod_entries).collect()
}

/// The hosts file of a container of `pod` (whose IP is `pod_ip`), given the cluster's names.
pub fn hosts_file(pod: &Value, pod_ip: Option<&str>, names: &[Entry]) -> String {
    let ns = text(&pod["metadata"]["namespace"]);
    let uid = pod["metadata"]["uid"].as_str();
    let mut out = HEADER.to_owned();
    if let Some(ip) = pod_ip {
        out.push_str(&own_line(pod, ip));
    }
    let mut lines: Vec<(String, &str)> = names
        .iter()
        .filter(|e| e.pod_uid.is_none() || e.pod_uid.as_deref() != uid)
        .map(|e| {
            (
                qualified(&e.name, &e.namespace, ns).join(" "),
                e.ip.as_str(),
            )
        })
        .collect();
    lines.sort();
    for (names, ip) in lines {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

/// `IP FQDN HOSTNAME` with a subdomain, else `IP HOSTNAME` (the kubelet's own line).
fn own_line(pod: &Value, ip: &str) -> String {
    let hostname = pod_hostname(pod);
    match pod["spec"]["subdomain"].as_str().filter(|s| !s.is_empty()) {
        Some(sub) => {
            let ns = text(&pod["metadata"]["namespace"]);
            format!("{ip}\t{hostname}.{sub}.{ns}.svc.{CLUSTER_DOMAIN}\t{hostname}\n")
        }
        None => format!("{ip}\t{hostname}\n"),
    }
}

/// `NAME` (only from the same namespace), `NAME.NS`, `NAME.NS.svc`, `NAME.NS.svc.DOMAIN`.
fn qualified(name: &str, ns: &str, from: &str) -> Vec<String> {
    let mut names = Vec::new();
    if ns == from {
        names.push(name.to_owned());
    }
    names.push(format!("{name}.{ns}"));
    names.push(format!("{name}.{ns}.svc"));
    names.push(format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"));
    names
}

/// A StatefulSet-style pod's name (`HOSTNAME.SUBDOMAIN`), when a Service named after its
/// subdomain exists in its namespace (as cluster DNS requires).
fn subdomain_name(pod: &Value, services: &[Value]) -> Option<String> {
    let sub = pod["spec"]["subdomain"]
        .as_str()
        .filter(|s| !s.is_empty())?;
    let ns = &pod["metadata"]["namespace"];
    services
        .iter()
        .any(|s| s["metadata"]["name"] == sub && &s["metadata"]["namespace"] == ns)
        .then(|| format!("{}.{sub}", pod_hostname(pod)))
}

/// The IP of the first (by name) ready pod the Service selects; None without a selector or a
/// ready pod.
fn backing_ip(svc: &Value, pods: &[Value]) -> Option<String> {
    let selector = svc["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())?;
    let reqs: Vec<selectors::Requirement> = selector
        .iter()
        .map(|(k, v)| selectors::Requirement::Equals(k.clone(), text(v).to_owned()))
        .collect();
    let ns = &svc["metadata"]["namespace"];
    pods.iter()
        .filter(|p| &p["metadata"]["namespace"] == ns)
        .filter(|p| selectors::labels_match(&reqs, p["metadata"].get("labels")))
        .filter_map(|p| Some((text(&p["metadata"]["name"]), ready_ip(p)?)))
        .min()
        .map(|(_, ip)| ip)
}

/// The pod's IP when it is Ready and not being deleted (what an endpoint lists).
fn ready_ip(pod: &Value) -> Option<String> {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return None;
    }
    let ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready.then(|| pod["status"]["podIP"].as_str().map(str::to_owned))?
}

/// Writes `content` to the container's hosts file when it differs, in place (truncate and
/// write, never a rename: the file is bind-mounted, and the container would keep the old
/// inode). Docker rewrites it when it (re)starts a container, so the file itself is compared.
/// Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &str) -> std::io::Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|now| now == content) {
        return Ok(false);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, app: &str, ip: &str, ready: bool) -> Value {
        json!({
            "metadata": {"namespace": ns, "name": name, "uid": name, "labels": {"app": app}},
            "spec": {},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    }

    fn service(ns: &str, name: &str, app: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "spec": {"selector": {"app": app}}})
    }

    fn file(me: &Value, ip: Option<&str>, services: &[Value], pods: &[Value]) -> String {
        hosts_file(me, ip, &cluster_names(services, pods))
    }

    fn lines_after_header(s: &str) -> Vec<&str> {
        s.strip_prefix(HEADER)
            .expect("starts with the header")
            .lines()
            .collect()
    }

    #[test]
    fn a_service_is_named_in_full_and_short_only_in_its_own_namespace() {
        let me = pod("shop", "auth-1", "auth", "172.17.0.9", true);
        let pods = [
            me.clone(),
            pod("shop", "redis-b", "redis", "172.17.0.3", true),
            pod("shop", "redis-a", "redis", "172.17.0.2", false),
            pod("other", "db-1", "db", "172.17.0.4", true),
        ];
        let services = [
            service("shop", "redis", "redis"),
            service("other", "db", "db"),
        ];
        let hosts = file(&me, Some("172.17.0.9"), &services, &pods);
        assert_eq!(
            lines_after_header(&hosts),
            [
                "172.17.0.9\tauth-1",
                "172.17.0.4\tdb.other db.other.svc db.other.svc.cluster.local",
                "172.17.0.3\tredis redis.shop redis.shop.svc redis.shop.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn a_service_without_a_ready_pod_or_a_selector_is_left_out() {
        let me = pod("shop", "auth-1", "auth", "172.17.0.9", true);
        let mut terminating = pod("shop", "redis-a", "redis", "172.17.0.2", true);
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let external = json!({"metadata": {"namespace": "shop", "name": "ext"}, "spec": {}});
        let services = [service("shop", "redis", "redis"), external];
        let hosts = file(&me, None, &services, &[me.clone(), terminating]);
        assert_eq!(hosts, HEADER);
    }

    #[test]
    fn a_replaced_backing_pod_changes_the_file() {
        let me = pod("shop", "auth-1", "auth", "172.17.0.9", true);
        let services = [service("shop", "redis", "redis")];
        let old = file(
            &me,
            None,
            &services,
            &[pod("shop", "redis-a", "redis", "172.17.0.2", true)],
        );
        let new = file(
            &me,
            None,
            &services,
            &[pod("shop", "redis-b", "redis", "172.17.0.5", true)],
        );
        assert_ne!(old, new);
        assert!(new.contains("172.17.0.5\tredis "), "{new}");
    }

    #[test]
    fn stateful_set_pods_are_named_under_their_subdomain_and_have_their_fqdn() {
        let mut web0 = pod("shop", "web-0", "web", "172.17.0.6", true);
        web0["spec"] = json!({"hostname": "web-0", "subdomain": "web"});
        let mut web1 = web0.clone();
        web1["metadata"]["name"] = json!("web-1");
        web1["metadata"]["uid"] = json!("web-1");
        web1["spec"]["hostname"] = json!("web-1");
        web1["status"]["podIP"] = json!("172.17.0.7");
        let headless = json!({"metadata": {"namespace": "shop", "name": "web"}, "spec": {"clusterIP": "None"}});
        let hosts = file(
            &web0,
            Some("172.17.0.6"),
            &[headless],
            &[web0.clone(), web1],
        );
        assert_eq!(
            lines_after_header(&hosts),
            [
                "172.17.0.6\tweb-0.web.shop.svc.cluster.local\tweb-0",
                "172.17.0.7\tweb-1.web web-1.web.shop web-1.web.shop.svc web-1.web.shop.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn the_file_is_rewritten_in_place_only_when_it_differs() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "127.0.0.1\tlocalhost\n172.17.0.9\tabc123\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        assert!(write_if_changed(&path, "short\n").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "same inode");
        assert!(!write_if_changed(&path, "short\n").unwrap());
        assert!(
            write_if_changed(&dir.path().join("gone"), "x").is_err(),
            "never created"
        );
    }
}
