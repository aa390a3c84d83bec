//! Everything release-tag asks of or does to the repository, through the `git` command line
//! (so the user's signing setup, credential helpers and Actions tokens apply as usual).
//!
//! History is read with the CLI as well, in one walk: `git log -z --boundary` over the
//! commits since the latest release tag, read record by record as git writes them (never the
//! whole output at once). The boundary of that walk says whether the tag is reachable from
//! HEAD, so the usual run walks history once; `git for-each-ref --merged=HEAD` (a second walk
//! of the same commits) is asked only when the walk cannot tell. On a generated
//! 50,000-commit repository (`benches/compare-git-cliff.sh`) that puts the next version at
//! 1.2–1.4× `git log --format=%B` over the same commits, the floor for anything reading the
//! messages through git; gix was not needed.

use crate::plan::{Commit, VersionTag, release_tag};
use common::envelope::GitInfo;
use common::git::{GitError, git};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Separates the fields of one commit in the `git log` output.
const FIELD: char = '\u{1f}';

/// What one walk of history found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The commits of the range, newest first.
    pub commits: Vec<Commit>,
    /// The excluded commits whose children are in the range (`--boundary`): for
    /// `TAG..HEAD`, the tag's commit is among them exactly when HEAD reaches it.
    pub boundary: HashSet<String>,
}

impl Walk {
    /// Reads one record, `MARK ID \x1f PARENTS \x1f MESSAGE`; the message is borrowed from
    /// the buffer while it is parsed (copied only when it is not UTF-8).
    fn read_record(&mut self, record: &[u8]) {
        let text = String::from_utf8_lossy(record);
        let text = text.trim_start_matches('\n');
        let mut fields = text.splitn(3, FIELD);
        let (Some(marked_id), Some(parents)) = (fields.next(), fields.next()) else {
            return;
        };
        // `-` marks a boundary commit, `>` one of the range.
        match marked_id.split_at_checked(1) {
            Some(("-", id)) => {
                self.boundary.insert(id.to_owned());
            }
            Some((_, id)) if !id.is_empty() => {
                let parents = parents.split_whitespace().count();
                self.commits
                    .push(Commit::read(id, parents, fields.next().unwrap_or("")));
            }
            _ => {}
        }
    }
}

fn tag_pattern(prefix: &str) -> String {
    format!("refs/tags/{prefix}*")
}

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

    /// HEAD's commit, branch and whether the tree is dirty (the work tree was checked by
    /// [`Repo::open`]).
    pub fn describe(&self) -> Result<GitInfo, GitError> {
        common::git::describe_work_tree(&self.dir)
    }

    /// Every tag named `prefix` + a semantic version, with the commit it points at.
    pub fn release_tags(&self, prefix: &str) -> Result<Vec<VersionTag>, GitError> {
        let listing = git(
            &self.dir,
            &[
                "for-each-ref",
                "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)",
                &tag_pattern(prefix),
            ],
        )?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\0');
                let name = fields.next()?;
                let object = fields.next()?;
                // An annotated tag peels to its commit; a lightweight tag is the commit.
                let commit = fields.next().filter(|c| !c.is_empty()).unwrap_or(object);
                release_tag(name, prefix, commit)
            })
            .collect())
    }

    /// The names of the tags named `prefix`… that are reachable from HEAD. A walk of history
    /// down to the oldest of them: asked only when [`Repo::walk_since_tag`] cannot tell.
    pub fn merged_tag_names(&self, prefix: &str) -> Result<HashSet<String>, GitError> {
        let names = git(
            &self.dir,
            &[
                "for-each-ref",
                "--merged=HEAD",
                "--format=%(refname:strip=2)",
                &tag_pattern(prefix),
            ],
        )?;
        Ok(names.lines().map(str::to_owned).collect())
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
        Ok(self.walk(&range, path, false)?.commits)
    }

    /// The commits reachable from HEAD and not from the tag `name`, and whether the tag
    /// itself is reachable from HEAD, in one walk.
    pub fn walk_since_tag(&self, name: &str) -> Result<Walk, GitError> {
        self.walk(&format!("refs/tags/{name}..HEAD"), None, true)
    }

    /// One `git log -z` over `range`, read one record at a time into one reused buffer as
    /// git writes it: the commits are parsed while git is still walking, and the log is
    /// never held whole.
    fn walk(&self, range: &str, path: Option<&Path>, boundary: bool) -> Result<Walk, GitError> {
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(&self.dir)
            .args(["log", "-z", "--format=%m%H%x1f%P%x1f%B"])
            // Into a pipe, git flushes after every commit (one write(2) each, 50,000 on the
            // bench, each waking this reader); GIT_FLUSH=0 lets it fill its buffer first.
            // The log still streams, a few KiB at a time: ~10% off the whole run there.
            .env("GIT_FLUSH", "0");
        if boundary {
            command.arg("--boundary");
        }
        command.arg(range);
        if let Some(path) = path {
            command.arg("--").arg(path);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::Spawn)?;
        // Read on the side, so that a git with much to say never blocks on a full pipe.
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut reader = BufReader::with_capacity(1 << 16, stdout);
        let mut record = Vec::with_capacity(4096);
        let mut walk = Walk::default();
        loop {
            record.clear();
            if reader.read_until(0, &mut record).map_err(GitError::Spawn)? == 0 {
                break;
            }
            if record.last() == Some(&0) {
                record.pop();
            }
            walk.read_record(&record);
        }
        let status = child.wait().map_err(GitError::Spawn)?;
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(GitError::Command {
                command: format!("log {range}"),
                stderr: stderr.trim().to_owned(),
            });
        }
        Ok(walk)
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
