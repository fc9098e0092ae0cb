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
    let error_code = args.command.error_code();
    match ferry_cli::run(args).await {
        Ok(ferry_cli::Outcome::Published { digest, ring_moves }) => {
            println!("{digest}");
            for line in ring_moves {
                eprintln!("{line}");
            }
            std::process::ExitCode::SUCCESS
        }
        Ok(ferry_cli::Outcome::Printed { text, note, code }) => {
            print!("{text}");
            eprint!("{note}");
            std::process::ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            std::process::ExitCode::from(error_code)
        }
    }
}
