//! The gRPC connection to ferry-server (shared with the agent: [`ferry_proto::client`]).

pub use ferry_proto::client::Client;

/// Connects to `server` (http://HOST:PORT) with the publisher token, if any.
pub async fn connect(
    server: &str,
    token: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<Client> {
    Ok(ferry_proto::client::connect_with(server, token, ca_file).await?)
}
