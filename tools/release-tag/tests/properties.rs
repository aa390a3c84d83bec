//! Properties of release-tag's pure deciders over generated inputs: a version bump always
//! moves forward by exactly the level asked, a pre-release numbers past every existing one,
//! the next release is newer than the latest stable one and the release candidate in flight
//! (and stays below 1.0.0 unless asked), and a conventional header's type and `!` decide the
//! level whatever the scope and subject.

use proptest::prelude::*;
use release_tag::conventional::{Level, parse};
use release_tag::plan::{
    Decision, Facts, Request, bump_version, core, decide, difference, with_pre,
};
use semver::{Prerelease, Version};

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::None),
        Just(Level::Patch),
        Just(Level::Minor),
        Just(Level::Major)
    ]
}

/// Versions with small components, half of them pre-releases (`-rc.N`, `-beta.N`).
fn version() -> impl Strategy<Value = Version> {
    (
        0u64..20,
        0u64..20,
        0u64..20,
        prop::option::of((prop_oneof!["rc", "beta"], 1u64..9)),
    )
        .prop_map(|(major, minor, patch, pre)| {
            let mut v = Version::new(major, minor, patch);
            if let Some((ident, n)) = pre {
                v.pre = Prerelease::new(&format!("{ident}.{n}")).unwrap();
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_bump_moves_forward_by_exactly_the_level_asked(v in version(), level in level()) {
        let bumped = bump_version(&v, level);
        prop_assert!(bumped.pre.is_empty() && bumped.build.is_empty(), "{bumped}");
        if level == Level::None {
            prop_assert_eq!(bumped, core(&v));
        } else {
            prop_assert!(bumped > v, "{v} -> {bumped}");
            // A release bumps the component of its level; a pre-release's patch bump is
            // its own release (1.2.3-rc.1 -> 1.2.3), a difference of nothing.
            let expected = match (level, v.pre.is_empty()) {
                (Level::Patch, false) => Level::None,
                _ => level,
            };
            prop_assert_eq!(difference(&core(&v), &bumped), expected, "{} -> {}", v, bumped);
            // What is below the bumped component starts again from zero.
            match level {
                Level::Major => prop_assert!(bumped.minor == 0 && bumped.patch == 0, "{v} -> {bumped}"),
                Level::Minor => prop_assert_eq!(bumped.patch, 0, "{} -> {}", v, bumped),
                _ => {}
            }
        }
    }

    #[test]
    fn bumps_are_ordered_by_level(v in version()) {
        let bumps: Vec<Version> =
            [Level::None, Level::Patch, Level::Minor, Level::Major].iter().map(|l| bump_version(&v, *l)).collect();
        prop_assert!(bumps.windows(2).all(|w| w[0] <= w[1]), "{bumps:?}");
    }

    #[test]
    fn a_pre_release_numbers_past_every_existing_one_of_its_core(
        base in (0u64..2, 0u64..2, 0u64..2),
        ident in prop_oneof!["rc", "beta", "alpha-1"],
        // Cores as small as `base`'s, so that many share it; identifiers as `ident`'s.
        existing in prop::collection::vec(
            (0u64..2, 0u64..2, 0u64..2, prop::option::of((prop_oneof!["rc", "beta", "alpha-1"], 1u64..30))),
            0..12,
        ),
    ) {
        let existing: Vec<Version> = existing
            .into_iter()
            .map(|(major, minor, patch, pre)| {
                let mut v = Version::new(major, minor, patch);
                if let Some((id, n)) = pre {
                    v.pre = Prerelease::new(&format!("{id}.{n}")).unwrap();
                }
                v
            })
            .collect();
        let core_version = Version::new(base.0, base.1, base.2);
        let next = with_pre(core_version.clone(), &ident, &existing);
        prop_assert_eq!(core(&next), core_version.clone());
        prop_assert!(next < core_version, "a pre-release sorts before its release");
        prop_assert!(!existing.contains(&next), "{} is taken", next);
        for v in existing.iter().filter(|v| core(v) == core_version) {
            if v.pre.as_str().split_once('.').is_some_and(|(id, _)| id == ident) {
                prop_assert!(next > *v, "{next} after {v}");
            }
        }
    }

    #[test]
    fn the_next_release_is_newer_than_the_latest_one(
        stable in prop::option::of(version().prop_map(|v| core(&v))),
        pending_level in level(),
        pending_n in 1u64..5,
        since_stable in level(),
        since_previous in level(),
        // `--bump` takes patch, minor or major.
        forced in prop::option::of(level().prop_filter("a --bump level", |l| *l > Level::None)),
        pre in prop::option::of(Just("rc".to_owned())),
        major_on_zero in any::<bool>(),
    ) {
        // A release candidate in flight is newer than the stable release it follows.
        let pending = stable.as_ref().filter(|_| pending_level > Level::None).map(|s| {
            let mut p = bump_version(s, pending_level);
            p.pre = Prerelease::new(&format!("rc.{pending_n}")).unwrap();
            p
        });
        let existing: Vec<Version> = stable.iter().chain(pending.iter()).cloned().collect();
        let request = Request {
            bump: forced,
            version: None,
            pre,
            initial: Version::new(0, 1, 0),
            major_on_zero,
        };
        let facts = Facts {
            stable: stable.as_ref(),
            pending: pending.as_ref(),
            since_stable: since_stable.max(since_previous),
            since_previous,
            existing: &existing,
        };
        match decide(&request, &facts) {
            Decision::Nothing => {
                // Nothing only when nothing asks for a release: no commit, no --bump, no
                // release candidate to graduate.
                prop_assert!(forced.is_none() && since_previous == Level::None);
                prop_assert!(pending.is_none() || request.pre.is_some());
            }
            Decision::Release { version, .. } => {
                for newer_than in stable.iter().chain(pending.iter()) {
                    prop_assert!(version > *newer_than, "{} after {}", version, newer_than);
                }
                prop_assert!(!existing.contains(&version), "{} is taken", version);
                prop_assert_eq!(version.pre.is_empty(), request.pre.is_none(), "{}", version);
                // Below 1.0.0 a breaking change is a minor bump unless asked otherwise.
                // (A 1.0.0 release candidate in flight graduates, though.)
                let below_one = stable.as_ref().is_some_and(|s| s.major == 0)
                    && pending.as_ref().is_none_or(|p| p.major == 0);
                if below_one && !major_on_zero && forced.is_none() {
                    prop_assert_eq!(version.major, 0, "{}", version);
                }
            }
        }
    }

    #[test]
    fn the_header_type_and_bang_decide_the_level(
        kind in prop_oneof!["feat", "fix", "perf", "chore", "docs", "refactor", "ci"],
        scope in prop::option::of("[a-z][a-z0-9-]{0,8}"),
        bang in any::<bool>(),
        subject in "[a-zA-Z0-9][a-zA-Z0-9 ,.()-]{0,40}",
        body in prop::option::of("[a-z ]{0,30}"),
    ) {
        let scope_text = scope.as_ref().map(|s| format!("({s})")).unwrap_or_default();
        let mut message = format!("{kind}{scope_text}{}: {subject}", if bang { "!" } else { "" });
        if let Some(body) = &body {
            message.push_str("\n\n");
            message.push_str(body);
        }
        let parsed = parse(&message, false);
        prop_assert_eq!(parsed.scope.as_deref(), scope.as_deref(), "{}", message);
        prop_assert_eq!(parsed.breaking, bang, "{}", message);
        let expected = match (bang, kind.as_str()) {
            (true, _) => Level::Major,
            (false, "feat") => Level::Minor,
            (false, "fix" | "perf") => Level::Patch,
            _ => Level::None,
        };
        prop_assert_eq!(parsed.level(), expected, "{}", message);
    }

    #[test]
    fn a_breaking_change_footer_makes_any_type_major(
        kind in prop_oneof!["feat", "fix", "chore", "docs"],
        subject in "[a-z][a-z ]{0,20}",
        note in "[a-z][a-z ]{0,20}",
        dash in any::<bool>(),
    ) {
        let footer = if dash { "BREAKING-CHANGE" } else { "BREAKING CHANGE" };
        let message = format!("{kind}: {subject}\n\nwhy\n\n{footer}: {note}");
        let parsed = parse(&message, false);
        prop_assert!(parsed.breaking, "{}", message);
        prop_assert_eq!(parsed.level(), Level::Major, "{}", message);
    }
}
