//! Summarising a ring's reports for status: which clusters run which digest of each image, and
//! per cluster how many of its targets fail, in one pass over the ring's reports.
//!
//! At the design load (1,000 clusters × 100 targets) the per-target rows are ~25 MB; the
//! summaries are what a status prints, so GetPipeline sends them and only the failing targets.

use std::collections::HashMap;
use std::sync::Arc;

use super::reports::{ClusterInfo, ReportedTarget};

/// The clusters of one ring whose targets of `image` hold `digest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningView {
    /// The image.
    pub image: String,
    /// What those targets hold; empty when the agent does not know.
    pub digest: String,
    /// The clusters, by name.
    pub clusters: Vec<String>,
    /// The earliest `since_ms` of those targets.
    pub since_ms: i64,
    /// How many targets hold it.
    pub targets: u32,
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

/// Summarises `targets` (ordered by cluster, then target, as the report index keeps them) of
/// the images in `images`: running digests in `images` order (most clusters first), clusters by
/// name. Leaves in `targets` those of listed images that fail, or all of them with `keep_all`.
///
/// One pass and one hash per target: at 100,000 targets the cost is memory, not arithmetic.
pub(super) fn summarise(
    targets: &mut Vec<Arc<ReportedTarget>>,
    images: &[String],
    clusters: &HashMap<String, ClusterInfo>,
    head: u64,
    keep_all: bool,
) -> (Vec<RunningView>, Vec<ClusterSummaryView>) {
    let order: HashMap<&str, usize> = images
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    // Per image, its digests' running views: an image has a few digests at once, so a scan
    // beats a second hash.
    let mut running: Vec<Vec<RunningView>> = vec![Vec::new(); images.len()];
    let mut summaries: Vec<ClusterSummaryView> = Vec::new();
    targets.retain(|t| {
        let Some(&i) = order.get(t.image.as_str()) else {
            return false;
        };
        let digests = &mut running[i];
        let r = match digests.iter().position(|r| r.digest == t.digest) {
            Some(at) => &mut digests[at],
            None => {
                digests.push(RunningView {
                    image: t.image.clone(),
                    digest: t.digest.clone(),
                    since_ms: t.since_ms,
                    ..Default::default()
                });
                digests.last_mut().expect("pushed")
            }
        };
        // Targets come cluster by cluster: a cluster is new to this digest when it is not the
        // last one pushed.
        if r.clusters.last() != Some(&t.cluster) {
            r.clusters.push(t.cluster.clone());
        }
        r.since_ms = r.since_ms.min(t.since_ms);
        r.targets += 1;
        if summaries.last().map(|s| &s.cluster) != Some(&t.cluster) {
            let info = clusters.get(&t.cluster);
            let cursor = info.map_or(0, |c| c.cursor);
            summaries.push(ClusterSummaryView {
                cluster: t.cluster.clone(),
                cursor,
                lag: head.saturating_sub(cursor),
                connected: info.is_some_and(|c| c.connected),
                reported_at_ms: info.map_or(t.reported_at_ms, |c| c.reported_at_ms),
                ..Default::default()
            });
        }
        let s = summaries.last_mut().expect("pushed above");
        s.targets += 1;
        let failing = !t.error.is_empty();
        s.failing += u32::from(failing);
        keep_all || failing
    });
    let running = running
        .into_iter()
        .flat_map(|mut digests| {
            digests.sort_by(|a, b| {
                b.clusters
                    .len()
                    .cmp(&a.clusters.len())
                    .then(a.digest.cmp(&b.digest))
            });
            digests
        })
        .collect();
    (running, summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(
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
            error: error.into(),
            since_ms: since,
            reported_at_ms: 7,
            ..Default::default()
        })
    }

    #[test]
    fn a_cluster_shows_under_each_digest_it_runs_and_counts_its_failures() {
        let targets = [
            t("a", "1", "web", "d1", 30, ""),
            t("a", "2", "web", "d2", 20, "ImagePullBackOff"),
            t("a", "3", "api", "d9", 5, ""),
            t("b", "1", "web", "d1", 10, ""),
            t("b", "2", "web", "d1", 40, ""),
            t("c", "1", "web", "d1", 50, ""),
        ];
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
        let mut kept = targets.to_vec();
        kept.push(t("d", "1", "unlisted", "d1", 1, "x"));
        let (running, summaries) = summarise(&mut kept, &images, &clusters, 10, false);
        let kept: Vec<(&str, &str)> = kept
            .iter()
            .map(|t| (t.cluster.as_str(), t.target.as_str()))
            .collect();
        assert_eq!(kept, [("a", "2")], "the failing target of a listed image");
        let mut all = targets.to_vec();
        summarise(&mut all, &images, &clusters, 10, true);
        assert_eq!(all.len(), targets.len());
        let got: Vec<(&str, &str, Vec<&str>, i64, u32)> = running
            .iter()
            .map(|r| {
                let names = r.clusters.iter().map(String::as_str).collect();
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
            got,
            [
                ("web", "d1", vec!["a", "b", "c"], 10, 4),
                ("web", "d2", vec!["a"], 20, 1),
                ("api", "d9", vec!["a"], 5, 1),
            ]
        );
        let got: Vec<(&str, u64, u64, bool, i64, u32, u32)> = summaries
            .iter()
            .map(|s| {
                let c = s.cluster.as_str();
                (
                    c,
                    s.cursor,
                    s.lag,
                    s.connected,
                    s.reported_at_ms,
                    s.targets,
                    s.failing,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", 8, 2, true, 99, 3, 1),
                ("b", 10, 0, false, 99, 2, 0),
                ("c", 0, 10, false, 7, 1, 0),
            ],
            "c has no cluster record: cursor 0, its targets' report time"
        );
    }
}
