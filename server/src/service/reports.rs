//! STAND-IN for helper K's cluster reports (replaced when wt-K is merged): the API rings code
//! is written against, answering "no reports".

use super::Service;

/// A cluster's latest report of one target.
#[derive(Debug, Clone, Default)]
pub struct ReportedTarget {
    /// Cluster name.
    pub cluster: String,
    /// Target key.
    pub target: String,
    /// Image.
    pub image: String,
    /// Digest the target runs.
    pub digest: String,
    /// Ring it follows.
    pub ring: String,
    /// Pipeline.
    pub pipeline: String,
    /// File.
    pub file: String,
    /// Commit.
    pub commit: String,
    /// Pushed at.
    pub pushed_at_ms: i64,
    /// Error.
    pub error: String,
    /// Since when it runs the digest.
    pub since_ms: i64,
    /// Last report.
    pub reported_at_ms: i64,
}

/// A cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterInfo {
    /// Name.
    pub name: String,
    /// Token name.
    pub token: String,
    /// Cursor.
    pub cursor: u64,
    /// Last report.
    pub reported_at_ms: i64,
    /// Holds a stream now.
    pub connected: bool,
}

impl Service {
    /// Latest reports of targets following `ring` of `pipeline`.
    pub fn ring_reports(&self, _pipeline: &str, _ring: &str) -> Vec<ReportedTarget> {
        Vec::new()
    }

    /// Every cluster.
    pub fn clusters(&self) -> Vec<ClusterInfo> {
        Vec::new()
    }

    /// Bumps on each stored report.
    pub fn reports_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reports_tx.subscribe()
    }
}
