//! Closed vocabularies written as strings (`outcome`, `platform`, `bump`, change types),
//! typed as enums that still take any string: a value written by a newer tool decodes into
//! the catch-all variant and is written back as it came (DESIGN.md, forward compatibility).

/// Declares an enum of known string values plus a catch-all variant (after `else`) holding any other
/// string, with `as_str`, `From<&str>`, `Display`, comparison with `&str`, and serde as a
/// plain JSON string. The default is the catch-all holding `""`: what a document without
/// the field has always decoded to.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
        $(#[$ometa:meta])* else $other:ident(String);
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            $(#[$ometa])* $other(String),
        }

        impl $name {
            /// The string written to the envelope.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::$other(text) => text,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )*
                    other => $name::$other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name::from(text.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::from(text.as_ref()))
            }
        }
    };
}

string_enum! {
    /// How a deployment ended (or where it stands): one vocabulary for every platform
    /// (DESIGN.md). ecs-roll and k8s-apply write these; a new value is added here, for both.
    pub enum Outcome {
        /// The new version runs and is stable.
        Completed = "completed",
        /// Nothing to deploy: the running version is already the one asked for.
        Unchanged = "unchanged",
        /// Only the desired count changed.
        Scaled = "scaled",
        /// Dry run: what would be deployed.
        Planned = "planned",
        /// Started and not yet decided (what an interrupt leaves).
        InProgress = "in_progress",
        /// Started and not followed (`--no-wait`).
        Started = "started",
        /// The deployment failed and was left as it is.
        Failed = "failed",
        /// Not rolled out in time, and left as it is.
        TimedOut = "timed_out",
        /// Someone else's deployment replaced ours.
        Superseded = "superseded",
        /// Failed, then rolled back to the previous version, which runs.
        RolledBack = "rolled_back",
        /// Failed, and ECS's deployment circuit breaker rolled it back (ECS only).
        RolledBackByEcs = "rolled_back_by_ecs",
        /// Rolling back now (what an interrupt during a rollback leaves).
        RollingBack = "rolling_back",
        /// Failed, and the rollback failed too.
        RollbackFailed = "rollback_failed",
    }
    /// A value this version does not know, kept as it came.
    else Other(String);
}

string_enum! {
    /// Where a deployment ran.
    pub enum Platform {
        /// Amazon ECS (ecs-roll).
        Ecs = "ecs",
        /// Kubernetes (k8s-apply).
        Kubernetes = "kubernetes",
    }
    /// A value this version does not know, kept as it came.
    else Other(String);
}

string_enum! {
    /// The part of the version a release raised (`release.bump`).
    pub enum Bump {
        /// Nothing releasable: no release.
        None = "none",
        /// `fix`, `perf`, a revert.
        Patch = "patch",
        /// `feat`.
        Minor = "minor",
        /// A breaking change.
        Major = "major",
        /// The version was given (`--version`, or an override that bumped nothing).
        Explicit = "explicit",
    }
    /// A value this version does not know, kept as it came.
    else Other(String);
}

string_enum! {
    /// A commit's Conventional Commits type (`release.changes[].type`). Any other type a
    /// project uses (`deps`, `security`, …) is kept as [`ChangeKind::Custom`].
    pub enum ChangeKind {
        /// A new feature.
        Feat = "feat",
        /// A bug fix.
        Fix = "fix",
        /// A performance improvement.
        Perf = "perf",
        /// A revert of an earlier commit.
        Revert = "revert",
        Docs = "docs",
        Style = "style",
        Refactor = "refactor",
        Test = "test",
        Build = "build",
        Ci = "ci",
        Chore = "chore",
        /// A message that does not follow the convention.
        Other = "other",
    }
    /// Any other type, lowercased, as the commit gave it.
    else Custom(String);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_as_the_same_strings() {
        for text in [
            "completed",
            "unchanged",
            "scaled",
            "planned",
            "in_progress",
            "started",
            "failed",
            "timed_out",
            "superseded",
            "rolled_back",
            "rolled_back_by_ecs",
            "rolling_back",
            "rollback_failed",
        ] {
            let outcome = Outcome::from(text);
            assert!(!matches!(outcome, Outcome::Other(_)), "{text} is known");
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{text}\"")
            );
        }
        assert_eq!(Outcome::RolledBackByEcs, "rolled_back_by_ecs");
        assert_eq!(Bump::from("none"), Bump::None);
        assert_eq!(ChangeKind::from("other"), ChangeKind::Other);
        assert_eq!(ChangeKind::from("feat"), ChangeKind::Feat);
    }

    #[test]
    fn unknown_values_pass_through_unchanged() {
        let outcome: Outcome = serde_json::from_str("\"paused_by_canary\"").unwrap();
        assert_eq!(outcome, Outcome::Other("paused_by_canary".into()));
        assert_eq!(
            serde_json::to_string(&outcome).unwrap(),
            "\"paused_by_canary\""
        );
        let kind: ChangeKind = serde_json::from_str("\"deps\"").unwrap();
        assert_eq!(kind, ChangeKind::Custom("deps".into()));
        assert_eq!(kind.to_string(), "deps");
        let platform: Platform = serde_json::from_str("\"nomad\"").unwrap();
        assert_eq!(platform.as_str(), "nomad");
    }

    #[test]
    fn a_value_that_is_not_a_string_is_refused() {
        assert!(serde_json::from_str::<Outcome>("3").is_err());
    }
}
