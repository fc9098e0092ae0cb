//! The `ferry` command, run by CI once per built image.
//!
//! - [`source`]: reading an image's manifests and configs from an origin registry or an OCI layout.
//! - [`publish`]: building the `Publish` request and sending it to ferry-server.
//! - [`client`]: the gRPC connection (server address, token).

pub mod client;
pub mod publish;
pub mod source;

use std::collections::BTreeMap;

use clap::{Parser, Subcommand};

/// Records built container images in ferry, so clusters learn about them without polling.
#[derive(Debug, Parser)]
#[command(name = "ferry", version)]
pub struct Args {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish one image: prints its manifest digest (only that) on stdout.
    Publish(PublishArgs),
}

/// `ferry publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// docker://HOST/REPO:TAG, docker://HOST/REPO@DIGEST, or oci:DIR[:TAG].
    pub source: String,
    /// The image name clusters pull it as (default for docker://: HOST/REPO; required for oci:).
    #[arg(long)]
    pub image: Option<String>,
    /// Extra tags to point at the image (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Labels merged over the image config's (repeatable), KEY=VALUE.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// For oci: sources, where the layers can be pulled from (docker://HOST/REPO), so that
    /// ferry's registry can redirect layer reads there.
    #[arg(long)]
    pub origin: Option<String>,
    /// Origin registry credentials, USER:PASSWORD (default: the docker config file).
    #[arg(long, env = "FERRY_ORIGIN_CREDS", hide_env_values = true)]
    pub creds: Option<String>,
    /// Talk to the origin registry over plain HTTP.
    #[arg(long)]
    pub insecure: bool,
    /// ferry-server's gRPC address (its --grpc-addr listener, not the registry port);
    /// https:// for a server with TLS.
    #[arg(long, env = "FERRY_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// API token (role publisher).
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA bundle to trust for an https:// --server (besides the system's CAs).
    #[arg(long, env = "FERRY_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Read the API token from this file (e.g. the server's bootstrap-token) instead.
    #[arg(long, env = "FERRY_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<std::path::PathBuf>,
}

impl PublishArgs {
    /// The token from --token or --token-file, if either was given.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| anyhow::anyhow!("reading --token-file {}: {e}", path.display())),
            (None, None) => Ok(None),
        }
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "label {s:?} must be KEY=VALUE with a non-empty KEY"
        )),
    }
}

/// What a command produced, for `main` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ferry publish`: the manifest digest, the only thing printed on stdout.
    Published {
        /// `sha256:…`.
        digest: String,
    },
}

/// Runs a parsed command.
pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Command::Publish(p) => {
            let labels: BTreeMap<String, String> = p.labels.iter().cloned().collect();
            let digest = publish::publish(&p, labels).await?;
            Ok(Outcome::Published { digest })
        }
    }
}
