//! The SQLite store: the durable record of repositories, manifests, blobs, tags, the event log
//! and cluster reports.
//!
//! Direction: `service` → `store`. The store knows SQL and nothing of HTTP or gRPC. One writer
//! connection (SQLite has one writer anyway) and a small pool of readers: WAL lets readers run
//! beside the writer.

mod publish;
mod read;
mod reports;
mod rings;
mod schema;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prometheus_client::metrics::histogram::Histogram;
use rusqlite::Connection;
use thiserror::Error;

pub use publish::{BlobRecord, ManifestRecord, PublishRecord};
pub use read::{LoadedBlob, LoadedManifest, LoadedRepository, LoadedState, LoadedTag};
pub use reports::{ClusterRecord, ReportRecord, ReportStored, ReportedTarget, TargetHistoryRow};
pub use rings::{
    LoadedRings, RingBatch, RingMoveRecord, StoredHistory, StoredHold, StoredPipeline,
    StoredPointer, StoredRejection,
};
pub use tokens::TokenRecord;

#[cfg(test)]
mod tests;

/// A failure of the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created or opened.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database was written by a newer ferry.
    #[error("database {path} has schema version {found}, newer than this ferry-server supports ({supported}); upgrade ferry-server")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// An admin command pointed at a directory that holds no ferry database.
    #[error("no ferry database in {path}: pass --data-dir with the directory ferry-server serves from (it holds ferry.db)")]
    NoDatabase {
        /// The database file that is missing or empty.
        path: PathBuf,
    },
    /// A token name already in use.
    #[error("a token named {0:?} already exists; choose another --name or revoke it first")]
    TokenNameTaken(String),
    /// The database file is gone, replaced or unreadable (readiness probe).
    #[error("database {path} does not answer: {reason}")]
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// A stored row that cannot be read back (e.g. labels that are not JSON).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// What an event records, as the `events.kind` column spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredEventKind {
    /// `TAG_MOVED`: a tag now points at a (new) digest.
    #[default]
    TagMoved,
    /// `RING_MOVED`: a ring pointer of a pipeline now points at a (new) digest, or at none.
    RingMoved,
    /// `PIPELINE_APPLIED`: a pipeline was created or changed.
    PipelineApplied,
}

impl StoredEventKind {
    /// The value in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredEventKind::TagMoved => "TAG_MOVED",
            StoredEventKind::RingMoved => "RING_MOVED",
            StoredEventKind::PipelineApplied => "PIPELINE_APPLIED",
        }
    }

    /// Reads the `kind` column; None for a kind this ferry does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TAG_MOVED" => Some(StoredEventKind::TagMoved),
            "RING_MOVED" => Some(StoredEventKind::RingMoved),
            "PIPELINE_APPLIED" => Some(StoredEventKind::PipelineApplied),
            _ => None,
        }
    }
}

/// One appended event, as stored in the `events` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredEvent {
    /// Gapless, strictly increasing position in the log.
    pub seq: u64,
    /// What happened.
    pub kind: StoredEventKind,
    /// ferry repository name.
    pub repository: String,
    /// Normalised image name.
    pub image: String,
    /// The tag that moved (for a ring move: a tag that points at the digest, or empty).
    pub tag: String,
    /// Where it points now.
    pub digest: String,
    /// Where it pointed before; empty for a new tag.
    pub previous_digest: String,
    /// Media type of the manifest at `digest`.
    pub media_type: String,
    /// OCI 1.1 artifactType of the manifest at `digest`.
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject of the manifest at `digest`.
    pub subject: Option<String>,
    /// The image's labels at publish.
    pub labels: std::collections::BTreeMap<String, String>,
    /// When it happened (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// The ring that moved (`RING_MOVED`), else empty.
    pub ring: String,
    /// The pipeline (`RING_MOVED`, `PIPELINE_APPLIED`), else empty.
    pub pipeline: String,
    /// Who moved the ring or applied the pipeline: a token name, or `ferry-server`.
    pub actor: String,
    /// Why: promote, shift, unshift, rollback, publish, auto, or the operator's text.
    pub reason: String,
    /// Moved with `--force` past the order rule or a closed gate.
    pub forced: bool,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// The database file's (device, inode) when opened, so [`Store::probe`] sees a replaced file.
    file_id: (u64, u64),
    /// Times each write transaction, once the service has set it ([`Store::time_writes`]).
    write_timer: std::sync::OnceLock<Histogram>,
}

const DB_FILE: &str = "ferry.db";

/// (device, inode) of `path`; (0, 0) where there are no inodes, so only a removed file shows.
fn file_id(path: &Path) -> Result<(u64, u64), StoreError> {
    let meta = std::fs::metadata(path).map_err(|source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok((0, 0))
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // WAL: readers never block the writer. synchronous=FULL: a publish is acknowledged only once
    // its commit is on disk, so a crash never loses an acknowledged release.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) `data_dir/ferry.db` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        Self::migrated(path)
    }

    /// Opens `data_dir/ferry.db` only if it already holds a ferry database, and brings its schema
    /// up to date; never creates a directory or a file. For admin commands: run in the wrong
    /// directory, they must fail rather than work on a new empty database the server never reads.
    pub fn open_existing(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        let no_database = || StoreError::NoDatabase { path: path.clone() };
        if !path.is_file() {
            return Err(no_database());
        }
        // Without SQLITE_OPEN_CREATE: a file removed since the check is not silently recreated.
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)?;
        // An empty file (or any SQLite file ferry never migrated) is not a ferry database.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            return Err(no_database());
        }
        drop(conn);
        Self::migrated(path)
    }

    /// The store on the database file `path`, its schema brought up to date.
    fn migrated(path: PathBuf) -> Result<Self, StoreError> {
        let mut conn = open_connection(&path)?;
        schema::migrate(&mut conn, &path)?;
        let file_id = file_id(&path)?;
        Ok(Store {
            path,
            file_id,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            write_timer: std::sync::OnceLock::new(),
        })
    }

    /// Whether the database file still answers, for readiness: the path still names the file
    /// this store opened, and a new connection (not a pooled one, which would keep reading a
    /// removed or replaced file through its open descriptor) reads the event log from it.
    pub fn probe(&self) -> Result<u64, StoreError> {
        let unreadable = |reason: String| StoreError::Unreadable {
            path: self.path.clone(),
            reason,
        };
        match file_id(&self.path) {
            Ok(id) if id == self.file_id => {}
            Ok(_) => {
                return Err(unreadable(
                    "the file was replaced since the server opened it; restart the server".into(),
                ))
            }
            Err(e) => return Err(unreadable(e.to_string())),
        }
        // Without SQLITE_OPEN_CREATE: a removed file is reported, never recreated empty.
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        let seq: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        Ok(seq as u64)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection from the pool (opening one if none is free).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        self.readers
            .lock()
            .expect("reader pool poisoned")
            .push(conn);
        result
    }

    /// Runs `f` on the single writer connection.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().expect("writer poisoned");
        // Timed inside the lock: the histogram shows what SQLite costs, not the queue for it.
        let started = std::time::Instant::now();
        let out = f(&mut conn);
        if let Some(timer) = self.write_timer.get() {
            timer.observe(started.elapsed().as_secs_f64());
        }
        out
    }

    /// Observes the duration of every later write transaction in `histogram` (the first call
    /// wins; the service makes it once).
    pub fn time_writes(&self, histogram: Histogram) {
        let _ = self.write_timer.set(histogram);
    }

    /// The event log's size and ends: (count, lowest seq, highest seq). Gapless means
    /// `count == highest - lowest + 1`.
    pub fn event_log_extent(&self) -> Result<(u64, u64, u64), StoreError> {
        self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM events",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)? as u64,
                    ))
                },
            )?)
        })
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.with_reader(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
