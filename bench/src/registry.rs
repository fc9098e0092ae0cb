//! Scenario 1: registry reads. The same image is served by ferry, by docker-registry (the
//! reference registry) and by a constant actix-web handler (the ceiling), and each endpoint is
//! loaded with wrk at the same concurrency in the same run. A second ferry-server, with
//! `--registry-auth token`, measures what the token check costs: manifest GET with Basic and
//! with Bearer credentials next to the anonymous server. [`crate::metrics_cost`] measures what
//! Prometheus metrics cost (`--metrics on` against `off`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferry_proto::pb;
use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::http;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::ports::{free_port, wait_for_tcp};
use ferry_tests::process::spawn_logged;
use ferry_tests::skopeo;

use crate::report::{machine, Row};
use crate::wrk::{median, median_of, once, Load, Sample};

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

/// Manifest GET by tag with each way of reading: anonymous (the first server), then Basic and
/// Bearer on the server in token mode.
struct AuthRows {
    anonymous: Sample,
    basic: Sample,
    bearer: Sample,
}

/// A registry token for pulling `repo`, from `/token` with the Basic `authorization` value.
fn registry_token(server: &FerryServer, repo: &str, authorization: &str) -> anyhow::Result<String> {
    let answer = http::request(
        &server.http_addr,
        "GET",
        &format!("/token?service=ferry&scope=repository:{repo}:pull"),
        &[("Authorization", authorization)],
    )?;
    anyhow::ensure!(
        answer.status == 200,
        "/token answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body)?;
    body["token"]
        .as_str()
        .map(str::to_string)
        .context("/token answered without a token")
}

/// Measures [`AuthRows`]: a ferry-server with `--registry-auth token` holding the same image,
/// read with a reader token as the Basic password and with a registry token from `/token` as
/// Bearer. The three alternate run by run, so the machine's drift falls on all of them alike.
fn measure_auth(
    o: &Options,
    load: Load,
    origin: &OriginRegistry,
    anonymous_url: &str,
) -> anyhow::Result<AuthRows> {
    let server = FerryServer::start_with(&["--registry-auth", "token"]);
    server.publish_ok(&[
        &format!("docker://{}/team/app:v1", origin.addr()),
        "--insecure",
    ]);
    let repo = format!("{}/team/app", origin.addr().replace(':', "_"));
    let reader = server.token_command(&["create", "--role", "reader", "--name", "bench"]);
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("bench:{}", reader.trim()))
    );
    let url = format!("http://{}/v2/{repo}/manifests/v1", server.http_addr);
    let (mut anonymous, mut by_basic, mut by_bearer) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.runs {
        // A registry token per run: they expire (after 300 s by default).
        let bearer = format!(
            "Authorization: Bearer {}",
            registry_token(&server, &repo, &basic)?
        );
        eprintln!("registry: GET {url}: anonymous (first server), Basic, Bearer");
        anonymous.push(once(anonymous_url, "GET", &[ACCEPT], load)?);
        by_basic.push(once(
            &url,
            "GET",
            &[ACCEPT, &format!("Authorization: {basic}")],
            load,
        )?);
        by_bearer.push(once(&url, "GET", &[ACCEPT, &bearer], load)?);
    }
    Ok(AuthRows {
        anonymous: median(&anonymous),
        basic: median(&by_basic),
        bearer: median(&by_bearer),
    })
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
    eprintln!("registry: starting a ferry-server with --registry-auth token");
    let auth = measure_auth(o, load, &origin, &format!("{f}/manifests/v1"))?;
    eprintln!("registry: starting ferry-servers with --metrics on and off");
    let metrics = crate::metrics_cost::measure(o.runs, load, &origin, d)?;
    let mut section = render(o, &rows, &auth);
    section.push_str(&crate::metrics_cost::render(o.runs, load, &metrics));
    Ok(section)
}

fn render(o: &Options, rows: &[Row], auth: &AuthRows) -> String {
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
    s.push_str(&render_auth(o, auth));
    s
}

fn render_auth(o: &Options, auth: &AuthRows) -> String {
    let mut s = format!(
        "\n### With `--registry-auth token`\n\n\
         Manifest GET by tag on a second ferry-server started with `--registry-auth token` and holding the same \
         image, next to the anonymous server above: a reader token as the Basic password on every request, and a \
         registry token from `/token` as Bearer (what docker, skopeo and crane send). The three alternate run by \
         run (wrk, 1 thread, {} connections, {} s per run, median of {} runs), so the machine's drift falls on \
         all of them alike.\n\n\
         | manifest GET by tag | req/s | ÷ anonymous | p50 | p99 |\n|---|---:|---:|---:|---:|\n",
        o.connections, o.seconds, o.runs
    );
    let rows = [
        ("anonymous", auth.anonymous),
        ("Basic (ferry token as password)", auth.basic),
        ("Bearer (registry token from /token)", auth.bearer),
    ];
    for (what, sample) in rows {
        s.push_str(&format!(
            "| {what} | {:.0} | {:.0}% | {:.2} ms | {:.2} ms |\n",
            sample.rps,
            100.0 * sample.rps / auth.anonymous.rps,
            sample.p50_ms,
            sample.p99_ms
        ));
    }
    let basic = auth.basic.rps / auth.anonymous.rps;
    let bearer = auth.bearer.rps / auth.anonymous.rps;
    let met = |share: f64| if share >= 0.9 { "met" } else { "not met" };
    s.push_str(&format!(
        "\nTarget: token mode ≥ 90% of anonymous: Basic **{:.0}%, {}**; Bearer **{:.0}%, {}**.\n",
        basic * 100.0,
        met(basic),
        bearer * 100.0,
        met(bearer)
    ));
    s
}
