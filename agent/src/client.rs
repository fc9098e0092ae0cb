//! The connection to a `FERRY` image provider: ListTags and ListRings for reconciliation,
//! Subscribe for events, Report for what the targets run.
//!
//! Connecting opens a channel but sends nothing, so a token is only known good once the first
//! call (ListTags) is answered; a refusal then names the token file and the server's reason.

use std::path::Path;

use anyhow::Context;
use ferry_proto::pb;
use tonic::Code;

pub use ferry_proto::client::Client;

/// Connects to `address` with the token read from `token_file`, if any, trusting `ca_file` for
/// an https:// address. The token file is read on every connect, so fixing it needs no restart.
pub async fn connect(
    address: &str,
    token_file: Option<&Path>,
    ca_file: Option<&Path>,
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
    token_file: Option<&Path>,
) -> anyhow::Result<pb::ListTagsResponse> {
    let resp = client
        .list_tags(pb::ListTagsRequest {
            images: images.to_vec(),
        })
        .await
        .map_err(|s| rpc_error("ListTags", &s, token_file))?;
    Ok(resp.into_inner())
}

/// Current ring pointers of `images` and the head seq they are consistent with.
pub async fn list_rings(
    client: &mut Client,
    images: &[String],
    token_file: Option<&Path>,
) -> anyhow::Result<pb::ListRingsResponse> {
    let resp = client
        .list_rings(pb::ListRingsRequest {
            images: images.to_vec(),
        })
        .await
        .map_err(|s| rpc_error("ListRings", &s, token_file))?;
    Ok(resp.into_inner())
}

/// Opens the event stream after `after_seq` for `images`, as `cluster` (empty: the token's
/// name), so status shows the cluster connected while it is open.
pub async fn subscribe(
    client: &mut Client,
    after_seq: u64,
    images: &[String],
    cluster: &str,
    token_file: Option<&Path>,
) -> anyhow::Result<tonic::Streaming<pb::SubscribeResponse>> {
    let resp = client
        .subscribe(pb::SubscribeRequest {
            after_seq,
            images: images.to_vec(),
            cluster: cluster.to_string(),
            observer: false,
        })
        .await
        .map_err(|s| rpc_error("Subscribe", &s, token_file))?;
    Ok(resp.into_inner())
}

/// Sends one report; answers the name the server stored it under.
pub async fn report(
    client: &mut Client,
    report: pb::ReportRequest,
    token_file: Option<&Path>,
) -> anyhow::Result<pb::ReportResponse> {
    let resp = client
        .report(report)
        .await
        .map_err(|s| rpc_error("Report", &s, token_file))?;
    Ok(resp.into_inner())
}

/// A failed call as the user can act on it: a refused token says so, naming the token file and
/// the server's reason; anything else names the call and the server's message.
pub fn rpc_error(call: &str, status: &tonic::Status, token_file: Option<&Path>) -> anyhow::Error {
    let reason = status.message();
    match (status.code(), token_file) {
        (Code::Unauthenticated | Code::PermissionDenied, Some(file)) => anyhow::anyhow!(
            "the server refused the token in {}: {reason}; put an agent token there (ferry-server token create --role agent --name NAME prints one)",
            file.display()
        ),
        (Code::Unauthenticated | Code::PermissionDenied, None) => anyhow::anyhow!(
            "the server refused the agent, which sent no token: {reason}; set config.tokenFile of this provider to a file holding an agent token"
        ),
        _ if reason.is_empty() => anyhow::anyhow!("{call}: {}", status.code()),
        _ => anyhow::anyhow!("{call}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression (issue 9): a refused token surfaced as `ListTags: the token is not known…`
    // after a "connected" line, without naming the file to fix.
    #[test]
    fn a_refused_token_names_the_file_and_the_reason() {
        let status = tonic::Status::unauthenticated("the token is not known to this server");
        let e = rpc_error("ListTags", &status, Some(Path::new("/etc/ferry/token")));
        let shown = e.to_string();
        assert!(
            shown.starts_with("the server refused the token in /etc/ferry/token: the token is not known to this server;"),
            "{shown}"
        );
        let denied =
            tonic::Status::permission_denied("token \"ci\" (roles: publisher) may not watch");
        let shown = rpc_error("Subscribe", &denied, None).to_string();
        assert!(
            shown.contains("sent no token") && shown.contains("tokenFile"),
            "{shown}"
        );
        let other = rpc_error("ListTags", &tonic::Status::unavailable("gone"), None);
        assert_eq!(other.to_string(), "ListTags: gone");
    }
}
