//! Store tests on real SQLite files in temp dirs: schema migration carrying old data over, the
//! origin recorded per manifest, admin opening only an existing database, and the durability
//! pragmas (WAL, synchronous=FULL) of the store's own connections.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::schema::{migrate_to, SCHEMA_VERSION};
use super::*;

fn manifest(digest: &str) -> ManifestRecord {
    ManifestRecord {
        digest: digest.to_string(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: None,
        subject: None,
        data: b"{}".to_vec(),
    }
}

fn publish(digest: &str, tag: &str, origin: Option<(&str, &str)>) -> PublishRecord {
    PublishRecord {
        repository: "registry.example.com/team/app".into(),
        image: "registry.example.com/team/app".into(),
        origin: origin.map(|(u, r)| (u.to_string(), r.to_string())),
        manifests: vec![manifest(digest)],
        blobs: Vec::new(),
        tags: vec![tag.to_string()],
        labels: BTreeMap::new(),
    }
}

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const SIG: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// Migration 3 gives every existing manifest its repository's origin, and every existing event
/// the artifactType and subject of the manifest it points at.
#[test]
fn migration_3_moves_the_repository_origin_onto_its_manifests_and_backfills_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 2).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO repositories (id, name, image, origin_url, origin_repository, created_at)
                 VALUES (1, 'r.example.com/team/app', 'r.example.com/team/app', 'http://127.0.0.1:5001', 'team/app', 0);
             INSERT INTO manifests (repository_id, digest, media_type, labels, data, created_at)
                 VALUES (1, '{D1}', 'application/vnd.oci.image.manifest.v1+json', '{{}}', x'7b7d', 0);
             INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, labels, data, created_at)
                 VALUES (1, '{SIG}', 'application/vnd.oci.image.manifest.v1+json', 'application/spdx+json', '{D1}', '{{}}', x'7b7d', 0);
             INSERT INTO events (seq, kind, repository, image, tag, digest, created_at)
                 VALUES (1, 'TAG_MOVED', 'r.example.com/team/app', 'r.example.com/team/app', '1.0.0', '{D1}', 0);
             INSERT INTO events (seq, kind, repository, image, tag, digest, created_at)
                 VALUES (2, 'TAG_MOVED', 'r.example.com/team/app', 'r.example.com/team/app', 'sbom', '{SIG}', 0);"
        ))
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let version: i64 = store
        .with_reader(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let state = store.load_state().unwrap();
    assert_eq!(state.manifests.len(), 2);
    for m in &state.manifests {
        assert_eq!(
            m.origin,
            Some(("http://127.0.0.1:5001".into(), "team/app".into())),
            "{}",
            m.digest
        );
    }
    let events = store.events_after(0, 10).unwrap();
    assert_eq!(events[0].kind, StoredEventKind::TagMoved);
    assert_eq!(
        (
            events[0].artifact_type.as_deref(),
            events[0].subject.as_deref()
        ),
        (None, None)
    );
    assert_eq!(
        events[1].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert_eq!(events[1].subject.as_deref(), Some(D1));
}

#[test]
fn each_manifest_keeps_the_origin_it_was_published_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_publish(&publish(D1, "1.0.0", Some(("http://one:5000", "team/app"))))
        .unwrap();
    store
        .commit_publish(&publish(
            D2,
            "2.0.0",
            Some(("http://two:5000", "mirror/app")),
        ))
        .unwrap();
    // A re-publish naming no origin keeps the one recorded.
    store.commit_publish(&publish(D1, "stable", None)).unwrap();
    let state = store.load_state().unwrap();
    let origin_of = |d: &str| {
        state
            .manifests
            .iter()
            .find(|m| m.digest == d)
            .unwrap()
            .origin
            .clone()
    };
    assert_eq!(
        origin_of(D1),
        Some(("http://one:5000".into(), "team/app".into()))
    );
    assert_eq!(
        origin_of(D2),
        Some(("http://two:5000".into(), "mirror/app".into()))
    );
    // Loaded in the order origins were recorded: D1 first, then D2.
    let order: Vec<&str> = state.manifests.iter().map(|m| m.digest.as_str()).collect();
    assert_eq!(order, [D1, D2]);

    // Re-publishing D1 from a new origin moves it, and it is now the latest recorded.
    store
        .commit_publish(&publish(
            D1,
            "1.0.0",
            Some(("http://three:5000", "team/app")),
        ))
        .unwrap();
    let state = store.load_state().unwrap();
    let order: Vec<&str> = state.manifests.iter().map(|m| m.digest.as_str()).collect();
    assert_eq!(order, [D2, D1]);
    assert_eq!(
        state.manifests[1].origin,
        Some(("http://three:5000".into(), "team/app".into()))
    );
}

#[test]
fn events_carry_the_artifact_type_and_subject_of_their_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rec = publish(SIG, "sbom", None);
    rec.manifests[0].artifact_type = Some("application/spdx+json".into());
    rec.manifests[0].subject = Some(D1.into());
    let appended = store.commit_publish(&rec).unwrap();
    let replayed = store.events_after(0, 10).unwrap();
    assert_eq!(appended, replayed);
    assert_eq!(
        replayed[0].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert_eq!(replayed[0].subject.as_deref(), Some(D1));
}

#[test]
fn an_unknown_event_kind_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.commit_publish(&publish(D1, "1.0.0", None)).unwrap();
    store
        .with_writer(|c| {
            c.execute("UPDATE events SET kind = ?1", params!["SOMETHING_ELSE"])?;
            Ok(())
        })
        .unwrap();
    let err = store.events_after(0, 10).unwrap_err();
    assert!(err.to_string().contains("SOMETHING_ELSE"), "{err}");
}

#[test]
fn open_existing_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_existing(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
    assert!(!dir.path().join(DB_FILE).exists());
    // An empty file is no ferry database either, and stays empty.
    std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
    assert!(matches!(
        Store::open_existing(dir.path()),
        Err(StoreError::NoDatabase { .. })
    ));
    assert_eq!(
        std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len(),
        0
    );
    std::fs::remove_file(dir.path().join(DB_FILE)).unwrap();
    drop(Store::open(dir.path()).unwrap());
    Store::open_existing(dir.path()).unwrap();
}

/// (journal_mode, synchronous) as `conn` reports them.
fn durability_pragmas(conn: &Connection) -> Result<(String, i64), StoreError> {
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    Ok((journal, synchronous))
}

/// A publish is acknowledged only once its commit is on disk: every connection the store opens,
/// the writer and the readers, of a new database and of an existing one, runs in WAL with
/// `synchronous=FULL` (2). Read from the store's own connections, not from a fresh one.
#[test]
fn every_store_connection_is_wal_with_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let wanted = ("wal".to_string(), 2);
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .with_writer(|c| {
                assert_eq!(durability_pragmas(c)?, wanted, "writer of a new database");
                Ok(())
            })
            .unwrap();
        store
            .with_reader(|c| {
                assert_eq!(durability_pragmas(c)?, wanted, "reader of a new database");
                Ok(())
            })
            .unwrap();
    }
    let store = Store::open_existing(dir.path()).unwrap();
    store
        .with_writer(|c| {
            assert_eq!(durability_pragmas(c)?, wanted, "writer (admin open)");
            Ok(())
        })
        .unwrap();
    store
        .with_reader(|c| {
            assert_eq!(durability_pragmas(c)?, wanted, "reader (admin open)");
            Ok(())
        })
        .unwrap();
}
