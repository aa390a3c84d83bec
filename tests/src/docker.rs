//! The `docker` CLI against the local Docker Engine, as tests use it to set up and check what
//! a tool did (build a fixture image, inspect, push, remove).
//!
//! It talks to the Engine of `target/services.env` (`DOCKER_HOST`) and builds fixtures with the
//! legacy builder (`DOCKER_BUILDKIT=0`): the Engine has BuildKit, but the docker CLI reaches it
//! only through the buildx plugin, which these machines do not have (img-build speaks to
//! BuildKit itself). [`build_fixture`] builds a test's image.
//!
//! ```no_run
//! use shipkit_tests::docker::{Docker, docker, docker_ok};
//! let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
//! let _ = docker(&["rmi", "-f", "busybox"]); // best effort: the Output is there to look at
//! let config = tempfile::tempdir().unwrap();
//! let client = Docker::with_config(config.path()); // `docker login` lands there, not in ~
//! client.login("localhost:5000", "shipkit", "secret");
//! client.ok(&["push", "localhost:5000/app:v1"]);
//! # let _ = id;
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::services_env;

/// A `docker` client, with a Docker config directory of its own or the user's.
#[derive(Debug, Clone, Default)]
pub struct Docker {
    config: Option<PathBuf>,
}

impl Docker {
    /// The user's Docker config (`DOCKER_CONFIG` or `~/.docker`).
    pub fn new() -> Docker {
        Docker::default()
    }

    /// Uses the Docker config in `dir` (`--config`), so a login stays the test's own.
    pub fn with_config(dir: impl AsRef<Path>) -> Docker {
        Docker {
            config: Some(dir.as_ref().to_owned()),
        }
    }

    /// Runs `docker ARGS`, stdin empty; the caller looks at the result.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    /// Runs `docker ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut command = Command::new("docker");
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(host) = services_env().and_then(|env| env.get("DOCKER_HOST").cloned()) {
            command.env("DOCKER_HOST", host);
        }
        let mut child = command
            .spawn()
            .expect("run docker (is docker.io installed? scripts/services up installs it)");
        if let Some(input) = input {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .expect("write docker's stdin");
        }
        child.wait_with_output().expect("wait for docker")
    }

    /// Runs `docker ARGS`, asserts it succeeded and returns its stdout, trimmed.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `docker login HOST` with `password` on stdin; asserts it succeeded.
    #[track_caller]
    pub fn login(&self, host: &str, user: &str, password: &str) {
        let out = self.run_with_stdin(
            &["login", "--username", user, "--password-stdin", host],
            Some(password),
        );
        assert!(
            out.status.success(),
            "docker login {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `docker ARGS` with the user's Docker config: [`Docker::run`].
pub fn docker(args: &[&str]) -> Output {
    Docker::new().run(args)
}

/// `docker ARGS`, asserted to succeed, stdout trimmed: [`Docker::ok`].
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    Docker::new().ok(args)
}

/// Builds the context `dir` as `reference`; returns the image id. Without the build cache: a
/// cached parent image is shared with tests running in parallel, and their `docker rmi` can
/// remove it in the middle of this build ("unknown parent image ID").
#[track_caller]
pub fn build_fixture(dir: &Path, reference: &str) -> String {
    let context = dir.to_str().expect("a UTF-8 context path");
    docker_ok(&["build", "--no-cache", "-q", "-t", reference, context]);
    docker_ok(&["image", "inspect", "--format", "{{.Id}}", reference])
}

/// Panics with a clear message when the Engine cannot be reached: tests that need it must
/// not pass without it.
#[track_caller]
pub fn require_engine() {
    let out = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(
        out.status.success(),
        "the Docker Engine is not reachable (run `scripts/services up docker`): {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Where Debian's busybox-static installs the static busybox that test images are made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// [`BUSYBOX`], or a panic saying how to get it.
#[track_caller]
pub fn busybox() -> &'static Path {
    let path = Path::new(BUSYBOX);
    assert!(
        path.is_file(),
        "{BUSYBOX} is missing: apt-get install busybox-static (scripts/services up installs it)"
    );
    path
}

/// The image id of `reference`, `None` when the Engine has no such image.
pub fn image_id(reference: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The `RepoDigests` of `reference` (`repository@sha256:…`), empty when it has none or does
/// not exist.
pub fn repo_digests(reference: &str) -> Vec<String> {
    let out = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_is_reported_not_hidden() {
        require_engine();
        let missing = crate::unique("shipkit-tests-missing");
        assert_eq!(image_id(&missing), None);
        assert!(repo_digests(&missing).is_empty());
        let out = docker(&["image", "inspect", &missing]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(&missing));
    }

    #[test]
    fn a_config_of_its_own_is_used() {
        require_engine();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "not json").unwrap();
        // The CLI reads the config we named, and says what is wrong with it.
        let out = Docker::with_config(dir.path()).run(&["version"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("config.json"), "{stderr}");
    }
}
