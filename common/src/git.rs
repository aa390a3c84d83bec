//! Reading the state of a git working tree through the `git` command line, so that the
//! user's git configuration (safe directories, worktrees, alternates) applies as usual.

use crate::envelope::GitInfo;
use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

/// Runs `git -C dir ARGS` and returns its trimmed stdout. A failure is a job failure
/// carrying git's own message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|err| Error::failed(format!("cannot run git: {err}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::failed(format!(
            "git {} failed: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// The top of the working tree containing `dir`; a usage error when `dir` is not in one.
pub fn work_tree_root(dir: &Path) -> Result<std::path::PathBuf> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .map(Into::into)
        .map_err(|_| Error::usage(format!("{} is not inside a git repository", dir.display())))
}

/// The commit at HEAD, the branch (absent when detached) and whether the tree is dirty
/// (tracked changes or untracked files that are not ignored).
pub fn describe(dir: &Path) -> Result<GitInfo> {
    work_tree_root(dir)?;
    let commit = git(dir, &["rev-parse", "--verify", "HEAD"]).map_err(|_| {
        Error::usage(format!(
            "the git repository at {} has no commit yet",
            dir.display()
        ))
    })?;
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
