//! The envelope's `release` section.

use crate::history::History;
use crate::job::Job;
use crate::plan::{Commit, VersionTag};
use common::envelope::{Bump, Change, Release};

/// The envelope's `release` for `tag`.
pub(crate) fn release_entry(tag: &VersionTag, history: &History, bump: Bump, job: &Job) -> Release {
    Release {
        version: tag.version.to_string(),
        tag: tag.name.clone(),
        previous_tag: history.previous_tag(),
        bump,
        commit: tag.commit.clone(),
        pushed: false,
        changes: changes(history.since_previous()),
        dry_run: job.dry_run,
        extra: Default::default(),
    }
}

/// The envelope's `release.changes`: every commit, newest first.
pub(crate) fn changes(commits: &[Commit]) -> Vec<Change> {
    commits
        .iter()
        .map(|c| Change {
            kind: c.message.kind.clone(),
            scope: c.message.scope.clone(),
            subject: c.message.subject.clone(),
            breaking: c.message.breaking,
            commit: c.id.clone(),
            extra: Default::default(),
        })
        .collect()
}
