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
    /// `--builder`; none means BuildKit when the Engine offers it.
    pub builder: Option<BuilderChoice>,
    /// `--secret`s, checked (the file exists, the variable is set); values are read later.
    pub secrets: Vec<Secret>,
    /// `--cache-from` references, checked.
    pub cache_from: Vec<String>,
    /// `--cache-to inline`.
    pub inline_cache: bool,
}

/// The builder the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuilderChoice {
    /// The Engine's original builder (`Step 2/5 : RUN …`).
    Classic,
    /// BuildKit, built into the Engine since 18.09.
    Buildkit,
}

/// Where a `--secret`'s value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--secret`: its id in the Dockerfile and where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub source: SecretSource,
}

impl Secret {
    /// Parses the docker CLI's syntax: `id=ID,src=FILE` (also `source=`), `id=ID,env=VAR`,
    /// optionally `type=file|env`. Pure: whether the file or variable exists is checked
    /// elsewhere.
    pub fn parse(text: &str) -> std::result::Result<Secret, String> {
        let bad = |why: &str| {
            format!("bad --secret {text:?}: {why} (expected id=ID,src=FILE or id=ID,env=VAR)")
        };
        let (mut id, mut file, mut env, mut kind) = (None, None, None, None);
        for field in text.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad(&format!("{field:?} is not KEY=VALUE")))?;
            let slot = match key.trim() {
                "id" => &mut id,
                "src" | "source" => &mut file,
                "env" => &mut env,
                "type" => &mut kind,
                other => return Err(bad(&format!("unknown field {other:?}"))),
            };
            if value.is_empty() {
                return Err(bad(&format!("{key} is empty")));
            }
            *slot = Some(value.to_owned());
        }
        let id = id.ok_or_else(|| bad("no id"))?;
        let source = match (file, env, kind.as_deref()) {
            (Some(_), Some(_), _) => return Err(bad("give src or env, not both")),
            (Some(file), None, None | Some("file")) => SecretSource::File(PathBuf::from(file)),
            (None, Some(var), None | Some("env")) => SecretSource::Env(var),
            // As the docker CLI: `type=env` without `env=` reads the variable named by the id.
            (None, None, Some("env")) => SecretSource::Env(id.clone()),
            (None, None, _) => return Err(bad("no src or env")),
            (_, _, Some(kind)) => return Err(bad(&format!("type={kind} does not fit"))),
        };
        Ok(Secret { id, source })
    }

    /// The value, read now (exit 2 naming the file or variable when it cannot be).
    pub fn value(&self) -> Result<Vec<u8>> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path).map_err(|err| {
                Error::usage(format!(
                    "--secret id={}: cannot read {}: {err}",
                    self.id,
                    path.display()
                ))
            }),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--secret id={}: the environment variable {var} is not set",
                        self.id
                    ))
                }),
        }
    }
}

impl Request {
    /// Checks the flags and the contexts they name (exit 2, nothing built).
    pub fn from_args(args: &Args) -> Result<Request> {
        let specs = image_specs(args)?;
        let build_args = build_args(&args.build_args)?;
        for template in &args.tags {
            tags::check_template(template).map_err(Error::usage)?;
        }
        let secrets = secrets(&args.secrets)?;
        let cache_from = cache_from(&args.cache_from)?;
        let inline_cache = match args.cache_to.as_deref() {
            None => false,
            Some("inline" | "type=inline") => true,
            Some(other) => {
                return Err(Error::usage(format!(
                    "--cache-to {other}: only `inline` is supported (the cache goes into the image's config and is pushed with it)"
                )));
            }
        };
        if args.builder == Some(BuilderChoice::Classic) {
            let needs_buildkit = [
                (!secrets.is_empty(), "--secret"),
                (inline_cache, "--cache-to inline"),
            ];
            if let Some((_, flag)) = needs_buildkit.iter().find(|(given, _)| *given) {
                return Err(Error::usage(format!(
                    "{flag} needs BuildKit: drop --builder classic"
                )));
            }
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
            builder: args.builder,
            secrets,
            cache_from,
            inline_cache,
        })
    }
}

/// The `--secret`s, parsed and checked now (exit 2 before anything is built); two with the
/// same id are a mistake.
fn secrets(texts: &[String]) -> Result<Vec<Secret>> {
    let mut secrets: Vec<Secret> = Vec::new();
    for text in texts.iter().filter(|t| !t.trim().is_empty()) {
        let secret = Secret::parse(text.trim()).map_err(Error::usage)?;
        if secrets.iter().any(|s| s.id == secret.id) {
            return Err(Error::usage(format!(
                "--secret id={} is given twice",
                secret.id
            )));
        }
        secret.value()?;
        secrets.push(secret);
    }
    Ok(secrets)
}

/// The `--cache-from` references, checked; `{name}` stands for each image's name.
fn cache_from(texts: &[String]) -> Result<Vec<String>> {
    texts
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|text| {
            common::reference::Reference::parse(&cache_from_for(text.trim(), "name"))
                .map(|_| text.trim().to_owned())
                .map_err(|err| Error::usage(format!("--cache-from {text}: {err}")))
        })
        .collect()
}

/// A `--cache-from` for the image `name` (`registry/{name}:main` → `registry/api:main`).
pub fn cache_from_for(template: &str, name: &str) -> String {
    template.replace("{name}", name)
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
    fn secrets_take_the_docker_cli_syntax() {
        let parse = |text| Secret::parse(text);
        assert_eq!(
            parse("id=npm,src=/run/npmrc").unwrap(),
            Secret {
                id: "npm".into(),
                source: SecretSource::File("/run/npmrc".into())
            }
        );
        assert_eq!(
            parse("type=file,id=npm,source=a").unwrap().source,
            SecretSource::File("a".into())
        );
        assert_eq!(
            parse("id=tok,env=GH_TOKEN").unwrap().source,
            SecretSource::Env("GH_TOKEN".into())
        );
        assert_eq!(
            parse("id=GH_TOKEN,type=env").unwrap().source,
            SecretSource::Env("GH_TOKEN".into())
        );
        for bad in [
            "id=a",
            "src=x",
            "id=a,src=x,env=Y",
            "id=a,src",
            "id=a,mode=1",
            "id=,src=x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_from_names_each_image() {
        assert_eq!(
            cache_from_for("localhost:5000/{name}:main", "api"),
            "localhost:5000/api:main"
        );
        assert!(cache_from(&["localhost:5000/{name}:main".into()]).is_ok());
        assert!(cache_from(&["Bad:Ref".into()]).is_err());
    }

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
