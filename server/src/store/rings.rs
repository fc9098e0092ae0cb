//! Rings in SQLite: pipelines and their generations, ring pointers, ring history, holds and
//! rejections (schema migration 4).
//!
//! Every write is one transaction that also appends its events, so the log and the pointers
//! never disagree: a crash leaves all of a call's moves (a shift moves every ring) or none.
//! Seqs continue from the log's maximum inside the transaction, as publishes do
//! (`publish.rs`), so ring moves and tag moves share one gapless sequence.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{now_ms, Store, StoreError, StoredEvent, StoredEventKind};

/// One pointer to move, with the facts of the manifest it will point at (carried by the event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingMoveRecord {
    /// Pipeline name.
    pub pipeline: String,
    /// Ring name (ante, a user ring, post).
    pub ring: String,
    /// Normalised image name.
    pub image: String,
    /// ferry repository name of the image.
    pub repository: String,
    /// Where the pointer goes; empty deletes it (unshift of a ring that was empty).
    pub digest: String,
    /// Where it pointed before; empty when it did not exist.
    pub previous_digest: String,
    /// A tag that points (or pointed) at `digest`; empty if none.
    pub tag: String,
    /// Media type of the manifest at `digest`.
    pub media_type: String,
    /// Its OCI 1.1 artifactType.
    pub artifact_type: Option<String>,
    /// Its OCI 1.1 subject.
    pub subject: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// One call's moves (a promote, a shift, a publish's ring moves…): stored together or not at all.
#[derive(Debug, Clone, Default)]
pub struct RingBatch {
    /// The pointers to move, in event order.
    pub moves: Vec<RingMoveRecord>,
    /// Token name, or `ferry-server`.
    pub actor: String,
    /// promote | shift | unshift | rollback | publish | auto, or `verb: operator text` when forced.
    pub reason: String,
    /// Moved past the order rule or a closed gate.
    pub forced: bool,
    /// Holds to set (rollback), replacing any on the same ring.
    pub set_holds: Vec<StoredHold>,
    /// Holds to lift, by (pipeline, ring): a manual promote into a held ring.
    pub clear_holds: Vec<(String, String)>,
}

/// A pipeline's current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPipeline {
    /// Its name.
    pub name: String,
    /// 1 for a new pipeline, +1 per change.
    pub generation: u64,
    /// JSON of the normalised spec (the service owns its shape).
    pub spec: String,
    /// When it was last applied (ms since the epoch).
    pub updated_at_ms: i64,
}

/// What one (pipeline, ring, image) points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPointer {
    /// Pipeline name.
    pub pipeline: String,
    /// Ring name.
    pub ring: String,
    /// Normalised image name.
    pub image: String,
    /// The digest.
    pub digest: String,
    /// A tag of the digest, or empty.
    pub tag: String,
    /// The RING_MOVED event that set it.
    pub seq: u64,
    /// When it was set (ms since the epoch).
    pub since_ms: i64,
}

/// One row of ring history: one move of one pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHistory {
    /// The RING_MOVED event's seq.
    pub seq: u64,
    /// Pipeline name.
    pub pipeline: String,
    /// Ring name.
    pub ring: String,
    /// Normalised image name.
    pub image: String,
    /// Where it went; empty when the move emptied the ring.
    pub digest: String,
    /// Where it was.
    pub previous_digest: String,
    /// A tag of the digest, or empty.
    pub tag: String,
    /// Who moved it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Moved with --force.
    pub forced: bool,
    /// The seq of the first move of the same call.
    pub batch: u64,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// autoPromote held on a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHold {
    /// Pipeline name.
    pub pipeline: String,
    /// Ring name.
    pub ring: String,
    /// Why (e.g. "rollback of … by …").
    pub reason: String,
    /// Who set it.
    pub actor: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// A digest that may never enter a ring again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRejection {
    /// Normalised image name.
    pub image: String,
    /// The digest.
    pub digest: String,
    /// The operator's reason.
    pub reason: String,
    /// Who rejected it.
    pub actor: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// Everything of rings the service keeps in memory.
#[derive(Debug, Default)]
pub struct LoadedRings {
    /// Current generation of every pipeline.
    pub pipelines: Vec<StoredPipeline>,
    /// Every pointer.
    pub pointers: Vec<StoredPointer>,
    /// Every hold.
    pub holds: Vec<StoredHold>,
    /// Every rejection.
    pub rejections: Vec<StoredRejection>,
    /// Every (pipeline, ring, image, digest) that was ever pointed at: the order rule's memory.
    pub entered: Vec<(String, String, String, String)>,
}

const HISTORY_COLUMNS: &str =
    "seq, pipeline, ring, image, digest, previous_digest, tag, actor, reason, forced, batch, at";

fn history_from_row(r: &Row) -> rusqlite::Result<StoredHistory> {
    Ok(StoredHistory {
        seq: r.get::<_, i64>(0)? as u64,
        pipeline: r.get(1)?,
        ring: r.get(2)?,
        image: r.get(3)?,
        digest: r.get(4)?,
        previous_digest: r.get(5)?,
        tag: r.get(6)?,
        actor: r.get(7)?,
        reason: r.get(8)?,
        forced: r.get::<_, i64>(9)? != 0,
        batch: r.get::<_, i64>(10)? as u64,
        at_ms: r.get(11)?,
    })
}

fn next_seq(tx: &Transaction) -> Result<u64, StoreError> {
    Ok(
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", [], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// Appends `ev` to the events table.
fn insert_event(tx: &Transaction, ev: &StoredEvent) -> Result<(), StoreError> {
    let labels = serde_json::to_string(&ev.labels).expect("string map serialises");
    tx.execute(
        "INSERT INTO events (seq, kind, repository, image, tag, digest, previous_digest, media_type, labels, created_at,
                             artifact_type, subject, ring, pipeline, actor, reason, forced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            ev.seq as i64, ev.kind.as_str(), ev.repository, ev.image, ev.tag, ev.digest, ev.previous_digest,
            ev.media_type, labels, ev.created_at_ms, ev.artifact_type, ev.subject, ev.ring, ev.pipeline,
            ev.actor, ev.reason, ev.forced as i64
        ],
    )?;
    Ok(())
}

/// Writes one call's ring moves inside `tx`: an event, a history row and the pointer per move,
/// then the holds. Returns the events.
pub(super) fn write_ring_batch(
    tx: &Transaction,
    batch: &RingBatch,
) -> Result<Vec<StoredEvent>, StoreError> {
    let now = now_ms();
    let first = next_seq(tx)?;
    let mut events = Vec::with_capacity(batch.moves.len());
    for (seq, m) in (first..).zip(&batch.moves) {
        let ev = StoredEvent {
            seq,
            kind: StoredEventKind::RingMoved,
            repository: m.repository.clone(),
            image: m.image.clone(),
            tag: m.tag.clone(),
            digest: m.digest.clone(),
            previous_digest: m.previous_digest.clone(),
            media_type: m.media_type.clone(),
            artifact_type: m.artifact_type.clone(),
            subject: m.subject.clone(),
            labels: m.labels.clone(),
            created_at_ms: now,
            ring: m.ring.clone(),
            pipeline: m.pipeline.clone(),
            actor: batch.actor.clone(),
            reason: batch.reason.clone(),
            forced: batch.forced,
        };
        insert_event(tx, &ev)?;
        tx.execute(
            "INSERT INTO ring_history (seq, pipeline, ring, image, digest, previous_digest, tag, actor, reason, forced, batch, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                seq as i64, m.pipeline, m.ring, m.image, m.digest, m.previous_digest, m.tag, batch.actor,
                batch.reason, batch.forced as i64, first as i64, now
            ],
        )?;
        if m.digest.is_empty() {
            tx.execute(
                "DELETE FROM ring_pointers WHERE pipeline = ?1 AND ring = ?2 AND image = ?3",
                params![m.pipeline, m.ring, m.image],
            )?;
        } else {
            tx.execute(
                "INSERT INTO ring_pointers (pipeline, ring, image, digest, tag, seq, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (pipeline, ring, image) DO UPDATE SET
                     digest = excluded.digest, tag = excluded.tag, seq = excluded.seq, since = excluded.since",
                params![m.pipeline, m.ring, m.image, m.digest, m.tag, seq as i64, now],
            )?;
        }
        events.push(ev);
    }
    for h in &batch.set_holds {
        tx.execute(
            "INSERT INTO ring_holds (pipeline, ring, reason, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (pipeline, ring) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, at = excluded.at",
            params![h.pipeline, h.ring, h.reason, h.actor, h.at_ms],
        )?;
    }
    for (pipeline, ring) in &batch.clear_holds {
        tx.execute(
            "DELETE FROM ring_holds WHERE pipeline = ?1 AND ring = ?2",
            params![pipeline, ring],
        )?;
    }
    Ok(events)
}

impl Store {
    /// Moves the pointers of `batch` in one transaction and returns the RING_MOVED events it
    /// appended (one per move, consecutive seqs; the history rows' `batch` is the first).
    pub fn move_rings(&self, batch: &RingBatch) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let events = write_ring_batch(&tx, batch)?;
            tx.commit()?;
            Ok(events)
        })
    }

    /// Stores a new generation of pipeline `name` and appends its PIPELINE_APPLIED event, in one
    /// transaction. Returns the generation and the event.
    pub fn apply_pipeline(
        &self,
        name: &str,
        spec_json: &str,
        source: &str,
        actor: &str,
    ) -> Result<(u64, StoredEvent), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            let generation: u64 = tx
                .query_row(
                    "SELECT generation FROM pipelines WHERE name = ?1",
                    [name],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map_or(1, |g| g as u64 + 1);
            let ev = StoredEvent {
                seq: next_seq(&tx)?,
                kind: StoredEventKind::PipelineApplied,
                created_at_ms: now,
                pipeline: name.to_string(),
                actor: actor.to_string(),
                reason: format!("generation {generation}"),
                ..Default::default()
            };
            insert_event(&tx, &ev)?;
            tx.execute(
                "INSERT INTO pipeline_generations (name, generation, spec, source, actor, seq, applied_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, generation as i64, spec_json, source, actor, ev.seq as i64, now],
            )?;
            tx.execute(
                "INSERT INTO pipelines (name, generation, spec, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET
                     generation = excluded.generation, spec = excluded.spec, updated_at = excluded.updated_at",
                params![name, generation as i64, spec_json, now],
            )?;
            tx.commit()?;
            Ok((generation, ev))
        })
    }

    /// Records a rejection; a digest rejected before keeps its first record, which is returned.
    pub fn reject(&self, rec: &StoredRejection) -> Result<StoredRejection, StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO rejections (image, digest, reason, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (image, digest) DO NOTHING",
                params![rec.image, rec.digest, rec.reason, rec.actor, rec.at_ms],
            )?;
            let stored = tx.query_row(
                "SELECT image, digest, reason, actor, at FROM rejections WHERE image = ?1 AND digest = ?2",
                params![rec.image, rec.digest],
                |r| {
                    Ok(StoredRejection {
                        image: r.get(0)?,
                        digest: r.get(1)?,
                        reason: r.get(2)?,
                        actor: r.get(3)?,
                        at_ms: r.get(4)?,
                    })
                },
            )?;
            tx.commit()?;
            Ok(stored)
        })
    }

    /// Everything of rings the service keeps in memory.
    pub fn load_rings(&self) -> Result<LoadedRings, StoreError> {
        self.with_reader(|c| {
            let mut out = LoadedRings::default();
            let mut q = c.prepare("SELECT name, generation, spec, updated_at FROM pipelines")?;
            out.pipelines = q
                .query_map([], |r| {
                    Ok(StoredPipeline {
                        name: r.get(0)?,
                        generation: r.get::<_, i64>(1)? as u64,
                        spec: r.get(2)?,
                        updated_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut q = c.prepare(
                "SELECT pipeline, ring, image, digest, tag, seq, since FROM ring_pointers",
            )?;
            out.pointers = q
                .query_map([], |r| {
                    Ok(StoredPointer {
                        pipeline: r.get(0)?,
                        ring: r.get(1)?,
                        image: r.get(2)?,
                        digest: r.get(3)?,
                        tag: r.get(4)?,
                        seq: r.get::<_, i64>(5)? as u64,
                        since_ms: r.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut q = c.prepare("SELECT pipeline, ring, reason, actor, at FROM ring_holds")?;
            out.holds = q
                .query_map([], |r| {
                    Ok(StoredHold {
                        pipeline: r.get(0)?,
                        ring: r.get(1)?,
                        reason: r.get(2)?,
                        actor: r.get(3)?,
                        at_ms: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut q = c.prepare("SELECT image, digest, reason, actor, at FROM rejections")?;
            out.rejections = q
                .query_map([], |r| {
                    Ok(StoredRejection {
                        image: r.get(0)?,
                        digest: r.get(1)?,
                        reason: r.get(2)?,
                        actor: r.get(3)?,
                        at_ms: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut q = c.prepare(
                "SELECT DISTINCT pipeline, ring, image, digest FROM ring_history WHERE digest != ''",
            )?;
            out.entered = q
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok(out)
        })
    }

    /// The newest `limit` history rows of a pipeline, oldest first.
    pub fn ring_history(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<StoredHistory>, StoreError> {
        self.with_reader(|c| {
            let mut q = c.prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM ring_history WHERE pipeline = ?1 ORDER BY seq DESC LIMIT ?2"
            ))?;
            let mut rows: Vec<StoredHistory> = q
                .query_map(params![pipeline, limit as i64], history_from_row)?
                .collect::<Result<_, _>>()?;
            rows.reverse();
            Ok(rows)
        })
    }

    /// The last move of one pointer.
    pub fn last_ring_move(
        &self,
        pipeline: &str,
        ring: &str,
        image: &str,
    ) -> Result<Option<StoredHistory>, StoreError> {
        self.with_reader(|c| {
            let mut q = c.prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM ring_history WHERE pipeline = ?1 AND ring = ?2 AND image = ?3
                 ORDER BY seq DESC LIMIT 1"
            ))?;
            Ok(q.query_row(params![pipeline, ring, image], history_from_row)
                .optional()?)
        })
    }

    /// The moves of one call (`batch`) in a pipeline, in seq order; the pipeline's last call
    /// when `batch` is None.
    pub fn ring_batch(
        &self,
        pipeline: &str,
        batch: Option<u64>,
    ) -> Result<Vec<StoredHistory>, StoreError> {
        self.with_reader(|c| {
            let batch: Option<i64> = match batch {
                Some(b) => Some(b as i64),
                None => c.query_row(
                    "SELECT MAX(batch) FROM ring_history WHERE pipeline = ?1",
                    [pipeline],
                    |r| r.get(0),
                )?,
            };
            let Some(batch) = batch else {
                return Ok(Vec::new());
            };
            let mut q = c.prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM ring_history WHERE pipeline = ?1 AND batch = ?2 ORDER BY seq"
            ))?;
            let rows = q
                .query_map(params![pipeline, batch], history_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
