//! Summarising a ring's reports for status: which clusters run which digest of each image, and
//! per cluster how many of its targets fail, read from the tallies `report_index` keeps as
//! reports arrive.
//!
//! At the design load (1,000 clusters × 100 targets) the per-target rows are ~25 MB; the
//! summaries are what a status prints, so GetPipeline sends them and only the failing targets.
//! Reading them costs the size of the answer (one entry per cluster and digest of each image),
//! not one step per target.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::report_index::{Counts, Held, ImageTally, Index, RingTally};
use super::reports::{ClusterInfo, ReportedTarget};

/// The clusters of one ring whose targets of `image` hold `digest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningView {
    /// The image.
    pub image: String,
    /// What those targets hold; empty when the agent does not know.
    pub digest: String,
    /// The clusters, as positions in the ring's `cluster_summaries` (which is by name):
    /// a status of 1,000 clusters lists a cluster per image, and a position costs no copy of
    /// the name (see [`RunningView::cluster_names`]).
    pub cluster_indexes: Vec<u32>,
    /// The earliest `since_ms` of those targets.
    pub since_ms: i64,
    /// How many targets hold it.
    pub targets: u32,
}

impl RunningView {
    /// The names of the clusters, from the ring's `cluster_summaries`.
    pub fn cluster_names<'a>(
        &'a self,
        summaries: &'a [ClusterSummaryView],
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.cluster_indexes
            .iter()
            .filter_map(|&i| summaries.get(i as usize))
            .map(|s| s.cluster.as_str())
    }
}

/// One cluster following a ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSummaryView {
    /// The cluster.
    pub cluster: String,
    /// Its cursor at its last report.
    pub cursor: u64,
    /// Head seq minus cursor.
    pub lag: u64,
    /// Whether it holds a Subscribe stream now.
    pub connected: bool,
    /// When it last reported.
    pub reported_at_ms: i64,
    /// Its targets following the ring.
    pub targets: u32,
    /// Of those, how many report an error.
    pub failing: u32,
}

/// One ring's reports, summarised.
#[derive(Debug, Clone, Default)]
pub(super) struct RingSummary {
    /// Running digests in the images' order, most clusters first within an image.
    pub running: Vec<RunningView>,
    /// The clusters following the ring, by name; `lag` is left 0 for the caller, which knows
    /// the head its view is consistent with.
    pub clusters: Vec<ClusterSummaryView>,
    /// The failing targets (every target when asked for), by (cluster, target key).
    pub rows: Vec<Arc<ReportedTarget>>,
}

/// Summarises the targets of `images` following `ring` of `pipeline` (with those that named
/// no pipeline). `keep_all`: every target in the rows, not only the failing ones.
pub(super) fn summarise(
    index: &Index,
    pipeline: &str,
    ring: &str,
    images: &[String],
    clusters: &HashMap<String, ClusterInfo>,
    keep_all: bool,
) -> RingSummary {
    let tallies = index.ring_tallies(pipeline, ring);
    let per_cluster = cluster_counts(&tallies, images);
    let names: Vec<&str> = per_cluster.iter().map(|(c, _)| *c).collect();
    let mut out = RingSummary::default();
    for image in images {
        let of_image: Vec<&ImageTally> =
            tallies.iter().filter_map(|r| r.images.get(image)).collect();
        for tally in &of_image {
            let rows = if keep_all {
                &tally.targets
            } else {
                &tally.failing
            };
            out.rows.extend(rows.values().cloned());
        }
        let mut digests: Vec<RunningView> = match of_image.as_slice() {
            [] => Vec::new(),
            [one] => one
                .digests
                .iter()
                .map(|(digest, by)| {
                    running(
                        image,
                        digest,
                        &names,
                        by.iter().map(|(c, h)| (c.as_str(), *h)),
                    )
                })
                .collect(),
            // Targets that named the pipeline and targets that did not: a cluster may have
            // both, so merge by cluster.
            several => {
                let mut merged: BTreeMap<&str, BTreeMap<&str, Held>> = BTreeMap::new();
                for tally in several {
                    for (digest, by) in &tally.digests {
                        let into = merged.entry(digest).or_default();
                        for (cluster, h) in by {
                            let sum = into.entry(cluster).or_insert(Held {
                                targets: 0,
                                first_since_ms: h.first_since_ms,
                            });
                            sum.targets += h.targets;
                            sum.first_since_ms = sum.first_since_ms.min(h.first_since_ms);
                        }
                    }
                }
                merged
                    .into_iter()
                    .map(|(digest, by)| running(image, digest, &names, by.into_iter()))
                    .collect()
            }
        };
        digests.sort_by(|a, b| {
            b.cluster_indexes
                .len()
                .cmp(&a.cluster_indexes.len())
                .then(a.digest.cmp(&b.digest))
        });
        out.running.extend(digests);
    }
    out.rows
        .sort_by(|a, b| (&a.cluster, &a.target).cmp(&(&b.cluster, &b.target)));
    out.clusters = per_cluster
        .into_iter()
        .map(|(cluster, n)| {
            let info = clusters.get(cluster);
            ClusterSummaryView {
                cluster: cluster.to_string(),
                cursor: info.map_or(0, |c| c.cursor),
                lag: 0,
                connected: info.is_some_and(|c| c.connected),
                reported_at_ms: info.map_or(0, |c| c.reported_at_ms),
                targets: n.targets,
                failing: n.failing,
            }
        })
        .collect();
    out
}

/// Per cluster, by name, its targets of `images` in the ring. When the pipeline lists every
/// image the ring's targets have (the usual case) and one source holds them, that is the
/// ring's own per-cluster count; otherwise the images' counts are summed.
fn cluster_counts<'a>(tallies: &[&'a RingTally], images: &[String]) -> Vec<(&'a str, Counts)> {
    let listed: HashSet<&str> = images.iter().map(String::as_str).collect();
    let every_image_listed = tallies
        .iter()
        .all(|r| r.images.keys().all(|i| listed.contains(i.as_str())));
    if let ([one], true) = (tallies, every_image_listed) {
        return one.clusters.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    }
    let mut sums: BTreeMap<&str, Counts> = BTreeMap::new();
    for tally in tallies {
        for (image, of_image) in &tally.images {
            if !listed.contains(image.as_str()) {
                continue;
            }
            for (cluster, n) in &of_image.clusters {
                let sum = sums.entry(cluster).or_default();
                sum.targets += n.targets;
                sum.failing += n.failing;
            }
        }
    }
    sums.into_iter().collect()
}

/// The running view of `digest` of `image` from its clusters and what each holds, by name in
/// ascending order. `names` is the ring's clusters by name (every one of `by_cluster` is among
/// them), so one walk down it finds each cluster's position: a binary search per cluster cost
/// nine name comparisons where this costs about one (profile 5 in BENCHMARKS.md).
fn running<'a>(
    image: &str,
    digest: &str,
    names: &[&str],
    by_cluster: impl Iterator<Item = (&'a str, Held)>,
) -> RunningView {
    let mut view = RunningView {
        image: image.to_string(),
        digest: digest.to_string(),
        since_ms: i64::MAX,
        ..Default::default()
    };
    let mut at = 0;
    for (cluster, held) in by_cluster {
        while names.get(at).is_some_and(|n| *n != cluster) {
            at += 1;
        }
        debug_assert!(at < names.len(), "cluster {cluster} is counted in the ring");
        view.cluster_indexes.push(at as u32);
        view.targets += held.targets;
        view.since_ms = view.since_ms.min(held.first_since_ms);
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::service::report_index::test_target as t;

    #[test]
    fn a_cluster_shows_under_each_digest_it_runs_and_counts_its_failures() {
        let mut index = Index::default();
        let targets = [
            t("a", "1", "web", "d1", 30, ""),
            t("a", "2", "web", "d2", 20, "ImagePullBackOff"),
            t("a", "3", "api", "d9", 5, ""),
            t("b", "1", "web", "d1", 10, ""),
            t("c", "1", "web", "d1", 50, ""),
            t("d", "1", "unlisted", "d1", 1, "x"),
        ];
        for x in &targets {
            index.insert(x.clone());
        }
        // b's second target named no pipeline: it counts for every pipeline listing web.
        let mut unnamed = ReportedTarget::clone(&t("b", "2", "web", "d1", 40, ""));
        unnamed.pipeline.clear();
        index.insert(Arc::new(unnamed));
        let info = |name: &str, cursor, connected| ClusterInfo {
            name: name.into(),
            token: "agent".into(),
            cursor,
            reported_at_ms: 99,
            connected,
        };
        let clusters: HashMap<String, ClusterInfo> = [info("a", 8, true), info("b", 10, false)]
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let images = ["web".to_string(), "api".to_string()];
        let got = summarise(&index, "shop", "testers", &images, &clusters, false);
        let rows: Vec<(&str, &str)> = got
            .rows
            .iter()
            .map(|t| (t.cluster.as_str(), t.target.as_str()))
            .collect();
        assert_eq!(rows, [("a", "2")], "the failing target of a listed image");
        let all = summarise(&index, "shop", "testers", &images, &clusters, true);
        let rows: Vec<(&str, &str)> = all
            .rows
            .iter()
            .map(|t| (t.cluster.as_str(), t.target.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("a", "1"),
                ("a", "2"),
                ("a", "3"),
                ("b", "1"),
                ("b", "2"),
                ("c", "1")
            ],
            "every target of a listed image, by cluster and target"
        );
        let running: Vec<(&str, &str, Vec<&str>, i64, u32)> = got
            .running
            .iter()
            .map(|r| {
                let names = r.cluster_names(&got.clusters).collect();
                (
                    r.image.as_str(),
                    r.digest.as_str(),
                    names,
                    r.since_ms,
                    r.targets,
                )
            })
            .collect();
        assert_eq!(
            running,
            [
                ("web", "d1", vec!["a", "b", "c"], 10, 4),
                ("web", "d2", vec!["a"], 20, 1),
                ("api", "d9", vec!["a"], 5, 1),
            ]
        );
        let summaries: Vec<(&str, u64, bool, i64, u32, u32)> = got
            .clusters
            .iter()
            .map(|s| {
                (
                    s.cluster.as_str(),
                    s.cursor,
                    s.connected,
                    s.reported_at_ms,
                    s.targets,
                    s.failing,
                )
            })
            .collect();
        assert_eq!(
            summaries,
            [
                ("a", 8, true, 99, 3, 1),
                ("b", 10, false, 99, 2, 0),
                ("c", 0, false, 0, 1, 0),
            ],
            "c has no cluster record: cursor 0, never reported"
        );
        // The targets that named no pipeline alone: one source, every image listed, so the
        // ring's own per-cluster counts answer.
        let unnamed = summarise(&index, "", "testers", &images, &clusters, false);
        let counts: Vec<(&str, u32)> = unnamed
            .clusters
            .iter()
            .map(|s| (s.cluster.as_str(), s.targets))
            .collect();
        assert_eq!(counts, [("b", 1)]);
        assert_eq!(
            unnamed.running[0]
                .cluster_names(&unnamed.clusters)
                .collect::<Vec<_>>(),
            ["b"]
        );
    }
}
