//! A container's environment, as the kubelet makes it: `envFrom` (ConfigMaps and Secrets,
//! with `prefix` and `optional`) first, then `env` (`value`, `valueFrom` ConfigMap and Secret
//! keys), a later name replacing an earlier one. A missing object or key that is not
//! `optional` is the error the pod shows as `CreateContainerConfigError`, in the kubelet's
//! words. Pure: the objects come from a lookup.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    /// The object's kind (also in the kubelet's "couldn't find key" message).
    pub fn kind(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }

    /// The resource's name in the API's NotFound message (`configmap "x" not found`) and
    /// in the `envFrom` event.
    fn resource(self) -> &'static str {
        match self {
            Source::ConfigMap => "configmap",
            Source::Secret => "secret",
        }
    }

    /// The object's keys and values (a Secret's decoded from base64).
    fn data(self, obj: &Value) -> BTreeMap<String, String> {
        let decode = |v: &str| match self {
            Source::ConfigMap => v.to_owned(),
            Source::Secret => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        };
        obj["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), decode(v.as_str().unwrap_or(""))))
            .collect()
    }
}

/// Finds a ConfigMap or Secret of the pod's namespace by name.
pub type Lookup<'a> = dyn Fn(Source, &str) -> Option<Value> + 'a;

/// The environment: `NAME=value` in order, and the warnings (events) the kubelet would record.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Environment {
    pub vars: Vec<String>,
    /// `InvalidEnvironmentVariableNames` event messages: `envFrom` keys skipped.
    pub warnings: Vec<String>,
}

impl Environment {
    fn set(&mut self, name: &str, value: &str) {
        let prefix = format!("{name}=");
        self.vars.retain(|v| !v.starts_with(&prefix));
        self.vars.push(format!("{name}={value}"));
    }
}

/// The environment of container `c` of a pod in namespace `ns`; Err is the message of the
/// pod's `CreateContainerConfigError`.
pub fn container_environment(
    ns: &str,
    c: &Value,
    lookup: &Lookup<'_>,
) -> Result<Environment, String> {
    let mut env = Environment::default();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        env_from(ns, from, lookup, &mut env)?;
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or("");
        if let Some(value) = value_of(ns, e, lookup)? {
            env.set(name, &value);
        }
    }
    Ok(env)
}

/// One `envFrom` entry: every key of the object (prefixed), invalid names skipped with a warning.
fn env_from(
    ns: &str,
    from: &Value,
    lookup: &Lookup<'_>,
    env: &mut Environment,
) -> Result<(), String> {
    let (source, r) = if from["configMapRef"].is_object() {
        (Source::ConfigMap, &from["configMapRef"])
    } else if from["secretRef"].is_object() {
        (Source::Secret, &from["secretRef"])
    } else {
        return Ok(());
    };
    let name = r["name"].as_str().unwrap_or("");
    let Some(obj) = lookup(source, name) else {
        return if r["optional"] == true {
            Ok(())
        } else {
            Err(not_found(source, name))
        };
    };
    let prefix = from["prefix"].as_str().unwrap_or("");
    let mut invalid = Vec::new();
    for (key, value) in source.data(&obj) {
        let var = format!("{prefix}{key}");
        if is_env_var_name(&var) {
            env.set(&var, &value);
        } else {
            invalid.push(var);
        }
    }
    if !invalid.is_empty() {
        env.warnings.push(format!(
            "Keys [{}] from the EnvFrom {} {ns}/{name} were skipped since they are considered invalid environment variable names.",
            invalid.join(", "),
            source.resource()
        ));
    }
    Ok(())
}

/// One `env` entry's value: None when it is left out (an optional reference that is missing,
/// or a source the emulator does not resolve).
fn value_of(ns: &str, e: &Value, lookup: &Lookup<'_>) -> Result<Option<String>, String> {
    if let Some(v) = e["value"].as_str() {
        return Ok(Some(v.to_owned()));
    }
    let from = &e["valueFrom"];
    let (source, r) = if from["configMapKeyRef"].is_object() {
        (Source::ConfigMap, &from["configMapKeyRef"])
    } else if from["secretKeyRef"].is_object() {
        (Source::Secret, &from["secretKeyRef"])
    } else {
        return Ok(None);
    };
    let name = r["name"].as_str().unwrap_or("");
    let key = r["key"].as_str().unwrap_or("");
    let optional = r["optional"] == true;
    let Some(obj) = lookup(source, name) else {
        return if optional {
            Ok(None)
        } else {
            Err(not_found(source, name))
        };
    };
    match source.data(&obj).remove(key) {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(format!(
            "couldn't find key {key} in {} {ns}/{name}",
            source.kind()
        )),
    }
}

/// The API's NotFound message, which the kubelet passes on.
fn not_found(source: Source, name: &str) -> String {
    format!("{} \"{name}\" not found", source.resource())
}

/// Kubernetes' `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(source: Source, name: &str) -> Option<Value> {
        match (source, name) {
            (Source::ConfigMap, "app") => {
                Some(json!({"data": {"MODE": "prod", "LEVEL": "info", "1st": "x"}}))
            }
            // "s3cret" and "info-from-secret"
            (Source::Secret, "creds") => {
                Some(json!({"data": {"PASSWORD": "czNjcmV0", "LEVEL": "aW5mby1mcm9tLXNlY3JldA=="}}))
            }
            _ => None,
        }
    }

    fn env_of(c: Value) -> Result<Environment, String> {
        container_environment("shop", &c, &objects)
    }

    #[test]
    fn env_from_takes_every_key_prefixed_and_env_overrides_it() {
        let env = env_of(json!({
            "envFrom": [
                {"configMapRef": {"name": "app"}},
                {"secretRef": {"name": "creds"}, "prefix": "DB_"},
                {"configMapRef": {"name": "absent", "optional": true}},
            ],
            "env": [{"name": "MODE", "value": "dev"}, {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}}],
        }))
        .unwrap();
        assert_eq!(
            env.vars,
            [
                "LEVEL=info",
                "DB_LEVEL=info-from-secret",
                "DB_PASSWORD=s3cret",
                "MODE=dev",
                "PW=s3cret"
            ]
        );
        assert_eq!(
            env.warnings,
            [
                "Keys [1st] from the EnvFrom configmap shop/app were skipped since they are considered invalid environment variable names."
            ]
        );
    }

    #[test]
    fn a_later_env_from_replaces_an_earlier_key() {
        let env = env_of(json!({"envFrom": [{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "creds"}}]})).unwrap();
        assert!(
            env.vars.contains(&"LEVEL=info-from-secret".to_owned()),
            "{:?}",
            env.vars
        );
        assert!(!env.vars.contains(&"LEVEL=info".to_owned()));
    }

    #[test]
    fn missing_objects_and_keys_are_the_kubelets_errors_unless_optional() {
        let missing_cm = env_of(json!({"envFrom": [{"configMapRef": {"name": "nope"}}]}));
        assert_eq!(missing_cm.unwrap_err(), "configmap \"nope\" not found");
        let missing_secret = env_of(json!({"envFrom": [{"secretRef": {"name": "nope"}}]}));
        assert_eq!(missing_secret.unwrap_err(), "secret \"nope\" not found");
        let key_ref = |name: &str, key: &str, optional: bool| json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": name, "key": key, "optional": optional}}}]});
        assert_eq!(
            env_of(key_ref("app", "NOPE", false)).unwrap_err(),
            "couldn't find key NOPE in ConfigMap shop/app"
        );
        assert_eq!(
            env_of(key_ref("gone", "K", false)).unwrap_err(),
            "configmap \"gone\" not found"
        );
        assert_eq!(
            env_of(key_ref("app", "NOPE", true)).unwrap().vars,
            Vec::<String>::new()
        );
        assert_eq!(
            env_of(key_ref("gone", "K", true)).unwrap().vars,
            Vec::<String>::new()
        );
        let secret_key = json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "NOPE"}}}]});
        assert_eq!(
            env_of(secret_key).unwrap_err(),
            "couldn't find key NOPE in Secret shop/creds"
        );
    }

    #[test]
    fn env_var_names_are_checked_as_kubernetes_does() {
        for ok in ["A", "_x", "a.b-c", "-dash", "DB_1"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "a b", "a=b", "ü"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }
}
