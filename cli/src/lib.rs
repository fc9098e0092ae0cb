//! The `ferry` command: run by CI once per built image, and by people moving rings.
//!
//! - [`source`]: reading an image's manifests and configs from an origin registry or an OCI layout.
//! - [`publish`]: building the `Publish` request and sending it to ferry-server.
//! - [`client`]: the gRPC connection (server address, token).
//! - [`events`]: `ferry events`, the event log as a table, optionally followed.
//! - [`pipeline_file`]: pipeline files → `PipelineSpec`, refusals naming `file:line:col`.
//! - [`rings`]: the pipeline and ring verbs (apply, promote, shift, status, version next …).

pub mod client;
pub mod events;
pub mod pipeline_file;
pub mod publish;
pub mod rings;
pub mod source;

use std::collections::BTreeMap;

use clap::{Parser, Subcommand};

/// Records built container images in ferry, so clusters learn about them without polling, and
/// moves them through the rings of a pipeline (docs/rings.md).
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
    /// Publish one image: prints its manifest digest (only that) on stdout; ring moves
    /// (`--to`) go to stderr.
    Publish(PublishArgs),
    /// Apply, list and show pipelines.
    #[command(subcommand)]
    Pipeline(rings::PipelineCommand),
    /// Move one ring of an image to a digest (a root image moves its bundle).
    Promote(rings::PromoteArgs),
    /// Move every ring of a pipeline to what the ring before it runs, at once.
    Shift(rings::ShiftArgs),
    /// Undo a pipeline's last shift: every pointer it moved goes back.
    Unshift(rings::UnshiftArgs),
    /// Move a ring back to its previous digest and hold autoPromote there.
    Rollback(rings::RollbackArgs),
    /// Mark a digest as never to enter a ring again.
    Reject(rings::RejectArgs),
    /// What each ring of a pipeline (or of every pipeline listing an image) runs, where.
    Status(rings::StatusArgs),
    /// Versions for builds.
    #[command(subcommand)]
    Version(rings::VersionCommand),
    /// Whether CI must build IMAGE for RING: exit 0 = build needed, 1 = not, 2 = error.
    NeedsBuild(rings::NeedsBuildArgs),
    /// The event log (tag moves, ring moves, pipeline edits) as a table, like `kubectl get
    /// events`; --follow keeps streaming.
    Events(events::EventsArgs),
}

/// How to reach ferry-server: address, token, CA.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// ferry-server's gRPC address (its --grpc-addr listener, not the registry port);
    /// https:// for a server with TLS.
    #[arg(long, env = "FERRY_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// API token: role publisher to publish, promoter to apply pipelines and move rings; any
    /// valid token to read status.
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA bundle to trust for an https:// --server (besides the system's CAs).
    #[arg(long, env = "FERRY_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Read the API token from this file (e.g. the server's bootstrap-token) instead.
    #[arg(long, env = "FERRY_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<std::path::PathBuf>,
}

impl ServerArgs {
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

    /// Connects with these settings.
    pub async fn connect(&self) -> anyhow::Result<client::Client> {
        let token = self.token()?;
        client::connect(&self.server, token.as_deref(), self.ca_file.as_deref()).await
    }
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
    /// Also move this ring to the published digest (of every pipeline listing the image, or of
    /// --pipeline), under the promote rules; needs role promoter. Default: ante, where a new
    /// build waits; `none` moves no ring.
    #[arg(long = "to", value_name = "RING")]
    pub to_ring: Option<String>,
    /// The pipeline whose ring --to moves (default: every pipeline listing the image).
    #[arg(long, value_name = "PIPELINE")]
    pub pipeline: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
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
    /// `ferry publish`: the manifest digest, the only thing printed on stdout, and the ring moves
    /// (one line each, for stderr).
    Published {
        /// `sha256:…`.
        digest: String,
        /// What `--to` moved, as printed.
        ring_moves: Vec<String>,
    },
    /// Any other command: text for stdout and the exit code (`ferry needs-build` exits 1 for
    /// "no build needed").
    Printed {
        /// What to print on stdout (ends with a newline).
        text: String,
        /// What to print on stderr (`ferry version next`'s why), possibly empty.
        note: String,
        /// The process exit code.
        code: u8,
    },
}

impl Command {
    /// The exit code for a failed command: 2 for `ferry needs-build` (1 means "no build
    /// needed" there), 1 otherwise.
    pub fn error_code(&self) -> u8 {
        match self {
            Command::NeedsBuild(_) => 2,
            _ => 1,
        }
    }
}

/// Runs a parsed command.
pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Command::Publish(p) => {
            let labels: BTreeMap<String, String> = p.labels.iter().cloned().collect();
            let (digest, moves) = publish::publish(&p, labels).await?;
            Ok(Outcome::Published {
                digest,
                ring_moves: rings::print::moves(&moves),
            })
        }
        Command::Events(e) => {
            // Streamed as it arrives (--follow may never end), so not an Outcome's text.
            events::run(&e, &mut std::io::stdout()).await?;
            Ok(Outcome::Printed {
                text: String::new(),
                note: String::new(),
                code: 0,
            })
        }
        other => rings::run(other).await,
    }
}
