//! Kubernetes test support: a `kube-emulator` of each test's own (its own CA, free ports, a
//! kubeconfig with the `staging` and `production` contexts), kubectl against it, and the
//! writes it received.
//!
//! ```no_run
//! use shipkit_tests::kube::KubeEmulator;
//! let emulator = KubeEmulator::start(); // the API alone: pods are stored, never run
//! let pods = emulator.kubectl(&["--context", "staging", "get", "pods", "-A"]);
//! assert!(emulator.writes().is_empty());
//! # let _ = pods;
//! ```
//!
//! [`KubeEmulator::start`] runs `<target>/debug/kube-emulator` (built by
//! `cargo build -p kube-emulator`, or by `cargo test --workspace`) with its request log on
//! (`kube_emulator=debug`), so a test can tell which writes it received
//! ([`KubeEmulator::writes`]). [`KubeEmulator::start_with_docker`] also runs its kubelet on the
//! local Docker Engine, with the settings of `target/services.env` (`DOCKER_HOST`, the ECR API
//! for pulls). It is stopped with SIGTERM on drop (it then removes its containers); a test that panics
//! shows its log.
#![allow(clippy::print_stderr)] // a failing test explains itself on stderr

use crate::{services_env, workspace_bin};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What the emulator logs once its own endpoint listens, before the URL.
const LISTENING: &str = "kube-emulator listening on ";

/// The kubectl the emulator is measured against.
pub const KUBECTL: &str = "kubectl";

/// A running emulator, stopped when dropped.
pub struct KubeEmulator {
    child: Child,
    dir: tempfile::TempDir,
    /// The kubeconfig it wrote: contexts `staging` and `production`.
    pub kubeconfig: PathBuf,
}

impl KubeEmulator {
    /// The API alone (`--no-docker`): objects are stored, controllers run, pods never start.
    pub fn start() -> KubeEmulator {
        Self::launch(&["--no-docker"])
    }

    /// The API alone, with `extra` flags (`--watch-history 3`, …).
    pub fn start_with(extra: &[&str]) -> KubeEmulator {
        Self::launch(&[&["--no-docker"], extra].concat())
    }

    /// With the kubelet on the local Docker Engine, ticking every 200 ms.
    pub fn start_with_docker() -> KubeEmulator {
        Self::launch(&["--tick", "200ms"])
    }

    fn launch(extra: &[&str]) -> KubeEmulator {
        let dir = tempfile::tempdir().expect("tempdir for the emulator");
        let ca = write_ca(dir.path());
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("emulator.log")).expect("log file");
        let mut command = Command::new(workspace_bin("kube-emulator"));
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(["--cluster", "staging=127.0.0.1:0,production=127.0.0.1:0"])
            .arg("--ca-cert")
            .arg(&ca)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra)
            .env("RUST_LOG", "info,kube_emulator=debug")
            .env_remove("SHIPKIT_CA_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in services_env().unwrap_or_default() {
            if key.starts_with("AWS_") || key == "DOCKER_HOST" || key == "DOCKER_CONFIG" {
                command.env(key, value);
            }
        }
        let child = command.spawn().expect("starting kube-emulator");
        let emulator = KubeEmulator {
            child,
            dir,
            kubeconfig,
        };
        // Ready once the kubeconfig is written and its own endpoint (bound after the
        // clusters: the EKS API, control_url) listens.
        let t0 = Instant::now();
        while !(emulator.kubeconfig.exists() && emulator.log().contains(LISTENING)) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the emulator did not start (kubeconfig and listening line): {}",
                emulator.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    /// The emulator's own endpoint (`http://127.0.0.1:PORT`): the EKS API
    /// (`AWS_ENDPOINT_URL_EKS` for a tool under test).
    pub fn control_url(&self) -> String {
        let log = self.log();
        let url = log
            .lines()
            .find_map(|l| l.split(LISTENING).nth(1))
            .unwrap_or_else(|| panic!("no listening line in the log: {log}"));
        url.trim().to_owned()
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }

    /// The writes it received, as `METHOD PATH -> STATUS` lines (dry runs included), from its
    /// request log: every POST, PUT, PATCH and DELETE.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|request| {
                ["POST ", "PUT ", "PATCH ", "DELETE "]
                    .iter()
                    .any(|verb| request.starts_with(verb))
            })
            .collect()
    }

    /// Every request it received, as `METHOD PATH -> STATUS` lines, from its request log.
    pub fn requests(&self) -> Vec<String> {
        const VERBS: [&str; 5] = ["GET ", "POST ", "PUT ", "PATCH ", "DELETE "];
        self.log()
            .lines()
            .filter_map(|line| line.split_once(": ").map(|(_, rest)| rest))
            .filter_map(|rest| rest.split_once(": ").map(|(_, request)| request))
            .filter(|request| VERBS.iter().any(|verb| request.starts_with(verb)))
            .map(str::to_owned)
            .collect()
    }

    /// Runs kubectl with `args` against this emulator; its stdout, asserting success.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with_input(args, None)
    }

    /// Runs kubectl with `args` and `input` on stdin; its stdout, asserting success.
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.run_kubectl(args, input);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n--- emulator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with `args` and `input` on stdin, whatever its exit code (for tests of
    /// what kubectl reports when it fails).
    pub fn run_kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).expect("kubectl's stdin");
        }
        drop(stdin);
        child.wait_with_output().expect("kubectl ran")
    }

    /// A kubectl command against this emulator, with a discovery cache of its own.
    pub fn kubectl_command(&self) -> Command {
        let mut command = Command::new(KUBECTL);
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        command
    }

    /// Starts `kubectl args` in the background (a watch) and collects its stdout lines: the
    /// first one (the watch is established), then runs `meanwhile`, then until `done` accepts
    /// a line or `timeout` passes; then stops kubectl.
    pub fn lines_until(
        &self,
        args: &[&str],
        timeout: Duration,
        done: impl Fn(&str) -> bool,
        meanwhile: impl FnOnce(),
    ) -> Vec<String> {
        use std::io::{BufRead, BufReader};
        use std::sync::mpsc::{RecvTimeoutError, channel};
        let mut child = self
            .kubectl_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running kubectl");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut lines = vec![rx.recv_timeout(timeout).expect("kubectl printed nothing")];
        meanwhile();
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let stop = done(&line);
                    lines.push(line);
                    if stop {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        lines
    }

    /// The emulator's pid (its containers carry it in their instance label).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The emulator's own directory (its CA, kubeconfigs and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KubeEmulator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- kube-emulator log ---\n{}", self.log());
        }
        // SIGTERM (by its own pid): the emulator removes the containers it started, then exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA of the emulator's own (certificate and key beside each other, as it expects).
fn write_ca(dir: &Path) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shipkit tests kube CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    std::fs::write(dir.join("ca.crt"), cert.pem()).expect("write the CA certificate");
    std::fs::write(dir.join("ca.key"), key.serialize_pem()).expect("write the CA key");
    dir.join("ca.crt")
}
