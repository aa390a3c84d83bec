//! Starts a kube-emulator (its own CA, free ports, a kubeconfig) for one test, and runs kubectl
//! against it.

#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The real kubectl the issue measures the emulator against.
pub const KUBECTL: &str = "/usr/bin/kubectl";

/// A running emulator with `staging` and `production`, stopped (SIGKILL) when dropped.
pub struct Emulator {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

fn write_ca(dir: &Path) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-emulator test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
    dir.join("ca.crt")
}

impl Emulator {
    /// Starts the emulator without the Docker Engine (the API alone: pods never run).
    pub fn start() -> Emulator {
        Self::launch(&["--no-docker"])
    }

    /// Starts the emulator with its kubelet on the local Docker Engine (`DOCKER_HOST`).
    pub fn start_with_docker() -> Emulator {
        Self::launch(&["--tick", "200ms"])
    }

    /// Starts the emulator (API only) with extra flags.
    pub fn start_with(extra: &[&str]) -> Emulator {
        let mut args = vec!["--no-docker"];
        args.extend_from_slice(extra);
        Self::launch(&args)
    }

    fn launch(extra: &[&str]) -> Emulator {
        let dir = tempfile::tempdir().unwrap();
        let ca = write_ca(dir.path());
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--cluster",
                "staging=127.0.0.1:0,production=127.0.0.1:0",
            ])
            .arg("--ca-cert")
            .arg(&ca)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("SHIPKIT_CA_FILE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kube-emulator");
        let emu = Emulator {
            child,
            dir,
            kubeconfig,
        };
        let t0 = Instant::now();
        while !emu.kubeconfig.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no kubeconfig from the emulator: {}",
                emu.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emu
    }

    /// The emulator's own endpoint (`http://127.0.0.1:PORT`), from its start-up log line.
    pub fn control_url(&self) -> String {
        let log = self.log();
        let url = log
            .lines()
            .find_map(|l| l.split("kube-emulator listening on ").nth(1))
            .unwrap_or_else(|| panic!("no listening line in the log: {log}"));
        url.trim().to_owned()
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }

    /// A kubectl command against this emulator (its own discovery cache).
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(KUBECTL);
        c.env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        c
    }

    /// Runs kubectl with `args` (stdin: `input`), returning its output.
    pub fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut c = self.kubectl();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("running kubectl");
        if let Some(text) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and expects success; its stdout.
    pub fn ok(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.run(args, input);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n--- emulator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts `kubectl args` in the background and collects its stdout lines until `done`
    /// accepts one (or `timeout`), then stops it.
    pub fn lines_until(
        &self,
        args: &[&str],
        timeout: Duration,
        done: impl Fn(&str) -> bool,
        meanwhile: impl FnOnce(),
    ) -> Vec<String> {
        let mut child = self
            .kubectl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // The first line (the header or the first object) says the watch is established.
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
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        lines
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM: the emulator removes the containers it started, then exits.
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

/// The pid of the emulator process (its containers carry its instance label).
impl Emulator {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A Deployment manifest with `replicas` and `image`.
pub fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
"
    )
}

/// A ConfigMap manifest.
pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}
