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
use tracing::Instrument;

use crate::apply::{apply_repo, Applied, Note, TagInfo, TagTable};
use crate::client::{self, Client};
use crate::config::{AgentConfig, GitIdentity, ProviderConfig, PushTarget, SkippedFile};
use crate::cursor::Cursor;
use crate::errors::one_line;
use crate::git::{Outcome, PushSettings, PushTo, RemoteAuth, SigningKey, Workspace};
use crate::health::Readiness;
use crate::notices::Notices;
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
    /// What `/readyz` reports; the loop keeps it current.
    pub readiness: Arc<Readiness>,
}

struct Repo {
    ws: Workspace,
    watcher: crate::config::WatcherConfig,
    /// `push.branchTemplate`: names each batch's push branch.
    branch_template: Option<String>,
}

/// Everything a session needs, shared between the async loop and blocking git work.
struct Agent {
    config: AgentConfig,
    identity: GitIdentity,
    signing: Option<SigningKey>,
    repos: Vec<Mutex<Repo>>,
    /// Why tags were passed over and targets stayed, each logged once.
    notes: Notices<Note>,
    /// YAML files skipped for their kind, each warned about once.
    skipped: Notices<SkippedFile>,
    /// Each repository's last fetch is recorded here for `/readyz`.
    readiness: Arc<Readiness>,
}

/// The targets of every repository that follow one provider.
struct ProviderTargets {
    targets: Arc<Vec<Target>>,
    /// Their images, sorted and distinct: what to list and subscribe to.
    images: Vec<String>,
    /// Changes when any ImageWatcher file changes (see [`LoadedTargets::fingerprint`]).
    fingerprint: u64,
}

impl Agent {
    /// Fetches every repository and loads its targets for `provider`.
    fn load_targets(&self, provider: &str) -> anyhow::Result<ProviderTargets> {
        let mut all = Vec::new();
        let mut fingerprint = 0u64;
        for repo in &self.repos {
            let mut repo = repo.lock().expect("repo lock poisoned");
            let synced = repo
                .ws
                .sync()
                .with_context(|| format!("syncing {}", repo.ws.remote()));
            self.record_fetch(&repo.watcher.repo_id, &synced);
            synced?;
            let LoadedTargets {
                targets,
                errors,
                skipped,
                fingerprint: fp,
            } = targets::load(repo.ws.root(), &repo.watcher, &self.config);
            for e in errors {
                tracing::warn!(repo = %repo.watcher.repo_id, "{e}");
            }
            for s in skipped.iter().filter(|s| self.skipped.first_time(s)) {
                tracing::warn!(repo = %repo.watcher.repo_id, file = %s.path, kind = s.kind.as_deref().unwrap_or(""), "{s}");
            }
            fingerprint = fingerprint.rotate_left(7) ^ fp;
            all.extend(targets.into_iter().filter(|t| t.spec.provider == provider));
        }
        let images = all
            .iter()
            .map(|t| t.spec.image.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(ProviderTargets {
            targets: Arc::new(all),
            images,
            fingerprint,
        })
    }

    /// Applies `table` to the targets among `targets` that watch one of `images` (all when None).
    fn apply(
        &self,
        targets: &[Target],
        table: &TagTable,
        images: Option<&BTreeSet<String>>,
    ) -> anyhow::Result<()> {
        for repo in &self.repos {
            let mut guard = repo.lock().expect("repo lock poisoned");
            // One reborrow, so the workspace and the template can be borrowed apart.
            let repo = &mut *guard;
            let mine: Vec<&Target> = targets
                .iter()
                .filter(|t| t.repo_id == repo.watcher.repo_id)
                .filter(|t| images.is_none_or(|i| i.contains(&t.spec.image.to_string())))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let span =
                tracing::info_span!("apply", repo = %repo.watcher.repo_id, targets = mine.len());
            let _entered = span.enter();
            let started = std::time::Instant::now();
            let applied = apply_repo(
                &mut repo.ws,
                &mine,
                table,
                &self.identity,
                self.signing.as_ref(),
                repo.branch_template.as_deref(),
            )
            .with_context(|| format!("applying to {}", repo.ws.remote()));
            // Applying fetches first, so its outcome says whether the repository was reached.
            self.record_fetch(&repo.watcher.repo_id, &applied);
            let Applied {
                outcome,
                errors,
                notes,
            } = applied?;
            for e in errors {
                tracing::warn!(repo = %repo.watcher.repo_id, "target not applied: {e}");
            }
            for note in notes.iter().filter(|n| self.notes.first_time(n)) {
                tracing::info!(repo = %repo.watcher.repo_id, "{note}");
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

    fn record_fetch<T>(&self, repo_id: &str, result: &anyhow::Result<T>) {
        let outcome = result.as_ref().map(|_| ()).map_err(one_line);
        self.readiness.fetched(repo_id, outcome);
    }
}

/// The table entry for a tag as the server describes it.
fn tag_info(
    digest: &str,
    seq: u64,
    labels: &HashMap<String, String>,
    artifact_type: &str,
    subject: &str,
) -> TagInfo {
    TagInfo {
        digest: digest.to_string(),
        seq,
        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        artifact_type: artifact_type.to_string(),
        subject: subject.to_string(),
    }
}

/// Records a listed or snapshotted tag. Artifacts are recorded too: planning passes them over
/// and says why, once.
fn record_state(table: &mut TagTable, t: &pb::TagState) {
    let info = tag_info(&t.digest, t.seq, &t.labels, &t.artifact_type, &t.subject);
    table
        .entry(t.image.clone())
        .or_default()
        .insert(t.tag.clone(), info);
}

/// Records a tag moved by an event.
fn record_event(table: &mut TagTable, e: &pb::Event) {
    let info = tag_info(&e.digest, e.seq, &e.labels, &e.artifact_type, &e.subject);
    table
        .entry(e.image.clone())
        .or_default()
        .insert(e.tag.clone(), info);
}

/// Runs blocking work (git, files) off the async threads, in the caller's span.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work)).await?
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
    let mut repos = Vec::new();
    for w in &config.watchers {
        let r = config
            .repository(&w.repo_id)
            .expect("validated: watcher repoId exists");
        let dir = opts.state_dir.join("repos").join(&r.repo_id);
        let auth = RemoteAuth {
            ssh_key_file: config.ssh_key_file.clone(),
            ca_file: config.ca_file.clone(),
            https: r.https.clone(),
        };
        let (remote, branch) = (r.remote.clone(), r.branch.clone());
        let mut ws =
            tokio::task::spawn_blocking(move || Workspace::open(&dir, &remote, &branch, auth))
                .await??;
        let (to, branch_template) = match &r.push.to {
            PushTarget::Base => (PushTo::Base, None),
            PushTarget::Branch(b) => (PushTo::Branch(b.clone()), None),
            PushTarget::Template(t) => (PushTo::PerChange, Some(t.clone())),
        };
        ws.set_push(PushSettings {
            to,
            options: r.push.options.clone(),
        });
        repos.push(Mutex::new(Repo {
            ws,
            watcher: w.clone(),
            branch_template,
        }));
    }
    let agent = Arc::new(Agent {
        identity: config.identity.clone(),
        signing,
        repos,
        config: config.clone(),
        notes: Notices::default(),
        skipped: Notices::default(),
        readiness: opts.readiness.clone(),
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
        let span = tracing::info_span!("session", provider = %provider.name);
        match session(&agent, &provider, &opts, &mut cursor)
            .instrument(span)
            .await
        {
            Ok(()) if opts.once => return Ok(()),
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                // Only a failure marks the provider not ready: a session that ends cleanly (the
                // ImageWatcher files changed) reconnects at once.
                opts.readiness.disconnected(&provider.name, &one_line(&e));
                tracing::warn!(provider = %provider.name, error = %one_line(&e), retry_in_ms = backoff.as_millis() as u64, "session ended");
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
    let loaded = {
        let (a, p) = (agent.clone(), provider.name.clone());
        blocking(move || a.load_targets(&p)).await?
    };
    let table = reconcile(agent, provider, &mut client, &loaded, cursor).await?;
    if opts.once || loaded.images.is_empty() {
        if loaded.images.is_empty() && !opts.once {
            tracing::warn!("no targets watch this provider; waiting for ImageWatcher files");
            tokio::time::sleep(opts.resync).await;
        }
        return Ok(());
    }
    stream(agent, provider, opts, &mut client, &loaded, table, cursor).await
}

/// List-then-watch, first half: applies the server's current tags to every target and moves the
/// cursor to the head they are consistent with. The first authenticated call, so "connected" is
/// said only once it is answered.
async fn reconcile(
    agent: &Arc<Agent>,
    provider: &ProviderConfig,
    client: &mut Client,
    loaded: &ProviderTargets,
    cursor: &mut Cursor,
) -> anyhow::Result<TagTable> {
    let listed = client::list_tags(client, &loaded.images, provider.token_file.as_deref()).await?;
    agent.readiness.connected(&provider.name);
    tracing::info!(provider = %provider.name, targets = loaded.targets.len(), images = loaded.images.len(), tags = listed.tags.len(), cursor = cursor.seq(), "connected");
    let mut table = TagTable::new();
    for t in &listed.tags {
        record_state(&mut table, t);
    }
    apply_in_background(agent, &loaded.targets, &table, None).await?;
    cursor.advance(listed.head_seq)?;
    Ok(table)
}

/// Applies `table` on a blocking thread (see [`Agent::apply`]).
async fn apply_in_background(
    agent: &Arc<Agent>,
    targets: &Arc<Vec<Target>>,
    table: &TagTable,
    only: Option<BTreeSet<String>>,
) -> anyhow::Result<()> {
    let (a, t, tb) = (agent.clone(), targets.clone(), Arc::new(table.clone()));
    blocking(move || a.apply(&t, &tb, only.as_ref())).await
}

/// List-then-watch, second half: follows events after the cursor, one commit per batch, until
/// the stream fails or the ImageWatcher files change (the caller then reconnects and reconciles).
async fn stream(
    agent: &Arc<Agent>,
    provider: &ProviderConfig,
    opts: &RunOptions,
    client: &mut Client,
    loaded: &ProviderTargets,
    mut table: TagTable,
    cursor: &mut Cursor,
) -> anyhow::Result<()> {
    let token_file = provider.token_file.as_deref();
    let mut stream = client::subscribe(client, cursor.seq(), &loaded.images, token_file).await?;
    let mut resync = tokio::time::interval(opts.resync);
    resync.tick().await;
    loop {
        tokio::select! {
            msg = stream.message() => {
                let Some(first) = msg.map_err(|s| client::rpc_error("stream", &s, token_file))? else {
                    anyhow::bail!("the server closed the stream");
                };
                let items = take_buffered(&mut stream, first).await;
                let batch = fold_batch(items, &mut table, cursor)?;
                if batch.full || !batch.touched.is_empty() {
                    let only = (!batch.full).then_some(batch.touched);
                    apply_in_background(agent, &loaded.targets, &table, only).await?;
                }
                if let Some(seq) = batch.last_seq {
                    cursor.advance(seq)?;
                }
            }
            _ = resync.tick() => {
                let (a, p) = (agent.clone(), provider.name.clone());
                let now = blocking(move || a.load_targets(&p)).await?;
                if now.fingerprint != loaded.fingerprint {
                    tracing::info!("ImageWatcher files changed; reconciling");
                    return Ok(());
                }
            }
        }
    }
}

/// Events that arrive together become one commit: `first` and what is already buffered behind
/// it (up to 1000).
async fn take_buffered(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
    first: pb::SubscribeResponse,
) -> Vec<pb::SubscribeResponse> {
    let mut items = vec![first];
    while let Ok(Ok(Some(more))) =
        tokio::time::timeout(Duration::from_millis(5), stream.message()).await
    {
        items.push(more);
        if items.len() >= 1000 {
            break;
        }
    }
    items
}

/// What a batch of stream items changed.
struct Batch {
    /// Images with moved tags.
    touched: BTreeSet<String>,
    /// A snapshot replaced the table: every target needs applying.
    full: bool,
    /// The seq to move the cursor to once applied.
    last_seq: Option<u64>,
}

/// Folds `items` into `table`. A heartbeat in a batch without events moves the cursor at once
/// (nothing to apply first).
fn fold_batch(
    items: Vec<pb::SubscribeResponse>,
    table: &mut TagTable,
    cursor: &mut Cursor,
) -> anyhow::Result<Batch> {
    let mut batch = Batch {
        touched: BTreeSet::new(),
        full: false,
        last_seq: None,
    };
    for item in items.into_iter().filter_map(|r| r.item) {
        match item {
            Item::Event(e) => {
                if e.kind == pb::EventKind::TagMoved as i32 {
                    record_event(table, &e);
                    batch.touched.insert(e.image.clone());
                }
                batch.last_seq = Some(e.seq);
            }
            Item::Heartbeat(h) => {
                if batch.last_seq.is_none() && batch.touched.is_empty() {
                    cursor.advance(h.head_seq)?;
                }
            }
            Item::Snapshot(s) => {
                table.clear();
                for t in &s.tags {
                    record_state(table, t);
                }
                batch.full = true;
                batch.last_seq = Some(s.as_of_seq);
            }
        }
    }
    Ok(batch)
}
