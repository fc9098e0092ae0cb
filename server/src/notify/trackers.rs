//! State that turns what the service knows now into "this just happened": a target that started
//! failing, a cluster gone longer than the limit, a gate that opened. Each tracker is seeded from
//! the state at start, so a restart does not re-announce old facts.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::service::{ClusterInfo, PipelineView, ReportedTarget};

use super::message::{Notification, What};

/// Targets failing now, by (cluster, target), and the report time each cluster was read at.
#[derive(Default)]
pub struct Failing {
    failing: HashSet<(String, String)>,
    read_at: HashMap<String, i64>,
}

impl Failing {
    /// The clusters whose report is newer than the one last read.
    pub fn stale<'a>(&self, clusters: &'a [ClusterInfo]) -> Vec<&'a ClusterInfo> {
        clusters
            .iter()
            .filter(|c| self.read_at.get(&c.name) != Some(&c.reported_at_ms))
            .collect()
    }

    /// Takes in `cluster`'s current targets; returns a notification per target that was not
    /// failing before (none when `announce` is false: the seeding read).
    pub fn update(
        &mut self,
        cluster: &ClusterInfo,
        targets: &[ReportedTarget],
        announce: bool,
    ) -> Vec<Notification> {
        self.read_at
            .insert(cluster.name.clone(), cluster.reported_at_ms);
        let before: HashSet<(String, String)> = self
            .failing
            .extract_if(|(c, _)| *c == cluster.name)
            .collect();
        let mut out = Vec::new();
        for t in targets.iter().filter(|t| !t.error.is_empty()) {
            let key = (cluster.name.clone(), t.target.clone());
            let new = !before.contains(&key);
            self.failing.insert(key);
            if new && announce {
                out.push(Notification::new(
                    format!(
                        "target_failing:{}:{}:{}",
                        t.cluster, t.target, t.reported_at_ms
                    ),
                    t.reported_at_ms,
                    What::TargetFailing {
                        cluster: t.cluster.clone(),
                        target: t.target.clone(),
                        image: t.image.clone(),
                        pipeline: t.pipeline.clone(),
                        ring: t.ring.clone(),
                        file: t.file.clone(),
                        error: t.error.clone(),
                    },
                ));
            }
        }
        out
    }
}

/// When each cluster was last seen holding a stream, and which were announced as gone.
#[derive(Default)]
pub struct Disconnects {
    last_seen_ms: HashMap<String, i64>,
    announced: HashSet<String>,
}

impl Disconnects {
    /// Takes in the clusters at `now_ms`; returns a notification per cluster seen connected
    /// since start that has held no stream for `after`, once per disconnection.
    pub fn update(
        &mut self,
        clusters: &[ClusterInfo],
        now_ms: i64,
        after: Duration,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for c in clusters {
            if c.connected {
                self.last_seen_ms.insert(c.name.clone(), now_ms);
                self.announced.remove(&c.name);
                continue;
            }
            let Some(&seen) = self.last_seen_ms.get(&c.name) else {
                continue;
            };
            let gone_ms = now_ms.saturating_sub(seen).max(0) as u64;
            if gone_ms >= after.as_millis() as u64 && self.announced.insert(c.name.clone()) {
                out.push(Notification::new(
                    format!("agent_disconnected:{}:{seen}", c.name),
                    now_ms,
                    What::AgentDisconnected {
                        cluster: c.name.clone(),
                        disconnected_seconds: gone_ms / 1000,
                        last_report: (c.reported_at_ms > 0)
                            .then(|| ferry_proto::time::rfc3339_ms(c.reported_at_ms)),
                    },
                ));
            }
        }
        out
    }
}

/// Each guarded ring's gate: the candidate last evaluated and whether it was open.
#[derive(Default)]
pub struct Gates {
    last: HashMap<(String, String), (String, bool)>,
}

impl Gates {
    /// Takes in pipeline statuses; returns a notification per gate that was closed for a
    /// candidate and is open for it now, unless the ring already runs it. Also says whether a
    /// closed gate waits on a soak (which runs out with no event to announce it).
    pub fn update(&mut self, views: &[PipelineView], now_ms: i64) -> (Vec<Notification>, bool) {
        let mut out = Vec::new();
        let mut soaking = false;
        for v in views {
            let root = if v.spec.root.is_empty() {
                v.spec.images.first().cloned().unwrap_or_default()
            } else {
                v.spec.root.clone()
            };
            for ring in &v.rings {
                let (Some(gate), Some(eval)) = (&ring.gate, &ring.gate_status) else {
                    continue;
                };
                if !gate.guards() || eval.candidate.is_empty() {
                    continue;
                }
                soaking |= !eval.open && eval.soak_left_seconds > 0;
                let key = (v.spec.name.clone(), ring.name.clone());
                let was = self.last.insert(key, (eval.candidate.clone(), eval.open));
                let opened = eval.open && matches!(&was, Some((c, false)) if *c == eval.candidate);
                let runs_it = ring.pointers.iter().any(|p| p.digest == eval.candidate);
                if opened && !runs_it {
                    out.push(Notification::new(
                        format!(
                            "gate_opened:{}:{}:{}",
                            v.spec.name, ring.name, eval.candidate
                        ),
                        now_ms,
                        What::GateOpened {
                            pipeline: v.spec.name.clone(),
                            ring: ring.name.clone(),
                            image: root.clone(),
                            digest: eval.candidate.clone(),
                        },
                    ));
                }
            }
        }
        (out, soaking)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, connected: bool, reported_at_ms: i64) -> ClusterInfo {
        ClusterInfo {
            name: name.into(),
            token: "agent".into(),
            cursor: 0,
            reported_at_ms,
            connected,
        }
    }

    fn target(error: &str) -> ReportedTarget {
        ReportedTarget {
            cluster: "eu-1".into(),
            target: "t1".into(),
            image: "x.io/app".into(),
            digest: String::new(),
            ring: String::new(),
            pipeline: String::new(),
            file: "app.yaml".into(),
            commit: String::new(),
            pushed_at_ms: 0,
            error: error.into(),
            since_ms: 0,
            reported_at_ms: 5,
        }
    }

    #[test]
    fn a_target_is_announced_when_it_starts_failing_not_while_it_keeps_failing() {
        let mut f = Failing::default();
        let c = cluster("eu-1", true, 5);
        assert!(f.update(&c, &[target("")], true).is_empty());
        assert_eq!(f.update(&c, &[target("push refused")], true).len(), 1);
        assert!(f
            .update(&c, &[target("push refused again")], true)
            .is_empty());
        assert!(f.update(&c, &[target("")], true).is_empty());
        assert_eq!(f.update(&c, &[target("boom")], true).len(), 1);
        // Seeding reads announce nothing.
        let mut seeded = Failing::default();
        assert!(seeded.update(&c, &[target("old")], false).is_empty());
        assert!(seeded.update(&c, &[target("old")], true).is_empty());
        assert!(seeded.stale(std::slice::from_ref(&c)).is_empty());
        assert_eq!(seeded.stale(&[cluster("eu-1", true, 6)]).len(), 1);
    }

    #[test]
    fn a_cluster_gone_longer_than_the_limit_is_announced_once_per_disconnection() {
        let mut d = Disconnects::default();
        let after = Duration::from_secs(60);
        assert!(
            d.update(&[cluster("eu-1", false, 0)], 0, after).is_empty(),
            "never seen connected"
        );
        assert!(d
            .update(&[cluster("eu-1", true, 0)], 1_000, after)
            .is_empty());
        assert!(d
            .update(&[cluster("eu-1", false, 0)], 30_000, after)
            .is_empty());
        let n = d.update(&[cluster("eu-1", false, 0)], 61_000, after);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].summary, "cluster eu-1 disconnected for 1m");
        assert!(d
            .update(&[cluster("eu-1", false, 0)], 90_000, after)
            .is_empty());
        assert!(d
            .update(&[cluster("eu-1", true, 0)], 91_000, after)
            .is_empty());
        assert_eq!(
            d.update(&[cluster("eu-1", false, 0)], 200_000, after).len(),
            1
        );
    }
}
