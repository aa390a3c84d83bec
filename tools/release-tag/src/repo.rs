//! Everything release-tag asks of or does to the repository, through the `git` command line
//! (so the user's signing setup, credential helpers and Actions tokens apply as usual).
//!
//! History is read with the CLI as well: one `git log -z` over the commits since the previous
//! release, two `git for-each-ref` for the tags (all of them, and those merged into HEAD).
//! On a generated 50,000-commit repository (`benches/compare-git-cliff.sh`) that takes
//! 0.7–1.2 s when every commit must be read and ~20 ms when the last tag is 100 commits
//! back, against 4–5.7 s for `git-cliff --bumped-version` (libgit2) in both cases; most of
//! the time is git walking history (`--merged` and `log`), so gix was not tried.

use crate::plan::{Commit, VersionTag, release_tag};
use common::envelope::GitInfo;
use common::git::{GitError, git};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Separates the fields of one commit in the `git log` output.
const FIELD: char = '\u{1f}';

/// The repository release-tag works on: the one outside system it talks to, through git.
#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
}

impl Repo {
    /// The repository containing `dir`; bad input (exit 2) when `dir` is in none.
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        common::git::work_tree_root(dir)?;
        Ok(Repo {
            dir: dir.to_owned(),
        })
    }

    /// HEAD's commit, branch and whether the tree is dirty.
    pub fn describe(&self) -> Result<GitInfo, GitError> {
        common::git::describe(&self.dir)
    }

    /// Every tag named `prefix` + a semantic version, with the commit it points at, and
    /// whether that commit is reachable from HEAD.
    pub fn release_tags(
        &self,
        prefix: &str,
    ) -> Result<(Vec<VersionTag>, HashSet<String>), GitError> {
        let pattern = format!("refs/tags/{prefix}*");
        let listing = git(
            &self.dir,
            &[
                "for-each-ref",
                "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)",
                &pattern,
            ],
        )?;
        let tags = listing
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\0');
                let name = fields.next()?;
                let object = fields.next()?;
                // An annotated tag peels to its commit; a lightweight tag is the commit.
                let commit = fields.next().filter(|c| !c.is_empty()).unwrap_or(object);
                release_tag(name, prefix, commit)
            })
            .collect();
        let reachable = git(
            &self.dir,
            &[
                "for-each-ref",
                "--merged=HEAD",
                "--format=%(refname:strip=2)",
                &pattern,
            ],
        )?;
        Ok((tags, reachable.lines().map(str::to_owned).collect()))
    }

    /// The commits reachable from HEAD and not from `since` (all of history when `None`),
    /// newest first, merges included; only those touching `path` when given.
    pub fn commits_since(
        &self,
        since: Option<&str>,
        path: Option<&Path>,
    ) -> Result<Vec<Commit>, GitError> {
        let range = match since {
            Some(tag) => format!("refs/tags/{tag}..HEAD"),
            None => "HEAD".to_owned(),
        };
        let mut args = vec!["log", "-z", "--format=%H%x1f%P%x1f%B", &range];
        let path_text;
        if let Some(path) = path {
            path_text = path.to_string_lossy().into_owned();
            args.extend(["--", &path_text]);
        }
        let log = git(&self.dir, &args)?;
        Ok(log
            .split('\0')
            .filter(|record| !record.trim().is_empty())
            .filter_map(|record| {
                let mut fields = record.trim_start_matches('\n').splitn(3, FIELD);
                let id = fields.next()?;
                let parents = fields.next()?.split_whitespace().count();
                Some(Commit::read(id, parents, fields.next().unwrap_or("")))
            })
            .collect())
    }

    /// Whether the repository is a shallow clone (history cut below some depth).
    pub fn is_shallow(&self) -> Result<bool, GitError> {
        Ok(git(&self.dir, &["rev-parse", "--is-shallow-repository"])? == "true")
    }

    /// HEAD's commit date, `YYYY-MM-DD` (the date shown in the changelog).
    pub fn head_date(&self) -> Result<String, GitError> {
        git(&self.dir, &["log", "-1", "--format=%cs", "HEAD"])
    }

    /// Creates the annotated (or, with `sign`, signed) tag `name` on HEAD.
    pub fn create_tag(&self, name: &str, message: &str, sign: bool) -> Result<(), GitError> {
        let kind = if sign { "--sign" } else { "--annotate" };
        // `verbatim`: the default cleanup would drop the `### Features` lines as comments.
        git(
            &self.dir,
            &[
                "tag",
                kind,
                "--cleanup=verbatim",
                "--message",
                message,
                name,
                "HEAD",
            ],
        )?;
        Ok(())
    }

    /// Whether git accepts `name` as a tag name (`git check-ref-format`).
    pub fn is_valid_tag_name(&self, name: &str) -> bool {
        git(
            &self.dir,
            &["check-ref-format", &format!("refs/tags/{name}")],
        )
        .is_ok()
    }

    /// Whether `remote` is a configured remote's name.
    pub fn has_remote(&self, remote: &str) -> bool {
        git(&self.dir, &["remote", "get-url", remote]).is_ok()
    }

    /// Pushes only the tag `name` to `remote`; nothing else moves.
    pub fn push_tag(&self, remote: &str, name: &str) -> Result<(), GitError> {
        let refspec = format!("refs/tags/{name}:refs/tags/{name}");
        git(&self.dir, &["push", "--porcelain", remote, &refspec]).map_err(|err| {
            GitError::Push {
                name: name.to_owned(),
                remote: remote.to_owned(),
                cause: Box::new(err),
            }
        })?;
        Ok(())
    }
}
