//! The connection to a `FERRY` image provider: ListTags for reconciliation, Subscribe for events.

use anyhow::Context;
use ferry_proto::pb::{self, ferry_client::FerryClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds the agent token to every call.
#[derive(Clone)]
pub struct Token(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected provider client.
pub type Client = FerryClient<InterceptedService<Channel, Token>>;

/// Connects to `address` with the token read from `token_file`, if any.
pub async fn connect(
    address: &str,
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<Client> {
    let token = match token_file {
        Some(path) => {
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("reading token file {}", path.display()))?;
            Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .context("the token file holds characters not allowed in a header")?,
            )
        }
        None => None,
    };
    let channel = Channel::from_shared(address.to_string())
        .with_context(|| format!("invalid provider address {address:?}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach ferry-server at {address}"))?;
    Ok(FerryClient::with_interceptor(channel, Token(token))
        .max_decoding_message_size(ferry_proto::MAX_GRPC_MESSAGE_BYTES))
}

/// Current tags of `images` and the head seq they are consistent with.
pub async fn list_tags(
    client: &mut Client,
    images: &[String],
) -> anyhow::Result<pb::ListTagsResponse> {
    let resp = client
        .list_tags(pb::ListTagsRequest {
            images: images.to_vec(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("ListTags: {}", s.message()))?;
    Ok(resp.into_inner())
}

/// Opens the event stream after `after_seq` for `images`.
pub async fn subscribe(
    client: &mut Client,
    after_seq: u64,
    images: &[String],
) -> anyhow::Result<tonic::Streaming<pb::SubscribeResponse>> {
    let resp = client
        .subscribe(pb::SubscribeRequest {
            after_seq,
            images: images.to_vec(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("Subscribe: {}", s.message()))?;
    Ok(resp.into_inner())
}
