//! Command-line configuration of `ferry-server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::registry::auth::RegistryAuthMode;
use crate::service::Limits;
use crate::tls::TlsIdentity;

/// ferry's control plane: stores published image metadata, serves it through the OCI
/// distribution read API, and streams image events to agents over gRPC.
#[derive(Debug, Parser)]
#[command(name = "ferry-server", version)]
pub struct Args {
    /// Where the SQLite database lives.
    #[arg(
        long,
        env = "FERRY_DATA_DIR",
        default_value = "./ferry-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The registry (OCI distribution API) listener.
    #[arg(long, env = "FERRY_HTTP_ADDR", default_value = "0.0.0.0:5000")]
    pub http_addr: SocketAddr,
    /// The gRPC (publish, subscribe) listener.
    #[arg(long, env = "FERRY_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// Largest manifest accepted by publish, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_manifest_bytes: usize,
    /// Largest config blob accepted by publish, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_blob_bytes: usize,
    /// Seconds between heartbeats on idle event streams.
    #[arg(long, default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Registry worker threads (default: one per core).
    #[arg(long)]
    pub http_workers: Option<usize>,
    /// Most event streams one token may hold open at once.
    #[arg(long, default_value_t = 1000)]
    pub max_streams_per_token: usize,
    /// How registry reads are authenticated: anonymous, or token (Basic with a ferry token as
    /// the password, or the Bearer token flow through /token). With token, the dashboard at
    /// /ui/ asks for a token too (any valid one); anonymous shows it read-only to anyone.
    #[arg(
        long,
        value_enum,
        env = "FERRY_REGISTRY_AUTH",
        default_value = "anonymous"
    )]
    pub registry_auth: RegistryAuthMode,
    /// Lifetime of the registry tokens /token issues, in seconds.
    #[arg(long, default_value_t = 300)]
    pub registry_token_ttl_secs: u64,
    /// PEM certificate chain for TLS on both listeners (with --tls-key).
    #[arg(long, env = "FERRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "FERRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// On a first start (a database without tokens), store the token in FILE as the `bootstrap`
    /// token (roles publisher and agent) instead of generating one into DATA_DIR/bootstrap-token:
    /// for a token kept in a Kubernetes Secret. FILE holds `ferry_` and 64 lowercase hex digits
    /// (`printf 'ferry_%s\n' "$(openssl rand -hex 32)"`). Ignored once the database has tokens.
    #[arg(long, env = "FERRY_BOOTSTRAP_TOKEN_FILE", value_name = "FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Outbound notifications (`--notify-url` …).
    #[command(flatten)]
    pub notify: crate::notify::NotifyArgs,
    /// Serve Prometheus metrics at GET /metrics on the registry listener and count every
    /// request there (on), or neither (off).
    #[arg(long, value_enum, env = "FERRY_METRICS", default_value = "on")]
    pub metrics: Switch,
    /// On SIGTERM or SIGINT, answer /readyz 503 and gRPC health NOT_SERVING for this many
    /// seconds while still serving everything, so load balancers stop sending work; then end
    /// the event streams and close the listeners.
    #[arg(long, env = "FERRY_DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    /// The subcommand to run; none means `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Subcommands; serving is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Check the database: SQLite's integrity check and a gapless event log. Prints what it
    /// found; exits non-zero on a problem.
    Check,
    /// Manage API tokens in the data directory.
    #[command(subcommand)]
    Token(crate::admin::TokenCommand),
    /// GET /readyz (or --path) from a running server's registry listener within 2 s: exit 0 on
    /// 200, else 1 with the reason on stderr. For health checks in images without curl. Speaks
    /// plain HTTP only: it refuses https:// URLs, so it cannot probe a server run with
    /// --tls-cert.
    Probe(ProbeArgs),
}

/// `ferry-server probe`'s flags.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The registry listener, http://HOST[:PORT] (plain HTTP only).
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// The endpoint: /readyz (ready to serve) or /healthz (the process answers).
    #[arg(long, default_value = "/readyz")]
    pub path: String,
}

/// The validated server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Publish limits.
    pub limits: Limits,
    /// Heartbeat period on event streams.
    pub heartbeat: Duration,
    /// Registry worker threads.
    pub http_workers: usize,
    /// How registry reads are authenticated.
    pub registry_auth: RegistryAuthMode,
    /// Lifetime of issued registry tokens.
    pub registry_token_ttl: Duration,
    /// TLS for both listeners; plain text when None.
    pub tls: Option<TlsIdentity>,
    /// Most event streams one token may hold open.
    pub max_streams_per_token: usize,
    /// The first start's bootstrap token comes from this file instead of being generated.
    pub bootstrap_token_file: Option<PathBuf>,
    /// Outbound notifications; none without `--notify-url`.
    pub notify: crate::notify::NotifyConfig,
    /// Serve /metrics and count HTTP requests.
    pub metrics: bool,
    /// How long the server stays up, not ready, after a shutdown signal.
    pub drain: Duration,
}

impl Args {
    /// Validates the arguments into a [`ServerConfig`].
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        if self.heartbeat_secs == 0 {
            anyhow::bail!("--heartbeat-secs 0: the heartbeat period must be at least 1 second");
        }
        if self.registry_token_ttl_secs == 0 {
            anyhow::bail!(
                "--registry-token-ttl-secs 0: registry tokens must live at least 1 second"
            );
        }
        if self.max_manifest_bytes == 0 || self.max_blob_bytes == 0 {
            anyhow::bail!("--max-manifest-bytes and --max-blob-bytes must be greater than 0");
        }
        Ok(ServerConfig {
            data_dir: self.data_dir.clone(),
            limits: Limits {
                max_manifest_bytes: self.max_manifest_bytes,
                max_blob_bytes: self.max_blob_bytes,
                ..Limits::default()
            },
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            http_workers: self
                .http_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            registry_auth: self.registry_auth,
            registry_token_ttl: Duration::from_secs(self.registry_token_ttl_secs),
            max_streams_per_token: self.max_streams_per_token,
            bootstrap_token_file: self.bootstrap_token_file.clone(),
            notify: self.notify.config()?,
            metrics: self.metrics == Switch::On,
            drain: Duration::from_secs(self.drain_secs),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsIdentity::load(cert, key)?),
                _ => None,
            },
        })
    }
}
