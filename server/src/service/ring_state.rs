//! The in-memory ring state: pipelines, pointers, holds, rejections and which digests ever
//! entered which ring. Loaded at start like the catalog, and updated after each commit under the
//! publish lock, so reads (GetPipeline, ListRings, gates) never touch SQLite.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferry_proto::reference::ImageName;

use super::catalog::{Catalog, ManifestEntry};
use super::events::{Event, EventKind};
use super::pipelines::PipelineSpec;
use super::{Service, ServiceError};
use crate::store::{LoadedRings, RingBatch, StoreError, StoredHold, StoredRejection};

/// A pipeline's current generation.
#[derive(Debug, Clone)]
pub struct RingPipeline {
    /// The normalised spec.
    pub spec: PipelineSpec,
    /// Its generation.
    pub generation: u64,
    /// When it was last applied (ms since the epoch).
    pub updated_at_ms: i64,
}

/// What one (pipeline, ring, image) points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The digest.
    pub digest: String,
    /// A tag of it, or empty.
    pub tag: String,
    /// The RING_MOVED event that set it.
    pub seq: u64,
    /// When (ms since the epoch).
    pub since_ms: i64,
}

/// Everything of rings, in memory.
#[derive(Debug, Default)]
pub struct RingState {
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, RingPipeline>,
    /// pipeline → (ring, image) → pointer.
    pub pointers: HashMap<String, BTreeMap<(String, String), Pointer>>,
    /// (pipeline, ring) → hold.
    pub holds: HashMap<(String, String), StoredHold>,
    /// (image, digest) → rejection.
    pub rejections: BTreeMap<(String, String), StoredRejection>,
    /// (pipeline, ring, image, digest) that were ever pointed at: the order rule's memory.
    pub entered: HashSet<(String, String, String, String)>,
}

impl RingState {
    /// The state the store holds.
    pub fn load(loaded: LoadedRings) -> Result<Self, StoreError> {
        let mut st = RingState::default();
        for p in loaded.pipelines {
            let spec: PipelineSpec =
                serde_json::from_str(&p.spec).map_err(|e| StoreError::Corrupt {
                    table: "pipelines",
                    reason: format!("spec of {:?} is not a pipeline spec: {e}", p.name),
                })?;
            st.pipelines.insert(
                p.name,
                RingPipeline {
                    spec,
                    generation: p.generation,
                    updated_at_ms: p.updated_at_ms,
                },
            );
        }
        for p in loaded.pointers {
            st.pointers.entry(p.pipeline).or_default().insert(
                (p.ring, p.image),
                Pointer {
                    digest: p.digest,
                    tag: p.tag,
                    seq: p.seq,
                    since_ms: p.since_ms,
                },
            );
        }
        for h in loaded.holds {
            st.holds.insert((h.pipeline.clone(), h.ring.clone()), h);
        }
        for r in loaded.rejections {
            st.rejections.insert((r.image.clone(), r.digest.clone()), r);
        }
        st.entered = loaded.entered.into_iter().collect();
        Ok(st)
    }

    /// What `ring` of `pipeline` points at for `image`.
    pub fn pointer(&self, pipeline: &str, ring: &str, image: &str) -> Option<&Pointer> {
        self.pointers
            .get(pipeline)?
            .get(&(ring.to_string(), image.to_string()))
    }

    /// The rejection of `digest` of `image`, if any.
    pub fn rejection(&self, image: &str, digest: &str) -> Option<&StoredRejection> {
        self.rejections
            .get(&(image.to_string(), digest.to_string()))
    }

    /// Pipelines that list `image`, by name.
    pub fn pipelines_listing(&self, image: &str) -> Vec<&RingPipeline> {
        self.pipelines
            .values()
            .filter(|p| p.spec.lists(image))
            .collect()
    }

    /// Brings the state up to date with a committed batch and its events.
    fn apply(&mut self, batch: &RingBatch, events: &[Event]) {
        for e in events {
            let EventKind::RingMoved(m) = &e.kind else {
                continue;
            };
            let pointers = self.pointers.entry(m.pipeline.clone()).or_default();
            let key = (m.ring.clone(), e.image.clone());
            if m.digest.is_empty() {
                pointers.remove(&key);
                continue;
            }
            pointers.insert(
                key,
                Pointer {
                    digest: m.digest.clone(),
                    tag: m.tag.clone(),
                    seq: e.seq,
                    since_ms: e.published_at_ms,
                },
            );
            self.entered.insert((
                m.pipeline.clone(),
                m.ring.clone(),
                e.image.clone(),
                m.digest.clone(),
            ));
        }
        for h in &batch.set_holds {
            self.holds
                .insert((h.pipeline.clone(), h.ring.clone()), h.clone());
        }
        for key in &batch.clear_holds {
            self.holds.remove(key);
        }
    }
}

/// The manifest at `digest` of `image` (normalised), from the catalog.
pub fn manifest<'a>(
    catalog: &'a Catalog,
    image: &str,
    digest: &str,
) -> Option<&'a Arc<ManifestEntry>> {
    let repo = repository_of(image);
    catalog.repos.get(&repo)?.manifests.get(digest)
}

/// The ferry repository of a normalised image name.
pub fn repository_of(image: &str) -> String {
    ImageName::parse(image)
        .map(|n| n.ferry_repository())
        .unwrap_or_else(|_| image.to_string())
}

/// A tag that points at `digest` in `image`'s repository (the newest moved), or empty.
pub fn tag_of(catalog: &Catalog, image: &str, digest: &str) -> String {
    let Some(repo) = catalog.repos.get(&repository_of(image)) else {
        return String::new();
    };
    repo.tags
        .iter()
        .filter(|(_, t)| t.digest == digest)
        .max_by_key(|(_, t)| t.seq)
        .map(|(tag, _)| tag.clone())
        .unwrap_or_default()
}

impl Service {
    /// The ring state, for reading.
    pub(crate) fn rings_read(&self) -> std::sync::RwLockReadGuard<'_, RingState> {
        self.rings.read().expect("ring state poisoned")
    }

    /// The ring state, for updating after a commit (under the publish lock).
    pub(crate) fn rings_write(&self) -> std::sync::RwLockWriteGuard<'_, RingState> {
        self.rings.write().expect("ring state poisoned")
    }

    /// Commits `batch` (the caller holds the publish lock and planned it against the current
    /// state), updates the memory, and fans the events out. Returns the events.
    pub(crate) fn commit_ring_batch(&self, batch: RingBatch) -> Result<Vec<Event>, ServiceError> {
        let events: Vec<Event> = self
            .store
            .move_rings(&batch)?
            .into_iter()
            .map(Event::from)
            .collect();
        self.rings_write().apply(&batch, &events);
        self.broadcast(&events);
        tracing::info!(
            moved = events.len(),
            actor = %batch.actor,
            reason = %batch.reason,
            forced = batch.forced,
            "rings moved"
        );
        Ok(events)
    }

    /// Applies a batch committed with a publish to the ring state.
    pub(crate) fn apply_ring_batch(&self, batch: &RingBatch, events: &[Event]) {
        self.rings_write().apply(batch, events);
    }

    /// Moves the head and sends `events` to live subscribers (the caller holds the publish
    /// lock, so batches go out in seq order).
    pub(crate) fn broadcast(&self, events: &[Event]) {
        if let Some(last) = events.last() {
            self.head_seq.store(last.seq, Ordering::Release);
            for e in events {
                self.metrics.events_appended(e.kind.name(), 1);
            }
            // No receiver is fine: nobody is subscribed right now.
            let _ = self.live.send(Arc::from(events.to_vec()));
        }
    }
}
