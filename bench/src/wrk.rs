//! Running `wrk` and reading what it prints.

use std::process::Command;

use anyhow::{bail, Context};
use ferry_tests::process::{require_tool, run};

/// One wrk run's numbers.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms (of the requests that completed).
    pub p99_ms: f64,
    /// Requests that got no answer within wrk's 30 s timeout.
    pub timeouts: u64,
}

/// The load: connections, threads and seconds per run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Open connections.
    pub connections: u32,
    /// wrk threads.
    pub threads: u32,
    /// Seconds per run.
    pub seconds: u32,
}

fn millis(s: &str) -> anyhow::Result<f64> {
    let (num, unit) = s.split_at(
        s.find(|c: char| c.is_ascii_alphabetic())
            .context("latency without unit")?,
    );
    let v: f64 = num.parse()?;
    Ok(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => bail!("unknown latency unit {unit:?}"),
    })
}

/// Parses `wrk --latency` output; refuses runs with error responses or socket errors other
/// than timeouts, since they measure failures, not service.
pub fn parse(out: &str) -> anyhow::Result<Sample> {
    if let Some(line) = out.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        bail!(
            "wrk saw error responses ({}); the benchmark would measure errors",
            line.trim()
        );
    }
    // Timeouts are a slow server's result and are reported; any other socket error means the
    // measurement itself broke.
    let mut timeouts = 0;
    if let Some(line) = out
        .lines()
        .find(|l| l.trim_start().starts_with("Socket errors"))
    {
        let count = |name: &str| -> u64 {
            line.split(',')
                .find_map(|part| {
                    part.trim()
                        .trim_start_matches("Socket errors:")
                        .trim()
                        .strip_prefix(name)
                })
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        if count("connect") + count("read") + count("write") > 0 {
            bail!("wrk saw socket errors ({})", line.trim());
        }
        timeouts = count("timeout");
    }
    let find = |prefix: &str| -> anyhow::Result<String> {
        out.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|r| r.trim().to_string()))
            .with_context(|| format!("no {prefix:?} line in wrk output:\n{out}"))
    };
    let rps: f64 = find("Requests/sec:")?.parse()?;
    if rps <= 0.0 {
        bail!("wrk completed no request:\n{out}");
    }
    Ok(Sample {
        rps,
        p50_ms: millis(&find("50%")?)?,
        p99_ms: millis(&find("99%")?)?,
        timeouts,
    })
}

/// Busy and total CPU time of the machine so far, in clock ticks (`/proc/stat`'s first line:
/// user, nice, system, idle, iowait, irq, softirq, steal; guest time is already inside user and
/// nice, so the fields after steal are left out; idle and iowait count as not busy).
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total.saturating_sub(idle), total))
}

/// Set once a wait timed out: the machine is busy with something else, and waiting 60 s
/// before every further measurement would only make the run long.
static GAVE_UP_WAITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Waits (at most 60 s) until the machine's CPUs are under 15% busy over a quarter second.
/// A server a measurement overloaded keeps working after its load generator stops (a
/// docker-registry with 32 queued tags lists of 100,000 tags, say), as does the kernel
/// writing back what a fill wrote; without this the next measurement would share the cores
/// with them. After one timeout it stops waiting for the rest of the run.
pub fn wait_for_quiet() {
    use std::sync::atomic::Ordering;
    if GAVE_UP_WAITING.load(Ordering::Relaxed) {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let Some(mut last) = cpu_ticks() else { return };
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let Some(now) = cpu_ticks() else { return };
        // iowait can go down (proc(5)), so the differences saturate.
        let busy = now.0.saturating_sub(last.0);
        let total = now.1.saturating_sub(last.1);
        if total > 0 && (busy as f64) < 0.15 * total as f64 {
            return;
        }
        last = now;
    }
    GAVE_UP_WAITING.store(true, Ordering::Relaxed);
    eprintln!(
        "the machine stayed busy for 60 s: measuring anyway, and not waiting again in this run"
    );
}

/// Runs one measurement of `method url`: wrk for GET, ApacheBench for HEAD (wrk's response
/// parser waits for a body after HEAD and completes nothing). Waits for the machine to be
/// quiet first ([`wait_for_quiet`]).
pub fn once(url: &str, method: &str, headers: &[&str], load: Load) -> anyhow::Result<Sample> {
    wait_for_quiet();
    if method == "HEAD" {
        return ab_head(url, headers, load);
    }
    require_tool("wrk");
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), format!("wrk.method = \"{method}\"\n"))?;
    let mut cmd = Command::new("wrk");
    cmd.args([
        "--latency",
        "-t",
        &load.threads.to_string(),
        "-c",
        &load.connections.to_string(),
        "-d",
        &format!("{}s", load.seconds),
    ])
    .arg("-s")
    .arg(script.path());
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(url);
    let out = run(&mut cmd)?;
    parse(&out).with_context(|| format!("{method} {url}"))
}

/// `ab -i` (HEAD) with keep-alive at the same concurrency, for about as long as a wrk run.
/// ApacheBench has one thread, so a load of N threads runs N `ab` processes at once, each with
/// its share of the connections (the first ones take the remainder): their rates add up, and
/// the p50 and p99 are the worst of theirs.
fn ab_head(url: &str, headers: &[&str], load: Load) -> anyhow::Result<Sample> {
    require_tool("ab");
    let processes = load.threads.clamp(1, load.connections.max(1));
    let mut children = Vec::new();
    for i in 0..processes {
        let per_process =
            load.connections / processes + u32::from(i < load.connections % processes);
        let mut cmd = Command::new("ab");
        cmd.args([
            "-i",
            "-k",
            "-q",
            "-c",
            &per_process.to_string(),
            "-t",
            &load.seconds.to_string(),
            "-n",
            "10000000",
        ]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        cmd.arg(url);
        children.push(std::thread::spawn(move || run(&mut cmd)));
    }
    let mut samples = Vec::new();
    for child in children {
        let out = child.join().expect("an ab runner thread panicked")?;
        samples.push(parse_ab(&out).with_context(|| format!("HEAD {url}"))?);
    }
    Ok(Sample {
        rps: samples.iter().map(|s| s.rps).sum(),
        p50_ms: samples.iter().map(|s| s.p50_ms).fold(0.0, f64::max),
        p99_ms: samples.iter().map(|s| s.p99_ms).fold(0.0, f64::max),
        timeouts: 0,
    })
}

/// Parses ApacheBench's report; refuses runs with failed or non-2xx requests.
pub fn parse_ab(out: &str) -> anyhow::Result<Sample> {
    let value = |prefix: &str| -> anyhow::Result<f64> {
        let line = out
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .with_context(|| format!("no {prefix:?} line in ab output:\n{out}"))?;
        Ok(line
            .split_whitespace()
            .next()
            .context("empty ab value")?
            .parse()?)
    };
    if value("Failed requests:")? > 0.0 {
        bail!("ab saw failed requests:\n{out}");
    }
    if out.contains("Non-2xx responses:") {
        bail!("ab saw error responses:\n{out}");
    }
    let rps = value("Requests per second:")?;
    if rps <= 0.0 {
        bail!("ab completed no request:\n{out}");
    }
    Ok(Sample {
        rps,
        p50_ms: value("50%")?,
        p99_ms: value("99%")?,
        timeouts: 0,
    })
}

/// The median of each field over `runs` runs (throughput and latency medians taken separately).
pub fn median_of(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<Sample>,
) -> anyhow::Result<Sample> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(f()?);
    }
    Ok(median(&samples))
}

/// The median of each field over `samples` (throughput and latency medians taken separately).
pub fn median(samples: &[Sample]) -> Sample {
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Sample {
        rps: med(samples.iter().map(|s| s.rps).collect()),
        p50_ms: med(samples.iter().map(|s| s.p50_ms).collect()),
        p99_ms: med(samples.iter().map(|s| s.p99_ms).collect()),
        timeouts: samples.iter().map(|s| s.timeouts).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 5s test @ http://127.0.0.1:1/v2/\n  1 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   1.10ms  300.00us   9.00ms   90.00%\n  Latency Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    1.50ms\n     99%    2.50ms\n  120000 requests in 5.00s, 40.00MB read\nRequests/sec:  24000.50\nTransfer/sec:      8.00MB\n";

    #[test]
    fn reads_throughput_and_percentiles() {
        let s = parse(OUT).unwrap();
        assert_eq!(s.rps, 24000.50);
        assert!((s.p50_ms - 0.85).abs() < 1e-9);
        assert_eq!(s.p99_ms, 2.5);
    }

    #[test]
    fn reads_apachebench() {
        let out = "Complete requests:      50000\nFailed requests:        0\nRequests per second:    25000.10 [#/sec] (mean)\nPercentage of the requests served within a certain time (ms)\n  50%      1\n  66%      1\n  99%      3\n 100%      9 (longest request)\n";
        let s = parse_ab(out).unwrap();
        assert_eq!((s.rps, s.p50_ms, s.p99_ms), (25000.10, 1.0, 3.0));
        assert!(
            parse_ab(&out.replace("Failed requests:        0", "Failed requests:        3"))
                .is_err()
        );
    }

    #[test]
    fn refuses_runs_with_errors() {
        let bad = OUT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("error responses"));
    }
}
