//! The previous releases and the commits since them, read from the repository (through
//! [`crate::repo`]) into what [`crate::plan::decide`] needs.

use crate::job::Job;
use crate::plan::{self, Commit, Facts, VersionTag};
use crate::repo;
use common::{Error, Result};
use std::path::Path;

/// The release tags of one prefix, split by where they sit relative to HEAD.
pub(crate) struct Tags {
    /// Every release tag, reachable or not (a name computed must not exist anywhere).
    pub(crate) all: Vec<VersionTag>,
    /// Those on HEAD itself: left out of the computation, so a rerun recomputes the same
    /// release, then compared with its result.
    pub(crate) at_head: Vec<VersionTag>,
    /// Those reachable from HEAD, HEAD's own excluded: where the previous release is.
    pub(crate) reachable: Vec<VersionTag>,
    /// The versions of all tags but HEAD's: pre-release numbers must not collide.
    pub(crate) existing: Vec<semver::Version>,
}

impl Tags {
    pub(crate) fn read(dir: &Path, prefix: &str, head: &str) -> Result<Tags> {
        let (all, reachable_names) = repo::release_tags(dir, prefix)?;
        let (at_head, others): (Vec<VersionTag>, Vec<VersionTag>) =
            all.iter().cloned().partition(|t| t.commit == head);
        let existing = others.iter().map(|t| t.version.clone()).collect();
        let reachable = others
            .into_iter()
            .filter(|t| reachable_names.contains(&t.name))
            .collect();
        Ok(Tags {
            all,
            at_head,
            reachable,
            existing,
        })
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
    /// The commits since `stable` (they decide the bump).
    pub(crate) since_stable: Vec<Commit>,
    /// The commits since `previous` (they are the release's changes).
    pub(crate) since_previous: Vec<Commit>,
}

impl History {
    pub(crate) fn read(job: &Job, tags: &Tags, pre_mode: bool) -> Result<History> {
        let dir = job.repo.as_path();
        let stable = plan::latest(&tags.reachable, false).cloned();
        // When making a stable release, HEAD's own pre-release tags count as the candidate
        // too (graduating `v2.0.0-rc.1` on the commit it tags gives `v2.0.0`).
        let candidates: Vec<VersionTag> = tags
            .reachable
            .iter()
            .chain(tags.at_head.iter().filter(|_| !pre_mode))
            .filter(|t| !t.version.pre.is_empty())
            .cloned()
            .collect();
        let pending = plan::latest(&candidates, true)
            .filter(|t| stable.as_ref().is_none_or(|s| t.version > s.version))
            .cloned();
        let previous = match pre_mode {
            true => plan::latest(&tags.reachable, true).cloned(),
            false => stable.clone(),
        };
        // A shallow clone (actions/checkout's default) may lack the release tags and the
        // commits since them: with no previous release in sight, any answer is a guess.
        if stable.is_none() && repo::is_shallow(dir)? {
            return Err(Error::usage(format!(
                "the repository is a shallow clone and no {}X.Y.Z tag is reachable: fetch \
                 the full history and tags (actions/checkout with fetch-depth: 0, or \
                 git fetch --unshallow --tags)",
                job.tag_prefix
            )));
        }
        let path = job.path.as_deref();
        let name = |tag: &Option<VersionTag>| tag.as_ref().map(|t| t.name.clone());
        let since_stable = repo::commits_since(dir, name(&stable).as_deref(), path)?;
        let since_previous = match name(&previous) == name(&stable) {
            true => since_stable.clone(),
            false => repo::commits_since(dir, name(&previous).as_deref(), path)?,
        };
        Ok(History {
            stable,
            pending,
            previous,
            since_stable,
            since_previous,
        })
    }

    pub(crate) fn facts<'a>(&'a self, tags: &'a Tags) -> Facts<'a> {
        Facts {
            stable: self.stable.as_ref().map(|t| &t.version),
            pending: self.pending.as_ref().map(|t| &t.version),
            since_stable: plan::level_of(&self.since_stable),
            since_previous: plan::level_of(&self.since_previous),
            existing: &tags.existing,
        }
    }

    pub(crate) fn previous_tag(&self) -> Option<String> {
        self.previous.as_ref().map(|t| t.name.clone())
    }
}
