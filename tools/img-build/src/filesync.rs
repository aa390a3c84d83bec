//! What the BuildKit session's file sync sends for one request (fsutil's DiffCopy): which
//! entries, in which order, with which Go file modes. Pure: the session (`session.rs`) does
//! the sending.

use crate::context::{Entry, Source};
use crate::dockerignore::PatternMatcher;

/// The Dockerfile's name in the synced `dockerfile` directory (the build's `dockerfile`).
pub const DOCKERFILE: &str = "Dockerfile";

/// What BuildKit asked for, from the request's metadata.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// `context` or `dockerfile`.
    pub dir: String,
    /// Only these paths (BuildKit reads the `.dockerignore` first this way).
    pub follow_paths: Vec<String>,
    /// The `.dockerignore`'s patterns, as the Dockerfile frontend read them.
    pub excludes: Vec<String>,
}

/// The entries to send for `request`, in fsutil's walk order (path components compared one
/// by one, a directory right before its contents), from the build's `context` and its
/// `dockerfile`. Pure.
pub fn entries_to_sync(
    context: &[Entry],
    dockerfile: &[u8],
    request: &SyncRequest,
) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = match request.dir.as_str() {
        "dockerfile" => vec![Entry {
            name: DOCKERFILE.as_bytes().to_vec(),
            mode: 0o644,
            source: Source::Bytes(dockerfile.to_vec()),
        }],
        "context" => {
            // The context was walked with the same `.dockerignore`; what its patterns still
            // exclude here is the Dockerfile and `.dockerignore` themselves, which the
            // classic builder needs sent and BuildKit does not.
            let excludes = PatternMatcher::new(&request.excludes)
                .map_err(|err| format!("the .dockerignore's patterns: {err}"))?;
            // Directories first: an excluded Dockerfile's folder stays, as with `docker build`.
            let mut context = context.to_vec();
            add_missing_parents(&mut context);
            context
                .iter()
                .filter(|e| {
                    matches!(e.source, Source::Dir)
                        || !excludes.matches_or_parent_matches(&e.name_lossy())
                })
                .cloned()
                .collect()
        }
        other => return Err(format!("no directory {other:?} in this session")),
    };
    if !request.follow_paths.is_empty() {
        let roots: Vec<&str> = request
            .follow_paths
            .iter()
            .map(|p| follow_root(p))
            .collect();
        entries.retain(|e| {
            roots
                .iter()
                .any(|root| on_followed_path(&e.name_lossy(), root))
        });
    }
    add_missing_parents(&mut entries);
    entries.sort_by(|a, b| {
        a.name
            .split(|c| *c == b'/')
            .cmp(b.name.split(|c| *c == b'/'))
    });
    Ok(entries)
}

/// The part of a followed path (`COPY www /www` follows `www`) before its first wildcard:
/// everything under it is sent, and BuildKit picks what the pattern names. "" is the whole
/// context.
fn follow_root(path: &str) -> &str {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let wildcard = path.find(['*', '?', '[']).unwrap_or(path.len());
    match path[..wildcard].rfind('/') {
        _ if wildcard == path.len() => path,
        Some(slash) => &path[..slash],
        None => "",
    }
}

/// Whether `name` is to be sent for the followed `root`: the root itself, what is under it,
/// and the directories leading to it.
fn on_followed_path(name: &str, root: &str) -> bool {
    root.is_empty()
        || root == "."
        || name == root
        || name.starts_with(&format!("{root}/"))
        || root.starts_with(&format!("{name}/"))
}

/// fsutil wants every file's directory sent before it; a tar does not, and the context's
/// walk leaves out a directory the `.dockerignore` excludes but a `!` pattern reopens.
fn add_missing_parents(entries: &mut Vec<Entry>) {
    let known: std::collections::BTreeSet<Vec<u8>> =
        entries.iter().map(|e| e.name.clone()).collect();
    let mut missing = std::collections::BTreeSet::new();
    for entry in entries.iter() {
        let mut name = entry.name.as_slice();
        while let Some(slash) = name.iter().rposition(|c| *c == b'/') {
            name = &name[..slash];
            if !known.contains(name) {
                missing.insert(name.to_vec());
            }
        }
    }
    entries.extend(missing.into_iter().map(|name| Entry {
        name,
        mode: 0o755,
        source: Source::Dir,
    }));
}

/// Go's `os.FileMode` bits, which fsutil's stats carry.
pub fn go_file_mode(entry: &Entry) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const STICKY: u32 = 1 << 20;
    let mut mode = entry.mode & 0o777;
    for (unix, go) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if entry.mode & unix != 0 {
            mode |= go;
        }
    }
    match entry.source {
        Source::Dir => mode | DIR,
        Source::Symlink(_) => mode | SYMLINK,
        Source::File(_) | Source::Bytes(_) => mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, source: Source) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: 0o644,
            source,
        }
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(Entry::name_lossy).collect()
    }

    #[test]
    fn the_context_is_sent_in_walk_order_without_what_the_frontend_excludes() {
        let context_entries = vec![
            entry(".dockerignore", Source::Bytes(b"Dockerfile\n".to_vec())),
            entry("Dockerfile", Source::Bytes(vec![])),
            entry("a", Source::Dir),
            entry("a.txt", Source::Bytes(vec![])),
            entry("a/b", Source::Bytes(vec![])),
        ];
        let dockerfile_bytes = b"FROM scratch\n";
        let context = |follow: &[&str], excludes: &[&str]| {
            names(
                &entries_to_sync(
                    &context_entries,
                    dockerfile_bytes,
                    &SyncRequest {
                        dir: "context".into(),
                        follow_paths: follow.iter().map(|s| s.to_string()).collect(),
                        excludes: excludes.iter().map(|s| s.to_string()).collect(),
                    },
                )
                .unwrap(),
            )
        };
        assert_eq!(
            context(&[], &["Dockerfile"]),
            [".dockerignore", "a", "a/b", "a.txt"]
        );
        assert_eq!(context(&[".dockerignore"], &[]), [".dockerignore"]);
        let reopened = [entry("docs/keep.md", Source::Bytes(vec![]))];
        let sent = entries_to_sync(
            &reopened,
            b"",
            &SyncRequest {
                dir: "context".into(),
                ..SyncRequest::default()
            },
        )
        .unwrap();
        assert_eq!(names(&sent), ["docs", "docs/keep.md"]);
        let dockerfile = entries_to_sync(
            &context_entries,
            dockerfile_bytes,
            &SyncRequest {
                dir: "dockerfile".into(),
                ..SyncRequest::default()
            },
        )
        .unwrap();
        assert_eq!(names(&dockerfile), [DOCKERFILE]);
        assert_eq!(
            dockerfile[0].source,
            Source::Bytes(b"FROM scratch\n".to_vec())
        );
    }

    #[test]
    fn a_followed_directory_sends_what_is_under_it_and_the_way_to_it() {
        assert!(on_followed_path("www/health", follow_root("www")));
        assert!(on_followed_path("www", follow_root("./www/")));
        assert!(on_followed_path("a", follow_root("a/b/c.txt")));
        assert!(!on_followed_path("busybox", follow_root("www")));
        assert!(!on_followed_path("wwwx/health", follow_root("www")));
        assert_eq!(follow_root("src/*.txt"), "src");
        assert!(on_followed_path("src/a/b.txt", follow_root("src/*.txt")));
        assert!(on_followed_path("anything", follow_root("*.txt")));
    }

    #[test]
    fn modes_are_go_file_modes() {
        let mut dir = entry("d", Source::Dir);
        dir.mode = 0o755;
        assert_eq!(go_file_mode(&dir), (1 << 31) | 0o755);
        let link = entry("l", Source::Symlink("t".into()));
        assert_eq!(go_file_mode(&link), (1 << 27) | 0o644);
        let mut setuid = entry("f", Source::Bytes(vec![]));
        setuid.mode = 0o4755;
        assert_eq!(go_file_mode(&setuid), (1 << 23) | 0o755);
    }
}
