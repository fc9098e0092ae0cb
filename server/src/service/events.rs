//! The event side of the service: live fan-out, log replay and tag snapshots.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Service, ServiceError};
use crate::store::{StoredEvent, StoredEventKind};

/// One event of the log, as the domain sees it: where in the log, which image, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Gapless, strictly increasing position in the log.
    pub seq: u64,
    /// ferry repository name.
    pub repository: String,
    /// Normalised image name.
    pub image: String,
    /// When it happened (ms since the Unix epoch).
    pub published_at_ms: i64,
    /// What changed.
    pub kind: EventKind,
}

/// What an event records. Each kind carries only the facts it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A tag now points at a (new) manifest.
    TagMoved(TagMove),
    /// A ring pointer of a pipeline now points at a (new) manifest, or at none.
    RingMoved(RingMove),
    /// A pipeline was created or changed (the event's image is empty).
    PipelineApplied {
        /// The pipeline.
        pipeline: String,
        /// The token that applied it.
        actor: String,
    },
}

impl EventKind {
    /// The kind's name in metrics labels (`tag_moved`, `ring_moved`, `pipeline_applied`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::TagMoved(_) => "tag_moved",
            EventKind::RingMoved(_) => "ring_moved",
            EventKind::PipelineApplied { .. } => "pipeline_applied",
        }
    }
}

/// A ring pointer that moved, with what clients need to know of the manifest it points at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RingMove {
    /// The pipeline.
    pub pipeline: String,
    /// The ring (ante, a user ring, post).
    pub ring: String,
    /// Where it points now; empty when the move emptied the ring.
    pub digest: String,
    /// Where it pointed before; empty when the ring was empty.
    pub previous_digest: String,
    /// A tag that points at `digest`, or empty.
    pub tag: String,
    /// Media type of the manifest at `digest`.
    pub media_type: String,
    /// OCI 1.1 artifactType of that manifest (always a release: None).
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject of that manifest.
    pub subject: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Who moved it: a token name, or `ferry-server` (autoPromote).
    pub actor: String,
    /// Why: promote, shift, unshift, rollback, publish, auto, or the operator's text.
    pub reason: String,
    /// Moved with --force.
    pub forced: bool,
}

impl RingMove {
    /// `org.opencontainers.image.version` of the digest, or empty.
    pub fn version(&self) -> &str {
        self.labels
            .get(super::rings::VERSION_LABEL)
            .map_or("", String::as_str)
    }
}

/// A tag that moved, with what clients need to know of the manifest it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMove {
    /// The tag.
    pub tag: String,
    /// Where it points now.
    pub digest: String,
    /// Where it pointed before; empty for a new tag.
    pub previous_digest: String,
    /// Media type of the manifest at `digest`.
    pub media_type: String,
    /// OCI 1.1 artifactType of that manifest: with `subject`, it tells a release from an
    /// artifact (signature, SBOM) that agents never deploy.
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject of that manifest.
    pub subject: Option<String>,
    /// The image's labels at publish.
    pub labels: BTreeMap<String, String>,
}

impl From<StoredEvent> for Event {
    fn from(e: StoredEvent) -> Self {
        let kind = match e.kind {
            StoredEventKind::TagMoved => EventKind::TagMoved(TagMove {
                tag: e.tag,
                digest: e.digest,
                previous_digest: e.previous_digest,
                media_type: e.media_type,
                artifact_type: e.artifact_type,
                subject: e.subject,
                labels: e.labels,
            }),
            StoredEventKind::RingMoved => EventKind::RingMoved(RingMove {
                pipeline: e.pipeline,
                ring: e.ring,
                digest: e.digest,
                previous_digest: e.previous_digest,
                tag: e.tag,
                media_type: e.media_type,
                artifact_type: e.artifact_type,
                subject: e.subject,
                labels: e.labels,
                actor: e.actor,
                reason: e.reason,
                forced: e.forced,
            }),
            StoredEventKind::PipelineApplied => EventKind::PipelineApplied {
                pipeline: e.pipeline,
                actor: e.actor,
            },
        };
        Event {
            seq: e.seq,
            repository: e.repository,
            image: e.image,
            published_at_ms: e.created_at_ms,
            kind,
        }
    }
}

/// The events of one publish, shared by every subscriber: one allocation per publish, not per
/// subscriber.
pub type EventBatch = Arc<[Event]>;

/// A tag's current state, for snapshots and reconciliation.
#[derive(Debug, Clone)]
pub struct CurrentTag {
    /// Normalised image name.
    pub image: String,
    /// ferry repository name.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// The event that last moved it.
    pub seq: u64,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's OCI 1.1 artifactType.
    pub artifact_type: Option<String>,
    /// The manifest's OCI 1.1 subject.
    pub subject: Option<String>,
    /// The manifest's labels.
    pub labels: BTreeMap<String, String>,
    /// When it moved (ms since the epoch).
    pub updated_at_ms: i64,
}

impl Service {
    /// A receiver of live event batches. Subscribe *before* replaying the log so nothing published
    /// in between is missed; drop anything at or below the last seq sent.
    pub fn subscribe_live(&self) -> broadcast::Receiver<EventBatch> {
        self.live.subscribe()
    }

    /// Counts a subscriber that lagged behind the live buffer and switched to replaying the log;
    /// observable so tests (and later metrics) can tell the replay path was really taken.
    pub fn note_lag_replay(&self) {
        self.lag_replays.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times a subscriber lagged and was replayed from the log since the server started.
    pub fn lag_replays(&self) -> u64 {
        self.lag_replays.load(Ordering::Relaxed)
    }

    /// Up to `limit` logged events after `after_seq`. Blocking (SQLite).
    pub fn replay(&self, after_seq: u64, limit: usize) -> Result<Vec<Event>, ServiceError> {
        let stored = self.store.events_after(after_seq, limit)?;
        Ok(stored.into_iter().map(Event::from).collect())
    }

    /// The lowest seq the log still holds; a cursor below `oldest - 1` needs a snapshot.
    pub fn oldest_retained_seq(&self) -> Result<Option<u64>, ServiceError> {
        Ok(self.store.oldest_seq()?)
    }

    /// Current tags of the repositories `wanted` accepts (all when `wanted` is None), with the
    /// head seq they are consistent with.
    pub fn current_tags(&self, wanted: impl Fn(&str) -> bool) -> (u64, Vec<CurrentTag>) {
        // Read the head while holding the catalog lock: publishes update the catalog before the
        // head, so the snapshot is at least as new as the seq we report.
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let head = self.head_seq();
        let mut out = Vec::new();
        for (name, repo) in &catalog.repos {
            if !wanted(&repo.image) {
                continue;
            }
            for (tag, t) in &repo.tags {
                let m = repo.manifests.get(&t.digest);
                out.push(CurrentTag {
                    image: repo.image.clone(),
                    repository: name.clone(),
                    tag: tag.clone(),
                    digest: t.digest.clone(),
                    seq: t.seq,
                    media_type: m.map(|m| m.media_type.clone()).unwrap_or_default(),
                    artifact_type: m.and_then(|m| m.artifact_type.clone()),
                    subject: m.and_then(|m| m.subject.clone()),
                    labels: m.map(|m| m.labels.clone()).unwrap_or_default(),
                    updated_at_ms: t.updated_at_ms,
                });
            }
        }
        (head, out)
    }
}
