//! Support for shipkit's tests: run a tool as a user would (flags, stdin, environment) and
//! read its envelope as data.
//!
//! ```no_run
//! use shipkit_tests::Cmd;
//! // In a tool's own tests: Cmd::new(env!("CARGO_BIN_EXE_health-wait"))
//! let out = Cmd::tool("health-wait")
//!     .args(["--url", "http://127.0.0.1:1/", "--timeout", "1s"])
//!     .run();
//! out.assert_code(124);
//! ```
//!
//! The rest of the support, one copy each:
//! - [`unique`]: names that parallel tests never share;
//! - [`services`]/[`services_env`]: the settings of the local services (`target/services.env`);
//! - [`docker`]: the `docker` CLI against the local Engine ([`docker::Docker`], [`docker::docker`]);
//! - [`ecr`]: moto's ECR API through `aws-sdk-ecr` (the login token, repositories);
//! - [`wait`]: polling until something is true ([`wait::wait_for`]);
//! - [`fault_proxy`]: a proxy in front of a real service that injects resets, stalls, slow and
//!   cut answers, and bursts of 5xx, 429 and AWS throttling, scripted per request;
//! - [`http_server`]: scripted HTTP(S) servers on loopback, [`http_server::unused_port`];
//! - [`ecs`]: an ECS emulator per test, an `aws-sdk-ecs` client, busybox images in ECR;
//! - [`kube`]: a Kubernetes emulator per test, with its own CA and kubeconfig;
//! - [`state`]: snapshots of what a tool could change (registry, ECR, images, emulators, tags).

pub mod docker;
pub mod ecr;
pub mod ecs;
pub mod fault_proxy;
pub mod http_server;
pub mod kube;
pub mod state;
pub mod wait;

/// The AWS settings a tool has with `AWS_ENDPOINT_URL_<SERVICE>=endpoint` and the local
/// services' fake credentials (region us-east-1, the SDK's standard retries).
pub async fn aws_config_for(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "shipkit-tests",
        ))
        .load()
        .await
}

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A tool invocation being built.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: BTreeMap<String, Option<String>>,
    dir: Option<PathBuf>,
}

/// What a finished invocation left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl Cmd {
    /// A command for the binary at `program`.
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            env: BTreeMap::new(),
            dir: None,
        }
    }

    /// A workspace binary by name, found next to the test executable (for tests outside
    /// the binary's own crate; the binary must have been built, as `cargo test --workspace`
    /// does).
    pub fn tool(name: &str) -> Cmd {
        Cmd::new(workspace_bin(name))
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Feeds `input` on stdin (written from a thread, so nothing deadlocks).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Feeds a JSON value on stdin.
    pub fn stdin_json(self, input: &Value) -> Cmd {
        self.stdin(input.to_string())
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.insert(key.to_owned(), Some(value.into()));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Cmd {
        self.env.insert(key.to_owned(), None);
        self
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Runs to completion. stdin is empty (not a terminal) unless set.
    pub fn run(&self) -> Output {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Tests see plain output whatever the developer's shell has set.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", self.program.display()));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = self.stdin.clone().unwrap_or_default();
        let writer = std::thread::spawn(move || {
            // A tool may exit before reading everything (bad flags): ignore EPIPE.
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("wait for the tool");
        let _ = writer.join();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Output {
    /// stdout parsed as the one JSON document it must be.
    pub fn json(&self) -> Value {
        assert!(
            self.stdout.ends_with('\n') && self.stdout.trim_end().lines().count() == 1,
            "stdout must be one compact JSON line with a trailing newline, got:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not JSON ({err}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// stdout decoded into the contract's own type, [`common::Envelope`]: a field of the
    /// wrong type or shape fails here, as it would for the next tool of a pipeline.
    pub fn envelope(&self) -> common::Envelope {
        serde_json::from_value(self.json()).unwrap_or_else(|err| {
            panic!(
                "stdout is not a shipkit envelope ({err}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing stderr when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts a usage error: exit 2 and a single `tool: error:` line mentioning `needle`.
    #[track_caller]
    pub fn assert_usage_error(&self, needle: &str) -> &Output {
        self.assert_code(2);
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected one error line, stderr:\n{}",
            self.stderr
        );
        assert!(
            errors[0].contains(needle),
            "error line {:?} does not mention {needle:?}",
            errors[0]
        );
        self
    }
}

/// The path of a workspace binary: `target/<profile>/<name>`, found from the test executable
/// (`target/<profile>/deps/<test>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// The settings of the local services: `target/services.env` (written by `scripts/services up`)
/// as key/value pairs; in a checkout without one (a git worktree), those of a services.env the
/// test's environment has sourced (`SHIPKIT_SERVICES_DIR` is set); `None` when neither.
pub fn services_env() -> Option<BTreeMap<String, String>> {
    let path = repo_root().join("target/services.env");
    match std::fs::read_to_string(path) {
        Ok(text) => Some(parse_services_env(&text)),
        Err(_) => sourced_services_env(),
    }
}

/// The `export KEY=value` lines of a services.env.
fn parse_services_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        .collect()
}

/// The services.env the process environment has sourced, read again from its file (so the
/// test sees exactly its keys, not whatever else the environment holds).
fn sourced_services_env() -> Option<BTreeMap<String, String>> {
    let dir = std::env::var_os("SHIPKIT_SERVICES_DIR")?;
    let file = Path::new(&dir).parent()?.join("services.env");
    std::fs::read_to_string(file)
        .ok()
        .map(|text| parse_services_env(&text))
}

/// The settings of the local services, or a panic saying how to get them: a test that needs
/// the services fails, loudly, when they are not up.
pub fn services() -> BTreeMap<String, String> {
    services_env().unwrap_or_else(|| {
        panic!("the local services are not up: run `scripts/services up` (no target/services.env)")
    })
}

/// A name unique to this process and call, for images, repositories, tags, clusters and
/// services (lower case, digits and `-`, so valid for all of them): `<prefix>-<pid>-<n>-<hex>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `git -C dir ARGS` as a test's fixed author, asserted to succeed; its stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The repository root (the workspace of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_docker_and_ecs_names() {
        let names: Vec<String> = (0..100).map(|_| unique("Pre")).collect();
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len());
        for name in &names {
            let rest = name.strip_prefix("Pre-").expect("the prefix first");
            assert!(
                rest.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '-'),
                "{name}"
            );
        }
    }

    fn output(stdout: &str) -> Output {
        Output {
            code: 0,
            stdout: stdout.to_owned(),
            stderr: String::new(),
        }
    }

    #[test]
    fn stdout_decodes_into_the_envelope_with_unknown_fields_kept() {
        let envelope = output("{\"schema\":\"shipkit/v1\",\"future\":1}\n").envelope();
        assert_eq!(envelope.schema, "shipkit/v1");
        assert_eq!(envelope.extra["future"], 1);
    }

    #[test]
    #[should_panic(expected = "stdout is not a shipkit envelope")]
    fn stdout_of_the_wrong_shape_is_not_an_envelope() {
        output("{\"images\":\"not a list\"}\n").envelope();
    }

    #[test]
    fn services_env_lines_are_exports_with_quotes_removed() {
        let env = parse_services_env(
            "# comment\nexport A=1\nexport B=\"two words\"\nexport C='x=y'\nPATH=no\n",
        );
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("A", "1"), ("B", "two words"), ("C", "x=y")]);
    }
}
