//! Reading the store: the whole catalog at start-up, blob bytes and event replay on demand.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Row};

use super::{Store, StoreError, StoredEvent, StoredEventKind};

/// A repository row.
#[derive(Debug, Clone)]
pub struct LoadedRepository {
    /// ferry repository name.
    pub name: String,
    /// Normalised image name.
    pub image: String,
}

/// A manifest row, with its bytes.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// Repository it belongs to.
    pub repository: String,
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// OCI 1.1 artifactType.
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject.
    pub subject: Option<String>,
    /// Labels recorded at publish.
    pub labels: BTreeMap<String, String>,
    /// The bytes as published.
    pub data: Vec<u8>,
    /// Origin base URL and repository its layers are pulled from, if known.
    pub origin: Option<(String, String)>,
    /// When it was first stored (ms since the epoch).
    pub created_at_ms: i64,
}

/// A blob row without its bytes.
#[derive(Debug, Clone)]
pub struct LoadedBlob {
    /// Repository it belongs to.
    pub repository: String,
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A tag row.
#[derive(Debug, Clone)]
pub struct LoadedTag {
    /// Repository it belongs to.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// The event that last moved it.
    pub seq: u64,
    /// When (ms since the epoch).
    pub updated_at_ms: i64,
}

/// Everything the read path keeps in memory.
#[derive(Debug, Default)]
pub struct LoadedState {
    /// Repositories.
    pub repositories: Vec<LoadedRepository>,
    /// Manifests, in the order their origins were recorded (those without an origin first), so
    /// that inserting them in turn leaves each shared layer with the origin recorded last.
    pub manifests: Vec<LoadedManifest>,
    /// Blob metadata.
    pub blobs: Vec<LoadedBlob>,
    /// Tags.
    pub tags: Vec<LoadedTag>,
    /// Highest event seq (0 when the log is empty).
    pub head_seq: u64,
}

pub(super) fn parse_labels(
    table: &'static str,
    json: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("labels are not a JSON string map: {e}"),
    })
}

const EVENT_COLUMNS: &str = "seq, kind, repository, image, tag, digest, previous_digest, media_type, labels, created_at, artifact_type, subject, ring, pipeline, actor, reason, forced";

/// An event row, with its kind and labels still as stored.
fn event_from_row(r: &Row) -> rusqlite::Result<(StoredEvent, String, String)> {
    Ok((
        StoredEvent {
            seq: r.get::<_, i64>(0)? as u64,
            kind: StoredEventKind::TagMoved,
            repository: r.get(2)?,
            image: r.get(3)?,
            tag: r.get(4)?,
            digest: r.get(5)?,
            previous_digest: r.get(6)?,
            media_type: r.get(7)?,
            artifact_type: r.get(10)?,
            subject: r.get(11)?,
            labels: BTreeMap::new(),
            created_at_ms: r.get(9)?,
            ring: r.get(12)?,
            pipeline: r.get(13)?,
            actor: r.get(14)?,
            reason: r.get(15)?,
            forced: r.get::<_, i64>(16)? != 0,
        },
        r.get(1)?,
        r.get(8)?,
    ))
}

fn finish_event(
    (mut e, kind, labels): (StoredEvent, String, String),
) -> Result<StoredEvent, StoreError> {
    e.kind = StoredEventKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
        table: "events",
        reason: format!(
            "event {} has kind {kind:?}, which this ferry-server does not know",
            e.seq
        ),
    })?;
    e.labels = parse_labels("events", &labels)?;
    Ok(e)
}

impl Store {
    /// Reads everything the in-memory catalog holds.
    pub fn load_state(&self) -> Result<LoadedState, StoreError> {
        self.with_reader(|c| {
            let mut st = LoadedState::default();
            let mut q = c.prepare("SELECT name, image FROM repositories")?;
            st.repositories = q
                .query_map([], |r| {
                    Ok(LoadedRepository {
                        name: r.get(0)?,
                        image: r.get(1)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            // NULLs sort first in SQLite: manifests without an origin come before any with one.
            let mut q = c.prepare(
                "SELECT r.name, m.digest, m.media_type, m.artifact_type, m.subject, m.labels, m.data,
                        m.origin_url, m.origin_repository, m.created_at
                 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 ORDER BY m.origin_order, m.rowid",
            )?;
            let rows: Vec<(LoadedManifest, String)> = q
                .query_map([], |r| {
                    let url: Option<String> = r.get(7)?;
                    let repo: Option<String> = r.get(8)?;
                    Ok((
                        LoadedManifest {
                            repository: r.get(0)?,
                            digest: r.get(1)?,
                            media_type: r.get(2)?,
                            artifact_type: r.get(3)?,
                            subject: r.get(4)?,
                            labels: BTreeMap::new(),
                            data: r.get(6)?,
                            origin: url.zip(repo),
                            created_at_ms: r.get(9)?,
                        },
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            for (mut m, labels) in rows {
                m.labels = parse_labels("manifests", &labels)?;
                st.manifests.push(m);
            }
            let mut q = c.prepare(
                "SELECT r.name, b.digest, b.media_type, length(b.data)
                 FROM blobs b JOIN repositories r ON r.id = b.repository_id",
            )?;
            st.blobs = q
                .query_map([], |r| {
                    Ok(LoadedBlob {
                        repository: r.get(0)?,
                        digest: r.get(1)?,
                        media_type: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut q = c.prepare(
                "SELECT r.name, t.tag, t.digest, t.seq, t.updated_at
                 FROM tags t JOIN repositories r ON r.id = t.repository_id",
            )?;
            st.tags = q
                .query_map([], |r| {
                    Ok(LoadedTag {
                        repository: r.get(0)?,
                        tag: r.get(1)?,
                        digest: r.get(2)?,
                        seq: r.get::<_, i64>(3)? as u64,
                        updated_at_ms: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            st.head_seq = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })? as u64;
            Ok(st)
        })
    }

    /// The bytes of a stored blob.
    pub fn blob_data(&self, repository: &str, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT b.data FROM blobs b JOIN repositories r ON r.id = b.repository_id
                 WHERE r.name = ?1 AND b.digest = ?2",
                params![repository, digest],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Up to `limit` events with `seq > after_seq`, in order.
    pub fn events_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_reader(|c| {
            let mut q = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows: Vec<(StoredEvent, String, String)> = q
                .query_map(params![after_seq as i64, limit as i64], event_from_row)?
                .collect::<Result<_, _>>()?;
            rows.into_iter().map(finish_event).collect()
        })
    }

    /// The newest `limit` events of `image` (of every image when empty), newest first: a walk
    /// back from the head, along `events_by_image` for one image.
    pub fn events_newest(&self, image: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        // Two statements, not `?1 = '' OR image = ?1`: SQLite plans an OR without the index.
        let sql = if image.is_empty() {
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE ?1 = '' ORDER BY seq DESC LIMIT ?2")
        } else {
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE image = ?1 ORDER BY seq DESC LIMIT ?2"
            )
        };
        self.with_reader(|c| {
            let mut q = c.prepare_cached(&sql)?;
            let rows: Vec<(StoredEvent, String, String)> = q
                .query_map(params![image, limit as i64], event_from_row)?
                .collect::<Result<_, _>>()?;
            rows.into_iter().map(finish_event).collect()
        })
    }

    /// The highest seq in the log (0 when empty): one rowid lookup, cheap enough for every
    /// readiness probe (`event_log_extent` counts the whole log).
    pub fn newest_seq(&self) -> Result<u64, StoreError> {
        self.with_reader(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        })
    }

    /// The lowest seq still in the log (1 when nothing was ever pruned), or None when empty.
    pub fn oldest_seq(&self) -> Result<Option<u64>, StoreError> {
        self.with_reader(|c| {
            Ok(c.query_row("SELECT MIN(seq) FROM events", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .map(|s| s as u64))
        })
    }
}
