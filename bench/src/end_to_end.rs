//! Scenario 4: end to end, from `Publish` returning to the commit on the config repo.
//!
//! (a) Latency: one repository, one deployment file, one target. Releases are published one at
//! a time over gRPC; each is timed from the moment `Publish` returns to the moment the `main`
//! branch of the git daemon's repository moves. Next to it, in the same run, the same change
//! made with the plain git CLI in an existing clone (pull, edit, commit, push): the floor any
//! tool pays to commit, so ferry's own overhead is the difference.
//!
//! (b) Burst: 200 images, one file and one target each, in one repository; one release per image
//! published as fast as 16 concurrent publishers go. Measured: how many commits the agent made
//! and when the last file carried its new tag.
//!
//! Commits are observed by reading the daemon's bare repository in place with libgit2 (the ref
//! every 2 ms, files as blobs of the head tree): far cheaper than a clone, so the observer does
//! not slow down what it measures. A final `git ls-remote` against the daemon confirms that the
//! head read on disk is the one git clients see.
//!
//! The fixtures and observers here (repository files, agent start, [`Bare`]) are shared with
//! [`crate::catchup`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_tests::ferry::{agent_config, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};

use crate::report::machine;
use crate::stats::Dist;
use ferry_tests::releases;

/// `ferry-bench end-to-end`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Releases published one after another, each timed publish → commit.
    #[arg(long, default_value_t = 50)]
    releases: u64,
    /// Releases committed with the plain git CLI (the baseline).
    #[arg(long, default_value_t = 20)]
    baseline_releases: u64,
    /// Targets in the burst (images, files), one release each.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Concurrent gRPC publishers in the burst.
    #[arg(long, default_value_t = 16)]
    publishers: usize,
}

/// The image of the single-target scenarios.
pub(crate) const APP: &str = "bench.example.com/team/app";
/// The file its target edits.
pub(crate) const APP_FILE: &str = "app/deployment.yaml";
/// How long any one wait (agent connected, commit landed) may take before the run fails.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// A Deployment running `image:tag`.
pub(crate) fn deployment(image: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {}   # managed by ferry\n",
        image_ref(image, tag)
    )
}

/// `image:tag` as [`deployment`] writes it: a file carries `tag` when it contains this.
pub(crate) fn image_ref(image: &str, tag: &str) -> String {
    format!("{image}:{tag}")
}

/// The `1.0.N` tag of release `n`.
pub(crate) fn tag(n: u64) -> String {
    format!("1.0.{n}")
}

/// An ImageWatcher file with one target per `(image, file)`, each following the highest 1.x.
pub(crate) fn watcher<'a>(targets: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::from("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  commitMessage: \"Deploy {{image}}:{{tag}}\"\n  targets:\n");
    for (image, file) in targets {
        s.push_str(&format!(
            "    - image: {image}\n      provider: ferry\n      filePath: {file}\n      field: spec.template.spec.containers[0].image\n      policy: {{semver: \">=1.0, <2\"}}\n"
        ));
    }
    s
}

/// The files of a repository where [`APP`] runs `1.0.0` and one ImageWatcher targets it.
pub(crate) fn app_repo_files() -> Vec<(String, String)> {
    vec![
        (APP_FILE.into(), deployment(APP, &tag(0))),
        (".pipe/watcher.yaml".into(), watcher([(APP, APP_FILE)])),
    ]
}

/// Creates the bare repository `name` on `daemon` holding `files`; returns its URL.
pub(crate) fn create_repo(daemon: &GitDaemon, name: &str, files: &[(String, String)]) -> String {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    daemon.init_bare_repo_with_files(name, &files)
}

/// The agent's flags and log level in the benchmarks: its defaults (a 30 s resync), info logs.
pub(crate) const AGENT_ARGS: &[&str] = &[];
/// See [`AGENT_ARGS`].
pub(crate) const AGENT_LOG: &str = "info";

/// Starts an agent for the repository at `url` (identity from `agent_config`, no signing) and
/// waits until it has connected.
pub(crate) fn start_agent(server: &FerryServer, url: &str) -> anyhow::Result<FerryAgent> {
    let config = agent_config(server, url, None, &[]);
    let agent = FerryAgent::start_with(&config, &[], AGENT_ARGS, AGENT_LOG);
    if !agent.wait_for_log("connected", 1, WAIT) {
        bail!("the agent never connected:\n{}", agent.log());
    }
    Ok(agent)
}

/// Publishes release `n` of `image`, tagged `tags`, over `client`; returns the seq of the last
/// event it appended.
pub(crate) async fn publish(
    client: &mut ferry_proto::client::Client,
    image: &str,
    n: u64,
    tags: Vec<String>,
) -> anyhow::Result<u64> {
    let resp = client
        .publish(releases::release(image, n, tags))
        .await
        .with_context(|| format!("publishing release {n} of {image}"))?
        .into_inner();
    match resp.moved.iter().map(|m| m.seq).max() {
        Some(seq) => Ok(seq),
        None => bail!("publishing release {n} of {image} moved no tag"),
    }
}

/// A bare repository served by the git daemon, read in place.
pub(crate) struct Bare {
    repo: git2::Repository,
    path: PathBuf,
}

impl Bare {
    /// Opens the bare repository at `path`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Bare> {
        let repo = git2::Repository::open_bare(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Bare {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// The commit `main` points at.
    pub(crate) fn head(&self) -> anyhow::Result<git2::Oid> {
        self.repo
            .refname_to_id("refs/heads/main")
            .with_context(|| format!("reading main in {}", self.path.display()))
    }

    /// The content of `file` in `commit`.
    pub(crate) fn file(&self, commit: git2::Oid, file: &str) -> anyhow::Result<String> {
        let read = || -> Result<String, git2::Error> {
            let tree = self.repo.find_commit(commit)?.tree()?;
            let blob = self.repo.find_blob(tree.get_path(Path::new(file))?.id())?;
            Ok(String::from_utf8_lossy(blob.content()).into_owned())
        };
        read().with_context(|| format!("reading {file} at {commit} in {}", self.path.display()))
    }

    /// How many commits `to` has that `from` does not.
    pub(crate) fn commits_between(&self, from: git2::Oid, to: git2::Oid) -> anyhow::Result<usize> {
        let mut walk = self.repo.revwalk()?;
        walk.push(to)?;
        walk.hide(from)?;
        Ok(walk.count())
    }

    /// Polls `main` every 2 ms until it moves away from `from`; returns the new head and when
    /// it was seen.
    pub(crate) fn wait_for_move(
        &self,
        from: git2::Oid,
        agent: &FerryAgent,
    ) -> anyhow::Result<(git2::Oid, Instant)> {
        let deadline = Instant::now() + WAIT;
        loop {
            let head = self.head()?;
            if head != from {
                return Ok((head, Instant::now()));
            }
            if Instant::now() > deadline {
                bail!(
                    "main of {} did not move within {WAIT:?}; agent log:\n{}",
                    self.path.display(),
                    agent.log()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Checks with a real `git ls-remote` that `main` at `url` is `expected`.
pub(crate) fn confirm_remote_head(url: &str, expected: git2::Oid) -> anyhow::Result<()> {
    let out = git::git(Path::new("/"), &["ls-remote", url, "refs/heads/main"])?;
    let seen = out.split_whitespace().next().unwrap_or_default();
    if seen != expected.to_string() {
        bail!("git ls-remote {url} says main is {seen:?}, the bare repository says {expected}");
    }
    Ok(())
}

/// What the burst measured.
struct Burst {
    targets: usize,
    publishers: usize,
    publishing_ms: f64,
    commits: usize,
    first_to_current_ms: f64,
    last_to_current_ms: f64,
}

/// Runs the scenario; returns its Markdown section.
pub fn run(o: &Options) -> anyhow::Result<String> {
    let tmp = tempfile::tempdir()?;
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let rt = tokio::runtime::Runtime::new()?;

    eprintln!("end-to-end: {} releases, publish → commit", o.releases);
    let ferry = latency(&server, &daemon, &rt, o.releases)?;
    eprintln!(
        "end-to-end: {} releases with the git CLI",
        o.baseline_releases
    );
    let floor = git_cli_baseline(&daemon, tmp.path(), o.baseline_releases)?;
    eprintln!(
        "end-to-end: a burst of {} releases over {} targets",
        o.burst, o.burst
    );
    let burst = burst(&server, &daemon, &rt, o.burst, o.publishers)?;
    Ok(render(&ferry, &floor, &burst))
}

/// Part (a): `releases` releases of [`APP`], one at a time; publish returned → `main` moved, ms.
fn latency(
    server: &FerryServer,
    daemon: &GitDaemon,
    rt: &tokio::runtime::Runtime,
    releases: u64,
) -> anyhow::Result<Dist> {
    let url = create_repo(daemon, "config", &app_repo_files());
    let agent = start_agent(server, &url)?;
    let bare = Bare::open(&daemon.repo_path("config"))?;
    let mut client = rt.block_on(server.client());
    let mut head = bare.head()?;
    let mut ms = Vec::new();
    for n in 1..=releases {
        rt.block_on(publish(&mut client, APP, n, vec![tag(n)]))?;
        let returned = Instant::now();
        let (moved, seen) = bare.wait_for_move(head, &agent)?;
        ms.push(seen.duration_since(returned).as_secs_f64() * 1000.0);
        let content = bare.file(moved, APP_FILE)?;
        if !content.contains(&image_ref(APP, &tag(n))) {
            bail!(
                "after release {}, {APP_FILE} at {moved} does not run it:\n{content}\nagent log:\n{}",
                tag(n),
                agent.log()
            );
        }
        head = moved;
    }
    confirm_remote_head(&url, head)?;
    Ok(Dist::new(ms))
}

/// The baseline: the same change made with the git CLI in an existing clone, as a minimal
/// script would once it noticed a release (`git pull --ff-only`, rewrite the tag,
/// `git commit -am`, `git push`). Returns ms per release.
fn git_cli_baseline(daemon: &GitDaemon, tmp: &Path, releases: u64) -> anyhow::Result<Dist> {
    let url = create_repo(daemon, "baseline", &app_repo_files());
    let work = tmp.join("baseline-clone");
    git::clone(&url, &work)?;
    let file = work.join(APP_FILE);
    let mut ms = Vec::new();
    for n in 1..=releases {
        let started = Instant::now();
        git::git(&work, &["pull", "--ff-only", "--quiet"])?;
        let content = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let edited = content.replace(&image_ref(APP, &tag(n - 1)), &image_ref(APP, &tag(n)));
        std::fs::write(&file, edited).with_context(|| format!("writing {}", file.display()))?;
        let message = format!("Deploy {APP}:{}", tag(n));
        git::git(&work, &["commit", "--quiet", "-am", &message])?;
        git::git(&work, &["push", "--quiet", "origin", "HEAD:main"])?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let bare = Bare::open(&daemon.repo_path("baseline"))?;
    let head = bare.head()?;
    if !bare
        .file(head, APP_FILE)?
        .contains(&image_ref(APP, &tag(releases)))
    {
        bail!(
            "the git CLI baseline did not land release {}",
            tag(releases)
        );
    }
    confirm_remote_head(&url, head)?;
    Ok(Dist::new(ms))
}

/// Publishes release 1 (tag `1.0.1`) of every image in `images` from `publishers` concurrent
/// tasks sharing one channel; returns when the last `Publish` returned.
async fn publish_all(
    client: ferry_proto::client::Client,
    images: Arc<Vec<String>>,
    publishers: usize,
) -> anyhow::Result<Instant> {
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (mut client, images) = (client.clone(), images.clone());
        tasks.push(tokio::spawn(async move {
            let mut last = Instant::now();
            for image in images.iter().skip(p).step_by(publishers) {
                publish(&mut client, image, 1, vec![tag(1)]).await?;
                last = Instant::now();
            }
            anyhow::Ok(last)
        }));
    }
    let mut last = None;
    for t in tasks {
        let returned = t.await??;
        last = last.max(Some(returned));
    }
    last.context("no publisher ran")
}

/// Part (b): one release for each of `targets` images at once; polls the head every 10 ms
/// until every file carries its new tag.
fn burst(
    server: &FerryServer,
    daemon: &GitDaemon,
    rt: &tokio::runtime::Runtime,
    targets: usize,
    publishers: usize,
) -> anyhow::Result<Burst> {
    let images: Vec<String> = (0..targets)
        .map(|i| format!("bench.example.com/burst/app-{i:03}"))
        .collect();
    let files: Vec<String> = (0..targets)
        .map(|i| format!("apps/app-{i:03}/deployment.yaml"))
        .collect();
    let mut repo_files: Vec<(String, String)> = images
        .iter()
        .zip(&files)
        .map(|(image, file)| (file.clone(), deployment(image, &tag(0))))
        .collect();
    let pairs = images
        .iter()
        .zip(&files)
        .map(|(i, f)| (i.as_str(), f.as_str()));
    repo_files.push((".pipe/watcher.yaml".into(), watcher(pairs)));
    let url = create_repo(daemon, "burst", &repo_files);
    let agent = start_agent(server, &url)?;
    let bare = Bare::open(&daemon.repo_path("burst"))?;
    let start = bare.head()?;

    let client = rt.block_on(server.client());
    let first = Instant::now();
    let publishing = rt.spawn(publish_all(
        client,
        Arc::new(images.clone()),
        publishers.max(1),
    ));
    // Files that did not carry their new tag at the head last read.
    let mut behind: Vec<usize> = (0..targets).collect();
    let mut head = start;
    let current = loop {
        let now = bare.head()?;
        if now != head {
            let seen = Instant::now();
            head = now;
            behind = not_released(&bare, head, &images, &files, &behind)?;
            if behind.is_empty() {
                break seen;
            }
        }
        if first.elapsed() > WAIT {
            let names: Vec<&str> = behind.iter().take(10).map(|&i| files[i].as_str()).collect();
            bail!(
                "{} of {targets} files never carried their new tag within {WAIT:?} (first: {}); agent log:\n{}",
                behind.len(),
                names.join(", "),
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let last = rt.block_on(publishing)??;
    // Each file was seen current at some head; the final head must still have them all.
    let all: Vec<usize> = (0..targets).collect();
    let left = not_released(&bare, head, &images, &files, &all)?;
    if !left.is_empty() {
        bail!("{} files lost their new tag at {head}", left.len());
    }
    confirm_remote_head(&url, head)?;
    let publishing_ms = (last - first).as_secs_f64() * 1000.0;
    let first_to_current_ms = (current - first).as_secs_f64() * 1000.0;
    Ok(Burst {
        targets,
        publishers,
        publishing_ms,
        commits: bare.commits_between(start, head)?,
        first_to_current_ms,
        // Signed: the repo cannot be current before the last release was recorded, but its
        // publisher may take its response late.
        last_to_current_ms: first_to_current_ms - publishing_ms,
    })
}

/// Those of `which` (indices into `images` and `files`) whose file at `commit` does not run
/// release 1 of its image.
fn not_released(
    bare: &Bare,
    commit: git2::Oid,
    images: &[String],
    files: &[String],
    which: &[usize],
) -> anyhow::Result<Vec<usize>> {
    let mut behind = Vec::new();
    for &i in which {
        if !bare
            .file(commit, &files[i])?
            .contains(&image_ref(&images[i], &tag(1)))
        {
            behind.push(i);
        }
    }
    Ok(behind)
}

fn render(ferry: &Dist, floor: &Dist, b: &Burst) -> String {
    let mut s = String::from("## 4. End to end\n\n");
    s.push_str(&machine());
    s.push_str(&format!(
        "Command: `bench/run.sh end-to-end`. ferry-server, one ferry-agent (its default 30 s resync, \
         info logs, commits unsigned: no signing key is configured for the benchmark; author from the agent config) \
         and a `git daemon` serving the config repo, all on loopback. \
         (a) {} releases of one image published one at a time over gRPC, each timed from `Publish` returning \
         until `main` of the daemon's bare repository moved (read in place with libgit2 every 2 ms; each new \
         head checked to carry the new tag, the final one confirmed with `git ls-remote`). \
         The floor is the same change made {} times with the git CLI in an existing clone: \
         `git pull --ff-only`, rewrite the tag, `git commit -am`, `git push`.\n\n",
        ferry.len(),
        floor.len()
    ));
    s.push_str("| publish → commit | releases | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n");
    for (what, d) in [
        ("ferry: `Publish` returned → commit on the remote", ferry),
        ("git CLI floor: pull, edit, commit, push", floor),
    ] {
        s.push_str(&format!(
            "| {what} | {} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            d.len(),
            d.p50(),
            d.p99(),
            d.max()
        ));
    }
    let overhead = ferry.p50() - floor.p50();
    let overhead = if overhead >= 0.0 {
        format!("ferry's overhead over the floor: {overhead:.0} ms at p50.")
    } else {
        format!(
            "ferry beat the floor by {:.0} ms at p50: it commits and pushes in-process with libgit2, \
             where the floor runs four git processes.",
            -overhead
        )
    };
    s.push_str(&format!(
        "\n{overhead} A polling updater first has to notice the release: \
         half its poll interval on average, then pays at least the same floor. Computed, not measured: \
         {:.1} s at Argo CD Image Updater's 2 min default (60 s + {:.0} ms), {:.1} s at 5 min (150 s + {:.0} ms).\n\n",
        60.0 + floor.p50() / 1000.0,
        floor.p50(),
        150.0 + floor.p50() / 1000.0,
        floor.p50()
    ));
    s.push_str(&format!(
        "(b) Burst: {} images, one file and one target each in one repository; one release per image published \
         by {} concurrent gRPC publishers; the head polled every 10 ms until every file carried its new tag.\n\n",
        b.targets, b.publishers
    ));
    s.push_str("| burst | value |\n|---|---:|\n");
    s.push_str(&format!(
        "| releases (= targets) | {} |\n| publishing them took | {:.0} ms |\n| commits made | {} |\n\
         | first publish → every file current | {:.0} ms |\n| last publish returned → every file current | {:.0} ms |\n",
        b.targets,
        b.publishing_ms,
        b.commits,
        b.first_to_current_ms,
        b.last_to_current_ms
    ));
    s.push_str(&format!(
        "\nTargets: publish → commit p50 < 1 s: **{:.0} ms, {}**. The burst has no target; all {} files carried \
         their new tag, in {} commit{}.\n",
        ferry.p50(),
        if ferry.p50() < 1000.0 { "met" } else { "not met" },
        b.targets,
        b.commits,
        if b.commits == 1 { "" } else { "s" }
    ));
    s
}
