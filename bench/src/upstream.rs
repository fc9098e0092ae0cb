//! Scenario 5: upstream load, counted from docker-registry's access log. F clusters watch I
//! images over a scaled-down window in which each image gets R releases.
//!
//! - ferry: CI runs the real `ferry publish docker://…` once per release; the F clusters hold
//!   their streams to ferry (list, then subscribe, as agents do) and never ask the origin.
//! - polling: every cluster asks the origin about every image once per interval: the tags list,
//!   then the manifest of the newest tag (to learn its digest). That is the least a polling
//!   updater can ask; real ones add an auth ping per check and, for newest-build strategies, a
//!   manifest and config per tag, so the polling counts here are a lower bound.
//!
//! Polls run back to back rather than on a clock: the count depends on how many polls fall in
//! the window, not on when. The releases themselves are pushed before counting starts: both
//! designs pay for them alike.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferry_proto::pb;
use ferry_tests::ferry::FerryServer;
use ferry_tests::origin::OriginRegistry;

use crate::origin_push::{push_release, repo_base, upload_shared_layer};
use crate::report::machine;
use crate::stats::grouped;

/// `ferry-bench upstream`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clusters (agents) in the scaled-down run.
    #[arg(long, default_value_t = 10)]
    clusters: u64,
    /// Images each cluster watches.
    #[arg(long, default_value_t = 20)]
    images: u64,
    /// Releases per image per hour.
    #[arg(long, default_value_t = 1)]
    releases_per_hour: u64,
    /// The window, in simulated minutes.
    #[arg(long, default_value_t = 60)]
    window_minutes: u64,
}

/// The extrapolation the issue asks for.
const FLEET_CLUSTERS: u64 = 100;
const FLEET_IMAGES: u64 = 200;
const FLEET_MINUTES: u64 = 24 * 60;

/// Poll intervals compared: Argo CD Image Updater's default and PipeCD's example.
const INTERVALS: [(u64, &str); 2] = [(2, "Argo CD Image Updater default"), (5, "PipeCD example")];

fn repo(i: u64) -> String {
    format!("team/app-{i:03}")
}

fn tag(r: u64) -> String {
    format!("1.0.{r}")
}

/// Requests the origin logged while `f` ran (waiting for lines still being written).
fn counted(
    origin: &OriginRegistry,
    expected: Option<usize>,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let before = origin.count_requests();
    f()?;
    let after = match expected {
        Some(n) => origin.wait_for_requests(before + n, Duration::from_secs(30)),
        None => {
            // Unknown count: wait until the log stops growing.
            let mut last = origin.count_requests();
            loop {
                std::thread::sleep(Duration::from_millis(300));
                let now = origin.count_requests();
                if now == last {
                    break now;
                }
                last = now;
            }
        }
    };
    Ok(after - before)
}

/// The ferry side: publishes every release with the CLI while `clusters` streams listen; returns
/// once every cluster has every event.
fn ferry_window(
    origin: &OriginRegistry,
    o: &Options,
    releases: u64,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let server = FerryServer::start();
    let images: Vec<String> = (0..o.images)
        .map(|i| format!("{}/{}", origin.addr(), repo(i)))
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    rt.block_on(async {
        for c in 0..o.clusters {
            let mut client = server.client().await;
            let head = client
                .list_tags(pb::ListTagsRequest {
                    images: images.clone(),
                })
                .await?
                .into_inner()
                .head_seq;
            let mut stream = client
                .subscribe(pb::SubscribeRequest {
                    after_seq: head,
                    images: images.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _client = client;
                while let Ok(Some(msg)) = stream.message().await {
                    if let Some(pb::subscribe_response::Item::Event(_)) = msg.item {
                        let _ = tx.send(c);
                    }
                }
            });
        }
        anyhow::Ok(())
    })?;
    for r in 0..releases {
        for image in &images {
            server.publish_ok(&[&format!("docker://{image}:{}", tag(r)), "--insecure"]);
        }
    }
    let expected = (o.clusters * o.images * releases) as usize;
    rt.block_on(async {
        for got in 0..expected {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .with_context(|| format!("clusters received {got} of {expected} events"))?;
        }
        anyhow::Ok(())
    })
}

/// One poll of one image by one cluster: the tags list, then the newest tag's manifest.
async fn poll(http: &reqwest::Client, base: &str, newest: &str) -> anyhow::Result<()> {
    for url in [
        format!("{base}/tags/list"),
        format!("{base}/manifests/{newest}"),
    ] {
        let r = http
            .get(&url)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        r.bytes().await?;
    }
    Ok(())
}

/// The polling side: `polls` rounds in which every cluster polls every image.
async fn polling_window(
    origin: &OriginRegistry,
    o: &Options,
    polls: u64,
    newest: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for _round in 0..polls {
        for _cluster in 0..o.clusters {
            for i in 0..o.images {
                let (http, sem) = (http.clone(), sem.clone());
                let base = repo_base(&origin.addr(), &repo(i));
                let newest = newest.to_string();
                tasks.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await?;
                    poll(&http, &base, &newest).await
                }));
            }
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let rt = tokio::runtime::Runtime::new()?;
    let origin = OriginRegistry::start_as_shipped();
    let releases = o.releases_per_hour * o.window_minutes / 60;
    if releases == 0 {
        bail!(
            "--releases-per-hour {} over --window-minutes {} makes no release",
            o.releases_per_hour,
            o.window_minutes
        );
    }
    eprintln!(
        "upstream: pushing {} releases of {} images to docker-registry",
        releases, o.images
    );
    rt.block_on(async {
        let http = reqwest::Client::new();
        for i in 0..o.images {
            let base = repo_base(&origin.addr(), &repo(i));
            upload_shared_layer(&http, &base).await?;
            for r in 0..releases {
                push_release(&http, &base, i * 1000 + r, &tag(r)).await?;
            }
        }
        anyhow::Ok(())
    })?;

    eprintln!("upstream: ferry, {} clusters", o.clusters);
    let ferry = counted(&origin, None, || ferry_window(&origin, o, releases, &rt))?;
    let publishes = o.images * releases;
    let per_publish = ferry as f64 / publishes as f64;

    let mut polling = Vec::new();
    for (minutes, who) in INTERVALS {
        let polls = o.window_minutes / minutes;
        let expected = (polls * o.clusters * o.images * 2) as usize;
        eprintln!("upstream: polling every {minutes} min, {expected} requests");
        let n = counted(&origin, Some(expected), || {
            rt.block_on(polling_window(&origin, o, polls, &tag(releases - 1)))
        })?;
        if n != expected {
            bail!("the origin logged {n} polling requests, {expected} were sent");
        }
        polling.push((minutes, who, polls, n));
    }

    let mut s = String::new();
    s.push_str("## 5. Upstream load\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh upstream`. Requests reaching the origin (docker-registry with the configuration its official image ships), counted from its access log, \
         for {} clusters × {} images over a {}-minute window with {} release(s) per image per hour. \
         ferry: the real `ferry publish docker://…` once per release while the {} clusters hold their streams to ferry \
         (they never ask the origin). Polling: each cluster asks for each image's tags list and then the newest tag's manifest, \
         once per interval — a lower bound, since real updaters also send an auth ping per check and newest-build strategies \
         read a manifest and config per tag. Pushes are the same for both designs and are not counted.\n\n",
        o.clusters, o.images, o.window_minutes, o.releases_per_hour, o.clusters
    ));
    s.push_str("| design | origin requests in the window (measured) | per release or poll | 100 clusters × 200 images × 24 h (modelled) | ÷ ferry |\n|---|---:|---:|---:|---:|\n");
    let fleet_releases = FLEET_IMAGES * o.releases_per_hour * FLEET_MINUTES / 60;
    let ferry_fleet = per_publish * fleet_releases as f64;
    s.push_str(&format!(
        "| ferry ({} publishes) | {} | {:.1} per publish | {} | 1× |\n",
        publishes,
        grouped(ferry as f64),
        per_publish,
        grouped(ferry_fleet)
    ));
    for (minutes, who, polls, n) in &polling {
        let per_poll = *n as f64 / (polls * o.clusters * o.images) as f64;
        let fleet = per_poll * (FLEET_CLUSTERS * FLEET_IMAGES * (FLEET_MINUTES / minutes)) as f64;
        s.push_str(&format!(
            "| polling every {minutes} min ({who}; {polls} polls) | {} | {per_poll:.1} per poll | {} | {}× |\n",
            grouped(*n as f64),
            grouped(fleet),
            grouped(fleet / ferry_fleet)
        ));
    }
    // The hub model: one updater (in a management cluster) polls each image once per interval
    // for every cluster it serves, so its load does not grow with clusters. Same measured
    // requests per poll; only the multiplier differs.
    for (minutes, who, polls, n) in &polling {
        let per_poll = *n as f64 / (polls * o.clusters * o.images) as f64;
        let hub = per_poll * (FLEET_IMAGES * (FLEET_MINUTES / minutes)) as f64;
        s.push_str(&format!(
            "| hub: one updater for all {FLEET_CLUSTERS} clusters, polling every {minutes} min ({who}) | — | {per_poll:.1} per poll (measured above) | {} | {:.0}× |\n",
            grouped(hub),
            hub / ferry_fleet
        ));
    }
    s.push_str(&format!(
        "\n**Measured:** the first two columns, from the origin's access log in this run: requests per publish (ferry) \
         and per poll (a poller). **Modelled:** the fleet column, which multiplies those measured rates: ferry = {} releases \
         a day ({} images × {}/h × 24 h) × the requests per publish, whatever the number of clusters; polling = {} clusters × \
         {} images × polls a day × the requests per poll; the hub = {} images × polls a day × the requests per poll (one \
         updater, as Argo CD Image Updater or Kargo run in a management cluster, serving every cluster). A per-cluster \
         polling fleet grows with clusters × images × 1/interval, a hub with images × 1/interval, ferry only with releases.\n",
        fleet_releases, FLEET_IMAGES, o.releases_per_hour, FLEET_CLUSTERS, FLEET_IMAGES, FLEET_IMAGES
    ));
    Ok(s)
}
