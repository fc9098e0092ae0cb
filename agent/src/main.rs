//! `ferry-agent`: parses flags and runs the agent.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Applies image releases from ferry-server to GitOps config repositories.
#[derive(Debug, Parser)]
#[command(name = "ferry-agent", version)]
struct Args {
    /// The piped-style agent config file (kind: Piped).
    #[arg(long, env = "FERRY_AGENT_CONFIG")]
    config: PathBuf,
    /// Where the agent keeps its clones and its cursor.
    #[arg(
        long,
        env = "FERRY_AGENT_STATE_DIR",
        default_value = "./ferry-agent-state"
    )]
    state_dir: PathBuf,
    /// Seconds between fetches that look for changed ImageWatcher files.
    #[arg(long, default_value_t = 30)]
    resync_secs: u64,
    /// Reconcile every target once and exit.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = ferry_agent::config::AgentConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let opts = ferry_agent::run::RunOptions {
        state_dir: args.state_dir,
        resync: Duration::from_secs(args.resync_secs.max(1)),
        once: args.once,
    };
    ferry_agent::run::run(config, opts).await
}
