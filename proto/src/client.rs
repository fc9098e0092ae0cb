//! Connecting to ferry-server's gRPC service, as the CLI and the agent both do: one channel,
//! the bearer token on every call, and message limits sized for multi-arch publishes.

use thiserror::Error;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::pb::ferry_client::FerryClient;
use crate::MAX_GRPC_MESSAGE_BYTES;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected client.
pub type Client = FerryClient<InterceptedService<Channel, BearerToken>>;

/// Why a connection could not be made.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The address is not a URL tonic accepts.
    #[error("invalid server address {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    Address(String),
    /// A CA file was given for a plain-text address.
    #[error("a CA file was given, but the server address {0:?} is not https://")]
    CaWithoutTls(String),
    /// The CA file could not be read.
    #[error("reading the CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up (e.g. a CA file that is not PEM).
    #[error("setting up TLS for {address}: {source}")]
    Tls {
        /// The address.
        address: String,
        /// The transport's reason.
        source: tonic::transport::Error,
    },
    /// The token cannot travel in an HTTP header.
    #[error("the token contains characters not allowed in a header")]
    Token,
    /// Nothing answered, or the handshake failed.
    #[error("cannot reach ferry-server at {address}: {source}")]
    Unreachable {
        /// The address tried.
        address: String,
        /// The transport's reason.
        source: tonic::transport::Error,
    },
}

/// Connects to `address` (http://HOST:PORT), sending `token` with every call when given.
pub async fn connect(address: &str, token: Option<&str>) -> Result<Client, ConnectError> {
    connect_with(address, token, None).await
}

/// Connects to `address`: `http://` in plain text, `https://` over TLS trusting the system's
/// CAs and, when given, the PEM bundle `ca_file` (for a private CA). Sends `token` with every
/// call when given.
pub async fn connect_with(
    address: &str,
    token: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> Result<Client, ConnectError> {
    let header = token
        .map(|t| {
            format!("Bearer {}", t.trim())
                .parse()
                .map_err(|_| ConnectError::Token)
        })
        .transpose()?;
    let mut endpoint = Channel::from_shared(address.to_string())
        .map_err(|_| ConnectError::Address(address.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(10));
    if address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| ConnectError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|source| ConnectError::Tls {
                address: address.to_string(),
                source,
            })?;
    } else if ca_file.is_some() {
        return Err(ConnectError::CaWithoutTls(address.to_string()));
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable {
            address: address.to_string(),
            source,
        })?;
    Ok(FerryClient::with_interceptor(channel, BearerToken(header))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES))
}
