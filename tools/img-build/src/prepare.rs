//! What each image is built from (reading the disk and git, deciding nothing new): its tags,
//! the context's entries after the `.dockerignore`, where its Dockerfile sits in the tar.

use crate::context::{self, Entry, HashingWriter, Source};
use crate::dockerignore;
use crate::request::{ImageSpec, Request};
use crate::tags::{self, TagValues};
use common::envelope::{Envelope, GitInfo};
use common::{Error, Result};
use std::collections::BTreeMap;

/// Where the images come from: the commit (from the input, else read from the first
/// context) and the release version from the input.
#[derive(Debug, Clone, Default)]
pub(crate) struct Provenance {
    pub(crate) git: Option<GitInfo>,
    /// Why there is no git state (shown when a tag needs it).
    pub(crate) no_git_reason: Option<String>,
    pub(crate) version: Option<String>,
}

impl Provenance {
    /// The input's git section, else the first context's repository.
    pub(crate) fn read(envelope: &Envelope, request: &Request) -> Provenance {
        let (git, no_git_reason) = match (&envelope.git, request.specs.first()) {
            (Some(git), _) => (Some(git.clone()), None),
            (None, Some(spec)) => match common::git::describe(&spec.context) {
                Ok(git) => (Some(git), None),
                Err(err) => (None, Some(err.to_string())),
            },
            (None, None) => (None, None),
        };
        Provenance {
            git,
            no_git_reason,
            version: envelope.release.as_ref().map(|r| r.version.clone()),
        }
    }

    fn tag_values(&self, name: &str) -> TagValues {
        let git = self.git.as_ref();
        TagValues {
            name: name.to_owned(),
            sha: git.map(|g| g.commit.clone()).filter(|c| !c.is_empty()),
            branch: git
                .and_then(|g| g.branch.clone())
                .or_else(|| tags::actions_branch(|name| std::env::var(name).ok())),
            dirty: git.is_some_and(|g| g.dirty),
            version: self.version.clone(),
            no_git_reason: self.no_git_reason.clone(),
        }
    }
}

/// One image to build, decided before anything is sent.
#[derive(Debug)]
pub(crate) struct ImagePlan {
    pub(crate) name: String,
    /// The context as the user wrote it.
    pub(crate) context_arg: String,
    pub(crate) dockerfile_arg: String,
    /// The Dockerfile's path inside the tar.
    pub(crate) dockerfile_in_tar: String,
    /// The Dockerfile as the user wrote it.
    pub(crate) dockerfile_text: Vec<u8>,
    /// Whether the `.dockerignore` excludes the Dockerfile (inside the context) itself.
    pub(crate) dockerfile_ignored: bool,
    pub(crate) entries: Vec<Entry>,
    pub(crate) tags: Vec<String>,
    pub(crate) remote: Option<String>,
}

/// Plans every image: its tags (no tag may name two images), its context and Dockerfile.
pub(crate) fn plan_images(request: &Request, provenance: &Provenance) -> Result<Vec<ImagePlan>> {
    let mut plans = Vec::new();
    let mut seen_tags: BTreeMap<String, String> = BTreeMap::new();
    for spec in &request.specs {
        let tags = tags_of(spec, &request.tag_templates, provenance)?;
        for tag in &tags {
            if let Some(other) = seen_tags.insert(tag.clone(), spec.name.clone()) {
                return Err(Error::usage(format!(
                    "the tag {tag} would name two images ({other} and {}); use {{name}} in --tag",
                    spec.name
                )));
            }
        }
        plans.push(plan_context(spec, tags)?);
    }
    Ok(plans)
}

/// The tags of one image: the templates filled in (each once), or the default tags.
fn tags_of(spec: &ImageSpec, templates: &[String], provenance: &Provenance) -> Result<Vec<String>> {
    let values = provenance.tag_values(&spec.name);
    if templates.is_empty() {
        return tags::default_tags(&values).map_err(Error::usage);
    }
    let mut tags = Vec::new();
    for template in templates {
        let tag = tags::render_tag(template, &values).map_err(Error::usage)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Reads the `.dockerignore`, walks the context, adds a Dockerfile from outside it.
fn plan_context(spec: &ImageSpec, tags: Vec<String>) -> Result<ImagePlan> {
    let ignore_path = spec.context.join(".dockerignore");
    let ignore_text = match std::fs::read(&ignore_path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(Error::failed(format!(
                "reading {}: {err}",
                ignore_path.display()
            )));
        }
    };
    let inside = spec
        .dockerfile
        .strip_prefix(&spec.context)
        .ok()
        .map(|rel| rel.to_string_lossy().into_owned());
    let user_patterns = ignore_text
        .as_deref()
        .map(dockerignore::read_patterns)
        .unwrap_or_default();
    // Sent anyway, but removed by the Engine before any COPY (see `keep_build_files`).
    let dockerfile_ignored = inside.as_deref().is_some_and(|rel| {
        dockerignore::PatternMatcher::new(&user_patterns)
            .is_ok_and(|m| m.matches_or_parent_matches(rel))
    });
    let patterns = dockerignore::keep_build_files(user_patterns, inside.as_deref());
    let matcher = dockerignore::PatternMatcher::new(&patterns)
        .map_err(|err| Error::usage(format!("{}: {err}", ignore_path.display())))?;
    let mut entries = context::walk(&spec.context, &matcher)
        .map_err(|err| Error::failed(format!("reading the context {}: {err}", spec.context_arg)))?;

    let dockerfile_text = std::fs::read(&spec.dockerfile)
        .map_err(|err| Error::failed(format!("reading {}: {err}", spec.dockerfile_arg)))?;
    let dockerfile_in_tar = match inside {
        Some(rel) => rel,
        None => {
            // As the docker CLI does: add the outside Dockerfile under a hidden name, and
            // list that name in the .dockerignore so that it does not end up in the image.
            let hidden = hidden_dockerfile_name(&dockerfile_text);
            add_hidden_dockerfile(&mut entries, &hidden, dockerfile_text.clone()).map_err(
                |err| Error::failed(format!("reading the context {}: {err}", spec.context_arg)),
            )?;
            hidden
        }
    };
    let remote = common::git::git(&spec.context, &["remote", "get-url", "origin"])
        .ok()
        .filter(|r| !r.is_empty());
    Ok(ImagePlan {
        name: spec.name.clone(),
        context_arg: spec.context_arg.clone(),
        dockerfile_arg: spec.dockerfile_arg.clone(),
        dockerfile_in_tar,
        dockerfile_text,
        dockerfile_ignored,
        entries,
        tags,
        remote,
    })
}

/// The name under which a Dockerfile that is not sent as is (outside the context, or with
/// the labels appended) travels in the tar: the docker CLI's `.dockerfile.<id>`, named
/// after the content so that the tar stays deterministic.
pub(crate) fn hidden_dockerfile_name(content: &[u8]) -> String {
    let mut hasher = HashingWriter::default();
    // Writing to a hasher cannot fail.
    let _ = std::io::Write::write_all(&mut hasher, content);
    format!(".dockerfile.{}", &hasher.finish()[..20])
}

/// Puts `content` in the tar as `hidden` (replacing it if already there) and lists `hidden`
/// in the tar's `.dockerignore`, so that the Engine removes it before any `COPY`.
pub(crate) fn add_hidden_dockerfile(
    entries: &mut Vec<Entry>,
    hidden: &str,
    content: Vec<u8>,
) -> std::io::Result<()> {
    if let Some(entry) = entries.iter_mut().find(|e| e.name == hidden.as_bytes()) {
        entry.source = Source::Bytes(content);
        return Ok(());
    }
    let ignore = entries.iter_mut().find(|e| e.name == b".dockerignore");
    let mut text = match ignore.as_ref().map(|e| &e.source) {
        Some(Source::File(path)) => std::fs::read(path)?,
        Some(Source::Bytes(bytes)) => bytes.clone(),
        // As the docker CLI does: a .dockerignore made here ignores itself too.
        _ => b".dockerignore".to_vec(),
    };
    text.extend_from_slice(format!("\n{hidden}\n").as_bytes());
    match ignore {
        Some(entry) => entry.source = Source::Bytes(text),
        None => entries.push(Entry {
            name: b".dockerignore".to_vec(),
            mode: 0o644,
            source: Source::Bytes(text),
        }),
    }
    entries.push(Entry {
        name: hidden.as_bytes().to_vec(),
        mode: 0o644,
        source: Source::Bytes(content),
    });
    Ok(())
}

/// Drops the entry `name`, adding entries for its parent directories that the tar lacks (as
/// extracting then removing it would have left them).
pub(crate) fn remove_entry_keeping_parents(entries: &mut Vec<Entry>, name: &str) {
    let Some(index) = entries.iter().position(|e| e.name == name.as_bytes()) else {
        return;
    };
    entries.remove(index);
    let mut parents = Vec::new();
    let mut path = name;
    while let Some((parent, _)) = path.rsplit_once('/') {
        if !entries.iter().any(|e| e.name == parent.as_bytes()) {
            parents.push(Entry {
                name: parent.as_bytes().to_vec(),
                mode: 0o755,
                source: Source::Dir,
            });
        }
        path = parent;
    }
    for (offset, parent) in parents.into_iter().rev().enumerate() {
        entries.insert(index + offset, parent);
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
    fn a_removed_dockerfile_leaves_its_folders() {
        let mut entries = vec![
            entry("a", Source::Bytes(vec![])),
            entry("build/ci/Dockerfile", Source::Bytes(vec![])),
            entry("z", Source::Bytes(vec![])),
        ];
        remove_entry_keeping_parents(&mut entries, "build/ci/Dockerfile");
        assert_eq!(names(&entries), ["a", "build", "build/ci", "z"]);
        remove_entry_keeping_parents(&mut entries, "missing");
        assert_eq!(entries.len(), 4);
    }

    #[test]
    fn a_hidden_dockerfile_is_listed_in_the_dockerignore() {
        let hidden = hidden_dockerfile_name(b"FROM scratch\n");
        assert_eq!(hidden, hidden_dockerfile_name(b"FROM scratch\n"));
        assert!(
            hidden.starts_with(".dockerfile.") && hidden.len() == 32,
            "{hidden}"
        );

        let mut fresh = vec![entry("app", Source::Bytes(vec![]))];
        add_hidden_dockerfile(&mut fresh, &hidden, b"X".to_vec()).unwrap();
        assert_eq!(names(&fresh), ["app", ".dockerignore", hidden.as_str()]);
        assert_eq!(
            fresh[1].source,
            Source::Bytes(format!(".dockerignore\n{hidden}\n").into_bytes())
        );

        let mut existing = vec![entry(".dockerignore", Source::Bytes(b"*.md".to_vec()))];
        add_hidden_dockerfile(&mut existing, &hidden, b"X".to_vec()).unwrap();
        add_hidden_dockerfile(&mut existing, &hidden, b"Y".to_vec()).unwrap();
        assert_eq!(
            existing[0].source,
            Source::Bytes(format!("*.md\n{hidden}\n").into_bytes())
        );
        assert_eq!(existing[1].source, Source::Bytes(b"Y".to_vec()));
    }
}
