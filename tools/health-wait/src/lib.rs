//! health-wait: wait until every target is healthy, then exit 0, or report exactly why not.
//!
//! # How it works
//! Flags and the envelope are turned into [`check::Target`]s and a [`check::ResponseCheck`]
//! before any request is sent (bad input: exit 2, nothing sent). Each target then runs its
//! own loop of attempts ([`probe`]), and a [`schedule::Tracker`] decides after every
//! attempt whether the target is healthy or when to try again. The loops report to one
//! place that keeps the envelope's `health[]` current, so an interrupt still writes what
//! is known.
//!
//! # Modules
//! - `lib.rs`: the flags; [`plan`]: the flags and input turned once into a [`plan::Plan`];
//! - [`check`], [`schedule`] (deciding, pure): what counts as healthy, when to try again;
//! - `wait` and [`probe`] (doing): the loops, one HTTP client or TCP connect per attempt;
//! - `record`: the envelope's `health[]`, the step outputs and summary.

pub mod check;
pub mod connect_to;
pub mod plan;
pub mod probe;
mod record;
pub mod schedule;
mod wait;

use clap::Parser;
use common::{CommonArgs, Envelope, Result, Ui};
use plan::Plan;
use std::path::PathBuf;
use std::time::Duration;

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
(--status, --body-contains, --body-regex, --json).\n\n\
Schedule: by default each target is asked every 250 ms (jitter shortens a wait to as little as \
200 ms, never lengthens it), whatever the wait has lasted, so a target is seen healthy within \
about a quarter of a second of turning healthy, at the start of a deploy or ten minutes in. \
A target therefore sees at most 5 requests a second from one health-wait, each on a new \
connection; while it is not listening yet, an attempt is a refused TCP connection that never \
reaches the service. An attempt that hangs is given up after --attempt-timeout, and the next \
one starts after the interval, so a slow target is never asked by more than one request at a \
time. To ask less often, raise --interval, or let it grow after each failure with --backoff \
(e.g. --backoff 1.5 --max-interval 10s: 250 ms, 375 ms, ... up to 10 s).\n\n\
Exit codes: 0 all healthy, 2 bad flags or input (nothing sent), 3 an upstream step failed, \
124 --timeout passed with a target still unhealthy (each one named with its last failure).",
    after_help = "Examples:\n  \
health-wait --url https://dev.example.com/auth --timeout 5m\n  \
health-wait --url http://127.0.0.1:8080/health --json status=UP --successes 3\n  \
health-wait --tcp db.internal:5432 --interval 1s\n  \
health-wait --url http://staging.example.com/auth --connect-to staging.example.com:80:10.0.3.7:80\n  \
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

    /// Send requests for HOST1:PORT1 to HOST2:PORT2 (an IP address), keeping the URL's host
    /// in the Host header and for TLS, as curl's --connect-to does: checks a host-routed load
    /// balancer before DNS points the host at it. PORT1 may be empty (any). HTTP targets on
    /// their scheme's default port only. Repeatable.
    #[arg(
        long = "connect-to",
        value_name = "HOST1:PORT1:HOST2:PORT2",
        env = "HEALTH_WAIT_CONNECT_TO",
        value_delimiter = ',',
        help_heading = "HTTP checks"
    )]
    pub connect_to: Vec<String>,

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
    /// The default, 250ms, is at most 5 requests a second per target.
    #[arg(long, default_value = "250ms", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_INTERVAL", help_heading = "Schedule")]
    pub interval: Duration,

    /// With --backoff above 1, the interval grows after each failure up to this.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = common::cli::parse_duration, env = "HEALTH_WAIT_MAX_INTERVAL", help_heading = "Schedule")]
    pub max_interval: Duration,

    /// How much the interval grows after each failure in a row (1, the default, keeps it
    /// fixed: a target that turns healthy late is seen as quickly as one that turns healthy
    /// early).
    #[arg(
        long,
        default_value_t = 1.0,
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
        wait::wait(plan, envelope, ui).await
    }
}
