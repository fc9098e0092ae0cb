//! `ferry`: parses flags and runs the command.

use clap::Parser;

// The digest on stdout is this binary's result (CI captures it); logs go to stderr.
#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = ferry_cli::Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match ferry_cli::run(args).await {
        Ok(ferry_cli::Outcome::Published { digest }) => {
            println!("{digest}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
