//! The grouped changelog of a release, as Markdown: the tag message, the `--changelog`
//! section and the Actions step summary all use it.

use crate::plan::{Commit, cancelled};
use common::envelope::ChangeKind;
use std::fmt::Write;

/// Whether a commit belongs in a section.
type Belongs = fn(&Commit) -> bool;

/// The sections, in the order they are shown: a title and which commits go in it.
const SECTIONS: [(&str, Belongs); 6] = [
    ("⚠ Breaking changes", |c| c.message.breaking),
    ("Features", |c| {
        !c.message.breaking && c.message.kind == ChangeKind::Feat
    }),
    ("Bug fixes", |c| {
        !c.message.breaking && c.message.kind == ChangeKind::Fix
    }),
    ("Performance", |c| {
        !c.message.breaking && c.message.kind == ChangeKind::Perf
    }),
    ("Reverts", |c| {
        !c.message.breaking && c.message.kind == ChangeKind::Revert
    }),
    ("Other changes", |c| {
        !c.message.breaking
            && !matches!(
                c.message.kind,
                ChangeKind::Feat | ChangeKind::Fix | ChangeKind::Perf | ChangeKind::Revert
            )
    }),
];

/// The grouped list of changes, newest first within each group. Left out: merge commits
/// with no conventional message of their own (their commits are listed) and revert pairs
/// that cancel out within the release.
pub fn sections(commits: &[Commit]) -> String {
    let cancelled = cancelled(commits);
    let shown: Vec<&Commit> = commits
        .iter()
        .filter(|c| !c.message.plain_merge && !cancelled.contains(&c.id))
        .collect();
    let mut out = String::new();
    for (title, belongs) in SECTIONS {
        let entries: Vec<&&Commit> = shown.iter().filter(|c| belongs(c)).collect();
        if entries.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "### {title}\n");
        for commit in entries {
            out.push_str("- ");
            if let Some(scope) = &commit.message.scope {
                let _ = write!(out, "**{scope}:** ");
            }
            let short = commit.id.get(..7).unwrap_or(&commit.id);
            let _ = writeln!(out, "{} ({short})", commit.message.subject);
        }
    }
    if out.is_empty() {
        out.push_str("No notable changes.\n");
    }
    out
}

/// The section for one release: `## TAG (DATE)` and its [`sections`].
pub fn section(tag: &str, date: &str, sections: &str) -> String {
    format!("## {tag} ({date})\n\n{sections}")
}

/// The annotated tag's message: the tag name as its subject line, then its [`sections`].
pub fn tag_message(tag: &str, sections: &str) -> String {
    format!("{tag}\n\n{sections}")
}

/// `existing` (a changelog file's text) with `section` added at the top, below a leading
/// `# Title` and its blank lines if there is one; `None` when the file already has a
/// section for `tag` (a rerun adds nothing).
pub fn prepend(existing: &str, tag: &str, section: &str) -> Option<String> {
    let heading = format!("## {tag} ");
    let heading_alone = format!("## {tag}");
    if existing
        .lines()
        .any(|l| l.starts_with(&heading) || l.trim_end() == heading_alone)
    {
        return None;
    }
    let mut split = 0;
    if existing.starts_with("# ") {
        split = existing.find('\n').map_or(existing.len(), |i| i + 1);
        while existing[split..].starts_with('\n') {
            split += 1;
        }
    }
    let (head, rest) = existing.split_at(split);
    let mut out = String::with_capacity(existing.len() + section.len() + 2);
    out.push_str(head);
    if !head.is_empty() && !head.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(section);
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(n: u8, message: &str) -> Commit {
        Commit::read(&format!("{n:02}{}", "0".repeat(38)), 1, message)
    }

    #[test]
    fn changes_are_grouped_breaking_first() {
        let commits = [
            commit(1, "feat(api): add users"),
            commit(2, "fix: crash on empty body"),
            commit(3, "feat!: drop v1"),
            commit(4, "chore: bump deps"),
            commit(5, "perf(db): batch inserts"),
            commit(6, "Update README"),
        ];
        assert_eq!(
            sections(&commits),
            "### ⚠ Breaking changes\n\n- drop v1 (0300000)\n\n\
             ### Features\n\n- **api:** add users (0100000)\n\n\
             ### Bug fixes\n\n- crash on empty body (0200000)\n\n\
             ### Performance\n\n- **db:** batch inserts (0500000)\n\n\
             ### Other changes\n\n- bump deps (0400000)\n- Update README (0600000)\n"
        );
    }

    #[test]
    fn plain_merges_and_cancelled_reverts_are_left_out() {
        let feat = commit(1, "feat: x");
        let revert = commit(
            2,
            &format!("Revert \"feat: x\"\n\nThis reverts commit {}.", feat.id),
        );
        let merge = Commit::read(&"3".repeat(40), 2, "Merge branch 'topic'");
        assert_eq!(sections(&[revert, feat, merge]), "No notable changes.\n");
        let old_revert = commit(4, "Revert \"feat: y\"\n\nThis reverts commit abcdef0.");
        assert_eq!(
            sections(&[old_revert]),
            "### Reverts\n\n- feat: y (0400000)\n"
        );
    }

    #[test]
    fn sections_are_prepended_below_the_title_once() {
        let section = "## v1.1.0 (2026-01-02)\n\n### Features\n\n- b (1111111)\n";
        let file = "# Changelog\n\n## v1.0.0 (2026-01-01)\n\n- a\n";
        let updated = prepend(file, "v1.1.0", section).unwrap();
        assert_eq!(
            updated,
            "# Changelog\n\n## v1.1.0 (2026-01-02)\n\n### Features\n\n- b (1111111)\n\n\
             ## v1.0.0 (2026-01-01)\n\n- a\n"
        );
        assert_eq!(prepend(&updated, "v1.1.0", section), None);
        assert_eq!(prepend("", "v1.1.0", section).unwrap(), section);
        assert_eq!(
            prepend("## v1.0.0\n", "v1.1.0", section).unwrap(),
            format!("{section}\n## v1.0.0\n")
        );
    }
}
