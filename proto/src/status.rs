//! Reading a `PipelineStatus` (GetPipeline's answer).

use crate::pb;

/// Fills each `RunningDigest.clusters` with the names its `cluster_indexes` point at in the
/// ring's `cluster_summaries` (the server sends indexes, not names: see `ferry.proto`). An
/// index past the end (a server bug) is skipped, not a panic.
pub fn resolve_cluster_names(status: &mut pb::PipelineStatus) {
    for ring in &mut status.rings {
        let summaries = &ring.cluster_summaries;
        for running in &mut ring.running {
            running.clusters = running
                .cluster_indexes
                .iter()
                .filter_map(|&i| summaries.get(i as usize))
                .map(|s| s.cluster.clone())
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_become_the_names_of_the_rings_clusters() {
        let summary = |name: &str| pb::ClusterSummary {
            cluster: name.into(),
            ..Default::default()
        };
        let mut status = pb::PipelineStatus {
            rings: vec![pb::RingStatus {
                cluster_summaries: vec![summary("a"), summary("b"), summary("c")],
                running: vec![pb::RunningDigest {
                    cluster_indexes: vec![0, 2, 9],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        resolve_cluster_names(&mut status);
        assert_eq!(status.rings[0].running[0].clusters, ["a", "c"]);
    }
}
