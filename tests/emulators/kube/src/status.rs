//! Errors as the API server reports them: a `meta.k8s.io/v1` `Status` with the real reason and
//! HTTP code, which kubectl turns into its "Error from server (Reason): ..." lines.

use serde_json::{Value, json};

use crate::managed::Conflict;

/// One failed request, rendered by [`ApiError::to_status`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` (name, group, kind, causes), when the real server sends them.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 404: `pods "x" not found`.
    pub fn not_found(qualified: &str, name: &str, group: &str, plural: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"));
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 404 for a path that names no resource.
    pub fn no_route(path: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(
            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}")}]}),
        );
        e
    }

    /// 409: `configmaps "x" already exists`.
    pub fn already_exists(qualified: &str, name: &str, group: &str, plural: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 409 on a stale `resourceVersion` in an update.
    pub fn stale(qualified: &str, name: &str, group: &str, plural: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 409 from server-side apply: fields owned by other managers (`causes[]` name each).
    pub fn field_conflicts(conflicts: &[Conflict], name: &str, group: &str, plural: &str) -> Self {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|c| {
                format!(
                    "conflict with \"{}\" using {}: {}",
                    c.manager, c.api_version, c.field
                )
            })
            .collect();
        let message = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                lines.len(),
                lines.join("\n")
            )
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| {
                json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version), "field": c.field})
            })
            .collect();
        let mut e = Self::new(409, "Conflict", message);
        e.details = Some(json!({"name": name, "group": group, "kind": plural, "causes": causes}));
        e
    }

    /// 422: `Deployment.apps "x" is invalid: <field>: <why>`.
    pub fn invalid(
        kind_group: &str,
        name: &str,
        group: &str,
        kind: &str,
        causes: &[(String, String)],
    ) -> Self {
        let parts: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let message = if parts.len() == 1 {
            format!("{kind_group} \"{name}\" is invalid: {}", parts[0])
        } else {
            format!("{kind_group} \"{name}\" is invalid: [{}]", parts.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        let mut e = Self::new(422, "Invalid", message);
        e.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}));
        e
    }

    /// 422 from server-side apply with `fieldValidation=Strict`: fields the kind's schema does
    /// not declare, each named (`.spec.replicass: field not declared in schema`).
    pub fn undeclared_fields(
        rt: &crate::resources::ResourceType,
        name: &str,
        fields: &[String],
    ) -> Self {
        let lines: Vec<String> = fields
            .iter()
            .map(|f| format!(".{f}: field not declared in schema"))
            .collect();
        let mut e = Self::new(
            422,
            "Invalid",
            format!(
                "failed to create typed patch object ({}, Kind={}): {}",
                rt.api_version(),
                rt.kind,
                lines.join(", ")
            ),
        );
        let causes: Vec<Value> = fields
            .iter()
            .map(|f| json!({"reason": "FieldValueInvalid", "message": "field not declared in schema", "field": f}))
            .collect();
        e.details =
            Some(json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}));
        e
    }

    /// 400: a body or parameter the server cannot use.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401: no or a wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 405: a verb the resource does not serve.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410: a watch or list from a resourceVersion older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415: a patch content type the server does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 415 for a body encoding the emulator does not read (protobuf).
    pub fn unsupported_body(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the kube emulator reads JSON bodies only, not {content_type} (kubectl create <kind> sends protobuf: use kubectl apply)"
            ),
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// The `Status` a successful delete answers when the object is already gone (not used for
/// objects: those come back whole).
pub fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_manager_and_field_in_message_and_causes() {
        let c = Conflict {
            manager: "bob".into(),
            api_version: "v1".into(),
            field: ".data.a".into(),
        };
        let e = ApiError::field_conflicts(&[c], "cfg", "", "configmaps");
        let s = e.to_status();
        assert_eq!(s["code"], 409);
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(
            s["message"],
            "Apply failed with 1 conflict: conflict with \"bob\" using v1: .data.a"
        );
        assert_eq!(s["details"]["causes"][0]["type"], "FieldManagerConflict");
        assert_eq!(s["details"]["causes"][0]["field"], ".data.a");
    }
}
