//! The domain layer: what ferry does, independent of HTTP and gRPC.
//!
//! Direction: `registry/` and `grpc/` (protocols) → `service` → `store/` (SQLite). Reads are
//! answered from the in-memory [`catalog`] and ring state; writes (publishes and ring moves) go
//! through the store first, then memory, then the event fan-out, in that order, under one lock,
//! so seq order is commit order.
//!
//! Rings: [`pipelines`] (specs), [`rings`] (the move verbs), [`gates`], [`auto_promote`],
//! `ring_state` (memory) and `ring_status` (GetPipeline, ListRings, reject); [`reports`] holds
//! what clusters run, indexed and tallied per (pipeline, ring, image) in `report_index`, and
//! `ring_summary` reads those tallies for a status; [`browse`] holds the dashboard's read models.

pub mod auth;
pub mod auto_promote;
pub mod browse;
pub mod catalog;
mod error;
mod events;
pub mod gates;
pub mod pipelines;
mod publish;
mod reads;
mod report_index;
pub mod reports;
mod ring_state;
mod ring_status;
mod ring_summary;
pub mod rings;
#[cfg(test)]
mod rings_tests;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use ferry_proto::manifest::ManifestInfo;

use crate::metrics::Metrics;
use crate::store::{ManifestRecord, Store};
use catalog::{BlobMeta, Catalog, ManifestEntry, Origin, RepoView, TagEntry};

pub use error::ServiceError;
pub use events::{CurrentTag, Event, EventBatch, EventKind, RingMove, TagMove};
pub use publish::{Content, PublishInput, PublishOutcome};
pub use reads::{BlobAnswer, Referrer};
pub use reports::{
    ClusterConnection, ClusterInfo, ReportInput, ReportOutcome, ReportedTarget, TargetInput,
};
pub use ring_status::{PipelineView, PointerView, RingView};
pub use ring_summary::{ClusterSummaryView, RunningView};
pub use rings::PromoteInput;

/// Size caps on published content.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Largest stored blob (config) accepted, in bytes.
    pub max_blob_bytes: usize,
    /// Most tags one publish may move.
    pub max_tags_per_publish: usize,
    /// Most child manifests an index may carry.
    pub max_children: usize,
    /// Most labels a release may carry (the config's and the publisher's together): every event
    /// of the release carries them to every subscriber.
    pub max_labels: usize,
    /// Publishes a live subscriber may fall behind before it is moved back to log replay. The
    /// live fan-out holds this many batches; bounding it bounds memory whatever clients do.
    pub live_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 1024 * 1024,
            max_tags_per_publish: 100,
            max_children: 256,
            max_labels: 256,
            live_buffer: 4096,
        }
    }
}

/// The ferry service: store, in-memory catalog and event fan-out.
pub struct Service {
    store: Arc<Store>,
    catalog: RwLock<Catalog>,
    /// Serialises publishes so the store commit, the catalog update and the broadcast happen in
    /// seq order.
    publish_lock: Mutex<()>,
    live: broadcast::Sender<EventBatch>,
    head_seq: AtomicU64,
    /// Pipelines, ring pointers, holds and rejections (updated under the publish lock).
    rings: RwLock<ring_state::RingState>,
    /// How many times a subscriber fell behind the live buffer and was replayed from the log.
    lag_replays: AtomicU64,
    limits: Limits,
    /// Cluster reports, indexed by (pipeline, ring), and open streams by cluster.
    reports: reports::Reports,
    /// Prometheus metrics: the one registry of the process.
    metrics: Arc<Metrics>,
}

impl Service {
    /// Loads the catalog from `store`.
    pub fn load(store: Arc<Store>, limits: Limits) -> Result<Self, ServiceError> {
        let state = store.load_state()?;
        let mut catalog = Catalog::default();
        for r in state.repositories {
            catalog.repos.insert(
                r.name,
                RepoView {
                    image: r.image,
                    ..Default::default()
                },
            );
        }
        for m in state.manifests {
            let Some(repo) = catalog.repos.get_mut(&m.repository) else {
                continue;
            };
            let (entry, layers) = manifest_entry(
                ManifestRecord {
                    digest: m.digest,
                    media_type: m.media_type,
                    artifact_type: m.artifact_type,
                    subject: m.subject,
                    data: m.data,
                },
                m.labels,
                m.origin.map(Origin::from),
                None,
                m.created_at_ms,
            );
            repo.insert_manifest(entry, layers);
        }
        for b in state.blobs {
            if let Some(repo) = catalog.repos.get_mut(&b.repository) {
                repo.blobs.insert(
                    b.digest,
                    BlobMeta {
                        media_type: b.media_type,
                        size: b.size,
                    },
                );
            }
        }
        for t in state.tags {
            if let Some(repo) = catalog.repos.get_mut(&t.repository) {
                repo.tags.insert(
                    t.tag,
                    TagEntry {
                        digest: t.digest,
                        seq: t.seq,
                        updated_at_ms: t.updated_at_ms,
                    },
                );
            }
        }
        tracing::info!(
            repositories = catalog.repos.len(),
            head_seq = state.head_seq,
            "catalog loaded"
        );
        let rings = ring_state::RingState::load(store.load_rings()?)?;
        let (live, _) = broadcast::channel(limits.live_buffer.max(1));
        let reports = reports::Reports::load(&store)?;
        let metrics = Arc::new(Metrics::new());
        store.time_writes(metrics.store_commit_histogram());
        Ok(Service {
            store,
            catalog: RwLock::new(catalog),
            publish_lock: Mutex::new(()),
            live,
            head_seq: AtomicU64::new(state.head_seq),
            rings: RwLock::new(rings),
            lag_replays: AtomicU64::new(0),
            limits,
            reports,
            metrics,
        })
    }

    /// The metrics every layer records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sets the gauges that mirror state (head seq, each reporting cluster's cursor lag) just
    /// before a scrape encodes them.
    pub fn refresh_metrics(&self) {
        let head = self.head_seq();
        self.metrics.set_head_seq(head);
        self.metrics.set_cluster_lags(
            self.clusters()
                .into_iter()
                .filter(|c| c.reported_at_ms > 0)
                .map(|c| (c.name, head.saturating_sub(c.cursor))),
        );
    }

    /// The store underneath (for replay and health checks).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The seq of the newest event.
    pub fn head_seq(&self) -> u64 {
        self.head_seq.load(Ordering::Acquire)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Builds a catalog entry; returns it with the layer digests it references. `parsed` is the
/// manifest already read by the caller (a publish has just validated it); without it the bytes are
/// parsed here. They were validated at publish, so a parse failure only loses the layer index.
fn manifest_entry(
    m: ManifestRecord,
    labels: std::collections::BTreeMap<String, String>,
    origin: Option<Origin>,
    parsed: Option<&ManifestInfo>,
    created_at_ms: i64,
) -> (ManifestEntry, Vec<String>) {
    let reparsed;
    let info = match parsed {
        Some(i) => Some(i),
        None => {
            reparsed = ManifestInfo::parse(Some(&m.media_type), &m.data).ok();
            reparsed.as_ref()
        }
    };
    let layers = match info.map(|i| &i.kind) {
        Some(ferry_proto::manifest::Kind::Image { layers, .. }) => {
            layers.iter().map(|l| l.digest.clone()).collect()
        }
        _ => Vec::new(),
    };
    let annotations = info.map(|i| i.annotations.clone()).unwrap_or_default();
    (
        ManifestEntry {
            digest: m.digest,
            media_type: m.media_type,
            artifact_type: m.artifact_type,
            subject: m.subject,
            annotations,
            labels,
            data: Bytes::from(m.data),
            origin,
            created_at_ms,
        },
        layers,
    )
}
