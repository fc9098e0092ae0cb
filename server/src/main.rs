//! `ferry-server`: parses flags and runs the control plane.

use clap::Parser;
use ferry_server::config::{Args, Command};

/// Runs the server or a subcommand; a failure is one line on stderr (`ferry-server: error: …`,
/// each cause once, no backtrace) and exit status 1, as `ferry` does.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-server: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

// What `token`, `check` and `probe` print on stdout is their result; logs go to stderr.
#[allow(clippy::print_stdout)]
async fn run() -> anyhow::Result<()> {
    let mut args = Args::parse();
    init_logs(&args.log_format);
    match args.command.take() {
        Some(Command::Token(cmd)) => {
            let out = ferry_server::admin::run_token(&args.data_dir, cmd)?;
            eprint!("{}", out.stderr);
            print!("{}", out.stdout);
            return Ok(());
        }
        Some(Command::Check) => {
            let report = ferry_server::admin::check(&args.data_dir)?;
            print!("{report}");
            return report.verdict();
        }
        Some(Command::Probe(probe)) => {
            let target = ferry_server::probe::Target::parse(&probe.url, &probe.path)?;
            let ok = ferry_server::probe::probe(&target)?;
            println!("GET {}: 200 OK", ok.url);
            return Ok(());
        }
        Some(Command::Serve) | None => {}
    }
    let cfg = args.server_config()?;
    let service = ferry_server::run::open_service(&cfg)?;
    let http = std::net::TcpListener::bind(args.http_addr)
        .map_err(|e| anyhow::anyhow!("binding the registry listener {}: {e}", args.http_addr))?;
    let grpc = tokio::net::TcpListener::bind(args.grpc_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the gRPC listener {}: {e}", args.grpc_addr))?;
    ferry_server::run::run(
        cfg,
        service,
        http,
        grpc,
        ferry_server::run::shutdown_signal(),
    )
    .await
}

fn init_logs(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
