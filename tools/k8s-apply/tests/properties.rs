//! Properties of k8s-apply's pure deciders over generated inputs: a Deployment is judged
//! rolled out exactly when `kubectl rollout status` would say so, and image substitution puts
//! each offered reference in exactly the containers of its repository, says what it did, and
//! changes nothing the second time.

use k8s_apply::images::{Offer, substitute};
use k8s_apply::manifests::parse;
use k8s_apply::rollout::{Verdict, judge};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A Deployment's generation and status, as the controller reports them.
#[derive(Debug, Clone)]
struct Observed {
    generation: i64,
    observed_generation: i64,
    wanted: i32,
    replicas: i32,
    updated: i32,
    available: i32,
    deadline_exceeded: bool,
}

fn observed() -> impl Strategy<Value = Observed> {
    (
        1i64..5,
        0i64..5,
        0i32..5,
        0i32..8,
        0i32..6,
        0i32..6,
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(
                generation,
                observed_generation,
                wanted,
                replicas,
                updated,
                available,
                deadline_exceeded,
            )| {
                Observed {
                    generation,
                    observed_generation,
                    wanted,
                    replicas,
                    updated,
                    available,
                    deadline_exceeded,
                }
            },
        )
}

fn deployment(o: &Observed) -> Value {
    let mut conditions = vec![json!({"type": "Available", "status": "True"})];
    if o.deadline_exceeded {
        conditions.push(json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out progressing."}));
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": o.generation},
        "spec": {"replicas": o.wanted, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "web:1"}]}}},
        "status": {"observedGeneration": o.observed_generation, "replicas": o.replicas,
                   "updatedReplicas": o.updated, "availableReplicas": o.available,
                   "conditions": conditions}
    })
}

/// Repositories containers may use; offers are made for some of them.
const REPOSITORIES: [&str; 4] = [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/api",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/auth",
    "localhost:5000/team/worker",
    "docker.io/library/redis",
];

const DIGEST: &str = "sha256:0123456789012345678901234567890123456789012345678901234567890123";

/// A manifest with Deployments whose containers use `images` (repository index, tag).
fn manifests_text(deployments: &[Vec<(usize, String)>]) -> String {
    deployments
        .iter()
        .enumerate()
        .map(|(d, containers)| {
            let containers: Vec<Value> = containers
                .iter()
                .enumerate()
                .map(|(c, (repo, tag))| json!({"name": format!("c{c}"), "image": format!("{}:{tag}", REPOSITORIES[*repo])}))
                .collect();
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": format!("d{d}"), "namespace": "shop"},
                   "spec": {"selector": {"matchLabels": {"app": "x"}},
                            "template": {"metadata": {"labels": {"app": "x"}},
                                         "spec": {"containers": containers}}}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn offer(repo: usize) -> Offer {
    let repository = REPOSITORIES[repo];
    Offer {
        name: repository.rsplit('/').next().unwrap().to_owned(),
        repository: repository.to_owned(),
        reference: format!("{repository}@{DIGEST}"),
        from_flag: false,
    }
}

fn container_images(manifests: &[k8s_apply::manifests::Manifest]) -> Vec<String> {
    manifests
        .iter()
        .flat_map(|m| k8s_apply::images::images_of(m.kind(), &m.object))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_deployment_is_done_exactly_when_kubectl_would_say_so(o in observed()) {
        let verdict = judge("Deployment", &deployment(&o));
        let observed = o.observed_generation >= o.generation;
        let done = observed
            && !o.deadline_exceeded
            && o.updated >= o.wanted
            && o.replicas <= o.updated
            && o.available >= o.updated;
        match &verdict {
            Verdict::Done(_) => prop_assert!(done, "{o:?} judged done"),
            Verdict::Failed(reason, _) => {
                prop_assert!(observed && o.deadline_exceeded, "{o:?}: {verdict:?}");
                prop_assert_eq!(reason, "ProgressDeadlineExceeded");
            }
            Verdict::Progressing(_) => {
                let deadline_failed = observed && o.deadline_exceeded;
                prop_assert!(!(done || deadline_failed), "{o:?}: {verdict:?}")
            }
            Verdict::NotJudged(_) => prop_assert!(false, "{o:?}: {verdict:?}"),
        }
    }

    #[test]
    fn each_offer_lands_in_exactly_the_containers_of_its_repository_once(
        deployments in prop::collection::vec(prop::collection::vec((0usize..4, "[a-z0-9]{1,6}"), 1..4), 1..4),
        offered in prop::collection::btree_set(0usize..4, 0..4),
    ) {
        let text = manifests_text(&deployments);
        let mut manifests = parse("gen.yaml", &text).unwrap();
        let before = container_images(&manifests);
        let offers: Vec<Offer> = offered.iter().map(|r| offer(*r)).collect();
        let result = substitute(&mut manifests, &offers);
        let after = container_images(&manifests);
        let wanted: Vec<String> = deployments
            .iter()
            .flatten()
            .map(|(repo, tag)| match offered.contains(repo) {
                true => offer(*repo).reference,
                false => format!("{}:{tag}", REPOSITORIES[*repo]),
            })
            .collect();
        prop_assert_eq!(&after, &wanted);
        let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        prop_assert_eq!(result.replaced.len(), changed);
        for replacement in &result.replaced {
            prop_assert!(before.contains(&replacement.from) && after.contains(&replacement.to));
        }
        let used: Vec<usize> = deployments.iter().flatten().map(|(r, _)| *r).collect();
        let unmatched: Vec<String> = offered
            .iter()
            .filter(|r| !used.contains(r))
            .map(|r| offer(*r).name)
            .collect();
        prop_assert_eq!(&result.unmatched, &unmatched);
        prop_assert_eq!(result.mutable.len(), after.iter().filter(|i| !i.contains('@')).count());
        // A second substitution finds nothing to do.
        let again = substitute(&mut manifests, &offers);
        prop_assert!(again.replaced.is_empty(), "{:?}", again.replaced);
        prop_assert_eq!(container_images(&manifests), after);
    }
}
