//! Schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and runs in its own transaction.
//! Never edit a migration that has shipped; append a new one.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE repositories (
        id                INTEGER PRIMARY KEY,
        name              TEXT NOT NULL UNIQUE,   -- ferry repository: 127.0.0.1_5001/team/app
        image             TEXT NOT NULL,          -- normalised image: 127.0.0.1:5001/team/app
        origin_url        TEXT,                   -- where layers live: http://127.0.0.1:5001
        origin_repository TEXT,                   -- repository path at the origin
        created_at        INTEGER NOT NULL
    );
    CREATE TABLE manifests (
        repository_id INTEGER NOT NULL REFERENCES repositories(id),
        digest        TEXT NOT NULL,
        media_type    TEXT NOT NULL,
        artifact_type TEXT,
        subject       TEXT,                       -- OCI 1.1 referrers
        labels        TEXT NOT NULL DEFAULT '{}', -- JSON object
        data          BLOB NOT NULL,              -- bytes exactly as published
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE INDEX manifests_by_subject ON manifests(repository_id, subject) WHERE subject IS NOT NULL;
    CREATE TABLE blobs (
        repository_id INTEGER NOT NULL REFERENCES repositories(id),
        digest        TEXT NOT NULL,
        media_type    TEXT NOT NULL,
        data          BLOB NOT NULL,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE TABLE tags (
        repository_id INTEGER NOT NULL REFERENCES repositories(id),
        tag           TEXT NOT NULL,
        digest        TEXT NOT NULL,
        seq           INTEGER NOT NULL,           -- the event that last moved it
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (repository_id, tag)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY,      -- gapless: assigned by the single writer
        kind            TEXT NOT NULL,            -- TAG_MOVED | TAG_DELETED | RING_MOVED
        repository      TEXT NOT NULL,
        image           TEXT NOT NULL,
        tag             TEXT NOT NULL,
        digest          TEXT NOT NULL,
        previous_digest TEXT NOT NULL DEFAULT '',
        media_type      TEXT NOT NULL DEFAULT '',
        labels          TEXT NOT NULL DEFAULT '{}',
        ring            TEXT NOT NULL DEFAULT '',
        created_at      INTEGER NOT NULL
    );
    "#,
    // 2: API tokens. Only a SHA-256 of each token is kept; roles is a comma-separated set,
    // scopes a JSON array of repository prefixes (empty: any repository).
    r#"
    CREATE TABLE tokens (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        roles       TEXT NOT NULL,
        scopes      TEXT NOT NULL DEFAULT '[]',
        hash        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    "#,
    // 3: the origin belongs to each published manifest, not to its repository (issue 9): two tags
    // of one image may come from different origins, and each tag's layers must redirect to the
    // origin its own manifest was published from. Old manifests take their repository's origin
    // (the only one known); the repository columns stay but are no longer read or written.
    // origin_order: increasing, assigned whenever a publish records an origin on the manifest, so
    // "the manifest whose origin was recorded last" is well defined for layers two manifests share.
    // Events carry the artifactType and subject of the manifest they point at, so agents can tell
    // releases from artifacts (signatures, SBOMs); old events take them from the manifests table.
    r#"
    ALTER TABLE manifests ADD COLUMN origin_url TEXT;
    ALTER TABLE manifests ADD COLUMN origin_repository TEXT;
    ALTER TABLE manifests ADD COLUMN origin_order INTEGER;
    UPDATE manifests SET
        origin_url = (SELECT r.origin_url FROM repositories r WHERE r.id = manifests.repository_id),
        origin_repository = (SELECT r.origin_repository FROM repositories r WHERE r.id = manifests.repository_id);
    UPDATE manifests SET origin_order = rowid WHERE origin_url IS NOT NULL;
    CREATE INDEX manifests_by_origin_order ON manifests(origin_order);
    ALTER TABLE events ADD COLUMN artifact_type TEXT;
    ALTER TABLE events ADD COLUMN subject TEXT;
    UPDATE events SET
        artifact_type = (SELECT m.artifact_type FROM manifests m JOIN repositories r ON r.id = m.repository_id
                         WHERE r.name = events.repository AND m.digest = events.digest),
        subject = (SELECT m.subject FROM manifests m JOIN repositories r ON r.id = m.repository_id
                   WHERE r.name = events.repository AND m.digest = events.digest);
    "#,
    // 4: rings (issue 10). A pipeline orders rings of users; each (pipeline, ring, image) points
    // at a digest. Every move appends a RING_MOVED event in the same transaction, and a history
    // row that names the event, so `unshift` and `rollback` can restore exact earlier states.
    // Reports are what each cluster's targets run, latest per (cluster, target), with a history
    // row only when the digest, commit or error changed (a re-sent report adds nothing).
    r#"
    ALTER TABLE events ADD COLUMN pipeline TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE pipelines (
        name        TEXT PRIMARY KEY,
        generation  INTEGER NOT NULL,
        spec        TEXT NOT NULL,              -- JSON of the normalised spec
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE pipeline_generations (
        name        TEXT NOT NULL,
        generation  INTEGER NOT NULL,
        spec        TEXT NOT NULL,
        source      TEXT NOT NULL DEFAULT '',   -- the YAML as applied
        actor       TEXT NOT NULL,
        seq         INTEGER NOT NULL,           -- its PIPELINE_APPLIED event
        applied_at  INTEGER NOT NULL,
        PRIMARY KEY (name, generation)
    ) WITHOUT ROWID;
    CREATE TABLE ring_pointers (
        pipeline    TEXT NOT NULL,
        ring        TEXT NOT NULL,
        image       TEXT NOT NULL,              -- normalised image name
        digest      TEXT NOT NULL,
        tag         TEXT NOT NULL DEFAULT '',
        seq         INTEGER NOT NULL,           -- the RING_MOVED event that set it
        since       INTEGER NOT NULL,
        PRIMARY KEY (pipeline, ring, image)
    ) WITHOUT ROWID;
    CREATE TABLE ring_history (
        seq             INTEGER PRIMARY KEY,    -- = the RING_MOVED event's seq
        pipeline        TEXT NOT NULL,
        ring            TEXT NOT NULL,
        image           TEXT NOT NULL,
        digest          TEXT NOT NULL,          -- '' when the move emptied the ring (unshift)
        previous_digest TEXT NOT NULL DEFAULT '',
        tag             TEXT NOT NULL DEFAULT '',
        actor           TEXT NOT NULL,
        reason          TEXT NOT NULL,          -- promote | shift | unshift | rollback | publish | auto
        forced          INTEGER NOT NULL DEFAULT 0,
        batch           INTEGER NOT NULL,       -- seq of the first move of the same call (a shift)
        at              INTEGER NOT NULL
    );
    CREATE INDEX ring_history_by_pointer ON ring_history(pipeline, ring, image, seq);
    CREATE INDEX ring_history_by_digest ON ring_history(pipeline, image, digest);
    CREATE TABLE ring_holds (
        pipeline    TEXT NOT NULL,
        ring        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (pipeline, ring)
    ) WITHOUT ROWID;
    CREATE TABLE rejections (
        image       TEXT NOT NULL,
        digest      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (image, digest)
    ) WITHOUT ROWID;
    CREATE TABLE clusters (
        name        TEXT PRIMARY KEY,
        token       TEXT NOT NULL,              -- the token name that reported last
        cursor      INTEGER NOT NULL,
        reported_at INTEGER NOT NULL
    );
    CREATE TABLE cluster_targets (
        cluster     TEXT NOT NULL,
        target      TEXT NOT NULL,
        image       TEXT NOT NULL,
        digest      TEXT NOT NULL,
        ring        TEXT NOT NULL DEFAULT '',
        pipeline    TEXT NOT NULL DEFAULT '',
        file        TEXT NOT NULL DEFAULT '',
        commit_id   TEXT NOT NULL DEFAULT '',
        pushed_at   INTEGER NOT NULL DEFAULT 0,
        error       TEXT NOT NULL DEFAULT '',
        since       INTEGER NOT NULL,           -- when it first reported this digest
        reported_at INTEGER NOT NULL,
        PRIMARY KEY (cluster, target)
    ) WITHOUT ROWID;
    CREATE INDEX cluster_targets_by_image ON cluster_targets(image, digest);
    CREATE TABLE cluster_target_history (
        id          INTEGER PRIMARY KEY,
        cluster     TEXT NOT NULL,
        target      TEXT NOT NULL,
        image       TEXT NOT NULL,
        digest      TEXT NOT NULL,
        ring        TEXT NOT NULL DEFAULT '',
        pipeline    TEXT NOT NULL DEFAULT '',
        commit_id   TEXT NOT NULL DEFAULT '',
        pushed_at   INTEGER NOT NULL DEFAULT 0,
        error       TEXT NOT NULL DEFAULT '',
        reported_at INTEGER NOT NULL
    );
    CREATE INDEX cluster_target_history_by_target ON cluster_target_history(cluster, target, id);
    "#,
    // 5: the dashboard's history of one image (newest first): without it the read walks back
    // through the whole log for an image published long ago (35 ms p50 at 100,000 events,
    // BENCHMARKS.md scenario 9).
    r#"
    CREATE INDEX events_by_image ON events(image, seq);
    "#,
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the database has not seen; refuses a database from a newer ferry.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies the migrations up to version `target` (tests build old databases with it).
pub(super) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let upto = MIGRATIONS.len().min(target.max(0) as usize);
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(upto)
        .skip(found as usize)
    {
        // IMMEDIATE takes the write lock first, and the version is read again under it: the
        // server and an admin command (`ferry-server token …`) may open an old database at the
        // same moment, and the second must find the migration done rather than run it again.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        migrate(&mut conn, &path).unwrap(); // idempotent
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
        assert!(err.to_string().contains("upgrade ferry-server"));
    }
}
