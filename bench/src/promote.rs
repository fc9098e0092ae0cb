//! Scenario 8: promotion end to end (issue 10). Ten real ferry-agent processes, each with its
//! own config repository on its own `git daemon`, each with a target following ring `testers`
//! of one image (`ring: testers`); a release is promoted into `testers` and timed from the
//! `Promote` request being sent to every agent's commit on its remote.
//!
//! One daemon per repository, because `git daemon` listens with a backlog of 5: ten agents
//! connecting in the same millisecond overflow it, the kernel drops the SYNs past the backlog,
//! and each dropped one costs the client TCP's 1 s retransmission timeout — a property of the
//! test's git server, not of a git host. `--shared-daemon` measures that setup, and the table
//! counts the kernel's listen-queue overflows (`TcpExtListenOverflows`) either way.
//!
//! The baseline, in the same run with the same agents: a second file in each repository whose
//! target follows tags of another image (the fan-out path of scenarios 3 and 4), timed from the
//! `Publish` request being sent to every agent's commit. Releases alternate between the two, so
//! load and machine state are the same for both.
//!
//! Fixtures and observers (repository files, agent start, [`Bare`]) are those of
//! [`crate::end_to_end`].

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_proto::pb;
use ferry_tests::ferry::{agent_config, FerryAgent, FerryServer};
use ferry_tests::git::GitDaemon;

use crate::end_to_end::{
    confirm_remote_head, create_repo, deployment, image_ref, publish, tag, watcher, Bare,
    AGENT_ARGS, AGENT_LOG, WAIT,
};
use crate::report::machine;
use crate::stats::Dist;
use crate::status::{apply, promoter, PIPELINE};

/// `ferry-bench promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Agents, each with its own config repository.
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Promotions timed (and as many tag publishes for the baseline).
    #[arg(long, default_value_t = 50)]
    promotions: u64,
    /// Serve every repository from one `git daemon` (its listen backlog of 5 then overflows).
    #[arg(long)]
    shared_daemon: bool,
}

/// The kernel's count of connections dropped because a listen queue was full, from
/// /proc/net/netstat (`TcpExt: ListenOverflows`); None where it cannot be read.
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// The image that moves through the rings.
const RING_APP: &str = "bench.example.com/shop/ring-app";
/// Its file in each repository.
const RING_FILE: &str = "ring/deployment.yaml";
/// The image followed by tags (the baseline).
const TAG_APP: &str = "bench.example.com/shop/tag-app";
/// Its file in each repository.
const TAG_FILE: &str = "tag/deployment.yaml";
/// The ring the agents follow.
const RING: &str = "testers";

/// The watcher file: one ring target and one tag-policy target.
fn ring_and_tag_watcher() -> String {
    let mut s = watcher([(TAG_APP, TAG_FILE)]);
    s.push_str(&format!(
        "    - image: {RING_APP}\n      provider: ferry\n      filePath: {RING_FILE}\n      field: spec.template.spec.containers[0].image\n      ring: {RING}\n      pipeline: {PIPELINE}\n"
    ));
    s
}

/// One agent with its repository.
struct Site {
    agent: FerryAgent,
    bare: Bare,
    url: String,
    head: git2::Oid,
}

/// Starts agent `k` on its own repository, named `cluster-k` so each reports on its own.
fn start_site(server: &FerryServer, daemon: &GitDaemon, k: usize) -> anyhow::Result<Site> {
    let name = format!("config-{k:02}");
    let files = vec![
        (RING_FILE.to_string(), deployment(RING_APP, &tag(0))),
        (TAG_FILE.to_string(), deployment(TAG_APP, &tag(0))),
        (".pipe/watcher.yaml".to_string(), ring_and_tag_watcher()),
    ];
    let url = create_repo(daemon, &name, &files);
    let config = agent_config(server, &url, None, &[]).replacen(
        "spec:\n",
        &format!("spec:\n  name: cluster-{k:02}\n"),
        1,
    );
    let agent = FerryAgent::start_with(&config, &[], AGENT_ARGS, AGENT_LOG);
    if !agent.wait_for_log("connected", 1, WAIT) {
        bail!("agent {k} never connected:\n{}", agent.log());
    }
    let bare = Bare::open(&daemon.repo_path(&name))?;
    let head = bare.head()?;
    Ok(Site {
        agent,
        bare,
        url,
        head,
    })
}

/// Polls every site's `main` every 2 ms until each has moved to a commit whose `file` runs
/// `image:want`; returns when the last was seen.
fn wait_all(sites: &mut [Site], file: &str, image: &str, want: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + WAIT;
    let wanted = image_ref(image, want);
    let mut pending: Vec<usize> = (0..sites.len()).collect();
    let mut last = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let site = &mut sites[i];
            let head = site.bare.head()?;
            if head != site.head && site.bare.file(head, file)?.contains(&wanted) {
                site.head = head;
                last = Instant::now();
            } else {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let site = &sites[pending[0]];
            bail!(
                "{} of {} agents did not commit {wanted} to {file} within {WAIT:?}; the first one's log:\n{}",
                pending.len(),
                sites.len(),
                site.agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(last)
}

async fn promote(
    client: &mut ferry_proto::client::Client,
    ring: &str,
    n: u64,
) -> anyhow::Result<()> {
    let moved = client
        .promote(pb::PromoteRequest {
            image: RING_APP.into(),
            reference: format!(":{}", tag(n)),
            to_ring: ring.into(),
            pipeline: PIPELINE.into(),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("promoting {} to {ring}: {s:?}", tag(n)))?
        .into_inner();
    if moved.moved.is_empty() {
        bail!("promoting {} to {ring} moved nothing", tag(n));
    }
    Ok(())
}

/// What the scenario measured.
struct Measured {
    agents: usize,
    /// `Promote` sent → every agent's commit, ms.
    promote: Dist,
    /// `Publish` sent → every agent's commit, ms.
    publish: Dist,
    /// Whether one daemon served every repository.
    shared_daemon: bool,
    /// Listen-queue overflows during the timed releases (the whole machine's).
    overflows: Option<u64>,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let server = FerryServer::start();
    let daemons: Vec<GitDaemon> = if o.shared_daemon {
        vec![GitDaemon::start(tmp.path().join("git"))]
    } else {
        (0..o.agents)
            .map(|k| GitDaemon::start(tmp.path().join(format!("git-{k:02}"))))
            .collect()
    };
    let rt = tokio::runtime::Runtime::new()?;
    let mut client = rt.block_on(server.client());
    let mut promoter = rt.block_on(promoter(&server))?;
    rt.block_on(apply(&mut promoter, &[RING_APP.to_string()]))?;
    // Release 0 runs everywhere before the agents start, so they begin with nothing to do.
    rt.block_on(publish(&mut client, RING_APP, 0, vec![tag(0)]))?;
    rt.block_on(promote(&mut promoter, "developers", 0))?;
    rt.block_on(promote(&mut promoter, RING, 0))?;
    rt.block_on(publish(&mut client, TAG_APP, 0, vec![tag(0)]))?;

    eprintln!("promote: starting {} agents", o.agents);
    let mut sites = (0..o.agents)
        .map(|k| start_site(&server, &daemons[k % daemons.len()], k))
        .collect::<anyhow::Result<Vec<_>>>()?;

    eprintln!(
        "promote: {} promotions into {RING} and {} tag publishes",
        o.promotions, o.promotions
    );
    let (mut promote_ms, mut publish_ms) = (Vec::new(), Vec::new());
    let overflows_before = listen_overflows();
    for n in 1..=o.promotions {
        // Untimed: the release enters ante (publish) and developers, the ring before testers.
        rt.block_on(publish(&mut client, RING_APP, n, vec![tag(n)]))?;
        rt.block_on(promote(&mut promoter, "developers", n))?;
        let sent = Instant::now();
        rt.block_on(promote(&mut promoter, RING, n))?;
        let last = wait_all(&mut sites, RING_FILE, RING_APP, &tag(n))?;
        promote_ms.push(last.duration_since(sent).as_secs_f64() * 1000.0);

        let sent = Instant::now();
        rt.block_on(publish(&mut client, TAG_APP, n, vec![tag(n)]))?;
        let last = wait_all(&mut sites, TAG_FILE, TAG_APP, &tag(n))?;
        publish_ms.push(last.duration_since(sent).as_secs_f64() * 1000.0);
    }
    let overflows = listen_overflows()
        .zip(overflows_before)
        .map(|(after, before)| after.saturating_sub(before));
    for site in &sites {
        confirm_remote_head(&site.url, site.head).context("after the last release")?;
    }
    Ok(render(&Measured {
        agents: o.agents,
        promote: Dist::new(promote_ms),
        publish: Dist::new(publish_ms),
        shared_daemon: o.shared_daemon,
        overflows,
    }))
}

fn render(m: &Measured) -> String {
    let mut s = String::from("## 8. Promotion end to end\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh promote{}`. ferry-server, {} ferry-agent processes (defaults: 30 s resync, info \
         logs, unsigned commits), each with its own config repository, {}, all on loopback. \
         Each repository has a target following ring `{RING}` of one image and a target following tags \
         (semver `>=1.0, <2`) of another. {} releases: each enters `ante` and `developers` untimed, then \
         `Promote` into `{RING}` is timed from the request being sent until every agent's `main` moved to \
         a commit running it (bare repositories read in place every 2 ms; final heads confirmed with \
         `git ls-remote`). The baseline, alternating with it: a release of the tag-followed image, timed \
         from `Publish` being sent until every agent committed it. Listen-queue overflows during the \
         timed releases (the kernel's `TcpExtListenOverflows`, whole machine): {}.\n\n",
        if m.shared_daemon { " --shared-daemon" } else { "" },
        m.agents,
        if m.shared_daemon {
            "all on one `git daemon` (listen backlog 5: agents connecting at once overflow it, and each dropped SYN costs TCP's 1 s retransmission)"
        } else {
            "each on its own `git daemon` (one daemon's listen backlog of 5 overflows when ten agents connect at once; `--shared-daemon` measures that)"
        },
        m.promote.len(),
        m.overflows.map_or("not readable".to_string(), |n| n.to_string())
    ));
    s.push_str(&format!(
        "| sent → all {} agents committed | releases | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n",
        m.agents
    ));
    for (what, d) in [
        (
            format!("`Promote` into `{RING}` (ring targets)"),
            &m.promote,
        ),
        (
            "baseline: `Publish` of a tag (tag-policy targets)".to_string(),
            &m.publish,
        ),
    ] {
        s.push_str(&format!(
            "| {what} | {} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            d.len(),
            d.p50(),
            d.p99(),
            d.max()
        ));
    }
    s.push_str(&format!(
        "\nA promotion reaches every agent in {:.2}× the time a tag publish does at p50.\n\n\
         Target: promote → every agent's commit p50 < 300 ms: **{:.0} ms, {}**.\n",
        m.promote.p50() / m.publish.p50().max(1e-9),
        m.promote.p50(),
        if m.promote.p50() < 300.0 {
            "met"
        } else {
            "not met"
        }
    ));
    s
}
