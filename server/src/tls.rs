//! TLS for both listeners from one PEM certificate chain and key (`--tls-cert`, `--tls-key`).
//! The files are read and checked at start-up, so a wrong path or a key that does not parse
//! stops the server with the file named, not the first handshake.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its key, as PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_file: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsIdentity")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads and checks `cert` (PEM chain, leaf first) and `key` (PEM PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("reading --tls-cert {}", cert.display()))?;
        let key_pem =
            std::fs::read(key).with_context(|| format!("reading --tls-key {}", key.display()))?;
        let id = TlsIdentity {
            cert_file: cert.to_path_buf(),
            cert_pem,
            key_pem,
        };
        id.rustls_config().with_context(|| {
            format!(
                "--tls-cert {} with --tls-key {}",
                cert.display(),
                key.display()
            )
        })?;
        Ok(id)
    }

    /// The registry listener's rustls configuration (HTTP/1.1).
    pub fn rustls_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("the certificate file is not PEM")?;
        if certs.is_empty() {
            anyhow::bail!("the certificate file holds no CERTIFICATE block");
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .context("the key file holds no PEM private key")?;
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the key does not match the certificate, or is of an unsupported kind")
    }

    /// The gRPC listener's TLS configuration.
    pub fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}
