//! The envelope: the one JSON document that flows down a shipkit pipeline.
//!
//! Every type here keeps the fields it does not know in `extra`, so a newer tool's
//! additions pass through an older tool unchanged (DESIGN.md, "The envelope").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

mod deployment;
mod kubernetes;
mod vocabulary;

pub use deployment::{
    Deployment, DeploymentEvent, DeploymentFailure, EcsDeployment, StoppedContainer, StoppedTask,
};
pub use kubernetes::{KubernetesDeployment, KubernetesFailure, KubernetesResource};
pub use vocabulary::{Bump, ChangeKind, Outcome, Platform};

/// The schema this build writes. Readers accept any `shipkit/v1[.x]`.
pub const SCHEMA: &str = "shipkit/v1";

/// The major version of [`SCHEMA`]; an input with another major is refused.
pub const SCHEMA_MAJOR: u64 = 1;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `shipkit/v1`; an input without it is taken as v1.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// The commit the pipeline works on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// Images built (img-build) and pushed (img-push).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// The release computed or tagged by release-tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// Rollouts done by ecs-roll and k8s-apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<Deployment>,
    /// Health checks done by health-wait.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthResult>,
    /// Set by the first tool that failed; every later tool skips (exit 3).
    #[serde(default)]
    pub failed: Option<Failure>,
    /// Top-level fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_schema() -> String {
    SCHEMA.to_owned()
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            schema: default_schema(),
            git: None,
            images: Vec::new(),
            release: None,
            deployments: Vec::new(),
            health: Vec::new(),
            failed: None,
            extra: Map::new(),
        }
    }
}

/// The commit, branch and cleanliness of the working tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full commit id.
    #[serde(default)]
    pub commit: String,
    /// Branch name, absent on a detached HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Whether the tree had uncommitted changes.
    #[serde(default)]
    pub dirty: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One image: built locally, then pushed to zero or more repositories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Logical name (`api-server`); also the default repository name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Local image id (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Local tags (`api-server:git-3f2a1c9`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// True when an identical earlier build was reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_bytes: Option<u64>,
    /// Where the image went; downstream tools deploy `reference` (by digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<Pushed>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One tag of an image in one repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    pub repository: String,
    pub tag: String,
    #[serde(default)]
    pub digest: String,
    /// `repository@digest`.
    #[serde(default)]
    pub reference: String,
    /// True when the registry already had this tag at this digest.
    #[serde(default)]
    pub skipped: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A release computed from the commit history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_tag: Option<String>,
    /// `major`, `minor`, `patch`, `none` or `explicit`.
    #[serde(default)]
    pub bump: Bump,
    #[serde(default)]
    pub commit: String,
    #[serde(default)]
    pub pushed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One commit as read by release-tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Conventional-commit type, or `other`.
    #[serde(rename = "type")]
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub subject: String,
    #[serde(default)]
    pub breaking: bool,
    pub commit: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The verdict on one health-check target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthResult {
    pub target: String,
    pub healthy: bool,
    pub attempts: u32,
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<HealthAttempt>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the last attempt against a target saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthAttempt {
    /// HTTP status, absent for TCP checks and for attempts that got no response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why the attempt failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which tool failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub tool: String,
    pub error: String,
    pub exit_code: u8,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Envelope {
    /// The image of this logical name, if the envelope has one.
    pub fn image_mut(&mut self, name: &str) -> Option<&mut Image> {
        self.images.iter_mut().find(|i| i.name == name)
    }

    /// The pushes a deploy tool may deploy, in order: each image's `pushed[]` entries that
    /// have a digest reference. A push made with `--dry-run` put nothing in a registry, so an
    /// envelope holding one is bad input (exit 2) for ecs-roll and k8s-apply alike.
    pub fn deployable_pushes(&self) -> crate::Result<Vec<(&Image, &Pushed)>> {
        let mut pushes = Vec::new();
        for image in &self.images {
            for pushed in &image.pushed {
                if pushed.dry_run {
                    return Err(crate::Error::usage(format!(
                        "image {} was not pushed (img-push ran with --dry-run): nothing to deploy",
                        image.name
                    )));
                }
                if !pushed.reference.is_empty() {
                    pushes.push((image, pushed));
                }
            }
        }
        Ok(pushes)
    }

    /// Adds `image`, replacing an earlier image of the same name (chained builds).
    pub fn upsert_image(&mut self, image: Image) {
        match self.images.iter_mut().find(|i| i.name == image.name) {
            Some(existing) => *existing = image,
            None => self.images.push(image),
        }
    }
}
