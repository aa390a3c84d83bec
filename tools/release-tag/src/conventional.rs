//! Reading commit messages as [Conventional Commits](https://www.conventionalcommits.org/).
//!
//! Pure: a message goes in, its type, scope, subject and breaking flag come out. A message
//! that does not follow the convention is kept as type `other`, so it is listed but bumps
//! nothing.

use common::envelope::{Bump, ChangeKind};

/// The bump a change calls for, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing releasable (`chore`, `docs`, `other`, …).
    None,
    /// `fix`, `perf`, a revert.
    Patch,
    /// `feat`.
    Minor,
    /// A breaking change.
    Major,
}

impl Level {
    /// What is written to `release.bump` for a release of this level.
    pub fn bump(self) -> Bump {
        match self {
            Level::None => Bump::None,
            Level::Patch => Bump::Patch,
            Level::Minor => Bump::Minor,
            Level::Major => Bump::Major,
        }
    }
}

/// One commit message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `feat`, `fix`, …, `revert`, or `other` when the message is not conventional.
    pub kind: ChangeKind,
    /// The part in parentheses, if any.
    pub scope: Option<String>,
    /// The description after `: ` (the whole first line for `other`).
    pub subject: String,
    /// A `!` before the colon, or a `BREAKING CHANGE:`/`BREAKING-CHANGE:` footer.
    pub breaking: bool,
    /// For a revert: the commit it reverts, when the message names it
    /// (`This reverts commit <id>.`, as `git revert` writes).
    pub reverts: Option<String>,
    /// A merge commit that carries no conventional message of its own (`Merge branch 'x'`):
    /// listed in the envelope, left out of the changelog.
    pub plain_merge: bool,
}

impl Message {
    /// The bump this message calls for on its own (revert pairs are handled by the caller).
    pub fn level(&self) -> Level {
        if self.breaking {
            return Level::Major;
        }
        match self.kind {
            ChangeKind::Feat => Level::Minor,
            ChangeKind::Fix | ChangeKind::Perf | ChangeKind::Revert => Level::Patch,
            _ => Level::None,
        }
    }
}

/// Reads `message`, the full text of a commit (`%B`); `merge` is true for a commit with
/// more than one parent.
pub fn parse(message: &str, merge: bool) -> Message {
    let message = message.trim_start();
    let (header, body) = match message.split_once('\n') {
        Some((header, body)) => (header.trim(), body),
        None => (message.trim(), ""),
    };
    let reverts = reverted_commit(body);
    // `git revert` writes `Revert "<original header>"`.
    if let Some(original) = header
        .strip_prefix("Revert \"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return Message {
            kind: ChangeKind::Revert,
            scope: None,
            subject: original.to_owned(),
            breaking: false,
            reverts,
            plain_merge: false,
        };
    }
    if let Some(mut parsed) = parse_header(header) {
        parsed.breaking |= has_breaking_footer(body);
        if parsed.kind == ChangeKind::Revert {
            parsed.reverts = reverts;
        }
        return parsed;
    }
    if merge {
        // A merged pull request's title often sits on the first line of the body
        // (`Merge pull request #12 from org/branch`, blank line, `feat: …`).
        let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(mut parsed) = lines.next().and_then(parse_header) {
            parsed.breaking |= has_breaking_footer(body);
            return parsed;
        }
    }
    Message {
        kind: ChangeKind::Other,
        scope: None,
        subject: header.to_owned(),
        breaking: false,
        reverts: None,
        plain_merge: merge,
    }
}

/// `type(scope)!: subject`, or `None` when `line` is not a conventional header.
fn parse_header(line: &str) -> Option<Message> {
    let (head, subject) = line.split_once(':')?;
    // The spec asks for a space after the colon; `fix:x` is taken as not conventional.
    let subject = subject.strip_prefix(' ')?.trim();
    if subject.is_empty() {
        return None;
    }
    let (head, bang) = match head.strip_suffix('!') {
        Some(head) => (head, true),
        None => (head, false),
    };
    let (kind, scope) = match head.split_once('(') {
        Some((kind, rest)) => {
            let scope = rest.strip_suffix(')')?.trim();
            if scope.is_empty() || scope.contains(['(', ')']) {
                return None;
            }
            (kind, Some(scope.to_owned()))
        }
        None => (head, None),
    };
    let valid_kind = kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_kind {
        return None;
    }
    // Most types are written in lower case already: no copy for those.
    let kind = match kind.bytes().any(|b| b.is_ascii_uppercase()) {
        true => ChangeKind::from(kind.to_ascii_lowercase()),
        false => ChangeKind::from(kind),
    };
    Some(Message {
        kind,
        scope,
        subject: subject.to_owned(),
        breaking: bang,
        reverts: None,
        plain_merge: false,
    })
}

/// A `BREAKING CHANGE:` or `BREAKING-CHANGE:` footer anywhere in the body.
fn has_breaking_footer(body: &str) -> bool {
    body.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("BREAKING CHANGE:") || line.starts_with("BREAKING-CHANGE:")
    })
}

/// The commit id in `This reverts commit <id>.`
fn reverted_commit(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("This reverts commit ")?;
        let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (id.len() >= 7).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_scope_subject(message: &str) -> (String, Option<String>, String, bool) {
        let m = parse(message, false);
        (m.kind.to_string(), m.scope, m.subject, m.breaking)
    }

    #[test]
    fn headers_with_and_without_scope() {
        assert_eq!(
            kind_scope_subject("feat(api): add /v2/users\n\nlonger text"),
            (
                "feat".into(),
                Some("api".into()),
                "add /v2/users".into(),
                false
            )
        );
        assert_eq!(
            kind_scope_subject("fix: handle empty body"),
            ("fix".into(), None, "handle empty body".into(), false)
        );
        assert_eq!(kind_scope_subject("Feat: shout").0, "feat");
    }

    #[test]
    fn bang_and_both_footers_mark_breaking_changes() {
        assert!(parse("feat(api)!: drop v1", false).breaking);
        assert!(parse("refactor!: rename config", false).breaking);
        assert!(parse("feat: x\n\nBREAKING CHANGE: config moved", false).breaking);
        assert!(parse("fix: y\n\nbody\n\nBREAKING-CHANGE: z\nRefs: #1", false).breaking);
        // Only the footer token counts, not the words in prose.
        assert!(!parse("fix: y\n\nthis is not a breaking change", false).breaking);
        assert_eq!(parse("chore!: drop node 16", false).level(), Level::Major);
    }

    #[test]
    fn non_conventional_messages_are_other_and_bump_nothing() {
        for message in [
            "Update README",
            "fix:no space",
            "feat(): empty scope",
            "feat: ",
            "WIP",
            "1.0: numbers first",
        ] {
            let m = parse(message, false);
            assert_eq!(m.kind, "other", "{message}");
            assert_eq!(m.level(), Level::None, "{message}");
        }
        assert_eq!(
            parse("Update README\n\nmore", false).subject,
            "Update README"
        );
    }

    #[test]
    fn levels_follow_the_type() {
        assert_eq!(parse("feat: a", false).level(), Level::Minor);
        assert_eq!(parse("fix: a", false).level(), Level::Patch);
        assert_eq!(parse("perf: a", false).level(), Level::Patch);
        assert_eq!(parse("chore: a", false).level(), Level::None);
        assert_eq!(parse("docs(readme): a", false).level(), Level::None);
    }

    #[test]
    fn git_reverts_name_the_reverted_commit() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        let m = parse(
            &format!("Revert \"feat(api): add x\"\n\nThis reverts commit {id}.\n"),
            false,
        );
        assert_eq!(m.kind, "revert");
        assert_eq!(m.subject, "feat(api): add x");
        assert_eq!(m.reverts.as_deref(), Some(id));
        assert_eq!(m.level(), Level::Patch);
        let m = parse(
            &format!("revert: feat: y\n\nThis reverts commit {id}."),
            false,
        );
        assert_eq!(
            (m.kind.as_str(), m.reverts.as_deref()),
            ("revert", Some(id))
        );
    }

    #[test]
    fn merges_use_their_own_header_or_the_pull_request_title() {
        let m = parse("Merge branch 'feature'", true);
        assert_eq!((m.kind.as_str(), m.plain_merge), ("other", true));
        let m = parse(
            "Merge pull request #12 from org/x\n\nfeat(ui)!: new nav\n",
            true,
        );
        assert_eq!(
            (
                m.kind.as_str(),
                m.scope.as_deref(),
                m.breaking,
                m.plain_merge
            ),
            ("feat", Some("ui"), true, false)
        );
        let m = parse("feat: squashed merge\n", true);
        assert_eq!(m.kind, "feat");
        // A non-merge commit never reads its body as a header.
        assert_eq!(parse("Update\n\nfeat: not a header", false).kind, "other");
    }
}
