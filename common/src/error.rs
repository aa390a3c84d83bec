//! Errors that know their exit code (DESIGN.md rule 6). The exit code of every tool is
//! decided here and nowhere else.

use std::fmt;

/// A tool's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Done,
    /// 1: the job failed (push failed, deployment failed, target unhealthy).
    Failed,
    /// 2: bad usage or bad input; nothing was changed.
    Usage,
    /// 3: skipped because an upstream step failed.
    UpstreamFailed,
    /// 124: a wait timed out.
    TimedOut,
    /// 130: interrupted (SIGINT).
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::UpstreamFailed => 3,
            Exit::TimedOut => 124,
            Exit::Interrupted => 130,
        }
    }
}

/// Why a tool stopped short. Tools return this from `run`; the runner turns it into the
/// `failed` section, the `::error::` line and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or bad input, found before anything was changed (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The job itself failed (exit 1). Carries the whole cause chain.
    #[error("{0:#}")]
    Failed(anyhow::Error),
    /// A wait ran out of time (exit 124).
    #[error("{0}")]
    TimedOut(String),
    /// SIGINT arrived (exit 130).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Bad usage or input: one line saying what and where.
    pub fn usage(message: impl fmt::Display) -> Self {
        Error::Usage(message.to_string())
    }

    /// The job failed.
    pub fn failed(message: impl fmt::Display) -> Self {
        Error::Failed(anyhow::anyhow!("{message}"))
    }

    /// A wait timed out.
    pub fn timed_out(message: impl fmt::Display) -> Self {
        Error::TimedOut(message.to_string())
    }

    /// How the process exits because of this error.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Failed(_) => Exit::Failed,
            Error::TimedOut(_) => Exit::TimedOut,
            Error::Interrupted => Exit::Interrupted,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        Error::Failed(err)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_documented_exit_code() {
        assert_eq!(Error::usage("x").exit().code(), 2);
        assert_eq!(Error::failed("x").exit().code(), 1);
        assert_eq!(Error::timed_out("x").exit().code(), 124);
        assert_eq!(Error::Interrupted.exit().code(), 130);
        assert_eq!(Exit::UpstreamFailed.code(), 3);
        assert_eq!(Exit::Done.code(), 0);
    }

    #[test]
    fn failed_shows_the_whole_cause_chain_on_one_line() {
        let err = Error::from(anyhow::anyhow!("connection refused").context("pushing api:1"));
        assert_eq!(err.to_string(), "pushing api:1: connection refused");
    }
}
