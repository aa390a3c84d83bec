//! What counts as healthy: targets and the checks on a response. Pure: parsing flags and
//! judging a response, no I/O.

use regex::Regex;
use serde_json::Value;
use std::fmt;
use url::Url;

/// Something to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An HTTP(S) URL.
    Http(Url),
    /// A TCP address that must accept connections.
    Tcp { host: String, port: u16 },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http(url) => write!(f, "{url}"),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Parses `--url`: an absolute http or https URL.
pub fn parse_url(text: &str) -> Result<Target, String> {
    let url = Url::parse(text).map_err(|err| format!("invalid URL {text:?}: {err}"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(Target::Http(url)),
        "http" | "https" => Err(format!("invalid URL {text:?}: no host")),
        other => Err(format!(
            "invalid URL {text:?}: scheme {other:?} is not http or https (use --tcp for TCP)"
        )),
    }
}

/// Parses `--tcp HOST:PORT` (`[::1]:80` for IPv6).
pub fn parse_tcp(text: &str) -> Result<Target, String> {
    let invalid = |why: &str| format!("invalid --tcp {text:?}: {why} (expected HOST:PORT)");
    let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    if port == 0 {
        return Err(invalid("port 0"));
    }
    Ok(Target::Tcp {
        host: host.to_owned(),
        port,
    })
}

/// Parses an endpoint a deployment advertises: `http(s)://…` or `tcp://HOST:PORT`.
pub fn parse_endpoint(text: &str) -> Result<Target, String> {
    match text.strip_prefix("tcp://") {
        Some(address) => parse_tcp(address.trim_end_matches('/')),
        None => parse_url(text),
    }
}

/// Which HTTP statuses count as healthy: `200`, `2xx`, `200,204`, `200-299`, mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec(Vec<(u16, u16)>);

impl Default for StatusSpec {
    fn default() -> Self {
        StatusSpec(vec![(200, 299)])
    }
}

impl StatusSpec {
    /// Parses the `--status` value.
    pub fn parse(text: &str) -> Result<StatusSpec, String> {
        let invalid = |part: &str| {
            format!("invalid status {part:?} (expected e.g. 200, 2xx, 200,204, 200-299)")
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
            let range = if let Some(class) = part.strip_suffix("xx").or(part.strip_suffix("XX")) {
                let digit = class.parse::<u16>().ok().filter(|d| (1..=5).contains(d));
                digit.map(|d| (d * 100, d * 100 + 99))
            } else if let Some((low, high)) = part.split_once('-') {
                code(low.trim())
                    .zip(code(high.trim()))
                    .filter(|(l, h)| l <= h)
            } else {
                code(part).map(|c| (c, c))
            };
            ranges.push(range.ok_or_else(|| invalid(part))?);
        }
        Ok(StatusSpec(ranges))
    }

    /// Whether `status` is one of the accepted ones.
    pub fn accepts(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

/// `--json PATH=VALUE`: the value at PATH in the JSON body must equal VALUE.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonExpectation {
    /// A JSON pointer (`/status/db`).
    pointer: String,
    /// As the user wrote the path, for messages.
    path: String,
    expected: Value,
}

impl JsonExpectation {
    /// Parses `PATH=VALUE`. PATH is a JSON pointer (`/checks/0/ok`) or a dotted path
    /// (`checks.0.ok`, `checks[0].ok`). VALUE is JSON when it parses as JSON (`true`, `3`,
    /// `"UP"`), else a string (`UP`).
    pub fn parse(text: &str) -> Result<JsonExpectation, String> {
        let (path, value) = text.split_once('=').ok_or_else(|| {
            format!("invalid --json {text:?} (expected PATH=VALUE, e.g. status=UP)")
        })?;
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("invalid --json {text:?}: empty path"));
        }
        let expected =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        Ok(JsonExpectation {
            pointer: to_pointer(path),
            path: path.to_owned(),
            expected,
        })
    }

    /// `None` when `body` satisfies the expectation, else why not.
    fn mismatch(&self, body: &Value) -> Option<String> {
        match body.pointer(&self.pointer) {
            Some(found) if *found == self.expected => None,
            Some(found) => Some(format!(
                "JSON {} is {found}, expected {}",
                self.path, self.expected
            )),
            None => Some(format!("JSON {} is missing", self.path)),
        }
    }
}

/// `a.b[0].c` → `/a/b/0/c`; a path that starts with `/` is already a pointer.
fn to_pointer(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let mut pointer = String::new();
    for segment in path.replace('[', ".").replace(']', "").split('.') {
        if segment.is_empty() {
            continue;
        }
        pointer.push('/');
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    }
    pointer
}

/// Everything an HTTP response must satisfy.
#[derive(Debug, Clone, Default)]
pub struct ResponseCheck {
    pub status: StatusSpec,
    pub body_contains: Option<String>,
    pub body_regex: Option<Regex>,
    pub json: Vec<JsonExpectation>,
}

impl ResponseCheck {
    /// Whether the body must be read at all.
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || self.body_regex.is_some() || !self.json.is_empty()
    }

    /// `Ok` when the response is healthy, else a short reason ("status 503", "body does
    /// not contain \"ok\"").
    pub fn judge(&self, status: u16, body: &str) -> Result<(), String> {
        if !self.status.accepts(status) {
            return Err(format!("status {status}"));
        }
        if let Some(needle) = &self.body_contains
            && !body.contains(needle.as_str())
        {
            return Err(format!("body does not contain {needle:?}"));
        }
        if let Some(regex) = &self.body_regex
            && !regex.is_match(body)
        {
            return Err(format!("body does not match /{regex}/"));
        }
        if !self.json.is_empty() {
            let value: Value =
                serde_json::from_str(body).map_err(|err| format!("body is not JSON ({err})"))?;
            if let Some(reason) = self.json.iter().find_map(|e| e.mismatch(&value)) {
                return Err(reason);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(matches!(
            parse_url("http://127.0.0.1:8080/auth"),
            Ok(Target::Http(_))
        ));
        assert!(parse_url("https://example.com").is_ok());
        assert!(
            parse_url("ftp://x/")
                .unwrap_err()
                .contains("not http or https")
        );
        assert!(parse_url("not a url").unwrap_err().contains("invalid URL"));
        assert!(parse_url("localhost:8080").is_err());
    }

    #[test]
    fn tcp_targets_take_host_and_port() {
        assert_eq!(
            parse_tcp("db:5432"),
            Ok(Target::Tcp {
                host: "db".into(),
                port: 5432
            })
        );
        assert_eq!(
            parse_tcp("[::1]:80").map(|t| t.to_string()),
            Ok("tcp://[::1]:80".into())
        );
        assert!(parse_tcp("db").is_err());
        assert!(parse_tcp("db:http").is_err());
        assert!(parse_tcp(":80").is_err());
        assert!(parse_tcp("db:0").is_err());
    }

    #[test]
    fn endpoints_are_urls_or_tcp() {
        assert!(matches!(
            parse_endpoint("tcp://h:1"),
            Ok(Target::Tcp { .. })
        ));
        assert!(matches!(
            parse_endpoint("http://h:1/x"),
            Ok(Target::Http(_))
        ));
    }

    #[test]
    fn status_specs_accept_codes_classes_lists_and_ranges() {
        let spec = StatusSpec::parse("200,204").unwrap();
        assert!(spec.accepts(204) && !spec.accepts(201));
        let spec = StatusSpec::parse("2xx, 301").unwrap();
        assert!(spec.accepts(299) && spec.accepts(301) && !spec.accepts(302));
        let spec = StatusSpec::parse("200-204").unwrap();
        assert!(spec.accepts(203) && !spec.accepts(205));
        assert!(StatusSpec::default().accepts(200) && !StatusSpec::default().accepts(503));
        for bad in ["", "abc", "6xx", "99", "300-200", "2xxx"] {
            assert!(StatusSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn json_paths_can_be_pointers_or_dotted() {
        let body: Value = serde_json::json!({"status": "UP", "checks": [{"ok": true}], "n": 3});
        let check = |e: &str| JsonExpectation::parse(e).unwrap().mismatch(&body);
        assert_eq!(check("status=UP"), None);
        assert_eq!(check("/status=\"UP\""), None);
        assert_eq!(check("checks[0].ok=true"), None);
        assert_eq!(check("checks.0.ok=true"), None);
        assert_eq!(check("n=3"), None);
        assert_eq!(check("n=4").unwrap(), "JSON n is 3, expected 4");
        assert_eq!(check("db=UP").unwrap(), "JSON db is missing");
        assert!(JsonExpectation::parse("status").is_err());
        assert!(JsonExpectation::parse("=x").is_err());
    }

    #[test]
    fn responses_are_judged_on_status_then_body() {
        let check = ResponseCheck {
            body_contains: Some("ok".into()),
            body_regex: Some(Regex::new("^v[0-9]").unwrap()),
            ..ResponseCheck::default()
        };
        assert_eq!(check.judge(200, "v1 ok"), Ok(()));
        assert_eq!(check.judge(503, "v1 ok").unwrap_err(), "status 503");
        assert_eq!(
            check.judge(200, "v1").unwrap_err(),
            "body does not contain \"ok\""
        );
        assert_eq!(
            check.judge(200, "x ok").unwrap_err(),
            "body does not match /^v[0-9]/"
        );
        let json = ResponseCheck {
            json: vec![JsonExpectation::parse("ready=true").unwrap()],
            ..ResponseCheck::default()
        };
        assert!(
            json.judge(200, "<html>")
                .unwrap_err()
                .starts_with("body is not JSON")
        );
        assert!(json.needs_body() && !ResponseCheck::default().needs_body());
    }
}
