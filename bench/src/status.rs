//! Scenario 7: pipeline status at scale (issue 10). One pipeline (3 rings, 64 images), 1,000
//! clusters × 100 targets reported over the `Report` RPC, then `GetPipeline` — what
//! `ferry status` reads: per ring, which clusters run which digest, and a summary per cluster —
//! timed over repeated calls, and `Report` itself timed.
//!
//! The baseline, in the same run on the same server: `ListTags` of the same images, the
//! read every agent makes at start, so the table has a ratio to an existing cheap read.
//!
//! Both reads are timed with a client that counts the response's bytes instead of decoding
//! them: the target is the server's answer, and decoding 100,000 cluster targets in the
//! benchmark process would time the benchmark. One `GetPipeline` with `targets` (every target
//! listed, what `ferry status --targets` reads) is decoded, untimed, to check that every
//! reported target is accounted for.

use std::marker::PhantomData;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Buf;
use ferry_proto::pb;
use ferry_tests::ferry::FerryServer;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::report::machine;
use crate::stats::{grouped, Dist};
use ferry_tests::releases::release;

/// `ferry-bench status`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clusters reporting.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Images in the pipeline (a pipeline lists at most 64: docs/rings.md).
    #[arg(long, default_value_t = 64)]
    images: usize,
    /// Targets per cluster; target `i` follows image `i mod images` (a cluster runs some images
    /// in more than one file).
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// Timed `GetPipeline` calls (and as many `ListTags` calls).
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Timed re-reports of a cluster whose one target moved to a new commit.
    #[arg(long, default_value_t = 200)]
    reports: usize,
}

/// The pipeline's name and rings.
pub(crate) const PIPELINE: &str = "shop";
/// See [`PIPELINE`].
pub(crate) const RINGS: [&str; 3] = ["developers", "testers", "users"];

/// Image `i` of the pipeline.
fn image(i: usize) -> String {
    format!("bench.example.com/shop/app-{i:03}")
}

/// The report of cluster `c`: `targets` targets following ring `c % 3`, target `i` running
/// image `i mod images` at its digest in `digests`; `commit` stands for the commit the agent
/// last pushed.
fn cluster_report(c: usize, digests: &[String], targets: usize, commit: u64) -> pb::ReportRequest {
    let ring = RINGS[c % RINGS.len()];
    pb::ReportRequest {
        cluster: format!("cluster-{c:04}"),
        cursor: 1,
        targets: (0..targets)
            .map(|i| pb::TargetReport {
                target: format!("config#.pipe/watcher.yaml#targets[{i}]"),
                image: image(i % digests.len()),
                digest: digests[i % digests.len()].clone(),
                ring: ring.into(),
                pipeline: PIPELINE.into(),
                file: format!("envs/{ring}/app-{i:03}.yaml"),
                commit: format!("{commit:040x}"),
                pushed_at_ms: 1_700_000_000_000,
                error: String::new(),
            })
            .collect(),
    }
}

/// A codec that sends `Req` and, instead of decoding the answer, counts its bytes.
struct CountingCodec<Req>(PhantomData<Req>);

/// Encodes requests of [`CountingCodec`].
struct RequestEncoder<Req>(PhantomData<Req>);

/// Counts response bytes for [`CountingCodec`].
struct ByteCounter;

impl<Req: prost::Message + Send + 'static> Codec for CountingCodec<Req> {
    type Encode = Req;
    type Decode = usize;
    type Encoder = RequestEncoder<Req>;
    type Decoder = ByteCounter;

    fn encoder(&mut self) -> Self::Encoder {
        RequestEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ByteCounter
    }
}

impl<Req: prost::Message> Encoder for RequestEncoder<Req> {
    type Item = Req;
    type Error = tonic::Status;

    fn encode(&mut self, item: Req, buf: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(buf)
            .map_err(|e| tonic::Status::internal(format!("encoding the request: {e}")))
    }
}

impl Decoder for ByteCounter {
    type Item = usize;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<usize>, Self::Error> {
        let n = buf.remaining();
        buf.advance(n);
        Ok(Some(n))
    }
}

/// A raw gRPC client for timing reads: the same transport the CLI uses (a plain tonic
/// channel), the bearer token on each call, no limit on the answer's size.
struct RawClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl RawClient {
    async fn connect(server: &FerryServer) -> anyhow::Result<RawClient> {
        let channel = tonic::transport::Channel::from_shared(server.grpc_url())?
            .connect()
            .await
            .context("connecting the timing client")?;
        Ok(RawClient {
            grpc: tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX),
            authorization: format!("Bearer {}", server.token()).parse()?,
        })
    }

    /// Calls `method` of `ferry.v1.Ferry` with `req`; returns the answer's size in bytes.
    async fn call<Req: prost::Message + Send + 'static>(
        &mut self,
        method: &'static str,
        req: Req,
    ) -> anyhow::Result<usize> {
        self.grpc.ready().await.context("channel not ready")?;
        let mut request = tonic::Request::new(req);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
        let answer = self
            .grpc
            .unary(request, path, CountingCodec::<Req>(PhantomData))
            .await
            .with_context(|| format!("calling {method}"))?;
        Ok(answer.into_inner())
    }

    /// Times `calls` calls of `method`; returns ms per call and the size of the last answer.
    async fn time<Req: prost::Message + Clone + Send + 'static>(
        &mut self,
        method: &'static str,
        req: Req,
        calls: usize,
    ) -> anyhow::Result<(Dist, usize)> {
        // One call first, untimed: the connection and the server's caches warm.
        let mut bytes = self.call(method, req.clone()).await?;
        let mut ms = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            bytes = self.call(method, req.clone()).await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((Dist::new(ms), bytes))
    }
}

/// What the scenario measured.
struct Measured {
    clusters: usize,
    images: usize,
    targets: usize,
    /// Reports of 100 new targets (populating), ms each.
    first_reports: Dist,
    /// Re-reports with one target's commit changed, ms each.
    re_reports: Dist,
    get_pipeline: Dist,
    get_pipeline_bytes: usize,
    list_tags: Dist,
    list_tags_bytes: usize,
    targets_in_status: usize,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let server = FerryServer::start();
    let rt = tokio::runtime::Runtime::new()?;
    let measured = rt.block_on(measure(&server, o))?;
    Ok(render(&measured))
}

/// Publishes release 1 of each image; returns their digests.
async fn publish_images(
    client: &mut ferry_proto::client::Client,
    images: usize,
) -> anyhow::Result<Vec<String>> {
    let mut digests = Vec::with_capacity(images);
    for i in 0..images {
        let resp = client
            .publish(release(&image(i), 1, vec!["1.0.1".into()]))
            .await
            .with_context(|| format!("publishing {}", image(i)))?
            .into_inner();
        digests.push(resp.digest);
    }
    Ok(digests)
}

/// A client holding a new token with role promoter (the bootstrap token has publisher and
/// agent only): what applies pipelines and moves rings.
pub(crate) async fn promoter(server: &FerryServer) -> anyhow::Result<ferry_proto::client::Client> {
    let secret =
        server.token_command(&["create", "--role", "promoter", "--name", "bench-promoter"]);
    ferry_proto::client::connect(&server.grpc_url(), Some(secret.trim()))
        .await
        .context("connecting with the promoter token")
}

/// Applies the pipeline of [`RINGS`] over `images`: publishes after it put each release into
/// `ante`.
pub(crate) async fn apply(
    client: &mut ferry_proto::client::Client,
    images: &[String],
) -> anyhow::Result<()> {
    client
        .apply_pipeline(pb::ApplyPipelineRequest {
            spec: Some(pb::PipelineSpec {
                name: PIPELINE.into(),
                rings: RINGS.iter().map(|r| r.to_string()).collect(),
                images: images.to_vec(),
                ..Default::default()
            }),
            source: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("applying the pipeline (ApplyPipeline): {s:?}"))?;
    Ok(())
}

/// Promotes each of `images` through `rings` in order (each takes what the ring before runs).
pub(crate) async fn fill(
    client: &mut ferry_proto::client::Client,
    images: &[String],
    rings: &[&str],
) -> anyhow::Result<()> {
    for &ring in rings {
        for image in images {
            client
                .promote(pb::PromoteRequest {
                    image: image.clone(),
                    to_ring: ring.into(),
                    pipeline: PIPELINE.into(),
                    ..Default::default()
                })
                .await
                .map_err(|s| anyhow::anyhow!("promoting {image} to {ring}: {s:?}"))?;
        }
    }
    Ok(())
}

async fn measure(server: &FerryServer, o: &Options) -> anyhow::Result<Measured> {
    let mut client = server.client().await;
    let mut promoter = promoter(server).await?;
    let images: Vec<String> = (0..o.images).map(image).collect();
    apply(&mut promoter, &images).await?;
    eprintln!("status: publishing {} images", o.images);
    let digests = publish_images(&mut client, o.images).await?;
    fill(&mut promoter, &images, &RINGS).await?;

    eprintln!(
        "status: {} clusters report {} targets each",
        o.clusters, o.targets
    );
    let mut first = Vec::with_capacity(o.clusters);
    for c in 0..o.clusters {
        let report = cluster_report(c, &digests, o.targets, 1);
        let started = Instant::now();
        let out = client
            .report(report)
            .await
            .with_context(|| format!("reporting cluster {c}"))?
            .into_inner();
        first.push(started.elapsed().as_secs_f64() * 1000.0);
        if out.changed as usize != o.targets {
            bail!(
                "cluster {c}'s first report changed {} targets, not {}",
                out.changed,
                o.targets
            );
        }
    }
    eprintln!("status: {} re-reports", o.reports);
    let mut again = Vec::with_capacity(o.reports);
    for n in 0..o.reports {
        let c = n % o.clusters;
        let mut report = cluster_report(c, &digests, o.targets, 1);
        // One target applied a new commit since: one history row, 99 unchanged.
        report.targets[0].commit = format!("{:040x}", 2 + n as u64);
        let started = Instant::now();
        let out = client.report(report).await?.into_inner();
        again.push(started.elapsed().as_secs_f64() * 1000.0);
        if out.changed != 1 {
            bail!("a re-report with one new commit changed {}", out.changed);
        }
    }

    // Untimed: the status accounts for every reported target, each cluster under its ring, and
    // with `targets` it lists every one.
    let status = client
        .get_pipeline(pb::GetPipelineRequest {
            name_or_image: PIPELINE.into(),
            targets: true,
            ..Default::default()
        })
        .await
        .context("GetPipeline")?
        .into_inner();
    let summarised: usize = status
        .rings
        .iter()
        .flat_map(|r| &r.cluster_summaries)
        .map(|c| c.targets as usize)
        .sum();
    let listed: usize = status.rings.iter().map(|r| r.clusters.len()).sum();
    if summarised != o.clusters * o.targets || listed != summarised {
        bail!(
            "GetPipeline summarises {summarised} and lists {listed} cluster targets, {} were reported",
            o.clusters * o.targets
        );
    }
    drop(status);

    eprintln!("status: {} GetPipeline and ListTags calls", o.calls);
    let mut raw = RawClient::connect(server).await?;
    let (get_pipeline, get_pipeline_bytes) = raw
        .time(
            "/ferry.v1.Ferry/GetPipeline",
            pb::GetPipelineRequest {
                name_or_image: PIPELINE.into(),
                ..Default::default()
            },
            o.calls,
        )
        .await?;
    let (list_tags, list_tags_bytes) = raw
        .time(
            "/ferry.v1.Ferry/ListTags",
            pb::ListTagsRequest {
                images: images.clone(),
            },
            o.calls,
        )
        .await?;
    Ok(Measured {
        clusters: o.clusters,
        images: o.images,
        targets: o.targets,
        first_reports: Dist::new(first),
        re_reports: Dist::new(again),
        get_pipeline,
        get_pipeline_bytes,
        list_tags,
        list_tags_bytes,
        targets_in_status: summarised,
    })
}

fn kib(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn render(m: &Measured) -> String {
    let mut s = String::from("## 7. Pipeline status at scale\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh status`. One ferry-server; one pipeline of {} rings and {} images (a \
         pipeline lists at most 64), every image promoted through every ring; {} clusters each report {} \
         targets (target *i* runs image *i mod {}*, all following ring *cluster mod 3*) over the `Report` \
         RPC, one report at a time. Then `GetPipeline` of the \
         pipeline (what `ferry status` reads: {} cluster targets, summarised per ring as digest → clusters and one line per cluster) and, as the baseline, `ListTags` of \
         the same {} images, each called {} times in a row on one connection; the timing client counts \
         the answer's bytes rather than decoding it (one `GetPipeline` with every target listed is decoded, untimed, to check it \
         accounts for every target).\n\n",
        RINGS.len(),
        m.images,
        grouped(m.clusters as f64),
        m.targets,
        m.images,
        grouped(m.targets_in_status as f64),
        m.images,
        m.get_pipeline.len()
    ));
    s.push_str("| call | calls | answer | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n");
    let ms = |v: f64| {
        if v < 10.0 {
            format!("{v:.2} ms")
        } else {
            format!("{v:.1} ms")
        }
    };
    for (what, d, bytes) in [
        (
            format!(
                "`GetPipeline` ({} clusters × {} targets)",
                grouped(m.clusters as f64),
                m.targets
            ),
            &m.get_pipeline,
            Some(m.get_pipeline_bytes),
        ),
        (
            "baseline: `ListTags` of the same images".to_string(),
            &m.list_tags,
            Some(m.list_tags_bytes),
        ),
        (
            format!("`Report` of {} new targets", m.targets),
            &m.first_reports,
            None,
        ),
        (
            format!("`Report` of {} targets, one new commit", m.targets),
            &m.re_reports,
            None,
        ),
    ] {
        s.push_str(&format!(
            "| {what} | {} | {} | {} | {} | {} |\n",
            d.len(),
            bytes.map(kib).unwrap_or_else(|| "—".into()),
            ms(d.p50()),
            ms(d.p99()),
            ms(d.max())
        ));
    }
    let ratio = m.get_pipeline.p50() / m.list_tags.p50().max(1e-9);
    s.push_str(&format!(
        "\n`GetPipeline` takes {ratio:.0}× a `ListTags` of the same images at p50, for an answer {:.0}× its size. \
         A report is stored in one SQLite transaction (`synchronous=FULL`: one fsync), with a history row only \
         for the target whose commit changed.\n\n",
        m.get_pipeline_bytes as f64 / m.list_tags_bytes.max(1) as f64
    ));
    s.push_str(&format!(
        "Target: `GetPipeline` with {} clusters × {} targets p99 < 50 ms: **{}, {}**.\n",
        grouped(m.clusters as f64),
        m.targets,
        ms(m.get_pipeline.p99()),
        if m.get_pipeline.p99() < 50.0 {
            "met"
        } else {
            "not met"
        }
    ));
    s
}
