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

use crate::report::machine;
use crate::wrk::{median, median_of, once, Load, Sample};

/// `ferry-bench registry`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Seconds per wrk run (2: at 40,000–90,000 req/s that is 80,000 requests or more per
    /// run, and it keeps `bench/run.sh all` under 10 minutes with the before/now pairs).
    #[arg(long, default_value_t = 2)]
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

/// Gives docker-registry the same tags by writing its tag links on disk, without 100,000
/// pushes: each tag's `current/link`, which is what a tags list lists and a manifest GET by
/// tag reads. A push also writes `index/sha256/<digest>/link`, read only by deletes and garbage
/// collection; it is left out because writing and removing its two directories per tag took
/// minutes on this disk.
fn fill_registry(repository: &Path, digest: &str, tags: usize) -> anyhow::Result<()> {
    let tags_dir = repository.join("_manifests/tags");
    for i in 0..tags {
        let current = tags_dir.join(tag_name(i)).join("current");
        std::fs::create_dir_all(&current)?;
        std::fs::write(current.join("link"), digest)?;
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

/// One endpoint, measured as users run the alternative (now) and as this benchmark used to
/// (before), in the same run.
struct Row {
    what: &'static str,
    /// ferry-server under the matched load (wrk threads = its HTTP workers).
    ferry: Sample,
    /// docker-registry with the official image's configuration, same load.
    registry: Sample,
    /// ferry-server under one wrk thread: the old framing.
    ferry_before: Sample,
    /// docker-registry with the tests' configuration under one wrk thread: the old baseline.
    registry_before: Sample,
}

/// Manifest GET by tag on the constant servers, and on ferry in the same alternation.
struct Ceilings {
    /// ferry-server under the matched load, run by run between the ceilings.
    ferry: Sample,
    /// ferry-server under one wrk thread, likewise.
    ferry_before: Sample,
    /// The actix-web constant handler under one wrk thread (the old ceiling).
    actix_before: Sample,
    /// The same handler under the matched load.
    actix: Sample,
    /// nginx returning the same bytes from memory, matched load.
    nginx: Sample,
}

impl Ceilings {
    /// The higher of the two ceilings under the matched load, and its name.
    fn higher(&self) -> (&'static str, Sample) {
        if self.nginx.rps >= self.actix.rps {
            ("nginx", self.nginx)
        } else {
            ("actix-web constant handler", self.actix)
        }
    }
}

/// The tags every registry in the run holds, and the paths of the endpoints read.
struct Endpoints {
    /// `/v2/<repo>` prefix of the small repository on ferry.
    ferry_repo: String,
    /// The same repository's prefix on docker-registry.
    registry_repo: String,
    /// The large repository on ferry.
    ferry_big: String,
    digest: String,
    middle_tag: String,
}

impl Endpoints {
    /// (row name, method, ferry path, registry path) for each row, in table order.
    fn rows(&self) -> [(&'static str, &'static str, String, String); 6] {
        let (f, r, d, last) = (
            &self.ferry_repo,
            &self.registry_repo,
            &self.digest,
            &self.middle_tag,
        );
        [
            (
                "manifest GET by tag",
                "GET",
                format!("{f}/manifests/v1"),
                format!("{r}/manifests/v1"),
            ),
            (
                "manifest HEAD by tag",
                "HEAD",
                format!("{f}/manifests/v1"),
                format!("{r}/manifests/v1"),
            ),
            (
                "manifest GET by digest",
                "GET",
                format!("{f}/manifests/{d}"),
                format!("{r}/manifests/{d}"),
            ),
            (
                "manifest HEAD by digest",
                "HEAD",
                format!("{f}/manifests/{d}"),
                format!("{r}/manifests/{d}"),
            ),
            (
                "tags list page, n=100 of 100k",
                "GET",
                format!("{}/tags/list?n=100&last={last}", self.ferry_big),
                format!("/v2/team/big/tags/list?n=100&last={last}"),
            ),
            (
                "catalog, n=100",
                "GET",
                "/v2/_catalog?n=100".to_string(),
                "/v2/_catalog?n=100".to_string(),
            ),
        ]
    }
}

/// The repository directory of `repo` in a docker-registry's storage.
fn repository_dir(origin: &OriginRegistry, repo: &str) -> std::path::PathBuf {
    origin
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(repo)
}

/// Pushes the image into both docker-registries and gives them the large repository. The tag
/// links are written once, into `first`; `second`'s `team/big` is a symlink to that directory
/// (writing and deleting 100,000 tags' links takes minutes on this disk). Both read the same
/// files through the same page cache; their catalogs are checked to agree.
fn fill_origins(
    first: &OriginRegistry,
    second: &OriginRegistry,
    layout: &OciLayout,
    digest: &str,
    tags: usize,
) -> anyhow::Result<()> {
    for origin in [first, second] {
        skopeo::copy(&layout.reference("v1"), &origin.docker_ref("team/app:v1"))?;
    }
    skopeo::copy(
        &layout.reference("v1"),
        &first.docker_ref(&format!("team/big:{}", tag_name(0))),
    )?;
    let big = repository_dir(first, "team/big");
    fill_registry(&big, digest, tags)?;
    let link = repository_dir(second, "team/big");
    std::fs::create_dir_all(link.parent().context("a repository has a parent")?)?;
    std::os::unix::fs::symlink(&big, &link)?;
    let catalog = |origin: &OriginRegistry| -> anyhow::Result<Vec<u8>> {
        Ok(http::get(&origin.addr(), "/v2/_catalog")?.body)
    };
    let (a, b) = (catalog(first)?, catalog(second)?);
    anyhow::ensure!(
        a == b,
        "the two docker-registries list different repositories: {} vs {}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
    Ok(())
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    // ferry-server's default: one HTTP worker per core.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let load = Load {
        connections: o.connections,
        // wrk refuses more threads than connections.
        threads: (workers as u32).min(o.connections),
        seconds: o.seconds,
    };
    let load_before = Load { threads: 1, ..load };
    let tmp = tempfile::tempdir()?;
    eprintln!("registry: starting docker-registry (as shipped, and with the tests' config), ferry-server and the ceilings");
    let shipped = OriginRegistry::start_as_shipped();
    let tests_config = OriginRegistry::start();
    let ferry = FerryServer::start();
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "v1");
    eprintln!(
        "registry: giving each server a repository of {} tags",
        o.tags
    );
    fill_origins(
        &shipped,
        &tests_config,
        &layout,
        &image.manifest_digest,
        o.tags,
    )?;
    ferry.publish_ok(&[
        &format!("docker://{}/team/app:v1", shipped.addr()),
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
    fill_ferry(&ferry, &image.manifest_bytes, &config, o.tags)?;

    let body = tmp.path().join("manifest.json");
    std::fs::write(&body, &image.manifest_bytes)?;
    let ceiling_addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(binary("ferry-bench"));
    cmd.args(["ceiling", "--addr", &ceiling_addr])
        .args(["--workers", &workers.to_string()])
        .arg("--body")
        .arg(&body);
    let _ceiling = spawn_logged(cmd, "ceiling", tmp.path());
    wait_for_tcp(ceiling_addr.as_str(), Duration::from_secs(10))?;
    let nginx = crate::nginx::start(tmp.path(), &image.manifest_bytes, workers)?;

    let endpoints = Endpoints {
        ferry_repo: format!("/v2/{}/team/app", shipped.addr().replace(':', "_")),
        registry_repo: "/v2/team/app".to_string(),
        ferry_big: format!("/v2/{BIG}"),
        digest: image.manifest_digest.clone(),
        middle_tag: tag_name(o.tags / 2),
    };
    let measure = |addr: &str, path: &str, method: &str, load: Load, runs: usize| {
        let url = format!("http://{addr}{path}");
        eprintln!("registry: {method} {url} ({} wrk threads)", load.threads);
        median_of(runs, || once(&url, method, &[ACCEPT], load))
    };
    let mut rows = Vec::new();
    for (what, method, ferry_path, registry_path) in endpoints.rows() {
        // docker-registry answers a page of the 100,000-tag repository in 1.4–2 s, and after a
        // run it spends up to 30 s on the requests wrk left queued, which the next measurement
        // waits out (`wait_for_quiet`): one run of it per configuration, not `runs`.
        let registry_runs = if what.starts_with("tags list") {
            1
        } else {
            o.runs
        };
        rows.push(Row {
            what,
            ferry: measure(&ferry.http_addr, &ferry_path, method, load, o.runs)?,
            registry: measure(&shipped.addr(), &registry_path, method, load, registry_runs)?,
            ferry_before: measure(&ferry.http_addr, &ferry_path, method, load_before, o.runs)?,
            registry_before: measure(
                &tests_config.addr(),
                &registry_path,
                method,
                load_before,
                registry_runs,
            )?,
        });
    }
    // ferry and the ceilings alternate run by run, so the machine's drift (large here: ferry's
    // GET by tag read 58,000 to 95,000 req/s in three runs of one day) falls on all alike.
    let constant = "/v2/x/manifests/v1";
    // Also the anonymous row of the token comparison below.
    let ferry_get = format!(
        "http://{}{}/manifests/v1",
        ferry.http_addr, endpoints.ferry_repo
    );
    let (actix_url, nginx_url) = (
        format!("http://{ceiling_addr}{constant}"),
        format!("http://{}{constant}", nginx.addr),
    );
    let mut runs: [Vec<Sample>; 5] = Default::default();
    for _ in 0..o.runs {
        eprintln!("registry: manifest GET by tag: ferry, actix-web and nginx ceilings, {} and 1 wrk threads", load.threads);
        for (i, (url, l)) in [
            (&ferry_get, load),
            (&actix_url, load),
            (&nginx_url, load),
            (&ferry_get, load_before),
            (&actix_url, load_before),
        ]
        .into_iter()
        .enumerate()
        {
            runs[i].push(once(url, "GET", &[ACCEPT], l)?);
        }
    }
    let [f, a, n, fb, ab] = runs.map(|r| median(&r));
    let ceilings = Ceilings {
        ferry: f,
        actix: a,
        nginx: n,
        ferry_before: fb,
        actix_before: ab,
    };
    eprintln!("registry: starting a ferry-server with --registry-auth token");
    // ferry against ferry: one wrk thread, as before. Two on 2 cores put four busy threads on
    // two cores and swung these 5–10% comparisons by ±25% between runs.
    let auth = measure_auth(o, load_before, &shipped, &ferry_get)?;
    eprintln!("registry: starting ferry-servers with --metrics on and off");
    let metrics =
        crate::metrics_cost::measure(o.runs, load_before, &shipped, &image.manifest_digest)?;
    let mut section = render(o, (load, load_before), &rows, &ceilings, &auth);
    section.push_str(&crate::metrics_cost::render(o.runs, load_before, &metrics));
    Ok(section)
}

fn render(
    o: &Options,
    (load, load_before): (Load, Load),
    rows: &[Row],
    ceilings: &Ceilings,
    auth: &AuthRows,
) -> String {
    let threads = load.threads;
    let mut s = String::new();
    s.push_str("## 1. Registry reads\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh registry`. wrk with {threads} threads (ferry-server's HTTP worker count) for GET, \
         {threads} ApacheBench `-k` processes at once for HEAD (wrk's parser waits for a body after HEAD); {} connections, \
         {} s per run, median of {} runs. docker-registry runs with the configuration its official image ships \
         (filesystem storage, `storage.cache.blobdescriptor: inmemory`, access log on); ferry-server as the tests \
         start it. The tags row reads one page in the middle of a {}-tag repository. ApacheBench reports latency in \
         whole milliseconds, so HEAD rows read 0.00 for under 1 ms. docker-registry's tags row is one run per \
         configuration: it answers a page in 1.4–2 s and then spends up to 30 s on the requests left queued, \
         which the next measurement has to wait out.\n\n",
        o.connections, o.seconds, o.runs, o.tags
    ));
    s.push_str("| endpoint | ferry req/s | docker-registry req/s | ferry ÷ registry | ferry p50 | ferry p99 | registry p50 | registry p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1}× | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            r.what,
            r.ferry.rps,
            r.registry.rps,
            r.ferry.rps / r.registry.rps,
            r.ferry.p50_ms,
            r.ferry.p99_ms,
            r.registry.p50_ms,
            r.registry.p99_ms
        ));
    }
    s.push_str(
        "\n### Before and now, same run\n\n\
         Before: the framing this section used until issue 14: one wrk thread (one `ab`), and docker-registry with the \
         tests' configuration (no blob-descriptor cache, deletes enabled). Now: the table above. Both measured in this run.\n\n\
         | endpoint | before: ferry req/s | before: registry req/s | before: ferry ÷ registry | now: ferry ÷ registry |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1}× | {:.1}× |\n",
            r.what,
            r.ferry_before.rps,
            r.registry_before.rps,
            r.ferry_before.rps / r.registry_before.rps,
            r.ferry.rps / r.registry.rps,
        ));
    }
    for r in rows {
        for (who, sample) in [
            ("ferry", r.ferry),
            ("docker-registry (as shipped)", r.registry),
            ("ferry, one wrk thread", r.ferry_before),
            ("docker-registry (tests' config)", r.registry_before),
        ] {
            if sample.timeouts > 0 {
                s.push_str(&format!(
                    "\n{who}, {}: {} requests got no answer within 30 s across the runs (its latencies cover the answered ones).\n",
                    r.what, sample.timeouts
                ));
            }
        }
    }
    let get = &rows[0];
    let (higher_name, higher) = ceilings.higher();
    s.push_str(&format!(
        "\n### The ceiling\n\n\
         Manifest GET by tag on servers that do nothing but answer with the same bytes and headers: the actix-web \
         constant handler (`ferry-bench ceiling`, ferry's stack without ferry) and nginx returning the manifest from \
         memory (`return 200`, no access log, unlimited keep-alive), each with {threads} workers. ferry is quoted \
         against the higher of the two. Here ferry and the ceilings alternate run by run ({} runs; ferry at {threads} \
         wrk threads: {:.0} req/s, at 1: {:.0} req/s), so the machine's drift falls on all of them alike.\n\n\
         | server | wrk threads | req/s | p50 | p99 | ferry ÷ it |\n|---|---:|---:|---:|---:|---:|\n",
        o.runs, ceilings.ferry.rps, ceilings.ferry_before.rps
    ));
    for (who, n, ferry, c) in [
        (
            "actix-web constant handler (before)",
            1,
            ceilings.ferry_before,
            ceilings.actix_before,
        ),
        (
            "actix-web constant handler",
            threads,
            ceilings.ferry,
            ceilings.actix,
        ),
        (
            "nginx, bytes from memory",
            threads,
            ceilings.ferry,
            ceilings.nginx,
        ),
    ] {
        s.push_str(&format!(
            "| {who} | {n} | {:.0} | {:.2} ms | {:.2} ms | {:.0}% |\n",
            c.rps,
            c.p50_ms,
            c.p99_ms,
            100.0 * ferry.rps / c.rps
        ));
    }
    let ratio = get.ferry.rps / get.registry.rps;
    let ratio_before = get.ferry_before.rps / get.registry_before.rps;
    let share = ceilings.ferry.rps / higher.rps;
    let tags = &rows[4];
    let met = |ok: bool| if ok { "met" } else { "not met" };
    s.push_str(&format!(
        "\nTargets: manifest GET by tag ≥ 20× docker-registry as shipped: **{:.1}×, {}** (before: {:.1}× against the tests' config); \
         ≥ 50% of the higher ceiling ({higher_name}): **{:.0}%, {}**; tags-list page p99 < 5 ms: **{:.2} ms, {}**.\n",
        ratio,
        met(ratio >= 20.0),
        ratio_before,
        share * 100.0,
        met(share >= 0.5),
        tags.ferry.p99_ms,
        met(tags.ferry.p99_ms < 5.0),
    ));
    s.push_str(&render_auth(o, load_before, auth));
    s
}

fn render_auth(o: &Options, load: Load, auth: &AuthRows) -> String {
    let mut s = format!(
        "\n### With `--registry-auth token`\n\n\
         Manifest GET by tag on a second ferry-server started with `--registry-auth token` and holding the same \
         image, next to the anonymous server above: a reader token as the Basic password on every request, and a \
         registry token from `/token` as Bearer (what docker, skopeo and crane send). ferry against ferry, so one \
         wrk thread, as before this section matched threads to workers: with two on 2 cores these comparisons \
         swung by ±25% between runs. The three alternate run by \
         run (wrk threads: {}, {} connections, {} s per run, median of {} runs), so the machine's drift falls on \
         all of them alike.\n\n\
         | manifest GET by tag | req/s | ÷ anonymous | p50 | p99 |\n|---|---:|---:|---:|---:|\n",
        load.threads, o.connections, o.seconds, o.runs
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
