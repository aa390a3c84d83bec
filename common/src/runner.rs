//! The one `main` every tool shares: parse flags, read the envelope, run the tool, write
//! the envelope, exit with the code its outcome calls for (DESIGN.md rules 1–6).

use crate::cli::{CommonArgs, generate, generated_request, parse_args};
use crate::envelope::{Envelope, Failure};
use crate::error::{Error, Exit, Result};
use crate::input::{Input, read_input};
use crate::output::{render, write_document, write_raw};
use crate::ui::{Ui, Verbosity, write_stderr};
use std::future::Future;
use std::process::ExitCode;

/// A shipkit tool: its flags and what it does to the envelope.
pub trait Tool {
    /// The binary's name (`health-wait`); also its log target and its name in `failed.tool`.
    const NAME: &'static str;

    /// The tool's flags; must flatten [`CommonArgs`].
    type Args: clap::Parser;

    /// The shared flags inside `args`.
    fn common_args(args: &Self::Args) -> &CommonArgs;

    /// Does the work, adding results to `envelope` as they become known: on failure or
    /// interruption the envelope is written as it stands, with `failed` set.
    fn run(args: Self::Args, envelope: &mut Envelope, ui: &Ui) -> impl Future<Output = Result<()>>;
}

/// Runs tool `T` as a process; call it from `main`.
pub fn main<T: Tool>() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    if let Some(request) = generated_request(&argv) {
        return print_generated::<T>(request);
    }
    let (args, common) = match parse_args::<T::Args>(argv, T::common_args) {
        Ok(parsed) => parsed,
        Err(err) => return report_usage_error::<T>(&err),
    };
    let runner_debug = std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1");
    let ui = Ui::init(
        T::NAME,
        Verbosity::from_flags(common.quiet, common.verbose, runner_debug),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            ui.report_error(&format!("cannot start the async runtime: {err}"));
            return ExitCode::from(Exit::Failed.code());
        }
    };
    let exit = runtime.block_on(run_with_input::<T>(args, &common, &ui));
    // Background work (an HTTP connection pool, a watcher) must not hold the exit.
    runtime.shutdown_background();
    ExitCode::from(exit.code())
}

/// `--completions SHELL` or `--man`: the text on stdout, exit 0; a bad request is a usage
/// error (one line, exit 2) with no envelope, since nobody pipes these into a tool.
fn print_generated<T: Tool>(
    request: std::result::Result<crate::cli::Generated, String>,
) -> ExitCode {
    match request {
        Ok(what) => match write_document(&generate::<T::Args>(what, T::NAME), None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                write_stderr(&format!("{}: error: cannot write stdout: {err}\n", T::NAME));
                ExitCode::from(Exit::Failed.code())
            }
        },
        Err(message) => {
            write_stderr(&format!("{}: error: {message}\n", T::NAME));
            ExitCode::from(Exit::Usage.code())
        }
    }
}

async fn run_with_input<T: Tool>(args: T::Args, common: &CommonArgs, ui: &Ui) -> Exit {
    let mut envelope = match read_input(common.input.as_deref()) {
        Ok(Input::Envelope(envelope)) => *envelope,
        Ok(Input::UpstreamFailed { raw, tool, error }) => {
            ui.line(&format!(
                "{}: skipped: upstream step {tool} failed: {error}",
                T::NAME
            ));
            if let Err(err) = write_raw(&raw, common.output.as_deref()) {
                ui.report_error(&format!("cannot write the output: {err}"));
            }
            return Exit::UpstreamFailed;
        }
        Err(err) => {
            // The input is unusable: hand on a fresh envelope that says so.
            return finish::<T>(Envelope::default(), Err(err), common, ui);
        }
    };
    let result = tokio::select! {
        result = T::run(args, &mut envelope, ui) => result,
        () = interrupted() => Err(Error::Interrupted),
    };
    finish::<T>(envelope, result, common, ui)
}

/// Records the outcome in the envelope, writes it, reports the error, picks the exit code.
fn finish<T: Tool>(
    mut envelope: Envelope,
    result: Result<()>,
    common: &CommonArgs,
    ui: &Ui,
) -> Exit {
    let exit = match &result {
        Ok(()) => Exit::Done,
        Err(err) => err.exit(),
    };
    if let Err(err) = &result {
        let message = err.to_string();
        ui.report_error(&message);
        envelope.failed = Some(Failure {
            tool: T::NAME.to_owned(),
            error: message,
            exit_code: exit.code(),
            extra: Default::default(),
        });
    }
    let text = render(&envelope, common.pretty);
    if let Err(err) = write_document(text.as_bytes(), common.output.as_deref()) {
        ui.report_error(&format!("cannot write the output: {err}"));
        return if exit == Exit::Done {
            Exit::Failed
        } else {
            exit
        };
    }
    exit
}

/// Resolves on SIGINT or SIGTERM (an Actions job being cancelled sends both).
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Bad flags: `--help`/`--version` print and exit 0; anything else is one line on stderr, a
/// failed envelope on stdout, exit 2.
fn report_usage_error<T: Tool>(err: &clap::Error) -> ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let message = usage_error_line(&err.render().to_string());
    let line = format!("{message} (see '{} --help')", T::NAME);
    match crate::actions_if_enabled() {
        true => write_stderr(&format!("{}\n", crate::actions::error_line(T::NAME, &line))),
        false => write_stderr(&format!("{}: error: {line}\n", T::NAME)),
    }
    let envelope = Envelope {
        failed: Some(Failure {
            tool: T::NAME.to_owned(),
            error: line,
            exit_code: Exit::Usage.code(),
            extra: Default::default(),
        }),
        ..Envelope::default()
    };
    let _ = write_document(render(&envelope, false).as_bytes(), None);
    ExitCode::from(Exit::Usage.code())
}

/// The first line of clap's rendered error, without its `error: ` prefix. A first line that
/// ends in `:` introduces a list on the indented lines below it (the required arguments not
/// provided): they are joined onto it, so the one line still says what is missing.
fn usage_error_line(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("invalid arguments").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if !first.ends_with(':') {
        return first.to_owned();
    }
    let listed: Vec<&str> = lines
        .take_while(|line| line.starts_with(' ') && !line.trim().is_empty())
        .map(str::trim)
        .collect();
    format!("{first} {}", listed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_keep_only_clap_first_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: ...\n\nUsage: x\n";
        assert_eq!(
            usage_error_line(rendered),
            "unexpected argument '--bogus' found"
        );
    }

    #[test]
    fn usage_errors_name_the_missing_arguments() {
        let rendered = "error: the following required arguments were not provided:\n  \
                        --service <NAME>\n  --cluster <NAME>\n\nUsage: x\n";
        assert_eq!(
            usage_error_line(rendered),
            "the following required arguments were not provided: --service <NAME>, --cluster <NAME>"
        );
    }
}
