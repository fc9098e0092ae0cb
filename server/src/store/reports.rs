//! Cluster reports: the latest state of each (cluster, target), a history row only when a
//! target's digest, commit or error changed, and each cluster's cursor (docs/rings.md, "Cluster
//! reports and status").
//!
//! A report is the full set of a cluster's targets, stored in one transaction: targets absent
//! from it are deleted, and a target whose digest is unchanged keeps its `since`. Every
//! statement is prepared once per connection (`prepare_cached`): a 100-target report runs the
//! upsert 100 times, and parsing it each time would cost more than running it.

use std::collections::HashMap;

use rusqlite::params;

use super::{Store, StoreError};

/// A cluster's latest report of one target, as stored in `cluster_targets`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportedTarget {
    /// The cluster that reported it.
    pub cluster: String,
    /// The agent's stable target key (`repo#file#targets[i]`).
    pub target: String,
    /// Normalised image name.
    pub image: String,
    /// What the target's file holds; empty when unknown.
    pub digest: String,
    /// The ring it follows; empty for a tag-policy target.
    pub ring: String,
    /// The pipeline of that ring; empty when the agent did not name one.
    pub pipeline: String,
    /// The file the target writes.
    pub file: String,
    /// The commit that wrote it (or the tip the agent checked).
    pub commit: String,
    /// When that commit was pushed (ms since the epoch; 0 when unknown).
    pub pushed_at_ms: i64,
    /// Why the target fails; empty when it is fine.
    pub error: String,
    /// When the cluster first reported this digest for this target.
    pub since_ms: i64,
    /// When the cluster last reported it.
    pub reported_at_ms: i64,
}

/// One row of `clusters`: who reported last, with which cursor, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    /// The cluster name.
    pub name: String,
    /// The name of the token that reported last.
    pub token: String,
    /// The agent's cursor at its last report.
    pub cursor: u64,
    /// When it last reported (ms since the epoch).
    pub reported_at_ms: i64,
}

/// One full report, validated by the service.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    /// Who reported, and when (`reported_at_ms` is also each target's `reported_at_ms`).
    pub cluster: ClusterRecord,
    /// Every target of the cluster. `cluster`, `since_ms` and `reported_at_ms` are filled in by
    /// the store.
    pub targets: Vec<ReportedTarget>,
}

/// What storing a report did.
#[derive(Debug, Clone, Default)]
pub struct ReportStored {
    /// Targets whose digest, commit or error changed (one history row each), new ones included.
    pub changed: u32,
    /// Targets of the cluster that the report no longer lists, now deleted.
    pub removed: Vec<String>,
    /// The cluster's targets as now stored, `since_ms` and `reported_at_ms` filled in.
    pub targets: Vec<ReportedTarget>,
}

/// One row of `cluster_target_history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHistoryRow {
    /// Row id: increasing in the order reports were stored.
    pub id: i64,
    /// The target key.
    pub target: String,
    /// Its image.
    pub image: String,
    /// The digest it reported.
    pub digest: String,
    /// The commit it reported.
    pub commit: String,
    /// The error it reported.
    pub error: String,
    /// When.
    pub reported_at_ms: i64,
}

/// The state of one stored target that decides `since` and whether history grows.
struct Previous {
    digest: String,
    commit: String,
    error: String,
    since_ms: i64,
}

impl Store {
    /// Stores one full report of a cluster in one transaction: upserts every target (keeping
    /// `since` where the digest is unchanged), deletes the cluster's targets the report does not
    /// list, appends a history row for each target whose digest, commit or error changed (so
    /// the same report sent twice adds none), and records the cursor. Target keys must be
    /// distinct (the service checks).
    pub fn record_report(&self, report: &ReportRecord) -> Result<ReportStored, StoreError> {
        let cluster = &report.cluster;
        let now = cluster.reported_at_ms;
        self.with_writer(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut previous: HashMap<String, Previous> = HashMap::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT target, digest, commit_id, error, since FROM cluster_targets WHERE cluster = ?1",
                )?;
                let rows = stmt.query_map([&cluster.name], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Previous {
                            digest: r.get(1)?,
                            commit: r.get(2)?,
                            error: r.get(3)?,
                            since_ms: r.get(4)?,
                        },
                    ))
                })?;
                for row in rows {
                    let (target, prev) = row?;
                    previous.insert(target, prev);
                }
            }
            let mut stored = ReportStored::default();
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO cluster_targets
                         (cluster, target, image, digest, ring, pipeline, file, commit_id, pushed_at, error, since, reported_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (cluster, target) DO UPDATE SET
                         image = excluded.image, digest = excluded.digest, ring = excluded.ring,
                         pipeline = excluded.pipeline, file = excluded.file, commit_id = excluded.commit_id,
                         pushed_at = excluded.pushed_at, error = excluded.error, since = excluded.since,
                         reported_at = excluded.reported_at",
                )?;
                let mut history = tx.prepare_cached(
                    "INSERT INTO cluster_target_history
                         (cluster, target, image, digest, ring, pipeline, commit_id, pushed_at, error, reported_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for t in &report.targets {
                    let prev = previous.remove(&t.target);
                    let since_ms = match &prev {
                        Some(p) if p.digest == t.digest => p.since_ms,
                        _ => now,
                    };
                    let changed = prev.as_ref().is_none_or(|p| {
                        p.digest != t.digest || p.commit != t.commit || p.error != t.error
                    });
                    upsert.execute(params![
                        cluster.name,
                        t.target,
                        t.image,
                        t.digest,
                        t.ring,
                        t.pipeline,
                        t.file,
                        t.commit,
                        t.pushed_at_ms,
                        t.error,
                        since_ms,
                        now
                    ])?;
                    if changed {
                        history.execute(params![
                            cluster.name,
                            t.target,
                            t.image,
                            t.digest,
                            t.ring,
                            t.pipeline,
                            t.commit,
                            t.pushed_at_ms,
                            t.error,
                            now
                        ])?;
                        stored.changed += 1;
                    }
                    stored.targets.push(ReportedTarget {
                        cluster: cluster.name.clone(),
                        since_ms,
                        reported_at_ms: now,
                        ..t.clone()
                    });
                }
            }
            {
                let mut delete = tx.prepare_cached(
                    "DELETE FROM cluster_targets WHERE cluster = ?1 AND target = ?2",
                )?;
                let mut removed: Vec<String> = previous.into_keys().collect();
                removed.sort();
                for target in &removed {
                    delete.execute(params![cluster.name, target])?;
                }
                stored.removed = removed;
            }
            tx.prepare_cached(
                "INSERT INTO clusters (name, token, cursor, reported_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET
                     token = excluded.token, cursor = excluded.cursor, reported_at = excluded.reported_at",
            )?
            .execute(params![
                cluster.name,
                cluster.token,
                cluster.cursor as i64,
                now
            ])?;
            tx.commit()?;
            Ok(stored)
        })
    }

    /// Every cluster and every stored target (what the service indexes at start).
    pub fn load_reports(&self) -> Result<(Vec<ClusterRecord>, Vec<ReportedTarget>), StoreError> {
        self.with_reader(|c| {
            let mut stmt =
                c.prepare("SELECT name, token, cursor, reported_at FROM clusters ORDER BY name")?;
            let clusters = stmt
                .query_map([], |r| {
                    Ok(ClusterRecord {
                        name: r.get(0)?,
                        token: r.get(1)?,
                        cursor: r.get::<_, i64>(2)? as u64,
                        reported_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare(
                "SELECT cluster, target, image, digest, ring, pipeline, file, commit_id, pushed_at,
                        error, since, reported_at
                 FROM cluster_targets ORDER BY cluster, target",
            )?;
            let targets = stmt
                .query_map([], |r| {
                    Ok(ReportedTarget {
                        cluster: r.get(0)?,
                        target: r.get(1)?,
                        image: r.get(2)?,
                        digest: r.get(3)?,
                        ring: r.get(4)?,
                        pipeline: r.get(5)?,
                        file: r.get(6)?,
                        commit: r.get(7)?,
                        pushed_at_ms: r.get(8)?,
                        error: r.get(9)?,
                        since_ms: r.get(10)?,
                        reported_at_ms: r.get(11)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((clusters, targets))
        })
    }

    /// The history rows of one cluster, oldest first (at most `limit`, the newest ones).
    pub fn cluster_history(
        &self,
        cluster: &str,
        limit: usize,
    ) -> Result<Vec<TargetHistoryRow>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, target, image, digest, commit_id, error, reported_at
                 FROM cluster_target_history WHERE cluster = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let mut rows = stmt
                .query_map(params![cluster, limit as i64], |r| {
                    Ok(TargetHistoryRow {
                        id: r.get(0)?,
                        target: r.get(1)?,
                        image: r.get(2)?,
                        digest: r.get(3)?,
                        commit: r.get(4)?,
                        error: r.get(5)?,
                        reported_at_ms: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.reverse();
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn target(key: &str, digest: &str, commit: &str) -> ReportedTarget {
        ReportedTarget {
            target: key.into(),
            image: "registry.example.com/shop/api".into(),
            digest: digest.into(),
            ring: "testers".into(),
            pipeline: "shop".into(),
            file: "env/prod/kustomization.yaml".into(),
            commit: commit.into(),
            ..Default::default()
        }
    }

    fn report(at: i64, cursor: u64, targets: Vec<ReportedTarget>) -> ReportRecord {
        ReportRecord {
            cluster: ClusterRecord {
                name: "prod-eu".into(),
                token: "agent-eu".into(),
                cursor,
                reported_at_ms: at,
            },
            targets,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_report_is_the_full_set_and_a_resend_adds_no_history() {
        let (_dir, store) = store();
        let first = report(
            1000,
            5,
            vec![target("r#a#0", D1, "c1"), target("r#b#0", D1, "c1")],
        );
        assert_eq!(store.record_report(&first).unwrap().changed, 2);
        // Sent again later (an agent restarted mid-promotion): nothing changed, no history, but
        // the report time and cursor move.
        let again = report(2000, 6, first.targets.clone());
        let out = store.record_report(&again).unwrap();
        assert_eq!(out.changed, 0);
        assert!(out.removed.is_empty());
        assert_eq!(store.cluster_history("prod-eu", 100).unwrap().len(), 2);
        let (clusters, targets) = store.load_reports().unwrap();
        assert_eq!(clusters[0].cursor, 6);
        assert_eq!(clusters[0].reported_at_ms, 2000);
        assert!(targets
            .iter()
            .all(|t| t.since_ms == 1000 && t.reported_at_ms == 2000));

        // a moves to D2 (since restarts), b's commit changes (since kept), and a third target
        // replaces nothing: b stays, c is new.
        let third = report(
            3000,
            7,
            vec![target("r#a#0", D2, "c2"), target("r#c#0", D1, "c2")],
        );
        let out = store.record_report(&third).unwrap();
        assert_eq!(out.changed, 2);
        assert_eq!(out.removed, vec!["r#b#0".to_string()]);
        let (_, targets) = store.load_reports().unwrap();
        let keys: Vec<_> = targets.iter().map(|t| t.target.as_str()).collect();
        assert_eq!(keys, ["r#a#0", "r#c#0"]);
        assert_eq!(targets[0].digest, D2);
        assert_eq!(targets[0].since_ms, 3000);

        // Only the commit changes: a history row, since kept.
        let fourth = report(
            4000,
            8,
            vec![target("r#a#0", D2, "c3"), target("r#c#0", D1, "c2")],
        );
        assert_eq!(store.record_report(&fourth).unwrap().changed, 1);
        let (_, targets) = store.load_reports().unwrap();
        assert_eq!(targets[0].since_ms, 3000);
        assert_eq!(targets[0].commit, "c3");
        let history = store.cluster_history("prod-eu", 100).unwrap();
        assert_eq!(history.len(), 5);
        assert_eq!(history.last().unwrap().commit, "c3");
    }

    #[test]
    fn an_error_appearing_or_clearing_is_history() {
        let (_dir, store) = store();
        store
            .record_report(&report(1, 1, vec![target("t", D1, "c")]))
            .unwrap();
        let mut failing = target("t", D1, "c");
        failing.error = "push rejected".into();
        assert_eq!(
            store
                .record_report(&report(2, 1, vec![failing.clone()]))
                .unwrap()
                .changed,
            1
        );
        assert_eq!(
            store
                .record_report(&report(3, 1, vec![failing]))
                .unwrap()
                .changed,
            0
        );
        assert_eq!(
            store
                .record_report(&report(4, 1, vec![target("t", D1, "c")]))
                .unwrap()
                .changed,
            1
        );
        let (_, targets) = store.load_reports().unwrap();
        assert_eq!(targets[0].since_ms, 1, "the digest never changed");
    }

    #[test]
    fn an_empty_report_deletes_every_target_of_that_cluster_only() {
        let (_dir, store) = store();
        store
            .record_report(&report(1, 1, vec![target("t", D1, "c")]))
            .unwrap();
        let mut other = report(1, 1, vec![target("t", D1, "c")]);
        other.cluster.name = "prod-us".into();
        store.record_report(&other).unwrap();
        let out = store.record_report(&report(2, 2, Vec::new())).unwrap();
        assert_eq!(out.removed, vec!["t".to_string()]);
        let (clusters, targets) = store.load_reports().unwrap();
        assert_eq!(clusters.len(), 2, "the cluster itself stays known");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].cluster, "prod-us");
    }
}
