//! The example system and the pipelines of `examples/`, as a team copies them: the images
//! (Redis, and an auth-server whose `/auth` needs it) built from `examples/services` on the
//! local Docker Engine.
//!
//! Needs `scripts/services up` (the Docker Engine) and the Debian packages `busybox-static` and
//! `redis-server` (installed by it), which `examples/services/prepare` copies into the contexts.

use std::process::Command;
use std::time::{Duration, Instant};

use shipkit_tests::docker::{docker, docker_ok, require_engine};
use shipkit_tests::ecs::http_get;
use shipkit_tests::{repo_root, unique};

/// Runs `examples/services/prepare`, which copies busybox and redis-server (with its libraries)
/// into the example contexts; panics with its stderr when it fails.
fn prepare_example_contexts() {
    let script = repo_root().join("examples/services/prepare");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Containers and images a test made on the Engine; removed on drop.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Made {
    /// Builds `examples/services/<service>` as a unique local tag; returns the tag.
    fn build_example(&mut self, service: &str) -> String {
        let tag = format!("{}:t", unique(&format!("examples-{service}")));
        let context = repo_root().join("examples/services").join(service);
        docker_ok(&[
            "build",
            "-q",
            "-t",
            &tag,
            context.to_str().expect("UTF-8 path"),
        ]);
        self.images.push(tag.clone());
        tag
    }

    /// `docker run -d --name <unique> ARGS IMAGE`; returns the container's name.
    fn run(&mut self, prefix: &str, args: &[&str], image: &str) -> String {
        let name = unique(prefix);
        let mut all = vec!["run", "-d", "--name", &name];
        all.extend_from_slice(args);
        all.push(image);
        docker_ok(&all);
        self.containers.push(name.clone());
        name
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", container]);
        }
        for image in &self.images {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// The loopback port Docker published for a container's port 8080.
fn published_port(container: &str) -> u16 {
    let port = docker_ok(&["port", container, "8080/tcp"]);
    port.lines()
        .filter_map(|line| line.rsplit_once(':'))
        .find_map(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no published port for {container}: {port:?}"))
}

/// Polls `GET path` on `port` until it answers `status`; returns the body, or panics with the
/// last answer after `within`.
fn wait_for_status(port: u16, path: &str, status: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = http_get(port, path);
        if let Ok((got, body)) = &answer
            && *got == status
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on 127.0.0.1:{port} did not answer {status} within {within:?}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn auth_server_answers_200_on_auth_only_while_its_redis_answers_ping() {
    require_engine();
    prepare_example_contexts();
    let mut made = Made::default();
    let redis_image = made.build_example("redis");
    let auth_image = made.build_example("auth-server");

    let redis = made.run("examples-redis", &[], &redis_image);
    // As ECS does for `links: ["redis"]` on bridge networking: /etc/hosts names it `redis`.
    let link = format!("{redis}:redis");
    let linked = made.run(
        "examples-auth",
        &["--link", &link, "-p", "127.0.0.1::8080"],
        &auth_image,
    );
    let alone = made.run(
        "examples-auth-alone",
        &["-p", "127.0.0.1::8080"],
        &auth_image,
    );
    let (linked_port, alone_port) = (published_port(&linked), published_port(&alone));

    let body = wait_for_status(linked_port, "/auth", 200, Duration::from_secs(20));
    assert_eq!(body, "ok: redis at redis:6379 answered PONG\n");
    // A query string reaches the same program.
    wait_for_status(linked_port, "/auth?probe=1", 200, Duration::from_secs(5));
    // Without a Redis to reach, the process runs but /auth says so.
    let body = wait_for_status(alone_port, "/auth", 503, Duration::from_secs(20));
    assert!(
        body.starts_with("unavailable: redis at redis:6379 did not answer PONG ("),
        "{body:?}"
    );

    // Redis stops: the same auth-server turns 503 (the check is live, not made once at start).
    docker_ok(&["stop", "-t", "1", &redis]);
    let body = wait_for_status(linked_port, "/auth", 503, Duration::from_secs(20));
    assert!(body.starts_with("unavailable: "), "{body:?}");
}
