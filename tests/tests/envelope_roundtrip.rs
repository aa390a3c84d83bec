//! Every tool's stdout decodes into [`common::Envelope`] and re-encodes unchanged: as JSON
//! values, and byte for byte in the compact form the tools write. The typed sections
//! (deployment outcomes, release bumps, change types, …) must not lose, reorder or
//! reformat anything a tool writes.
//!
//! One pipeline on real input, each step's stdout checked: release-tag on a temporary git
//! repository → img-build of a tiny `FROM scratch` context on the local Engine → img-push to
//! the local registry → ecs-roll `--dry-run` against the ECS emulator →
//! health-wait against a loopback HTTP server. Needs the local services (`make services-up`)
//! and the tools built (`cargo test --workspace`).

use common::Envelope;
use serde_json::Value;
use shipkit_tests::ecs::{EcsEmulator, ecs_client, register_web, unique};
use shipkit_tests::http_server::{HttpServer, Reply};
use shipkit_tests::{Cmd, Output, services_env};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Decodes `out`'s stdout into an [`Envelope`], re-encodes it, and asserts nothing changed.
#[track_caller]
fn assert_round_trips(tool: &str, out: &Output) -> Envelope {
    out.assert_code(0);
    let written = out.stdout.trim_end_matches('\n');
    let envelope: Envelope = serde_json::from_str(written)
        .unwrap_or_else(|err| panic!("{tool}'s stdout is not an Envelope ({err}):\n{written}"));
    let again = serde_json::to_string(&envelope).expect("an envelope serialises");
    let as_value = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
    assert_eq!(as_value(&again), as_value(written), "{tool}: values differ");
    assert_eq!(again, written, "{tool}: bytes differ");
    envelope
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository holding a `FROM scratch` context, with two conventional commits.
fn context_repository(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY id.txt /id.txt\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("id.txt"), name).unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "feat(web): first page"]);
    std::fs::write(dir.path().join("README"), "notes\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(
        dir.path(),
        &["commit", "-q", "-m", "deps: pin the base image"],
    );
    dir
}

/// The tool with the local services' settings.
fn tool(name: &str, env: &BTreeMap<String, String>) -> Cmd {
    env.iter().fold(Cmd::tool(name), |cmd, (key, value)| {
        cmd.env(key, value.clone())
    })
}

/// Removes the images img-build made, whatever the test's outcome.
struct BuiltImages(Vec<String>);

impl Drop for BuiltImages {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", reference])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tools_stdout_decodes_into_the_envelope_and_re_encodes_unchanged() {
    let env = services_env().expect("target/services.env is missing: run `make services-up`");
    let name = unique("roundtrip");
    let repo = context_repository(&name);
    let repo_path = repo.path().display().to_string();

    let released = tool("release-tag", &env)
        .args(["--repo", &repo_path, "--dry-run"])
        .run();
    let envelope = assert_round_trips("release-tag", &released);
    let release = envelope.release.expect("a release");
    assert_eq!(release.bump, common::envelope::Bump::Minor);
    let kinds: Vec<&str> = release.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["deps", "feat"], "a custom type passes through");

    let built = tool("img-build", &env)
        .args(["--context", &repo_path, "--name", &name])
        .stdin(released.stdout.clone())
        .run();
    let mut cleanup = BuiltImages(Vec::new());
    if let Ok(value) = serde_json::from_str::<Value>(&built.stdout) {
        for tag in value["images"][0]["tags"].as_array().into_iter().flatten() {
            cleanup.0.push(tag.as_str().unwrap_or_default().to_owned());
        }
    }
    let envelope = assert_round_trips("img-build", &built);
    assert_eq!(envelope.images.len(), 1);

    let docker_config = tempfile::tempdir().unwrap();
    let password = std::fs::read_to_string(&env["SHIPKIT_REGISTRY_PASSWORD_FILE"]).unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", env["SHIPKIT_REGISTRY_USER"], password.trim()),
    );
    let registry = env["SHIPKIT_REGISTRY"].clone();
    std::fs::write(
        docker_config.path().join("config.json"),
        serde_json::json!({"auths": {registry.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let pushed = tool("img-push", &env)
        .env("DOCKER_CONFIG", docker_config.path().display().to_string())
        .args(["--registry", &registry])
        .stdin(built.stdout.clone())
        .run();
    let envelope = assert_round_trips("img-push", &pushed);
    let repository = envelope.images[0].pushed[0].repository.clone();

    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let arn = register_web(&client, &name, &format!("{repository}:old")).await;
    client
        .create_service()
        .cluster("dev")
        .service_name(&name)
        .task_definition(&arn)
        .desired_count(0)
        .send()
        .await
        .expect("CreateService");
    let rolled = tool("ecs-roll", &env)
        .env("AWS_ENDPOINT_URL_ECS", emulator.url())
        .args(["--cluster", "dev", "--service", &name, "--dry-run"])
        .args(["--endpoint", &format!("{name}=http://127.0.0.1:1/")])
        .stdin(pushed.stdout.clone())
        .run();
    let envelope = assert_round_trips("ecs-roll", &rolled);
    let deployment = &envelope.deployments[0];
    assert_eq!(deployment.platform, common::envelope::Platform::Ecs);
    assert_eq!(deployment.outcome, common::envelope::Outcome::Planned);
    assert_eq!(
        deployment.ecs.previous_task_definition.as_deref(),
        Some(arn.as_str())
    );
    assert!(
        deployment.started_at.is_some() && deployment.diff.is_some(),
        "{deployment:?}"
    );

    let server = HttpServer::start(|_| Reply::ok("ok"));
    let checked = tool("health-wait", &env)
        .args(["--url", &server.url("/health"), "--timeout", "10s"])
        .stdin(rolled.stdout.clone())
        .run();
    let envelope = assert_round_trips("health-wait", &checked);
    assert!(envelope.health[0].healthy);
    assert!(
        envelope.release.is_some() && !envelope.deployments.is_empty(),
        "every section carried to the end"
    );
}
