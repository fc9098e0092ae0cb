//! Scenario 2: publishing. ferry takes a release over gRPC (manifest and config in one
//! request, acknowledged once durable); the baseline is what CI does to a registry for the same
//! metadata: upload the config blob to docker-registry (POST then PUT) and PUT the manifest.
//! Both are measured sequentially and with 16 concurrent publishers. Then ferry is given a
//! 100,000-tag repository, and its database size and memory are read.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use ferry_tests::ferry::FerryServer;
use ferry_tests::origin::OriginRegistry;

use crate::origin_push::{push_release, repo_base, upload_shared_layer};
use crate::report::machine;
use crate::stats::{dir_bytes, mib, rss_bytes, Dist};
use ferry_tests::releases::release;

/// `ferry-bench publish`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Releases per ferry measurement.
    #[arg(long, default_value_t = 2000)]
    releases: u64,
    /// Releases per docker-registry measurement (it is slower; fewer keep the run short).
    #[arg(long, default_value_t = 500)]
    registry_releases: u64,
    /// Concurrent publishers in the concurrent runs.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Tags in the repository whose size and memory are read.
    #[arg(long, default_value_t = 100_000)]
    tags: u64,
}

/// Publishes per second and the latency of each publish.
struct Rate {
    per_sec: f64,
    latency_ms: Dist,
}

/// Runs `count` publishes split over `workers` tasks, each with its own connection made by
/// `connect`; `publish(conn, n)` makes release `n`.
async fn drive<C, F, Fut>(
    count: u64,
    workers: u64,
    connect: impl Fn() -> F,
    publish: impl Fn(C, u64) -> Fut + Send + Sync + 'static,
) -> anyhow::Result<Rate>
where
    C: Send + 'static,
    F: std::future::Future<Output = anyhow::Result<C>>,
    Fut: std::future::Future<Output = anyhow::Result<C>> + Send,
{
    let publish = Arc::new(publish);
    let mut conns = Vec::new();
    for _ in 0..workers {
        conns.push(connect().await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, conn) in conns.into_iter().enumerate() {
        let publish = publish.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut latencies = Vec::new();
            let mut n = w as u64;
            while n < count {
                let t = Instant::now();
                conn = publish(conn, n).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                n += workers;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Rate {
        per_sec: count as f64 / started.elapsed().as_secs_f64(),
        latency_ms: Dist::new(all),
    })
}

/// ferry: `count` distinct releases of `image` (tag `b{batch}-{n}`), over `workers` connections.
async fn ferry_rate(
    server: &FerryServer,
    image: &str,
    count: u64,
    workers: u64,
) -> anyhow::Result<Rate> {
    let (url, token) = (server.grpc_url(), server.token());
    let image = image.to_string();
    drive(
        count,
        workers,
        || async { Ok(ferry_proto::client::connect(&url, Some(&token)).await?) },
        move |mut client: ferry_proto::client::Client, n| {
            let req = release(&image, n, vec![format!("r{n}")]);
            async move {
                let moved = client.publish(req).await?.into_inner().moved;
                if moved.len() != 1 {
                    bail!("release {n}: expected one tag moved, got {moved:?}");
                }
                Ok(client)
            }
        },
    )
    .await
}

/// docker-registry: the same metadata pushed as CI would, config blob then manifest, over
/// `workers` HTTP connections. One layer blob is uploaded first and shared by every manifest.
/// docker-registry keeps each tag as link files and directories; it has no database to size.
async fn registry_rate(
    origin: &OriginRegistry,
    repo: &str,
    count: u64,
    workers: u64,
) -> anyhow::Result<Rate> {
    let base = repo_base(&origin.addr(), repo);
    upload_shared_layer(&reqwest::Client::new(), &base).await?;
    drive(
        count,
        workers,
        || async {
            Ok(reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?)
        },
        move |http: reqwest::Client, n| {
            let base = base.clone();
            async move {
                push_release(&http, &base, n, &format!("r{n}")).await?;
                Ok(http)
            }
        },
    )
    .await
}

/// Gives ferry a repository of `tags` tags: one distinct release per 100 tags.
async fn fill_tags(server: &FerryServer, image: &str, tags: u64) -> anyhow::Result<()> {
    let mut client = server.client().await;
    for batch in 0..tags.div_ceil(100) {
        let names = (batch * 100..((batch + 1) * 100).min(tags))
            .map(|i| format!("t{i:06}"))
            .collect();
        client.publish(release(image, batch, names)).await?;
    }
    Ok(())
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let rt = tokio::runtime::Runtime::new()?;
    eprintln!("publish: starting ferry-server and docker-registry (as shipped, and with the tests' config)");
    let server = FerryServer::start();
    let shipped = OriginRegistry::start_as_shipped();
    let tests_config = OriginRegistry::start();
    let idle_rss = rss_bytes(server.pid())?;
    let mut rows = Vec::new();
    for (label, workers) in [("sequential", 1), ("concurrent", o.concurrency)] {
        eprintln!("publish: ferry, {label}, {} releases", o.releases);
        let f = rt.block_on(ferry_rate(
            &server,
            &format!("bench.example.com/pub/{label}"),
            o.releases,
            workers,
        ))?;
        let push_rate = |origin: &OriginRegistry| {
            eprintln!(
                "publish: docker-registry ({}), {label}, {} releases",
                origin.config().label(),
                o.registry_releases
            );
            rt.block_on(registry_rate(
                origin,
                &format!("pub/{label}"),
                o.registry_releases,
                workers,
            ))
        };
        let r = push_rate(&shipped)?;
        let before = push_rate(&tests_config)?;
        rows.push((label, workers, f, r, before));
    }

    eprintln!("publish: giving ferry a repository of {} tags", o.tags);
    let before = dir_bytes(server.data_dir())?;
    let started = Instant::now();
    rt.block_on(fill_tags(&server, "bench.example.com/pub/big", o.tags))?;
    let fill_secs = started.elapsed().as_secs_f64();
    // Let the WAL checkpoint settle before reading the size.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = dir_bytes(server.data_dir())?;
    let rss = rss_bytes(server.pid())?;

    let mut s = String::new();
    s.push_str("## 2. Publish\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh publish`. ferry: distinct releases (manifest and config, one tag each) published over gRPC, \
         each acknowledged after its SQLite transaction is durable (`synchronous=FULL`), {} releases per run. \
         docker-registry with the configuration its official image ships (filesystem storage on the same disk, \
         in-memory blob-descriptor cache): the same metadata pushed the way CI pushes it, \
         a config blob upload (POST + PUT) and a manifest PUT, {} releases per run; one shared layer was uploaded first. \
         Concurrent runs use {} publishers, each with its own connection. The last two columns are the baseline \
         this section used before issue 14, docker-registry with the tests' configuration (no cache), measured in \
         the same run.\n\n",
        o.releases, o.registry_releases, o.concurrency
    ));
    s.push_str("| publishers | ferry publishes/s | docker-registry pushes/s | ferry ÷ registry | ferry p50 | ferry p99 | registry p50 | registry p99 | before: registry (tests' config) pushes/s | before: ferry ÷ registry |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (label, workers, f, r, before) in &rows {
        s.push_str(&format!(
            "| {workers} ({label}) | {:.0} | {:.0} | {:.1}× | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} | {:.1}× |\n",
            f.per_sec,
            r.per_sec,
            f.per_sec / r.per_sec,
            f.latency_ms.p50(),
            f.latency_ms.p99(),
            r.latency_ms.p50(),
            r.latency_ms.p99(),
            before.per_sec,
            f.per_sec / before.per_sec,
        ));
    }
    s.push_str(&format!(
        "\nWith {} tags: the repository was filled by {} publishes of 100 tags in {:.1} s. \
         ferry's data directory grew by {} to {} (SQLite database and WAL; {:.0} bytes per tag, each tag also an event in the log), \
         and the server's RSS went from {} idle to {} ({} releases and their events from the rate runs are in it too).\n",
        o.tags,
        o.tags.div_ceil(100),
        fill_secs,
        mib(after.saturating_sub(before)),
        mib(after),
        after.saturating_sub(before) as f64 / o.tags as f64,
        mib(idle_rss),
        mib(rss),
        2 * o.releases,
    ));
    Ok(s)
}
