//! Cluster reports (docs/rings.md, "Cluster reports and status"): what each cluster's targets
//! run, kept in the store and indexed in memory by (pipeline, ring), and which clusters hold a
//! Subscribe stream now.
//!
//! A report is validated whole before anything is stored, so a refused report changes nothing.
//! The index (`report_index`) is what `GetPipeline` and the gates read: tallies per (pipeline,
//! ring, image) kept as reports arrive, so neither walks every target of every cluster (1,000
//! clusters × 100 targets is the design load).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use ferry_proto::names::{validate_digest, Shown};
use ferry_proto::reference::ImageName;
use tokio::sync::watch;

use super::report_index::Index;
use super::{Service, ServiceError};
use crate::store::{ClusterRecord, ReportRecord, Store};

pub use crate::store::ReportedTarget;

/// Most targets one report may carry: a report is the cluster's full set, and every one is a
/// row written in the report's transaction.
pub const MAX_REPORT_TARGETS: usize = 10_000;
/// Longest cluster name.
pub const MAX_CLUSTER_NAME: usize = 253;
/// Longest target key, file path, image name or commit id.
const MAX_FIELD: usize = 1024;
/// Longest ring or pipeline name (as docs/rings.md names them).
const MAX_RING_NAME: usize = 63;
/// Longest error kept for a target; longer ones are cut (on a character boundary), not refused:
/// an agent's error text is what explains a failure, and refusing the report would hide it.
pub const MAX_TARGET_ERROR: usize = 4096;

/// What the server knows of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The cluster name (the agent's `spec.name`, or its token's name).
    pub name: String,
    /// The token that reported last (or, for a cluster that never reported, that holds its
    /// stream).
    pub token: String,
    /// The agent's cursor at its last report (0 if it never reported).
    pub cursor: u64,
    /// When it last reported (ms since the epoch; 0 if it never did).
    pub reported_at_ms: i64,
    /// Whether the cluster holds a Subscribe stream now.
    pub connected: bool,
}

/// One target of a report, as the agent sent it.
#[derive(Debug, Clone, Default)]
pub struct TargetInput {
    /// Stable target key: `repo_id#watcher_file#targets[i]`.
    pub target: String,
    /// The image (normalised by the service).
    pub image: String,
    /// What the file holds now; empty when unknown.
    pub digest: String,
    /// The ring the target follows; empty for tag-policy targets.
    pub ring: String,
    /// The ring's pipeline; may be empty.
    pub pipeline: String,
    /// The file the target writes.
    pub file: String,
    /// The commit that wrote it (or the tip the agent checked).
    pub commit: String,
    /// When that commit was pushed (ms since the epoch).
    pub pushed_at_ms: i64,
    /// Why the target fails; empty when fine.
    pub error: String,
}

/// One full report of a cluster.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// The agent's cluster name; empty: the token's name.
    pub cluster: String,
    /// The agent's cursor.
    pub cursor: u64,
    /// Every target of the cluster: the ones absent are dropped.
    pub targets: Vec<TargetInput>,
}

/// What a stored report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The name the report was stored under.
    pub cluster: String,
    /// Targets whose digest, commit or error changed (history rows written).
    pub changed: u32,
    /// Targets the cluster had that the report no longer lists (deleted).
    pub removed: u32,
}

/// The in-memory side of reports, owned by [`Service`].
pub(super) struct Reports {
    /// Serialises store commit and index update, so the index applies reports in store order.
    write: Mutex<()>,
    index: RwLock<Index>,
    /// Bumped after each stored report (the count of reports stored since start).
    changed: watch::Sender<u64>,
    connections: Connections,
}

/// Open Subscribe streams by cluster name: (count, the token of the newest).
type Connections = Arc<Mutex<HashMap<String, (usize, String)>>>;

impl Reports {
    /// Indexes every stored report.
    pub(super) fn load(store: &Store) -> Result<Self, ServiceError> {
        let (clusters, targets) = store.load_reports()?;
        let mut index = Index::default();
        for c in clusters {
            index.clusters.insert(c.name.clone(), c);
        }
        let n = targets.len();
        for t in targets {
            index.insert(Arc::new(t));
        }
        tracing::info!(
            clusters = index.clusters.len(),
            targets = n,
            "cluster reports loaded"
        );
        Ok(Reports {
            write: Mutex::new(()),
            index: RwLock::new(index),
            changed: watch::channel(0).0,
            connections: Arc::default(),
        })
    }

    pub(super) fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().expect("report index poisoned")
    }

    fn connected(&self, name: &str) -> Option<String> {
        let open = self.connections.lock().expect("connections poisoned");
        open.get(name).map(|(_, token)| token.clone())
    }
}

/// One open Subscribe stream of a cluster; the cluster shows connected until every such guard
/// is dropped.
pub struct ClusterConnection {
    connections: Connections,
    name: String,
    _counted: crate::metrics::OpenStream,
}

impl Drop for ClusterConnection {
    fn drop(&mut self) {
        let mut open = self.connections.lock().expect("connections poisoned");
        if let Some((n, _)) = open.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.name);
            }
        }
    }
}

fn invalid(msg: String) -> ServiceError {
    ServiceError::InvalidReport(msg)
}

/// Checks a cluster name: 1 to 253 characters of ASCII letters, digits, `.`, `-`, `_` and `/`,
/// starting and ending with a letter or digit, with no empty `/` segment (`prod-eu`,
/// `eu/prod.cluster-1`). A cluster that takes its token's name is not held to this rule: token
/// names have their own (1 to 64 characters, no commas or control characters).
pub fn validate_cluster_name(name: &str) -> Result<(), ServiceError> {
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    let ok = !name.is_empty()
        && name.len() <= MAX_CLUSTER_NAME
        && ends_ok(name.as_bytes().first())
        && ends_ok(name.as_bytes().last())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        && !name.contains("//");
    if ok {
        return Ok(());
    }
    Err(invalid(format!(
        "cluster name {} is not valid: a cluster name is 1 to {MAX_CLUSTER_NAME} characters of letters, digits, '.', '-', '_' and '/', starting and ending with a letter or digit (set spec.name in the agent config)",
        Shown(name)
    )))
}

/// A bounded field without control characters; `required` refuses an empty one.
fn check_field(
    target: &str,
    what: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), ServiceError> {
    if required && value.is_empty() {
        return Err(invalid(format!(
            "target {}: {what} is empty; every target needs one",
            Shown(target)
        )));
    }
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "target {}: {what} {} must be at most {max} bytes without control characters",
            Shown(target),
            Shown(value)
        )));
    }
    Ok(())
}

/// A ring or pipeline name: empty, or `[a-z0-9][a-z0-9-]*` of at most 63 characters.
fn check_ring_name(target: &str, what: &str, value: &str) -> Result<(), ServiceError> {
    let ok = value.is_empty()
        || (value.len() <= MAX_RING_NAME
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    if ok {
        return Ok(());
    }
    Err(invalid(format!(
        "target {}: {what} {} is not a {what} name: [a-z0-9][a-z0-9-]*, at most {MAX_RING_NAME} characters",
        Shown(target),
        Shown(value)
    )))
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

/// Validates one target and normalises its image.
fn target(t: TargetInput) -> Result<ReportedTarget, ServiceError> {
    let key = t.target.as_str();
    check_field(key, "target key", key, MAX_FIELD, true)?;
    check_field(key, "image", &t.image, MAX_FIELD, true)?;
    let image = ImageName::parse(&t.image)
        .map_err(|e| invalid(format!("target {}: image: {e}", Shown(key))))?
        .to_string();
    if !t.digest.is_empty() {
        validate_digest(&t.digest).map_err(|e| invalid(format!("target {}: {e}", Shown(key))))?;
    }
    check_ring_name(key, "ring", &t.ring)?;
    check_ring_name(key, "pipeline", &t.pipeline)?;
    if t.ring.is_empty() && !t.pipeline.is_empty() {
        return Err(invalid(format!(
            "target {}: pipeline {} is named without a ring; a pipeline is reported only for targets that follow a ring",
            Shown(key),
            Shown(&t.pipeline)
        )));
    }
    check_field(key, "file", &t.file, MAX_FIELD, false)?;
    check_field(key, "commit", &t.commit, MAX_FIELD, false)?;
    if t.pushed_at_ms < 0 {
        return Err(invalid(format!(
            "target {}: pushed_at_ms {} is negative; send 0 when unknown",
            Shown(key),
            t.pushed_at_ms
        )));
    }
    Ok(ReportedTarget {
        target: t.target,
        image,
        digest: t.digest,
        ring: t.ring,
        pipeline: t.pipeline,
        file: t.file,
        commit: t.commit,
        pushed_at_ms: t.pushed_at_ms,
        error: cut(t.error, MAX_TARGET_ERROR),
        ..Default::default()
    })
}

/// Validates a whole report; the cluster name it is stored under and its targets.
fn validated(
    token_name: &str,
    input: ReportInput,
) -> Result<(String, Vec<ReportedTarget>), ServiceError> {
    let cluster = if input.cluster.is_empty() {
        token_name.to_string()
    } else {
        validate_cluster_name(&input.cluster)?;
        input.cluster
    };
    if input.targets.len() > MAX_REPORT_TARGETS {
        return Err(invalid(format!(
            "cluster {}: the report lists {} targets, more than the {MAX_REPORT_TARGETS} one report may carry",
            Shown(&cluster),
            input.targets.len()
        )));
    }
    let mut seen = HashSet::with_capacity(input.targets.len());
    let mut targets = Vec::with_capacity(input.targets.len());
    for t in input.targets {
        let t = target(t)?;
        if !seen.insert(t.target.clone()) {
            return Err(invalid(format!(
                "cluster {}: target {} is listed twice; target keys must be distinct",
                Shown(&cluster),
                Shown(&t.target)
            )));
        }
        targets.push(t);
    }
    Ok((cluster, targets))
}

impl Service {
    /// Stores a full report from the token named `token_name` (role agent, checked by the
    /// caller): validates all of it (nothing is stored on a refusal), writes it in one
    /// transaction, updates the index and bumps [`Service::reports_changed`].
    pub fn record_report(
        &self,
        token_name: &str,
        input: ReportInput,
    ) -> Result<ReportOutcome, ServiceError> {
        let cursor = input.cursor;
        let (cluster, targets) = validated(token_name, input)?;
        let record = ReportRecord {
            cluster: ClusterRecord {
                name: cluster.clone(),
                token: token_name.to_string(),
                cursor,
                reported_at_ms: crate::store::now_ms(),
            },
            targets,
        };
        let reports = &self.reports;
        let _write = reports.write.lock().expect("report lock poisoned");
        let stored = self.store().record_report(&record)?;
        {
            let mut index = reports.index.write().expect("report index poisoned");
            index.take_cluster(&cluster);
            for t in stored.targets {
                index.insert(Arc::new(t));
            }
            index.clusters.insert(cluster.clone(), record.cluster);
        }
        reports.changed.send_modify(|n| *n += 1);
        Ok(ReportOutcome {
            cluster,
            changed: stored.changed,
            removed: stored.removed.len() as u32,
        })
    }

    /// The latest reports of targets following `ring` of `pipeline`, ordered by (cluster,
    /// target), from memory. Targets reported with an empty pipeline (an agent need not name it
    /// when its image is in one pipeline) are included for every pipeline that asks for that
    /// ring: keep those whose image the pipeline lists.
    pub fn ring_reports(&self, pipeline: &str, ring: &str) -> Vec<ReportedTarget> {
        self.reports
            .index()
            .ring_targets(pipeline, ring)
            .into_iter()
            .map(|t| ReportedTarget::clone(&t))
            .collect()
    }

    /// The latest reports of targets of `images` following `ring` of `pipeline` (with those
    /// that named no pipeline), in `images` order, then by (cluster, target): what a gate
    /// reads, a few hundred targets where the whole ring may hold 100,000.
    pub fn image_reports(
        &self,
        pipeline: &str,
        ring: &str,
        images: &[&str],
    ) -> Vec<Arc<ReportedTarget>> {
        let index = self.reports.index();
        let mut out = Vec::new();
        for image in images {
            let from = out.len();
            let mut sources = 0;
            for tally in index.image_tallies(pipeline, ring, image) {
                out.extend(tally.targets.values().cloned());
                sources += 1;
            }
            if sources > 1 {
                out[from..].sort_by(|a, b| (&a.cluster, &a.target).cmp(&(&b.cluster, &b.target)));
            }
        }
        out
    }

    /// The latest reports of every target of `cluster`, ordered by target key.
    pub fn cluster_targets(&self, cluster: &str) -> Vec<ReportedTarget> {
        let index = self.reports.index();
        let mut out: Vec<ReportedTarget> = index
            .by_cluster
            .get(cluster)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|t| ReportedTarget::clone(t))
            .collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    /// Every cluster that has reported or holds a stream now, by name.
    pub fn clusters(&self) -> Vec<ClusterInfo> {
        let open: HashMap<String, (usize, String)> = self
            .reports
            .connections
            .lock()
            .expect("connections poisoned")
            .clone();
        let index = self.reports.index();
        let mut out: Vec<ClusterInfo> = index
            .clusters
            .values()
            .map(|c| info(c, open.contains_key(&c.name)))
            .collect();
        for (name, (_, token)) in &open {
            if !index.clusters.contains_key(name) {
                out.push(never_reported(name, token));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One cluster, if it has reported or holds a stream now.
    pub fn cluster(&self, name: &str) -> Option<ClusterInfo> {
        let open = self.reports.connected(name);
        let index = self.reports.index();
        match (index.clusters.get(name), open) {
            (Some(c), open) => Some(info(c, open.is_some())),
            (None, Some(token)) => Some(never_reported(name, &token)),
            (None, None) => None,
        }
    }

    /// Changes after each stored report (the value counts reports stored since start): a
    /// gate waiting for clusters to apply a digest waits on this, not a timer.
    pub fn reports_changed(&self) -> watch::Receiver<u64> {
        self.reports.changed.subscribe()
    }

    /// Marks `cluster` connected until the returned guard is dropped (a Subscribe stream holds
    /// it for its lifetime). `token` is the stream's token name.
    pub fn cluster_connected(&self, cluster: &str, token: &str) -> ClusterConnection {
        let connections = self.reports.connections.clone();
        {
            let mut open = connections.lock().expect("connections poisoned");
            let entry = open
                .entry(cluster.to_string())
                .or_insert((0, String::new()));
            entry.0 += 1;
            entry.1 = token.to_string();
        }
        ClusterConnection {
            connections,
            name: cluster.to_string(),
            _counted: self.metrics.stream_opened(),
        }
    }
}

fn info(c: &ClusterRecord, connected: bool) -> ClusterInfo {
    ClusterInfo {
        name: c.name.clone(),
        token: c.token.clone(),
        cursor: c.cursor,
        reported_at_ms: c.reported_at_ms,
        connected,
    }
}

fn never_reported(name: &str, token: &str) -> ClusterInfo {
    ClusterInfo {
        name: name.to_string(),
        token: token.to_string(),
        cursor: 0,
        reported_at_ms: 0,
        connected: true,
    }
}

#[cfg(test)]
#[path = "reports_tests.rs"]
mod tests;
