//! ECS test support: an `ecs-emulator` of its own per test, an `aws-sdk-ecs` client for it,
//! and `FROM scratch` busybox images built on the local Docker Engine and pushed to the local
//! ECR host.
//!
//! ```no_run
//! # async fn example() {
//! use shipkit_tests::ecs::{EcsEmulator, TestImages, ecs_client};
//! let emulator = EcsEmulator::start(&["--throttle-every", "3"]);
//! let client = ecs_client(&emulator.url()).await;
//! let mut images = TestImages::new();
//! let local = images.http("ecs-support-web", &[("health", "ok")]);
//! let pushed = images.push_to_ecr(&local); // `<ecr host>/ecs-support-web@sha256:…`
//! # let _ = (client, pushed);
//! # }
//! ```
//!
//! # Emulators
//!
//! [`EcsEmulator::start`] runs `<target>/debug/ecs-emulator` (built by
//! `cargo build -p ecs-emulator`, or by `cargo test --workspace`) on a free loopback port, with
//! the settings of `target/services.env` (the Docker Engine, moto's ECR API for pulls), a fast
//! scheduler (`--tick 250ms`, `--stop-timeout 1`) and a load-balancer port range of its own,
//! so tests in parallel, in one test binary or several, never share a service's port. It is
//! stopped with SIGTERM on drop (it then removes its containers); a test that panics shows
//! the emulator's log.
//!
//! # Images
//!
//! [`TestImages`] builds images with the `docker` CLI (the legacy builder: the local Engine is
//! 20.10 and has no BuildKit front end here) from Debian's static busybox, pushes them to the
//! local ECR host (`docker login` with moto's ECR token, in a Docker config of its own) and
//! removes what it built and pulled on drop.
#![allow(clippy::print_stderr)] // a failing test explains itself on stderr

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::docker::{Docker, busybox, docker, docker_ok};
use crate::ecr::{create_ecr_repository, ecr_host, ecr_password};
use crate::http_server::unused_port;
use crate::{services_env, unique};

/// The port the images' httpd listens on (the examples' `containerPort`).
pub const HTTP_PORT: u16 = 8080;

/// Load-balancer port ranges handed to emulators: 20 ports each, from 18100-19999, except
/// 18500-18599 (the emulator's own tests). 18000-18099 belong to the shared emulator of
/// `scripts/services`.
const LB_BLOCK: u16 = 20;
const LB_SPANS: [(u16, u16); 2] = [(18100, 18499), (18600, 19999)];

/// The `n`th load-balancer range (wrapping): `(first, last)`.
fn lb_range(n: u32) -> (u16, u16) {
    let blocks: Vec<u16> = LB_SPANS
        .iter()
        .map(|(first, last)| (last - first + 1) / LB_BLOCK)
        .collect();
    let total: u32 = blocks.iter().map(|b| u32::from(*b)).sum();
    let mut n = n % total;
    for ((first, _), count) in LB_SPANS.iter().zip(blocks) {
        if n < u32::from(count) {
            let start = first + n as u16 * LB_BLOCK;
            return (start, start + LB_BLOCK - 1);
        }
        n -= u32::from(count);
    }
    unreachable!("n is reduced modulo the number of blocks")
}

/// The next load-balancer range of this process. Test binaries run side by side, so each
/// process starts at an offset derived from its pid (a stride of 7 blocks: two binaries with
/// neighbouring pids still start apart). Two ranges that do meet stay correct, only less
/// tidy: the emulator skips ports it cannot bind, and tests learn the port from the emulator.
fn next_lb_range() -> (u16, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7);
    lb_range(offset.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// The `ecs-emulator` binary next to the test executable (`target/<profile>/`).
fn emulator_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join("ecs-emulator");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p ecs-emulator` (cargo test --workspace builds it too)",
        path.display()
    );
    path
}

/// An `ecs-emulator` process of a test's own, on a free loopback port; SIGTERM on drop.
pub struct EcsEmulator {
    child: Child,
    port: u16,
    lb_ports: (u16, u16),
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl EcsEmulator {
    /// Starts an emulator with `extra` flags (`--throttle-every 3`, `--clusters a,b`, …) after
    /// the defaults (`--tick 250ms --stop-timeout 1`, its own `--lb-ports`), so a flag given
    /// here wins, and waits until it accepts connections.
    ///
    /// It sees the settings of `target/services.env` (`DOCKER_HOST`, `AWS_ENDPOINT_URL_ECR`, …)
    /// so that it pulls from the local ECR host as the ECS agent pulls from ECR.
    pub fn start(extra: &[&str]) -> EcsEmulator {
        let bin = emulator_bin();
        let lb_ports = next_lb_range();
        let mut last_error = String::new();
        // A free port can be taken by someone else before the emulator binds it: try again.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir for the emulator's log");
            let log = dir.path().join("ecs-emulator.log");
            let port = unused_port();
            let listen = format!("127.0.0.1:{port}");
            let lb = format!("{}-{}", lb_ports.0, lb_ports.1);
            let mut command = Command::new(&bin);
            command
                .args(["--listen", &listen, "--lb-ports", &lb])
                .args(["--tick", "250ms", "--stop-timeout", "1"])
                .args(extra)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("the emulator's log file"));
            for (key, value) in services_env().unwrap_or_default() {
                if key.starts_with("AWS_") || key == "DOCKER_HOST" || key == "DOCKER_CONFIG" {
                    command.env(key, value);
                }
            }
            let child = command
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
            let mut emulator = EcsEmulator {
                child,
                port,
                lb_ports,
                log,
                _dir: dir,
            };
            match emulator.wait_listening(Duration::from_secs(30)) {
                Ok(()) => return emulator,
                Err(err) => {
                    last_error = format!("{err}\n--- ecs-emulator log ---\n{}", emulator.log());
                    emulator.terminate();
                }
            }
        }
        panic!("ecs-emulator did not start: {last_error}");
    }

    fn wait_listening(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("ecs-emulator exited ({status}) before listening"));
            }
            // It logs its address once it has bound the socket (a bare connect could reach
            // someone else who took the port first).
            if self
                .log()
                .contains(&format!("listening on http://127.0.0.1:{}", self.port))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("ecs-emulator did not listen within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The endpoint URL (`AWS_ENDPOINT_URL_ECS` for a tool under test).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The load-balancer port range given to this emulator (`--lb-ports`).
    pub fn lb_ports(&self) -> (u16, u16) {
        self.lb_ports
    }

    /// The load-balancer port of a service created with a `loadBalancers` entry; panics when it
    /// has none (`GET /_emulator/services/<cluster>/<service>/lb-port` answers 404).
    pub fn lb_port(&self, cluster: &str, service: &str) -> u16 {
        self.try_lb_port(cluster, service).unwrap_or_else(|| {
            panic!(
                "service {cluster}/{service} has no load-balancer port on {}",
                self.url()
            )
        })
    }

    /// The load-balancer port of a service, `None` while it has none.
    pub fn try_lb_port(&self, cluster: &str, service: &str) -> Option<u16> {
        let (status, body) = http_get(
            self.port,
            &format!("/_emulator/services/{cluster}/{service}/lb-port"),
        )
        .unwrap_or_else(|err| panic!("ecs-emulator on {}: {err}", self.url()));
        match status {
            200 => Some(
                body.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("lb-port answered {body:?}")),
            ),
            404 => None,
            _ => panic!("lb-port answered {status}: {body}"),
        }
    }

    /// Sets the injected faults at run time (`POST /_emulator/faults`): every
    /// `throttle_every`th API call answers `ThrottlingException` (0: never; setting it restarts
    /// the count) and every answer waits `latency_ms` more (0: none).
    pub fn set_faults(&self, throttle_every: u64, latency_ms: u64) {
        let body = json!({"throttleEvery": throttle_every, "latencyMs": latency_ms}).to_string();
        let (status, answer) = http_request(self.port, "POST", "/_emulator/faults", &[], &body)
            .unwrap_or_else(|err| panic!("ecs-emulator on {}: {err}", self.url()));
        assert_eq!(status, 200, "POST /_emulator/faults answered {answer}");
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ids of the containers this emulator started that still exist (running or not).
    pub fn containers(&self) -> Vec<String> {
        let out = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=shipkit.ecs-emulator.listen=127.0.0.1:{}", self.port),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the emulator with SIGTERM (it removes its containers) and waits for it; SIGKILL
    /// after 20 s.
    pub fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EcsEmulator {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- ecs-emulator on {} (last {} lines of its log) ---\n{}",
                self.url(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// An `aws-sdk-ecs` client for `url` (region us-east-1, fake credentials, the SDK's standard
/// retries), as a tool configured with `AWS_ENDPOINT_URL_ECS=url` would have.
pub async fn ecs_client(url: &str) -> aws_sdk_ecs::Client {
    let config = crate::aws_config_for(url).await;
    aws_sdk_ecs::Client::new(&config)
}

/// Registers `family`: one essential container `web` running `image` (64 MiB) that publishes
/// [`HTTP_PORT`] on a dynamic host port, bridge networking. Returns the task definition ARN.
pub async fn register_web(client: &aws_sdk_ecs::Client, family: &str, image: &str) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode, PortMapping};
    let container = ContainerDefinition::builder()
        .name("web")
        .image(image)
        .essential(true)
        .memory(64)
        .port_mappings(
            PortMapping::builder()
                .container_port(i32::from(HTTP_PORT))
                .host_port(0)
                .build(),
        )
        .build();
    client
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Bridge)
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition")
        .task_definition
        .and_then(|td| td.task_definition_arn)
        .expect("a task definition ARN")
}

/// The load balancer entry of service `service` for [`register_web`]'s container (a target
/// group named after the service; the emulator gives it a loopback port).
pub fn web_load_balancer(service: &str) -> aws_sdk_ecs::types::LoadBalancer {
    aws_sdk_ecs::types::LoadBalancer::builder()
        .target_group_arn(format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{service}/0123456789abcdef"
        ))
        .container_name("web")
        .container_port(i32::from(HTTP_PORT))
        .build()
}

/// Builds `reference` from a Dockerfile and files (path relative to the context, contents)
/// plus the static busybox at `busybox`; returns the image id. No build cache: a cached
/// intermediate image shared with a parallel test could be removed under it.
pub fn build_image(reference: &str, dockerfile: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir for the build context");
    std::fs::copy(busybox(), dir.path().join("busybox")).expect("copy busybox");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    for (path, contents) in files {
        let path = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().expect("a file in the context"))
            .expect("create directories in the context");
        std::fs::write(path, contents).expect("write a file of the context");
    }
    crate::docker::build_fixture(dir.path(), reference)
}

/// Whether ECS's circuit breaker rolls a test service's failed deployment back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Off,
    Rollback,
}

/// Registers `family` `name` ([`register_web`]) and creates service `name` in `cluster` with
/// `desired` tasks, rolling at 100 %/200 %, the circuit breaker off, behind a load balancer
/// ([`web_load_balancer`]) when `load_balanced`. Returns the task definition ARN.
pub async fn create_web_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    image: &str,
    desired: i32,
    load_balanced: bool,
) -> String {
    create_guarded_web_service(
        client,
        cluster,
        name,
        image,
        desired,
        load_balanced,
        Breaker::Off,
    )
    .await
}

/// [`create_web_service`] with the circuit breaker `breaker`.
pub async fn create_guarded_web_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    image: &str,
    desired: i32,
    load_balanced: bool,
    breaker: Breaker,
) -> String {
    use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};
    let arn = register_web(client, name, image).await;
    let rollback = breaker == Breaker::Rollback;
    let breaker = DeploymentCircuitBreaker::builder()
        .enable(rollback)
        .rollback(rollback)
        .build();
    client
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(&arn)
        .desired_count(desired)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(breaker)
                .build(),
        )
        .set_load_balancers(load_balanced.then(|| vec![web_load_balancer(name)]))
        .send()
        .await
        .expect("CreateService");
    arn
}

/// The task definition ARN service `service` of `cluster` runs now, asked directly.
pub async fn service_task_definition(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> String {
    client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("DescribeServices")
        .services()
        .first()
        .and_then(|s| s.task_definition())
        .expect("the service has a task definition")
        .to_owned()
}

/// How many revisions of `family` are registered.
pub async fn revisions(client: &aws_sdk_ecs::Client, family: &str) -> usize {
    client
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("ListTaskDefinitions")
        .task_definition_arns()
        .len()
}

/// The envelope img-push writes after pushing `references` (`<repo>@sha256:…`): what
/// ecs-roll reads.
pub fn pushed_envelope(references: &[&str]) -> serde_json::Value {
    let images: Vec<serde_json::Value> = references
        .iter()
        .map(|reference| {
            let (repository, digest) = reference.split_once('@').expect("a digest reference");
            json!({
                "name": repository.rsplit('/').next(),
                "pushed": [{"repository": repository, "tag": "git-abc1234", "digest": digest,
                            "reference": reference, "skipped": false}]
            })
        })
        .collect();
    json!({"schema": "shipkit/v1", "images": images})
}

/// Builds `reference`: `FROM scratch`, busybox at `/busybox`, `files` (path under `/www`,
/// contents) served by `busybox httpd` on port 8080 (every path, `/` included, that is a file
/// answers 200; anything else 404). Returns the image id.
pub fn build_http_image(reference: &str, files: &[(&str, &str)]) -> String {
    build_http_image_after(reference, files, Duration::ZERO)
}

/// [`build_http_image`], whose httpd starts only `delay` (whole seconds) after the container
/// does: until then its port answers no HTTP, so it is no healthy target and its deployment
/// stays in progress that long.
pub fn build_http_image_after(reference: &str, files: &[(&str, &str)], delay: Duration) -> String {
    let www: Vec<(String, &str)> = files
        .iter()
        .map(|(path, contents)| (format!("www/{}", path.trim_start_matches('/')), *contents))
        .chain(std::iter::once(("www/.keep".to_owned(), "")))
        .collect();
    let www: Vec<(&str, &str)> = www.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let entrypoint = match delay.as_secs() {
        0 => r#"["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]"#.to_owned(),
        secs => format!(
            r#"["/busybox", "sh", "-c", "/busybox sleep {secs}; exec /busybox httpd -f -p 8080 -h /www"]"#
        ),
    };
    build_image(
        reference,
        &format!(
            "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nEXPOSE 8080\nENTRYPOINT {entrypoint}\n"
        ),
        &www,
    )
}

/// Builds `reference`: `FROM scratch` busybox that runs but never answers HTTP (it sleeps):
/// never a healthy target behind a load balancer. Returns the image id.
pub fn deaf_image(reference: &str) -> String {
    build_image(
        reference,
        "FROM scratch\nCOPY busybox /busybox\nENTRYPOINT [\"/busybox\", \"sleep\", \"600\"]\n",
        &[],
    )
}

/// The exit code of [`crashing_image`]'s only process.
pub const CRASH_EXIT_CODE: i32 = 3;

/// Builds `reference`: `FROM scratch` busybox that says so on stderr and exits 3 about half a
/// second after it starts (long enough to be seen RUNNING, as a crashing server is). Returns
/// the image id.
pub fn crashing_image(reference: &str) -> String {
    build_image(
        reference,
        "FROM scratch\nCOPY busybox /busybox\nEXPOSE 8080\n\
         ENTRYPOINT [\"/busybox\", \"sh\", \"-c\", \"echo 'crashing on purpose' >&2; /busybox sleep 0.5; exit 3\"]\n",
        &[],
    )
}

/// Pushes a local image tagged `<ecr host>/<repository>:<tag>` to the local ECR host (creating
/// the repository in moto, logging in with moto's token in a Docker config of its own) and
/// returns its digest reference, `<ecr host>/<repository>@sha256:…`.
pub fn push_to_ecr(reference: &str) -> String {
    let host = ecr_host();
    let repository_path = reference
        .strip_prefix(&format!("{host}/"))
        .unwrap_or_else(|| panic!("{reference} is not on the ECR host {host}"));
    let repository_name = repository_path
        .rsplit_once(':')
        .map_or(repository_path, |(name, _)| name);
    create_ecr_repository(repository_name);
    let config = tempfile::tempdir().expect("tempdir for a Docker config");
    let client = Docker::with_config(config.path());
    client.login(&host, "AWS", &ecr_password());
    client.ok(&["push", reference]);
    let repository = format!("{host}/{repository_name}");
    let digests: Vec<String> = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ]))
    .expect("RepoDigests is a JSON list");
    digests
        .into_iter()
        .find(|d| d.starts_with(&format!("{repository}@")))
        .unwrap_or_else(|| panic!("the Engine knows no digest of {reference} after the push"))
}

/// Images a test built (and pushed); removed from the local Engine on drop. What was pushed
/// stays in the registry (it is content-addressed and tiny).
#[derive(Debug, Default)]
pub struct TestImages {
    references: Vec<String>,
}

impl TestImages {
    /// Nothing built yet.
    pub fn new() -> TestImages {
        TestImages::default()
    }

    /// `<ecr host>/<repository>:<unique tag>`, so tests in parallel never share a tag.
    pub fn ecr_reference(repository: &str) -> String {
        format!("{}/{repository}:{}", ecr_host(), unique("t"))
    }

    /// [`build_http_image`] as `<ecr host>/<repository>:<unique tag>`; returns that reference.
    pub fn http(&mut self, repository: &str, files: &[(&str, &str)]) -> String {
        let reference = TestImages::ecr_reference(repository);
        self.references.push(reference.clone());
        build_http_image(&reference, files);
        reference
    }

    /// [`build_http_image_after`] as `<ecr host>/<repository>:<unique tag>`; returns that
    /// reference.
    pub fn http_after(
        &mut self,
        repository: &str,
        files: &[(&str, &str)],
        delay: Duration,
    ) -> String {
        let reference = TestImages::ecr_reference(repository);
        self.references.push(reference.clone());
        build_http_image_after(&reference, files, delay);
        reference
    }

    /// [`deaf_image`] as `<ecr host>/<repository>:<unique tag>`; returns that reference.
    pub fn deaf(&mut self, repository: &str) -> String {
        let reference = TestImages::ecr_reference(repository);
        self.references.push(reference.clone());
        deaf_image(&reference);
        reference
    }

    /// [`crashing_image`] as `<ecr host>/<repository>:<unique tag>`; returns that reference.
    pub fn crashing(&mut self, repository: &str) -> String {
        let reference = TestImages::ecr_reference(repository);
        self.references.push(reference.clone());
        crashing_image(&reference);
        reference
    }

    /// [`push_to_ecr`]; the digest reference it returns is removed locally on drop too.
    pub fn push_to_ecr(&mut self, reference: &str) -> String {
        let digest_reference = push_to_ecr(reference);
        self.references.push(digest_reference.clone());
        digest_reference
    }

    /// Removes an image from the local Engine now, so that whoever runs it next must pull
    /// it (from the ECR host, with the token from moto, as ECS's agent does).
    pub fn remove_locally(&mut self, reference: &str) {
        let _ = docker(&["rmi", "-f", reference]);
    }

    /// Removes `reference` from the local Engine on drop too (an image pulled by the
    /// emulator, say).
    pub fn track(&mut self, reference: &str) {
        self.references.push(reference.to_owned());
    }
}

impl Drop for TestImages {
    fn drop(&mut self) {
        for reference in self.references.iter().rev() {
            let _ = docker(&["rmi", "-f", reference]);
        }
    }
}

/// `GET path` on a loopback port over a fresh connection: `Ok((status, body))`, or `Err` when
/// nothing answered (connection refused, reset, timed out).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    http_request(port, "GET", path, &[], "")
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
            .map_err(|err| format!("connect to 127.0.0.1:{port}: {err}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("send to 127.0.0.1:{port}: {err}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|err| format!("read from 127.0.0.1:{port}: {err}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("127.0.0.1:{port} answered no HTTP: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("127.0.0.1:{port} answered no status: {head:?}"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_ranges_stay_in_their_spans_and_do_not_overlap() {
        let ranges: Vec<(u16, u16)> = (0..90).map(lb_range).collect();
        for (first, last) in &ranges {
            assert_eq!(last - first + 1, LB_BLOCK);
            assert!(
                LB_SPANS.iter().any(|(a, b)| a <= first && last <= b),
                "{first}-{last}"
            );
            assert!(!(18500..=18599).contains(first) && !(18500..=18599).contains(last));
        }
        let mut sorted = ranges.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 90);
        assert!(sorted.windows(2).all(|w| w[0].1 < w[1].0));
        // It wraps instead of running off the end.
        assert_eq!(lb_range(90), lb_range(0));
        assert_eq!(lb_range(0), (18100, 18119));
        assert_eq!(lb_range(20), (18600, 18619));
    }
}
