//! The kubeconfig a client needs: one cluster, user and context per emulated cluster, the CA
//! inline, the static token. Rendered as JSON (valid YAML, which kubectl and kube-rs read).

use base64::Engine as _;
use serde_json::{Value, json};

/// A kubeconfig for `clusters` (`(name, https URL)`), current context the first one.
pub fn render(clusters: &[(String, String)], ca_pem: &str, token: &str) -> Value {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters.iter().map(|(name, server)| json!({"name": name, "cluster": {"server": server, "certificate-authority-data": ca}})).collect::<Vec<_>>(),
        "users": clusters.iter().map(|(name, _)| json!({"name": name, "user": {"token": token}})).collect::<Vec<_>>(),
        "contexts": clusters.iter().map(|(name, _)| json!({"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}})).collect::<Vec<_>>(),
        "current-context": clusters.first().map(|(n, _)| n.as_str()).unwrap_or(""),
        "preferences": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_context_per_cluster() {
        let k = render(
            &[
                ("staging".into(), "https://127.0.0.1:1".into()),
                ("production".into(), "https://127.0.0.1:2".into()),
            ],
            "PEM",
            "t",
        );
        assert_eq!(k["contexts"][1]["context"]["cluster"], "production");
        assert_eq!(k["current-context"], "staging");
        assert_eq!(
            k["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
    }
}
