//! Each cluster's server certificate, issued at start-up by the local CA (the one
//! `scripts/services` makes and the machine trusts), and the rustls server configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA that signs the clusters' certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    /// Reads the CA certificate and its key (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Ca> {
        let cert_pem = std::fs::read_to_string(cert)
            .with_context(|| format!("reading the CA certificate {}", cert.display()))?;
        let key_pem = std::fs::read_to_string(key)
            .with_context(|| format!("reading the CA key {}", key.display()))?;
        Ok(Ca { cert_pem, key_pem })
    }

    /// The CA certificate (PEM), as a kubeconfig carries it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A rustls server configuration with a new certificate for `localhost` and
    /// `127.0.0.1`, offering HTTP/1.1 only (kubectl and kube-rs fall back to it).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let ca_key = KeyPair::from_pem(&self.key_pem).context("reading the CA key")?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)
            .context("reading the CA certificate")?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .context("server certificate names")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-emulator");
        let key = KeyPair::generate().context("generating the server key")?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the server certificate")?;
        let ca_der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .context("the CA certificate is not PEM")?;
        let chain = vec![cert.der().clone(), ca_der];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .context("the server certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
