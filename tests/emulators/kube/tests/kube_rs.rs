//! kube-rs (what k8s-apply is built on) against the emulator: discovery, server-side apply,
//! conflicts, dry runs, paging and watches.

mod support;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Discovery};
use serde_json::{Value, json};
use support::Emulator;

async fn client(emu: &Emulator, context: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(&emu.kubeconfig).unwrap();
    let options = KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "labels": {"app": "api"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": image}]}}
        }
    })
}

fn api_error(e: kube::Error) -> kube::core::ErrorResponse {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_finds_every_group_the_issue_lists() {
    let emu = Emulator::start();
    let discovery = Discovery::new(client(&emu, "staging").await)
        .run()
        .await
        .unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for g in [
        "",
        "apps",
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "autoscaling",
    ] {
        assert!(
            groups.iter().any(|x| x == g),
            "{g:?} missing from {groups:?}"
        );
    }
    let apps = discovery.get("apps").unwrap();
    let (ar, caps) = apps.recommended_kind("Deployment").unwrap();
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
}

#[tokio::test]
async fn server_side_apply_creates_then_is_a_no_op_then_conflicts_until_forced() {
    let emu = Emulator::start();
    let deployments: Api<Deployment> = Api::namespaced(client(&emu, "production").await, "default");
    let mine = PatchParams::apply("k8s-apply");
    let created = deployments
        .patch("api", &mine, &Patch::Apply(deployment(2, "app:v1")))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // The controllers write the status once; the object then rests.
    let mut rv = created.metadata.resource_version.clone().unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let now = deployments
            .get("api")
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        if now == rv {
            break;
        }
        rv = now;
    }
    assert_eq!(
        created.spec.as_ref().unwrap().progress_deadline_seconds,
        Some(600)
    );
    let again = deployments
        .patch("api", &mine, &Patch::Apply(deployment(2, "app:v1")))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );

    let theirs = PatchParams::apply("someone-else");
    let err = api_error(
        deployments
            .patch("api", &theirs, &Patch::Apply(deployment(5, "app:v1")))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("conflict with \"k8s-apply\"")
            && err.message.contains(".spec.replicas"),
        "{}",
        err.message
    );

    let forced = deployments
        .patch(
            "api",
            &theirs.clone().force(),
            &Patch::Apply(deployment(5, "app:v1")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    assert_eq!(forced.metadata.generation, Some(2));
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["k8s-apply", "someone-else"]);
}

#[tokio::test]
async fn strict_validation_names_the_unknown_field_and_dry_runs_write_nothing() {
    let emu = Emulator::start();
    let deployments: Api<Deployment> = Api::namespaced(client(&emu, "staging").await, "default");
    let mut bad = deployment(1, "app:v1");
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("typo");
    let err = api_error(
        deployments
            .patch(
                "api",
                &PatchParams::apply("k8s-apply").validation_strict(),
                &Patch::Apply(bad),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains(".spec.template.spec.containers[0].imagee"),
        "{}",
        err.message
    );

    let dry = deployments
        .patch(
            "api",
            &PatchParams::apply("k8s-apply").dry_run(),
            &Patch::Apply(deployment(1, "app:v1")),
        )
        .await
        .unwrap();
    assert_eq!(dry.spec.unwrap().replicas, Some(1));
    assert!(
        deployments.get_opt("api").await.unwrap().is_none(),
        "a dry run must not create"
    );
}

#[tokio::test]
async fn lists_page_and_a_watch_resumes_from_a_resource_version() {
    let emu = Emulator::start();
    let cms: Api<ConfigMap> = Api::namespaced(client(&emu, "staging").await, "default");
    let cm = |name: &str| {
        serde_json::from_value::<ConfigMap>(
            json!({"metadata": {"name": name, "labels": {"set": "a"}}, "data": {"k": "v"}}),
        )
        .unwrap()
    };
    let first = cms
        .create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    let err = api_error(
        cms.create(&PostParams::default(), &cm("one"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    cms.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("three"))
        .await
        .unwrap();

    let page = cms
        .list(&ListParams::default().labels("set=a").limit(2))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = cms
        .list(
            &ListParams::default()
                .labels("set=a")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=two"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    // Resumed after "one" was created: the watch replays two, three, then sees the delete.
    let rv = first.metadata.resource_version.unwrap();
    let stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap();
    cms.delete("one", &Default::default()).await.unwrap();
    let events: Vec<(String, String)> = stream
        .take(3)
        .map(|e| match e.unwrap() {
            WatchEvent::Added(o) => ("ADDED".to_owned(), o.metadata.name.unwrap()),
            WatchEvent::Modified(o) => ("MODIFIED".to_owned(), o.metadata.name.unwrap()),
            WatchEvent::Deleted(o) => ("DELETED".to_owned(), o.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
        .await;
    let expected = [("ADDED", "two"), ("ADDED", "three"), ("DELETED", "one")];
    assert_eq!(events, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_is_gone_and_streaming_lists_end_with_a_bookmark()
{
    let emu = Emulator::start_with(&["--watch-history", "3"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&emu, "staging").await, "default");
    let cm = |name: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name}})).unwrap()
    };
    let first = cms.create(&PostParams::default(), &cm("c0")).await.unwrap();
    for n in 1..6 {
        cms.create(&PostParams::default(), &cm(&format!("c{n}")))
            .await
            .unwrap();
    }
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    let params = WatchParams::streaming_lists().timeout(5);
    let mut stream = cms.watch(&params, "").await.unwrap().boxed();
    let mut added = 0;
    loop {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(_))) => added += 1,
            Some(Ok(WatchEvent::Bookmark(b))) => {
                let annotations = b.metadata.annotations;
                assert_eq!(
                    annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 6, "every existing object first");
}
