//! Injected faults: the tools run as users run them, with a [`FaultProxy`] between them and
//! the real services (the registry, moto, the ECS emulator, the Kubernetes emulator), reached
//! only through the ordinary settings (`--registry host:port`, `AWS_ENDPOINT_URL_*`, a
//! kubeconfig's `server`). Transient faults (resets mid-request and mid-response, bursts of
//! 503, 429 and `ThrottlingException`, slow answers) must be survived with the same result as
//! without them; an outage that cannot be survived ends with exit 1 and an envelope that says
//! exactly what was done and what was not, which the services' own state confirms.
//!
//! Each test asserts that faults were injected (the proxy's log), so none passes by missing
//! them. Retry delays are shortened by the tools' flags; the tests run in parallel.
//!
//! Needs `scripts/services up` and the workspace binaries (`cargo test --workspace`).

use serde_json::{Value, json};
use shipkit_tests::docker::{build_fixture, busybox, docker, require_engine};
use shipkit_tests::ecs::{EcsEmulator, TestImages, build_http_image, ecs_client, register_web};
use shipkit_tests::fault_proxy::{Exchange, Fault, FaultProxy, burst, every_nth};
use shipkit_tests::kube::KubeEmulator;
use shipkit_tests::{Cmd, Output, services, unique};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// img-push: the registry behind the proxy

/// img-push with the services' settings and a Docker config of its own.
fn img_push(env: &BTreeMap<String, String>, docker_config: &Path) -> Cmd {
    let mut cmd = Cmd::tool("img-push")
        .env("DOCKER_CONFIG", docker_config.display().to_string())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL");
    for (key, value) in env {
        cmd = cmd.env(key, value.clone());
    }
    cmd
}

fn registry_password(env: &BTreeMap<String, String>) -> String {
    std::fs::read_to_string(&env["SHIPKIT_REGISTRY_PASSWORD_FILE"])
        .expect("the registry password file")
        .trim()
        .to_owned()
}

/// Writes `auths` for `hosts` with the generic registry's user, as `docker login` does.
fn login(docker_config: &Path, hosts: &[&str], password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("shipkit:{password}"));
    let auths: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|h| ((*h).to_owned(), json!({"auth": auth})))
        .collect();
    std::fs::write(
        docker_config.join("config.json"),
        json!({"auths": auths}).to_string(),
    )
    .expect("write the Docker config");
}

/// A tiny image of its own (busybox + a unique file, several layers so a push has several
/// blobs to lose), tagged `name:v1`; removed with everything else tagged `name` on drop.
struct LocalImage {
    name: String,
    tagged: Vec<String>,
}

impl LocalImage {
    fn build(name: &str) -> LocalImage {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(busybox(), dir.path().join("busybox")).unwrap();
        std::fs::write(dir.path().join("id.txt"), unique("faults-content")).unwrap();
        std::fs::write(dir.path().join("more.txt"), "x".repeat(300_000)).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY id.txt /id.txt\nCOPY more.txt /more.txt\n",
        )
        .unwrap();
        let reference = format!("{name}:v1");
        build_fixture(dir.path(), &reference);
        LocalImage {
            name: name.to_owned(),
            tagged: vec![reference],
        }
    }

    fn reference(&self) -> String {
        format!("{}:v1", self.name)
    }

    /// Removes `reference` locally too when the test ends.
    fn also(&mut self, reference: String) {
        self.tagged.push(reference);
    }
}

impl Drop for LocalImage {
    fn drop(&mut self) {
        for reference in &self.tagged {
            let _ = docker(&["rmi", "-f", reference]);
        }
    }
}

/// `curl` against the generic registry directly (never through a proxy): the status line's
/// code and the headers of `HEAD path`.
fn registry_head(env: &BTreeMap<String, String>, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-I", "-u"])
        .arg(format!("shipkit:{}", registry_password(env)))
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{}{path}", env["SHIPKIT_REGISTRY"]))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// The manifest of `repository:tag` in the generic registry, read directly: (digest, layer
/// and config digests).
fn registry_manifest(
    env: &BTreeMap<String, String>,
    repository: &str,
    tag: &str,
) -> Option<(String, Vec<String>)> {
    let (code, head) = registry_head(env, &format!("/v2/{repository}/manifests/{tag}"));
    if code != 200 {
        return None;
    }
    let digest = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_owned())
    })?;
    let out = Command::new("curl")
        .args(["-sS", "-u"])
        .arg(format!("shipkit:{}", registry_password(env)))
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            env["SHIPKIT_REGISTRY"]
        ))
        .output()
        .expect("run curl");
    let manifest: Value = serde_json::from_slice(&out.stdout).expect("a JSON manifest");
    let mut blobs: Vec<String> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&manifest["config"]))
        .filter_map(|d| d["digest"].as_str().map(str::to_owned))
        .collect();
    blobs.sort();
    Some((digest, blobs))
}

/// The `pushed[]` digests of each image of an envelope, by image name.
fn pushed_digests(envelope: &Value) -> BTreeMap<String, Vec<String>> {
    envelope["images"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|image| {
            let digests = image["pushed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["digest"].as_str().map(str::to_owned))
                .collect();
            (image["name"].as_str().unwrap_or("").to_owned(), digests)
        })
        .collect()
}

fn is_blob_upload(e: &Exchange) -> bool {
    e.path().contains("/blobs/uploads/") && matches!(e.method.as_str(), "PATCH" | "PUT")
}

#[test]
fn img_push_survives_resets_mid_blob_and_503_bursts_with_the_registry_content_of_a_clean_push() {
    let env = services();
    require_engine();
    let name = unique("faults-push");
    let mut image = LocalImage::build(&name);
    let config = tempfile::tempdir().unwrap();
    let registry = env["SHIPKIT_REGISTRY"].clone();
    // The first blob upload is reset mid-request (the Engine restarts the blob); the first
    // manifest PUT is answered 503 (the Engine gives up; img-push pushes again).
    let reset = burst(1, is_blob_upload, || Fault::ResetMidRequest);
    let manifest_503 = burst(
        1,
        |e: &Exchange| e.method == "PUT" && e.path().contains("/manifests/"),
        Fault::unavailable,
    );
    let proxy = FaultProxy::builder(&registry)
        .script(move |e| match reset(e) {
            Fault::Forward => manifest_503(e),
            fault => fault,
        })
        .start();
    login(
        config.path(),
        &[&proxy.host(), &registry],
        &registry_password(&env),
    );

    let out = img_push(&env, config.path())
        .args(["--registry", &proxy.host(), "--image", &image.reference()])
        .args(["--retries", "4", "--retry-delay", "200ms"])
        .run();
    image.also(format!("{}/{name}:v1", proxy.host()));
    out.assert_code(0);
    let faulted = pushed_digests(&out.json())[&name].clone();
    assert_eq!(faulted.len(), 1, "{}", out.stdout);
    let log = proxy.log_text();
    assert!(
        log.contains("reset mid-request") && log.contains("answer 503"),
        "faults were injected:\n{log}"
    );

    // The same image pushed without faults, under another tag: the same manifest.
    let clean = img_push(&env, config.path())
        .args(["--registry", &registry, "--image", &image.reference()])
        .args(["--tag", "clean"])
        .run();
    image.also(format!("{registry}/{name}:v1"));
    image.also(format!("{registry}/{name}:clean"));
    clean.assert_code(0);
    let (digest, blobs) = registry_manifest(&env, &name, "v1").expect("v1 is in the registry");
    let (clean_digest, clean_blobs) =
        registry_manifest(&env, &name, "clean").expect("clean is in the registry");
    assert_eq!(
        faulted,
        std::slice::from_ref(&digest),
        "the digest reported is the registry's"
    );
    assert_eq!(
        digest, clean_digest,
        "the faulted push stored what a clean one does"
    );
    assert_eq!(blobs, clean_blobs);
    for blob in &blobs {
        let (code, head) = registry_head(&env, &format!("/v2/{name}/blobs/{blob}"));
        assert_eq!(code, 200, "{blob} is whole in the registry: {head}");
    }
}

#[test]
fn img_push_to_ecr_survives_a_throttled_ecr_api() {
    let env = services();
    require_engine();
    let name = unique("faults-ecr");
    let mut image = LocalImage::build(&name);
    let config = tempfile::tempdir().unwrap();
    // moto's ECR API behind the proxy: every other call is throttled.
    let moto = env["AWS_ENDPOINT_URL_ECR"]
        .trim_start_matches("http://")
        .to_owned();
    let proxy = FaultProxy::builder(&moto)
        .script(every_nth(
            2,
            |e: &Exchange| e.aws_operation().is_some(),
            Fault::aws_throttling,
        ))
        .start();
    let out = img_push(&env, config.path())
        .env("AWS_ENDPOINT_URL_ECR", proxy.url())
        .args([
            "--ecr",
            "--create-repository",
            "--image",
            &image.reference(),
        ])
        .args(["--retry-delay", "200ms"])
        .run();
    let repository = format!("{}/{name}", env["SHIPKIT_ECR_HOST"]);
    image.also(format!("{repository}:v1"));
    out.assert_code(0);
    let digests = pushed_digests(&out.json())[&name].clone();
    assert_eq!(digests.len(), 1, "{}", out.stdout);
    assert!(
        proxy.log_text().contains("answer 400"),
        "throttling was injected:\n{}",
        proxy.log_text()
    );
    let listed = shipkit_tests::ecr::ecr_repository(&name).expect("the repository was created");
    assert_eq!(listed.name, name);
}

#[test]
fn img_push_under_an_outage_of_one_repository_reports_exactly_what_was_pushed() {
    let env = services();
    require_engine();
    let (up, down) = (unique("faults-up"), unique("faults-down"));
    let mut up_image = LocalImage::build(&up);
    let mut down_image = LocalImage::build(&down);
    let config = tempfile::tempdir().unwrap();
    let registry = env["SHIPKIT_REGISTRY"].clone();
    // Every manifest write to `down` fails, for good (its blobs land, the plan's reads
    // pass; the Engine does not retry a manifest, so this fails fast); `up` is untouched.
    let down_manifests = format!("/v2/{down}/manifests/");
    let proxy = FaultProxy::builder(&registry)
        .script(move |e| {
            let write = e.method == "PUT";
            match write && e.path().starts_with(&down_manifests) {
                true => Fault::unavailable(),
                false => Fault::Forward,
            }
        })
        .start();
    login(config.path(), &[&proxy.host()], &registry_password(&env));
    let out = img_push(&env, config.path())
        .args(["--registry", &proxy.host()])
        .args([
            "--image",
            &up_image.reference(),
            "--image",
            &down_image.reference(),
        ])
        .args(["--retries", "1", "--retry-delay", "100ms"])
        .run();
    up_image.also(format!("{}/{up}:v1", proxy.host()));
    down_image.also(format!("{}/{down}:v1", proxy.host()));
    out.assert_code(1);
    let envelope = out.json();
    let error = envelope["failed"]["error"].as_str().unwrap_or("");
    assert!(error.contains(&down), "the failure names {down}: {error}");
    let digests = pushed_digests(&envelope);
    let (digest, _) = registry_manifest(&env, &up, "v1")
        .unwrap_or_else(|| panic!("{up} is not in the registry: {envelope}\n{}", out.stderr));
    assert_eq!(digests[&up], [digest], "{envelope}");
    assert!(digests.get(&down).is_none_or(Vec::is_empty), "{envelope}");
    assert!(registry_manifest(&env, &down, "v1").is_none());
    assert!(proxy.injected() > 0);
}

// ---------------------------------------------------------------------------------------
// The Docker Engine behind the proxy: it stops answering mid-stream

/// A proxy in front of the Docker Engine's socket; the tool reaches it with
/// `DOCKER_HOST=tcp://<proxy>`, as it would a remote Engine.
fn engine_proxy(script: impl Fn(&Exchange) -> Fault + Send + Sync + 'static) -> FaultProxy {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
    FaultProxy::builder(&format!("unix:{socket}"))
        .script(script)
        .start()
}

/// The Engine's push of one image dies after its first progress messages, every time; the
/// other image's push is untouched. img-push reports the one it pushed, by the digest the
/// registry holds, and names the other as failed: nothing is reported that is not there.
#[test]
fn img_push_when_the_engine_stops_mid_push_reports_only_what_the_registry_has() {
    let env = services();
    require_engine();
    let (up, down) = (unique("faults-engine-up"), unique("faults-engine-down"));
    let mut up_image = LocalImage::build(&up);
    let mut down_image = LocalImage::build(&down);
    let config = tempfile::tempdir().unwrap();
    let registry = env["SHIPKIT_REGISTRY"].clone();
    login(config.path(), &[&registry], &registry_password(&env));
    let down_push = format!("/{down}/push");
    let proxy = engine_proxy(
        move |e| match e.method == "POST" && e.path().ends_with(&down_push) {
            true => Fault::ResetAfterResponseBytes(400),
            false => Fault::Forward,
        },
    );
    let out = img_push(&env, config.path())
        .env("DOCKER_HOST", format!("tcp://{}", proxy.host()))
        .args(["--registry", &registry])
        .args([
            "--image",
            &up_image.reference(),
            "--image",
            &down_image.reference(),
        ])
        .args(["--retries", "1", "--retry-delay", "100ms"])
        .run();
    up_image.also(format!("{registry}/{up}:v1"));
    down_image.also(format!("{registry}/{down}:v1"));
    out.assert_code(1);
    let envelope = out.json();
    let error = envelope["failed"]["error"].as_str().unwrap_or("");
    assert!(error.contains(&down), "the failure names {down}: {error}");
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("img-push: error:"))
            .count(),
        1,
        "one error line:\n{}",
        out.stderr
    );
    let digests = pushed_digests(&envelope);
    let (digest, _) = registry_manifest(&env, &up, "v1")
        .unwrap_or_else(|| panic!("{up} is not in the registry: {envelope}\n{}", out.stderr));
    assert_eq!(digests[&up], [digest], "{envelope}");
    assert!(digests.get(&down).is_none_or(Vec::is_empty), "{envelope}");
    let cut = proxy
        .log()
        .iter()
        .filter(|l| l.injected() && l.target.contains(&format!("/{down}/push")))
        .count();
    assert_eq!(
        cut,
        2,
        "the push and its one retry were cut:\n{}\n{}",
        proxy.log_text(),
        out.stderr
    );
}

/// The Engine stops answering in the middle of a build: exit 1 with an error that says so,
/// and no image is tagged. (The classic builder: BuildKit's session upgrades its connection to
/// HTTP/2, which the proxy does not relay.)
#[test]
fn img_build_when_the_engine_stops_mid_build_fails_clearly_and_tags_nothing() {
    require_engine();
    let name = unique("faults-build");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(busybox(), dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo working; /bin/busybox sleep 5\"]\n",
    )
    .unwrap();
    let proxy = engine_proxy(
        |e| match e.method == "POST" && e.path().ends_with("/build") {
            true => Fault::CutAfter(Duration::from_secs(2)),
            false => Fault::Forward,
        },
    );
    let out = Cmd::tool("img-build")
        .env("DOCKER_HOST", format!("tcp://{}", proxy.host()))
        .args([
            "--context",
            &dir.path().display().to_string(),
            "--name",
            &name,
        ])
        .args(["--tag", "t", "--builder", "classic", "--no-cache"])
        .run();
    let _ = docker(&["rmi", "-f", &format!("{name}:t")]);
    out.assert_code(1);
    let error = out.json()["failed"]["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(error.contains(&name), "the error names the image: {error}");
    assert!(
        out.stderr.contains("img-build: error:") && !out.stderr.contains("panicked"),
        "{}",
        out.stderr
    );
    let inspect = docker(&["image", "inspect", &format!("{name}:t")]);
    assert!(!inspect.status.success(), "{name}:t was tagged");
    assert!(proxy.injected() > 0, "{}", proxy.log_text());
}

// ---------------------------------------------------------------------------------------
// ecs-roll: the ECS emulator behind the proxy

const CLUSTER: &str = "dev";

fn ecs_roll(endpoint: &str) -> Cmd {
    Cmd::tool("ecs-roll")
        .env("AWS_ENDPOINT_URL_ECS", endpoint)
        .env("ECS_ROLL_POLL", "500ms")
        .env("ECS_ROLL_STABLE_FOR", "1s")
        .args(["--cluster", CLUSTER])
}

/// The envelope img-push writes after pushing `references` (`<repo>@sha256:…`).
fn pushed_envelope(references: &[&str]) -> Value {
    let images: Vec<Value> = references
        .iter()
        .map(|reference| {
            let (repository, digest) = reference.split_once('@').expect("a digest reference");
            json!({
                "name": repository.rsplit('/').next(),
                "pushed": [{"repository": repository, "tag": "v2", "digest": digest,
                            "reference": reference, "skipped": false}]
            })
        })
        .collect();
    json!({"schema": "shipkit/v1", "images": images})
}

/// Two services of one task each, `api` and `auth`, at v1; (api v2, auth v2) pushed.
struct TwoServices {
    emulator: EcsEmulator,
    client: aws_sdk_ecs::Client,
    _images: TestImages,
    api: String,
    auth: String,
    api_v2: String,
    auth_v2: String,
}

impl TwoServices {
    /// ecs-roll of both services to v2 (the pushed envelope on stdin), through `proxy`.
    fn roll_both_through(&self, proxy: &FaultProxy) -> Cmd {
        ecs_roll(&proxy.url())
            .args(["--service", &self.api, "--service", &self.auth])
            .args(["--timeout", "90s"])
            .stdin_json(&pushed_envelope(&[&self.api_v2, &self.auth_v2]))
    }
}

async fn two_services() -> TwoServices {
    services();
    let emulator = EcsEmulator::start(&[]);
    let client = ecs_client(&emulator.url()).await;
    let mut images = TestImages::new();
    let mut version = |repository: &str, text: &str| {
        let local = images.http(repository, &[("health", text)]);
        images.push_to_ecr(&local)
    };
    let api_v1 = version("shipkit-tests/faults-api", "api v1\n");
    let api_v2 = version("shipkit-tests/faults-api", "api v2\n");
    let auth_v1 = version("shipkit-tests/faults-auth", "auth v1\n");
    let auth_v2 = version("shipkit-tests/faults-auth", "auth v2\n");
    let (api, auth) = (unique("api"), unique("auth"));
    for (service, image) in [(&api, &api_v1), (&auth, &auth_v1)] {
        let arn = register_web(&client, service, image).await;
        client
            .create_service()
            .cluster(CLUSTER)
            .service_name(service)
            .task_definition(&arn)
            .desired_count(1)
            .send()
            .await
            .expect("CreateService");
    }
    TwoServices {
        emulator,
        client,
        _images: images,
        api,
        auth,
        api_v2,
        auth_v2,
    }
}

/// The image of the one container of the service's task definition, asked directly.
async fn live_image(client: &aws_sdk_ecs::Client, service: &str) -> String {
    let services = client
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    let arn = services.services()[0].task_definition().unwrap().to_owned();
    let definition = client
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let definition = definition.task_definition().unwrap();
    definition.container_definitions()[0]
        .image()
        .unwrap()
        .to_owned()
}

async fn run(cmd: Cmd) -> Output {
    tokio::task::spawn_blocking(move || cmd.run())
        .await
        .expect("the tool ran")
}

/// Every third call gets a fault, in turn: throttled, 503, reset mid-response, 429, slow.
fn ecs_weather() -> impl Fn(&Exchange) -> Fault + Send + Sync + 'static {
    let n = AtomicU32::new(0);
    move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        if i % 3 != 0 {
            return Fault::Forward;
        }
        match (i / 3) % 5 {
            0 => Fault::aws_throttling(),
            1 => Fault::unavailable(),
            2 => Fault::ResetAfterResponseBytes(40),
            3 => Fault::too_many_requests(),
            _ => Fault::Slow {
                chunk: 64,
                every: Duration::from_millis(20),
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_roll_survives_throttling_503s_and_resets_with_both_services_rolled() {
    let world = two_services().await;
    let proxy = FaultProxy::builder(&format!("127.0.0.1:{}", world.emulator.port()))
        .script(ecs_weather())
        .start();
    let out = run(world.roll_both_through(&proxy)).await;
    out.assert_code(0);
    let deployments = out.json()["deployments"].as_array().unwrap().clone();
    assert_eq!(deployments.len(), 2, "{}", out.stdout);
    for (d, (service, image)) in deployments
        .iter()
        .zip([(&world.api, &world.api_v2), (&world.auth, &world.auth_v2)])
    {
        assert_eq!(d["service"], json!(service));
        assert_eq!(d["outcome"], "completed", "{d}\n{}", out.stderr);
        assert_eq!(d["images"], json!([image]));
        assert_eq!(&live_image(&world.client, service).await, image);
    }
    let log = proxy.log_text();
    for fault in ["answer 400", "answer 503", "reset after", "answer 429"] {
        assert!(log.contains(fault), "{fault} was injected:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_roll_retries_a_plain_text_429_on_the_update_itself() {
    // A gateway's 429 in plain text, not AWS's ThrottlingException: the SDK alone would not
    // retry it, and the update (unlike a poll) has no second chance of its own.
    let world = two_services().await;
    let updates = AtomicU32::new(0);
    let proxy = FaultProxy::builder(&format!("127.0.0.1:{}", world.emulator.port()))
        .script(move |e| {
            let first_two = e.aws_operation() == Some("UpdateService")
                && updates.fetch_add(1, Ordering::SeqCst) < 2;
            match first_two {
                true => Fault::too_many_requests(),
                false => Fault::Forward,
            }
        })
        .start();
    let out = run(world.roll_both_through(&proxy)).await;
    out.assert_code(0);
    assert_eq!(live_image(&world.client, &world.api).await, world.api_v2);
    assert_eq!(live_image(&world.client, &world.auth).await, world.auth_v2);
    assert_eq!(
        proxy.log_text().matches("answer 429").count(),
        2,
        "{}",
        proxy.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_roll_under_an_outage_of_one_service_reports_which_rolled_and_which_not() {
    let world = two_services().await;
    // Every UpdateService of `auth` fails, for good; `api` is untouched.
    let auth = format!("\"{}\"", world.auth);
    let proxy = FaultProxy::builder(&format!("127.0.0.1:{}", world.emulator.port()))
        .script(move |e| {
            match e.aws_operation() == Some("UpdateService") && e.body_contains(&auth) {
                true => Fault::unavailable(),
                false => Fault::Forward,
            }
        })
        .start();
    let auth_before = live_image(&world.client, &world.auth).await;
    let out = run(world.roll_both_through(&proxy)).await;
    out.assert_code(1);
    let envelope = out.json();
    assert_eq!(envelope["failed"]["exit_code"], 1, "{envelope}");
    let outcomes: BTreeMap<String, String> = envelope["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["service"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes.get(&world.api).map(String::as_str),
        Some("completed"),
        "{envelope}"
    );
    assert_eq!(
        outcomes.get(&world.auth).map(String::as_str),
        Some("failed"),
        "{envelope}"
    );
    assert_eq!(live_image(&world.client, &world.api).await, world.api_v2);
    assert_eq!(live_image(&world.client, &world.auth).await, auth_before);
    assert!(proxy.injected() > 0);
}

// ---------------------------------------------------------------------------------------
// k8s-apply: the Kubernetes emulator behind the proxy (TLS on both sides)

/// A kubeconfig like the emulator's, with the `staging` cluster reached through `proxy`.
fn kubeconfig_through(emulator: &KubeEmulator, proxy: &FaultProxy, dir: &Path) -> String {
    use base64::Engine as _;
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&emulator.kubeconfig).unwrap()).unwrap();
    for cluster in config["clusters"].as_array_mut().unwrap() {
        if cluster["name"] == "staging" {
            cluster["cluster"]["server"] = json!(proxy.url());
            cluster["cluster"]["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(proxy.ca_pem().unwrap()));
        }
    }
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    path.display().to_string()
}

/// The staging cluster's `host:port` and CA (PEM), from the emulator's kubeconfig.
fn staging_upstream(emulator: &KubeEmulator) -> (String, String) {
    use base64::Engine as _;
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&emulator.kubeconfig).unwrap()).unwrap();
    let cluster = config["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "staging")
        .expect("a staging cluster")["cluster"]
        .clone();
    let server = cluster["server"].as_str().unwrap();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    (
        server.trim_start_matches("https://").to_owned(),
        String::from_utf8(ca).unwrap(),
    )
}

fn kube_proxy(
    emulator: &KubeEmulator,
    script: impl Fn(&Exchange) -> Fault + Send + Sync + 'static,
) -> FaultProxy {
    let (upstream, ca) = staging_upstream(emulator);
    FaultProxy::builder(&upstream)
        .tls_upstream(&ca)
        .tls_front()
        .script(script)
        .start()
}

fn k8s_apply(kubeconfig: &str) -> Cmd {
    Cmd::tool("k8s-apply").env("KUBECONFIG", kubeconfig).args([
        "--context",
        "staging",
        "--poll",
        "300ms",
    ])
}

fn web_and_settings(image: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: default}}
data: {{LOG_LEVEL: info}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports: [{{containerPort: 8080}}]
"
    )
}

/// `(kind, name, action, outcome)` of each resource of the only deployment entry.
fn kube_resources(envelope: &Value) -> Vec<(String, String, String, String)> {
    envelope["deployments"][0]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            (s("kind"), s("name"), s("action"), s("outcome"))
        })
        .collect()
}

fn kubectl_get(emulator: &KubeEmulator, what: &str, path: &str) -> Output {
    let out = emulator.run_kubectl(
        &[
            "--context",
            "staging",
            "get",
            what,
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    );
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A local image tag of its own, removed on drop.
struct KubeImage(String);

impl Drop for KubeImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

#[test]
fn k8s_apply_survives_cut_and_reset_connections_and_503_bursts_and_judges_the_rollout() {
    require_engine();
    let image = KubeImage(format!("faults/web:{}", unique("v")));
    build_http_image(&image.0, &[("/index.html", "v1")]);
    let emulator = KubeEmulator::start_with_docker();
    // Every fourth request in turn: 503, reset mid-response, 429; long answers (a watch) cut
    // after two seconds.
    let n = AtomicU32::new(0);
    let proxy = kube_proxy(&emulator, move |e| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        if e.is_watch() {
            return Fault::CutAfter(Duration::from_secs(2));
        }
        match (i % 4, (i / 4) % 3) {
            (0, 0) => Fault::unavailable(),
            (0, 1) => Fault::ResetAfterResponseBytes(60),
            (0, _) => Fault::too_many_requests(),
            _ => Fault::Forward,
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_through(&emulator, &proxy, dir.path());
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, web_and_settings(&image.0)).unwrap();
    let out = k8s_apply(&kubeconfig)
        .args(["--timeout", "90s", "-f", &manifest.display().to_string()])
        .run();
    out.assert_code(0);
    let envelope = out.json();
    assert_eq!(
        envelope["deployments"][0]["outcome"], "completed",
        "{envelope}"
    );
    let resources = kube_resources(&envelope);
    assert!(
        resources
            .iter()
            .all(|r| r.3 == "completed" || r.3 == "unchanged"),
        "{resources:?}"
    );
    assert_eq!(
        kubectl_get(&emulator, "deployment/web", "{.status.availableReplicas}").stdout,
        "2"
    );
    assert_eq!(
        kubectl_get(&emulator, "configmap/settings", "{.data.LOG_LEVEL}").stdout,
        "info"
    );
    let log = proxy.log_text();
    for fault in ["answer 503", "reset after", "answer 429"] {
        assert!(log.contains(fault), "{fault} was injected:\n{log}");
    }
}

#[test]
fn k8s_apply_under_an_outage_of_deployments_reports_what_was_applied() {
    let emulator = KubeEmulator::start();
    // Every write to a Deployment fails, for good (its dry run in the plan passes); the rest
    // is untouched.
    let proxy = kube_proxy(&emulator, |e| {
        let dry_run = e.target.contains("dryRun=");
        match e.method == "PATCH" && e.path().contains("/deployments/") && !dry_run {
            true => Fault::unavailable(),
            false => Fault::Forward,
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_through(&emulator, &proxy, dir.path());
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, web_and_settings("faults/web:never-pulled")).unwrap();
    let out = k8s_apply(&kubeconfig)
        .args(["--no-wait", "-f", &manifest.display().to_string()])
        .run();
    out.assert_code(1);
    let envelope = out.json();
    assert_eq!(envelope["failed"]["exit_code"], 1, "{envelope}");
    let error = envelope["failed"]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("web"),
        "the failure names the Deployment: {error}"
    );
    let resources = kube_resources(&envelope);
    let deployment = resources.iter().find(|r| r.0 == "Deployment");
    assert!(
        deployment.is_none_or(|r| r.3 == "failed"),
        "the Deployment is reported failed, not applied nor in progress: {resources:?}"
    );
    assert_eq!(
        kubectl_get(&emulator, "deployment/web", "{.metadata.name}").code,
        1,
        "the Deployment does not exist"
    );
    // What the envelope says of the ConfigMap is what the cluster holds.
    let config_map = resources
        .iter()
        .find(|r| r.0 == "ConfigMap")
        .unwrap_or_else(|| panic!("the ConfigMap is not reported: {envelope}\n{}", out.stderr));
    let exists = kubectl_get(&emulator, "configmap/settings", "{.metadata.name}").code == 0;
    let reported_there = config_map.2 == "created" && config_map.3 != "rolled_back";
    assert_eq!(exists, reported_there, "{resources:?}");
    assert!(proxy.injected() > 0);
}
