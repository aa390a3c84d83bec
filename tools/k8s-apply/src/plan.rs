//! The plan: what each object gets, decided before anything is written.
//!
//! [`Local::read`] reads everything local (manifests, images, order). [`plan`] then makes
//! read-only calls only: every kind resolved by discovery (unknown → exit 2), every live
//! object read (the state a rollback restores; one LIST per kind and namespace holding
//! several, [`crate::live`]), every object dry-run applied (a conflict
//! with another field manager stops the run here, before any write), and the result compared
//! with the live object: `created`, `configured` or `unchanged` (not written at all).
//!
//! A custom resource whose kind only a CRD of the same input defines ([`crds`]) cannot be read
//! or dry-run before that CRD exists: it is planned as `created` from its manifest as given,
//! and applied once the CRD is `Established` ([`Step::awaits_crd`]).

use crate::applyset;
use crate::cluster::{Cluster, KubeError, Target};
use crate::crds::{self, Defined};
use crate::diff;
use crate::images::{self, Substitution};
use crate::live::LiveObjects;
use crate::manifests::Manifest;
use crate::order;
use crate::request::Request;
use crate::resolve;
use crate::sources;
use common::envelope::Envelope;
use common::{Error, Result, Ui};
use futures_util::StreamExt;
use serde_json::Value;

/// What an object gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Configure,
    Unchanged,
}

impl Action {
    /// As written in `resources[].action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Configure => "configured",
            Action::Unchanged => "unchanged",
        }
    }
}

/// Everything read locally, checked: the manifests in apply order, images substituted.
#[derive(Debug, Clone)]
pub struct Local {
    pub manifests: Vec<Manifest>,
    pub substitution: Substitution,
}

impl Local {
    /// Reads the manifests and the images on offer, substitutes and orders (exit 2 on bad
    /// input), and reports what was substituted.
    pub fn read(request: &Request, envelope: &Envelope, ui: &Ui) -> Result<Local> {
        let offers = images::offers(envelope, &request.images)?;
        let mut manifests = sources::read_all(&request.files, &request.kustomizations)?;
        let substitution = images::substitute(&mut manifests, &offers);
        report_substitution(&substitution, ui);
        Ok(Local {
            manifests: order::in_apply_order(manifests),
            substitution,
        })
    }
}

impl Local {
    /// The API groups the manifests use, each once (`""`: the core group).
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for manifest in &self.manifests {
            let group = manifest.group_version().0;
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }
}

fn report_substitution(substitution: &Substitution, ui: &Ui) {
    for r in &substitution.replaced {
        ui.line(&format!(
            "{} {}: image {} -> {}",
            r.object, r.container, r.from, r.to
        ));
    }
    for name in &substitution.unmatched {
        tracing::warn!(
            "image {name} was pushed upstream but no container in the manifests uses it"
        );
    }
    for (object, container, image) in &substitution.mutable {
        tracing::warn!("{object} {container}: image {image} is on a mutable tag, not a digest");
    }
}

/// One object of the plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub manifest: Manifest,
    pub target: Target,
    /// The object as it is before this run (what a rollback restores); absent when new.
    pub live: Option<Value>,
    /// What the server would make of it (the dry run's answer).
    pub would_be: Value,
    pub action: Action,
    /// Live vs would-be, for `--dry-run` and `-v`.
    pub diff: String,
    /// The CRD of this apply that defines its kind, which the cluster does not serve yet: the
    /// object is applied once that CRD is `Established` (and was not dry-run).
    pub awaits_crd: Option<String>,
}

impl Step {
    pub fn kind(&self) -> &str {
        &self.target.resource.kind
    }
}

/// The whole plan, in apply order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub substitution: Substitution,
    /// `--prune --applyset`: the set, and what leaves it.
    pub applyset: Option<SetPlan>,
}

/// An applyset: its parent, its members now, and the former members to prune.
#[derive(Debug, Clone)]
pub struct SetPlan {
    pub id: String,
    /// The parent Secret.
    pub parent: Target,
    /// The parent as it is to be left: listing only the current members' kinds and namespaces.
    pub final_parent: Value,
    /// Former members no longer in the manifests.
    pub prune: Vec<Target>,
}

impl Plan {
    /// The namespaces the objects are in, each once, in order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = Vec::new();
        for step in &self.steps {
            if let Some(ns) = &step.target.namespace
                && !namespaces.contains(ns)
            {
                namespaces.push(ns.clone());
            }
        }
        namespaces
    }
}

/// Resolves, reads and dry-runs every object (read-only; see the module documentation).
/// `diffs`: whether each step's diff is wanted (`--dry-run`, `-v`); it is left empty else.
pub async fn plan(cluster: &Cluster, request: &Request, local: Local, diffs: bool) -> Result<Plan> {
    let mut manifests = local.manifests;
    let set_namespace = request
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let set_id = request
        .applyset
        .as_ref()
        .map(|name| applyset::id(name, &set_namespace));
    if let Some(id) = &set_id {
        for manifest in &mut manifests {
            applyset::label_member(&mut manifest.object, id);
        }
    }
    let defined = crds::defined_by(&manifests);
    let mut targets = resolve::resolve_all(cluster, request, manifests, &defined)?;
    // The kinds that wait for their CRD: those the cluster does not serve yet.
    let unserved: Vec<Defined> = defined
        .into_iter()
        .filter(|d| {
            let r = &d.resource;
            cluster.resolve(&r.group, &r.version, &r.kind).is_none()
        })
        .collect();
    let set = match (&request.applyset, &set_id) {
        (Some(name), Some(id)) => {
            Some(plan_set(cluster, name, &set_namespace, id, &mut targets).await?)
        }
        _ => None,
    };
    let created_namespaces: Vec<String> = targets
        .iter()
        .filter(|(m, _)| m.kind() == "Namespace")
        .map(|(m, _)| m.name().to_owned())
        .collect();
    // The state before the apply: LISTs where several objects share a kind and namespace.
    let served: Vec<&Target> = targets
        .iter()
        .filter(|(m, _)| awaited_crd(&unserved, m).is_none())
        .map(|(_, t)| t)
        .collect();
    let live = LiveObjects::read(cluster, &served).await?;
    // Every object is planned on its own (read-only calls): several at once, kept in order.
    let steps: Vec<Step> = futures_util::stream::iter(targets)
        .map(|(manifest, target)| {
            let awaits = awaited_crd(&unserved, &manifest);
            let known = live.get(&target);
            let context = PlanContext {
                cluster,
                request,
                created_namespaces: &created_namespaces,
                diffs,
            };
            plan_one(context, manifest, target, known, awaits)
        })
        .buffered(PLANNED_AT_ONCE)
        .collect::<Vec<Result<Step>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    Ok(Plan {
        steps,
        substitution: local.substitution,
        applyset: set,
    })
}

/// The applyset's plan: its parent put among the targets (after the Namespaces, listing the
/// former and current kinds and namespaces, so an interrupted run still covers both), and the
/// former members that are no longer in the manifests.
async fn plan_set(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
    id: &str,
    targets: &mut Vec<(Manifest, Target)>,
) -> Result<SetPlan> {
    let secret = cluster
        .resolve("", "v1", "Secret")
        .ok_or_else(|| Error::failed("the cluster does not serve Secrets"))?;
    let parent = Target {
        resource: secret.resource,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    };
    let live = cluster.get(&parent).await?;
    if let Some(live) = &live
        && live["metadata"]["labels"][applyset::ID_LABEL] != id
    {
        return Err(Error::usage(format!(
            "--applyset {name}: Secret {namespace}/{name} exists and is not this applyset's parent"
        )));
    }
    let (mut kinds, mut namespaces) = live
        .as_ref()
        .map(|l| applyset::listed(l, namespace))
        .unwrap_or_default();
    let current: Vec<applyset::Member> = targets
        .iter()
        .map(|(m, t)| {
            let kind = applyset::group_kind(m.group_version().0, m.kind());
            (kind, t.namespace.clone(), t.name.clone())
        })
        .collect();
    let current_kinds: Vec<String> = current.iter().map(|(k, _, _)| k.clone()).collect();
    let mut current_namespaces: Vec<String> =
        current.iter().filter_map(|(_, ns, _)| ns.clone()).collect();
    current_namespaces.push(namespace.to_owned());
    let found = members(cluster, id, &kinds, &namespaces).await?;
    let prune = applyset::to_prune(&found, &current)
        .into_iter()
        .filter_map(|(kind, ns, name)| {
            let (group, kind) = applyset::split_group_kind(&kind);
            let resolved = cluster.resolve_group_kind(group, kind)?;
            Some(Target {
                resource: resolved.resource,
                namespace: ns,
                name,
            })
        })
        .collect();
    kinds.extend(current_kinds.iter().cloned());
    namespaces.extend(current_namespaces.iter().cloned());
    let manifest = |object: Value| Manifest {
        source: crate::manifests::Source {
            origin: format!("--applyset {name}"),
            document: 1,
            item: None,
        },
        object,
    };
    let first_after_namespaces = targets
        .iter()
        .take_while(|(m, _)| m.kind() == "Namespace")
        .count();
    targets.insert(
        first_after_namespaces,
        (
            manifest(applyset::parent(name, namespace, &kinds, &namespaces)),
            parent.clone(),
        ),
    );
    Ok(SetPlan {
        id: id.to_owned(),
        parent,
        final_parent: applyset::parent(name, namespace, &current_kinds, &current_namespaces),
        prune,
    })
}

/// The members of the set `id` found among `kinds` in `namespaces`.
async fn members(
    cluster: &Cluster,
    id: &str,
    kinds: &[String],
    namespaces: &[String],
) -> Result<Vec<applyset::Member>> {
    let selector = format!("{}={id}", applyset::PART_OF_LABEL);
    let mut found = Vec::new();
    let mut namespaces = namespaces.to_vec();
    namespaces.sort();
    namespaces.dedup();
    let mut kinds = kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    for group_kind in &kinds {
        let (group, kind) = applyset::split_group_kind(group_kind);
        let Some(resolved) = cluster.resolve_group_kind(group, kind) else {
            continue; // a kind the cluster no longer serves has no members left
        };
        let scopes: Vec<Option<&str>> = match resolved.namespaced {
            true => namespaces.iter().map(|ns| Some(ns.as_str())).collect(),
            false => vec![None],
        };
        for namespace in scopes {
            for name in cluster
                .names_labelled(&resolved.resource, namespace, &selector)
                .await?
            {
                found.push((group_kind.clone(), namespace.map(str::to_owned), name));
            }
        }
    }
    Ok(found)
}

/// How many objects are read and dry-run at once.
const PLANNED_AT_ONCE: usize = 16;

/// The CRD a manifest's kind waits for, when the cluster does not serve the kind yet.
fn awaited_crd(unserved: &[Defined], manifest: &Manifest) -> Option<String> {
    let (group, version) = manifest.group_version();
    crds::find(unserved, group, version, manifest.kind()).map(|d| d.crd.clone())
}

/// What every object's planning shares.
#[derive(Clone, Copy)]
struct PlanContext<'a> {
    cluster: &'a Cluster,
    request: &'a Request,
    /// The namespaces this run creates.
    created_namespaces: &'a [String],
    /// Whether the steps' diffs are wanted.
    diffs: bool,
}

/// Reads the live object (unless `known` from a LIST), dry-runs the apply, and decides the
/// action. An object whose CRD this apply creates is planned as created, as its manifest says
/// (nothing to read yet).
async fn plan_one(
    context: PlanContext<'_>,
    manifest: Manifest,
    target: Target,
    known: Option<Option<Value>>,
    awaits_crd: Option<String>,
) -> Result<Step> {
    let PlanContext {
        cluster,
        request,
        created_namespaces,
        diffs,
    } = context;
    if awaits_crd.is_some() {
        let diff = match diffs {
            true => diff::unified(
                &target.resource.kind,
                &target.display(),
                None,
                &manifest.object,
            ),
            false => String::new(),
        };
        return Ok(Step {
            would_be: manifest.object.clone(),
            manifest,
            target,
            live: None,
            action: Action::Create,
            diff,
            awaits_crd,
        });
    }
    let live = match known {
        Some(live) => live,
        None => cluster.get(&target).await?,
    };
    let would_be = match cluster
        .apply(&target, &manifest.object, true, request.force_conflicts)
        .await
    {
        Ok(would_be) => would_be,
        // Its namespace is one this run creates: the dry run cannot see it yet.
        Err(e) if e.is_not_found() && in_new_namespace(&target, created_namespaces) => {
            manifest.object.clone()
        }
        Err(e) => return Err(plan_error(&manifest, e)),
    };
    let action = match &live {
        None => Action::Create,
        Some(live) if diff::changes(live, &would_be) => Action::Configure,
        Some(_) => Action::Unchanged,
    };
    // An unchanged object's diff is empty: not worth computing (nor when not wanted).
    let diff = match diffs && action != Action::Unchanged {
        true => diff::unified(
            &target.resource.kind,
            &target.display(),
            live.as_ref(),
            &would_be,
        ),
        false => String::new(),
    };
    Ok(Step {
        manifest,
        target,
        live,
        would_be,
        action,
        diff,
        awaits_crd: None,
    })
}

fn in_new_namespace(target: &Target, created: &[String]) -> bool {
    target
        .namespace
        .as_ref()
        .is_some_and(|ns| created.contains(ns))
}

/// A dry run that failed: the manifest's fault (exit 2, naming where it came from), a
/// conflict (exit 1, naming the manager and fields), or the API's (exit 1).
fn plan_error(manifest: &Manifest, err: KubeError) -> Error {
    match err {
        KubeError::Refused { message, .. } => Error::usage(format!(
            "{}: {}: {message}",
            manifest.source,
            manifest.display_name()
        )),
        KubeError::Conflict { what, message } => Error::failed(format!(
            "{what}: {message} (nothing was applied; --force-conflicts takes these fields)"
        )),
        other => other.into(),
    }
}

/// Whether the diffs are shown: under `--dry-run` or `-v`.
pub fn shows_diffs(dry_run: bool, ui: &Ui) -> bool {
    dry_run
        || matches!(
            ui.verbosity(),
            common::ui::Verbosity::Verbose | common::ui::Verbosity::Trace
        )
}

/// Tells what the plan does: one line per object; under `--dry-run` (or `-v`) each diff.
pub fn report(plan: &Plan, dry_run: bool, ui: &Ui) {
    let diffs = shows_diffs(dry_run, ui);
    for step in &plan.steps {
        // Without --dry-run, what is applied is told as it is applied; only the rest here.
        match (dry_run, step.action) {
            (true, action) => ui.line(&format!(
                "{}: {} (dry run{})",
                step.target.display(),
                action.as_str(),
                match &step.awaits_crd {
                    Some(crd) => format!(
                        "; not checked by the server, which cannot know the kind before \
                         CustomResourceDefinition {crd} of this apply exists"
                    ),
                    None => String::new(),
                }
            )),
            (false, Action::Unchanged) => ui.line(&format!("{}: unchanged", step.target.display())),
            (false, _) => {}
        }
        if diffs && !step.diff.is_empty() {
            ui.line(step.diff.trim_end());
        }
    }
}
