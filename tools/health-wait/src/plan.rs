//! The flags and the input turned once into a [`Plan`]: targets, the response check, the
//! one HTTP client, the schedule. Any problem is a usage error before a request is sent.

use crate::check::{self, JsonExpectation, ResponseCheck, StatusSpec, Target};
use crate::connect_to::{self, ConnectTo};
use crate::probe::HttpProbe;
use crate::schedule::{self};
use crate::{Args, HealthWait};
use common::http::{TlsOptions, client_builder};
use common::retry::Backoff;
use common::{Envelope, Error, Result, Ui};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// Everything decided before the first request.
#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    /// How HTTP targets are asked, shared by all of them; `None` when every target is TCP
    /// (then no HTTP client is built and the system trust store is not read).
    pub http: Option<Arc<HttpProbe>>,
    pub backoff: Backoff,
    pub successes: u32,
    pub timeout: Duration,
    pub attempt_timeout: Duration,
}

impl Plan {
    /// Validates every flag and collects the targets; any problem is a usage error and
    /// nothing has been sent.
    pub fn from_args(args: &Args, envelope: &Envelope, ui: &Ui) -> Result<Plan> {
        let mut targets = Vec::new();
        for url in &args.urls {
            targets.push(check::parse_url(url).map_err(|e| Error::usage(format!("--url: {e}")))?);
        }
        for address in &args.tcp {
            targets.push(check::parse_tcp(address).map_err(Error::usage)?);
        }
        if args.from_deployments {
            let endpoints: Vec<(usize, &String)> = envelope
                .deployments
                .iter()
                .enumerate()
                .flat_map(|(i, d)| d.endpoints.iter().map(move |e| (i, e)))
                .collect();
            if endpoints.is_empty() {
                return Err(Error::usage(
                    "--from-deployments: the input has no deployments[].endpoints",
                ));
            }
            for (index, endpoint) in endpoints {
                let target = check::parse_endpoint(endpoint).map_err(|e| {
                    Error::usage(format!("input deployments[{index}].endpoints: {e}"))
                })?;
                targets.push(target);
            }
        }
        targets.dedup();
        if targets.is_empty() {
            return Err(Error::usage(
                "no targets: give --url, --tcp, or --from-deployments with an input that lists endpoints",
            ));
        }
        if !(args.backoff.is_finite() && args.backoff >= 1.0) {
            return Err(Error::usage(format!(
                "--backoff {} must be at least 1",
                args.backoff
            )));
        }
        if args.interval.is_zero() || args.attempt_timeout.is_zero() || args.timeout.is_zero() {
            return Err(Error::usage(
                "--interval, --attempt-timeout and --timeout must be above zero",
            ));
        }
        let http = http_probe(args, ui, &targets)?.map(Arc::new);
        Ok(Plan {
            targets,
            http,
            backoff: schedule::backoff(args.interval, args.max_interval, args.backoff),
            successes: args.successes,
            timeout: args.timeout,
            attempt_timeout: args.attempt_timeout,
        })
    }
}

/// Checks the HTTP flags (even when no target is HTTP: a bad flag is a usage error either
/// way) and builds the one client all HTTP targets share, when there is an HTTP target.
fn http_probe(args: &Args, ui: &Ui, targets: &[Target]) -> Result<Option<HttpProbe>> {
    let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::usage(format!("--method {:?} is not an HTTP method", args.method)))?;
    let mut headers = HeaderMap::new();
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        if is_credential_header(name.as_str()) {
            if let Ok(text) = value.to_str() {
                ui.mask(text);
            }
        }
        headers.append(name, value);
    }
    let status =
        StatusSpec::parse(&args.status).map_err(|e| Error::usage(format!("--status: {e}")))?;
    let body_regex = args
        .body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| Error::usage(format!("--body-regex: {}", one_line_regex_error(&e))))?;
    let json = args
        .json
        .iter()
        .map(|j| JsonExpectation::parse(j))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::usage)?;
    let tls = TlsOptions {
        ca_file: args.cacert.clone(),
        insecure: args.insecure,
    };
    let rules = args
        .connect_to
        .iter()
        .map(|text| ConnectTo::parse(text))
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(|rules| connect_to::rules_for(&rules, targets))
        .map_err(Error::usage)?;
    // Reads and checks --cacert; building the client is what loads the trust store.
    let mut builder = client_builder(HealthWait::NAME_STR, &tls)?;
    for rule in &rules {
        ui.line(&format!(
            "{}{} is reached at {} (--connect-to)",
            rule.host,
            rule.port.map(|p| format!(":{p}")).unwrap_or_default(),
            rule.to
        ));
        builder = builder.resolve(&rule.host, rule.to);
    }
    if !targets
        .iter()
        .any(|target| matches!(target, Target::Http(_)))
    {
        return Ok(None);
    }
    let client = builder
        // Each attempt opens a fresh connection: a pooled one could hide a listener that
        // went away, and a health check should see what a new client sees.
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| Error::usage(format!("cannot set up the HTTP client: {e}")))?;
    Ok(Some(HttpProbe {
        client,
        method,
        headers,
        check: ResponseCheck {
            status,
            body_contains: args.body_contains.clone(),
            body_regex,
            json,
        },
    }))
}

/// regex's syntax errors span several lines (pattern, caret, message): keep the message.
fn one_line_regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

pub(crate) fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue)> {
    let invalid = |why: &str| {
        Error::usage(format!(
            "--header {:?}: {why} (expected 'Name: value')",
            redact_header(text)
        ))
    };
    let (name, value) = text.split_once(':').ok_or_else(|| invalid("no ':'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid("bad name"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| invalid("bad value"))?;
    Ok((name, value))
}

/// The header with its value hidden, for error messages.
fn redact_header(text: &str) -> String {
    match text.split_once(':') {
        Some((name, _)) => format!("{name}: ***"),
        None => "***".to_owned(),
    }
}

fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "key",
        "secret",
        "password",
        "auth",
    ]
    .iter()
    .any(|word| name.contains(word))
}

impl HealthWait {
    const NAME_STR: &'static str = <HealthWait as common::Tool>::NAME;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn headers_parse_and_credentials_are_recognised() {
        let (name, value) = parse_header("X-Api-Key: abc123").unwrap();
        assert_eq!(name.as_str(), "x-api-key");
        assert_eq!(value, "abc123");
        assert!(is_credential_header("Authorization"));
        assert!(is_credential_header("X-Api-Key"));
        assert!(!is_credential_header("Accept"));
        let err = parse_header("Authorization Bearer s3cr3t")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    fn plan(flags: &[&str]) -> Result<Plan> {
        let args =
            Args::try_parse_from(std::iter::once("health-wait").chain(flags.iter().copied()))
                .expect("flags parse");
        Plan::from_args(&args, &Envelope::default(), &Ui::silent("health-wait"))
    }

    #[test]
    fn the_http_client_is_built_only_for_http_targets() {
        let tcp_only = plan(&["--tcp", "127.0.0.1:9", "--tcp", "127.0.0.1:10"]).unwrap();
        assert!(tcp_only.http.is_none());
        // HTTP flags are still checked when no target needs them.
        let err = plan(&["--tcp", "127.0.0.1:9", "--status", "20x"]).unwrap_err();
        assert!(err.to_string().contains("--status"), "{err}");
        let mixed = plan(&["--tcp", "127.0.0.1:9", "--url", "http://127.0.0.1:9/"]).unwrap();
        assert!(mixed.http.is_some());
    }

    #[test]
    fn by_default_a_target_is_asked_every_200_to_250_ms_however_long_the_wait() {
        let default = plan(&["--url", "http://127.0.0.1:9/"]).unwrap();
        for failures in [1, 10, 240, 2400] {
            let longest = default.backoff.delay(failures, 0.0);
            let shortest = default.backoff.delay(failures, 1.0);
            assert_eq!(
                longest,
                Duration::from_millis(250),
                "after {failures} failures"
            );
            assert_eq!(
                shortest,
                Duration::from_millis(200),
                "after {failures} failures"
            );
        }
        // --backoff still grows the interval, up to --max-interval.
        let growing = plan(&["--url", "http://127.0.0.1:9/", "--backoff", "2"]).unwrap();
        assert_eq!(growing.backoff.delay(2, 0.0), Duration::from_millis(500));
        assert_eq!(growing.backoff.delay(100, 0.0), Duration::from_secs(10));
    }
}
