//! health-wait as a user runs it, against real servers on loopback.

use serde_json::{Value, json};
use shipkit_tests::Cmd;
use shipkit_tests::http_server::{HttpServer, Reply, TestCert, unused_port};
use std::net::TcpListener;
use std::time::Duration;

fn health_wait() -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_health-wait"))
}

/// Fast schedule so tests take fractions of a second.
fn fast() -> [&'static str; 6] {
    [
        "--interval",
        "50ms",
        "--max-interval",
        "100ms",
        "--attempt-timeout",
        "2s",
    ]
}

fn health(out: &Value) -> &Vec<Value> {
    out["health"].as_array().expect("health[] in the output")
}

#[test]
fn exits_0_once_the_target_answers_200_and_counts_attempts() {
    let server = HttpServer::start(|n| {
        if n < 3 {
            Reply::new(503, "starting")
        } else {
            Reply::ok("ok")
        }
    });
    let out = health_wait()
        .args(fast())
        .args(["--url", &server.url("/auth")])
        .run();
    out.assert_code(0);
    let envelope = out.json();
    let entry = &health(&envelope)[0];
    assert_eq!(entry["target"], server.url("/auth"));
    assert_eq!(entry["healthy"], true);
    assert_eq!(entry["attempts"], 3);
    assert_eq!(entry["last"]["status"], 200);
    assert!(entry["last"].get("error").is_none());
    assert_eq!(envelope["failed"], Value::Null);
    assert_eq!(server.requests(), 3, "no request after it turned healthy");
    assert!(out.stderr.contains("status 503"), "{}", out.stderr);
    assert!(
        out.stderr.contains("healthy after 3 attempt(s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_flapping_target_needs_consecutive_successes() {
    // ok, fail, ok, ok, fail, ok, ok, ok: only the last three are three in a row.
    let script = [200, 503, 200, 200, 503, 200, 200, 200];
    let server = HttpServer::start(move |n| {
        let status = script.get(n as usize - 1).copied().unwrap_or(200);
        Reply::new(status, "")
    });
    let out = health_wait()
        .args(fast())
        .args(["--url", &server.url("/"), "--successes", "3"])
        .run();
    out.assert_code(0);
    assert_eq!(health(&out.json())[0]["attempts"], 8);
    assert_eq!(server.requests(), 8);
}

#[test]
fn a_wrong_body_is_unhealthy_until_the_deadline_then_124() {
    let server = HttpServer::start(|_| Reply::ok("{\"status\":\"DOWN\"}"));
    let out = health_wait()
        .args(fast())
        .args([
            "--url",
            &server.url("/health"),
            "--body-contains",
            "UP",
            "--timeout",
            "600ms",
        ])
        .run();
    out.assert_code(124);
    let envelope = out.json();
    let entry = &health(&envelope)[0];
    assert_eq!(entry["healthy"], false);
    assert_eq!(entry["last"]["status"], 200);
    assert_eq!(entry["last"]["error"], "body does not contain \"UP\"");
    assert_eq!(envelope["failed"]["exit_code"], 124);
    assert_eq!(envelope["failed"]["tool"], "health-wait");
    let error = envelope["failed"]["error"].as_str().unwrap();
    assert!(
        error.contains(&server.url("/health")),
        "names the target: {error}"
    );
    assert!(server.requests() >= 2);
}

#[test]
fn json_and_regex_checks_read_the_body() {
    let server = HttpServer::start(|n| {
        if n == 1 {
            Reply::ok(r#"{"status":"UP","checks":[{"db":false}],"version":"v1.2.3"}"#)
        } else {
            Reply::ok(r#"{"status":"UP","checks":[{"db":true}],"version":"v1.2.3"}"#)
        }
    });
    let out = health_wait()
        .args(fast())
        .args([
            "--url",
            &server.url("/"),
            "--json",
            "status=UP",
            "--json",
            "checks[0].db=true",
        ])
        .args(["--body-regex", r#""version":"v1\.\d+"#])
        .run();
    out.assert_code(0);
    assert_eq!(health(&out.json())[0]["attempts"], 2);
    assert!(
        out.stderr
            .contains("JSON checks[0].db is false, expected true"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_hanging_server_fails_each_attempt_at_the_attempt_timeout() {
    let server = HttpServer::start(|_| Reply::ok("late").after(Duration::from_secs(5)));
    let out = health_wait()
        .args([
            "--interval",
            "50ms",
            "--attempt-timeout",
            "200ms",
            "--timeout",
            "700ms",
        ])
        .args(["--url", &server.url("/")])
        .run();
    out.assert_code(124);
    let envelope = out.json();
    assert_eq!(
        health(&envelope)[0]["last"]["error"],
        "attempt timed out after 200ms"
    );
    assert!(health(&envelope)[0]["attempts"].as_u64().unwrap() >= 2);
}

#[test]
fn tls_with_a_self_signed_certificate_needs_cacert_or_insecure() {
    let cert = TestCert::generate();
    let server = HttpServer::start_tls(&cert, |_| Reply::ok("ok"));
    let untrusted = health_wait()
        .args(fast())
        // Long enough for at least one handshake to fail even on a loaded machine.
        .args(["--url", &server.url("/"), "--timeout", "2s"])
        .run();
    untrusted.assert_code(124);
    let error = health(&untrusted.json())[0]["last"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with("TLS: "), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    health_wait()
        .args(fast())
        .args(["--url", &server.url("/"), "--cacert", ca.to_str().unwrap()])
        .run()
        .assert_code(0);
    health_wait()
        .args(fast())
        .args(["--url", &server.url("/"), "--insecure"])
        .run()
        .assert_code(0);
}

#[test]
fn tcp_targets_need_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = format!("127.0.0.1:{}", unused_port());
    let out = health_wait().args(fast()).args(["--tcp", &open]).run();
    out.assert_code(0);
    assert_eq!(health(&out.json())[0]["target"], format!("tcp://{open}"));

    let out = health_wait()
        .args(fast())
        .args(["--tcp", &closed, "--timeout", "300ms"])
        .run();
    out.assert_code(124);
    assert_eq!(
        health(&out.json())[0]["last"]["error"],
        "connection refused"
    );
}

#[test]
fn all_targets_are_checked_together_and_each_is_reported() {
    let quick = HttpServer::start(|_| Reply::ok("ok"));
    let slow = HttpServer::start(|n| {
        if n < 4 {
            Reply::new(502, "")
        } else {
            Reply::ok("ok")
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = health_wait()
        .args(fast())
        .args(["--url", &quick.url("/a"), "--url", &slow.url("/b")])
        .args(["--tcp", &listener.local_addr().unwrap().to_string()])
        .run();
    out.assert_code(0);
    let envelope = out.json();
    let attempts: Vec<u64> = health(&envelope)
        .iter()
        .map(|h| h["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 4, 1]);
    assert!(health(&envelope).iter().all(|h| h["healthy"] == true));
}

#[test]
fn deployments_endpoints_are_targets_and_the_envelope_passes_through() {
    let server = HttpServer::start(|_| Reply::ok("ok"));
    let input = json!({
        "schema": "shipkit/v1",
        "future_field": {"kept": true},
        "images": [{"name": "auth-server", "tags": ["auth-server:git-abc"], "future": 1}],
        "deployments": [{"platform": "ecs", "cluster": "dev", "service": "auth",
                         "outcome": "completed", "endpoints": [server.url("/auth")],
                         "task_definition": "arn:aws:ecs:us-east-1:1:task-definition/auth:2"}]
    });
    let out = health_wait()
        .args(fast())
        .arg_from_deployments()
        .stdin_json(&input)
        .run();
    out.assert_code(0);
    let envelope = out.json();
    assert_eq!(envelope["future_field"], input["future_field"]);
    assert_eq!(envelope["images"], input["images"]);
    assert_eq!(envelope["deployments"], input["deployments"]);
    assert_eq!(health(&envelope)[0]["target"], server.url("/auth"));
}

trait FromDeployments {
    fn arg_from_deployments(self) -> Self;
}
impl FromDeployments for Cmd {
    fn arg_from_deployments(self) -> Cmd {
        self.args(["--from-deployments"])
    }
}

#[test]
fn bad_input_is_refused_before_any_request() {
    let server = HttpServer::start(|_| Reply::ok("ok"));
    let url = server.url("/");
    let cases: Vec<(Cmd, &str)> = vec![
        (
            health_wait().args(["--url", "localhost:8080"]),
            "--url: invalid URL",
        ),
        (
            health_wait().args(["--url", &url, "--tcp", "db"]),
            "invalid --tcp \"db\"",
        ),
        (
            health_wait().args(["--url", &url, "--timeout", "5x"]),
            "'--timeout <DURATION>'",
        ),
        (
            health_wait().args(["--url", &url, "--bogus"]),
            "unexpected argument '--bogus'",
        ),
        (
            health_wait().args(["--url", &url, "--status", "abc"]),
            "--status: invalid status",
        ),
        (
            health_wait().args(["--url", &url, "--body-regex", "("]),
            "--body-regex",
        ),
        (
            health_wait().args(["--url", &url, "--json", "status"]),
            "invalid --json",
        ),
        (
            health_wait().args(["--url", &url, "--cacert", "/nonexistent/ca.pem"]),
            "cannot read --cacert",
        ),
        (
            health_wait().args(["--url", &url]).stdin("{\"images\": [}"),
            "line 1 column 13",
        ),
        (
            health_wait()
                .args(["--url", &url])
                .stdin("{\"schema\":\"shipkit/v9\"}"),
            "major version 9",
        ),
        (health_wait(), "no targets"),
        (
            health_wait().args(["--from-deployments"]).stdin("{}"),
            "no deployments[].endpoints",
        ),
    ];
    for (cmd, needle) in cases {
        let out = cmd.run();
        out.assert_usage_error(needle);
        assert_eq!(out.json()["failed"]["exit_code"], 2);
    }
    assert_eq!(server.requests(), 0, "bad input must send nothing");
}

#[test]
fn an_upstream_failure_is_passed_on_unchanged_with_exit_3() {
    let server = HttpServer::start(|_| Reply::ok("ok"));
    let input = r#"{"schema":"shipkit/v1","images":[],"failed":{"tool":"img-build","error":"RUN make failed","exit_code":1}}"#;
    let out = health_wait()
        .args(["--url", &server.url("/")])
        .stdin(input)
        .run();
    out.assert_code(3);
    assert_eq!(out.stdout, format!("{input}\n"));
    assert!(
        out.stderr
            .contains("upstream step img-build failed: RUN make failed"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests(), 0);
}

#[test]
fn output_can_go_to_a_file_and_be_pretty() {
    let server = HttpServer::start(|_| Reply::ok("ok"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let out = health_wait()
        .args([
            "--url",
            &server.url("/"),
            "--pretty",
            "--output",
            path.to_str().unwrap(),
        ])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "", "nothing on stdout with --output");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\n  \"schema\": \"shipkit/v1\""),
        "{text}"
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["health"][0]["healthy"], true);
}

#[test]
fn shared_flags_from_the_environment_take_1_and_0() {
    let server = HttpServer::start(|_| Reply::ok("ok"));
    let url = server.url("/");
    let pretty = health_wait()
        .args(["--url", &url])
        .env("SHIPKIT_PRETTY", "1")
        .env("SHIPKIT_QUIET", "1")
        .run();
    pretty.assert_code(0);
    assert!(pretty.stdout.starts_with("{\n  \""), "{}", pretty.stdout);
    assert_eq!(pretty.stderr, "", "SHIPKIT_QUIET=1 is -q");
    let compact = health_wait()
        .args(["--url", &url])
        .env("SHIPKIT_PRETTY", "0")
        .env("SHIPKIT_QUIET", "0")
        .run();
    compact.assert_code(0);
    assert_eq!(compact.stdout.lines().count(), 1, "{}", compact.stdout);
    assert_ne!(compact.stderr, "", "SHIPKIT_QUIET=0 is not -q");
    // -v on the command line beats SHIPKIT_QUIET; -q with -v is a usage error.
    let verbose = health_wait()
        .args(["--url", &url, "-v"])
        .env("SHIPKIT_QUIET", "1")
        .run();
    verbose.assert_code(0);
    assert!(verbose.stderr.contains("attempt 1"), "{}", verbose.stderr);
    health_wait()
        .args(["--url", &url, "-q", "-v"])
        .run()
        .assert_usage_error("--quiet and --verbose");
}

#[test]
fn under_github_actions_secrets_are_masked_and_outputs_written() {
    let server = HttpServer::start(|n| {
        if n < 2 {
            Reply::new(401, "")
        } else {
            Reply::ok("ok")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("github_output");
    let summary = dir.path().join("summary.md");
    let secret = "Bearer s3cr3t-t0ken-value";
    let out = health_wait()
        .args(fast())
        .args([
            "--url",
            &server.url("/private"),
            "-H",
            &format!("Authorization: {secret}"),
            "-v",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", output.to_str().unwrap())
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .run();
    out.assert_code(0);
    let mask_lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("s3cr3t"))
        .collect();
    assert_eq!(
        mask_lines,
        [format!("::add-mask::{secret}")],
        "stderr:\n{}",
        out.stderr
    );
    assert!(!out.stdout.contains("s3cr3t"));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "healthy=true\n");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("| target | healthy |"), "{summary}");
    assert!(
        summary.contains(&format!("| {} | yes | 2 |", server.url("/private"))),
        "{summary}"
    );
}

#[test]
fn failures_under_actions_are_error_annotations() {
    let out = health_wait()
        .args([
            "--tcp",
            "127.0.0.1:1",
            "--interval",
            "50ms",
            "--timeout",
            "200ms",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .run();
    out.assert_code(124);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("::error title=health-wait::1 of 1 target(s) still unhealthy")),
        "{}",
        out.stderr
    );
}

#[test]
fn connect_to_reaches_a_host_routed_balancer_with_the_urls_host() {
    // A load balancer with a host rule: 200 for its host, its default 404 for any other.
    let balancer = HttpServer::serving(|request| match request.header("host") {
        Some("staging.shop.example") => Reply::ok("ok"),
        _ => Reply::new(404, "no rule for this host"),
    });
    let rule = format!("staging.shop.example:80:{}", balancer.addr());
    let envelope = json!({"schema": "shipkit/v1", "deployments": [{
        "platform": "kubernetes", "cluster": "staging", "outcome": "completed",
        "endpoints": ["http://staging.shop.example/auth"]}]});
    let out = health_wait()
        .args(fast())
        .args(["--from-deployments", "--connect-to", &rule])
        .stdin(envelope.to_string())
        .run();
    out.assert_code(0);
    let output = out.json();
    let entry = &health(&output)[0];
    assert_eq!(entry["target"], "http://staging.shop.example/auth");
    assert_eq!(entry["healthy"], true);
    assert!(
        out.stderr.contains(&format!(
            "staging.shop.example:80 is reached at {}",
            balancer.addr()
        )),
        "{}",
        out.stderr
    );

    // The balancer's own address answers with its default action: the Host is what counts.
    let direct = health_wait()
        .args(fast())
        .args(["--timeout", "300ms", "--url", &balancer.url("/auth")])
        .run();
    direct.assert_code(124);
}

#[test]
fn connect_to_refuses_what_it_cannot_redirect_before_any_request() {
    // Were a rule applied anyway, the request would reach this server.
    let balancer = HttpServer::start(|_| Reply::ok("ok"));
    let to = |port: u16| format!("a.example:{port}:{}", balancer.addr());
    for (url, rule, says) in [
        ("http://a.example:8080/", to(8080), "names port 8080"),
        (
            "http://a.example/",
            "a.example:80:lb.internal:80".to_owned(),
            "HOST2 must be an IP address",
        ),
        ("https://a.example/", to(80), "is on port 443"),
    ] {
        let flags = ["--url", url, "--connect-to", &rule];
        let out = health_wait().args(fast()).args(flags).run();
        out.assert_code(2);
        assert!(out.stderr.contains(says), "{flags:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    assert_eq!(balancer.requests(), 0);
}
