//! Reading the envelope (DESIGN.md rules 1–3). Parsing is pure; only [`read_input`] does I/O.

use crate::envelope::{Envelope, SCHEMA_MAJOR};
use crate::error::{Error, Result};
use serde_json::Value;
use std::io::{IsTerminal, Read};
use std::path::Path;

/// What came in on stdin (or `--input`).
#[derive(Debug)]
pub enum Input {
    /// A usable envelope (empty input gives the default one).
    Envelope(Box<Envelope>),
    /// An upstream step failed: the raw input is to be written back unchanged.
    UpstreamFailed {
        /// The input exactly as read.
        raw: Vec<u8>,
        /// The tool named in `failed.tool`, if any.
        tool: String,
        /// `failed.error`, if any.
        error: String,
    },
}

/// Reads the input document: `--input FILE` when given, else stdin unless it is a terminal.
pub fn read_input(path: Option<&Path>) -> Result<Input> {
    let (raw, origin) = match path {
        Some(path) => {
            let raw = std::fs::read(path).map_err(|err| {
                Error::usage(format!("cannot read --input {}: {err}", path.display()))
            })?;
            (raw, path.display().to_string())
        }
        None if std::io::stdin().is_terminal() => (Vec::new(), "stdin".to_owned()),
        None => {
            let mut raw = Vec::new();
            std::io::stdin()
                .read_to_end(&mut raw)
                .map_err(|err| Error::usage(format!("cannot read stdin: {err}")))?;
            (raw, "stdin".to_owned())
        }
    };
    parse_input(raw, &origin)
}

/// Parses an input document. `origin` names it in error messages (`stdin`, a file path).
pub fn parse_input(raw: Vec<u8>, origin: &str) -> Result<Input> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Input::Envelope(Box::default()));
    }
    let value: Value = serde_json::from_slice(&raw).map_err(|err| {
        Error::usage(format!(
            "input ({origin}) is not valid JSON: {} at line {} column {}",
            describe_json_error(&err),
            err.line(),
            err.column()
        ))
    })?;
    let Value::Object(object) = &value else {
        return Err(Error::usage(format!(
            "input ({origin}) must be a JSON object (a shipkit envelope), found {}",
            json_kind(&value)
        )));
    };
    check_schema(object.get("schema"), origin)?;
    if let Some(failed) = object.get("failed").filter(|f| !f.is_null()) {
        let field = |name: &str| {
            failed
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned()
        };
        return Ok(Input::UpstreamFailed {
            tool: field("tool"),
            error: field("error"),
            raw,
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&raw);
    let envelope: Envelope =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            Error::usage(format!(
                "input ({origin}) field `{path}`: {} at line {} column {}",
                describe_json_error(&inner),
                inner.line(),
                inner.column()
            ))
        })?;
    Ok(Input::Envelope(Box::new(envelope)))
}

/// Accepts `shipkit/v1` and `shipkit/v1.x`; refuses another major or another format.
fn check_schema(schema: Option<&Value>, origin: &str) -> Result<()> {
    let Some(schema) = schema else {
        return Ok(());
    };
    let text = schema
        .as_str()
        .ok_or_else(|| Error::usage(format!("input ({origin}) field `schema` must be a string")))?;
    let major = text
        .strip_prefix("shipkit/v")
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.parse::<u64>().ok());
    match major {
        Some(SCHEMA_MAJOR) => Ok(()),
        Some(other) => Err(Error::usage(format!(
            "input ({origin}) has schema {text:?} (major version {other}); this tool reads shipkit/v{SCHEMA_MAJOR}"
        ))),
        None => Err(Error::usage(format!(
            "input ({origin}) has schema {text:?}, which is not a shipkit envelope (expected \"shipkit/v{SCHEMA_MAJOR}\")"
        ))),
    }
}

/// serde_json's message without its trailing " at line L column C" (we add our own).
fn describe_json_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Input> {
        parse_input(text.as_bytes().to_vec(), "stdin")
    }

    fn envelope(text: &str) -> Envelope {
        match parse(text).expect("parses") {
            Input::Envelope(envelope) => *envelope,
            other => panic!("expected an envelope, got {other:?}"),
        }
    }

    fn usage_message(text: &str) -> String {
        match parse(text) {
            Err(Error::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_blank_input_is_an_empty_envelope() {
        assert_eq!(envelope(""), Envelope::default());
        assert_eq!(envelope(" \n\t\n"), Envelope::default());
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let message = usage_message("{\n  \"images\": [1,\n}");
        assert!(message.contains("line 3 column 1"), "{message}");
        assert!(
            message.starts_with("input (stdin) is not valid JSON"),
            "{message}"
        );
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused() {
        assert!(usage_message("[1, 2]").contains("found an array"));
        assert!(usage_message("\"hi\"").contains("found a string"));
    }

    #[test]
    fn another_schema_major_is_refused_and_minor_versions_are_accepted() {
        assert!(usage_message(r#"{"schema": "shipkit/v2"}"#).contains("major version 2"));
        assert!(usage_message(r#"{"schema": "other/v1"}"#).contains("not a shipkit envelope"));
        assert!(usage_message(r#"{"schema": 1}"#).contains("must be a string"));
        assert_eq!(
            envelope(r#"{"schema": "shipkit/v1.3"}"#).schema,
            "shipkit/v1.3"
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_named_by_its_path() {
        let message = usage_message(r#"{"images": [{"name": "api", "tags": "x"}]}"#);
        assert!(message.contains("field `images[0].tags`"), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn upstream_failure_keeps_the_raw_bytes() {
        let text = r#"{"schema":"shipkit/v1",  "failed": {"tool": "img-build", "error": "boom", "exit_code": 1}}"#;
        match parse(text).unwrap() {
            Input::UpstreamFailed { raw, tool, error } => {
                assert_eq!(raw, text.as_bytes());
                assert_eq!(tool, "img-build");
                assert_eq!(error, "boom");
            }
            other => panic!("expected upstream failure, got {other:?}"),
        }
        // `"failed": null` is not a failure.
        assert!(matches!(
            parse(r#"{"failed": null}"#).unwrap(),
            Input::Envelope(_)
        ));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip_at_every_level() {
        let input = json!({
            "schema": "shipkit/v1",
            "future_top": {"a": [1, 2]},
            "git": {"commit": "abc", "branch": "main", "dirty": false, "signed": true},
            "images": [{
                "name": "api", "tags": ["api:1"], "arch": "arm64",
                "pushed": [{"repository": "r", "tag": "1", "digest": "sha256:x",
                            "reference": "r@sha256:x", "skipped": false, "mirror": "eu"}]
            }],
            "release": {"version": "1.0.0", "tag": "v1.0.0", "bump": "major", "commit": "abc",
                        "pushed": false, "notes_url": "u",
                        "changes": [{"type": "feat", "subject": "s", "breaking": true,
                                     "commit": "abc", "author": "me"}]},
            "deployments": [{"platform": "ecs", "outcome": "completed", "task_definition": "arn:1",
                             "extra_list": [1]}],
            "health": [{"target": "t", "healthy": true, "attempts": 1, "elapsed_ms": 3,
                        "last": {"latency_ms": 2, "status": 200, "tls": "1.3"}, "zone": "a"}],
            "failed": null
        });
        let parsed = envelope(&input.to_string());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), input);
    }

    /// Found by `make fuzz` (envelope): serde_json's default float parser may miss the
    /// nearest double by one unit, so a number in an unknown field changed as it went from
    /// tool to tool (1.88888888e+45 came back as 1.8888888799999998e+45). The workspace
    /// builds serde_json with `float_roundtrip`.
    #[test]
    fn a_number_in_an_unknown_field_is_the_same_after_every_hop() {
        let input = r#"{"schema":"shipkit/v1","feiled":{"tool":"img-build","erroTr":"x","exit_code":1888888880000000000000000016519310207990832240}}"#;
        let first = envelope(input);
        let written = serde_json::to_string(&first).unwrap();
        assert_eq!(envelope(&written), first, "{written}");
        let again = serde_json::to_string(&envelope(&written)).unwrap();
        assert_eq!(again, written);
    }
}
