//! The agent's main loop, per image provider: connect, reconcile every target against the
//! server's current tags, then follow the event stream, applying each batch of events as one
//! commit per repository. Any failure ends the session; the next one reconnects with backoff and
//! reconciles again, so nothing is lost and nothing is applied twice (edits are idempotent and
//! the cursor only moves after a push).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_proto::pb::{self, subscribe_response::Item};

use crate::apply::{apply_repo, TagInfo, TagTable};
use crate::client;
use crate::config::{AgentConfig, ProviderConfig};
use crate::cursor::Cursor;
use crate::git::{GitIdentity, Outcome, RemoteAuth, SigningKey, Workspace};
use crate::targets::{self, LoadedTargets, Target};

/// Tunables of the loop.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where clones and cursors live.
    pub state_dir: PathBuf,
    /// How often to fetch the repositories to notice ImageWatcher changes.
    pub resync: Duration,
    /// Reconcile once and exit (no stream).
    pub once: bool,
}

struct Repo {
    ws: Workspace,
    watcher: crate::config::WatcherConfig,
}

/// Everything a session needs, shared between the async loop and blocking git work.
struct Agent {
    config: AgentConfig,
    identity: GitIdentity,
    signing: Option<SigningKey>,
    repos: Vec<Mutex<Repo>>,
}

impl Agent {
    /// Fetches every repository and loads its targets for `provider`.
    fn load_targets(&self, provider: &str) -> anyhow::Result<(Vec<Target>, u64)> {
        let mut all = Vec::new();
        let mut fingerprint = 0u64;
        for repo in &self.repos {
            let mut repo = repo.lock().expect("repo lock poisoned");
            repo.ws
                .sync()
                .with_context(|| format!("syncing {}", repo.ws.remote()))?;
            let LoadedTargets {
                targets,
                errors,
                fingerprint: fp,
            } = targets::load(repo.ws.root(), &repo.watcher, &self.config);
            for e in errors {
                tracing::warn!(repo = %repo.watcher.repo_id, "{e}");
            }
            fingerprint = fingerprint.rotate_left(7) ^ fp;
            all.extend(targets.into_iter().filter(|t| t.spec.provider == provider));
        }
        Ok((all, fingerprint))
    }

    /// Applies `table` to the targets among `targets` that watch one of `images` (all when None).
    fn apply(
        &self,
        targets: &[Target],
        table: &TagTable,
        images: Option<&BTreeSet<String>>,
    ) -> anyhow::Result<()> {
        for repo in &self.repos {
            let mut repo = repo.lock().expect("repo lock poisoned");
            let mine: Vec<&Target> = targets
                .iter()
                .filter(|t| t.repo_id == repo.watcher.repo_id)
                .filter(|t| images.is_none_or(|i| i.contains(&t.spec.image.to_string())))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let started = std::time::Instant::now();
            let (outcome, errors) = apply_repo(
                &mut repo.ws,
                &mine,
                table,
                &self.identity,
                self.signing.as_ref(),
            )
            .with_context(|| format!("applying to {}", repo.ws.remote()))?;
            for e in errors {
                tracing::warn!(repo = %repo.watcher.repo_id, "target not applied: {e}");
            }
            match outcome {
                Outcome::Pushed { commit, attempts } => {
                    tracing::info!(repo = %repo.watcher.repo_id, %commit, attempts, elapsed_ms = started.elapsed().as_millis() as u64, "pushed")
                }
                Outcome::NoChange => {
                    tracing::debug!(repo = %repo.watcher.repo_id, "nothing to change")
                }
            }
        }
        Ok(())
    }
}

fn record(
    table: &mut TagTable,
    image: &str,
    tag: &str,
    digest: &str,
    seq: u64,
    labels: &HashMap<String, String>,
) {
    table.entry(image.to_string()).or_default().insert(
        tag.to_string(),
        TagInfo {
            digest: digest.to_string(),
            seq,
            labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        },
    );
}

/// Runs the agent until an unrecoverable error (bad config, bad key).
pub async fn run(config: AgentConfig, opts: RunOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating state directory {}", opts.state_dir.display()))?;
    let signing = config
        .signing_key_file
        .as_deref()
        .map(SigningKey::load)
        .transpose()?;
    let identity = GitIdentity {
        name: config.identity.username.clone(),
        email: config.identity.email.clone(),
    };
    let mut repos = Vec::new();
    for w in &config.watchers {
        let r = config
            .repository(&w.repo_id)
            .expect("validated: watcher repoId exists");
        let dir = opts.state_dir.join("repos").join(&r.repo_id);
        let auth = RemoteAuth {
            ssh_key_file: config.ssh_key_file.clone(),
            ca_file: config.ca_file.clone(),
        };
        let (remote, branch) = (r.remote.clone(), r.branch.clone());
        let ws = tokio::task::spawn_blocking(move || Workspace::open(&dir, &remote, &branch, auth))
            .await??;
        repos.push(Mutex::new(Repo {
            ws,
            watcher: w.clone(),
        }));
    }
    let agent = Arc::new(Agent {
        identity,
        signing,
        repos,
        config: config.clone(),
    });
    let mut tasks = Vec::new();
    for provider in config.providers.clone() {
        let agent = agent.clone();
        let opts = opts.clone();
        tasks.push(tokio::spawn(
            async move { follow(agent, provider, opts).await },
        ));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Follows one provider forever, reconnecting with backoff.
async fn follow(
    agent: Arc<Agent>,
    provider: ProviderConfig,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let mut cursor = Cursor::load(&opts.state_dir, &provider.name)?;
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&agent, &provider, &opts, &mut cursor).await {
            Ok(()) if opts.once => return Ok(()),
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(provider = %provider.name, error = format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "session ended");
                if opts.once {
                    return Err(e);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One connection: reconcile, then stream until an error or a change of ImageWatcher files.
async fn session(
    agent: &Arc<Agent>,
    provider: &ProviderConfig,
    opts: &RunOptions,
    cursor: &mut Cursor,
) -> anyhow::Result<()> {
    let mut client = client::connect(
        &provider.address,
        provider.token_file.as_deref(),
        provider.ca_file.as_deref(),
    )
    .await?;
    let (targets, fingerprint) = {
        let (a, p) = (agent.clone(), provider.name.clone());
        tokio::task::spawn_blocking(move || a.load_targets(&p)).await??
    };
    let targets = Arc::new(targets);
    let images: Vec<String> = targets
        .iter()
        .map(|t| t.spec.image.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tracing::info!(provider = %provider.name, targets = targets.len(), images = images.len(), cursor = cursor.seq(), "connected");

    // List-then-watch: reconcile against the current tags, then stream from that point.
    let listed = client::list_tags(&mut client, &images).await?;
    let mut table = TagTable::new();
    for t in &listed.tags {
        record(&mut table, &t.image, &t.tag, &t.digest, t.seq, &t.labels);
    }
    let table_arc = Arc::new(table.clone());
    {
        let (a, t, tb) = (agent.clone(), targets.clone(), table_arc.clone());
        tokio::task::spawn_blocking(move || a.apply(&t, &tb, None)).await??;
    }
    cursor.advance(listed.head_seq)?;
    if opts.once || images.is_empty() {
        if images.is_empty() && !opts.once {
            tracing::warn!("no targets watch this provider; waiting for ImageWatcher files");
            tokio::time::sleep(opts.resync).await;
        }
        return Ok(());
    }

    let mut stream = client::subscribe(&mut client, cursor.seq(), &images).await?;
    let mut resync = tokio::time::interval(opts.resync);
    resync.tick().await;
    loop {
        tokio::select! {
            msg = stream.message() => {
                let Some(first) = msg.map_err(|s| anyhow::anyhow!("stream: {}", s.message()))? else {
                    anyhow::bail!("the server closed the stream");
                };
                // Events that arrive together become one commit: take what is already buffered.
                let mut items = vec![first];
                while let Ok(Ok(Some(more))) = tokio::time::timeout(Duration::from_millis(5), stream.message()).await {
                    items.push(more);
                    if items.len() >= 1000 { break; }
                }
                let mut touched = BTreeSet::new();
                let mut last_seq = None;
                let mut full = false;
                for item in items.into_iter().filter_map(|r| r.item) {
                    match item {
                        Item::Event(e) => {
                            if e.kind == pb::EventKind::TagMoved as i32 {
                                record(&mut table, &e.image, &e.tag, &e.digest, e.seq, &e.labels);
                                touched.insert(e.image.clone());
                            }
                            last_seq = Some(e.seq);
                        }
                        Item::Heartbeat(h) => {
                            if last_seq.is_none() && touched.is_empty() {
                                cursor.advance(h.head_seq)?;
                            }
                        }
                        Item::Snapshot(s) => {
                            table.clear();
                            for t in &s.tags {
                                record(&mut table, &t.image, &t.tag, &t.digest, t.seq, &t.labels);
                            }
                            full = true;
                            last_seq = Some(s.as_of_seq);
                        }
                    }
                }
                if full || !touched.is_empty() {
                    let (a, t, tb) = (agent.clone(), targets.clone(), Arc::new(table.clone()));
                    let only = (!full).then_some(touched);
                    tokio::task::spawn_blocking(move || a.apply(&t, &tb, only.as_ref())).await??;
                }
                if let Some(seq) = last_seq {
                    cursor.advance(seq)?;
                }
            }
            _ = resync.tick() => {
                let (a, p) = (agent.clone(), provider.name.clone());
                let (_, now) = tokio::task::spawn_blocking(move || a.load_targets(&p)).await??;
                if now != fingerprint {
                    tracing::info!("ImageWatcher files changed; reconciling");
                    return Ok(());
                }
            }
        }
    }
}
