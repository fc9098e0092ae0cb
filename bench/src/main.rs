//! `ferry-bench`: runs ferry next to what users would pick instead, on loopback, prints a table
//! and records it in `BENCHMARKS.md`.
//!
//! - [`wrk`]: driving the `wrk` load generator and reading its latency distribution.
//! - [`registry`]: scenario 1, registry reads against docker-registry and a constant handler.
//! - [`ceiling`]: the constant actix-web handler that bounds what this machine can serve.
//! - [`report`]: the table, and the scenario's section of `BENCHMARKS.md`.

mod ceiling;
mod registry;
mod report;
mod wrk;

use clap::{Parser, Subcommand};

/// ferry's benchmarks. Build with `cargo build --release --workspace --bins` first
/// (`bench/run.sh` does).
#[derive(Debug, Parser)]
#[command(name = "ferry-bench")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scenario 1: manifest GET/HEAD by tag and digest, tags list pages of a 100,000-tag
    /// repository, catalog; ferry vs docker-registry vs a constant handler.
    Registry(registry::Options),
    /// Every scenario.
    All(registry::Options),
    /// (internal) Serve a constant manifest: the ceiling for this machine.
    Ceiling(ceiling::Options),
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Registry(o) | Command::All(o) => {
            let section = registry::run(&o)?;
            report::write_section("registry", &section)
        }
        Command::Ceiling(o) => ceiling::serve(o),
    }
}
