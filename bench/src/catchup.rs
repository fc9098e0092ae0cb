//! Scenario 6: catch-up. An agent watching one image connects, applies a release, and is killed
//! (SIGKILL). While it is down the server records 100,000 events, almost all for other images
//! (100 tags per publish across a few hundred images), then one release of the watched image.
//!
//! Measured: from restarting the agent to that release's commit on the config repo, split into
//! restart → "connected" in its log (process start, opening and fetching its clone, loading the
//! ImageWatcher files, connecting) and "connected" → commit (listing tags, editing, committing,
//! pushing). The baseline, in the same run, is a fresh agent (no clone, no cursor) started after
//! the same events on a second repository with the same content: resuming should cost no more
//! than starting fresh, however many events were missed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_proto::pb;
use ferry_tests::ferry::{agent_config, FerryAgent, FerryServer};
use ferry_tests::git::GitDaemon;

use crate::end_to_end::{
    app_repo_files, confirm_remote_head, create_repo, image_ref, publish, start_agent, tag, Bare,
    AGENT_ARGS, AGENT_LOG, APP, APP_FILE, WAIT,
};
use crate::report::machine;

/// `ferry-bench catchup`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Events published while the agent is down (one per tag).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Tags per publish (100 is the server's per-publish cap).
    #[arg(long, default_value_t = 100)]
    tags_per_publish: u64,
    /// Other images the events are spread over.
    #[arg(long, default_value_t = 300)]
    other_images: u64,
}

/// An agent start timed until the watched release's commit.
struct Start {
    /// Start → "connected" in the agent's log, ms.
    connected_ms: f64,
    /// Start → the commit on the remote, ms.
    commit_ms: f64,
}

/// What the scenario measured.
struct Catchup {
    events: u64,
    publishes: u64,
    publishing_secs: f64,
    /// The cursor the agent had saved when it was killed, and the server's head seq after the
    /// watched release.
    cursor: u64,
    head_seq: u64,
    resumed: Start,
    fresh: Start,
    /// A raw stream from the agent's old cursor: every missed event replayed, and only the
    /// watched image's.
    replay_all: Replay,
    replay_filtered: Replay,
}

/// A `Subscribe` from an old cursor, timed until it reached the head.
struct Replay {
    events: u64,
    ms: f64,
}

/// Subscribes after `cursor` (filtered to `images` when not empty) and counts events until
/// one with `head_seq` arrives.
async fn replay(
    server: &FerryServer,
    cursor: u64,
    images: &[&str],
    head_seq: u64,
) -> anyhow::Result<Replay> {
    let mut client = server.client().await;
    let started = Instant::now();
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            after_seq: cursor,
            images: images.iter().map(|i| i.to_string()).collect(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut events = 0;
    loop {
        let msg = tokio::time::timeout(WAIT, stream.message())
            .await
            .context("replay stalled")??
            .context("the server ended the replay stream")?;
        if let Some(pb::subscribe_response::Item::Event(e)) = msg.item {
            events += 1;
            if e.seq >= head_seq {
                return Ok(Replay {
                    events,
                    ms: started.elapsed().as_secs_f64() * 1000.0,
                });
            }
        }
    }
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let rt = tokio::runtime::Runtime::new()?;
    let mut client = rt.block_on(server.client());
    let url = create_repo(&daemon, "config", &app_repo_files());
    let fresh_url = create_repo(&daemon, "fresh", &app_repo_files());
    let bare = Bare::open(&daemon.repo_path("config"))?;

    // Connected and current with release 1, then killed.
    let mut agent = start_agent(&server, &url)?;
    let initial = bare.head()?;
    let seq = rt.block_on(publish(&mut client, APP, 1, vec![tag(1)]))?;
    let (head, _) = bare.wait_for_move(initial, &agent)?;
    expect_tag(&bare, head, 1)?;
    let cursor = wait_for_cursor(&agent, seq)?;
    agent.kill9();

    eprintln!(
        "catchup: publishing {} events while the agent is down",
        o.events
    );
    let started = Instant::now();
    let per = o.tags_per_publish.max(1);
    let publishes = o.events.div_ceil(per);
    for p in 0..publishes {
        let image = format!(
            "bench.example.com/other/app-{:03}",
            p % o.other_images.max(1)
        );
        let first = p * per;
        let tags = (first..o.events.min(first + per))
            .map(|e| format!("r{p}-{e}"))
            .collect();
        rt.block_on(publish(&mut client, &image, p, tags))?;
    }
    let publishing_secs = started.elapsed().as_secs_f64();
    let head_seq = rt.block_on(publish(&mut client, APP, 2, vec![tag(2)]))?;

    eprintln!("catchup: restarting the agent");
    let restarted = Instant::now();
    agent.restart_with(AGENT_ARGS, AGENT_LOG);
    let resumed = time_to_commit(&agent, &bare, head, restarted, &url)?;

    eprintln!("catchup: starting a fresh agent");
    let fresh_bare = Bare::open(&daemon.repo_path("fresh"))?;
    let fresh_head = fresh_bare.head()?;
    let config = agent_config(&server, &fresh_url, None, &[]);
    let started = Instant::now();
    let fresh_agent = FerryAgent::start_with(&config, &[], AGENT_ARGS, AGENT_LOG);
    let fresh = time_to_commit(&fresh_agent, &fresh_bare, fresh_head, started, &fresh_url)?;

    eprintln!("catchup: replaying the missed events to raw streams");
    let replay_all = rt.block_on(replay(&server, cursor, &[], head_seq))?;
    let replay_filtered = rt.block_on(replay(&server, cursor, &[APP], head_seq))?;

    Ok(render(&Catchup {
        events: o.events,
        publishes,
        publishing_secs,
        cursor,
        head_seq,
        resumed,
        fresh,
        replay_all,
        replay_filtered,
    }))
}

/// Fails unless [`APP_FILE`] at `commit` runs release `n` of [`APP`].
fn expect_tag(bare: &Bare, commit: git2::Oid, n: u64) -> anyhow::Result<()> {
    let content = bare.file(commit, APP_FILE)?;
    if !content.contains(&image_ref(APP, &tag(n))) {
        bail!("{APP_FILE} at {commit} does not run {}:\n{content}", tag(n));
    }
    Ok(())
}

/// Waits until the agent has saved a cursor of at least `seq` (it does right after pushing);
/// returns the cursor.
fn wait_for_cursor(agent: &FerryAgent, seq: u64) -> anyhow::Result<u64> {
    let path = agent.state_dir().join("cursor-ferry");
    let deadline = Instant::now() + WAIT;
    loop {
        let saved = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if let Some(cursor) = saved.filter(|&c| c >= seq) {
            return Ok(cursor);
        }
        if Instant::now() > deadline {
            bail!(
                "the agent's cursor {} never reached {seq}; agent log:\n{}",
                path.display(),
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls every 2 ms, from `started` (just before the agent was started), until "connected"
/// is in the agent's log and `main` of `bare` has moved from `from` to a commit running release
/// 2; confirms the head with `git ls-remote` against `url`.
fn time_to_commit(
    agent: &FerryAgent,
    bare: &Bare,
    from: git2::Oid,
    started: Instant,
    url: &str,
) -> anyhow::Result<Start> {
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
    let mut connected = None;
    loop {
        let head = bare.head()?;
        // Read after the head: "connected" is logged before the commit, so a commit seen here
        // finds it in the log.
        if connected.is_none() && agent.log().contains("connected") {
            connected = Some(Instant::now());
        }
        if head != from {
            let commit = Instant::now();
            expect_tag(bare, head, 2)?;
            confirm_remote_head(url, head)?;
            let connected = connected.with_context(|| {
                format!(
                    "a commit but no \"connected\" in the agent log:\n{}",
                    agent.log()
                )
            })?;
            return Ok(Start {
                connected_ms: ms(connected),
                commit_ms: ms(commit),
            });
        }
        if started.elapsed() > WAIT {
            bail!(
                "no commit within {WAIT:?} of starting the agent; agent log:\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn render(c: &Catchup) -> String {
    let mut s = String::from("## 6. Catch-up\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh catchup`. ferry-server, ferry-agent (its defaults, info logs) and a `git daemon` on loopback. \
         An agent watching one image applied a release, saved cursor {} and was killed (SIGKILL). While it was down, \
         {} events ({} publishes of up to 100 tags, spread over other images) and then one release of the watched image \
         were published, taking the server's head seq to {}: the agent missed {} events. Timed from restarting it \
         until that release's commit was on the remote (its bare repository read every 2 ms, confirmed with `git ls-remote`), \
         with \"connected\" in its log as the split: start → connected is process start, fetching its clone, loading the \
         ImageWatcher files and connecting; connected → commit is listing tags, editing, committing and pushing. \
         The baseline is a fresh agent (no clone, no cursor) started after the same events on a second repository \
         with the same content. One run each. Both reconcile against `ListTags` for their own images and then \
         subscribe from the server's head, so the missed events are never replayed to them.\n\n",
        c.cursor,
        c.events,
        c.publishes,
        c.head_seq,
        c.head_seq - c.cursor,
    ));
    s.push_str("| agent | start → connected | connected → commit | start → commit |\n|---|---:|---:|---:|\n");
    for (what, t) in [
        ("resumed after missing the events", &c.resumed),
        ("fresh (clones, no cursor)", &c.fresh),
    ] {
        s.push_str(&format!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            t.connected_ms,
            t.commit_ms - t.connected_ms,
            t.commit_ms
        ));
    }
    s.push_str(&format!(
        "\nThe server's replay path, which a consumer that does not list first relies on: a `Subscribe` from the killed \
         agent's cursor received every missed event ({} events) up to the head in {:.0} ms ({:.0} events/s); \
         filtered to the watched image, the server scanned the same log and sent {} event(s) in {:.0} ms.\n",
        c.replay_all.events,
        c.replay_all.ms,
        c.replay_all.events as f64 / (c.replay_all.ms / 1000.0),
        c.replay_filtered.events,
        c.replay_filtered.ms
    ));
    s.push_str(&format!(
        "\nPublishing the {} events took {:.1} s ({:.0} events/s, one publisher).\n",
        c.events,
        c.publishing_secs,
        c.events as f64 / c.publishing_secs
    ));
    s.push_str(&format!(
        "\nTargets: resumed agent current < 5 s after restart: **{:.2} s, {}**.\n",
        c.resumed.commit_ms / 1000.0,
        if c.resumed.commit_ms < 5000.0 {
            "met"
        } else {
            "not met"
        }
    ));
    s
}
