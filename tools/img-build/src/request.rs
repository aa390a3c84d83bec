//! The flags, turned once into a [`Request`]: the contexts checked and named, the build
//! arguments read. Past this point nothing sees clap.

use crate::{Args, tags};
use common::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to build, and how.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// One per `--context`, in order.
    pub specs: Vec<ImageSpec>,
    /// `--tag` templates (checked); none means the default tags.
    pub tag_templates: Vec<String>,
    /// `--build-arg`s, with the environment's values filled in.
    pub build_args: BTreeMap<String, String>,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub dry_run: bool,
}

impl Request {
    /// Checks the flags and the contexts they name (exit 2, nothing built).
    pub fn from_args(args: &Args) -> Result<Request> {
        let specs = image_specs(args)?;
        let build_args = build_args(&args.build_args)?;
        for template in &args.tags {
            tags::check_template(template).map_err(Error::usage)?;
        }
        Ok(Request {
            specs,
            tag_templates: args.tags.clone(),
            build_args,
            labels: args.labels.iter().cloned().collect(),
            target: args.target.clone(),
            platform: args.platform.clone(),
            no_cache: args.no_cache,
            pull: args.pull,
            dry_run: args.dry_run,
        })
    }
}

/// Checks `--platform` as the Engine will (`os[/arch[/variant]]`, each part of letters, digits,
/// `_` and `-`), so a bad one is refused before the context is read, dry run or not.
pub fn parse_platform(text: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let part_ok = |part: &&str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match parts.len() <= 3 && parts.iter().all(part_ok) {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "expected os[/arch[/variant]] (e.g. linux/amd64, linux/arm64/v8), got {text:?}"
        )),
    }
}

/// A context, its Dockerfile and its name, checked.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub context: PathBuf,
    pub context_arg: String,
    pub dockerfile: PathBuf,
    pub dockerfile_arg: String,
    pub name: String,
}

/// The contexts with their Dockerfiles and names, checked (exit 2 on a bad one).
fn image_specs(args: &Args) -> Result<Vec<ImageSpec>> {
    let n = args.contexts.len();
    for (flag, count) in [("--file", args.files.len()), ("--name", args.names.len())] {
        if count != 0 && count != n {
            return Err(Error::usage(format!(
                "{flag} was given {count} times for {n} --context: give it once per --context, in the same order"
            )));
        }
    }
    let mut specs: Vec<ImageSpec> = Vec::new();
    for (i, context_arg) in args.contexts.iter().enumerate() {
        let shown = context_arg.display().to_string();
        let context = std::fs::canonicalize(context_arg)
            .map_err(|err| Error::usage(format!("context {shown} does not exist ({err})")))?;
        if !context.is_dir() {
            return Err(Error::usage(format!("context {shown} is not a directory")));
        }
        let dockerfile_arg = match args.files.get(i) {
            Some(file) => file.clone(),
            None => context_arg.join("Dockerfile"),
        };
        let dockerfile_shown = dockerfile_arg.display().to_string();
        let dockerfile = std::fs::canonicalize(&dockerfile_arg)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Error::usage(format!(
                    "no Dockerfile at {dockerfile_shown} (pass --file PATH)"
                ))
            })?;
        let name = match args.names.get(i) {
            Some(name) => name.clone(),
            None => {
                let folder = context
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let slug = tags::slug_name(&folder);
                if slug.is_empty() {
                    return Err(Error::usage(format!(
                        "cannot make an image name from the folder of {shown}: pass --name"
                    )));
                }
                slug
            }
        };
        tags::check_name(&name).map_err(Error::usage)?;
        if specs.iter().any(|s| s.name == name) {
            return Err(Error::usage(format!(
                "two contexts would build the image {name}: pass --name for each"
            )));
        }
        specs.push(ImageSpec {
            context,
            context_arg: shown,
            dockerfile,
            dockerfile_arg: dockerfile_shown,
            name,
        });
    }
    Ok(specs)
}

fn build_args(texts: &[String]) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for text in texts {
        match crate::plan::parse_build_arg(text, |key| std::env::var(key).ok())
            .map_err(Error::usage)?
        {
            Some((key, value)) => {
                args.insert(key, value);
            }
            None => tracing::debug!("--build-arg {text}: not set in the environment, left out"),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_os_arch_variant_of_plain_words() {
        for good in ["linux", "linux/amd64", "linux/arm64/v8", "windows/amd64"] {
            assert_eq!(parse_platform(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "windows/",
            "/amd64",
            "linux/amd64/v9/extra",
            "linux amd64",
        ] {
            assert!(parse_platform(bad).is_err(), "{bad:?}");
        }
    }
}
