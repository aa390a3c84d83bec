//! The previous releases and the commits since them, read from the repository (through
//! [`crate::repo`]) into what [`crate::plan::decide`] needs.

use crate::job::Job;
use crate::plan::{self, Commit, Facts, VersionTag};
use crate::repo::Repo;
use common::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// The release tags of one prefix, split by where they sit relative to HEAD.
pub(crate) struct Tags {
    /// Every release tag, reachable or not (a name computed must not exist anywhere).
    pub(crate) all: Vec<VersionTag>,
    /// Those on HEAD itself: left out of the computation, so a rerun recomputes the same
    /// release, then compared with its result.
    pub(crate) at_head: Vec<VersionTag>,
    /// All the others: which of them HEAD reaches is found while reading the history.
    pub(crate) others: Vec<VersionTag>,
    /// The versions of all tags but HEAD's: pre-release numbers must not collide.
    pub(crate) existing: Vec<semver::Version>,
}

impl Tags {
    pub(crate) fn read(repo: &Repo, prefix: &str, head: &str) -> Result<Tags> {
        let all = repo.release_tags(prefix)?;
        let (at_head, others): (Vec<VersionTag>, Vec<VersionTag>) =
            all.iter().cloned().partition(|t| t.commit == head);
        let existing = others.iter().map(|t| t.version.clone()).collect();
        Ok(Tags {
            all,
            at_head,
            others,
            existing,
        })
    }
}

/// The latest stable release HEAD reaches, the commits since it, and the release tags HEAD
/// reaches among those that can matter.
struct Reach {
    stable: Option<VersionTag>,
    since_stable: Vec<Commit>,
    /// Every reachable tag (HEAD's excluded) of a version at least `stable`'s: all that
    /// [`plan::latest`] ever needs, so a tag below `stable` may be missing.
    reachable: Vec<VersionTag>,
}

impl Reach {
    /// One walk in the usual case: from HEAD down to the highest stable tag. Its boundary
    /// says whether HEAD reaches that tag, and every tag of a higher version (a release
    /// candidate in flight) is reachable exactly when its commit is among those walked.
    /// When a tag of a higher version is not among them, or the highest stable tag is not
    /// reachable (a maintenance branch), or only `path`'s commits are read, the reachable
    /// tags are asked of git (`--merged`), then the commits since the latest of them.
    fn read(repo: &Repo, tags: &Tags, prefix: &str, path: Option<&Path>) -> Result<Reach> {
        if path.is_none()
            && let Some(reach) = Reach::walk_from_highest(repo, tags)?
        {
            return Ok(reach);
        }
        let names = repo.merged_tag_names(prefix)?;
        let reachable: Vec<VersionTag> = tags
            .others
            .iter()
            .filter(|t| names.contains(&t.name))
            .cloned()
            .collect();
        let stable = plan::latest(&reachable, false).cloned();
        let since = stable.as_ref().map(|t| t.name.as_str());
        let since_stable = repo.commits_since(since, path)?;
        Ok(Reach {
            stable,
            since_stable,
            reachable,
        })
    }

    /// The one-walk case, or `None` when the walk cannot tell.
    fn walk_from_highest(repo: &Repo, tags: &Tags) -> Result<Option<Reach>> {
        let highest = plan::latest(&tags.others, false);
        let (commits, reached) = match highest {
            Some(tag) => {
                let walk = repo.walk_since_tag(&tag.name)?;
                let reached = walk.boundary.contains(&tag.commit);
                (walk.commits, reached)
            }
            // No stable release at all: the walk is the whole history, so every tag's
            // commit is in it exactly when HEAD reaches the tag.
            None => (repo.commits_since(None, None)?, true),
        };
        if !reached {
            return Ok(None);
        }
        let walked: HashSet<&str> = commits.iter().map(|c| c.id.as_str()).collect();
        let mut reachable: Vec<VersionTag> = highest.into_iter().cloned().collect();
        for tag in &tags.others {
            if highest.is_some_and(|h| tag.version <= h.version) {
                continue;
            }
            if !walked.contains(tag.commit.as_str()) {
                return Ok(None);
            }
            reachable.push(tag.clone());
        }
        Ok(Some(Reach {
            stable: highest.cloned(),
            since_stable: commits,
            reachable,
        }))
    }
}

/// The previous releases and the commits since them.
pub(crate) struct History {
    /// The latest stable release reachable from HEAD.
    pub(crate) stable: Option<VersionTag>,
    /// A pre-release newer than `stable`: the candidate in flight.
    pub(crate) pending: Option<VersionTag>,
    /// The release the changes are counted from: `stable`, or the latest tag of any kind
    /// when making a pre-release.
    pub(crate) previous: Option<VersionTag>,
    /// The latest release tag of any kind reachable from HEAD (HEAD's own excluded): a new
    /// version must be above it.
    pub(crate) latest: Option<VersionTag>,
    /// The commits since `stable` (they decide the bump).
    pub(crate) since_stable: Vec<Commit>,
    /// The commits since `previous` when it is not `stable` (see [`History::since_previous`]).
    since_other_previous: Option<Vec<Commit>>,
}

impl History {
    pub(crate) fn read(job: &Job, repo: &Repo, tags: &Tags, pre_mode: bool) -> Result<History> {
        let path = job.path.as_deref();
        let reach = Reach::read(repo, tags, &job.tag_prefix, path)?;
        let stable = reach.stable;
        // When making a stable release, HEAD's own pre-release tags count as the candidate
        // too (graduating `v2.0.0-rc.1` on the commit it tags gives `v2.0.0`).
        let candidates: Vec<VersionTag> = reach
            .reachable
            .iter()
            .chain(tags.at_head.iter().filter(|_| !pre_mode))
            .filter(|t| !t.version.pre.is_empty())
            .cloned()
            .collect();
        let pending = plan::latest(&candidates, true)
            .filter(|t| stable.as_ref().is_none_or(|s| t.version > s.version))
            .cloned();
        let latest = plan::latest(&reach.reachable, true).cloned();
        let previous = match pre_mode {
            true => latest.clone(),
            false => stable.clone(),
        };
        // A shallow clone (actions/checkout's default) may lack the release tags and the
        // commits since them: with no previous release in sight, any answer is a guess.
        if stable.is_none() && repo.is_shallow()? {
            return Err(Error::usage(format!(
                "the repository is a shallow clone and no {}X.Y.Z tag is reachable: fetch \
                 the full history and tags (actions/checkout with fetch-depth: 0, or \
                 git fetch --unshallow --tags)",
                job.tag_prefix
            )));
        }
        let name = |tag: &Option<VersionTag>| tag.as_ref().map(|t| t.name.clone());
        let since_other_previous = match name(&previous) == name(&stable) {
            true => None,
            false => Some(repo.commits_since(name(&previous).as_deref(), path)?),
        };
        Ok(History {
            stable,
            pending,
            previous,
            latest,
            since_stable: reach.since_stable,
            since_other_previous,
        })
    }

    /// The commits since `previous` (they are the release's changes).
    pub(crate) fn since_previous(&self) -> &[Commit] {
        self.since_other_previous
            .as_deref()
            .unwrap_or(&self.since_stable)
    }

    /// The commits since `previous`, taken out of the history (to be handed on, not copied).
    pub(crate) fn into_since_previous(self) -> Vec<Commit> {
        self.since_other_previous.unwrap_or(self.since_stable)
    }

    pub(crate) fn facts<'a>(&'a self, tags: &'a Tags) -> Facts<'a> {
        Facts {
            stable: self.stable.as_ref().map(|t| &t.version),
            pending: self.pending.as_ref().map(|t| &t.version),
            since_stable: plan::level_of(&self.since_stable),
            since_previous: plan::level_of(self.since_previous()),
            existing: &tags.existing,
        }
    }

    pub(crate) fn previous_tag(&self) -> Option<String> {
        self.previous.as_ref().map(|t| t.name.clone())
    }
}
