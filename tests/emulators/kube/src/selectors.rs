//! `labelSelector` and `fieldSelector` query parameters: parsed once, matched per object.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Parses `app=web,tier!=db,env in (a,b),!legacy,track`.
pub fn parse_labels(s: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for part in split_top_level(s) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let req = if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().to_owned())
        } else if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, vs)) = split_set(part, " notin ") {
            Requirement::NotIn(k, vs?)
        } else if let Some((k, vs)) = split_set(part, " in ") {
            Requirement::In(k, vs?)
        } else if part
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./".contains(c))
        {
            Requirement::Exists(part.to_owned())
        } else {
            return Err(format!("unable to parse requirement: {part:?}"));
        };
        out.push(req);
    }
    Ok(out)
}

fn split_set(part: &str, op: &str) -> Option<(String, Result<Vec<String>, String>)> {
    let (k, rest) = part.split_once(op)?;
    let rest = rest.trim();
    let values = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| inner.split(',').map(|v| v.trim().to_owned()).collect())
        .ok_or_else(|| format!("expected a (list) after {op:?} in {part:?}"));
    Some((k.trim().to_owned(), values))
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Whether `labels` (an object or absent) satisfies every requirement.
pub fn labels_match(reqs: &[Requirement], labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    reqs.iter().all(|r| match r {
        Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
        Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Requirement::Exists(k) => get(k).is_some(),
        Requirement::NotExists(k) => get(k).is_none(),
    })
}

/// A field selector: `metadata.name=x`, `metadata.namespace!=y` (the fields every resource
/// supports), joined by commas.
pub fn parse_fields(s: &str) -> Result<Vec<(String, bool, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, true, v)
        } else {
            return Err(format!("invalid selector: {part:?}"));
        };
        let field = field.trim();
        if !matches!(field, "metadata.name" | "metadata.namespace") {
            return Err(format!("field label not supported: {field}"));
        }
        out.push((field.to_owned(), eq, value.trim().to_owned()));
    }
    Ok(out)
}

/// Whether `obj` satisfies every field requirement.
pub fn fields_match(reqs: &[(String, bool, String)], obj: &Value) -> bool {
    reqs.iter().all(|(field, eq, value)| {
        let actual = match field.as_str() {
            "metadata.name" => obj["metadata"]["name"].as_str(),
            _ => obj["metadata"]["namespace"].as_str(),
        }
        .unwrap_or("");
        (actual == value) == *eq
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_parse_and_match_every_operator() {
        let labels = json!({"app": "web", "env": "prod"});
        let ok = |s: &str| labels_match(&parse_labels(s).unwrap(), Some(&labels));
        assert!(ok("app=web"));
        assert!(ok("app==web,env in (prod, staging)"));
        assert!(ok("app,!legacy"));
        assert!(ok("env notin (dev)"));
        assert!(!ok("app!=web"));
        assert!(!ok("env in (dev,qa)"));
        assert!(!ok("tier"));
        assert!(!labels_match(&parse_labels("app=web").unwrap(), None));
        assert!(parse_labels("a in b").is_err());
    }

    #[test]
    fn field_selectors_support_name_and_namespace_only() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(fields_match(
            &parse_fields("metadata.name=a").unwrap(),
            &obj
        ));
        assert!(!fields_match(
            &parse_fields("metadata.name!=a").unwrap(),
            &obj
        ));
        assert!(parse_fields("spec.nodeName=x").is_err());
    }
}
