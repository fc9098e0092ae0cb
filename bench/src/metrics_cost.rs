//! Scenario 1, issue 11: what Prometheus metrics cost registry reads. Two fresh ferry-servers
//! hold the same image, one as deployed (`--metrics on`: every request counted and timed by
//! endpoint pattern and status) and one with `--metrics off`; manifest GETs alternate between
//! them run by run, so the machine's drift falls on both alike.

use ferry_tests::ferry::FerryServer;
use ferry_tests::origin::OriginRegistry;

use crate::wrk::{median, once, Load, Sample};

const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json";

/// One endpoint measured with metrics on and off.
pub struct Pair {
    what: &'static str,
    on: Sample,
    off: Sample,
}

/// Measures manifest GET by tag and by digest on both servers, `runs` alternating runs each.
/// `digest` is the manifest digest of `team/app:v1` at `origin`.
pub fn measure(
    runs: usize,
    load: Load,
    origin: &OriginRegistry,
    digest: &str,
) -> anyhow::Result<Vec<Pair>> {
    let source = format!("docker://{}/team/app:v1", origin.addr());
    let on = FerryServer::start_with(&["--metrics", "on"]);
    let off = FerryServer::start_with(&["--metrics", "off"]);
    for server in [&on, &off] {
        server.publish_ok(&[&source, "--insecure"]);
    }
    let repo = format!("{}/team/app", origin.addr().replace(':', "_"));
    let mut pairs = Vec::new();
    for (what, reference) in [
        ("manifest GET by tag", "v1".to_string()),
        ("manifest GET by digest", digest.to_string()),
    ] {
        let url =
            |s: &FerryServer| format!("http://{}/v2/{repo}/manifests/{reference}", s.http_addr);
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            eprintln!("registry: {what}, metrics on, then off");
            with.push(once(&url(&on), "GET", &[ACCEPT], load)?);
            without.push(once(&url(&off), "GET", &[ACCEPT], load)?);
        }
        pairs.push(Pair {
            what,
            on: median(&with),
            off: median(&without),
        });
    }
    // The servers really differ: one serves /metrics and counted the load, the other does not.
    let scraped = ferry_tests::http::get(&on.http_addr, "/metrics")?;
    anyhow::ensure!(
        scraped.status == 200
            && String::from_utf8_lossy(&scraped.body)
                .contains("ferry_http_requests_total{endpoint=\"/v2/{name}/manifests/{reference}\",status=\"200\"}"),
        "the metrics-on server did not count the load: {scraped:?}"
    );
    let absent = ferry_tests::http::get(&off.http_addr, "/metrics")?;
    anyhow::ensure!(
        absent.status == 404,
        "--metrics off still serves /metrics ({})",
        absent.status
    );
    Ok(pairs)
}

/// The Markdown subsection for `pairs`.
pub fn render(runs: usize, load: Load, pairs: &[Pair]) -> String {
    let mut s = format!(
        "\n### With metrics on and off (issue 11)\n\n\
         Two fresh ferry-servers holding the same image, one as deployed (`--metrics on`: every request \
         counted and timed by endpoint pattern and status) and one with `--metrics off`, under one wrk thread \
         (as for the token rows above). The two alternate \
         run by run (wrk threads: {}, {} connections, {} s per run, median of {runs} runs).\n\n\
         | endpoint | metrics on req/s | metrics off req/s | on ÷ off | on p50 | on p99 | off p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        load.threads, load.connections, load.seconds
    );
    for p in pairs {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0}% | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            p.what,
            p.on.rps,
            p.off.rps,
            100.0 * p.on.rps / p.off.rps,
            p.on.p50_ms,
            p.on.p99_ms,
            p.off.p99_ms
        ));
    }
    let worst = pairs
        .iter()
        .map(|p| p.on.rps / p.off.rps)
        .fold(f64::INFINITY, f64::min);
    s.push_str(&format!(
        "\nTarget: registry throughput with metrics on ≥ 95% of metrics off: **{:.0}% (the lower row), {}**.\n",
        worst * 100.0,
        if worst >= 0.95 { "met" } else { "not met" }
    ));
    s
}
