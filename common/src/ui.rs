//! Everything a human reads: log lines, progress, Actions groups, masks, summaries.
//!
//! Logs go through `tracing` to stderr. Progress bars are drawn only when stderr is a
//! terminal; otherwise long work reports one plain line per event. Every registered
//! secret is masked for GitHub Actions and redacted from anything this process writes.

use crate::actions::{self, Actions};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, fmt};

/// How verbose stderr is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// The default: one line per event.
    Normal,
    /// `-v`: every attempt, every request.
    Verbose,
    /// `-vv`: also the libraries' own debug logs.
    Trace,
}

impl Verbosity {
    /// From the `-q` flag and the number of `-v`s. `RUNNER_DEBUG=1` (an Actions re-run with
    /// debug logging) counts as one `-v`.
    pub fn from_flags(quiet: bool, verbose: u8, runner_debug: bool) -> Verbosity {
        match (quiet, verbose.max(u8::from(runner_debug))) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            _ => Verbosity::Trace,
        }
    }
}

/// The secrets registered so far; redacted from every byte this process writes.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The progress bars on screen, when stderr is a terminal; log lines are printed above them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|poison| poison.into_inner());
    secrets.iter().fold(text.to_owned(), |acc, secret| {
        acc.replace(secret.as_str(), "***")
    })
}

/// Writes one already formatted chunk to stderr: redacted, above any progress bars.
/// A closed stderr is ignored: a tool must not fail because nobody reads its logs.
pub fn write_stderr(text: &str) {
    let text = redact(text);
    let write = || {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    };
    match BARS.get() {
        Some(bars) => bars.suspend(write),
        None => write(),
    }
}

/// The handle tools use for human output.
#[derive(Debug, Clone)]
pub struct Ui {
    tool: &'static str,
    verbosity: Verbosity,
    actions: Option<Actions>,
    bars: bool,
}

impl Ui {
    /// Sets up logging for `tool` (its crate's log target is `tool` with `-` as `_`).
    /// `RUST_LOG` overrides the level chosen by the flags. Call once per process.
    pub fn init(tool: &'static str, verbosity: Verbosity) -> Ui {
        let actions = Actions::from_env();
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let color = stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let bars = stderr_is_terminal && verbosity != Verbosity::Quiet && actions.is_none();
        if bars {
            let _ = BARS.set(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        }
        let filter = std::env::var("RUST_LOG")
            .ok()
            .and_then(|directives| EnvFilter::try_new(directives).ok())
            .unwrap_or_else(|| EnvFilter::new(default_directives(tool, verbosity)));
        let _ = fmt()
            .with_env_filter(filter)
            .with_ansi(color)
            .event_format(LineFormat {
                actions: actions.is_some(),
            })
            .with_writer(StderrWriter)
            .try_init();
        Ui {
            tool,
            verbosity,
            actions,
            bars,
        }
    }

    /// A `Ui` that draws nothing and knows no Actions environment (for in-process tests).
    pub fn silent(tool: &'static str) -> Ui {
        Ui {
            tool,
            verbosity: Verbosity::Quiet,
            actions: None,
            bars: false,
        }
    }

    /// The tool's name.
    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// How verbose the user asked stderr to be.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// The GitHub Actions environment, when running under Actions.
    pub fn actions(&self) -> Option<&Actions> {
        self.actions.as_ref()
    }

    /// Registers a secret: masked under Actions before it could appear, and redacted from
    /// everything this process writes from now on. Call it as soon as a secret is known.
    pub fn mask(&self, secret: &str) {
        register_secret(secret, self.actions.is_some());
    }

    /// Starts a collapsible group of log lines (`::group::` under Actions); the group ends
    /// when the returned guard is dropped.
    pub fn group(&self, title: &str) -> Group {
        let in_actions = self.actions.is_some();
        if in_actions {
            write_stderr(&format!("{}\n", actions::group_line(title)));
        }
        Group { in_actions }
    }

    /// Sets a step output (`$GITHUB_OUTPUT`) under Actions; does nothing elsewhere.
    pub fn set_output(&self, key: &str, value: &str) {
        if let Some(actions) = &self.actions
            && let Err(err) = actions.set_output(key, &redact(value))
        {
            tracing::warn!("cannot write $GITHUB_OUTPUT: {err}");
        }
    }

    /// Sets several step outputs (see [`actions::item_outputs`]).
    pub fn set_outputs(&self, outputs: &[(String, String)]) {
        for (key, value) in outputs {
            self.set_output(key, value);
        }
    }

    /// Whether [`Ui::summary`] writes anywhere (a step summary under Actions): a tool can
    /// skip building a summary nobody will read.
    pub fn writes_summary(&self) -> bool {
        self.actions.as_ref().is_some_and(Actions::writes_summary)
    }

    /// Appends Markdown to the step summary under Actions; does nothing elsewhere.
    pub fn summary(&self, markdown: &str) {
        if let Some(actions) = &self.actions
            && let Err(err) = actions.append_summary(&redact(markdown))
        {
            tracing::warn!("cannot write $GITHUB_STEP_SUMMARY: {err}");
        }
    }

    /// A spinner for work of unknown length. On a terminal it animates `message`; elsewhere
    /// it draws nothing, and only [`Progress::finish`] prints a line.
    pub fn spinner(&self, message: impl Into<String>) -> Progress {
        let bar = self.new_bar(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(message.into());
        Progress { bar }
    }

    /// A spinner that also shows how long it has run (`⠋ [2/5] RUN make 12s`), for one of
    /// several things running at once; the message is cut to the terminal's width, never
    /// wrapped. Drawn on a terminal only, as [`Ui::spinner`].
    pub fn timer(&self, message: impl Into<String>) -> Progress {
        let bar = self.new_bar(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(message.into());
        Progress { bar }
    }

    /// Whether progress is drawn live (stderr is a terminal, not `-q`, not under Actions);
    /// off a terminal tools print plain lines instead.
    pub fn draws_bars(&self) -> bool {
        self.bars
    }

    /// A bar for work of known size (`total` units, e.g. bytes or files).
    pub fn bar(&self, total: u64, message: impl Into<String>) -> Progress {
        let bar = self.new_bar(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_message(message.into());
        Progress { bar }
    }

    /// A bar for bytes being sent: the sizes, the rate and an estimate of the time left are
    /// drawn by the bar itself (`12.10 MB/242.00 MB 35.20 MB/s ~7s`, powers of 1000 as docker shows them).
    pub fn byte_bar(&self, total: u64, message: impl Into<String>) -> Progress {
        let bar = self.new_bar(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ~{eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        bar.set_message(message.into());
        Progress { bar }
    }

    fn new_bar(&self, make: impl FnOnce() -> ProgressBar) -> ProgressBar {
        match (self.bars, BARS.get()) {
            (true, Some(bars)) => bars.add(make()),
            _ => ProgressBar::hidden(),
        }
    }

    /// Reports the tool's failure: `tool: error: …`, or `::error::` under Actions.
    pub fn report_error(&self, message: &str) {
        let line = match &self.actions {
            Some(_) => actions::error_line(self.tool, message),
            None => format!("{}: error: {message}", self.tool),
        };
        write_stderr(&format!("{line}\n"));
    }

    /// One plain line on stderr, shown unless `-q`.
    pub fn line(&self, message: &str) {
        if self.verbosity != Verbosity::Quiet {
            write_stderr(&format!("{message}\n"));
        }
    }
}

fn register_secret(secret: &str, in_actions: bool) {
    // Very short strings would redact innocent text everywhere; no real secret is that short.
    if secret.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|poison| poison.into_inner());
    if secrets.iter().any(|known| known == secret) {
        return;
    }
    secrets.push(secret.to_owned());
    // Longest first, so a secret that contains another is redacted whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    drop(secrets);
    if in_actions {
        // Written raw: this is the one line that must carry the secret itself.
        let _ = writeln!(std::io::stderr().lock(), "{}", actions::mask_line(secret));
    }
}

/// Ends an Actions group when dropped.
#[must_use = "the group ends when this is dropped"]
pub struct Group {
    in_actions: bool,
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.in_actions {
            write_stderr(&format!("{}\n", actions::endgroup_line()));
        }
    }
}

/// A progress bar or spinner (hidden when stderr is not a terminal).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Updates the text next to the bar.
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Sets how much is done.
    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// Adds to how much is done.
    pub fn inc(&self, delta: u64) {
        self.bar.inc(delta);
    }

    /// Sets the total.
    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// Removes the bar and prints `message` as a plain line (both on and off a terminal),
    /// unless `-q`.
    pub fn finish(self, ui: &Ui, message: &str) {
        self.bar.finish_and_clear();
        ui.line(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

fn default_directives(tool: &str, verbosity: Verbosity) -> String {
    let target = tool.replace('-', "_");
    match verbosity {
        Verbosity::Quiet => "error".to_owned(),
        // Libraries' warnings (the AWS SDK's multi-line dumps while it looks for a region
        // or credentials) are noise next to the tool's own one-line errors: -v shows them.
        Verbosity::Normal => format!("error,{target}=info,common=info"),
        Verbosity::Verbose => format!("warn,{target}=debug,common=debug"),
        Verbosity::Trace => format!("debug,{target}=trace,common=trace"),
    }
}

/// `message` for info, `warning: message` (or `::warning::` under Actions), `error: message`.
struct LineFormat {
    actions: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let color = writer.has_ansi_escapes();
        let prefix = match *event.metadata().level() {
            Level::ERROR => Some(("error: ", "\x1b[31m")),
            Level::WARN if self.actions => Some(("::warning::", "")),
            Level::WARN => Some(("warning: ", "\x1b[33m")),
            Level::DEBUG | Level::TRACE => Some(("debug: ", "\x1b[2m")),
            Level::INFO => None,
        };
        if let Some((text, ansi)) = prefix {
            if color && !ansi.is_empty() {
                write!(writer, "{ansi}{text}\x1b[0m")?;
            } else {
                write!(writer, "{text}")?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The tracing writer: whole events to stderr through [`write_stderr`].
struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;
    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_redacted_longest_first() {
        register_secret("hunter2-token", false);
        register_secret("hunter2-token-extended", false);
        register_secret("abc", false); // too short to register
        assert_eq!(
            redact("pw=hunter2-token-extended and hunter2-token, abc"),
            "pw=*** and ***, abc"
        );
    }

    #[test]
    fn verbosity_follows_flags_and_runner_debug() {
        assert_eq!(Verbosity::from_flags(true, 2, true), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, 0, false), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(false, 0, true), Verbosity::Verbose);
        assert_eq!(Verbosity::from_flags(false, 3, false), Verbosity::Trace);
    }
}
