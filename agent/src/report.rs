//! Cluster reports (docs/rings.md, "Cluster reports and status"): what each target of one
//! provider runs, as a full set, sent after reconciles and applied batches.
//!
//! A report only says what changed, or that the cursor moved, so an idle agent sends nothing;
//! a new session sends once regardless, so a restarted server or agent hears the state again.
//! A target's commit is the one at which its file first held its digest (the pushed commit, or
//! the tip the agent checked): re-verifying the same digest later keeps it, so the server's
//! history gets a row only when the digest, commit or error really changed.

use std::collections::BTreeMap;

use ferry_proto::pb;

use crate::apply::Fact;
use crate::targets::Target;

/// What one provider's targets run, and what it last told the server.
#[derive(Debug, Default)]
pub struct Reporter {
    cluster: String,
    /// Target key → its latest state, for every target the agent has.
    targets: BTreeMap<String, pb::TargetReport>,
    /// The last report the server accepted; `None` forces the next one out.
    sent: Option<pb::ReportRequest>,
}

impl Reporter {
    /// A reporter for `cluster` (`spec.name`; empty: the server uses the token's name).
    pub fn new(cluster: &str) -> Reporter {
        Reporter {
            cluster: cluster.to_string(),
            ..Reporter::default()
        }
    }

    /// Starts a session: the next report is sent even if nothing changed.
    pub fn session_started(&mut self) {
        self.sent = None;
    }

    /// Sets the targets the agent has: new ones start with nothing known, removed ones are
    /// dropped (a full report without them drops them from the cluster). A target whose file
    /// or image changed starts over.
    pub fn set_targets(&mut self, targets: &[Target]) {
        let mut next = BTreeMap::new();
        for t in targets {
            let fresh = pb::TargetReport {
                target: t.key(),
                image: t.spec.image.to_string(),
                ring: t
                    .spec
                    .ring
                    .as_ref()
                    .map(|r| r.ring.clone())
                    .unwrap_or_default(),
                pipeline: t
                    .spec
                    .ring
                    .as_ref()
                    .and_then(|r| r.pipeline.clone())
                    .unwrap_or_default(),
                file: t.spec.file_path.clone(),
                ..Default::default()
            };
            let kept = self.targets.remove(&fresh.target).filter(|old| {
                (&old.image, &old.ring, &old.pipeline, &old.file)
                    == (&fresh.image, &fresh.ring, &fresh.pipeline, &fresh.file)
            });
            next.insert(fresh.target.clone(), kept.unwrap_or(fresh));
        }
        self.targets = next;
    }

    /// Records what an apply found; facts about unknown targets are ignored.
    pub fn record(&mut self, facts: &BTreeMap<String, Fact>) {
        for (key, fact) in facts {
            let Some(t) = self.targets.get_mut(key) else {
                continue;
            };
            match fact {
                Fact::Applied {
                    digest,
                    commit,
                    at_ms,
                } => {
                    t.digest = digest.clone();
                    t.commit = commit.clone();
                    t.pushed_at_ms = *at_ms;
                    t.error.clear();
                }
                Fact::Verified {
                    digest,
                    commit,
                    at_ms,
                } => {
                    // Still the digest it was: its commit is still the one that wrote it.
                    if t.digest != *digest || t.commit.is_empty() {
                        t.digest = digest.clone();
                        t.commit = commit.clone();
                        t.pushed_at_ms = *at_ms;
                    }
                    t.error.clear();
                }
                // The file still holds what it held: only the error is new.
                Fact::Failed(why) => t.error = why.clone(),
            }
        }
    }

    /// How many targets' last apply failed.
    pub fn failing(&self) -> usize {
        self.targets
            .values()
            .filter(|t| !t.error.is_empty())
            .count()
    }

    /// The report to send with `cursor`, unless the server already has exactly it.
    pub fn pending(&self, cursor: u64) -> Option<pb::ReportRequest> {
        let report = pb::ReportRequest {
            cluster: self.cluster.clone(),
            cursor,
            targets: self.targets.values().cloned().collect(),
        };
        (self.sent.as_ref() != Some(&report)).then_some(report)
    }

    /// Records that the server accepted `report`.
    pub fn sent(&mut self, report: pb::ReportRequest) {
        self.sent = Some(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageWatcherFile;

    fn target(index: usize, ring: Option<&str>) -> Target {
        let follow = ring.map_or(String::new(), |r| format!("      ring: {r}\n"));
        let text = format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/app\n      provider: ferry\n      filePath: d{index}.yaml\n      field: image\n{follow}");
        let file = ImageWatcherFile::parse(&text, ".pipe/w.yaml").unwrap();
        let mut spec = file.valid_targets().next().unwrap().clone();
        spec.index = index;
        Target {
            repo_id: "config".into(),
            watcher_file: ".pipe/w.yaml".into(),
            policy: Default::default(),
            spec,
            commit_message: None,
        }
    }

    fn verified(digest: &str, commit: &str) -> Fact {
        Fact::Verified {
            digest: digest.into(),
            commit: commit.into(),
            at_ms: 1,
        }
    }

    #[test]
    fn reports_every_target_once_per_change_or_cursor_move() {
        let mut r = Reporter::new("prod");
        r.set_targets(&[target(0, Some("testers")), target(1, None)]);
        let first = r.pending(5).expect("a first report");
        assert_eq!(first.cluster, "prod");
        let keys: Vec<&str> = first.targets.iter().map(|t| t.target.as_str()).collect();
        assert_eq!(
            keys,
            [
                "config#.pipe/w.yaml#targets[0]",
                "config#.pipe/w.yaml#targets[1]"
            ]
        );
        assert_eq!(first.targets[0].ring, "testers");
        assert_eq!(first.targets[1].ring, "");
        r.sent(first);
        assert_eq!(r.pending(5), None, "nothing changed");
        assert!(r.pending(6).is_some(), "the cursor moved");
        let key = "config#.pipe/w.yaml#targets[0]".to_string();
        r.record(&BTreeMap::from([(key.clone(), verified("sha256:a", "c1"))]));
        let report = r.pending(5).expect("the digest changed");
        assert_eq!(
            (
                report.targets[0].digest.as_str(),
                report.targets[0].commit.as_str()
            ),
            ("sha256:a", "c1")
        );
        r.sent(report);
        // Verified again at a later tip: the commit that wrote it stands, nothing to send.
        r.record(&BTreeMap::from([(key.clone(), verified("sha256:a", "c2"))]));
        assert_eq!(r.pending(5), None);
        // A failure keeps what the file holds and adds the error; recovery clears it.
        r.record(&BTreeMap::from([(
            key.clone(),
            Fact::Failed("boom".into()),
        )]));
        let failing = r.pending(5).unwrap();
        assert_eq!(
            (
                failing.targets[0].digest.as_str(),
                failing.targets[0].error.as_str()
            ),
            ("sha256:a", "boom")
        );
        r.record(&BTreeMap::from([(
            key.clone(),
            Fact::Applied {
                digest: "sha256:b".into(),
                commit: "c3".into(),
                at_ms: 9,
            },
        )]));
        let applied = r.pending(5).unwrap();
        assert_eq!(applied.targets[0].error, "");
        assert_eq!(applied.targets[0].commit, "c3");
        assert_eq!(applied.targets[0].pushed_at_ms, 9);
        r.sent(applied);
        // A new session says it all again.
        r.session_started();
        assert!(r.pending(5).is_some());
        // A removed target leaves the report.
        r.set_targets(&[target(1, None)]);
        assert_eq!(r.pending(5).unwrap().targets.len(), 1);
    }
}
