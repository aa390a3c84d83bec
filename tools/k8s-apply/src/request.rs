//! The flags, turned once into what the rest of k8s-apply reads: a [`Request`] that knows
//! nothing of clap, so planning, applying and waiting can be built and tested without it.

use crate::Args;
use common::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// What to apply, where, and how to wait: the checked flags.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `-f` paths (files or directories), in the order given.
    pub files: Vec<PathBuf>,
    /// `-k` kustomization directories.
    pub kustomizations: Vec<PathBuf>,
    /// `--namespace`: for namespaced objects that name none (else the context's namespace).
    pub namespace: Option<String>,
    /// `--prune --applyset NAME`: the applyset whose former members are pruned.
    pub applyset: Option<String>,
    /// `(name, reference)` from `--image`: wins over the images pushed upstream.
    pub images: Vec<(String, String)>,
    /// `--context`: the kubeconfig context (else its current one).
    pub context: Option<String>,
    /// `--eks-cluster`: the EKS cluster to find through the EKS API instead.
    pub eks_cluster: Option<String>,
    /// Take fields other managers own (`--force-conflicts`).
    pub force_conflicts: bool,
    pub waiting: Waiting,
    /// Server-side dry run and a diff; change nothing.
    pub dry_run: bool,
}

/// How to follow the rollout, and what to do when it fails.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Wait for the workloads (not `--no-wait`).
    pub wait: bool,
    pub timeout: Duration,
    pub poll: Duration,
    /// How long a transient pod problem may last before it fails the rollout.
    pub fail_after: Duration,
    /// Ignore pod problems; wait for the workloads' own verdict or the timeout.
    pub tolerate_failures: bool,
    /// Roll back a failed apply (not `--no-rollback`).
    pub roll_back: bool,
    /// The rollback's own time budget.
    pub rollback_timeout: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            wait: true,
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
            fail_after: Duration::from_secs(20),
            tolerate_failures: false,
            roll_back: true,
            rollback_timeout: Duration::from_secs(300),
        }
    }
}

impl Request {
    /// Checks the flags against each other (exit 2, nothing sent) and keeps what they ask.
    pub fn from_args(args: &Args) -> Result<Request> {
        if args.files.is_empty() && args.kustomize.is_empty() {
            return Err(Error::usage("nothing to apply: give -f PATH or -k DIR"));
        }
        if args.poll.is_zero() {
            return Err(Error::usage("--poll must be more than 0s"));
        }
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &args.images {
            if names.contains(&name.as_str()) {
                return Err(Error::usage(format!("--image {name}=… is given twice")));
            }
            names.push(name);
        }
        Ok(Request {
            files: args.files.clone(),
            kustomizations: args.kustomize.clone(),
            namespace: args.namespace.clone().filter(|ns| !ns.is_empty()),
            applyset: args.applyset.clone().filter(|_| args.prune),
            images: args.images.clone(),
            context: args.context.clone().filter(|c| !c.is_empty()),
            eks_cluster: args.eks_cluster.clone().filter(|c| !c.is_empty()),
            force_conflicts: args.force_conflicts,
            waiting: Waiting {
                wait: !args.no_wait,
                timeout: args.timeout,
                poll: args.poll,
                fail_after: args.fail_after,
                tolerate_failures: args.tolerate_failures,
                roll_back: !args.no_rollback,
                rollback_timeout: args.rollback_timeout,
            },
            dry_run: args.dry_run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn request(argv: &[&str]) -> Result<Request> {
        let argv = ["k8s-apply"].iter().chain(argv);
        Request::from_args(&Args::parse_from(argv))
    }

    #[test]
    fn flags_become_a_request() {
        let r = request(&[
            "-f",
            "a.yaml",
            "-f",
            "dir",
            "-k",
            "kust",
            "-n",
            "shop",
            "--image",
            "api=r/api:1",
            "--context",
            "staging",
            "--no-wait",
            "--no-rollback",
            "--timeout",
            "90s",
            "--fail-after",
            "5s",
            "--force-conflicts",
        ])
        .unwrap();
        assert_eq!(r.files, [PathBuf::from("a.yaml"), PathBuf::from("dir")]);
        assert_eq!(r.kustomizations, [PathBuf::from("kust")]);
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.images, [("api".to_owned(), "r/api:1".to_owned())]);
        assert_eq!(r.context.as_deref(), Some("staging"));
        assert!(!r.waiting.wait && !r.waiting.roll_back && r.force_conflicts);
        assert_eq!(r.waiting.timeout, Duration::from_secs(90));
        assert_eq!(r.waiting.fail_after, Duration::from_secs(5));
        assert_eq!(r.waiting.rollback_timeout, Duration::from_secs(300));
    }

    #[test]
    fn nothing_to_apply_and_repeated_images_are_usage_errors() {
        assert_eq!(request(&[]).unwrap_err().exit(), common::Exit::Usage);
        let err =
            request(&["-f", "a", "--image", "api=r/a:1", "--image", "api=r/a:2"]).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }
}
