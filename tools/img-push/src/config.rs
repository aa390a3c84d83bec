//! The flags, turned once into what img-push is to do (pure). Past [`Config::from_args`]
//! nothing sees clap: deciding and doing take a [`Config`].

use crate::Args;
use crate::reference::Destination;
use crate::retry::Retry;
use common::reference::check_tag;
use common::{Error, Result};

/// What img-push is to do, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where images go.
    pub destination: Destination,
    /// Push images, or promote a tag.
    pub job: Job,
    /// What to do about ECR repositories and tag immutability.
    pub repositories: RepositoryPolicy,
    /// The user to log in as with the password on stdin (`--username` + `--password-stdin`).
    pub username: Option<String>,
    /// How many pushes (and registry reads) run at once.
    pub jobs: usize,
    pub retry: Retry,
    /// Resolve and decide; change nothing.
    pub dry_run: bool,
}

/// The two jobs img-push does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Push(PushRequest),
    Promote(PromoteRequest),
}

/// A push: the images, as the flags name them (the envelope supplies the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// `--image`: local references or image ids, instead of the envelope's images.
    pub images: Vec<String>,
    /// `--name`: only the envelope's images of these names.
    pub names: Vec<String>,
    /// `--tag`: extra tags for every image.
    pub tags: Vec<String>,
}

/// A promotion, as the flags say it (defaults come from the envelope, see [`crate::promote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteRequest {
    /// `--name`: the repositories to promote in.
    pub names: Vec<String>,
    pub from_tag: Option<String>,
    pub to_tags: Vec<String>,
}

/// ECR repositories and immutable tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryPolicy {
    /// Create a missing ECR repository (pushes only).
    pub create: bool,
    /// Turn on scan on push in a created repository.
    pub scan_on_push: bool,
    /// Refuse to move a tag to another image; create repositories so.
    pub immutable_tags: bool,
}

impl Config {
    /// Checks what one flag at a time can say (the destination, the tags) and settles the
    /// job. Checks across flags are made while parsing (see `CheckedArgs`).
    pub fn from_args(args: &Args) -> Result<Config> {
        let destination = destination(args)?;
        for tag in args.tags.iter().chain(&args.to_tags).chain(&args.from_tag) {
            check_tag(tag).map_err(Error::usage)?;
        }
        let job = match args.promote {
            true => Job::Promote(PromoteRequest {
                names: args.names.clone(),
                from_tag: args.from_tag.clone(),
                to_tags: args.to_tags.clone(),
            }),
            false => Job::Push(PushRequest {
                images: args.images.clone(),
                names: args.names.clone(),
                tags: args.tags.clone(),
            }),
        };
        Ok(Config {
            destination,
            job,
            repositories: RepositoryPolicy {
                create: args.create_repository && !args.promote,
                scan_on_push: args.scan_on_push,
                immutable_tags: args.immutable_tags,
            },
            username: args.username.clone().filter(|_| args.password_stdin),
            jobs: args.jobs as usize,
            retry: Retry {
                retries: args.retries,
                first_delay: args.retry_delay,
            },
            dry_run: args.dry_run,
        })
    }

    /// Whether `--repository` names the one repository every image goes to.
    pub fn one_repository(&self) -> bool {
        matches!(self.destination, Destination::Repository(_))
    }
}

fn destination(args: &Args) -> Result<Destination> {
    match (&args.registry, &args.repository, args.ecr) {
        (Some(registry), _, _) => Destination::registry(registry).map_err(Error::usage),
        (_, Some(repository), _) => Destination::repository(repository).map_err(Error::usage),
        (None, None, true) => Ok(Destination::Ecr),
        // IMG_PUSH_ECR=false satisfies clap's "one destination" without naming one.
        (None, None, false) => Err(Error::usage(
            "no destination: pass --ecr, --registry or --repository",
        )),
    }
}

/// The config of a command line (tests of the modules that take a [`Config`]).
#[cfg(test)]
pub(crate) fn from_flags(flags: &[&str]) -> Config {
    use clap::Parser;
    let args = crate::CheckedArgs::try_parse_from(
        std::iter::once("img-push").chain(flags.iter().copied()),
    )
    .unwrap()
    .0;
    Config::from_args(&args).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_one_job() {
        let config = from_flags(&["--registry", "r.example.com/team", "-t", "v1", "-j", "2"]);
        assert_eq!(
            config.job,
            Job::Push(PushRequest {
                images: vec![],
                names: vec![],
                tags: vec!["v1".into()]
            })
        );
        assert_eq!(config.jobs, 2);
        assert!(!config.one_repository());
        let config = from_flags(&["--repository", "r.example.com/a", "--promote"]);
        assert!(matches!(config.job, Job::Promote(_)));
        assert!(config.one_repository());
    }

    #[test]
    fn bad_destinations_and_tags_are_usage_errors() {
        use clap::Parser;
        for flags in [
            &["--registry", "team"][..],
            &["--repository", "api"],
            &["--ecr", "--tag=-bad"],
            &["--ecr", "--promote", "--from-tag", "a b"],
        ] {
            let args = crate::CheckedArgs::try_parse_from(
                std::iter::once("img-push").chain(flags.iter().copied()),
            )
            .unwrap()
            .0;
            let err = Config::from_args(&args).unwrap_err();
            assert_eq!(err.exit().code(), 2, "{flags:?}: {err}");
        }
    }
}
