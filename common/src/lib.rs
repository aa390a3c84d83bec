//! The contract shared by the shipkit tools (DESIGN.md), implemented once.
//!
//! # What is here
//! - [`envelope`]: the JSON document that flows down a pipeline, unknown fields kept; its
//!   vocabularies (deployment outcome and platform, release bump, change type) are enums that
//!   keep unknown values too;
//! - [`input`] and [`output`]: reading it (rules 1–3) and writing it (rule 5);
//! - [`error`]: errors that know their exit code (rule 6);
//! - [`runner`]: the `main` every tool shares (rule 4, SIGINT, broken pipes);
//! - [`ui`] and [`actions`]: stderr logs, progress, GitHub Actions commands and files, step
//!   outputs of several items and step-summary tables;
//! - [`cli`]: the flags every tool shares and common value parsers;
//! - [`reference`]: image references, checked and normalised as Docker does;
//! - [`retry`]: the one retry/poll schedule (capped exponential backoff with jitter);
//! - [`short`]: short digests and commit ids for people to read;
//! - `aws` (feature `aws`): the AWS configuration through the ordinary chain, SDK errors on
//!   one line;
//! - `docker` (feature `docker`): connecting to the Docker Engine with version negotiation;
//! - `git` (feature `git`): the state of a working tree, through the git CLI, and `GitError`;
//! - `http` (feature `http`): an HTTP client with the user's TLS choices;
//! - `registry_auth` (feature `registry-auth`): registry logins from flags, the Docker
//!   configuration and its credential helpers, and what an ECR host names;
//! - `ecr` (feature `ecr`): an ECR login token (GetAuthorizationToken).

pub mod actions;
#[cfg(feature = "aws")]
pub mod aws;
pub mod cli;
#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "ecr")]
pub mod ecr;
pub mod envelope;
pub mod error;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "http")]
pub mod http;
pub mod input;
pub mod output;
pub mod reference;
#[cfg(feature = "registry-auth")]
pub mod registry_auth;
pub mod retry;
pub mod runner;
pub mod short;
pub mod ui;

pub use cli::CommonArgs;
pub use envelope::Envelope;
pub use error::{Error, Exit, Result};
pub use runner::{Tool, main};
pub use ui::Ui;

/// Whether this process runs under GitHub Actions (`GITHUB_ACTIONS=true`).
pub(crate) fn actions_if_enabled() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}
