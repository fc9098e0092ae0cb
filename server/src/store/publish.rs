//! Writing a publish: everything in one transaction, one event per tag that moved.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Transaction};

use super::rings::{write_ring_batch, RingBatch};
use super::{now_ms, Store, StoreError, StoredEvent, StoredEventKind};

/// A manifest to store, already verified by the service.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    /// Verified digest of `data`.
    pub digest: String,
    /// Effective media type.
    pub media_type: String,
    /// OCI 1.1 artifactType, if any.
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject digest, if any.
    pub subject: Option<String>,
    /// Bytes exactly as published.
    pub data: Vec<u8>,
}

/// A blob to store (configs and other small blobs), already verified.
#[derive(Debug, Clone)]
pub struct BlobRecord {
    /// Verified digest of `data`.
    pub digest: String,
    /// Media type from the referencing descriptor.
    pub media_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// One validated publish.
#[derive(Debug, Clone)]
pub struct PublishRecord {
    /// ferry repository name.
    pub repository: String,
    /// Normalised image name.
    pub image: String,
    /// Origin registry base URL and repository, for layer redirects: recorded on every manifest
    /// of this publish (the top-level one and its index children).
    pub origin: Option<(String, String)>,
    /// The top-level manifest first, then index children.
    pub manifests: Vec<ManifestRecord>,
    /// Config blobs.
    pub blobs: Vec<BlobRecord>,
    /// Tags to point at the top-level manifest.
    pub tags: Vec<String>,
    /// Labels recorded on the top-level manifest and carried by its events.
    pub labels: BTreeMap<String, String>,
}

impl PublishRecord {
    /// The digest the tags point at.
    pub fn top_digest(&self) -> &str {
        &self.manifests[0].digest
    }
}

impl Store {
    /// Stores `rec` in one transaction and returns the events it appended (none when every tag
    /// already pointed at this digest). Seqs continue from the log's maximum inside the
    /// transaction; SQLite's single writer makes them gapless.
    pub fn commit_publish(&self, rec: &PublishRecord) -> Result<Vec<StoredEvent>, StoreError> {
        self.commit_publish_with_rings(rec, None)
    }

    /// [`Store::commit_publish`], and in the same transaction the ring moves of `rings` (a
    /// publish into `ante` or `--to RING`), whose events follow the tag moves'.
    pub fn commit_publish_with_rings(
        &self,
        rec: &PublishRecord,
        rings: Option<&RingBatch>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let mut events = write_publish(&tx, rec)?;
            if let Some(batch) = rings.filter(|b| !b.moves.is_empty()) {
                events.extend(write_ring_batch(&tx, batch)?);
            }
            tx.commit()?;
            Ok(events)
        })
    }
}

fn upsert_repository(tx: &Transaction, rec: &PublishRecord, now: i64) -> Result<i64, StoreError> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM repositories WHERE name = ?1",
            [&rec.repository],
            |r| r.get(0),
        )
        .optional()?;
    match existing {
        Some(id) => Ok(id),
        None => {
            // The origin columns of `repositories` are no longer written: the origin belongs
            // to each manifest (schema migration 3).
            tx.execute(
                "INSERT INTO repositories (name, image, created_at) VALUES (?1, ?2, ?3)",
                params![rec.repository, rec.image, now],
            )?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// Stores the manifests of `rec`. A digest is immutable content: re-publishing it keeps the
/// first bytes (they are equal anyway), takes the new labels for the top-level manifest, and the
/// new origin when the publish names one (the layers may have moved to another registry).
fn write_manifests(
    tx: &Transaction,
    repo_id: i64,
    rec: &PublishRecord,
    now: i64,
) -> Result<(), StoreError> {
    let labels_json = serde_json::to_string(&rec.labels).expect("string map serialises");
    let (origin_url, origin_repo) = match &rec.origin {
        Some((url, repo)) => (Some(url.as_str()), Some(repo.as_str())),
        None => (None, None),
    };
    // One order for the whole publish: its manifests share one origin. The index on
    // origin_order makes MAX a lookup, not a scan past every stored manifest's bytes.
    let origin_order: Option<i64> = match origin_url {
        Some(_) => Some(tx.query_row(
            "SELECT COALESCE(MAX(origin_order), 0) + 1 FROM manifests",
            [],
            |r| r.get(0),
        )?),
        None => None,
    };
    for (i, m) in rec.manifests.iter().enumerate() {
        // Labels describe the release, so they live on the top-level manifest only.
        let labels = if i == 0 { labels_json.as_str() } else { "{}" };
        tx.execute(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, labels, data, created_at,
                                    origin_url, origin_repository, origin_order)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (repository_id, digest) DO UPDATE SET
                 labels = CASE WHEN ?12 THEN excluded.labels ELSE labels END,
                 origin_url = COALESCE(excluded.origin_url, origin_url),
                 origin_repository = COALESCE(excluded.origin_repository, origin_repository),
                 origin_order = COALESCE(excluded.origin_order, origin_order)",
            params![
                repo_id, m.digest, m.media_type, m.artifact_type, m.subject, labels, m.data, now,
                origin_url, origin_repo, origin_order, i == 0
            ],
        )?;
    }
    Ok(())
}

fn write_publish(tx: &Transaction, rec: &PublishRecord) -> Result<Vec<StoredEvent>, StoreError> {
    let now = now_ms();
    let repo_id = upsert_repository(tx, rec, now)?;
    write_manifests(tx, repo_id, rec, now)?;
    for b in &rec.blobs {
        tx.execute(
            "INSERT INTO blobs (repository_id, digest, media_type, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repository_id, digest) DO NOTHING",
            params![repo_id, b.digest, b.media_type, b.data],
        )?;
    }
    let mut next_seq: u64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
    let top = &rec.manifests[0];
    let labels_json = serde_json::to_string(&rec.labels).expect("string map serialises");
    let mut events = Vec::new();
    for tag in &rec.tags {
        let previous: Option<String> = tx
            .query_row(
                "SELECT digest FROM tags WHERE repository_id = ?1 AND tag = ?2",
                params![repo_id, tag],
                |r| r.get(0),
            )
            .optional()?;
        if previous.as_deref() == Some(top.digest.as_str()) {
            continue; // unchanged: no event
        }
        let ev = StoredEvent {
            seq: next_seq,
            kind: StoredEventKind::TagMoved,
            repository: rec.repository.clone(),
            image: rec.image.clone(),
            tag: tag.clone(),
            digest: top.digest.clone(),
            previous_digest: previous.unwrap_or_default(),
            media_type: top.media_type.clone(),
            artifact_type: top.artifact_type.clone(),
            subject: top.subject.clone(),
            labels: rec.labels.clone(),
            created_at_ms: now,
            ..Default::default()
        };
        tx.execute(
            "INSERT INTO tags (repository_id, tag, digest, seq, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (repository_id, tag) DO UPDATE SET digest = excluded.digest, seq = excluded.seq, updated_at = excluded.updated_at",
            params![repo_id, tag, top.digest, ev.seq as i64, now],
        )?;
        tx.execute(
            "INSERT INTO events (seq, kind, repository, image, tag, digest, previous_digest, media_type, labels, created_at,
                                 artifact_type, subject)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                ev.seq as i64, ev.kind.as_str(), ev.repository, ev.image, ev.tag, ev.digest, ev.previous_digest,
                ev.media_type, labels_json, now, ev.artifact_type, ev.subject
            ],
        )?;
        next_seq += 1;
        events.push(ev);
    }
    Ok(events)
}
