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
    // Each cause once: `{:?}` of an anyhow chain (what returning it prints) would repeat causes
    // that a message already holds (see ferry_agent::errors).
    run(Args::parse())
        .await
        .map_err(|e| anyhow::anyhow!(ferry_agent::errors::one_line(&e)))
}

async fn run(args: Args) -> anyhow::Result<()> {
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
    tokio::select! {
        result = ferry_agent::run::run(config, opts) => result,
        signal = shutdown_signal() => {
            // Dropping the loop stops taking events; an apply already running (a fetch, commit
            // and push on a blocking thread) is left to finish, because the runtime waits for
            // blocking tasks before the process exits. A push is never cut in half by a stop.
            tracing::info!(%signal, "stopping; a push in progress is finished first");
            Ok(())
        }
    }
}

/// Completes with the signal's name on SIGTERM or SIGINT.
async fn shutdown_signal() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
