//! Scenario 9: the dashboard's pages at scale (issue 11). 1,000 images × 100 tags (10
//! releases of 10 tags each per image, so 10,000 distinct manifests and 100,000 tag events in
//! the log), a pipeline of 3 rings over 64 of the images, and 100 clusters × 10 targets
//! reporting, some failing. Then each page is fetched over one keep-alive connection, one
//! request at a time, and timed.
//!
//! The baseline, in the same run on the same server: the registry's own reads of the same
//! data, `/v2/NAME/tags/list` of the image the image page shows and `/v2/_catalog?n=100`
//! (the images page lists 100 images a page).

use std::time::Instant;

use anyhow::{bail, Context};
use ferry_proto::pb;
use ferry_tests::ferry::FerryServer;
use ferry_tests::releases::release;

use crate::report::machine;
use crate::stats::{grouped, Dist};
use crate::status::{apply, fill, promoter, PIPELINE, RINGS};

/// `ferry-bench dashboard`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Images published.
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Releases per image; each moves `tags / releases` tags.
    #[arg(long, default_value_t = 10)]
    releases: usize,
    /// Tags per image.
    #[arg(long, default_value_t = 100)]
    tags: usize,
    /// Clusters reporting.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Targets per cluster.
    #[arg(long, default_value_t = 10)]
    targets: usize,
    /// Timed requests per page.
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// Concurrent publishers while loading.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
}

fn image(i: usize) -> String {
    format!("bench.example.com/dash/app-{i:04}")
}

/// What one URL measured.
struct Row {
    what: String,
    path: String,
    ms: Dist,
    bytes: usize,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let server = FerryServer::start();
    let rt = tokio::runtime::Runtime::new()?;
    let rows = rt.block_on(measure(&server, o))?;
    Ok(render(o, &rows))
}

/// Publishes every image's releases from `publishers` concurrent clients.
async fn load_images(server: &FerryServer, o: &Options) -> anyhow::Result<()> {
    let per_release = (o.tags / o.releases).max(1);
    let mut tasks = Vec::new();
    for p in 0..o.publishers {
        let mut client = server.client().await;
        let (images, releases, publishers) = (o.images, o.releases, o.publishers);
        tasks.push(tokio::spawn(async move {
            for i in (p..images).step_by(publishers) {
                for r in 0..releases {
                    let tags = (0..per_release).map(|t| format!("1.{r}.{t}")).collect();
                    let mut req = release(&image(i), (i * releases + r) as u64, tags);
                    req.labels.insert(
                        "org.opencontainers.image.version".into(),
                        format!("1.{r}.0"),
                    );
                    req.labels.insert(
                        "org.opencontainers.image.revision".into(),
                        format!("{:040x}", i * releases + r),
                    );
                    client
                        .publish(req)
                        .await
                        .with_context(|| format!("publishing {} release {r}", image(i)))?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn measure(server: &FerryServer, o: &Options) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let mut promoter = promoter(server).await?;
    let piped: Vec<String> = (0..o.images.min(64)).map(image).collect();
    apply(&mut promoter, &piped).await?;
    eprintln!(
        "dashboard: publishing {} images × {} tags",
        o.images, o.tags
    );
    load_images(server, o).await?;
    fill(&mut promoter, &piped, &RINGS).await?;
    let mut client = server.client().await;
    // `FerryServer::head_seq` runs its own runtime: off this one's worker.
    let head = tokio::task::block_in_place(|| server.head_seq());
    for c in 0..o.clusters {
        let ring = RINGS[c % RINGS.len()];
        client
            .report(pb::ReportRequest {
                cluster: format!("cluster-{c:03}"),
                cursor: head.saturating_sub(c as u64),
                targets: (0..o.targets)
                    .map(|i| pb::TargetReport {
                        target: format!("config#.pipe/watcher.yaml#targets[{i}]"),
                        image: piped[i % piped.len()].clone(),
                        ring: ring.into(),
                        pipeline: PIPELINE.into(),
                        file: format!("envs/{ring}/app-{i:03}.yaml"),
                        commit: format!("{c:040x}"),
                        pushed_at_ms: 1_700_000_000_000,
                        // One cluster in ten has a failing target.
                        error: if c % 10 == 0 && i == 0 {
                            "invalid YAML at line 3, column 1".into()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    })
                    .collect(),
            })
            .await
            .with_context(|| format!("reporting cluster {c}"))?;
    }
    eprintln!(
        "dashboard: loaded in {:.0} s, head seq {}",
        started.elapsed().as_secs_f64(),
        head
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let base = format!("http://{}", server.http_addr);
    let catalog: serde_json::Value = http
        .get(format!("{base}/v2/_catalog?n=100000"))
        .send()
        .await?
        .json()
        .await?;
    let names: Vec<String> = catalog["repositories"]
        .as_array()
        .context("the catalog lists repositories")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if names.len() != o.images {
        bail!(
            "the catalog lists {} images, {} were published",
            names.len(),
            o.images
        );
    }
    // The first image published: its events are the oldest, the image page's history scan
    // walks furthest back for them.
    let oldest = &names[0];
    let page5 = &names[(4 * 100 - 1).min(names.len() - 1)];
    let pages = [
        (
            format!("images page (100 of {})", grouped(o.images as f64)),
            "/ui/images".to_string(),
        ),
        (
            "images page 5".to_string(),
            format!("/ui/images?after={page5}"),
        ),
        (
            format!("image page ({} tags, 50 history rows)", o.tags),
            format!("/ui/images/{oldest}"),
        ),
        (
            format!(
                "pipeline page ({} rings × {} images, history)",
                RINGS.len() + 2,
                piped.len()
            ),
            format!("/ui/pipelines/{PIPELINE}"),
        ),
        (
            format!("clusters page ({} clusters)", o.clusters),
            "/ui/clusters".to_string(),
        ),
        (
            "events page (newest 100)".to_string(),
            "/ui/events".to_string(),
        ),
        (
            "baseline: registry tags list of that image".to_string(),
            format!("/v2/{oldest}/tags/list"),
        ),
        (
            "baseline: registry catalog, 100 names".to_string(),
            "/v2/_catalog?n=100".to_string(),
        ),
    ];
    let mut rows = Vec::new();
    for (what, path) in pages {
        let url = format!("{base}{path}");
        let check = http.get(&url).send().await?;
        if !check.status().is_success() {
            bail!("GET {path} answered {}", check.status());
        }
        let body = check.text().await?;
        if path.starts_with("/ui/images/") && body.matches("<tr").count() < o.tags {
            bail!("the image page shows fewer than {} rows", o.tags);
        }
        let mut ms = Vec::with_capacity(o.calls);
        let mut bytes = 0;
        for _ in 0..o.calls {
            let started = Instant::now();
            let resp = http.get(&url).send().await?;
            let b = resp.bytes().await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = b.len();
        }
        eprintln!("dashboard: {path} timed");
        rows.push(Row {
            what,
            path,
            ms: Dist::new(ms),
            bytes,
        });
    }
    Ok(rows)
}

fn render(o: &Options, rows: &[Row]) -> String {
    let mut s = String::from("## 9. Dashboard pages at scale\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh dashboard`. One ferry-server (release build) holding {} images × {} tags \
         ({} releases per image, so {} manifests and {} tag events in the log), a pipeline of {} rings (5 with ante and post) over {} \
         of the images with every image promoted through every ring, and {} clusters × {} targets reported \
         (one cluster in ten with a failing target). Each page is fetched {} times in a row on one keep-alive \
         connection (reqwest), after one untimed fetch; the baseline rows are the registry's reads of the same \
         data, in the same run.\n\n",
        grouped(o.images as f64),
        o.tags,
        o.releases,
        grouped((o.images * o.releases) as f64),
        grouped((o.images * o.tags) as f64),
        RINGS.len(),
        o.images.min(64),
        o.clusters,
        o.targets,
        o.calls
    ));
    s.push_str("| page | path | answer | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|\n");
    let ms = |v: f64| {
        if v < 10.0 {
            format!("{v:.2} ms")
        } else {
            format!("{v:.1} ms")
        }
    };
    for r in rows {
        let path = if r.path.len() > 48 {
            format!("{}…", &r.path[..47])
        } else {
            r.path.clone()
        };
        s.push_str(&format!(
            "| {} | `{path}` | {:.1} KiB | {} | {} | {} |\n",
            r.what,
            r.bytes as f64 / 1024.0,
            ms(r.ms.p50()),
            ms(r.ms.p99()),
            ms(r.ms.max())
        ));
    }
    let worst = rows
        .iter()
        .filter(|r| r.path.starts_with("/ui/"))
        .max_by(|a, b| a.ms.p99().total_cmp(&b.ms.p99()))
        .expect("dashboard rows");
    let tags = rows
        .iter()
        .find(|r| r.path.ends_with("/tags/list"))
        .expect("the baseline row");
    let image_page = rows
        .iter()
        .find(|r| r.path.starts_with("/ui/images/"))
        .expect("the image page row");
    s.push_str(&format!(
        "\nThe image page takes {:.1}× the registry's tags list of the same image at p50 (it renders every \
         tag's manifest facts and reads 50 history rows from the log).\n\n",
        image_page.ms.p50() / tags.ms.p50().max(1e-9)
    ));
    s.push_str(&format!(
        "Target: every dashboard page p99 < 50 ms with {} images × {} tags: **slowest is the {} at {} p99, {}**.\n",
        grouped(o.images as f64),
        o.tags,
        worst.what,
        ms(worst.ms.p99()),
        if worst.ms.p99() < 50.0 { "met" } else { "not met" }
    ));
    s
}
