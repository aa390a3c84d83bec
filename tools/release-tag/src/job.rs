//! The flags, turned once into a [`Job`]: past this point nothing sees clap.

use crate::Args;
use crate::conventional::Level;
use crate::plan::{self, Request};
use common::{Error, Result};
use std::path::PathBuf;

/// What to release and how, from the flags: all that the job reads (nothing of clap).
#[derive(Debug, Clone)]
pub struct Job {
    /// The repository (any directory inside its work tree).
    pub repo: PathBuf,
    pub tag_prefix: String,
    /// Count only the commits touching this path.
    pub path: Option<PathBuf>,
    /// What the version is decided from, besides the commits.
    pub request: Request,
    /// Describe the release at HEAD instead of computing one.
    pub current: bool,
    pub sign: bool,
    pub push: bool,
    pub remote: String,
    pub allow_dirty: bool,
    /// Nothing releasable is a failure.
    pub require_change: bool,
    pub changelog: Option<PathBuf>,
    pub dry_run: bool,
}

impl Job {
    /// Checks the flags that clap cannot, before touching the repository.
    pub fn from_args(args: &Args) -> Result<Job> {
        Ok(Job {
            repo: args.repo.clone(),
            tag_prefix: args.tag_prefix.clone(),
            path: args.path.clone(),
            request: request(args)?,
            current: args.current,
            sign: args.sign,
            push: args.push,
            remote: args.remote.clone(),
            allow_dirty: args.allow_dirty,
            require_change: args.require_change,
            changelog: args.changelog.clone(),
            dry_run: args.dry_run,
        })
    }
}

/// The flags the version is decided from, checked.
fn request(args: &Args) -> Result<Request> {
    let prefix = &args.tag_prefix;
    let version = args
        .version
        .as_deref()
        .map(|text| plan::parse_version(text, prefix))
        .transpose()
        .map_err(Error::usage)?;
    let initial = semver::Version::parse(&args.initial_version).map_err(|err| {
        Error::usage(format!(
            "--initial-version {:?} is not a semantic version X.Y.Z: {err}",
            args.initial_version
        ))
    })?;
    if let Some(pre) = &args.pre {
        plan::validate_pre(pre).map_err(Error::usage)?;
        if version.as_ref().is_some_and(|v| !v.pre.is_empty()) {
            return Err(Error::usage(
                "--pre cannot be combined with a --version that has a pre-release part",
            ));
        }
    }
    Ok(Request {
        bump: args.bump.map(Level::from),
        version,
        pre: args.pre.clone(),
        initial,
        major_on_zero: args.major_on_zero,
    })
}
