//! release-tag as a user runs it: scripted histories in temporary git repositories, the
//! envelope read as data, and the tags checked in git itself.

use serde_json::{Value, json};
use shipkit_tests::{Cmd, Output};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary repository with a scripted history, isolated from the machine's git
/// configuration (no global or system config, no signing, a fixed identity and clock).
struct Repo {
    dir: tempfile::TempDir,
    /// Commits made so far, to give each a distinct, increasing date.
    clock: std::cell::Cell<u64>,
}

/// Environment for every git process (the test's and the tool's).
fn git_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_AUTHOR_NAME", "Ada Author"),
        ("GIT_AUTHOR_EMAIL", "ada@example.com"),
        ("GIT_COMMITTER_NAME", "Ada Author"),
        ("GIT_COMMITTER_EMAIL", "ada@example.com"),
        ("GIT_TERMINAL_PROMPT", "0"),
    ]
}

fn run_git(dir: &Path, args: &[&str], date: Option<&str>) -> String {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Ada Author",
            "-c",
            "user.email=ada@example.com",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .envs(git_env());
    if let Some(date) = date {
        command
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date);
    }
    let output = command.output().expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        run_git(dir.path(), &["init", "-q", "-b", "main"], None);
        // Local config, read by the tool's own git calls too.
        for (key, value) in [
            ("user.name", "Ada Author"),
            ("user.email", "ada@example.com"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ] {
            run_git(dir.path(), &["config", key, value], None);
        }
        Repo {
            dir,
            clock: std::cell::Cell::new(0),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        run_git(self.path(), args, None)
    }

    /// Commits a change to `file` with `message`; returns the commit id.
    fn commit_file(&self, file: &str, message: &str) -> String {
        let n = self.clock.get() + 1;
        self.clock.set(n);
        let path = self.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("change {n}\n")).unwrap();
        self.git(&["add", file]);
        let date = format!("2026-03-{:02}T12:{:02}:00Z", 1 + n / 60, n % 60);
        run_git(self.path(), &["commit", "-q", "-m", message], Some(&date));
        self.head()
    }

    fn commit(&self, message: &str) -> String {
        self.commit_file("file.txt", message)
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// An annotated tag on HEAD, as a release made by hand would be.
    fn tag(&self, name: &str) {
        self.git(&["tag", "-a", "-m", name, name]);
    }

    fn tags(&self) -> Vec<String> {
        self.git(&["tag", "-l"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The commit a tag points at.
    fn tag_commit(&self, name: &str) -> String {
        self.git(&["rev-parse", &format!("refs/tags/{name}^{{commit}}")])
    }

    /// An annotated tag's message.
    fn tag_message(&self, name: &str) -> String {
        self.git(&["tag", "-l", "--format=%(contents)", name])
    }

    fn release_tag(&self) -> Cmd {
        let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_release-tag")).current_dir(self.path());
        for (key, value) in git_env() {
            cmd = cmd.env(key, value);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.release_tag().args(args).run()
    }
}

/// Runs and expects success; returns the envelope's `release`.
fn released(repo: &Repo, args: &[&str]) -> Value {
    let out = repo.run(args);
    out.assert_code(0);
    let envelope = out.json();
    assert_eq!(envelope["failed"], Value::Null, "{}", out.stderr);
    envelope["release"].clone()
}

/// `(type, scope, subject, breaking)` of each change, newest first.
fn change_list(release: &Value) -> Vec<(String, Option<String>, String, bool)> {
    release["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_owned(),
                c["scope"].as_str().map(str::to_owned),
                c["subject"].as_str().unwrap().to_owned(),
                c["breaking"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn change(
    kind: &str,
    scope: Option<&str>,
    subject: &str,
    breaking: bool,
) -> (String, Option<String>, String, bool) {
    (kind.into(), scope.map(Into::into), subject.into(), breaking)
}

#[test]
fn feat_fix_and_chore_since_the_last_tag_make_a_minor_release() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.3.2");
    let feat = repo.commit("feat(api): add /v2/users");
    repo.commit("fix: crash on empty body");
    repo.commit("chore: bump dependencies");
    let head = repo.head();

    let release = released(&repo, &[]);
    assert_eq!(release["version"], "1.4.0");
    assert_eq!(release["tag"], "v1.4.0");
    assert_eq!(release["previous_tag"], "v1.3.2");
    assert_eq!(release["bump"], "minor");
    assert_eq!(release["commit"], head.as_str());
    assert_eq!(release["pushed"], false);
    assert_eq!(
        change_list(&release),
        vec![
            change("chore", None, "bump dependencies", false),
            change("fix", None, "crash on empty body", false),
            change("feat", Some("api"), "add /v2/users", false),
        ]
    );
    assert_eq!(release["changes"][2]["commit"], feat.as_str());

    // The tag is annotated, on HEAD, and its message is the grouped changelog.
    assert_eq!(repo.tag_commit("v1.4.0"), head);
    assert_eq!(repo.git(&["cat-file", "-t", "v1.4.0"]), "tag");
    assert_eq!(
        repo.tag_message("v1.4.0"),
        format!(
            "v1.4.0\n\n### Features\n\n- **api:** add /v2/users ({})\n\n\
             ### Bug fixes\n\n- crash on empty body ({})\n\n\
             ### Other changes\n\n- bump dependencies ({})",
            &feat[..7],
            &repo.git(&["rev-parse", "--short=7", "HEAD~1"]),
            &head[..7]
        )
    );
}

#[test]
fn fix_and_perf_make_a_patch_release() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v2.0.0");
    repo.commit("perf(db): batch inserts");
    repo.commit("fix: typo");
    let release = released(&repo, &[]);
    assert_eq!(
        (release["version"].as_str(), release["bump"].as_str()),
        (Some("2.0.1"), Some("patch"))
    );
    assert!(repo.tags().contains(&"v2.0.1".to_owned()));
}

#[test]
fn nothing_releasable_tags_nothing_and_require_change_fails() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("chore: tidy");
    repo.commit("docs(readme): explain");
    repo.commit("Update the logo");

    let release = released(&repo, &[]);
    assert_eq!(release["bump"], "none");
    assert_eq!(release["version"], "");
    assert_eq!(release["tag"], "");
    assert_eq!(release["previous_tag"], "v1.0.0");
    assert_eq!(
        change_list(&release),
        vec![
            change("other", None, "Update the logo", false),
            change("docs", Some("readme"), "explain", false),
            change("chore", None, "tidy", false),
        ]
    );
    assert_eq!(repo.tags(), ["v1.0.0"]);

    let out = repo.run(&["--require-change"]);
    out.assert_code(1);
    let envelope = out.json();
    assert_eq!(envelope["failed"]["exit_code"], 1);
    assert!(
        envelope["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("nothing releasable since v1.0.0")
    );
    assert_eq!(envelope["release"]["bump"], "none");
    assert_eq!(repo.tags(), ["v1.0.0"]);
}

#[test]
fn bang_and_both_footers_make_a_major_release() {
    for message in [
        "feat(api)!: drop /v1",
        "refactor: move config\n\nBREAKING CHANGE: config.yaml moved to etc/",
        "fix: strict parsing\n\nRejects more input.\n\nBREAKING-CHANGE: lenient mode is gone",
    ] {
        let repo = Repo::new();
        repo.commit("feat: first");
        repo.tag("v1.3.2");
        repo.commit("feat: unrelated");
        repo.commit(message);
        let release = released(&repo, &[]);
        assert_eq!(release["version"], "2.0.0", "{message}");
        assert_eq!(release["bump"], "major", "{message}");
        assert_eq!(release["changes"][0]["breaking"], true, "{message}");
        assert!(
            repo.tag_message("v2.0.0")
                .contains("### ⚠ Breaking changes"),
            "{message}"
        );
    }
}

#[test]
fn below_one_breaking_changes_bump_minor_unless_major_on_zero() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v0.3.4");
    repo.commit("feat!: new wire format");
    let release = released(&repo, &["--dry-run"]);
    assert_eq!(
        (release["version"].as_str(), release["bump"].as_str()),
        (Some("0.4.0"), Some("minor"))
    );
    let release = released(&repo, &["--major-on-zero", "--dry-run"]);
    assert_eq!(
        (release["version"].as_str(), release["bump"].as_str()),
        (Some("1.0.0"), Some("major"))
    );
    // Also from the environment, as in an Actions step.
    let out = repo
        .release_tag()
        .env("RELEASE_TAG_MAJOR_ON_ZERO", "true")
        .args(["--dry-run"])
        .run();
    assert_eq!(out.json()["release"]["version"], "1.0.0");
    let release = released(&repo, &[]);
    assert_eq!(release["tag"], "v0.4.0");
}

#[test]
fn a_revert_cancels_the_commit_it_reverts() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    let feat = repo.commit("feat(ui): dark mode");
    repo.git(&["revert", "--no-edit", &feat]);
    let release = released(&repo, &[]);
    assert_eq!(release["bump"], "none");
    assert_eq!(
        change_list(&release),
        vec![
            change("revert", None, "feat(ui): dark mode", false),
            change("feat", Some("ui"), "dark mode", false),
        ]
    );
    assert_eq!(repo.tags(), ["v1.0.0"]);

    // Reverting something already released is a patch.
    let repo = Repo::new();
    let old = repo.commit("feat: old feature");
    repo.tag("v1.0.0");
    repo.git(&["revert", "--no-edit", &old]);
    let release = released(&repo, &[]);
    assert_eq!(
        (release["version"].as_str(), release["bump"].as_str()),
        (Some("1.0.1"), Some("patch"))
    );
    assert!(
        repo.tag_message("v1.0.1")
            .contains("### Reverts\n\n- feat: old feature")
    );
}

#[test]
fn merged_branches_count_their_commits_and_pull_request_titles() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.git(&["checkout", "-q", "-b", "topic"]);
    repo.commit_file("a.txt", "fix(auth): token refresh");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_file("b.txt", "chore: main moves on");
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'topic'",
        "topic",
    ]);
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.commit_file("c.txt", "wip");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #12 from org/pr\n\nfeat(ui): new navigation",
        "pr",
    ]);

    let release = released(&repo, &[]);
    assert_eq!(release["version"], "1.1.0");
    let changes = change_list(&release);
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert_eq!(
        changes[0],
        change("feat", Some("ui"), "new navigation", false)
    );
    assert!(changes.contains(&change("fix", Some("auth"), "token refresh", false)));
    assert!(changes.contains(&change("other", None, "Merge branch 'topic'", false)));
    // The plain merge is in the envelope but not in the changelog.
    let message = repo.tag_message("v1.1.0");
    assert!(!message.contains("Merge branch"), "{message}");
    assert!(message.contains("- **ui:** new navigation"), "{message}");
}

#[test]
fn release_candidates_count_up_then_graduate() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.3.2");
    repo.commit("feat: search");

    let rc1 = released(&repo, &["--pre", "rc"]);
    assert_eq!(
        (rc1["tag"].as_str(), rc1["bump"].as_str()),
        (Some("v1.4.0-rc.1"), Some("minor"))
    );
    assert_eq!(rc1["previous_tag"], "v1.3.2");

    repo.commit("fix: search paging");
    let rc2 = released(&repo, &["--pre", "rc"]);
    assert_eq!(rc2["tag"], "v1.4.0-rc.2");
    assert_eq!(rc2["previous_tag"], "v1.4.0-rc.1");
    assert_eq!(
        change_list(&rc2),
        vec![change("fix", None, "search paging", false)]
    );

    // Nothing new since the last candidate: no new candidate.
    repo.commit("chore: polish");
    let none = released(&repo, &["--pre", "rc"]);
    assert_eq!(none["bump"], "none");

    // Numbering follows SemVer precedence: after rc.10 and rc.11 comes rc.12, not rc.3.
    repo.git(&["tag", "v1.4.0-rc.10", "HEAD~1"]);
    repo.git(&["tag", "v1.4.0-rc.11", "HEAD~1"]);
    repo.commit("fix: one more");
    let rc12 = released(&repo, &["--pre", "rc"]);
    assert_eq!(rc12["tag"], "v1.4.0-rc.12");
    assert_eq!(rc12["previous_tag"], "v1.4.0-rc.11");

    // Graduation, on the very commit of the last candidate; the release lists everything
    // since the last stable release.
    let head = repo.head();
    let final_release = released(&repo, &[]);
    assert_eq!(
        (
            final_release["tag"].as_str(),
            final_release["bump"].as_str()
        ),
        (Some("v1.4.0"), Some("minor"))
    );
    assert_eq!(final_release["previous_tag"], "v1.3.2");
    assert_eq!(change_list(&final_release).len(), 4);
    assert_eq!(repo.tag_commit("v1.4.0"), head);

    // Pre-release tags are ignored for the next stable release.
    repo.commit("fix: after release");
    let next = released(&repo, &["--dry-run"]);
    assert_eq!(
        (next["version"].as_str(), next["previous_tag"].as_str()),
        (Some("1.4.1"), Some("v1.4.0"))
    );
}

#[test]
fn prefixes_live_side_by_side_and_path_limits_the_commits() {
    let repo = Repo::new();
    repo.commit_file("services/api/main.rs", "feat(api): first");
    repo.commit_file("services/web/app.js", "feat(web): first");
    repo.tag("api-v1.0.0");
    repo.tag("web-v2.3.0");
    repo.tag("v0.9.0");
    repo.commit_file("services/api/main.rs", "fix(api): timeout");
    repo.commit_file("services/web/app.js", "feat(web): dark mode");

    let api = released(&repo, &["--tag-prefix", "api-v", "--path", "services/api"]);
    assert_eq!(
        (api["tag"].as_str(), api["previous_tag"].as_str()),
        (Some("api-v1.0.1"), Some("api-v1.0.0"))
    );
    assert_eq!(
        change_list(&api),
        vec![change("fix", Some("api"), "timeout", false)]
    );

    let web = repo
        .release_tag()
        .env("RELEASE_TAG_TAG_PREFIX", "web-v")
        .env("RELEASE_TAG_PATH", "services/web")
        .run();
    web.assert_code(0);
    let web = web.json()["release"].clone();
    assert_eq!(
        (web["tag"].as_str(), web["bump"].as_str()),
        (Some("web-v2.4.0"), Some("minor"))
    );

    // The plain `v` series sees every commit and none of the other prefixes' tags.
    let whole = released(&repo, &[]);
    assert_eq!(
        (whole["tag"].as_str(), whole["previous_tag"].as_str()),
        (Some("v0.10.0"), Some("v0.9.0"))
    );
    assert_eq!(change_list(&whole).len(), 2);
}

#[test]
fn tags_that_are_not_semver_are_ignored() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.2.0");
    repo.commit("fix: a");
    for name in ["v1", "v2.0", "vnext", "latest", "v3.0.0.1", "release-9.0.0"] {
        repo.git(&["tag", name]);
    }
    repo.commit("fix: b");
    let release = released(&repo, &[]);
    assert_eq!(
        (release["tag"].as_str(), release["previous_tag"].as_str()),
        (Some("v1.2.1"), Some("v1.2.0"))
    );
    assert_eq!(change_list(&release).len(), 2);
}

#[test]
fn a_tag_on_another_branch_is_not_the_previous_release() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.git(&["checkout", "-q", "-b", "experiment"]);
    repo.commit("feat!: rewrite");
    repo.tag("v2.0.0");
    // A candidate of a higher version elsewhere is no release in flight on main either.
    repo.commit("feat: more");
    repo.tag("v2.1.0-rc.1");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("feat: small");
    let candidate = released(&repo, &["--pre", "rc", "--dry-run"]);
    assert_eq!(
        (
            candidate["tag"].as_str(),
            candidate["previous_tag"].as_str()
        ),
        (Some("v1.1.0-rc.1"), Some("v1.0.0"))
    );
    let release = released(&repo, &[]);
    assert_eq!(
        (release["tag"].as_str(), release["previous_tag"].as_str()),
        (Some("v1.1.0"), Some("v1.0.0"))
    );
    assert_eq!(
        change_list(&release),
        vec![change("feat", None, "small", false)]
    );
}

#[test]
fn the_first_release_uses_the_initial_version() {
    let repo = Repo::new();
    repo.commit("chore: scaffold");
    let release = released(&repo, &[]);
    assert_eq!(release["bump"], "none");
    assert!(repo.tags().is_empty());
    repo.commit("feat: hello");
    let release = released(&repo, &["--initial-version", "1.0.0"]);
    assert_eq!(release["tag"], "v1.0.0");
    assert_eq!(release.get("previous_tag"), None);
    assert_eq!(change_list(&release).len(), 2);
}

#[test]
fn bump_and_version_override_the_commits() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.3.2");
    repo.commit("chore: nothing");
    let release = released(&repo, &["--bump", "major", "--dry-run"]);
    assert_eq!(
        (release["version"].as_str(), release["bump"].as_str()),
        (Some("2.0.0"), Some("major"))
    );
    let release = released(&repo, &["--version", "v1.5.0"]);
    assert_eq!(
        (release["tag"].as_str(), release["bump"].as_str()),
        (Some("v1.5.0"), Some("explicit"))
    );

    repo.commit("fix: x");
    repo.run(&["--version", "1.5"])
        .assert_usage_error("--version \"1.5\" is not a semantic version");
    repo.run(&["--version", "1.2.0"])
        .assert_usage_error("would not be newer than v1.5.0");
    repo.run(&["--pre", "rc.1"])
        .assert_usage_error("--pre \"rc.1\"");
    repo.run(&["--bump", "huge"]).assert_usage_error("huge");
    assert_eq!(repo.tags(), ["v1.3.2", "v1.5.0"]);
}

#[test]
fn push_sends_only_the_tag_to_the_remote() {
    let remote = tempfile::tempdir().unwrap();
    run_git(remote.path(), &["init", "-q", "--bare"], None);
    let repo = Repo::new();
    repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("feat: second");

    let release = released(&repo, &["--push"]);
    assert_eq!(release["pushed"], true);
    let refs = run_git(remote.path(), &["ls-remote", "."], None);
    let tag_object = repo.git(&["rev-parse", "refs/tags/v1.1.0"]);
    assert!(
        refs.contains(&format!("{tag_object}\trefs/tags/v1.1.0")),
        "{refs}"
    );
    assert!(!refs.contains("refs/heads/main"), "{refs}");
    assert!(!refs.contains("refs/tags/v1.0.0"), "{refs}");

    // A rerun pushes nothing new and still reports the push.
    let again = released(&repo, &["--push"]);
    assert_eq!(again, release);

    // A remote name the repository does not have is bad input, refused before any tag.
    repo.commit("fix: third");
    let out = repo.run(&["--push", "--remote", "nowhere"]);
    out.assert_usage_error("--remote \"nowhere\": no such remote");
    assert_eq!(repo.tags(), ["v1.0.0", "v1.1.0"]);

    // A remote that cannot be reached fails the job; the tag made stays in the envelope.
    let out = repo.run(&["--push", "--remote", "/nonexistent/remote.git"]);
    out.assert_code(1);
    let envelope = out.json();
    assert_eq!(envelope["release"]["tag"], "v1.1.1");
    assert_eq!(envelope["release"]["pushed"], false);
    assert!(
        envelope["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("pushing v1.1.1 to /nonexistent/remote.git")
    );
}

#[test]
fn a_rerun_on_a_tagged_head_reports_and_changes_nothing() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("feat: second");
    let first = released(&repo, &[]);
    let tag_object = repo.git(&["rev-parse", "refs/tags/v1.1.0"]);

    let out = repo.run(&[]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("already released as v1.1.0"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json()["release"], first);
    assert_eq!(repo.git(&["rev-parse", "refs/tags/v1.1.0"]), tag_object);
    assert_eq!(repo.tags(), ["v1.0.0", "v1.1.0"]);

    // Even with a dirty tree: nothing is created, so nothing is refused.
    std::fs::write(repo.path().join("file.txt"), "edited\n").unwrap();
    assert_eq!(released(&repo, &[])["tag"], "v1.1.0");
}

#[test]
fn current_describes_the_release_at_head() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("fix: second");
    let out = repo.run(&["--current"]);
    out.assert_code(1);
    assert!(
        out.json()["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("carries no release tag")
    );

    let made = released(&repo, &[]);
    let current = released(&repo, &["--current"]);
    assert_eq!(current, made);
    assert_eq!(
        (current["tag"].as_str(), current["bump"].as_str()),
        (Some("v1.0.1"), Some("patch"))
    );

    // A tag pushed by hand is reported as it is.
    repo.commit("chore: x");
    repo.tag("v3.0.0");
    let current = released(&repo, &["--current"]);
    assert_eq!(
        (current["tag"].as_str(), current["bump"].as_str()),
        (Some("v3.0.0"), Some("explicit"))
    );
    assert_eq!(current["previous_tag"], "v1.0.1");
}

#[test]
fn a_dirty_tree_is_refused_unless_allowed() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("feat: second");
    std::fs::write(repo.path().join("file.txt"), "uncommitted\n").unwrap();
    repo.run(&[]).assert_usage_error("uncommitted changes");
    assert_eq!(repo.tags(), ["v1.0.0"]);
    let release = released(&repo, &["--allow-dirty"]);
    assert_eq!(release["tag"], "v1.1.0");
}

#[test]
fn outside_a_git_repository_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new(env!("CARGO_BIN_EXE_release-tag"))
        .current_dir(dir.path())
        .env(
            "GIT_CEILING_DIRECTORIES",
            dir.path().parent().unwrap().to_str().unwrap(),
        )
        .run();
    out.assert_usage_error("not inside a git repository");
    assert_eq!(out.json()["failed"]["exit_code"], 2);
}

#[test]
fn a_computed_tag_on_another_commit_is_a_conflict() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.git(&["checkout", "-q", "-b", "hotfix"]);
    let elsewhere = repo.commit("fix: on another branch");
    repo.tag("v1.1.0");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("feat: on main");
    let out = repo.run(&[]);
    out.assert_code(1);
    let error = out.json()["failed"]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(&format!(
            "tag v1.1.0 already exists on commit {}",
            &elsewhere[..7]
        )),
        "{error}"
    );
    assert_eq!(repo.tag_commit("v1.1.0"), elsewhere);
}

#[test]
fn changelog_gets_the_section_prepended_once() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    let feat = repo.commit("feat(api): users");
    let file: PathBuf = repo.path().join("CHANGELOG.md");
    std::fs::write(&file, "# Changelog\n\n## v1.0.0 (2026-02-01)\n\n- first\n").unwrap();
    repo.git(&["add", "CHANGELOG.md"]);
    repo.git(&["commit", "-q", "-m", "docs: changelog"]);
    let date = repo.git(&["log", "-1", "--format=%cs"]);

    released(&repo, &["--changelog", "CHANGELOG.md"]);
    let expected = format!(
        "# Changelog\n\n## v1.1.0 ({date})\n\n### Features\n\n- **api:** users ({})\n\n\
         ### Other changes\n\n- changelog ({})\n\n## v1.0.0 (2026-02-01)\n\n- first\n",
        &feat[..7],
        &repo.head()[..7]
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);

    // The rerun finds HEAD released and the section present.
    released(&repo, &["--changelog", "CHANGELOG.md", "--allow-dirty"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
}

#[test]
fn dry_run_computes_everything_and_creates_nothing() {
    let remote = tempfile::tempdir().unwrap();
    run_git(remote.path(), &["init", "-q", "--bare"], None);
    let repo = Repo::new();
    repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("feat: second");
    let release = released(
        &repo,
        &["--dry-run", "--push", "--changelog", "CHANGELOG.md"],
    );
    assert_eq!(release["tag"], "v1.1.0");
    assert_eq!(release["dry_run"], true);
    assert_eq!(release["pushed"], false);
    assert_eq!(repo.tags(), ["v1.0.0"]);
    assert!(!repo.path().join("CHANGELOG.md").exists());
    assert_eq!(run_git(remote.path(), &["ls-remote", "."], None), "");
}

#[test]
fn the_envelope_is_passed_on_with_git_filled_only_when_absent() {
    let repo = Repo::new();
    repo.commit("feat: first");
    let head = repo.head();
    let out = repo
        .release_tag()
        .args(["--dry-run"])
        .stdin_json(&json!({"schema": "shipkit/v1", "images": [{"name": "api"}], "future": 1}))
        .run();
    out.assert_code(0);
    let envelope = out.json();
    assert_eq!(
        envelope["git"],
        json!({"commit": head, "branch": "main", "dirty": false})
    );
    assert_eq!(envelope["images"], json!([{"name": "api"}]));
    assert_eq!(envelope["future"], 1);

    let upstream_git = json!({"commit": "abc", "branch": "release", "dirty": false});
    let out = repo
        .release_tag()
        .args(["--dry-run"])
        .stdin_json(&json!({"git": upstream_git}))
        .run();
    assert_eq!(out.json()["git"], upstream_git);
}

#[test]
fn step_outputs_and_summary_under_actions() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("fix(api): second");
    let files = tempfile::tempdir().unwrap();
    let output = files.path().join("output");
    let summary = files.path().join("summary");
    let out = repo
        .release_tag()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", output.to_str().unwrap())
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .run();
    out.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "version=1.0.1\ntag=v1.0.1\nbump=patch\n"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.starts_with("## v1.0.1 ("), "{summary}");
    assert!(
        summary.contains("### Bug fixes\n\n- **api:** second"),
        "{summary}"
    );
}

#[test]
fn a_dry_run_under_actions_still_writes_the_summary() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.0.0");
    repo.commit("feat(ui): second");
    let files = tempfile::tempdir().unwrap();
    let summary = files.path().join("summary");
    let out = repo
        .release_tag()
        .args(["--dry-run"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .run();
    out.assert_code(0);
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.starts_with("## v1.1.0 ("), "{summary}");
    assert!(
        summary.contains("### Features\n\n- **ui:** second"),
        "{summary}"
    );
    assert_eq!(repo.tags(), ["v1.0.0"]);
}

#[test]
fn a_candidate_graduates_on_its_own_commit_at_its_own_version() {
    let repo = Repo::new();
    repo.commit("feat: first");
    repo.tag("v1.3.2");
    repo.commit("feat: new api");
    // The team decided this candidate is a major release, whatever the commits say.
    let rc = released(&repo, &["--pre", "rc", "--bump", "major"]);
    assert_eq!(rc["tag"], "v2.0.0-rc.1");
    let release = released(&repo, &[]);
    assert_eq!(
        (release["tag"].as_str(), release["bump"].as_str()),
        (Some("v2.0.0"), Some("major"))
    );
    assert_eq!(repo.tag_commit("v2.0.0"), repo.tag_commit("v2.0.0-rc.1"));
}

#[test]
fn sign_makes_a_signed_tag_with_the_users_git_signing_setup() {
    let repo = Repo::new();
    let key = repo.path().join(".git/signing-key");
    // No ssh-keygen, no test: it fails, it does not pass without signing anything.
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run ssh-keygen ({err}): install Debian's openssh-client \
                 (scripts/services up installs it)"
            )
        });
    assert!(status.success());
    repo.git(&["config", "gpg.format", "ssh"]);
    repo.git(&["config", "user.signingkey", key.to_str().unwrap()]);
    repo.commit("feat: first");
    let release = released(&repo, &["--sign"]);
    assert_eq!(release["tag"], "v0.1.0");
    let object = repo.git(&["cat-file", "tag", "v0.1.0"]);
    assert!(object.contains("-----BEGIN SSH SIGNATURE-----"), "{object}");
    assert!(object.contains("### Features\n\n- first"), "{object}");
}

#[test]
fn a_shallow_clone_without_the_release_tags_is_refused() {
    let origin = Repo::new();
    origin.commit("chore: init");
    origin.commit("feat: first");
    origin.tag("v1.0.0");
    origin.commit("fix: a");
    origin.commit("fix: b");
    let clones = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    let clone = |name: &str, depth: &str| {
        let path = clones.path().join(name);
        run_git(
            clones.path(),
            &["clone", "-q", "--depth", depth, &url, name],
            None,
        );
        path
    };
    // As actions/checkout does by default: the last commit only, no tags.
    let shallow = clone("shallow", "1");
    let out = Cmd::new(env!("CARGO_BIN_EXE_release-tag"))
        .current_dir(&shallow)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .run();
    out.assert_usage_error("shallow clone");
    // Deep enough to hold the previous release: the answer is the full clone's.
    let deep = clone("deep", "3");
    assert_eq!(
        run_git(&deep, &["rev-parse", "--is-shallow-repository"], None),
        "true"
    );
    let out = Cmd::new(env!("CARGO_BIN_EXE_release-tag"))
        .current_dir(&deep)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["--dry-run"])
        .run();
    out.assert_code(0);
    assert_eq!(out.json()["release"]["tag"], "v1.0.1");
}
