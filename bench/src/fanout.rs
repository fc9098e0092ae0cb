//! Scenario 3: fan-out. N agents hold `Subscribe` streams (one connection each, filtered to
//! the image, as agents subscribe); a release is published and the time from the publish
//! returning to the last stream receiving its event is taken, over several releases. Each N
//! gets a fresh server, so its memory growth is the streams' own.
//!
//! The baseline, in the same run: N pollers asking docker-registry for the image's tags at the
//! same instant (64 at a time), timed until the last answer. That is the best case for a
//! polling design: it only holds when every poll happens right after the push, which on
//! average is half a poll interval away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_proto::pb;
use ferry_tests::ferry::FerryServer;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::skopeo;
use tokio::sync::mpsc;

use crate::report::machine;
use crate::stats::{rss_bytes, Dist};
use ferry_tests::releases::release;

/// `ferry-bench fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Stream counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000, 5000])]
    streams: Vec<usize>,
    /// Releases published per stream count.
    #[arg(long, default_value_t = 20)]
    releases: u64,
}

const IMAGE: &str = "bench.example.com/fan/app";

/// A delivery: which stream got which seq, when.
type Delivery = (usize, u64, Instant);

/// One stream count's results.
struct Round {
    streams: usize,
    connect: Duration,
    /// Per release: publish returned → last stream received, ms.
    last_ms: Dist,
    /// Per release: publish sent → last stream received, ms (includes the durable commit).
    last_from_send_ms: Dist,
    rss_per_stream: f64,
    server_rss: u64,
    /// docker-registry as shipped: N tag-list polls at once → last answer, ms.
    poll_all_ms: f64,
    /// The same against docker-registry with the tests' configuration.
    poll_all_before_ms: f64,
}

/// Opens `n` streams to `server`, each on its own connection, feeding `deliveries`.
async fn open_streams(
    server: &FerryServer,
    n: usize,
    after_seq: u64,
    deliveries: mpsc::UnboundedSender<Delivery>,
) -> anyhow::Result<()> {
    let (url, token) = (server.grpc_url(), server.token());
    for id in 0..n {
        let mut client = ferry_proto::client::connect(&url, Some(&token))
            .await
            .with_context(|| format!("connecting stream {id}"))?;
        let mut stream = client
            .subscribe(pb::SubscribeRequest {
                after_seq,
                images: vec![IMAGE.into()],
                ..Default::default()
            })
            .await
            .with_context(|| format!("subscribing stream {id}"))?
            .into_inner();
        let tx = deliveries.clone();
        tokio::spawn(async move {
            let _client = client; // keeps the connection for the stream's life
            while let Ok(Some(msg)) = stream.message().await {
                if let Some(pb::subscribe_response::Item::Event(e)) = msg.item {
                    if tx.send((id, e.seq, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        });
    }
    Ok(())
}

/// When a publish call was sent and when it returned.
struct Sent {
    sent: Instant,
    returned: Instant,
}

/// Publishes release `n`; returns when, and the seq it made.
async fn publish(client: &mut ferry_proto::client::Client, n: u64) -> anyhow::Result<(Sent, u64)> {
    let sent = Instant::now();
    let moved = client
        .publish(release(IMAGE, n, vec![format!("1.0.{n}")]))
        .await?
        .into_inner()
        .moved;
    let returned = Instant::now();
    let seq = moved.first().context("publish moved no tag")?.seq;
    Ok((Sent { sent, returned }, seq))
}

/// Waits until each of `n` streams has received `seq`; returns their receive instants.
async fn await_all(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    n: usize,
    seq: u64,
) -> anyhow::Result<Vec<Instant>> {
    let mut seen = vec![None; n];
    let mut count = 0;
    while count < n {
        let (id, got, at) = tokio::time::timeout(Duration::from_secs(30), deliveries.recv())
            .await
            .with_context(|| format!("only {count} of {n} streams received seq {seq} within 30 s"))?
            .context("every stream ended")?;
        if got != seq {
            bail!("stream {id} received seq {got} while seq {seq} was awaited");
        }
        if seen[id].replace(at).is_none() {
            count += 1;
        }
    }
    Ok(seen.into_iter().flatten().collect())
}

fn ms(from: Instant, to: Instant) -> f64 {
    // A stream can see the event a hair before the publisher's response arrives: count it as 0.
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// N pollers ask docker-registry for the tags at once, 64 connections at a time.
async fn poll_all(origin: &OriginRegistry, n: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let url = format!("http://{}/v2/fan/app/tags/list", origin.addr());
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, sem) = (http.clone(), url.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await?;
            let r = http.get(&url).send().await?;
            if !r.status().is_success() {
                bail!("tags list: {}", r.status());
            }
            r.bytes().await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

async fn round(origins: [&OriginRegistry; 2], n: usize, releases: u64) -> anyhow::Result<Round> {
    // Every stream here holds the bootstrap token; lift the per-token cap above n.
    let server = FerryServer::start_with(&["--max-streams-per-token", &(n + 10).to_string()]);
    let mut publisher = server.client().await;
    let idle = rss_bytes(server.pid())?;
    let (tx, mut deliveries) = mpsc::unbounded_channel();
    let started = Instant::now();
    open_streams(&server, n, 0, tx).await?;
    let connect = started.elapsed();
    // A first release proves every stream is live before anything is timed.
    let (_, seq) = publish(&mut publisher, 0).await?;
    await_all(&mut deliveries, n, seq).await?;
    let server_rss = rss_bytes(server.pid())?;

    let (mut last, mut last_from_send) = (Vec::new(), Vec::new());
    for r in 1..=releases {
        let (when, seq) = publish(&mut publisher, r).await?;
        let got = await_all(&mut deliveries, n, seq).await?;
        let latest = *got.iter().max().context("no stream")?;
        last.push(ms(when.returned, latest));
        last_from_send.push(ms(when.sent, latest));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Round {
        streams: n,
        connect,
        last_ms: Dist::new(last),
        last_from_send_ms: Dist::new(last_from_send),
        rss_per_stream: server_rss.saturating_sub(idle) as f64 / n as f64,
        server_rss,
        poll_all_ms: poll_all(origins[0], n).await?,
        poll_all_before_ms: poll_all(origins[1], n).await?,
    })
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let rt = tokio::runtime::Runtime::new()?;
    let tmp = tempfile::tempdir()?;
    // The baseline as users run it, and (for the before column) as the tests configure it.
    let origins = [OriginRegistry::start_as_shipped(), OriginRegistry::start()];
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "1.0.0");
    for origin in &origins {
        skopeo::copy(
            &layout.reference("1.0.0"),
            &origin.docker_ref("fan/app:1.0.0"),
        )?;
    }
    let mut rounds = Vec::new();
    for &n in &o.streams {
        eprintln!("fanout: {n} streams, {} releases", o.releases);
        rounds.push(rt.block_on(round([&origins[0], &origins[1]], n, o.releases))?);
    }

    let mut s = String::new();
    s.push_str("## 3. Fan-out\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh fanout`. For each N, a fresh ferry-server and N `Subscribe` streams, each on its own \
         HTTP/2 connection and filtered to the image, as agents subscribe; the streams run in the benchmark process \
         on the same 2 cores as the server. After a first release proves every stream live, {} releases are published one at a time; \
         for each, the time from the publish call returning to the **last** stream receiving the event, and the same from the \
         moment the call was sent (which adds the durable commit; the server sends events as soon as the commit is done, so \
         many streams have the event before the publisher has its answer: those count as 0 in the first columns). \
         Memory per stream: the server's RSS growth from idle to N open streams, divided by N. \
         Baseline: N pollers asking docker-registry (with the configuration its official image ships) for the image's \
         tags list at the same instant (64 connections), timed to the last answer — the best a polling design can do, \
         and only when every poll falls right after the push. The last column is the same against docker-registry with \
         the tests' configuration, the baseline before issue 14, in the same run.\n\n",
        o.releases
    ));
    s.push_str("| streams | connect + subscribe all | publish returned → last receive p50 | p99 | publish sent → last receive p50 | p99 | server RSS | RSS per stream | N polls to docker-registry, last answer | before: same, tests' config |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &rounds {
        s.push_str(&format!(
            "| {} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.1} KiB | {:.0} ms | {:.0} ms |\n",
            r.streams,
            r.connect.as_secs_f64(),
            r.last_ms.p50(),
            r.last_ms.p99(),
            r.last_from_send_ms.p50(),
            r.last_from_send_ms.p99(),
            crate::stats::mib(r.server_rss),
            r.rss_per_stream / 1024.0,
            r.poll_all_ms,
            r.poll_all_before_ms,
        ));
    }
    if let Some(r) = rounds.iter().find(|r| r.streams == 1000) {
        s.push_str(&format!(
            "\nTarget: publish → last of 1,000 streams p99 < 100 ms: **{:.1} ms from the publish returning, {:.1} ms from it being sent, {}** (p99 of {} releases is their maximum).\n",
            r.last_ms.p99(),
            r.last_from_send_ms.p99(),
            if r.last_from_send_ms.p99() < 100.0 { "met" } else { "not met" },
            r.last_ms.len()
        ));
    }
    Ok(s)
}
