//! `ferry-agent`: parses flags and runs the agent.

use std::path::PathBuf;
use std::sync::Arc;
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
    /// Serve probes and metrics over plain HTTP on this address (e.g. 0.0.0.0:9090): GET
    /// /healthz is 200 while the process runs; GET /readyz is 200 once every provider stream is
    /// connected and every repository was reached by its last fetch, else 503 with the reasons
    /// as JSON; GET /metrics is Prometheus metrics (ferry_agent_*). Default: off.
    #[arg(long, env = "FERRY_AGENT_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

/// A failure is one line on stderr (`ferry-agent: error: …`) and exit status 1. Returning the
/// error from `main` would print its `Debug` form instead: a "Caused by" list that repeats what
/// the message already holds, and a backtrace when RUST_BACKTRACE is set.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-agent: error: {}", ferry_agent::errors::one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
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
    // After the config loaded: a config the agent refuses stays one line of output.
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %args.config.display(), "starting");
    let readiness = Arc::new(ferry_agent::health::Readiness::for_config(&config));
    let metrics = Arc::new(ferry_agent::metrics::Metrics::new());
    if let Some(addr) = args.metrics_addr {
        // Bound before the loop starts, so a taken port fails the start instead of a probe.
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("binding --metrics-addr {addr}: is another process using the port?")
        })?;
        tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
        tokio::spawn(ferry_agent::health::serve(
            listener,
            readiness.clone(),
            metrics.clone(),
        ));
    }
    let opts = ferry_agent::run::RunOptions {
        state_dir: args.state_dir,
        resync: Duration::from_secs(args.resync_secs.max(1)),
        once: args.once,
        readiness,
        metrics,
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
