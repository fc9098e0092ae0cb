//! Scenario 10: a webhook receiver that hangs must not slow publishes. Three ferry-servers in the
//! same run: no `--notify-url` (the baseline), one whose receiver answers 200 at once, and one
//! whose receiver reads each request and never answers (so every delivery waits out its
//! timeout, the queue fills, and the rest are dropped). The same sequential publishes go to
//! each in interleaved rounds, so drift on a shared machine hits all three alike.

use std::time::Instant;

use ferry_tests::ferry::FerryServer;
use ferry_tests::receiver::{Answer, Receiver};
use ferry_tests::releases::release;

use crate::report::machine;
use crate::stats::Dist;

/// `ferry-bench notify`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Publishes per server per round.
    #[arg(long, default_value_t = 200)]
    per_round: u64,
    /// Rounds (each server gets every round once, in turn).
    #[arg(long, default_value_t = 5)]
    rounds: u64,
    /// `--notify-queue` of the notifying servers: small, so the hanging one drops most.
    #[arg(long, default_value_t = 64)]
    queue: usize,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let rt = tokio::runtime::Runtime::new()?;
    let answering = Receiver::start(|_| Answer::Status(200));
    let hanging = Receiver::start(|_| Answer::Hang);
    let queue = o.queue.to_string();
    let notify = |url: &str| {
        FerryServer::start_with(&[
            "--notify-url",
            url,
            "--notify-queue",
            &queue,
            "--notify-timeout",
            "10s",
        ])
    };
    let servers = [
        ("no receiver", FerryServer::start()),
        ("answering receiver", notify(&answering.url("/hook"))),
        ("hanging receiver", notify(&hanging.url("/hook"))),
    ];
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    rt.block_on(async {
        let mut clients = Vec::new();
        for (_, s) in &servers {
            clients.push(s.client().await);
        }
        for round in 0..o.rounds {
            eprintln!("notify: round {}/{}", round + 1, o.rounds);
            for (i, client) in clients.iter_mut().enumerate() {
                for k in 0..o.per_round {
                    let n = round * o.per_round + k;
                    let req = release("bench.example.com/notify/app", n, vec![format!("r{n}")]);
                    let t = Instant::now();
                    client.publish(req).await?;
                    latencies[i].push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        anyhow::Ok(())
    })?;
    let dists: Vec<Dist> = latencies.into_iter().map(Dist::new).collect();
    let dropped = servers[2]
        .1
        .log()
        .lines()
        .filter(|l| l.contains("notification dropped"))
        .count();
    let base = dists[0].p50();
    let mut s = String::new();
    s.push_str("## 10. Notifications: a hanging receiver\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh notify`. Three ferry-servers in one run: no `--notify-url`, a receiver that answers 200, \
         and a receiver that reads each request and never answers (`--notify-timeout 10s`, `--notify-queue {}`). \
         Each gets {} sequential publishes (one release, one tag), in {} interleaved rounds of {}. \
         Every publish announces a release, so the hanging receiver's queue fills and the rest are dropped: \
         {dropped} drops were logged during the run.\n\n",
        o.queue,
        o.per_round * o.rounds,
        o.rounds,
        o.per_round
    ));
    s.push_str(
        "| server | publishes | p50 | p99 | p50 ÷ no receiver |\n|---|---:|---:|---:|---:|\n",
    );
    for ((label, _), d) in servers.iter().zip(&dists) {
        s.push_str(&format!(
            "| {label} | {} | {:.2} ms | {:.2} ms | {:.2}× |\n",
            d.len(),
            d.p50(),
            d.p99(),
            d.p50() / base
        ));
    }
    Ok(s)
}
