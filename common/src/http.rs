//! An HTTP client that honours the user's TLS choices: the system trust store (which also
//! reads `SSL_CERT_FILE`), an extra CA bundle, or no verification at all when asked.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// The user's TLS choices.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra PEM CA certificates to trust, in addition to the system store.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification entirely (`--insecure`).
    pub insecure: bool,
}

/// The `User-Agent` every shipkit request carries.
pub fn user_agent(tool: &str) -> String {
    format!("shipkit-{tool}/{}", env!("CARGO_PKG_VERSION"))
}

/// A client builder with `tls` applied. An unreadable or invalid CA file is a usage error
/// (exit 2), found before any request is sent.
pub fn client_builder(tool: &str, tls: &TlsOptions) -> Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder().user_agent(user_agent(tool));
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).map_err(|err| {
            Error::usage(format!("cannot read --cacert {}: {err}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
            Error::usage(format!(
                "--cacert {} is not a PEM certificate bundle: {err}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(Error::usage(format!(
                "--cacert {} holds no PEM certificate",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    Ok(builder)
}
