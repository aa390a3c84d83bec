//! The envelope's `release` section.

use crate::history::History;
use crate::job::Job;
use crate::plan::{Commit, VersionTag};
use common::envelope::{Bump, Change, Release};

/// The envelope's `release` for `tag`, made from the history (its commits are moved into
/// the changes: on a long history, copying them was a tenth of the run).
pub(crate) fn release_entry(tag: &VersionTag, history: History, bump: Bump, job: &Job) -> Release {
    Release {
        version: tag.version.to_string(),
        tag: tag.name.clone(),
        previous_tag: history.previous_tag(),
        bump,
        commit: tag.commit.clone(),
        pushed: false,
        changes: changes(history.into_since_previous()),
        dry_run: job.dry_run,
        extra: Default::default(),
    }
}

/// The envelope's `release.changes`: every commit, newest first.
pub(crate) fn changes(commits: Vec<Commit>) -> Vec<Change> {
    commits
        .into_iter()
        .map(|c| Change {
            kind: c.message.kind,
            scope: c.message.scope,
            subject: c.message.subject,
            breaking: c.message.breaking,
            commit: c.id,
            extra: Default::default(),
        })
        .collect()
}
