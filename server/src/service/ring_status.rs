//! Reading rings: a pipeline's status (GetPipeline), the pointers agents reconcile to
//! (ListRings), and rejecting a digest.
//!
//! Status is assembled from memory: the ring state, the catalog's labels and the tallies the
//! report index keeps per (pipeline, ring, image) (`ring_summary`), so its cost is the size of
//! the answer, not the number of targets; per-target rows are only the failing ones unless
//! asked for, and a gate reads only its image's reports. Only the history, when asked for, is
//! read from the store (one query per pipeline).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ferry_proto::names::validate_digest;

use super::catalog::Catalog;
use super::gates::{evaluate, GateEval, GateQuery};
use super::pipelines::{Gate, PipelineSpec};
use super::reports::{ClusterInfo, ReportedTarget};
use super::ring_state::{manifest, RingPipeline, RingState};
use super::ring_summary::{summarise, ClusterSummaryView, RingSummary, RunningView};
use super::rings::{normalise_image, ANTE, POST};
use super::{Service, ServiceError};
use crate::store::{now_ms, StoredHistory, StoredRejection};

/// Most history rows a status carries per pipeline.
const HISTORY_ROWS: usize = 10_000;

/// One ring pointer with the labels of its digest.
#[derive(Debug, Clone)]
pub struct PointerView {
    /// Pipeline.
    pub pipeline: String,
    /// Ring.
    pub ring: String,
    /// Image.
    pub image: String,
    /// Digest.
    pub digest: String,
    /// A tag of the digest, or empty.
    pub tag: String,
    /// The digest's labels.
    pub labels: BTreeMap<String, String>,
    /// The digest's media type.
    pub media_type: String,
    /// When it was set.
    pub since_ms: i64,
    /// The RING_MOVED event that set it.
    pub seq: u64,
}

/// One ring of a pipeline's status.
#[derive(Debug, Clone, Default)]
pub struct RingView {
    /// ante, a user ring, post.
    pub name: String,
    /// Its pointers, in the spec's image order.
    pub pointers: Vec<PointerView>,
    /// Its gate (user rings with one).
    pub gate: Option<Gate>,
    /// The gate for the previous ring's digest of the root (or first) image.
    pub gate_status: Option<GateEval>,
    /// Why autoPromote is held; empty when not.
    pub hold: String,
    /// Latest reports of targets following this ring: the failing ones, or every one when
    /// asked for.
    pub clusters: Vec<Arc<ReportedTarget>>,
    /// Which clusters run which digest of each image.
    pub running: Vec<RunningView>,
    /// The clusters following this ring, by name.
    pub cluster_summaries: Vec<ClusterSummaryView>,
    /// image → its history in this ring, when asked for.
    pub history: BTreeMap<String, Vec<StoredHistory>>,
    /// Rejected digests this ring runs.
    pub rejected_running: Vec<String>,
}

/// A pipeline's status.
#[derive(Debug, Clone)]
pub struct PipelineView {
    /// The spec.
    pub spec: PipelineSpec,
    /// Its generation.
    pub generation: u64,
    /// ante first, post last.
    pub rings: Vec<RingView>,
    /// Rejections of the pipeline's images.
    pub rejected: Vec<StoredRejection>,
    /// The head of the log the view is consistent with.
    pub head_seq: u64,
    /// Clusters by name (cursor, connected), shared by every ring's reports.
    pub clusters: Arc<HashMap<String, ClusterInfo>>,
}

fn pointer_view(
    catalog: &Catalog,
    pipeline: &str,
    ring: &str,
    image: &str,
    p: &super::ring_state::Pointer,
) -> PointerView {
    let m = manifest(catalog, image, &p.digest);
    PointerView {
        pipeline: pipeline.to_string(),
        ring: ring.to_string(),
        image: image.to_string(),
        digest: p.digest.clone(),
        tag: p.tag.clone(),
        labels: m.map(|m| m.labels.clone()).unwrap_or_default(),
        media_type: m.map(|m| m.media_type.clone()).unwrap_or_default(),
        since_ms: p.since_ms,
        seq: p.seq,
    }
}

impl Service {
    /// The status of pipeline `name_or_image`, or of every pipeline listing that image (first
    /// by name first). `targets`: every target's report in [`RingView::clusters`], not only
    /// the failing ones. Blocking when `history` (SQLite).
    pub fn pipeline_status(
        &self,
        name_or_image: &str,
        history: bool,
        targets: bool,
    ) -> Result<Vec<PipelineView>, ServiceError> {
        let names: Vec<String> = {
            let st = self.rings_read();
            if st.pipelines.contains_key(name_or_image) {
                vec![name_or_image.to_string()]
            } else {
                let image = normalise_image(name_or_image).map_err(|_| {
                    ServiceError::RingUnknown(format!(
                        "{name_or_image:?} is neither a pipeline nor an image; `ferry pipeline list` shows the pipelines"
                    ))
                })?;
                let names: Vec<String> = st
                    .pipelines_listing(&image)
                    .iter()
                    .map(|p| p.spec.name.clone())
                    .collect();
                if names.is_empty() {
                    return Err(ServiceError::RingUnknown(format!(
                        "no pipeline is named {name_or_image:?} or lists image {image}"
                    )));
                }
                names
            }
        };
        let clusters: Arc<HashMap<String, ClusterInfo>> = Arc::new(
            self.clusters()
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect(),
        );
        names
            .iter()
            .map(|n| self.one_status(n, history, targets, clusters.clone()))
            .collect()
    }

    fn one_status(
        &self,
        name: &str,
        history: bool,
        all_targets: bool,
        clusters: Arc<HashMap<String, ClusterInfo>>,
    ) -> Result<PipelineView, ServiceError> {
        let spec = match self.rings_read().pipelines.get(name) {
            Some(p) => p.spec.clone(),
            None => {
                return Err(ServiceError::RingUnknown(format!(
                    "no pipeline named {name:?}"
                )))
            }
        };
        // Reports first, outside the ring and catalog locks: they come from another lock,
        // which a report holds to write while it may wait for neither.
        let rings_of = spec.all_rings();
        let mut summaries: HashMap<&str, RingSummary> = {
            let index = self.reports.index();
            rings_of
                .iter()
                .map(|r| {
                    let s = summarise(&index, name, r, &spec.images, &clusters, all_targets);
                    (*r, s)
                })
                .collect()
        };
        let gate_reports: HashMap<&str, Vec<Arc<ReportedTarget>>> = rings_of
            .iter()
            .map(|r| (*r, self.image_reports(name, r, &[spec.gate_image()])))
            .collect();
        let mut rows: BTreeMap<(String, String), Vec<StoredHistory>> = BTreeMap::new();
        if history {
            for h in self.store.ring_history(name, HISTORY_ROWS)? {
                rows.entry((h.ring.clone(), h.image.clone()))
                    .or_default()
                    .push(h);
            }
        }
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let st = self.rings_read();
        let head_seq = self.head_seq();
        let Some(p) = st.pipelines.get(name) else {
            return Err(ServiceError::RingUnknown(format!(
                "no pipeline named {name:?}"
            )));
        };
        let now = now_ms();
        let mut rings = Vec::new();
        for ring in spec.all_rings() {
            let mut view = RingView {
                name: ring.to_string(),
                ..Default::default()
            };
            for image in &spec.images {
                if let Some(ptr) = st.pointer(name, ring, image) {
                    if st.rejection(image, &ptr.digest).is_some() {
                        view.rejected_running.push(ptr.digest.clone());
                    }
                    view.pointers
                        .push(pointer_view(&catalog, name, ring, image, ptr));
                }
                if let Some(h) = rows.remove(&(ring.to_string(), image.clone())) {
                    view.history.insert(image.clone(), h);
                }
            }
            if ring != ANTE && ring != POST {
                let gate = spec.gate(ring);
                view.gate = Some(gate);
                view.gate_status = Some(gate_status(p, &st, ring, &gate, &gate_reports, now));
                if let Some(h) = st.holds.get(&(name.to_string(), ring.to_string())) {
                    view.hold = h.reason.clone();
                }
            }
            rings.push(view);
        }
        for view in &mut rings {
            let summary = summaries.remove(view.name.as_str()).unwrap_or_default();
            view.running = summary.running;
            view.cluster_summaries = summary.clusters;
            for c in &mut view.cluster_summaries {
                c.lag = head_seq.saturating_sub(c.cursor);
            }
            view.clusters = summary.rows;
        }
        let rejected = st
            .rejections
            .values()
            .filter(|r| spec.lists(&r.image))
            .cloned()
            .collect();
        Ok(PipelineView {
            generation: p.generation,
            spec,
            rings,
            rejected,
            head_seq,
            clusters,
        })
    }

    /// Every pointer of the images `wanted` accepts, in the current specs, with the head seq.
    pub fn ring_pointers(&self, wanted: impl Fn(&str) -> bool) -> (u64, Vec<PointerView>) {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let st = self.rings_read();
        let head = self.head_seq();
        let mut out = Vec::new();
        for p in st.pipelines.values() {
            let spec = &p.spec;
            for ring in spec.all_rings() {
                for image in spec.images.iter().filter(|i| wanted(i)) {
                    if let Some(ptr) = st.pointer(&spec.name, ring, image) {
                        out.push(pointer_view(&catalog, &spec.name, ring, image, ptr));
                    }
                }
            }
        }
        (head, out)
    }

    /// Pipelines, by name.
    pub fn pipelines(&self) -> Vec<RingPipeline> {
        self.rings_read().pipelines.values().cloned().collect()
    }

    /// Marks `digest` of `image` as never to enter a ring again; returns the rejection and the
    /// pointers that run it now. Blocking (SQLite).
    pub fn reject(
        &self,
        image: &str,
        digest: &str,
        reason: &str,
        actor: &str,
    ) -> Result<(StoredRejection, Vec<PointerView>), ServiceError> {
        let image = normalise_image(image)?;
        validate_digest(digest)
            .map_err(|e| ServiceError::RingInvalid(format!("digest {digest:?}: {e}")))?;
        if reason.trim().is_empty() {
            return Err(ServiceError::RingInvalid(
                "reject needs --reason TEXT: everyone who meets the rejection is told why".into(),
            ));
        }
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        {
            let catalog = self.catalog.read().expect("catalog lock poisoned");
            let m = manifest(&catalog, &image, digest).ok_or_else(|| {
                ServiceError::RingUnknown(format!(
                    "{digest} is not a published manifest of {image}; only published releases can be rejected"
                ))
            })?;
            if let Err(why) =
                ferry_proto::release::check("", m.artifact_type.as_deref(), m.subject.as_deref())
            {
                return Err(ServiceError::RingInvalid(format!(
                    "{image}@{digest} is not a release ({why}); only releases can be rejected"
                )));
            }
        }
        let stored = self.store.reject(&StoredRejection {
            image: image.clone(),
            digest: digest.to_string(),
            reason: reason.trim().to_string(),
            actor: actor.to_string(),
            at_ms: now_ms(),
        })?;
        self.rings_write()
            .rejections
            .insert((image.clone(), digest.to_string()), stored.clone());
        tracing::info!(%image, %digest, %actor, "digest rejected");
        let (_, running) = self.ring_pointers(|i| i == image);
        let running = running.into_iter().filter(|p| p.digest == digest).collect();
        Ok((stored, running))
    }
}

/// The gate of `ring` for what the previous ring runs of the root (or first) image.
fn gate_status(
    p: &RingPipeline,
    st: &RingState,
    ring: &str,
    gate: &Gate,
    reports: &HashMap<&str, Vec<Arc<ReportedTarget>>>,
    now: i64,
) -> GateEval {
    let spec = &p.spec;
    let previous = spec.previous_ring(ring).unwrap_or(ANTE);
    let image = spec.gate_image().to_string();
    let Some(src) = st.pointer(&spec.name, previous, &image) else {
        return GateEval {
            open: false,
            why_closed: format!("ring {previous} holds nothing for {image}: nothing to promote"),
            ..Default::default()
        };
    };
    let members = [(image.clone(), src.digest.clone())];
    let none = Vec::new();
    evaluate(
        gate,
        &GateQuery {
            pipeline: &spec.name,
            ring,
            previous,
            members: &members,
            reports: reports.get(previous).unwrap_or(&none),
            entered_previous_ms: Some(src.since_ms),
            now_ms: now,
        },
    )
}
