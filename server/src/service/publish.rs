//! Publishing: validate everything (`validate.rs`), then store, update the catalog and fan
//! the events out.
//!
//! Nothing is written until every check passes, and the write is one transaction, so a rejected
//! publish leaves the store exactly as it was.

use std::collections::BTreeMap;

use ferry_proto::manifest::ManifestInfo;

use super::catalog::{BlobMeta, Origin, TagEntry};
use super::events::{Event, EventKind};
use super::{manifest_entry, Service, ServiceError};
use crate::store::PublishRecord;

/// A document sent with a publish.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// Declared digest; empty means "compute it" (allowed for the top-level manifest only).
    pub digest: String,
    /// Declared media type; may be empty for manifests that carry `mediaType`.
    pub media_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// One publish request, protocol-independent.
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    /// Image name as clusters pull it.
    pub image: String,
    /// The top-level manifest.
    pub manifest: Content,
    /// Index children.
    pub children: Vec<Content>,
    /// Config blobs.
    pub blobs: Vec<Content>,
    /// Tags to move.
    pub tags: Vec<String>,
    /// Labels merged over the config's.
    pub labels: BTreeMap<String, String>,
    /// Origin registry base URL and repository path.
    pub origin: Option<(String, String)>,
    /// The ring to move too: "" (ante of every pipeline listing the image), "none", or a ring.
    pub to_ring: String,
    /// Only this pipeline's rings; "" for every pipeline listing the image.
    pub pipeline: String,
    /// Who publishes (the token's name), recorded on ring moves.
    pub actor: String,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishOutcome {
    /// Top-level manifest digest.
    pub digest: String,
    /// ferry repository name.
    pub repository: String,
    /// Events appended: one per tag that moved, then one per ring pointer that moved.
    pub events: Vec<Event>,
    /// Head of the log after this publish.
    pub head_seq: u64,
}

impl Service {
    /// Validates and stores a publish. Blocking (SQLite, fsync): call it off the async executor.
    pub fn publish(&self, input: PublishInput) -> Result<PublishOutcome, ServiceError> {
        // The image is logged as sent (Debug-escaped: it is not validated yet); the repository and
        // digest once validation has established them.
        let span = tracing::info_span!(
            "publish",
            image = ?input.image,
            repository = tracing::field::Empty,
            digest = tracing::field::Empty
        );
        let _entered = span.enter();
        let (to_ring, pipeline, actor) = (
            input.to_ring.clone(),
            input.pipeline.clone(),
            input.actor.clone(),
        );
        let (record, infos) = self.validate(input)?;
        span.record("repository", record.repository.as_str());
        span.record("digest", record.top_digest());
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        // Planned against the state before the publish, stored in its transaction: a publish
        // that may not move its rings stores nothing.
        let rings = self.plan_publish_rings(&record, &to_ring, &pipeline, &actor)?;
        let events: Vec<Event> = self
            .store
            .commit_publish_with_rings(&record, rings.as_ref())?
            .into_iter()
            .map(Event::from)
            .collect();
        self.apply_to_catalog(&record, &infos, &events);
        if let Some(batch) = &rings {
            self.apply_ring_batch(batch, &events);
        }
        self.broadcast(&events);
        let head_seq = self.head_seq();
        tracing::info!(moved = events.len(), head_seq, "published");
        Ok(PublishOutcome {
            digest: record.top_digest().to_string(),
            repository: record.repository.clone(),
            events,
            head_seq,
        })
    }

    /// Brings the catalog up to date with a committed publish.
    fn apply_to_catalog(&self, rec: &PublishRecord, infos: &[ManifestInfo], events: &[Event]) {
        let mut catalog = self.catalog.write().expect("catalog lock poisoned");
        let repo = catalog.repos.entry(rec.repository.clone()).or_default();
        repo.image.clone_from(&rec.image);
        let origin = rec.origin.clone().map(Origin::from);
        for (i, (m, info)) in rec.manifests.iter().zip(infos).enumerate() {
            let labels = if i == 0 {
                rec.labels.clone()
            } else {
                BTreeMap::new()
            };
            let (entry, layers) = manifest_entry(
                m.clone(),
                labels,
                origin.clone(),
                Some(info),
                crate::store::now_ms(),
            );
            repo.insert_manifest(entry, layers);
        }
        for b in &rec.blobs {
            repo.blobs.insert(
                b.digest.clone(),
                BlobMeta {
                    media_type: b.media_type.clone(),
                    size: b.data.len() as u64,
                },
            );
        }
        for e in events {
            match &e.kind {
                EventKind::TagMoved(m) => {
                    repo.tags.insert(
                        m.tag.clone(),
                        TagEntry {
                            digest: m.digest.clone(),
                            seq: e.seq,
                            updated_at_ms: e.published_at_ms,
                        },
                    );
                }
                EventKind::RingMoved(_) | EventKind::PipelineApplied { .. } => {}
            }
        }
    }
}
