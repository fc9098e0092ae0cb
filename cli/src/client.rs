//! The gRPC connection to ferry-server.

use anyhow::Context;
use ferry_proto::pb::ferry_client::FerryClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub struct TokenInterceptor(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected client.
pub type Client = FerryClient<InterceptedService<Channel, TokenInterceptor>>;

/// Connects to `server` (http://HOST:PORT).
pub async fn connect(server: &str, token: Option<&str>) -> anyhow::Result<Client> {
    let header = match token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .context("the token contains characters not allowed in a header")?,
        ),
        None => None,
    };
    let endpoint = Channel::from_shared(server.to_string())
        .with_context(|| format!("invalid server address {server:?}: expected http://HOST:PORT"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach ferry-server at {server}"))?;
    Ok(
        FerryClient::with_interceptor(channel, TokenInterceptor(header))
            .max_decoding_message_size(ferry_proto::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(ferry_proto::MAX_GRPC_MESSAGE_BYTES),
    )
}
