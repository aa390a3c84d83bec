//! Deciding the next release: which tag is the previous release, what the commits since
//! then call for, and the version that follows. Pure: the git facts come in as values.

use crate::conventional::{self, Level, Message};
use common::envelope::Bump;
use semver::{Prerelease, Version};
use std::collections::HashSet;

/// A tag whose name is the tag prefix followed by a semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTag {
    /// The full tag name (`v1.4.0`).
    pub name: String,
    /// The version after the prefix.
    pub version: Version,
    /// The commit the tag points at (peeled).
    pub commit: String,
}

/// Reads `name` as a release tag: `prefix` followed by a semantic version; `None` for
/// other prefixes and for names that are not semver after the prefix (`v1`, `vnext`).
pub fn release_tag(name: &str, prefix: &str, commit: &str) -> Option<VersionTag> {
    let version = Version::parse(name.strip_prefix(prefix)?).ok()?;
    Some(VersionTag {
        name: name.to_owned(),
        version,
        commit: commit.to_owned(),
    })
}

/// The tag of highest SemVer precedence among `tags`, pre-releases included or not.
pub fn latest(tags: &[VersionTag], pre_releases: bool) -> Option<&VersionTag> {
    tags.iter()
        .filter(|t| pre_releases || t.version.pre.is_empty())
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// One commit read from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full commit id.
    pub id: String,
    /// The message, read.
    pub message: Message,
}

impl Commit {
    /// Reads a commit from its id, number of parents and full message.
    pub fn read(id: &str, parents: usize, message: &str) -> Commit {
        Commit {
            id: id.to_owned(),
            message: conventional::parse(message, parents > 1),
        }
    }
}

/// The ids of commits cancelled out within `commits`: a revert and the commit it reverts,
/// when both are in the range (the pair changes nothing for the release).
pub fn cancelled(commits: &[Commit]) -> HashSet<String> {
    let mut out = HashSet::new();
    for commit in commits {
        let Some(reverted) = &commit.message.reverts else {
            continue;
        };
        // `git revert` writes the full id, but a hand-written message may abbreviate it.
        if let Some(original) = commits.iter().find(|c| c.id.starts_with(reverted.as_str())) {
            out.insert(original.id.clone());
            out.insert(commit.id.clone());
        }
    }
    out
}

/// The bump the commits call for: the highest level among them, revert pairs excluded.
pub fn level_of(commits: &[Commit]) -> Level {
    let cancelled = cancelled(commits);
    commits
        .iter()
        .filter(|c| !cancelled.contains(&c.id))
        .map(|c| c.message.level())
        .max()
        .unwrap_or(Level::None)
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `--bump`: forces this level, whatever the commits say.
    pub bump: Option<Level>,
    /// `--version`: this exact version.
    pub version: Option<Version>,
    /// `--pre IDENT`: a pre-release `X.Y.Z-IDENT.N`.
    pub pre: Option<String>,
    /// `--initial-version`: the first release when no release tag is reachable.
    pub initial: Version,
    /// `--major-on-zero`: below 1.0.0 a breaking change bumps major (default: minor).
    pub major_on_zero: bool,
}

/// What the repository says, tags at HEAD left out (so a rerun recomputes the same release).
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The latest stable release reachable from HEAD.
    pub stable: Option<&'a Version>,
    /// The latest reachable pre-release newer than `stable` (a release candidate in flight).
    pub pending: Option<&'a Version>,
    /// What the commits since `stable` call for.
    pub since_stable: Level,
    /// What the commits since the previous tag call for (the previous pre-release when
    /// releasing a pre-release; otherwise the same as `since_stable`).
    pub since_previous: Level,
    /// Every release tag's version, reachable or not: pre-release numbers must not collide.
    pub existing: &'a [Version],
}

/// The outcome of deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing releasable since the previous release.
    Nothing,
    /// Release `version`; `bump` is what goes into `release.bump`.
    Release {
        /// The new version.
        version: Version,
        /// `major`, `minor`, `patch` or `explicit`.
        bump: Bump,
    },
}

/// Decides the next version.
pub fn decide(request: &Request, facts: &Facts<'_>) -> Decision {
    if let Some(version) = &request.version {
        let version = match &request.pre {
            Some(ident) => with_pre(core(version), ident, facts.existing),
            None => version.clone(),
        };
        return Decision::Release {
            version,
            bump: Bump::Explicit,
        };
    }
    let releasing_pre = request.pre.is_some();
    // Graduating a release candidate is itself releasable, even with no new commit.
    let graduating = !releasing_pre && facts.pending.is_some();
    let mut derived = facts.since_stable;
    let base_is_zero = facts
        .stable
        .map_or(request.initial.major == 0, |v| v.major == 0);
    if derived == Level::Major && base_is_zero && !request.major_on_zero {
        derived = Level::Minor;
    }
    let level = request.bump.unwrap_or(derived);
    let new_changes = request.bump.is_some() || facts.since_previous > Level::None;
    if !new_changes && !graduating {
        return Decision::Nothing;
    }
    let pending_core = facts.pending.map(core);
    let (next, bump) = match facts.stable {
        None => {
            let next = pending_core
                .filter(|p| *p > request.initial)
                .unwrap_or_else(|| request.initial.clone());
            let bump = match level {
                Level::None => Bump::Explicit,
                level => level.bump(),
            };
            (next, bump)
        }
        Some(stable) => {
            let bumped = (level > Level::None).then(|| bump_version(stable, level));
            let next = match (bumped, pending_core) {
                (Some(b), Some(p)) => b.max(p),
                (Some(b), None) => b,
                (None, Some(p)) => p,
                (None, None) => return Decision::Nothing,
            };
            let bump = difference(stable, &next).bump();
            (next, bump)
        }
    };
    let version = match &request.pre {
        Some(ident) => with_pre(next, ident, facts.existing),
        None => next,
    };
    Decision::Release { version, bump }
}

/// `version` without pre-release or build metadata.
pub fn core(version: &Version) -> Version {
    Version::new(version.major, version.minor, version.patch)
}

/// `version` bumped by `level` (a plain SemVer bump; the 0.x rule is applied by [`decide`]).
pub fn bump_version(version: &Version, level: Level) -> Version {
    let v = core(version);
    match level {
        Level::None => v,
        Level::Patch if !version.pre.is_empty() => v,
        Level::Patch => Version::new(v.major, v.minor, v.patch + 1),
        Level::Minor => Version::new(v.major, v.minor + 1, 0),
        Level::Major => Version::new(v.major + 1, 0, 0),
    }
}

/// The highest component that differs between two versions.
pub fn difference(from: &Version, to: &Version) -> Level {
    if from.major != to.major {
        Level::Major
    } else if from.minor != to.minor {
        Level::Minor
    } else if from.patch != to.patch {
        Level::Patch
    } else {
        Level::None
    }
}

/// `core-IDENT.N`, N one more than the highest `core-IDENT.M` in `existing` (or 1).
pub fn with_pre(core_version: Version, ident: &str, existing: &[Version]) -> Version {
    let highest = existing
        .iter()
        .filter(|v| core(v) == core_version)
        .filter_map(|v| {
            let (id, n) = v.pre.as_str().split_once('.')?;
            (id == ident).then(|| n.parse::<u64>().ok())?
        })
        .max()
        .unwrap_or(0);
    let mut version = core_version;
    // `ident` was checked by `validate_pre`, so this cannot fail.
    version.pre = Prerelease::new(&format!("{ident}.{}", highest + 1)).unwrap_or_default();
    version
}

/// Checks a `--pre` identifier: one SemVer identifier, not purely numeric (`rc`, `beta`).
pub fn validate_pre(ident: &str) -> Result<(), String> {
    let ok = !ident.is_empty()
        && ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !ident.chars().all(|c| c.is_ascii_digit());
    match ok {
        true => Ok(()),
        false => Err(format!(
            "--pre {ident:?}: expected one identifier of letters, digits and '-', such as rc or beta"
        )),
    }
}

/// Reads `--version`: `X.Y.Z[-PRE]`, with or without the tag prefix.
pub fn parse_version(text: &str, prefix: &str) -> Result<Version, String> {
    let bare = text
        .strip_prefix(prefix)
        .filter(|_| !prefix.is_empty())
        .unwrap_or(text);
    Version::parse(bare)
        .map_err(|err| format!("--version {text:?} is not a semantic version X.Y.Z[-PRE]: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn request() -> Request {
        Request {
            bump: None,
            version: None,
            pre: None,
            initial: v("0.1.0"),
            major_on_zero: false,
        }
    }

    fn facts<'a>(stable: Option<&'a Version>, level: Level) -> Facts<'a> {
        Facts {
            stable,
            pending: None,
            since_stable: level,
            since_previous: level,
            existing: &[],
        }
    }

    fn released(decision: Decision) -> (String, Bump) {
        match decision {
            Decision::Release { version, bump } => (version.to_string(), bump),
            Decision::Nothing => panic!("expected a release"),
        }
    }

    #[test]
    fn tags_are_read_only_with_their_prefix_and_a_semver_version() {
        assert_eq!(
            release_tag("v1.4.0", "v", "c").map(|t| t.version),
            Some(v("1.4.0"))
        );
        assert_eq!(
            release_tag("api-v2.0.0-rc.1", "api-v", "c").map(|t| t.version),
            Some(v("2.0.0-rc.1"))
        );
        assert!(release_tag("api-v2.0.0", "v", "c").is_none());
        assert!(release_tag("v1", "v", "c").is_none());
        assert!(release_tag("vnext", "v", "c").is_none());
        assert!(release_tag("v1.2.3.4", "v", "c").is_none());
        assert!(release_tag("1.2.3", "v", "c").is_none());
    }

    #[test]
    fn latest_follows_semver_precedence() {
        let tags: Vec<VersionTag> = ["v1.2.0", "v1.10.0", "v1.9.9", "v2.0.0-rc.2", "v2.0.0-rc.11"]
            .iter()
            .filter_map(|n| release_tag(n, "v", "c"))
            .collect();
        assert_eq!(latest(&tags, false).unwrap().name, "v1.10.0");
        assert_eq!(latest(&tags, true).unwrap().name, "v2.0.0-rc.11");
        assert!(latest(&[], true).is_none());
    }

    #[test]
    fn commits_bump_by_their_highest_level() {
        let s = v("1.3.2");
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Minor))),
            ("1.4.0".into(), Bump::Minor)
        );
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Patch))),
            ("1.3.3".into(), Bump::Patch)
        );
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Major))),
            ("2.0.0".into(), Bump::Major)
        );
        assert_eq!(
            decide(&request(), &facts(Some(&s), Level::None)),
            Decision::Nothing
        );
    }

    #[test]
    fn below_one_a_breaking_change_bumps_minor_unless_asked() {
        let s = v("0.3.4");
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Major))),
            ("0.4.0".into(), Bump::Minor)
        );
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Minor))),
            ("0.4.0".into(), Bump::Minor)
        );
        assert_eq!(
            released(decide(&request(), &facts(Some(&s), Level::Patch))),
            ("0.3.5".into(), Bump::Patch)
        );
        let r = Request {
            major_on_zero: true,
            ..request()
        };
        assert_eq!(
            released(decide(&r, &facts(Some(&s), Level::Major))),
            ("1.0.0".into(), Bump::Major)
        );
        // An explicit --bump major is taken as asked.
        let r = Request {
            bump: Some(Level::Major),
            ..request()
        };
        assert_eq!(
            released(decide(&r, &facts(Some(&s), Level::None))),
            ("1.0.0".into(), Bump::Major)
        );
    }

    #[test]
    fn overrides_win_over_the_commits() {
        let s = v("1.3.2");
        let r = Request {
            bump: Some(Level::Patch),
            ..request()
        };
        assert_eq!(
            released(decide(&r, &facts(Some(&s), Level::Major))),
            ("1.3.3".into(), Bump::Patch)
        );
        let r = Request {
            version: Some(v("5.0.0")),
            ..request()
        };
        assert_eq!(
            released(decide(&r, &facts(Some(&s), Level::None))),
            ("5.0.0".into(), Bump::Explicit)
        );
    }

    #[test]
    fn the_first_release_is_the_initial_version() {
        // Below 1.0.0 the 0.x rule applies to what the commits call for.
        assert_eq!(
            released(decide(&request(), &facts(None, Level::Major))),
            ("0.1.0".into(), Bump::Minor)
        );
        let r = Request {
            initial: v("1.0.0"),
            ..request()
        };
        assert_eq!(
            released(decide(&r, &facts(None, Level::Patch))),
            ("1.0.0".into(), Bump::Patch)
        );
        assert_eq!(
            decide(&request(), &facts(None, Level::None)),
            Decision::Nothing
        );
    }

    #[test]
    fn pre_releases_count_up_and_graduate() {
        let s = v("1.3.2");
        let existing = [
            v("1.3.2"),
            v("1.4.0-rc.1"),
            v("1.4.0-rc.2"),
            v("1.4.0-rc.11"),
            v("1.4.0-beta.7"),
        ];
        let r = Request {
            pre: Some("rc".into()),
            ..request()
        };
        // The first candidate.
        let f = Facts {
            existing: &existing[..1],
            ..facts(Some(&s), Level::Minor)
        };
        assert_eq!(released(decide(&r, &f)).0, "1.4.0-rc.1");
        // The next one follows the highest number by precedence (11, not 2).
        let pending = v("1.4.0-rc.11");
        let f = Facts {
            pending: Some(&pending),
            existing: &existing,
            ..facts(Some(&s), Level::Minor)
        };
        assert_eq!(
            released(decide(&r, &f)),
            ("1.4.0-rc.12".into(), Bump::Minor)
        );
        // Another identifier counts on its own.
        let beta = Request {
            pre: Some("beta".into()),
            ..request()
        };
        assert_eq!(released(decide(&beta, &f)).0, "1.4.0-beta.8");
        // Without --pre, the candidate graduates, even when the commits since the last
        // candidate call for nothing, or for less than the candidate's version.
        let f = Facts {
            pending: Some(&pending),
            existing: &existing,
            since_previous: Level::None,
            ..facts(Some(&s), Level::Patch)
        };
        assert_eq!(
            released(decide(&request(), &f)),
            ("1.4.0".into(), Bump::Minor)
        );
        // A breaking change after the candidates moves the series on.
        let f = Facts {
            pending: Some(&pending),
            existing: &existing,
            ..facts(Some(&s), Level::Major)
        };
        assert_eq!(released(decide(&r, &f)).0, "2.0.0-rc.1");
        // Nothing new since the last candidate: no new candidate.
        let f = Facts {
            pending: Some(&pending),
            existing: &existing,
            since_previous: Level::None,
            ..facts(Some(&s), Level::Minor)
        };
        assert_eq!(decide(&r, &f), Decision::Nothing);
    }

    #[test]
    fn revert_pairs_in_range_cancel_out() {
        let feat = Commit::read(&"a".repeat(40), 1, "feat: x");
        let revert = Commit::read(
            &"b".repeat(40),
            1,
            &format!(
                "Revert \"feat: x\"\n\nThis reverts commit {}.",
                "a".repeat(40)
            ),
        );
        let chore = Commit::read(&"c".repeat(40), 1, "chore: y");
        assert_eq!(
            level_of(&[revert.clone(), feat.clone(), chore.clone()]),
            Level::None
        );
        // A revert of something released earlier is a patch.
        assert_eq!(level_of(&[revert, chore]), Level::Patch);
        assert_eq!(level_of(&[feat]), Level::Minor);
    }

    #[test]
    fn flags_are_checked() {
        assert!(validate_pre("rc").is_ok());
        assert!(validate_pre("alpha-1").is_ok());
        assert!(validate_pre("").is_err());
        assert!(validate_pre("12").is_err());
        assert!(validate_pre("rc.1").is_err());
        assert_eq!(parse_version("v1.2.3", "v"), Ok(v("1.2.3")));
        assert_eq!(
            parse_version("api-v1.2.3-rc.1", "api-v"),
            Ok(v("1.2.3-rc.1"))
        );
        assert_eq!(parse_version("1.2.3", ""), Ok(v("1.2.3")));
        assert!(
            parse_version("1.2", "v")
                .unwrap_err()
                .contains("not a semantic version")
        );
    }
}
