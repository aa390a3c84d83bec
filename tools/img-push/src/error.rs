//! What can go wrong with each outside system img-push talks to — a registry, ECR (and
//! STS), the Docker Engine, a Docker credential helper — one enum each, and the one place
//! they become exit codes.
//!
//! Bad usage and bad input are found before any of these are asked, and are
//! [`common::Error::usage`] where they are found (exit 2). Everything here happened while
//! talking to the outside world, after the input was accepted: the job failed (exit 1).

use common::Error;

/// A registry (the Docker Registry HTTP API V2) refused, failed or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The HTTP client could not be built (TLS settings, trust store).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// A request kept failing transiently (network, 5xx, 429) until the retries ran out.
    #[error("{what}: {why} (gave up after {attempts} attempts)")]
    GaveUp {
        what: String,
        why: String,
        attempts: u32,
    },
    /// 401: the credentials (or their absence) were refused.
    #[error("{host} refused the login {who} (401 Unauthorized){advice}")]
    LoginRefused {
        host: String,
        /// `as USER` or `without credentials`.
        who: String,
        /// How to log in, when no credentials were sent.
        advice: String,
    },
    /// 403: the user may not do this.
    #[error("{host}: access denied {who} (403 Forbidden): {detail}")]
    Denied {
        host: String,
        who: String,
        detail: String,
    },
    /// Any other final refusal.
    #[error("{host}: {detail} ({status})")]
    Refused {
        host: String,
        detail: String,
        status: reqwest::StatusCode,
    },
    /// `GET /v2/` answered 404: not a registry.
    #[error("{0} does not serve the registry API (GET /v2/ answered 404)")]
    NotARegistry(String),
    /// A manifest's body could not be read.
    #[error("reading the manifest {location}: {why}")]
    ReadingManifest { location: String, why: String },
    /// A manifest's media type cannot be sent back as a header.
    #[error("odd manifest type {0:?}")]
    OddManifestType(String),
    /// The registry stored a manifest under another digest than its bytes have.
    #[error("{location}: the registry stored the manifest as {stored}, expected {expected}")]
    StoredAsAnotherDigest {
        location: String,
        stored: String,
        expected: String,
    },
    /// A manifest the Engine just pushed cannot be read back.
    #[error("{repository}: the manifest {digest} just pushed is not there")]
    PushedManifestMissing { repository: String, digest: String },
    /// The registry wants a password where only an identity token is known.
    #[error(
        "{0} asks for a user name and password, but the Docker configuration holds an \
         identity token for it"
    )]
    NeedsPassword(String),
    /// The token service could not be reached.
    #[error("asking {realm} for a token for {host}: {why}")]
    TokenUnreachable {
        realm: String,
        host: String,
        why: String,
    },
    /// The token service refused.
    #[error("{realm} refused a token for {scope} as {user} ({status})")]
    TokenRefused {
        realm: String,
        scope: String,
        user: String,
        status: reqwest::StatusCode,
    },
    /// The token service answered, but not with a token.
    #[error("{realm} answered {what}")]
    NoToken {
        realm: String,
        /// `without a token`, `something other than a token`.
        what: &'static str,
    },
    /// A promotion's source tag does not exist.
    #[error("{reference} does not exist: nothing to promote for {name}")]
    NothingToPromote { reference: String, name: String },
}

/// ECR or STS refused or answered without what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// An API call failed (the SDK's error and its sources on one line).
    #[error("{call}: {why}")]
    Call { call: String, why: String },
    /// GetCallerIdentity named no account.
    #[error("STS GetCallerIdentity answered without an account")]
    NoAccount,
    /// No login token (GetAuthorizationToken).
    #[error(transparent)]
    Login(#[from] common::ecr::LoginError),
    /// The repository does not exist and may not be created.
    #[error(
        "the ECR repository {path} does not exist in {host}: create it, or pass \
         --create-repository"
    )]
    MissingRepository { path: String, host: String },
}

impl EcrError {
    /// A failed SDK call `call`, with the error's sources on one line.
    pub fn call(call: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> EcrError {
        EcrError::Call {
            call: call.into(),
            why: common::aws::error_line(err),
        }
    }
}

/// The Docker Engine failed a call, or a push it made does not check out.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Inspecting an image failed for another reason than its absence.
    #[error("inspecting the local image {reference}: {why}")]
    Inspect { reference: String, why: String },
    /// Tagging the image for its destination failed.
    #[error("tagging {image} as {target}: {why}")]
    Tag {
        image: String,
        target: String,
        why: String,
    },
    /// The push failed (after `attempts` attempts).
    #[error("pushing {target}: {why}{}", gave_up(*attempts))]
    Push {
        target: String,
        why: String,
        attempts: u32,
    },
    /// The digest the Engine reported is not the one the registry holds.
    #[error("pushed {target}: the Engine reported {reported}, but the registry has {registry}")]
    DigestMismatch {
        target: String,
        reported: String,
        registry: String,
    },
    /// The registry does not have the tag the Engine pushed.
    #[error("pushed {target}, but the registry does not have it")]
    NotInRegistry { target: String },
}

fn gave_up(attempts: u32) -> String {
    match attempts {
        0 | 1 => String::new(),
        n => format!(" (gave up after {n} attempts)"),
    }
}

// The one place these become exit codes: each is the job failing (exit 1).

impl From<RegistryError> for Error {
    fn from(err: RegistryError) -> Error {
        Error::Failed(err.into())
    }
}

impl From<EcrError> for Error {
    fn from(err: EcrError) -> Error {
        Error::Failed(err.into())
    }
}

impl From<EngineError> for Error {
    fn from(err: EngineError) -> Error {
        Error::Failed(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_failures_exit_1_with_their_message() {
        let errors: [Error; 4] = [
            RegistryError::NotARegistry("r.example.com".into()).into(),
            EcrError::NoAccount.into(),
            common::registry_auth::HelperError::NotJson {
                program: "docker-credential-x".into(),
                server: "r.example.com".into(),
            }
            .into(),
            EngineError::Push {
                target: "r/api:1".into(),
                why: "EOF".into(),
                attempts: 3,
            }
            .into(),
        ];
        for err in &errors {
            assert_eq!(err.exit().code(), 1, "{err}");
        }
        assert_eq!(
            errors[3].to_string(),
            "pushing r/api:1: EOF (gave up after 3 attempts)"
        );
        let once = EngineError::Push {
            target: "r/api:1".into(),
            why: "denied".into(),
            attempts: 1,
        };
        assert_eq!(once.to_string(), "pushing r/api:1: denied");
    }
}
