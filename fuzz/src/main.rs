//! `ferry-fuzz TARGET --seconds N`: fuzzes one target until the time is up, then prints how many
//! inputs it ran. A failure is shrunk, saved under `fuzz/regressions/TARGET/` (where the
//! regression test and later runs pick it up) and ends the run with a non-zero status.

use std::time::{Duration, Instant};

use clap::Parser;
use ferry_fuzz::{corpus, inputs, run_target, TARGETS};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Fuzz one of ferry's parsers or editors.
#[derive(Parser)]
struct Args {
    /// reference, manifest, yaml_edit or image_watcher.
    target: String,
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

// The count of inputs run is this binary's result; a failure is the error it returns.
#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !TARGETS.contains(&args.target.as_str()) {
        anyhow::bail!(
            "unknown target {:?}; targets: {}",
            args.target,
            TARGETS.join(", ")
        );
    }
    let seeds = corpus(&args.target)?;
    let strategy = inputs(seeds.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut runs: u64 = 0;
    // Quiet the default panic message: failures are reported once, shrunk.
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 10_000,
            failure_persistence: None,
            ..Config::default()
        });
        let target = args.target.clone();
        let result = runner.run(&strategy, move |data| {
            std::panic::catch_unwind(|| run_target(&target, &data))
                .map_err(|e| TestCaseError::fail(panic_text(&e)))
        });
        match result {
            Ok(()) => runs += 10_000,
            Err(TestError::Fail(why, data)) => {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("regressions")
                    .join(&args.target);
                std::fs::create_dir_all(&dir)?;
                let file = dir.join(format!("crash-{:016x}", fxhash(&data)));
                std::fs::write(&file, &data)?;
                anyhow::bail!("{}: {why}\ninput saved to {}", args.target, file.display());
            }
            Err(e) => anyhow::bail!("{}: {e}", args.target),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: {runs} inputs in {secs:.0} s ({:.0}/s) from {} seeds, no failure",
        args.target,
        runs as f64 / secs,
        seeds.len()
    );
    Ok(())
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// A small stable hash for file names.
fn fxhash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
