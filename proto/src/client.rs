//! Connecting to ferry-server's gRPC service, as the CLI and the agent both do: one channel,
//! the bearer token on every call, and message limits sized for multi-arch publishes.
//!
//! - `diagnose`: failures that mean "wrong address" (plain text behind `https://`, the
//!   registry port) turned into a [`ConnectError`] that says so.
//! - `probe`: asking an address in plain text what it speaks.

mod diagnose;
mod probe;

pub use diagnose::{tls_handshake_saw_plain_text, ExplainedChannel};

use std::error::Error as StdError;

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
pub type Client = FerryClient<InterceptedService<ExplainedChannel, BearerToken>>;

/// Why a connection could not be made.
///
/// Each message is complete on its own (callers log it with `%e` as often as with `{:#}`), so
/// no variant exposes a `source()`: the transport's causes are flattened into the text once,
/// without the repeats tonic's own chain has (`transport error: transport error`).
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The address is not a URL tonic accepts.
    #[error("invalid server address {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    Address(String),
    /// A CA file was given for a plain-text address.
    #[error("a CA file was given, but the server address {0:?} is not https://")]
    CaWithoutTls(String),
    /// The CA file could not be read.
    #[error("reading the CA file {}: {error}", .path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// TLS could not be set up (e.g. a CA file that is not PEM).
    #[error("setting up TLS for {address}: {reason}")]
    Tls {
        /// The address.
        address: String,
        /// The transport's reason, with its causes.
        reason: String,
    },
    /// The token cannot travel in an HTTP header.
    #[error("the token contains characters not allowed in a header")]
    Token,
    /// Nothing answered, or the handshake failed.
    #[error("cannot reach ferry-server at {address}: {reason}")]
    Unreachable {
        /// The address tried.
        address: String,
        /// The transport's reason, with its causes.
        reason: String,
    },
    /// An `https://` address whose server answered the TLS handshake in plain text.
    #[error(
        "the server at {address} speaks plain HTTP, not TLS: use an http:// address ({plain})"
    )]
    PlainText {
        /// The address tried.
        address: String,
        /// The same address with `http://`.
        plain: String,
    },
    /// The address is ferry-server's registry listener (or another registry), not its gRPC one.
    #[error("{address} looks like ferry-server's registry (HTTP) port, not its gRPC port: use the gRPC listener (ferry-server --grpc-addr, port {port} by default), e.g. {suggestion}", port = DEFAULT_GRPC_PORT)]
    RegistryPort {
        /// The address tried.
        address: String,
        /// The same host on the default gRPC port.
        suggestion: String,
    },
    /// Something answered in HTTP/1, which gRPC never is.
    #[error("{address} answers HTTP/1.1, not gRPC: point at ferry-server's gRPC listener (ferry-server --grpc-addr, port {port} by default)", port = DEFAULT_GRPC_PORT)]
    NotGrpc {
        /// The address tried.
        address: String,
    },
}

/// ferry-server's default gRPC port (its `--grpc-addr` is `0.0.0.0:50051`).
pub const DEFAULT_GRPC_PORT: u16 = 50051;

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
            let pem = std::fs::read(path).map_err(|error| ConnectError::CaFile {
                path: path.to_path_buf(),
                error,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| ConnectError::Tls {
            address: address.to_string(),
            reason: error_chain(&e),
        })?;
    } else if ca_file.is_some() {
        return Err(ConnectError::CaWithoutTls(address.to_string()));
    }
    let channel = match endpoint.connect().await {
        Ok(c) => ExplainedChannel::new(c, address, endpoint.uri()),
        Err(e) => return Err(diagnose::explain_connect_failure(address, endpoint.uri(), &e).await),
    };
    Ok(FerryClient::with_interceptor(channel, BearerToken(header))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES))
}

/// The explanation a failed call carries when the channel found that the address does not
/// speak gRPC (see [`diagnose::ExplainedChannel`]): print it instead of the status.
pub fn explanation(status: &tonic::Status) -> Option<&ConnectError> {
    causes(status).find_map(|c| c.downcast_ref::<ConnectError>())
}

/// True when `status` was made on this side from a transport failure rather than sent by
/// ferry-server (a status decoded from the server's response carries no source).
pub fn from_transport(status: &tonic::Status) -> bool {
    StdError::source(status).is_some()
}

/// `e` and its sources.
fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&c| c.source())
}

/// `e`'s causes joined with ": ", each said once: tonic's `transport error` label is dropped
/// and a cause that repeats the one before it (tonic and hyper-util both wrap and re-display
/// the same error) is skipped.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in causes(e) {
        let text = c.to_string();
        let label_only = c.is::<tonic::transport::Error>() && c.source().is_some();
        let repeat = parts.last().is_some_and(|last| last.ends_with(&text));
        if !label_only && !repeat && !text.is_empty() {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_says_each_cause_once() {
        #[derive(Debug, Error)]
        #[error("{0}")]
        struct Wrap(String, #[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Wrap("tcp connect error".into(), inner);
        assert_eq!(error_chain(&e), "tcp connect error: refused");
        let again = Wrap("refused".into(), std::io::Error::other("refused"));
        assert_eq!(error_chain(&again), "refused");
    }

    #[tokio::test]
    async fn a_ca_file_that_cannot_be_read_is_named_once() {
        let Err(err) = connect_with(
            "https://127.0.0.1:1",
            None,
            Some(std::path::Path::new("/nonexistent/ca.pem")),
        )
        .await
        else {
            panic!("connected without the CA file");
        };
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/ca.pem") && msg.contains("No such file"),
            "{msg}"
        );
        assert!(StdError::source(&err).is_none(), "{msg}");
    }
}
