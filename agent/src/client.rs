//! The connection to a `FERRY` image provider: ListTags for reconciliation, Subscribe for events.

use anyhow::Context;
use ferry_proto::pb;

pub use ferry_proto::client::Client;

/// Connects to `address` with the token read from `token_file`, if any, trusting `ca_file` for
/// an https:// address.
pub async fn connect(
    address: &str,
    token_file: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<Client> {
    let token = match token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading token file {}", path.display()))?,
        ),
        None => None,
    };
    Ok(ferry_proto::client::connect_with(address, token.as_deref(), ca_file).await?)
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
