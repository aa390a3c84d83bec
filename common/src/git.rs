//! Reading the state of a git working tree through the `git` command line, so that the
//! user's git configuration (safe directories, worktrees, alternates) applies as usual.

use crate::envelope::GitInfo;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What can go wrong asking git. Whether it is the user's input (exit 2) or the job
/// (exit 1) is decided once, in `From<GitError> for Error`.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` program could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// A git command failed; git's own message.
    #[error("git {command} failed: {stderr}")]
    Command { command: String, stderr: String },
    /// Pushing a ref to a remote failed.
    #[error("pushing {name} to {remote}: {cause}")]
    Push {
        name: String,
        remote: String,
        cause: Box<GitError>,
    },
    /// The directory given is not inside a work tree (bad input).
    #[error("{} is not inside a git repository", .0.display())]
    NotARepository(PathBuf),
    /// The repository has no commit to describe (bad input).
    #[error("the git repository at {} has no commit yet", .0.display())]
    NoCommit(PathBuf),
}

impl From<GitError> for Error {
    fn from(err: GitError) -> Error {
        match err {
            GitError::NotARepository(_) | GitError::NoCommit(_) => Error::usage(err),
            GitError::Spawn(_) | GitError::Command { .. } | GitError::Push { .. } => {
                Error::failed(err)
            }
        }
    }
}

/// Runs `git -C dir ARGS` and returns its trimmed stdout, or git's own message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(GitError::Command {
            command: args.join(" "),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// The top of the working tree containing `dir`.
pub fn work_tree_root(dir: &Path) -> Result<PathBuf, GitError> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .map(Into::into)
        .map_err(|_| GitError::NotARepository(dir.to_owned()))
}

/// The commit at HEAD, the branch (absent when detached) and whether the tree is dirty
/// (tracked changes or untracked files that are not ignored).
pub fn describe(dir: &Path) -> Result<GitInfo, GitError> {
    work_tree_root(dir)?;
    describe_work_tree(dir)
}

/// As [`describe`], for a directory already known to be in a work tree (one git call
/// fewer).
pub fn describe_work_tree(dir: &Path) -> Result<GitInfo, GitError> {
    let commit = git(dir, &["rev-parse", "--verify", "HEAD"])
        .map_err(|_| GitError::NoCommit(dir.to_owned()))?;
    let branch = git(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .ok()
        .filter(|b| !b.is_empty());
    let dirty = !git(dir, &["status", "--porcelain", "--untracked-files=normal"])?.is_empty();
    Ok(GitInfo {
        commit,
        branch,
        dirty,
        extra: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_outside_any_repository_is_bad_input_and_a_failed_command_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let err = describe(dir.path()).unwrap_err();
        assert!(matches!(err, GitError::NotARepository(_)), "{err}");
        assert_eq!(Error::from(err).exit().code(), 2);
        let err = git(dir.path(), &["rev-parse", "--show-toplevel"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("git rev-parse --show-toplevel failed: "),
            "{err}"
        );
        assert_eq!(Error::from(err).exit().code(), 1);
    }
}
