//! Scenario 11 (issue 13): the agent on a big config repository, where its cost must follow what
//! a release changes, not the size of the tree.
//!
//! For each size (1,000, 20,000 and 100,000 files, each with a history of a few thousand
//! commits, generated with `git fast-import`), one repository served by `git daemon` holds:
//! one deployment followed by one target of image `APP`, 200 deployments followed by 200
//! targets of image `SHARED` (one release moves all 200, in one commit), and filler files.
//! Measured, in the same run:
//!
//! - start-up: a fresh agent, from spawning it to its first reconcile finding nothing to
//!   change (clone + load targets + reconcile), next to `git clone --bare` of the same URL;
//! - publish → pushed, 1 target and 200 targets per release: from `Publish` returning until
//!   `main` of the daemon's bare repository moved (read in place with libgit2, as
//!   scenario 4 does), next to the git CLI making the same edit in an existing clone (pull,
//!   edit, `commit -a`, push);
//! - the agent's resident memory (VmRSS at the end, VmHWM peak), from `/proc`.
//!
//! `--perf FILE` records `perf record -g` of the agent during the 1-target releases of the
//! largest size, for the profile in BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_tests::ferry::{agent_config, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::process::run as run_command;

use crate::end_to_end::{confirm_remote_head, deployment, image_ref, publish, tag, watcher, Bare};
use crate::end_to_end::{AGENT_ARGS, WAIT};
use crate::report::machine;
use crate::stats::Dist;

/// `ferry-bench monorepo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Repository sizes, in files.
    #[arg(long, value_delimiter = ',', default_value = "1000,20000,100000")]
    sizes: Vec<usize>,
    /// Commits of history in each repository.
    #[arg(long, default_value_t = 3000)]
    history: usize,
    /// Releases timed per size, for each of the two cases.
    #[arg(long, default_value_t = 15)]
    releases: u64,
    /// The same edits made with the git CLI, per size and case.
    #[arg(long, default_value_t = 8)]
    baseline_releases: u64,
    /// Start-ups timed per size (agent, and `git clone --bare`).
    #[arg(long, default_value_t = 3)]
    startups: usize,
    /// Targets one release of the shared image moves.
    #[arg(long, default_value_t = 200)]
    wide: usize,
    /// Record `perf record -g` of the agent into this file during the 1-target releases of
    /// the largest size.
    #[arg(long)]
    perf: Option<std::path::PathBuf>,
}

/// The image one target follows.
const APP: &str = "bench.example.com/mono/app";
const APP_FILE: &str = "app/deployment.yaml";
/// The image `wide` targets follow.
const SHARED: &str = "bench.example.com/mono/shared";

fn wide_file(k: usize) -> String {
    format!("apps/app-{k:03}/deployment.yaml")
}

/// What one size measured.
struct SizeRun {
    files: usize,
    startup: Dist,
    clone_bare: Dist,
    one: Dist,
    one_cli: Dist,
    wide: Dist,
    wide_cli: Dist,
    rss_kib: u64,
    hwm_kib: u64,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let rt = tokio::runtime::Runtime::new()?;
    let largest = o.sizes.iter().copied().max().unwrap_or(0);
    let mut runs = Vec::new();
    for (i, &files) in o.sizes.iter().enumerate() {
        eprintln!("monorepo: generating {files} files, {} commits", o.history);
        let name = format!("mono-{files}");
        let generated = Instant::now();
        generate(&daemon.repo_path(&name), files, o.history, o.wide)?;
        eprintln!(
            "monorepo: generated in {:.1} s",
            generated.elapsed().as_secs_f64()
        );
        let url = daemon.url(&name);
        // Each size has its own images, so every release moves its targets.
        let images = (format!("{APP}-{i}"), format!("{SHARED}-{i}"));
        rewrite_images(&daemon.repo_path(&name), &images, o.wide)?;
        let perf = o.perf.as_deref().filter(|_| files == largest);
        runs.push(measure(
            &server,
            &daemon,
            &rt,
            &name,
            &url,
            &images,
            files,
            o,
            perf,
            tmp.path(),
        )?);
    }
    Ok(render(o, &runs))
}

/// Writes a bare repository at `bare`: `files` files, `history` commits. The first commit holds
/// every file; each later one changes one filler file, as humans tweaking config would.
fn generate(bare: &Path, files: usize, history: usize, wide: usize) -> anyhow::Result<()> {
    run_command(
        git::git_command()
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(bare),
    )?;
    let filler = files.saturating_sub(wide + 2).max(1);
    let mut stream = Vec::with_capacity(files * 96 + history * 160);
    let data = |out: &mut Vec<u8>, text: &str| {
        let _ = write!(out, "data {}\n{text}\n", text.len());
    };
    let _ = write!(
        stream,
        "commit refs/heads/main\ncommitter Bench <bench@ferry.invalid> 1700000000 +0000\n"
    );
    data(&mut stream, "initial layout");
    for f in 0..filler {
        let _ = writeln!(stream, "M 100644 inline svc/d{:04}/f{f:06}.yaml", f / 100);
        data(&mut stream, &format!("name: f{f:06}\nreplicas: 1\n"));
    }
    // Placeholders, given their images by `rewrite_images`.
    let _ = writeln!(stream, "M 100644 inline {APP_FILE}");
    data(&mut stream, &deployment("placeholder", &tag(0)));
    for k in 0..wide {
        let _ = writeln!(stream, "M 100644 inline {}", wide_file(k));
        data(&mut stream, &deployment("placeholder", &tag(0)));
    }
    for c in 1..history {
        let _ = write!(
            stream,
            "commit refs/heads/main\ncommitter Bench <bench@ferry.invalid> {} +0000\n",
            1_700_000_000 + c
        );
        data(&mut stream, &format!("tweak {c}"));
        let f = c % filler;
        let _ = writeln!(stream, "M 100644 inline svc/d{:04}/f{f:06}.yaml", f / 100);
        data(
            &mut stream,
            &format!("name: f{f:06}\nreplicas: {}\n", c % 7 + 1),
        );
    }
    let mut child = git::git_command()
        .args(["fast-import", "--quiet"])
        .current_dir(bare)
        .stdin(Stdio::piped())
        .spawn()
        .context("running git fast-import")?;
    child
        .stdin
        .take()
        .context("fast-import stdin")?
        .write_all(&stream)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("git fast-import failed in {}: {status}", bare.display());
    }
    // One well-packed repository, as a server that ran `git gc` would serve.
    git::git(bare, &["repack", "-a", "-d", "-q"])?;
    Ok(())
}

/// Commits the deployments with their images and the ImageWatcher file (one more commit).
fn rewrite_images(bare: &Path, images: &(String, String), wide: usize) -> anyhow::Result<()> {
    let (app, shared) = images;
    let mut files = vec![(APP_FILE.to_string(), deployment(app, &tag(0)))];
    let mut targets = vec![(app.to_string(), APP_FILE.to_string())];
    for k in 0..wide {
        files.push((wide_file(k), deployment(shared, &tag(0))));
        targets.push((shared.to_string(), wide_file(k)));
    }
    files.push((
        ".pipe/watcher.yaml".into(),
        watcher(targets.iter().map(|(i, f)| (i.as_str(), f.as_str()))),
    ));
    let repo = git2::Repository::open_bare(bare)?;
    let tip = repo.find_commit(repo.refname_to_id("refs/heads/main")?)?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, content) in &files {
        update.upsert(
            path.as_str(),
            repo.blob(content.as_bytes())?,
            git2::FileMode::Blob,
        );
    }
    let tree = repo.find_tree(update.create_updated(&repo, &tip.tree()?)?)?;
    let who = git2::Signature::now("Bench", "bench@ferry.invalid")?;
    repo.commit(
        Some("refs/heads/main"),
        &who,
        &who,
        "watch the apps",
        &tree,
        &[&tip],
    )?;
    Ok(())
}

/// Everything measured on one repository.
#[allow(clippy::too_many_arguments)]
fn measure(
    server: &FerryServer,
    daemon: &GitDaemon,
    rt: &tokio::runtime::Runtime,
    name: &str,
    url: &str,
    images: &(String, String),
    files: usize,
    o: &Options,
    perf: Option<&Path>,
    tmp: &Path,
) -> anyhow::Result<SizeRun> {
    eprintln!("monorepo {files}: start-up, {} times", o.startups);
    let mut clone_ms = Vec::new();
    for i in 0..o.startups {
        let dir = tmp.join(format!("clone-{name}-{i}"));
        let started = Instant::now();
        run_command(
            git::git_command()
                .args(["clone", "--bare", "--quiet", url])
                .arg(&dir),
        )?;
        clone_ms.push(ms(started));
        std::fs::remove_dir_all(&dir)?;
    }
    let mut startup_ms = Vec::new();
    let mut agent = None;
    for _ in 0..o.startups {
        drop(agent.take());
        let config = agent_config(server, url, None, &[]);
        let started = Instant::now();
        let a = FerryAgent::start_with(&config, &[], AGENT_ARGS, "info,ferry_agent::run=debug");
        if !a.wait_for_log("nothing to change", 1, WAIT) {
            bail!(
                "the agent on {files} files never finished its start-up:\n{}",
                a.log()
            );
        }
        startup_ms.push(ms(started));
        agent = Some(a);
    }
    let agent = agent.context("no start-up ran")?;
    let bare = Bare::open(&daemon.repo_path(name))?;
    let mut client = rt.block_on(server.client());

    eprintln!("monorepo {files}: {} releases moving 1 target", o.releases);
    let recorder = match perf {
        Some(file) => Some(PerfRecord::start(file, agent.pid())?),
        None => None,
    };
    let one = releases(
        rt,
        &mut client,
        &bare,
        &agent,
        &images.0,
        &[APP_FILE.to_string()],
        o.releases,
    )?;
    if let Some(r) = recorder {
        r.stop()?;
    }
    let wide_files: Vec<String> = (0..o.wide).map(wide_file).collect();
    eprintln!(
        "monorepo {files}: {} releases moving {} targets",
        o.releases, o.wide
    );
    let wide = releases(
        rt,
        &mut client,
        &bare,
        &agent,
        &images.1,
        &wide_files,
        o.releases,
    )?;
    let (rss_kib, hwm_kib) = memory(agent.pid())?;
    drop(agent);

    eprintln!(
        "monorepo {files}: the git CLI, {} releases each",
        o.baseline_releases
    );
    let work = tmp.join(format!("work-{name}"));
    git::clone(url, &work)?;
    let first = o.releases + 1;
    let one_cli = cli_releases(
        &work,
        &images.0,
        &[APP_FILE.to_string()],
        first,
        o.baseline_releases,
    )?;
    let wide_cli = cli_releases(&work, &images.1, &wide_files, first, o.baseline_releases)?;
    std::fs::remove_dir_all(&work)?;
    confirm_remote_head(url, Bare::open(&daemon.repo_path(name))?.head()?)?;
    Ok(SizeRun {
        files,
        startup: Dist::new(startup_ms),
        clone_bare: Dist::new(clone_ms),
        one,
        one_cli: Dist::new(one_cli),
        wide,
        wide_cli: Dist::new(wide_cli),
        rss_kib,
        hwm_kib,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Publishes releases 1..=`count` of `image`, each timed from `Publish` returning until `main`
/// moved; checks each new head is one commit carrying the release in every one of `files`.
fn releases(
    rt: &tokio::runtime::Runtime,
    client: &mut ferry_proto::client::Client,
    bare: &Bare,
    agent: &FerryAgent,
    image: &str,
    files: &[String],
    count: u64,
) -> anyhow::Result<Dist> {
    let mut head = bare.head()?;
    let mut out = Vec::new();
    for n in 1..=count {
        rt.block_on(publish(client, image, n, vec![tag(n)]))?;
        let returned = Instant::now();
        let (moved, seen) = bare.wait_for_move(head, agent)?;
        out.push(seen.duration_since(returned).as_secs_f64() * 1000.0);
        let commits = bare.commits_between(head, moved)?;
        if commits != 1 {
            bail!("release {n} of {image} made {commits} commits, not one");
        }
        for file in [files.first(), files.last()].into_iter().flatten() {
            if !bare.file(moved, file)?.contains(&image_ref(image, &tag(n))) {
                bail!(
                    "after release {n} of {image}, {file} does not run it:\n{}",
                    agent.log()
                );
            }
        }
        head = moved;
    }
    Ok(Dist::new(out))
}

/// The git CLI making the same edits in the existing clone `work`: `git pull --ff-only`,
/// rewrite the tag in each of `files`, `git commit -am`, `git push`. Releases `first..`.
fn cli_releases(
    work: &Path,
    image: &str,
    files: &[String],
    first: u64,
    count: u64,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for n in first..first + count {
        let started = Instant::now();
        git::git(work, &["pull", "--ff-only", "--quiet"])?;
        for file in files {
            let path = work.join(file);
            let content = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            std::fs::write(&path, retag(&content, image, &tag(n)))?;
        }
        let message = format!("Deploy {image}:{}", tag(n));
        git::git(work, &["commit", "--quiet", "-am", &message])?;
        git::git(work, &["push", "--quiet", "origin", "HEAD:main"])?;
        out.push(ms(started));
    }
    Ok(out)
}

/// `content` with every `image:<tag>` rewritten to `image:new`.
fn retag(content: &str, image: &str, new: &str) -> String {
    let prefix = format!("{image}:");
    let mut out = String::with_capacity(content.len());
    for line in content.split_inclusive('\n') {
        match line.find(&prefix) {
            Some(at) => {
                let rest = &line[at + prefix.len()..];
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                out.push_str(&line[..at + prefix.len()]);
                out.push_str(new);
                out.push_str(&rest[end..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// (VmRSS, VmHWM) of `pid`, in KiB.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// `perf record -g -p PID -o FILE`, stopped with SIGINT (perf then writes its file).
struct PerfRecord {
    child: std::process::Child,
}

impl PerfRecord {
    fn start(file: &Path, pid: u32) -> anyhow::Result<PerfRecord> {
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
            .arg(file)
            .stderr(Stdio::null())
            .spawn()
            .context("running perf record (install linux-perf)")?;
        // perf attaches asynchronously; a release published before it did would go unseen.
        std::thread::sleep(Duration::from_millis(500));
        Ok(PerfRecord { child })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

fn render(o: &Options, runs: &[SizeRun]) -> String {
    let mut s = String::from("## 11. Monorepo: the agent on big config repositories\n\n");
    s.push_str(&machine());
    let _ = write!(
        s,
        "Command: `bench/run.sh monorepo`. One config repository per size, generated with `git fast-import` \
         ({} commits of history, then `git repack -a -d`) and served by `git daemon`: filler files, one deployment \
         followed by 1 target, and {} deployments followed by {} targets of one shared image (one release moves \
         them all, in one commit). ferry-agent runs as deployed (30 s resync, info logs, unsigned commits). \
         Start-up: a fresh agent from spawn to its first reconcile finding nothing to change (clone, load, \
         reconcile), against `git clone --bare` of the same URL, {} times each. Publish → pushed: {} releases per \
         case, from `Publish` returning until `main` of the daemon's repository moved (each new head checked to be \
         one commit carrying the release). The git CLI makes the same edit {} times in an existing clone: \
         `git pull --ff-only`, rewrite the tag in each file, `git commit -am`, `git push`. Memory: the agent's \
         VmRSS after the releases and its peak (VmHWM).\n\n",
        o.history, o.wide, o.wide, o.startups, o.releases, o.baseline_releases
    );
    s.push_str(
        "| files | start-up p50 | `git clone --bare` p50 | ratio | 1 target: p50 / p99 | git CLI p50 | \
         {W} targets: p50 / p99 | git CLI p50 | agent RSS / peak |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            .replace("{W}", &o.wide.to_string())
            .as_str(),
    );
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {:.0} ms | {:.0} ms | {:.2}× | {:.0} / {:.0} ms | {:.0} ms | {:.0} / {:.0} ms | {:.0} ms | {:.0} / {:.0} MiB |",
            r.files,
            r.startup.p50(),
            r.clone_bare.p50(),
            r.startup.p50() / r.clone_bare.p50(),
            r.one.p50(),
            r.one.p99(),
            r.one_cli.p50(),
            r.wide.p50(),
            r.wide.p99(),
            r.wide_cli.p50(),
            r.rss_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0,
        );
    }
    if let Some(big) = runs.iter().max_by_key(|r| r.files) {
        let met = |ok: bool| if ok { "met" } else { "not met" };
        let _ = write!(
            s,
            "\nTargets at {} files: 1 target p50 < 200 ms and below the git CLI: **{:.0} ms vs {:.0} ms, {}**; \
             {} targets in one commit < 500 ms: **{:.0} ms, {}**; start-up ≤ 1.5× `git clone --bare`: \
             **{:.2}×, {}**.\n",
            big.files,
            big.one.p50(),
            big.one_cli.p50(),
            met(big.one.p50() < 200.0 && big.one.p50() < big.one_cli.p50()),
            o.wide,
            big.wide.p50(),
            met(big.wide.p50() < 500.0),
            big.startup.p50() / big.clone_bare.p50(),
            met(big.startup.p50() <= 1.5 * big.clone_bare.p50()),
        );
    }
    s
}
