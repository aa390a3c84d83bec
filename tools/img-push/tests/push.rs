//! img-push against the real local services (`scripts/services up`): dockerd, the CNCF
//! registry serving the ECR host name over TLS, moto for ECR/STS, and the generic registry
//! `localhost:5000`.
//!
//! Every test builds its own tiny image (`FROM scratch` + busybox + a unique file) under a
//! unique repository name, so tests run in parallel and never see each other's tags. A test
//! that needs the services fails, loudly, when they are not up. Faults (a registry that
//! fails mid-push, one that must never be reached) are small HTTP servers started here.

use serde_json::{Value, json};
use shipkit_tests::docker::{busybox, docker, repo_digests, require_engine};
use shipkit_tests::ecr::{ecr_password, ecr_repository};
use shipkit_tests::http_server::{HttpServer, Reply, Request, unused_port};
use shipkit_tests::{Cmd, Output, unique};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The settings of the local services; panics (the test fails) when they are not up.
fn services() -> BTreeMap<String, String> {
    let env = shipkit_tests::services();
    for key in [
        "SHIPKIT_ECR_HOST",
        "SHIPKIT_REGISTRY",
        "SHIPKIT_REGISTRY_PASSWORD_FILE",
        "AWS_ENDPOINT_URL_ECR",
    ] {
        assert!(
            env.contains_key(key),
            "target/services.env lacks {key}: run `scripts/services up`"
        );
    }
    for (what, addr) in [
        ("the ECR registry", "127.0.0.1:443"),
        ("the registry localhost:5000", "127.0.0.1:5000"),
        ("moto", "127.0.0.1:5001"),
    ] {
        TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).unwrap_or_else(
            |err| panic!("{what} is not listening on {addr} ({err}): run `scripts/services up`"),
        );
    }
    require_engine();
    busybox();
    env
}

/// A test's world: the services' settings, an empty Docker config, images to clean up.
struct World {
    env: BTreeMap<String, String>,
    docker_config: tempfile::TempDir,
    cleanup: Mutex<Vec<String>>,
}

impl World {
    fn new() -> World {
        World {
            env: services(),
            docker_config: tempfile::tempdir().unwrap(),
            cleanup: Mutex::new(Vec::new()),
        }
    }

    fn ecr_host(&self) -> String {
        self.env["SHIPKIT_ECR_HOST"].clone()
    }

    fn registry(&self) -> String {
        self.env["SHIPKIT_REGISTRY"].clone()
    }

    fn registry_password(&self) -> String {
        std::fs::read_to_string(&self.env["SHIPKIT_REGISTRY_PASSWORD_FILE"])
            .unwrap()
            .trim()
            .to_owned()
    }

    /// img-push with the services' settings (and an empty Docker config unless written).
    fn img_push(&self) -> Cmd {
        let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_img-push"))
            .env(
                "DOCKER_CONFIG",
                self.docker_config.path().display().to_string(),
            )
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL");
        for (key, value) in &self.env {
            cmd = cmd.env(key, value.clone());
        }
        cmd
    }

    /// Writes `auths` for the generic registry into the Docker config, as `docker login` does.
    fn login_in_docker_config(&self) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("shipkit:{}", self.registry_password()));
        let config = json!({"auths": {self.registry(): {"auth": auth}}});
        std::fs::write(
            self.docker_config.path().join("config.json"),
            config.to_string(),
        )
        .unwrap();
    }

    /// Builds the context `dir` as `reference`, removed when the test ends; returns its id.
    fn build_fixture(&self, dir: &Path, reference: &str) -> String {
        self.cleanup.lock().unwrap().push(reference.to_owned());
        shipkit_tests::docker::build_fixture(dir, reference)
    }

    /// Builds a tiny unique image tagged `name:tag`; returns its id.
    fn build(&self, name: &str, tag: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(busybox(), dir.path().join("busybox")).unwrap();
        std::fs::write(dir.path().join("id.txt"), unique("imgp-content")).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY id.txt /id.txt\n",
        )
        .unwrap();
        self.build_fixture(dir.path(), &format!("{name}:{tag}"))
    }

    /// Builds an image with one layer of `size` bytes that no registry has seen (bytes that
    /// do not compress, from /dev/urandom); returns its id.
    fn build_large(&self, name: &str, tag: &str, size: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0u8; size];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").unwrap(),
            &mut bytes,
        )
        .unwrap();
        std::fs::write(dir.path().join("blob"), bytes).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY blob /blob\n",
        )
        .unwrap();
        self.build_fixture(dir.path(), &format!("{name}:{tag}"))
    }

    /// Removes `reference` locally when the test ends.
    fn forget(&self, reference: String) {
        self.cleanup.lock().unwrap().push(reference);
    }

    /// The registry's digest for `repository:tag` (`HEAD` of the manifest), `None` if absent.
    fn registry_digest(&self, repository: &str, tag: &str) -> Option<String> {
        let (host, path) = repository.split_once('/').unwrap();
        let (scheme, user, password) = if host == self.ecr_host() {
            ("https", "AWS".to_owned(), ecr_password())
        } else {
            ("http", "shipkit".to_owned(), self.registry_password())
        };
        let out = Command::new("curl")
            .args([
                "-sS",
                "-I",
                "-u",
                &format!("{user}:{password}"),
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
                &format!("{scheme}://{host}/v2/{path}/manifests/{tag}"),
            ])
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let status_ok = text.lines().next().is_some_and(|l| l.contains(" 200"));
        status_ok
            .then(|| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("docker-content-digest")
                        .then(|| v.trim().to_owned())
                })
            })
            .flatten()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for reference in self.cleanup.lock().unwrap().iter() {
            let _ = docker(&["rmi", "-f", reference]);
        }
    }
}

/// Seconds since the epoch, as `docker events --since` takes them.
fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The images the Engine pushed between `since` and now whose name contains `needle`.
fn pushes_since(since: &str, needle: &str) -> Vec<String> {
    let until = now();
    let out = docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--filter",
        "event=push",
        "--format",
        "{{.Actor.ID}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The `pushed[]` entries of the only image of a successful run.
fn pushed(out: &Output) -> Vec<Value> {
    out.assert_code(0);
    let envelope = out.json();
    let images = envelope["images"].as_array().expect("images[]");
    assert_eq!(images.len(), 1, "{envelope}");
    images[0]["pushed"].as_array().expect("pushed[]").clone()
}

fn envelope_file(dir: &Path, envelope: &Value) -> PathBuf {
    let path = dir.join("envelope.json");
    std::fs::write(&path, envelope.to_string()).unwrap();
    path
}

#[test]
fn pushes_to_ecr_with_the_token_from_moto_and_reports_the_digest_everyone_agrees_on() {
    let world = World::new();
    let name = unique("imgp-ecr");
    let id = world.build(&name, "git-abc1234");
    let envelope = json!({
        "schema": "shipkit/v1",
        "images": [{"name": name, "id": id, "tags": [format!("{name}:git-abc1234")],
                    "labels": {"keep": "me"}}],
        "future_field": {"kept": true}
    });
    let out = world
        .img_push()
        .args([
            "--ecr",
            "--create-repository",
            "--scan-on-push",
            "--tag",
            "latest",
        ])
        .stdin_json(&envelope)
        .run();
    let entries = pushed(&out);
    let repository = format!("{}/{name}", world.ecr_host());
    world.forget(format!("{repository}:git-abc1234"));
    assert_eq!(entries.len(), 2, "{entries:?}");
    let digest = entries[0]["digest"].as_str().unwrap().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    for (entry, tag) in entries.iter().zip(["git-abc1234", "latest"]) {
        assert_eq!(
            entry,
            &json!({
                "repository": repository,
                "tag": tag,
                "digest": digest,
                "reference": format!("{repository}@{digest}"),
                "skipped": false
            })
        );
        assert_eq!(
            world.registry_digest(&repository, tag).as_deref(),
            Some(digest.as_str())
        );
    }
    assert!(
        repo_digests(&id).contains(&format!("{repository}@{digest}")),
        "docker inspect RepoDigests: {:?}",
        repo_digests(&id)
    );
    // Fields img-push does not own pass through.
    let output = out.json();
    assert_eq!(output["future_field"], json!({"kept": true}));
    assert_eq!(output["images"][0]["labels"], json!({"keep": "me"}));
    // The repository was created through the ECR API, as asked.
    let repository = ecr_repository(&name).expect("the repository was created");
    assert_eq!(repository.name, name, "{repository:?}");
    assert!(repository.scan_on_push, "{repository:?}");
    assert_eq!(repository.tag_mutability, "MUTABLE");
}

#[test]
fn a_missing_ecr_repository_is_an_error_naming_it_and_nothing_is_pushed() {
    let world = World::new();
    let name = unique("imgp-missing");
    world.build(&name, "v1");
    let since = now();
    let out = world
        .img_push()
        .args(["--ecr", "--image", &format!("{name}:v1")])
        .run();
    out.assert_code(1);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].contains(&format!("the ECR repository {name} does not exist"))
            && errors[0].contains("--create-repository"),
        "{}",
        errors[0]
    );
    assert_eq!(out.json()["failed"]["exit_code"], json!(1));
    assert!(pushes_since(&since, &name).is_empty());
}

#[test]
fn a_second_push_is_skipped_and_uploads_nothing() {
    let world = World::new();
    world.login_in_docker_config();
    let name = unique("imgp-skip");
    let id = world.build(&name, "v1");
    let registry = format!("{}/team", world.registry());
    let args = [
        "--registry",
        registry.as_str(),
        "--image",
        &format!("{name}:v1"),
        "--tag",
        "v1-extra",
    ];
    let first = pushed(&world.img_push().args(args).run());
    let repository = format!("{registry}/{name}");
    world.forget(format!("{repository}:v1"));
    assert!(
        first.iter().all(|e| e["skipped"] == json!(false)),
        "{first:?}"
    );

    let since = now();
    let second = world.img_push().args(args).run();
    let entries = pushed(&second);
    assert_eq!(entries.len(), 2);
    for (before, after) in first.iter().zip(&entries) {
        assert_eq!(after["skipped"], json!(true), "{after}");
        assert_eq!(after["digest"], before["digest"]);
        assert_eq!(after["reference"], before["reference"]);
    }
    assert!(second.stderr.contains("(skipped)"), "{}", second.stderr);
    assert_eq!(
        pushes_since(&since, &name),
        Vec::<String>::new(),
        "the Engine pushed again"
    );
    let digest = entries[0]["digest"].as_str().unwrap();
    assert!(repo_digests(&id).contains(&format!("{repository}@{digest}")));
}

#[test]
fn a_re_push_of_img_builds_envelope_needs_no_engine_and_a_push_still_does() {
    let world = World::new();
    world.login_in_docker_config();
    let name = unique("imgp-noengine");
    let id = world.build(&name, "v1");
    let other_id = world.build(&format!("{name}-other"), "v1");
    let registry = world.registry();
    let repository = format!("{registry}/{name}");
    let dir = tempfile::tempdir().unwrap();
    // As img-build writes it: the image id and its local tag.
    let envelope = |id: &str| {
        let path = dir.path().join(format!("{id}.json"));
        let value = json!({"images": [{"name": name, "id": id, "tags": [format!("{name}:v1")]}]});
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    };
    let input = envelope(&id);
    let no_engine = "unix:///nonexistent/docker.sock";
    let push = |docker_host: Option<&str>, input: &str, extra: &[&str]| {
        let mut cmd = world.img_push();
        if let Some(host) = docker_host {
            cmd = cmd.env("DOCKER_HOST", host);
        }
        cmd.args(["--registry", &registry, "--input", input])
            .args(extra)
            .run()
    };
    let first = pushed(&push(None, &input, &[]));
    world.forget(format!("{repository}:v1"));
    let digest = first[0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(first[0]["skipped"], json!(false));

    // The tag is at a manifest whose config is the id: skipped, the registry's digest, and
    // the Engine never asked (it is out of reach).
    let since = now();
    for extra in [&[][..], &["--dry-run"][..]] {
        let again = pushed(&push(Some(no_engine), &input, extra));
        assert_eq!(again[0]["skipped"], json!(true), "{extra:?}");
        assert_eq!(again[0]["digest"], json!(digest));
        assert_eq!(
            again[0]["reference"],
            json!(format!("{repository}@{digest}"))
        );
    }
    // A tag to push does need the Engine, and nothing was pushed without it.
    let out = push(Some(no_engine), &input, &["--tag", "v2"]);
    out.assert_code(1);
    assert!(out.stderr.contains(no_engine), "{}", out.stderr);
    assert_eq!(world.registry_digest(&repository, "v2"), None);
    // Another image under an immutable tag: a conflict, found before pushing.
    let out = push(None, &envelope(&other_id), &["--immutable-tags"]);
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    for needle in [
        format!("{repository}:v1 is immutable"),
        digest.clone(),
        other_id,
    ] {
        assert!(error.contains(&needle), "{error:?} lacks {needle}");
    }

    // The image is gone locally: the registry holds exactly it, so the re-push is still a
    // skip; a tag it lacks is bad input (no local image), found before anything changes.
    for reference in [format!("{name}:v1"), format!("{repository}:v1")] {
        assert!(docker(&["rmi", "-f", &reference]).status.success());
    }
    assert!(!docker(&["image", "inspect", &id]).status.success());
    let gone = pushed(&push(None, &input, &[]));
    assert_eq!(gone[0]["skipped"], json!(true));
    assert_eq!(gone[0]["digest"], json!(digest));
    let out = push(None, &input, &["--tag", "v2"]);
    out.assert_usage_error("no local image");
    assert_eq!(out.json()["failed"]["exit_code"], json!(2));
    assert_eq!(world.registry_digest(&repository, "v2"), None);
    assert!(pushes_since(&since, &name).is_empty());
}

#[test]
fn credentials_come_from_a_credential_helper_named_in_the_docker_config() {
    let world = World::new();
    let name = unique("imgp-helper");
    world.build(&name, "v1");
    // A helper as `docker login` would use: `get` reads the server, answers JSON.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-shipkit-test");
    let asked = bin.path().join("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {asked}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"shipkit\",\"Secret\":\"%s\"}}' \"$(cat {asked})\" '{}'\n",
            world.registry_password(),
            asked = asked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        world.docker_config.path().join("config.json"),
        json!({"credHelpers": {world.registry(): "shipkit-test"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = world
        .img_push()
        .env("PATH", path)
        .args([
            "--registry",
            &world.registry(),
            "--image",
            &format!("{name}:v1"),
        ])
        .run();
    let entries = pushed(&out);
    world.forget(format!("{}/{name}:v1", world.registry()));
    assert_eq!(entries[0]["skipped"], json!(false));
    assert_eq!(std::fs::read_to_string(asked).unwrap(), world.registry());
    assert!(!out.stderr.contains(&world.registry_password()));
}

#[test]
fn promote_retags_in_the_registry_without_the_docker_engine() {
    let world = World::new();
    let name = unique("imgp-promote");
    let commit = "3f2a1c9d4b5e6f708192a3b4c5d6e7f801234567";
    let id = world.build(&name, "git-3f2a1c9");
    let dir = tempfile::tempdir().unwrap();
    let input = envelope_file(
        dir.path(),
        &json!({"images": [{"name": name, "id": id, "tags": [format!("{name}:git-3f2a1c9")]}]}),
    );
    let registry = world.registry();
    let password = world.registry_password();
    let first = world
        .img_push()
        .args([
            "--registry",
            &registry,
            "--username",
            "shipkit",
            "--password-stdin",
        ])
        .args(["--input", &input.display().to_string()])
        .stdin(format!("{password}\n"))
        .run();
    let source_digest = pushed(&first)[0]["digest"].as_str().unwrap().to_owned();
    world.forget(format!("{registry}/{name}:git-3f2a1c9"));

    // Production: the release's envelope, no images, the Engine out of reach.
    let release = envelope_file(
        dir.path(),
        &json!({"git": {"commit": commit}, "release": {"version": "1.2.3", "tag": "v1.2.3"}}),
    );
    let promote = || {
        world
            .img_push()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["--registry", &registry, "--promote", "--name", &name])
            .args(["--username", "shipkit", "--password-stdin"])
            .args(["--input", &release.display().to_string()])
            .stdin(password.clone())
            .run()
    };
    let out = promote();
    let entries = pushed(&out);
    let repository = format!("{registry}/{name}");
    assert_eq!(
        entries,
        [json!({
            "repository": repository,
            "tag": "v1.2.3",
            "digest": source_digest,
            "reference": format!("{repository}@{source_digest}"),
            "skipped": false
        })]
    );
    assert_eq!(out.json()["release"]["tag"], json!("v1.2.3"));
    assert_eq!(
        world.registry_digest(&repository, "v1.2.3").as_deref(),
        Some(source_digest.as_str())
    );
    // Once more: already there.
    let again = pushed(&promote());
    assert_eq!(again[0]["skipped"], json!(true));

    // A push does need the Engine, and says where it looked.
    let out = world
        .img_push()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "--registry",
            &registry,
            "--image",
            &format!("{name}:git-3f2a1c9"),
        ])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("unix:///nonexistent/docker.sock"),
        "{}",
        out.stderr
    );
}

#[test]
fn promote_of_a_tag_that_does_not_exist_fails_naming_it() {
    let world = World::new();
    world.login_in_docker_config();
    let name = unique("imgp-nosource");
    let out = world
        .img_push()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "--registry",
            &world.registry(),
            "--promote",
            "--name",
            &name,
        ])
        .args(["--from-tag", "git-0000000", "--to-tag", "v9.9.9"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "{}/{name}:git-0000000 does not exist",
            world.registry()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn an_immutable_tag_at_another_image_stops_the_push_naming_both_digests() {
    let world = World::new();
    let name = unique("imgp-immutable");
    let first_id = world.build(&name, "v1");
    let repository = format!("{}/{name}", world.ecr_host());
    let out = world
        .img_push()
        .args(["--ecr", "--create-repository", "--immutable-tags"])
        .args(["--image", &format!("{name}:v1")])
        .run();
    let first_digest = pushed(&out)[0]["digest"].as_str().unwrap().to_owned();
    world.forget(format!("{repository}:v1"));
    assert_eq!(
        ecr_repository(&name).map(|r| r.tag_mutability).as_deref(),
        Ok("IMMUTABLE")
    );
    // The same image again, naming the ECR repository itself (account and region from the
    // host name): immutable, same digest = success.
    let again = world
        .img_push()
        .args([
            "--repository",
            &repository,
            "--image",
            &format!("{name}:v1"),
        ])
        .run();
    assert_eq!(pushed(&again)[0]["skipped"], json!(true));

    // Another image under the same tag.
    let second_id = world.build(&name, "v1");
    assert_ne!(first_id, second_id);
    let since = now();
    let out = world
        .img_push()
        .args(["--ecr", "--image", &format!("{name}:v1")])
        .run();
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    for needle in [
        format!("{repository}:v1 is immutable"),
        first_digest.clone(),
        second_id.clone(),
    ] {
        assert!(error.contains(&needle), "{error:?} lacks {needle}");
    }
    assert!(pushes_since(&since, &name).is_empty());
    assert_eq!(
        world.registry_digest(&repository, "v1").as_deref(),
        Some(first_digest.as_str())
    );

    // Promotion checks immutable tags the same way: the second image goes in as v1-b, then
    // v1 → prod works, and v1-b → prod is refused, naming both digests.
    let out = world
        .img_push()
        .args(["--ecr", "--image", &format!("{name}:v1"), "--tag", "v1-b"])
        .args(["--name", "unused"]) // ignored with --image
        .run();
    out.assert_code(1); // v1 still conflicts: nothing pushed, v1-b included
    let second = world
        .img_push()
        .args([
            "--repository",
            &repository,
            "--image",
            &second_id,
            "--tag",
            "v1-b",
        ])
        .run();
    let second_digest = pushed(&second)[0]["digest"].as_str().unwrap().to_owned();
    world.forget(format!("{repository}:v1-b"));
    let promote = |from: &str| {
        world
            .img_push()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["--ecr", "--promote", "--name", &name])
            .args(["--from-tag", from, "--to-tag", "prod"])
            .run()
    };
    assert_eq!(pushed(&promote("v1"))[0]["digest"], json!(first_digest));
    let out = promote("v1-b");
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    for needle in [
        format!("{repository}:prod is immutable"),
        first_digest.clone(),
        second_digest.clone(),
    ] {
        assert!(error.contains(&needle), "{error:?} lacks {needle}");
    }
}

#[test]
fn a_wrong_password_fails_and_appears_nowhere() {
    let world = World::new();
    let name = unique("imgp-wrongpw");
    let id = world.build(&name, "v1");
    let dir = tempfile::tempdir().unwrap();
    let input = envelope_file(
        dir.path(),
        &json!({"images": [{"name": name, "id": id, "tags": [format!("{name}:v1")]}]}),
    );
    let password = format!("wrong-{}-secret", unique("imgp-pw"));
    let since = now();
    for extra in [&[][..], &["-vv"][..]] {
        let out = world
            .img_push()
            .args([
                "--registry",
                &world.registry(),
                "--username",
                "shipkit",
                "--password-stdin",
            ])
            .args(["--input", &input.display().to_string()])
            .args(extra)
            .stdin(password.clone())
            .run();
        out.assert_code(1);
        assert!(
            out.stderr
                .contains("refused the login as shipkit (401 Unauthorized)"),
            "{}",
            out.stderr
        );
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains(&password),
                "the password is on {stream}:\n{text}"
            );
        }
    }
    assert!(pushes_since(&since, &name).is_empty());
}

#[test]
fn under_actions_the_password_is_masked_and_the_digest_is_an_output() {
    let world = World::new();
    let name = unique("imgp-actions");
    let id = world.build(&name, "v1");
    let dir = tempfile::tempdir().unwrap();
    let input = envelope_file(
        dir.path(),
        &json!({"images": [{"name": name, "id": id, "tags": [format!("{name}:v1")]}]}),
    );
    let outputs = dir.path().join("outputs");
    let summary = dir.path().join("summary.md");
    let password = world.registry_password();
    let out = world
        .img_push()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", outputs.display().to_string())
        .env("GITHUB_STEP_SUMMARY", summary.display().to_string())
        .args([
            "--registry",
            &world.registry(),
            "--username",
            "shipkit",
            "--password-stdin",
        ])
        .args(["--input", &input.display().to_string(), "-vv"])
        .stdin(password.clone())
        .run();
    let entries = pushed(&out);
    world.forget(format!("{}/{name}:v1", world.registry()));
    let digest = entries[0]["digest"].as_str().unwrap();
    // The password is only ever written in the line that masks it.
    let lines_with_password: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(&password))
        .collect();
    assert_eq!(lines_with_password, [format!("::add-mask::{password}")]);
    let outputs = std::fs::read_to_string(outputs).unwrap();
    assert!(outputs.contains(&format!("digest={digest}\n")), "{outputs}");
    assert!(outputs.contains(&format!("reference={}/{name}@{digest}\n", world.registry())));
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("| pushed |"), "{summary}");
    assert!(!outputs.contains(&password) && !summary.contains(&password));
}

#[test]
fn several_images_are_pushed_concurrently_with_their_own_digests() {
    let world = World::new();
    world.login_in_docker_config();
    let names: Vec<String> = (0..3).map(|i| unique(&format!("imgp-multi{i}"))).collect();
    let images: Vec<Value> = names
        .iter()
        .map(|name| {
            let id = world.build(name, "v1");
            json!({"name": name, "id": id, "tags": [format!("{name}:v1")]})
        })
        .collect();
    let registry = format!("{}/multi", world.registry());
    let out = world
        .img_push()
        .args(["--registry", &registry, "--jobs", "3"])
        .stdin_json(&json!({"images": images}))
        .run();
    out.assert_code(0);
    let envelope = out.json();
    for (image, name) in envelope["images"].as_array().unwrap().iter().zip(&names) {
        world.forget(format!("{registry}/{name}:v1"));
        let entry = &image["pushed"][0];
        assert_eq!(entry["repository"], json!(format!("{registry}/{name}")));
        assert_eq!(
            world.registry_digest(&format!("{registry}/{name}"), "v1"),
            entry["digest"].as_str().map(str::to_owned)
        );
    }
}

#[test]
fn in_ci_the_upload_is_told_in_plain_lines_with_a_percentage() {
    let world = World::new();
    world.login_in_docker_config();
    let name = unique("imgp-progress");
    world.build_large(&name, "v1", 8 << 20);
    let registry = format!("{}/progress", world.registry());
    // stderr is a pipe here, as in CI: plain lines, no bars.
    let out = world
        .img_push()
        .args(["--registry", &registry, "--image", &format!("{name}:v1")])
        .run();
    out.assert_code(0);
    world.forget(format!("{registry}/{name}:v1"));
    let target = format!("{registry}/{name}:v1");
    let progress: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{name}: {target}: ")) && l.contains("% ("))
        .collect();
    assert!(!progress.is_empty(), "no progress line in:\n{}", out.stderr);
    // `NN% (SENT of TOTAL), D/N layers done[, RATE/s, about T left]`: the layer's size
    // is the 8 MiB of the blob (and a little tar framing).
    let first = progress[0].rsplit(": ").next().unwrap();
    let percent: u64 = first.split('%').next().unwrap().parse().expect(first);
    assert!(percent <= 100, "{first}");
    assert!(first.contains(" of 8.4 MB), "), "{first}");
    assert!(first.contains("/1 layers done"), "{first}");
    assert!(
        out.stderr.contains("sent; layers: 1 pushed)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\r'), "no bar drawing off a terminal");
}

#[test]
fn dry_run_resolves_skips_and_pushes_nothing() {
    let world = World::new();
    world.login_in_docker_config();
    let name = unique("imgp-dry");
    world.build(&name, "v1");
    let registry = world.registry();
    let since = now();
    let out = world
        .img_push()
        .args([
            "--registry",
            &registry,
            "--image",
            &format!("{name}:v1"),
            "--dry-run",
        ])
        .run();
    let entries = pushed(&out);
    assert_eq!(entries[0]["dry_run"], json!(true));
    assert_eq!(entries[0]["skipped"], json!(false));
    assert!(out.stderr.contains("would push"), "{}", out.stderr);
    assert!(pushes_since(&since, &name).is_empty());
    assert_eq!(
        world.registry_digest(&format!("{registry}/{name}"), "v1"),
        None
    );
    // The same, configured entirely through the environment, with two extra tags.
    let by_env = world
        .img_push()
        .env("IMG_PUSH_REGISTRY", registry.clone())
        .env("IMG_PUSH_IMAGE", format!("{name}:v1"))
        .env("IMG_PUSH_TAG", "a,b")
        .env("IMG_PUSH_DRY_RUN", "1")
        .env("IMG_PUSH_PROMOTE", "false")
        .run();
    let tags: Vec<Value> = pushed(&by_env).iter().map(|e| e["tag"].clone()).collect();
    assert_eq!(tags, [json!("v1"), json!("a"), json!("b")]);
    assert!(pushes_since(&since, &name).is_empty());

    // ECR: a repository that would be created is reported, not created.
    let out = world
        .img_push()
        .args([
            "--ecr",
            "--create-repository",
            "--image",
            &format!("{name}:v1"),
            "--dry-run",
        ])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("would create the ECR repository"),
        "{}",
        out.stderr
    );
    assert_eq!(
        ecr_repository(&name),
        Err("RepositoryNotFoundException".to_owned())
    );
}

/// A registry on loopback that takes the layers, then fails the manifest with 503: a
/// registry going down in the middle of a push (the Engine does not retry a manifest, so
/// retries are img-push's own). Counts manifest attempts.
struct FailingRegistry {
    server: HttpServer,
    addr: String,
    manifest_puts: Arc<AtomicU32>,
}

/// What the failing registry holds: uploads in progress (bytes so far) and blobs by digest.
#[derive(Default)]
struct Blobs {
    uploads: BTreeMap<String, u64>,
    blobs: BTreeMap<String, u64>,
}

impl FailingRegistry {
    fn start() -> FailingRegistry {
        let manifest_puts = Arc::new(AtomicU32::new(0));
        let blobs = Mutex::new(Blobs::default());
        let puts = manifest_puts.clone();
        // One request per connection, no Content-Type: as the registry answers.
        let server = HttpServer::serving(move |request| {
            let mut blobs = blobs.lock().unwrap();
            answer_failing(request, &mut blobs, &puts)
                .header("Docker-Distribution-Api-Version", "registry/2.0")
                .content_type(None)
                .close()
        });
        FailingRegistry {
            addr: server.addr().to_string(),
            server,
            manifest_puts,
        }
    }
}

/// The failing registry's answer to one request of the registry API.
fn answer_failing(request: &Request, blobs: &mut Blobs, manifest_puts: &AtomicU32) -> Reply {
    let received = request.body.len() as u64;
    match (request.method.as_str(), request.path()) {
        (_, "/v2/" | "/v2") => Reply::ok("{}"),
        ("POST", p) if p.ends_with("/blobs/uploads/") => {
            let uuid = format!("u{}", blobs.uploads.len() + blobs.blobs.len());
            blobs.uploads.insert(uuid.clone(), 0);
            Reply::new(202, "")
                .header("Location", format!("{p}{uuid}"))
                .header("Docker-Upload-UUID", &uuid)
                .header("Range", "0-0")
        }
        ("PATCH", p) if p.contains("/blobs/uploads/") => {
            let uuid = p.rsplit('/').next().unwrap().to_owned();
            let size = blobs.uploads.entry(uuid.clone()).or_default();
            *size += received;
            Reply::new(202, "")
                .header("Location", p)
                .header("Docker-Upload-UUID", &uuid)
                .header("Range", format!("0-{}", size.saturating_sub(1)))
        }
        ("PUT", p) if p.contains("/blobs/uploads/") => {
            let uuid = p.rsplit('/').next().unwrap().to_owned();
            let size = blobs.uploads.remove(&uuid).unwrap_or(0) + received;
            let digest = request
                .query_param("digest")
                .unwrap_or("")
                .replace("%3A", ":");
            blobs.blobs.insert(digest.clone(), size);
            Reply::new(201, "")
                .header("Docker-Content-Digest", &digest)
                .header("Location", format!("/v2/blobs/{digest}"))
        }
        ("HEAD" | "GET", p) if p.contains("/blobs/") => {
            let digest = p.rsplit('/').next().unwrap();
            match blobs.blobs.get(digest) {
                // A blob's HEAD carries its size as Content-Length, without a body.
                Some(size) => Reply::new(200, "")
                    .header("Docker-Content-Digest", digest)
                    .content_length(*size),
                None => Reply::new(404, ""),
            }
        }
        ("PUT", p) if p.contains("/manifests/") => {
            manifest_puts.fetch_add(1, Ordering::SeqCst);
            Reply::new(503, "registry is going down")
        }
        _ => Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        ),
    }
}

#[test]
fn a_registry_failing_mid_push_is_retried_then_reported() {
    let world = World::new();
    let name = unique("imgp-down");
    world.build(&name, "v1");
    let fake = FailingRegistry::start();
    let started = std::time::Instant::now();
    let out = world
        .img_push()
        .args(["--registry", &fake.addr, "--image", &format!("{name}:v1")])
        .args(["--retries", "2", "--retry-delay", "100ms"])
        .run();
    world.forget(format!("{}/{name}:v1", fake.addr));
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(&format!("pushing {}/{name}:v1", fake.addr))
            && error.contains("503")
            && error.contains("gave up after 3 attempts"),
        "{error}\nrequests: {:?}",
        fake.server.request_log()
    );
    assert_eq!(
        out.stderr.matches("retry ").count(),
        2,
        "two retries announced:\n{}",
        out.stderr
    );
    assert_eq!(
        fake.manifest_puts.load(Ordering::SeqCst),
        3,
        "{:?}",
        fake.server.request_log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_registry_that_refuses_connections_is_retried_then_reported() {
    let world = World::new();
    let name = unique("imgp-refused");
    world.build(&name, "v1");
    // A port nobody listens on.
    let registry = format!("127.0.0.1:{}", unused_port());
    let out = world
        .img_push()
        .args(["--registry", &registry, "--image", &format!("{name}:v1")])
        .args(["--retries", "2", "--retry-delay", "50ms"])
        .run();
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("refused") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
}

#[test]
fn bad_input_exits_2_before_anything_is_sent() {
    let world = World::new();
    let name = unique("imgp-bad");
    let id = world.build(&name, "v1");
    // A registry that must never be asked anything: counts connections.
    let untouchable = HttpServer::hanging_up();
    let registry = untouchable.addr().to_string();
    let two_images = json!({"images": [
        {"name": name, "id": id, "tags": [format!("{name}:v1")]},
        {"name": "other", "id": id, "tags": ["other:v1"]}
    ]});
    let dir = tempfile::tempdir().unwrap();
    let input = envelope_file(dir.path(), &json!({}));
    let repository = format!("{registry}/team/app");
    let cases: Vec<(Vec<String>, Option<Value>, &str)> = vec![
        (
            vec!["--registry".into(), registry.clone()],
            None,
            "no images to push",
        ),
        (
            vec!["--registry".into(), registry.clone()],
            Some(json!({"images": []})),
            "no images to push",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--image".into(),
                "Bad/Ref:x".into(),
            ],
            None,
            "is not an image reference",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--image".into(),
                format!("{name}:v1"),
                "--tag=-bad".into(),
            ],
            None,
            "invalid tag",
        ),
        (
            vec!["--repository".into(), repository.clone()],
            Some(two_images.clone()),
            "--repository names one repository",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--image".into(),
                format!("{name}-absent:v1"),
            ],
            None,
            "no local image",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--username".into(),
                "u".into(),
                "--password-stdin".into(),
            ],
            None,
            "pass it with --input FILE",
        ),
        (
            vec!["--ecr".into(), "--registry".into(), registry.clone()],
            None,
            "cannot be used with",
        ),
        (
            vec!["--image".into(), format!("{name}:v1")],
            None,
            "required arguments were not provided",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--promote".into(),
                "--name".into(),
                "x".into(),
                "--from-tag".into(),
                "a".into(),
            ],
            Some(json!({})),
            "--promote needs --to-tag",
        ),
        (
            vec![
                "--registry".into(),
                format!("{registry}/Upper"),
                "--image".into(),
                format!("{name}:v1"),
            ],
            None,
            "invalid repository name",
        ),
        (
            vec![
                "--registry".into(),
                registry.clone(),
                "--username".into(),
                "u".into(),
                "--password-stdin".into(),
                "--input".into(),
                input.display().to_string(),
            ],
            None,
            "--password-stdin: stdin was empty",
        ),
    ];
    for (args, stdin, needle) in cases {
        let mut cmd = world.img_push().args(&args);
        if let Some(stdin) = &stdin {
            cmd = cmd.stdin_json(stdin);
        }
        let out = cmd.run();
        out.assert_usage_error(needle);
        assert_eq!(out.json()["failed"]["exit_code"], json!(2), "{args:?}");
    }
    // Without a region, --ecr is a usage error too.
    let out = world
        .img_push()
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .args(["--ecr", "--image", &format!("{name}:v1")])
        .run();
    out.assert_usage_error("no AWS region configured");
    assert_eq!(untouchable.connections(), 0);
}
