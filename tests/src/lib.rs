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

pub mod ecs;
pub mod http_server;
pub mod kube;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Reads `target/services.env` (written by `scripts/services up`) into key/value pairs, or
/// `None` when the services are not up.
pub fn services_env() -> Option<BTreeMap<String, String>> {
    let path = repo_root().join("target/services.env");
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
            .collect(),
    )
}

/// The repository root (the workspace of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_owned()
}
