//! Scenario 1: registry reads. The same image is served by ferry, by docker-registry (the
//! reference registry) and by a constant actix-web handler (the ceiling), and each endpoint is
//! loaded with wrk at the same concurrency in the same run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use ferry_proto::pb;
use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::ports::{free_port, wait_for_tcp};
use ferry_tests::process::spawn_logged;
use ferry_tests::skopeo;

use crate::report::{machine, Row};
use crate::wrk::{median_of, once, Load, Sample};

/// `ferry-bench registry`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Tags in the large repository.
    #[arg(long, default_value_t = 100_000)]
    tags: usize,
}

const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json";
const BIG: &str = "bench.example.com/team/big";

fn tag_name(i: usize) -> String {
    format!("t{i:06}")
}

/// Gives ferry `tags` tags on one manifest, 100 per publish (the per-publish cap).
fn fill_ferry(
    server: &FerryServer,
    manifest: &[u8],
    config: &[u8],
    tags: usize,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut client = server.client().await;
        for chunk in (0..tags).collect::<Vec<_>>().chunks(100) {
            let req = pb::PublishRequest {
                image: BIG.into(),
                manifest: Some(pb::Content {
                    digest: String::new(),
                    media_type: String::new(),
                    data: manifest.to_vec(),
                }),
                blobs: vec![pb::Content {
                    digest: ferry_proto::digest::sha256_digest(config),
                    media_type: String::new(),
                    data: config.to_vec(),
                }],
                tags: chunk.iter().map(|&i| tag_name(i)).collect(),
                ..Default::default()
            };
            client.publish(req).await.context("publishing tags")?;
        }
        anyhow::Ok(())
    })
}

/// Gives docker-registry the same tags by writing its tag links on disk: what a push of each
/// tag would leave behind, without 100,000 pushes.
fn fill_registry(storage: &Path, repo: &str, digest: &str, tags: usize) -> anyhow::Result<()> {
    let tags_dir = storage
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags");
    let hex = digest.trim_start_matches("sha256:");
    for i in 0..tags {
        let t = tags_dir.join(tag_name(i));
        std::fs::create_dir_all(t.join("current"))?;
        std::fs::write(t.join("current/link"), digest)?;
        let index = t.join("index/sha256").join(hex);
        std::fs::create_dir_all(&index)?;
        std::fs::write(index.join("link"), digest)?;
    }
    Ok(())
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let load = Load {
        connections: o.connections,
        threads: 1,
        seconds: o.seconds,
    };
    let tmp = tempfile::tempdir()?;
    eprintln!("registry: starting docker-registry, ferry-server and the ceiling");
    let origin = OriginRegistry::start();
    let ferry = FerryServer::start();
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "v1");
    for repo in ["team/app:v1", &format!("team/big:{}", tag_name(0))] {
        skopeo::copy(&layout.reference("v1"), &origin.docker_ref(repo))?;
    }
    ferry.publish_ok(&[
        &format!("docker://{}/team/app:v1", origin.addr()),
        "--insecure",
    ]);
    let config = std::fs::read(
        tmp.path().join("img/blobs/sha256").join(
            image
                .config_digest
                .as_deref()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )?;
    eprintln!("registry: giving both a repository of {} tags", o.tags);
    fill_ferry(&ferry, &image.manifest_bytes, &config, o.tags)?;
    fill_registry(
        &origin.storage_dir(),
        "team/big",
        &image.manifest_digest,
        o.tags,
    )?;

    let body = tmp.path().join("manifest.json");
    std::fs::write(&body, &image.manifest_bytes)?;
    let ceiling_addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(binary("ferry-bench"));
    cmd.args(["ceiling", "--addr", &ceiling_addr])
        .arg("--body")
        .arg(&body);
    let _ceiling = spawn_logged(cmd, "ceiling", tmp.path());
    wait_for_tcp(ceiling_addr.as_str(), Duration::from_secs(10))?;

    let f = format!(
        "http://{}/v2/{}/team/app",
        ferry.http_addr,
        origin.addr().replace(':', "_")
    );
    let r = format!("http://{}/v2/team/app", origin.addr());
    let fb = format!("http://{}/v2/{BIG}", ferry.http_addr);
    let rb = format!("http://{}/v2/team/big", origin.addr());
    let d = &image.manifest_digest;
    let last = tag_name(o.tags / 2);
    let measure = |url: &str, method: &str| -> anyhow::Result<Sample> {
        eprintln!("registry: {method} {url}");
        median_of(o.runs, || once(url, method, &[ACCEPT], load))
    };
    let mut rows = Vec::new();
    for (what, method, fu, ru, with_ceiling) in [
        (
            "manifest GET by tag",
            "GET",
            format!("{f}/manifests/v1"),
            format!("{r}/manifests/v1"),
            true,
        ),
        (
            "manifest HEAD by tag",
            "HEAD",
            format!("{f}/manifests/v1"),
            format!("{r}/manifests/v1"),
            false,
        ),
        (
            "manifest GET by digest",
            "GET",
            format!("{f}/manifests/{d}"),
            format!("{r}/manifests/{d}"),
            false,
        ),
        (
            "manifest HEAD by digest",
            "HEAD",
            format!("{f}/manifests/{d}"),
            format!("{r}/manifests/{d}"),
            false,
        ),
        (
            "tags list page, n=100 of 100k",
            "GET",
            format!("{fb}/tags/list?n=100&last={last}"),
            format!("{rb}/tags/list?n=100&last={last}"),
            false,
        ),
        (
            "catalog, n=100",
            "GET",
            format!("http://{}/v2/_catalog?n=100", ferry.http_addr),
            format!("http://{}/v2/_catalog?n=100", origin.addr()),
            false,
        ),
    ] {
        let ceiling = if with_ceiling {
            Some(measure(
                &format!("http://{ceiling_addr}/v2/x/manifests/v1"),
                method,
            )?)
        } else {
            None
        };
        rows.push(Row {
            what: what.into(),
            ferry: measure(&fu, method)?,
            registry: measure(&ru, method)?,
            ceiling,
        });
    }
    Ok(render(o, &rows))
}

fn render(o: &Options, rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("## 1. Registry reads\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh registry` (wrk with 1 thread for GET, ApacheBench `-k` for HEAD; {} connections, {} s per run, median of {} runs; \
         ferry-server and docker-registry as the tests start them, the ceiling is a constant actix-web handler \
         with ferry's worker count). The tags row reads one page in the middle of a {}-tag repository. \
         ApacheBench reports latency in whole milliseconds, so HEAD rows read 0.00 for under 1 ms.\n\n",
        o.connections, o.seconds, o.runs, o.tags
    ));
    s.push_str("| endpoint | ferry req/s | docker-registry req/s | ceiling req/s | ferry ÷ registry | ferry ÷ ceiling | ferry p50 | ferry p99 | registry p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let (ceil, share) = match r.ceiling {
            Some(c) => (
                format!("{:.0}", c.rps),
                format!("{:.0}%", 100.0 * r.ferry.rps / c.rps),
            ),
            None => ("".into(), "".into()),
        };
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {} | {:.1}× | {} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            r.what,
            r.ferry.rps,
            r.registry.rps,
            ceil,
            r.ferry.rps / r.registry.rps,
            share,
            r.ferry.p50_ms,
            r.ferry.p99_ms,
            r.registry.p99_ms
        ));
    }
    for r in rows {
        for (who, sample) in [
            ("ferry", Some(r.ferry)),
            ("docker-registry", Some(r.registry)),
            ("the ceiling", r.ceiling),
        ] {
            if let Some(t) = sample.filter(|s| s.timeouts > 0) {
                s.push_str(&format!(
                    "\n{who}, {}: {} requests got no answer within 30 s across the runs (its latencies cover the answered ones).\n",
                    r.what, t.timeouts
                ));
            }
        }
    }
    let get = &rows[0];
    let tags = &rows[4];
    let ratio = get.ferry.rps / get.registry.rps;
    let share = get.ceiling.map_or(0.0, |c| get.ferry.rps / c.rps);
    s.push_str(&format!(
        "\nTargets: manifest GET by tag ≥ 20× docker-registry: **{:.1}×, {}**; ≥ 50% of the ceiling: **{:.0}%, {}**; \
         tags-list page p99 < 5 ms: **{:.2} ms, {}**.\n",
        ratio,
        if ratio >= 20.0 { "met" } else { "not met" },
        share * 100.0,
        if share >= 0.5 { "met" } else { "not met" },
        tags.ferry.p99_ms,
        if tags.ferry.p99_ms < 5.0 { "met" } else { "not met" },
    ));
    s
}
