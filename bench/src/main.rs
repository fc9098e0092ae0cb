//! `ferry-bench`: runs ferry next to what users would pick instead, on loopback, prints a table
//! and records it in `BENCHMARKS.md`.
//!
//! - [`registry`]: scenario 1, registry reads against docker-registry as shipped and two
//!   ceilings (an actix-web constant handler, [`nginx`] serving the bytes from memory);
//!   [`metrics_cost`]: the same reads with Prometheus metrics on and off.
//! - [`publish`]: scenario 2, publishes per second, database size and memory at 100,000 tags.
//! - [`fanout`]: scenario 3, publish → last of N `Subscribe` streams, memory per stream.
//! - [`end_to_end`]: scenario 4, publish → commit on a `git daemon`, and a 200-release burst.
//! - [`upstream`]: scenario 5, requests reaching the origin registry: ferry vs polling.
//! - [`catchup`]: scenario 6, an agent offline for 100,000 events comes back.
//! - [`status`]: scenario 7, `GetPipeline` with 1,000 clusters × 100 targets reported.
//! - [`promote`]: scenario 8, `Promote` → commits of 10 agents following the ring.
//! - [`dashboard`]: scenario 9, the dashboard's pages with 1,000 images × 100 tags.
//! - [`notify`]: scenario 10, publish latency with a hanging webhook receiver vs none.
//! - [`monorepo`]: scenario 11, the agent on config repos of 1,000 to 100,000 files.
//! - [`wrk`], [`ceiling`], [`stats`], [`origin_push`], [`report`]: the tools they share.

mod catchup;
mod ceiling;
mod dashboard;
mod end_to_end;
mod fanout;
mod metrics_cost;
mod monorepo;
mod nginx;
mod notify;
mod origin_push;
mod promote;
mod publish;
mod registry;
mod report;
mod stats;
mod status;
mod upstream;
mod wrk;

use std::time::Instant;

use clap::{Args as ClapArgs, Parser, Subcommand};

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
    /// repository, catalog; ferry vs docker-registry vs a constant handler; and manifest GET
    /// with `--registry-auth token` (Basic, Bearer) vs anonymous.
    Registry(registry::Options),
    /// Scenario 2: publishes per second (sequential and concurrent), database size and server
    /// memory with 100,000 tags; ferry vs manifest pushes to docker-registry.
    Publish(publish::Options),
    /// Scenario 3: 100, 1,000 and 5,000 Subscribe streams; publish → last receive; memory
    /// per stream.
    Fanout(fanout::Options),
    /// Scenario 4: publish → commit on a git daemon over 50 releases, and a burst of 200
    /// releases across 200 targets.
    EndToEnd(end_to_end::Options),
    /// Scenario 5: requests reaching the origin registry, ferry vs polling at 2 and 5 minutes.
    Upstream(upstream::Options),
    /// Scenario 6: an agent offline for 100,000 events resumes.
    Catchup(catchup::Options),
    /// Scenario 7: 1,000 clusters × 100 targets reported; GetPipeline and Report latency
    /// against ListTags of the same images.
    Status(status::Options),
    /// Scenario 8: Promote → every one of 10 agents following the ring committed, against a
    /// tag publish → the same agents committed.
    Promote(promote::Options),
    /// Scenario 9: the dashboard's pages with 1,000 images × 100 tags, against the registry's
    /// tags list and catalog.
    Dashboard(dashboard::Options),
    /// Scenario 10: publish latency with no `--notify-url`, an answering receiver and a hanging
    /// one, in the same run.
    Notify(notify::Options),
    /// Scenario 11: config repos of 1,000, 20,000 and 100,000 files; agent start-up against
    /// `git clone --bare`, publish → pushed for 1 and 200 targets against the git CLI, RSS.
    Monorepo(monorepo::Options),
    /// Every scenario with its default options.
    All,
    /// (internal) Serve a constant manifest: the ceiling for this machine.
    Ceiling(ceiling::Options),
}

/// A scenario's options as its subcommand would parse them with no flags.
fn defaults<T: ClapArgs>() -> T {
    #[derive(Parser)]
    struct Wrapper<T: ClapArgs> {
        #[command(flatten)]
        options: T,
    }
    Wrapper::<T>::parse_from(["ferry-bench"]).options
}

/// Runs one scenario, prints and records its section, and says how long it took.
// The table on stdout is this binary's result; progress goes to stderr.
#[allow(clippy::print_stdout)]
fn scenario(name: &str, run: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
    let started = Instant::now();
    let section = run()?;
    println!("{section}");
    report::write_section(name, &section)?;
    eprintln!("{name}: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Registry(o) => scenario("registry", || registry::run(&o)),
        Command::Publish(o) => scenario("publish", || publish::run(&o)),
        Command::Fanout(o) => scenario("fanout", || fanout::run(&o)),
        Command::EndToEnd(o) => scenario("end-to-end", || end_to_end::run(&o)),
        Command::Upstream(o) => scenario("upstream", || upstream::run(&o)),
        Command::Catchup(o) => scenario("catchup", || catchup::run(&o)),
        Command::Status(o) => scenario("status", || status::run(&o)),
        Command::Promote(o) => scenario("promote", || promote::run(&o)),
        Command::Dashboard(o) => scenario("dashboard", || dashboard::run(&o)),
        Command::Notify(o) => scenario("notify", || notify::run(&o)),
        Command::Monorepo(o) => scenario("monorepo", || monorepo::run(&o)),
        Command::All => {
            let started = Instant::now();
            scenario("registry", || registry::run(&defaults()))?;
            scenario("publish", || publish::run(&defaults()))?;
            scenario("fanout", || fanout::run(&defaults()))?;
            scenario("end-to-end", || end_to_end::run(&defaults()))?;
            scenario("upstream", || upstream::run(&defaults()))?;
            scenario("catchup", || catchup::run(&defaults()))?;
            scenario("status", || status::run(&defaults()))?;
            scenario("promote", || promote::run(&defaults()))?;
            scenario("dashboard", || dashboard::run(&defaults()))?;
            scenario("notify", || notify::run(&defaults()))?;
            scenario("monorepo", || monorepo::run(&defaults()))?;
            eprintln!(
                "all scenarios: {:.1} min",
                started.elapsed().as_secs_f64() / 60.0
            );
            Ok(())
        }
        Command::Ceiling(o) => ceiling::serve(o),
    }
}
