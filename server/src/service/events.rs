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

/// What an event records. Each kind carries only the facts it has (a ring move, to come, will
/// name a ring and a digest but no tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A tag now points at a (new) manifest.
    TagMoved(TagMove),
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
