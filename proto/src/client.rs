//! Connecting to ferry-server's gRPC service, as the CLI and the agent both do: one channel,
//! the bearer token on every call, and message limits sized for multi-arch publishes.

use thiserror::Error;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

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
    #[error("invalid server address {0:?}: expected http://HOST:PORT")]
    Address(String),
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
    let header = token
        .map(|t| {
            format!("Bearer {}", t.trim())
                .parse()
                .map_err(|_| ConnectError::Token)
        })
        .transpose()?;
    let channel = Channel::from_shared(address.to_string())
        .map_err(|_| ConnectError::Address(address.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(10))
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
