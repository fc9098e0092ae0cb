//! The in-memory index of cluster reports: every target by cluster, and the targets that
//! follow a ring by (pipeline, ring, image), each with tallies kept up to date as reports
//! arrive. A status then reads sums — which clusters run which digest, how many targets each
//! has and how many fail — instead of walking every target: at the design load (1,000
//! clusters × 100 targets) that walk was most of `GetPipeline`'s time.
//!
//! Per ring there is also a per-cluster count over every image, so a status of a pipeline that
//! lists every image its clusters report reads one entry per cluster.
//!
//! A report replaces a cluster's whole set ([`Index::take_cluster`], then [`Index::insert`] of
//! the new targets), so a cluster's share of a tally is only ever removed whole: the tallies
//! key by cluster and drop the cluster's key, they never subtract. That is what lets `Held`
//! keep a minimum (`first_since_ms`), which subtraction could not undo.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::store::{ClusterRecord, ReportedTarget};

/// What one cluster's targets of one image in one ring hold of one digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Held {
    /// How many targets.
    pub targets: u32,
    /// The earliest `since_ms` of those targets.
    pub first_since_ms: i64,
}

/// One cluster's targets of one image in one ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// How many targets.
    pub targets: u32,
    /// Of those, how many report an error.
    pub failing: u32,
}

/// The latest reports of the targets of one image that follow one ring (of one pipeline, as
/// the agents named it), with their tallies.
#[derive(Debug, Default)]
pub(super) struct ImageTally {
    /// Every target, by (cluster, target key): the order status lists them in.
    pub targets: BTreeMap<(String, String), Arc<ReportedTarget>>,
    /// digest → cluster → what that cluster's targets hold of it.
    pub digests: HashMap<String, BTreeMap<String, Held>>,
    /// cluster → its targets of the image in the ring.
    pub clusters: BTreeMap<String, Counts>,
    /// The targets that report an error, by (cluster, target key).
    pub failing: BTreeMap<(String, String), Arc<ReportedTarget>>,
}

impl ImageTally {
    fn add(&mut self, t: &Arc<ReportedTarget>) {
        let key = (t.cluster.clone(), t.target.clone());
        let held = self
            .digests
            .entry(t.digest.clone())
            .or_default()
            .entry(t.cluster.clone())
            .or_insert(Held {
                targets: 0,
                first_since_ms: t.since_ms,
            });
        held.targets += 1;
        held.first_since_ms = held.first_since_ms.min(t.since_ms);
        let counts = self.clusters.entry(t.cluster.clone()).or_default();
        counts.targets += 1;
        if !t.error.is_empty() {
            counts.failing += 1;
            self.failing.insert(key.clone(), t.clone());
        }
        self.targets.insert(key, t.clone());
    }

    /// Drops `cluster`'s share of every tally (the whole of it: see the module comment).
    fn drop_cluster(&mut self, t: &ReportedTarget) {
        let key = (t.cluster.clone(), t.target.clone());
        self.targets.remove(&key);
        self.failing.remove(&key);
        self.clusters.remove(&t.cluster);
        if let Some(by_cluster) = self.digests.get_mut(&t.digest) {
            by_cluster.remove(&t.cluster);
            if by_cluster.is_empty() {
                self.digests.remove(&t.digest);
            }
        }
    }
}

/// The targets following one ring (of one pipeline, as the agents named it).
#[derive(Debug, Default)]
pub(super) struct RingTally {
    /// image → its targets.
    pub images: HashMap<String, ImageTally>,
    /// cluster → its targets in the ring, of every image: what a status shows per cluster
    /// when the pipeline lists every image here (the usual case), read without summing 64
    /// images' counts per cluster.
    pub clusters: BTreeMap<String, Counts>,
}

impl RingTally {
    fn add(&mut self, t: &Arc<ReportedTarget>) {
        self.images.entry(t.image.clone()).or_default().add(t);
        let counts = self.clusters.entry(t.cluster.clone()).or_default();
        counts.targets += 1;
        counts.failing += u32::from(!t.error.is_empty());
    }

    fn drop_cluster(&mut self, t: &ReportedTarget) {
        self.clusters.remove(&t.cluster);
        if let Some(tally) = self.images.get_mut(&t.image) {
            tally.drop_cluster(t);
            if tally.targets.is_empty() {
                self.images.remove(&t.image);
            }
        }
    }
}

/// pipeline → ring → its targets.
type RingImages = HashMap<String, HashMap<String, RingTally>>;

/// Reports by cluster and by (pipeline, ring, image). Owned by the service's `Reports`, behind
/// one lock.
#[derive(Default)]
pub(super) struct Index {
    /// Each cluster's last report: who sent it, its cursor, when.
    pub clusters: HashMap<String, ClusterRecord>,
    /// cluster → target key → latest report.
    pub by_cluster: HashMap<String, HashMap<String, Arc<ReportedTarget>>>,
    /// Only targets that follow a ring.
    by_ring: RingImages,
}

impl Index {
    /// Adds one target of a report; the cluster's old targets were taken first.
    pub fn insert(&mut self, t: Arc<ReportedTarget>) {
        if !t.ring.is_empty() {
            self.by_ring
                .entry(t.pipeline.clone())
                .or_default()
                .entry(t.ring.clone())
                .or_default()
                .add(&t);
        }
        self.by_cluster
            .entry(t.cluster.clone())
            .or_default()
            .insert(t.target.clone(), t);
    }

    /// Drops every target of `cluster`, and its share of every tally, and returns them.
    pub fn take_cluster(&mut self, cluster: &str) -> HashMap<String, Arc<ReportedTarget>> {
        let old = self.by_cluster.remove(cluster).unwrap_or_default();
        for t in old.values().filter(|t| !t.ring.is_empty()) {
            let Some(rings) = self.by_ring.get_mut(&t.pipeline) else {
                continue;
            };
            if let Some(ring) = rings.get_mut(&t.ring) {
                ring.drop_cluster(t);
                if ring.images.is_empty() {
                    rings.remove(&t.ring);
                }
            }
            if rings.is_empty() {
                self.by_ring.remove(&t.pipeline);
            }
        }
        old
    }

    /// The tallies of `ring`: of the targets that named `pipeline`, then of those that named
    /// none (an agent need not name the pipeline when its image is in one; such targets count
    /// for every pipeline that lists the image).
    pub fn ring_tallies(&self, pipeline: &str, ring: &str) -> Vec<&RingTally> {
        let unnamed = (!pipeline.is_empty()).then_some("");
        std::iter::once(pipeline)
            .chain(unnamed)
            .filter_map(|p| self.by_ring.get(p)?.get(ring))
            .collect()
    }

    /// The tallies of `image` in `ring`, as [`Index::ring_tallies`].
    pub fn image_tallies(&self, pipeline: &str, ring: &str, image: &str) -> Vec<&ImageTally> {
        self.ring_tallies(pipeline, ring)
            .into_iter()
            .filter_map(|r| r.images.get(image))
            .collect()
    }

    /// Every target following `ring` of `pipeline` (with those that named no pipeline), of
    /// any image, ordered by (cluster, target key).
    pub fn ring_targets(&self, pipeline: &str, ring: &str) -> Vec<Arc<ReportedTarget>> {
        let mut out: Vec<Arc<ReportedTarget>> = self
            .ring_tallies(pipeline, ring)
            .into_iter()
            .flat_map(|r| r.images.values())
            .flat_map(|tally| tally.targets.values().cloned())
            .collect();
        out.sort_by(|a, b| (&a.cluster, &a.target).cmp(&(&b.cluster, &b.target)));
        out
    }
}

/// A target following ring `testers` of pipeline `shop`, for the tests of this module and of
/// `ring_summary`.
#[cfg(test)]
pub(super) fn test_target(
    cluster: &str,
    target: &str,
    image: &str,
    digest: &str,
    since: i64,
    error: &str,
) -> Arc<ReportedTarget> {
    Arc::new(ReportedTarget {
        cluster: cluster.into(),
        target: target.into(),
        image: image.into(),
        digest: digest.into(),
        ring: "testers".into(),
        pipeline: "shop".into(),
        error: error.into(),
        since_ms: since,
        reported_at_ms: 7,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_target as t;

    fn tally<'a>(index: &'a Index, image: &str) -> &'a ImageTally {
        index.image_tallies("shop", "testers", image)[0]
    }

    #[test]
    fn a_new_report_replaces_the_clusters_share_of_each_tally_whole() {
        let mut index = Index::default();
        for x in [
            t("a", "1", "web", "d1", 30, ""),
            t("a", "2", "web", "d1", 20, "boom"),
            t("b", "1", "web", "d1", 10, ""),
        ] {
            index.insert(x);
        }
        let web = tally(&index, "web");
        assert_eq!(
            web.digests["d1"]["a"],
            Held {
                targets: 2,
                first_since_ms: 20
            }
        );
        assert_eq!(
            web.clusters["a"],
            Counts {
                targets: 2,
                failing: 1
            }
        );
        assert_eq!(web.failing.len(), 1);
        let ring = index.ring_tallies("shop", "testers")[0];
        assert_eq!(
            ring.clusters["a"],
            Counts {
                targets: 2,
                failing: 1
            }
        );

        // Cluster a's next report: both targets moved to d2, the failure cleared.
        let old = index.take_cluster("a");
        assert_eq!(old.len(), 2);
        index.insert(t("a", "1", "web", "d2", 50, ""));
        index.insert(t("a", "2", "web", "d2", 50, ""));
        let web = tally(&index, "web");
        assert_eq!(web.digests["d1"].keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(web.digests["d2"]["a"].targets, 2);
        assert!(web.failing.is_empty());
        assert_eq!(web.targets.len(), 3);
        let ring = index.ring_tallies("shop", "testers")[0];
        assert_eq!(ring.clusters["a"].failing, 0);

        // A cluster that reports nothing more leaves no trace.
        index.take_cluster("a");
        index.take_cluster("b");
        assert!(index.image_tallies("shop", "testers", "web").is_empty());
        assert!(index.ring_targets("shop", "testers").is_empty());
    }
}
