//! Reading the manifests named by `-f` and `-k` (local I/O only: files, directories and the
//! kustomize renderer); parsing and checking them is [`crate::manifests`]'s.

use crate::manifests::{self, Manifest};
use common::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every object of every `-f PATH` (files; directories recursively, their `.yaml`, `.yml`
/// and `.json` files in name order) and every `-k DIR`, in the order given. `-` reads stdin
/// is not offered: stdin carries the envelope.
pub fn read_all(files: &[PathBuf], kustomizations: &[PathBuf]) -> Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in files {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::usage(format!("cannot read {}: {e}", file.display())))?;
            let parsed =
                manifests::parse(&file.display().to_string(), &text).map_err(Error::usage)?;
            manifests.extend(parsed);
        }
    }
    for dir in kustomizations {
        let text = kustomize_build(dir)?;
        let origin = format!("kustomize build {}", dir.display());
        manifests.extend(manifests::parse(&origin, &text).map_err(Error::usage)?);
    }
    if manifests.is_empty() {
        return Err(Error::usage(
            "no manifests: give -f PATH or -k DIR with at least one object",
        ));
    }
    Ok(manifests)
}

/// The manifest files of `path`: itself when it is a file, else every manifest file below it.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::usage(format!("-f {}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    walk(path, &mut found)?;
    if found.is_empty() {
        return Err(Error::usage(format!(
            "-f {}: no .yaml, .yml or .json files in this directory",
            path.display()
        )));
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(manifests::is_manifest_file)
        {
            found.push(path);
        }
    }
    Ok(())
}

/// The renderers tried for `-k`, in order: kubectl's built-in kustomize, then kustomize.
const RENDERERS: [(&str, &[&str]); 2] = [("kubectl", &["kustomize"]), ("kustomize", &["build"])];

/// `kubectl kustomize DIR` (or `kustomize build DIR`): the rendered manifests.
fn kustomize_build(dir: &Path) -> Result<String> {
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "-k {}: not a directory",
            dir.display()
        )));
    }
    for (program, args) in RENDERERS {
        let output = match Command::new(program).args(args).arg(dir).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::failed(format!("cannot run {program}: {e}"))),
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(Error::usage(format!(
                "-k {}: {program} {} failed: {first}",
                dir.display(),
                args.join(" ")
            )));
        }
        return String::from_utf8(output.stdout).map_err(|_| {
            Error::usage(format!(
                "-k {}: the rendered manifests are not UTF-8",
                dir.display()
            ))
        });
    }
    Err(Error::usage(format!(
        "-k {}: neither kubectl nor kustomize is on PATH to render the kustomization",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\n";

    #[test]
    fn directories_are_read_recursively_in_name_order_and_other_files_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b-sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("c.yml"), CM.replace("NAME", "c")).unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#,
        )
        .unwrap();
        std::fs::write(sub.join("x.yaml"), CM.replace("NAME", "x")).unwrap();
        std::fs::write(dir.path().join("README.md"), "not yaml: [").unwrap();
        let manifests = read_all(&[dir.path().to_owned()], &[]).unwrap();
        let names: Vec<&str> = manifests.iter().map(Manifest::name).collect();
        assert_eq!(names, ["a", "x", "c"]);
    }

    #[test]
    fn missing_paths_and_empty_directories_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_all(&[dir.path().join("nope.yaml")], &[]).unwrap_err();
        assert_eq!(err.exit(), common::Exit::Usage);
        let err = read_all(&[dir.path().to_owned()], &[]).unwrap_err();
        assert!(
            err.to_string().contains("no .yaml, .yml or .json files"),
            "{err}"
        );
        let err = read_all(&[], &[dir.path().join("missing")]).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_kustomization_is_rendered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cm.yaml"), CM.replace("NAME", "k")).unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "resources: [cm.yaml]\nnamespace: shop\n",
        )
        .unwrap();
        let manifests = read_all(&[], &[dir.path().to_owned()]).unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].namespace(), Some("shop"));
        assert!(manifests[0].source.origin.starts_with("kustomize build "));
    }
}
