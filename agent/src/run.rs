//! The agent's main loop, per image provider: connect, reconcile every target against the
//! server's current tags (and ring pointers, for ring targets), then follow the event stream,
//! applying each batch of events as one commit per repository, and report what the targets run.
//! Any failure ends the session; the next one reconnects with backoff and reconciles again, so
//! nothing is lost and nothing is applied twice (edits are idempotent and the cursor only moves
//! after a push). Reports never hold up applying nor the cursor: a failed one is logged and
//! sent again with the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_proto::pb;
use tracing::Instrument;

use crate::apply::{apply_repo, Applied, Fact, Known, Note};
use crate::batch::{fold_batch, record_state, Touched};
use crate::client::{self, Client};
use crate::config::{AgentConfig, GitIdentity, ProviderConfig, PushTarget, SkippedFile};
use crate::cursor::Cursor;
use crate::errors::one_line;
use crate::git::{Outcome, PushSettings, PushTo, RemoteAuth, SigningKey, Workspace};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::notices::Notices;
use crate::report::Reporter;
use crate::rings::RingTable;
use crate::sync_trigger::{remote_without_userinfo, LandedTarget, PushLanded, SyncTriggers};
use crate::targets::{self, LoadedTargets, Target};

/// How long a report may take before it is given up (and sent again with the next one).
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// What `/metrics` reports; the loop counts into it.
    pub metrics: Arc<Metrics>,
}

struct Repo {
    ws: Workspace,
    watcher: crate::config::WatcherConfig,
    /// `push.branchTemplate`: names each batch's push branch.
    branch_template: Option<String>,
    /// The last targets loaded, with the [`targets::scope_id`] they were read at: an idle
    /// resync whose tip has the same ImageWatcher directories reuses them unread.
    loaded: Option<(u64, LoadedTargets)>,
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
    /// Told of each push to a base branch, off the push path (`spec.syncTriggers`).
    sync: SyncTriggers,
    metrics: Arc<Metrics>,
}

/// The targets of every repository that follow one provider.
struct ProviderTargets {
    targets: Arc<Vec<Target>>,
    /// Their images, sorted and distinct: what to list and subscribe to.
    images: Vec<String>,
    /// The images of ring targets, sorted and distinct: what to list rings of.
    ring_images: Vec<String>,
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
            let repo = &mut *repo;
            let tip = repo
                .ws
                .files()
                .with_context(|| format!("reading {}", repo.ws.remote()))?;
            let scope = targets::scope_id(&tip, &repo.watcher);
            let loaded = match (&repo.loaded, scope) {
                (Some((was, loaded)), Some(now)) if *was == now => loaded.clone(),
                _ => {
                    let loaded = targets::load(&tip, &repo.watcher, &self.config);
                    drop(tip);
                    if let Some(now) = scope {
                        repo.loaded = Some((now, loaded.clone()));
                    }
                    loaded
                }
            };
            let LoadedTargets {
                targets,
                errors,
                skipped,
                fingerprint: fp,
            } = loaded;
            for e in errors {
                tracing::warn!(repo = %repo.watcher.repo_id, "{e}");
            }
            for s in skipped.iter().filter(|s| self.skipped.first_time(s)) {
                tracing::warn!(repo = %repo.watcher.repo_id, file = %s.path, kind = s.kind.as_deref().unwrap_or(""), "{s}");
            }
            fingerprint = fingerprint.rotate_left(7) ^ fp;
            all.extend(targets.into_iter().filter(|t| t.spec.provider == provider));
        }
        let images_of = |rings_only: bool| -> Vec<String> {
            all.iter()
                .filter(|t| !rings_only || t.spec.ring.is_some())
                .map(|t| t.spec.image.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let (images, ring_images) = (images_of(false), images_of(true));
        Ok(ProviderTargets {
            targets: Arc::new(all),
            images,
            ring_images,
            fingerprint,
        })
    }

    /// Applies `known` to the targets among `targets` that `only` covers (all when None), and
    /// says what each applied target's file now holds. A repository that cannot be applied
    /// stops the apply with its error, and its targets fail with it (so the report says why).
    fn apply(
        &self,
        targets: &[Target],
        known: &Known,
        only: Option<&Touched>,
    ) -> (BTreeMap<String, Fact>, anyhow::Result<()>) {
        let mut facts = BTreeMap::new();
        for repo in &self.repos {
            let mut guard = repo.lock().expect("repo lock poisoned");
            // One reborrow, so the workspace and the template can be borrowed apart.
            let repo = &mut *guard;
            let mine: Vec<&Target> = targets
                .iter()
                .filter(|t| t.repo_id == repo.watcher.repo_id)
                .filter(|t| only.is_none_or(|o| o.covers(t)))
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
                known,
                &self.identity,
                self.signing.as_ref(),
                repo.branch_template.as_deref(),
            );
            self.metrics.apply_took(started.elapsed().as_secs_f64());
            self.count_push(&applied, &mine, known);
            let applied = applied.with_context(|| format!("applying to {}", repo.ws.remote()));
            // Applying fetches first, so its outcome says whether the repository was reached.
            self.record_fetch(&repo.watcher.repo_id, &applied);
            let Applied {
                outcome,
                errors,
                notes,
                facts: found,
            } = match applied {
                Ok(a) => a,
                Err(e) => {
                    let why = one_line(&e);
                    facts.extend(mine.iter().map(|t| (t.key(), Fact::Failed(why.clone()))));
                    return (facts, Err(e));
                }
            };
            if let Outcome::Pushed { commit, .. } = outcome {
                self.announce_push(&repo.ws, &mine, &found, &commit.to_string());
            }
            facts.extend(found);
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
        (facts, Ok(()))
    }

    /// Offers a push to the sync triggers: only a push to the base branch, which is what Argo
    /// CD deploys (a push branch waits for review).
    fn announce_push(
        &self,
        ws: &Workspace,
        mine: &[&Target],
        found: &BTreeMap<String, Fact>,
        commit: &str,
    ) {
        if ws.push_settings().to.is_branch_mode() {
            return;
        }
        let targets = mine
            .iter()
            .filter_map(|t| match found.get(&t.key()) {
                Some(Fact::Applied {
                    digest, commit: c, ..
                }) if c == commit => Some(LandedTarget {
                    target: t.key(),
                    image: t.spec.image.to_string(),
                    file: t.spec.file_path.clone(),
                    digest: digest.clone(),
                }),
                _ => None,
            })
            .collect();
        self.sync.landed(PushLanded {
            repo_id: mine.first().map(|t| t.repo_id.clone()).unwrap_or_default(),
            remote: remote_without_userinfo(ws.remote()),
            branch: ws.branch().to_string(),
            commit: commit.to_string(),
            targets,
        });
    }

    /// Counts what one repository's apply did to its remote, and how long each pushed
    /// release took from its publish.
    fn count_push(
        &self,
        applied: &Result<Applied, crate::git::GitError>,
        targets: &[&Target],
        known: &Known,
    ) {
        use crate::git::GitError;
        match applied {
            Ok(a) => {
                if let Outcome::Pushed { attempts, .. } = a.outcome {
                    self.metrics.pushed(attempts);
                }
                for t in targets {
                    if let Some(Fact::Applied { digest, at_ms, .. }) = a.facts.get(&t.key()) {
                        let image = t.spec.image.to_string();
                        if let Some(published) = known.published_at_ms(&image, digest) {
                            self.metrics.published_to_pushed(at_ms - published);
                        }
                    }
                }
            }
            Err(GitError::PushRejected { .. }) => self.metrics.push_rejected("refused"),
            Err(GitError::Contended { .. }) => self.metrics.push_rejected("contended"),
            Err(_) => {}
        }
    }

    fn record_fetch<T>(&self, repo_id: &str, result: &anyhow::Result<T>) {
        let outcome = result.as_ref().map(|_| ()).map_err(one_line);
        self.readiness.fetched(repo_id, outcome);
    }
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
            loaded: None,
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
        sync: SyncTriggers::start(config.sync_triggers.clone(), opts.metrics.sync_stats()),
        metrics: opts.metrics.clone(),
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
    let mut reporter = Reporter::new(&agent.config.cluster);
    let mut backoff = Duration::from_millis(100);
    loop {
        let span = tracing::info_span!("session", provider = %provider.name);
        match session(&agent, &provider, &opts, &mut cursor, &mut reporter)
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
    reporter: &mut Reporter,
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
    reporter.session_started();
    reporter.set_targets(&loaded.targets);
    let known = reconcile(agent, provider, &mut client, &loaded, cursor, reporter).await?;
    if opts.once || loaded.images.is_empty() {
        if loaded.images.is_empty() && !opts.once {
            tracing::warn!("no targets watch this provider; waiting for ImageWatcher files");
            tokio::time::sleep(opts.resync).await;
        }
        return Ok(());
    }
    let mut session = Session {
        agent,
        provider,
        client: &mut client,
        loaded: &loaded,
        cursor,
        reporter,
    };
    session.stream(opts, known).await
}

/// List-then-watch, first half: applies the server's current tags and ring pointers to every
/// target, moves the cursor to the head the tags are consistent with, and reports. The first
/// authenticated call, so "connected" is said only once it is answered.
///
/// Rings are listed after tags, so their head is at least the cursor: ring moves the stream
/// replays up to that head are already in the table, and [`RingTable::record_event`] skips them.
async fn reconcile(
    agent: &Arc<Agent>,
    provider: &ProviderConfig,
    client: &mut Client,
    loaded: &ProviderTargets,
    cursor: &mut Cursor,
    reporter: &mut Reporter,
) -> anyhow::Result<Known> {
    let token_file = provider.token_file.as_deref();
    let listed = client::list_tags(client, &loaded.images, token_file).await?;
    agent.readiness.connected(&provider.name);
    let mut known = Known::default();
    for t in &listed.tags {
        record_state(&mut known.tags, t);
    }
    known.rings = list_rings(client, &loaded.ring_images, token_file).await?;
    tracing::info!(provider = %provider.name, targets = loaded.targets.len(), images = loaded.images.len(), tags = listed.tags.len(), ring_images = loaded.ring_images.len(), cursor = cursor.seq(), "connected");
    let (facts, applied) = apply_in_background(agent, &loaded.targets, &known, None).await?;
    reporter.record(&facts);
    agent
        .metrics
        .set_targets_failing(&provider.name, reporter.failing());
    if applied.is_ok() {
        cursor.advance(listed.head_seq)?;
    }
    send_report(client, reporter, cursor.seq(), token_file).await;
    applied.map(|()| known)
}

/// The ring pointers of `images`; an empty table, without asking, when no target follows a ring
/// (so an agent without ring targets works with a server that has no rings).
async fn list_rings(
    client: &mut Client,
    images: &[String],
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<RingTable> {
    if images.is_empty() {
        return Ok(RingTable::default());
    }
    let listed = client::list_rings(client, images, token_file).await?;
    Ok(RingTable::from_list(&listed))
}

/// Sends the report `reporter` has pending, if any. A failure is logged and changes nothing: the
/// report goes out again with the next one.
async fn send_report(
    client: &mut Client,
    reporter: &mut Reporter,
    cursor: u64,
    token_file: Option<&std::path::Path>,
) {
    let Some(report) = reporter.pending(cursor) else {
        return;
    };
    let targets = report.targets.len();
    let sent = tokio::time::timeout(
        REPORT_TIMEOUT,
        client::report(client, report.clone(), token_file),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("Report: no answer in {REPORT_TIMEOUT:?}")));
    match sent {
        Ok(resp) => {
            tracing::debug!(cluster = %resp.cluster, targets, changed = resp.changed, cursor, "reported");
            reporter.sent(report);
        }
        Err(e) => {
            tracing::warn!(error = %one_line(&e), "report not sent; it is sent again with the next one")
        }
    }
}

/// Applies `known` on a blocking thread (see [`Agent::apply`]).
async fn apply_in_background(
    agent: &Arc<Agent>,
    targets: &Arc<Vec<Target>>,
    known: &Known,
    only: Option<Touched>,
) -> anyhow::Result<(BTreeMap<String, Fact>, anyhow::Result<()>)> {
    let (a, t, k) = (agent.clone(), targets.clone(), Arc::new(known.clone()));
    blocking(move || Ok(a.apply(&t, &k, only.as_ref()))).await
}

/// A session's connection, targets and cursor, while it follows the stream.
struct Session<'a> {
    agent: &'a Arc<Agent>,
    provider: &'a ProviderConfig,
    client: &'a mut Client,
    loaded: &'a ProviderTargets,
    cursor: &'a mut Cursor,
    reporter: &'a mut Reporter,
}

impl Session<'_> {
    /// List-then-watch, second half: follows events after the cursor, one commit per batch,
    /// until the stream fails or the ImageWatcher files change (the caller then reconnects and
    /// reconciles).
    async fn stream(&mut self, opts: &RunOptions, mut known: Known) -> anyhow::Result<()> {
        let token_file = self.provider.token_file.as_deref();
        let cluster = &self.agent.config.cluster;
        let images = &self.loaded.images;
        let mut stream =
            client::subscribe(self.client, self.cursor.seq(), images, cluster, token_file).await?;
        let mut resync = tokio::time::interval(opts.resync);
        resync.tick().await;
        loop {
            tokio::select! {
                msg = stream.message() => {
                    let Some(first) = msg.map_err(|s| client::rpc_error("stream", &s, token_file))? else {
                        anyhow::bail!("the server closed the stream");
                    };
                    let items = take_buffered(&mut stream, first).await;
                    self.batch(items, &mut known).await?;
                }
                _ = resync.tick() => {
                    let (a, p) = (self.agent.clone(), self.provider.name.clone());
                    let now = blocking(move || a.load_targets(&p)).await?;
                    if now.fingerprint != self.loaded.fingerprint {
                        tracing::info!("ImageWatcher files changed; reconciling");
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Applies one batch of stream items, moves the cursor once it is applied, and reports.
    async fn batch(
        &mut self,
        items: Vec<pb::SubscribeResponse>,
        known: &mut Known,
    ) -> anyhow::Result<()> {
        let token_file = self.provider.token_file.as_deref();
        let events = items
            .iter()
            .filter(|i| matches!(i.item, Some(pb::subscribe_response::Item::Event(_))))
            .count() as u64;
        let metrics = &self.agent.metrics;
        metrics.events_received(&self.provider.name, events);
        let batch = fold_batch(items, known, self.cursor)?;
        if batch.full {
            // A snapshot carries tags only: the rings are listed again, as at reconcile.
            known.rings = list_rings(self.client, &self.loaded.ring_images, token_file).await?;
        }
        if batch.full || !batch.touched.is_empty() {
            let only = (!batch.full).then_some(batch.touched);
            let (facts, applied) =
                apply_in_background(self.agent, &self.loaded.targets, known, only).await?;
            self.reporter.record(&facts);
            metrics.set_targets_failing(&self.provider.name, self.reporter.failing());
            if let Err(e) = applied {
                // The cursor stays: the next session applies these events again.
                send_report(self.client, self.reporter, self.cursor.seq(), token_file).await;
                return Err(e);
            }
        }
        if let Some(seq) = batch.last_seq {
            self.cursor.advance(seq)?;
        }
        metrics.events_applied(&self.provider.name, events);
        send_report(self.client, self.reporter, self.cursor.seq(), token_file).await;
        Ok(())
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
