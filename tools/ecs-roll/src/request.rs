//! The flags, turned once into what the rest of ecs-roll reads: a [`Request`] that knows
//! nothing of clap, so planning and applying can be built and tested without it.

use crate::Args;
use crate::follow::Pace;
use crate::images::EnvOverride;
use common::{Error, Result};
use std::path::PathBuf;

/// What to roll, how, and how to wait: the checked flags.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub cluster: String,
    /// The services, each once, in the order given.
    pub services: Vec<String>,
    /// What changes besides the images pushed upstream.
    pub changes: Changes,
    /// `--task-definition-file`s, read by [`crate::plan`].
    pub task_definition_files: Vec<PathBuf>,
    /// `--service-definition`s, read by [`crate::plan`].
    pub service_definitions: Vec<PathBuf>,
    /// `(service, url)` from `--endpoint`.
    pub endpoints: Vec<(String, String)>,
    pub waiting: Waiting,
    /// Show what would change; register and update nothing.
    pub dry_run: bool,
}

/// What a deployment changes besides the images pushed upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// `(container, image)` from `--container`: wins over what was pushed.
    pub containers: Vec<(String, String)>,
    pub env: Vec<EnvOverride>,
    pub desired_count: Option<i32>,
    /// Deploy even an unchanged task definition.
    pub force_new_deployment: bool,
}

/// How to follow a deployment, and what to do when it fails.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    /// Follow the deployment (not `--no-wait`).
    pub follow: bool,
    pub pace: Pace,
    /// Stopped tasks of the new deployment that make it a failure (0: never).
    pub max_task_failures: usize,
    /// Roll back a failed deployment (not `--no-rollback`).
    pub roll_back: bool,
}

impl Request {
    /// Checks the flags against each other (exit 2, nothing sent) and keeps what they ask.
    pub fn from_args(args: &Args) -> Result<Request> {
        for (service, _) in &args.endpoints {
            if !args.services.contains(service) {
                return Err(Error::usage(format!(
                    "--endpoint {service}=…: {service} is not one of the --service names"
                )));
            }
        }
        if let Some(n) = args.desired_count.filter(|n| *n < 0) {
            return Err(Error::usage(format!(
                "--desired-count {n}: must be 0 or more"
            )));
        }
        let mut services: Vec<String> = Vec::new();
        for name in &args.services {
            if !services.contains(name) {
                services.push(name.clone());
            }
        }
        Ok(Request {
            cluster: args.cluster.clone(),
            services,
            changes: Changes {
                containers: args.containers.clone(),
                env: args.env.clone(),
                desired_count: args.desired_count,
                force_new_deployment: args.force_new_deployment,
            },
            task_definition_files: args.task_definition_files.clone(),
            service_definitions: args.service_definitions.clone(),
            endpoints: args.endpoints.clone(),
            waiting: Waiting {
                follow: !args.no_wait,
                pace: Pace {
                    poll: args.poll,
                    timeout: args.timeout,
                    stable_for: args.stable_for,
                },
                max_task_failures: args.max_task_failures,
                roll_back: !args.no_rollback,
            },
            dry_run: args.dry_run,
        })
    }

    /// The `--endpoint` URLs of `service`.
    pub fn endpoints_of(&self, service: &str) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, url)| url.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    fn request(argv: &[&str]) -> Result<Request> {
        let argv = ["ecs-roll"].iter().chain(argv);
        Request::from_args(&Args::parse_from(argv))
    }

    #[test]
    fn flags_become_a_request_with_each_service_once() {
        let r = request(&[
            "--service",
            "api",
            "--service",
            "auth,api",
            "--no-wait",
            "--no-rollback",
            "--endpoint",
            "auth=http://x/",
            "--desired-count",
            "2",
            "--poll",
            "2s",
        ])
        .unwrap();
        assert_eq!(r.services, ["api", "auth"]);
        assert!(!r.waiting.follow && !r.waiting.roll_back);
        assert_eq!(r.waiting.pace.poll, Duration::from_secs(2));
        assert_eq!(r.changes.desired_count, Some(2));
        assert_eq!(r.endpoints_of("auth"), ["http://x/"]);
        assert!(r.endpoints_of("api").is_empty());
    }

    #[test]
    fn flags_that_contradict_each_other_are_usage_errors() {
        let err = request(&["--service", "api", "--endpoint", "web=http://x/"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("web is not one of the --service names"),
            "{err}"
        );
        let err = request(&["--service", "api", "--desired-count=-1"]).unwrap_err();
        assert_eq!(err.exit(), common::Exit::Usage);
    }
}
