//! health-wait: wait until every target is healthy, then exit 0, or report exactly why not.
//!
//! # How it works
//! Flags and the envelope are turned into [`check::Target`]s and a [`check::ResponseCheck`]
//! before any request is sent (bad input: exit 2, nothing sent). Each target then runs its
//! own loop of attempts ([`probe`]), and a [`schedule::Tracker`] decides after every
//! attempt whether the target is healthy or when to try again. The loops report to one
//! place that keeps the envelope's `health[]` current, so an interrupt still writes what
//! is known.

pub mod check;
pub mod probe;
pub mod schedule;

use check::{JsonExpectation, ResponseCheck, StatusSpec, Target};
use clap::Parser;
use common::actions::SummaryTable;
use common::envelope::{HealthAttempt, HealthResult};
use common::http::{TlsOptions, client_builder};
use common::retry::Backoff;
use common::{CommonArgs, Envelope, Error, Result, Ui};
use probe::{AttemptReport, HttpProbe, humanize};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schedule::{Attempt, Decision, StateChange, Tracker};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The tool, for [`common::main`].
pub struct HealthWait;

/// Wait until HTTP and TCP targets are healthy.
#[derive(Debug, Parser)]
#[command(
    name = "health-wait",
    version,
    about = "Wait until HTTP and TCP targets are healthy, then exit 0, or report exactly why not.",
    long_about = "Wait until HTTP and TCP targets are healthy, then exit 0, or report exactly why not.\n\n\
All targets are checked concurrently; the tool exits as soon as every one is healthy. \
A target is healthy after --successes answers in a row that pass every check \
(--status, --body-contains, --body-regex, --json). Between attempts it waits --interval, \
growing by --backoff after each failure up to --max-interval.\n\n\
Exit codes: 0 all healthy, 2 bad flags or input (nothing sent), 3 an upstream step failed, \
124 --timeout passed with a target still unhealthy (each one named with its last failure).",
    after_help = "Examples:\n  \
health-wait --url https://dev.example.com/auth --timeout 5m\n  \
health-wait --url http://127.0.0.1:8080/health --json status=UP --successes 3\n  \
health-wait --tcp db.internal:5432 --interval 1s\n  \
img-build | img-push --ecr | ecs-roll --cluster dev --service auth | health-wait --from-deployments"
)]
pub struct Args {
    /// An HTTP(S) URL that must answer as required. Repeatable.
    #[arg(
        long = "url",
        value_name = "URL",
        env = "HEALTH_WAIT_URL",
        help_heading = "Targets"
    )]
    pub urls: Vec<String>,

    /// A TCP address (HOST:PORT) that must accept connections. Repeatable.
    #[arg(
        long = "tcp",
        value_name = "HOST:PORT",
        env = "HEALTH_WAIT_TCP",
        help_heading = "Targets"
    )]
    pub tcp: Vec<String>,

    /// Also check the endpoints listed in the input's deployments[].endpoints.
    #[arg(long, env = "HEALTH_WAIT_FROM_DEPLOYMENTS", help_heading = "Targets", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub from_deployments: bool,

    /// HTTP method.
    #[arg(
        long,
        default_value = "GET",
        env = "HEALTH_WAIT_METHOD",
        help_heading = "HTTP checks"
    )]
    pub method: String,

    /// Accepted statuses: 200, 2xx, 200,204 or 200-299.
    #[arg(
        long,
        default_value = "2xx",
        env = "HEALTH_WAIT_STATUS",
        help_heading = "HTTP checks"
    )]
    pub status: String,

    /// The body must contain TEXT.
    #[arg(
        long,
        value_name = "TEXT",
        env = "HEALTH_WAIT_BODY_CONTAINS",
        help_heading = "HTTP checks"
    )]
    pub body_contains: Option<String>,

    /// The body must match the regular expression RE.
    #[arg(
        long,
        value_name = "RE",
        env = "HEALTH_WAIT_BODY_REGEX",
        help_heading = "HTTP checks"
    )]
    pub body_regex: Option<String>,

    /// The JSON body must have VALUE at PATH (a JSON pointer /a/0/b or a path a[0].b);
    /// VALUE is JSON (true, 3, "x") or a plain string. Repeatable.
    #[arg(
        long = "json",
        value_name = "PATH=VALUE",
        env = "HEALTH_WAIT_JSON",
        help_heading = "HTTP checks"
    )]
    pub json: Vec<String>,

    /// A request header, 'Name: value'. Repeatable. Values of credential headers
    /// (Authorization, Cookie, *token*, *key*, *secret*) are masked in all output.
    #[arg(
        long = "header",
        short = 'H',
        value_name = "NAME: VALUE",
        help_heading = "HTTP checks"
    )]
    pub headers: Vec<String>,

    /// Trust the PEM CA certificates in FILE, in addition to the system store.
    #[arg(
        long,
        value_name = "FILE",
        env = "HEALTH_WAIT_CACERT",
        help_heading = "HTTP checks"
    )]
    pub cacert: Option<PathBuf>,

    /// Do not verify TLS certificates.
    #[arg(
        long,
        short = 'k',
        env = "HEALTH_WAIT_INSECURE",
        help_heading = "HTTP checks", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,

    /// Give up on the whole wait after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_TIMEOUT", help_heading = "Schedule")]
    pub timeout: Duration,

    /// Give up on one attempt after this long.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_ATTEMPT_TIMEOUT", help_heading = "Schedule")]
    pub attempt_timeout: Duration,

    /// Wait this long between attempts (shortened by up to 20% of jitter, never lengthened).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_INTERVAL", help_heading = "Schedule")]
    pub interval: Duration,

    /// The interval grows after each failure up to this.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_MAX_INTERVAL", help_heading = "Schedule")]
    pub max_interval: Duration,

    /// How much the interval grows after each failure (1 keeps it fixed).
    #[arg(
        long,
        default_value_t = 1.5,
        env = "HEALTH_WAIT_BACKOFF",
        help_heading = "Schedule"
    )]
    pub backoff: f64,

    /// Successful attempts in a row before a target counts as healthy.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), env = "HEALTH_WAIT_SUCCESSES", help_heading = "Schedule")]
    pub successes: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl common::Tool for HealthWait {
    const NAME: &'static str = "health-wait";
    type Args = Args;

    fn common_args(args: &Args) -> &CommonArgs {
        &args.common
    }

    async fn run(args: Args, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
        let plan = Plan::from_args(&args, envelope, ui)?;
        wait(plan, envelope, ui).await
    }
}

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
    // Reads and checks --cacert; building the client is what loads the trust store.
    let builder = client_builder(HealthWait::NAME_STR, &tls)?;
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

impl HealthWait {
    const NAME_STR: &'static str = <HealthWait as common::Tool>::NAME;
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue)> {
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

/// A report from a target's loop.
struct Update {
    index: usize,
    report: AttemptReport,
    healthy: bool,
    attempts: u32,
    change: Option<StateChange>,
}

/// Checks every target concurrently until all are healthy or the deadline passes.
async fn wait(plan: Plan, envelope: &mut Envelope, ui: &Ui) -> Result<()> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + plan.timeout;
    let slots = reserve_health_entries(envelope, &plan.targets);
    let (sender, mut updates) = mpsc::channel::<Update>(64);
    let mut loops = tokio::task::JoinSet::new();
    for (index, target) in plan.targets.iter().enumerate() {
        loops.spawn(check_until_healthy(
            index,
            target.clone(),
            plan.http.clone(),
            Tracker::new(plan.successes, plan.backoff),
            plan.attempt_timeout,
            deadline,
            sender.clone(),
        ));
    }
    drop(sender);
    let total = plan.targets.len();
    let spinner = ui.spinner(format!("waiting for {total} target(s)"));
    let mut healthy = 0;
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { break };
                let target = &plan.targets[update.index];
                report_update(ui, target, &update, started.elapsed());
                let entry = &mut envelope.health[slots[update.index]];
                record(entry, &update, started.elapsed());
                if update.healthy {
                    healthy += 1;
                    if healthy == total {
                        break;
                    }
                }
                spinner.set_message(format!("waiting for {total} target(s), {healthy} healthy"));
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    loops.abort_all();
    drop(spinner);
    for &slot in &slots {
        if !envelope.health[slot].healthy {
            envelope.health[slot].elapsed_ms = started.elapsed().as_millis() as u64;
        }
    }
    write_actions_report(ui, envelope, &slots);
    let unhealthy: Vec<&HealthResult> = slots
        .iter()
        .map(|&slot| &envelope.health[slot])
        .filter(|h| !h.healthy)
        .collect();

    if unhealthy.is_empty() {
        ui.line(&format!(
            "all {total} target(s) healthy after {}",
            humanize(started.elapsed())
        ));
        return Ok(());
    }
    let list = unhealthy
        .iter()
        .map(|h| {
            let reason = h
                .last
                .as_ref()
                .and_then(|l| l.error.clone())
                .unwrap_or_else(|| "no answer yet".into());
            format!("{} ({reason}, {} attempts)", h.target, h.attempts)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let message = format!(
        "{} of {total} target(s) still unhealthy after {}: {list}",
        unhealthy.len(),
        humanize(plan.timeout)
    );
    // Target loops end only when healthy or at the deadline, so an unhealthy target here
    // always means the deadline passed.
    Err(Error::timed_out(message))
}

/// Puts one `health[]` entry per target in the envelope (replacing an earlier entry for the
/// same target) and returns each target's index into `health[]`.
fn reserve_health_entries(envelope: &mut Envelope, targets: &[Target]) -> Vec<usize> {
    // By name, so that many targets cost one pass over the entries, not one per target.
    let mut known: HashMap<String, usize> = HashMap::with_capacity(envelope.health.len());
    for (slot, entry) in envelope.health.iter().enumerate() {
        known.entry(entry.target.clone()).or_insert(slot);
    }
    targets
        .iter()
        .map(|target| {
            let name = target.to_string();
            let fresh = HealthResult {
                target: name.clone(),
                ..HealthResult::default()
            };
            match known.get(&name) {
                Some(&slot) => {
                    envelope.health[slot] = fresh;
                    slot
                }
                None => {
                    envelope.health.push(fresh);
                    known.insert(name, envelope.health.len() - 1);
                    envelope.health.len() - 1
                }
            }
        })
        .collect()
}

fn record(entry: &mut HealthResult, update: &Update, elapsed: Duration) {
    entry.healthy = update.healthy;
    entry.attempts = update.attempts;
    entry.elapsed_ms = elapsed.as_millis() as u64;
    entry.last = Some(HealthAttempt {
        status: update.report.status,
        latency_ms: update.report.latency.as_millis() as u64,
        error: match &update.report.outcome {
            Attempt::Success => None,
            Attempt::Failure(reason) => Some(reason.clone()),
        },
        extra: Default::default(),
    });
}

fn report_update(ui: &Ui, target: &Target, update: &Update, elapsed: Duration) {
    let latency = update.report.latency.as_millis();
    match &update.report.outcome {
        Attempt::Success => {
            tracing::debug!("{target}: attempt {}: ok ({latency} ms)", update.attempts)
        }
        Attempt::Failure(reason) => {
            tracing::debug!(
                "{target}: attempt {}: {reason} ({latency} ms)",
                update.attempts
            );
        }
    }
    let line = match &update.change {
        None => return,
        Some(StateChange::Failing(reason)) => format!("{target}: not healthy yet: {reason}"),
        Some(StateChange::Recovering {
            successes,
            required,
        }) => {
            format!("{target}: answering, {successes}/{required} successes in a row")
        }
        Some(StateChange::Healthy) => format!(
            "{target}: healthy after {} attempt(s) in {}",
            update.attempts,
            humanize(elapsed)
        ),
    };
    ui.line(&line);
}

/// One target's loop: attempt, decide, report, sleep; ends when healthy or at the deadline.
async fn check_until_healthy(
    index: usize,
    target: Target,
    http: Option<Arc<HttpProbe>>,
    mut tracker: Tracker,
    attempt_timeout: Duration,
    deadline: tokio::time::Instant,
    updates: mpsc::Sender<Update>,
) {
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return;
        }
        let cut_short = remaining < attempt_timeout;
        let report = probe::attempt(&target, http.as_deref(), attempt_timeout.min(remaining)).await;
        if cut_short && report.timed_out {
            // The overall deadline, not the target, ended this attempt: it says nothing new.
            return;
        }
        let (decision, change) = tracker.observe(&report.outcome, rand::random::<f64>());
        let healthy = decision == Decision::Healthy;
        let update = Update {
            index,
            report,
            healthy,
            attempts: tracker.attempts(),
            change,
        };
        if updates.send(update).await.is_err() {
            return;
        }
        match decision {
            Decision::Healthy => return,
            Decision::RetryAfter(delay) => tokio::time::sleep(delay).await,
        }
    }
}

fn write_actions_report(ui: &Ui, envelope: &Envelope, slots: &[usize]) {
    if ui.actions().is_none() {
        return;
    }
    let results: Vec<&HealthResult> = slots.iter().map(|&s| &envelope.health[s]).collect();
    let all_healthy = results.iter().all(|h| h.healthy);
    ui.set_output("healthy", if all_healthy { "true" } else { "false" });
    let mut table = SummaryTable::new(&["target", "healthy", "attempts", "elapsed", "last"])
        .titled("health-wait");
    for h in results {
        let last = h
            .last
            .as_ref()
            .map(|l| {
                l.error.clone().unwrap_or_else(|| {
                    format!(
                        "ok{}",
                        l.status.map(|s| format!(" ({s})")).unwrap_or_default()
                    )
                })
            })
            .unwrap_or_default();
        table.row([
            h.target.clone(),
            if h.healthy { "yes" } else { "no" }.to_owned(),
            h.attempts.to_string(),
            format!("{} ms", h.elapsed_ms),
            last,
        ]);
    }
    ui.summary(&table.to_markdown());
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_target_seen_before_reuses_its_health_entry() {
        let mut envelope = Envelope::default();
        envelope.health.push(HealthResult {
            target: "tcp://db:5432".into(),
            healthy: true,
            attempts: 9,
            ..HealthResult::default()
        });
        let targets = vec![
            check::parse_url("http://a/").unwrap(),
            check::parse_tcp("db:5432").unwrap(),
        ];
        let slots = reserve_health_entries(&mut envelope, &targets);
        assert_eq!(slots, [1, 0]);
        assert_eq!(envelope.health.len(), 2);
        assert_eq!(envelope.health[0].attempts, 0);
    }
}
