//! Conversions between protobuf messages and domain types.

use ferry_proto::pb;
use tonic::Status;

use std::collections::HashMap;

use crate::service::gates::GateEval;
use crate::service::pipelines::{Gate, PipelineSpec};
use crate::service::reports::{ClusterInfo, ReportedTarget};
use crate::service::rings::{REVISION_LABEL, VERSION_LABEL};
use crate::service::{
    ClusterSummaryView, Content, CurrentTag, Event, EventKind, PipelineView, PointerView,
    PublishInput, RunningView,
};
use crate::store::{StoredHistory, StoredRejection};

fn content(c: pb::Content) -> Content {
    Content {
        digest: c.digest,
        media_type: c.media_type,
        data: c.data,
    }
}

/// Validates the proto-level shape of a publish (required fields present).
pub fn publish_input(req: pb::PublishRequest) -> Result<PublishInput, Status> {
    let manifest = req
        .manifest
        .ok_or_else(|| Status::invalid_argument("publish: the manifest field is required"))?;
    if req.image.is_empty() {
        return Err(Status::invalid_argument(
            "publish: the image field is required (e.g. gcr.io/team/app)",
        ));
    }
    Ok(PublishInput {
        image: req.image,
        manifest: content(manifest),
        children: req.children.into_iter().map(content).collect(),
        blobs: req.blobs.into_iter().map(content).collect(),
        tags: req.tags,
        labels: req.labels.into_iter().collect(),
        origin: req
            .origin
            .filter(|o| !o.registry_url.is_empty())
            .map(|o| (o.registry_url, o.repository)),
        to_ring: req.to_ring,
        pipeline: req.pipeline,
        actor: String::new(),
    })
}

/// A domain event as sent on the stream.
pub fn event(e: &Event) -> pb::Event {
    match &e.kind {
        EventKind::TagMoved(m) => pb::Event {
            seq: e.seq,
            kind: pb::EventKind::TagMoved as i32,
            image: e.image.clone(),
            repository: e.repository.clone(),
            tag: m.tag.clone(),
            digest: m.digest.clone(),
            previous_digest: m.previous_digest.clone(),
            media_type: m.media_type.clone(),
            labels: m.labels.clone().into_iter().collect(),
            published_at_ms: e.published_at_ms,
            ring: String::new(),
            artifact_type: m.artifact_type.clone().unwrap_or_default(),
            subject: m.subject.clone().unwrap_or_default(),
            ..Default::default()
        },
        EventKind::RingMoved(m) => pb::Event {
            seq: e.seq,
            kind: pb::EventKind::RingMoved as i32,
            image: e.image.clone(),
            repository: e.repository.clone(),
            tag: m.tag.clone(),
            digest: m.digest.clone(),
            previous_digest: m.previous_digest.clone(),
            media_type: m.media_type.clone(),
            labels: m.labels.clone().into_iter().collect(),
            published_at_ms: e.published_at_ms,
            ring: m.ring.clone(),
            artifact_type: m.artifact_type.clone().unwrap_or_default(),
            subject: m.subject.clone().unwrap_or_default(),
            pipeline: m.pipeline.clone(),
            actor: m.actor.clone(),
            reason: m.reason.clone(),
            forced: m.forced,
        },
        EventKind::PipelineApplied { pipeline, actor } => pb::Event {
            seq: e.seq,
            kind: pb::EventKind::PipelineApplied as i32,
            published_at_ms: e.published_at_ms,
            pipeline: pipeline.clone(),
            actor: actor.clone(),
            ..Default::default()
        },
    }
}

/// A ring move as Publish and the move verbs list it; None for other events.
pub fn ring_move(e: &Event) -> Option<pb::RingMove> {
    match &e.kind {
        EventKind::RingMoved(m) => Some(pb::RingMove {
            pipeline: m.pipeline.clone(),
            ring: m.ring.clone(),
            image: e.image.clone(),
            digest: m.digest.clone(),
            previous_digest: m.previous_digest.clone(),
            seq: e.seq,
            tag: m.tag.clone(),
            version: m.version().to_string(),
        }),
        _ => None,
    }
}

/// A tag move as the Publish response lists it.
pub fn tag_move(e: &Event) -> Option<pb::TagMove> {
    match &e.kind {
        EventKind::TagMoved(m) => Some(pb::TagMove {
            tag: m.tag.clone(),
            digest: m.digest.clone(),
            previous_digest: m.previous_digest.clone(),
            seq: e.seq,
        }),
        EventKind::RingMoved(_) | EventKind::PipelineApplied { .. } => None,
    }
}

/// A current tag as sent in snapshots and ListTags.
pub fn tag_state(t: CurrentTag) -> pb::TagState {
    pb::TagState {
        image: t.image,
        repository: t.repository,
        tag: t.tag,
        digest: t.digest,
        seq: t.seq,
        media_type: t.media_type,
        labels: t.labels.into_iter().collect(),
        published_at_ms: t.updated_at_ms,
        artifact_type: t.artifact_type.unwrap_or_default(),
        subject: t.subject.unwrap_or_default(),
    }
}

/// A pipeline spec as sent (not yet validated).
pub fn pipeline_spec(s: pb::PipelineSpec) -> PipelineSpec {
    PipelineSpec {
        name: s.name,
        rings: s.rings,
        images: s.images,
        root: s.root,
        gates: s
            .gates
            .into_iter()
            .map(|(ring, g)| {
                (
                    ring,
                    Gate {
                        require_applied: g.require_applied,
                        soak_seconds: g.soak_seconds,
                        auto_promote: g.auto_promote,
                    },
                )
            })
            .collect(),
    }
}

fn gate(g: &Gate) -> pb::Gate {
    pb::Gate {
        require_applied: g.require_applied,
        soak_seconds: g.soak_seconds,
        auto_promote: g.auto_promote,
    }
}

/// A stored pipeline spec, as sent back.
pub fn pb_pipeline_spec(s: &PipelineSpec) -> pb::PipelineSpec {
    pb::PipelineSpec {
        name: s.name.clone(),
        rings: s.rings.clone(),
        images: s.images.clone(),
        root: s.root.clone(),
        gates: s.gates.iter().map(|(r, g)| (r.clone(), gate(g))).collect(),
    }
}

/// A ring pointer as GetPipeline and ListRings send it.
pub fn ring_pointer(p: PointerView) -> pb::RingPointer {
    let label = |k: &str| p.labels.get(k).cloned().unwrap_or_default();
    pb::RingPointer {
        version: label(VERSION_LABEL),
        revision: label(REVISION_LABEL),
        pipeline: p.pipeline,
        ring: p.ring,
        image: p.image,
        digest: p.digest,
        tag: p.tag,
        labels: p.labels.into_iter().collect(),
        since_ms: p.since_ms,
        seq: p.seq,
        media_type: p.media_type,
    }
}

/// A rejection as sent.
pub fn rejection(r: StoredRejection) -> pb::Rejection {
    pb::Rejection {
        image: r.image,
        digest: r.digest,
        reason: r.reason,
        actor: r.actor,
        at_ms: r.at_ms,
    }
}

fn history_entry(h: StoredHistory) -> pb::RingHistoryEntry {
    pb::RingHistoryEntry {
        seq: h.seq,
        digest: h.digest,
        previous_digest: h.previous_digest,
        actor: h.actor,
        reason: h.reason,
        forced: h.forced,
        at_ms: h.at_ms,
    }
}

fn gate_status(g: GateEval) -> pb::GateStatus {
    pb::GateStatus {
        open: g.open,
        why_closed: g.why_closed,
        waiting_for: g.waiting_for,
        soak_left_seconds: g.soak_left_seconds,
        candidate: g.candidate,
    }
}

fn cluster_target(
    t: &ReportedTarget,
    clusters: &HashMap<String, ClusterInfo>,
    head: u64,
) -> pb::ClusterTarget {
    let info = clusters.get(&t.cluster);
    let cursor = info.map_or(0, |c| c.cursor);
    pb::ClusterTarget {
        cursor,
        lag: head.saturating_sub(cursor),
        connected: info.is_some_and(|c| c.connected),
        cluster: t.cluster.clone(),
        target: t.target.clone(),
        image: t.image.clone(),
        digest: t.digest.clone(),
        ring: t.ring.clone(),
        pipeline: t.pipeline.clone(),
        file: t.file.clone(),
        commit: t.commit.clone(),
        pushed_at_ms: t.pushed_at_ms,
        error: t.error.clone(),
        since_ms: t.since_ms,
        reported_at_ms: t.reported_at_ms,
    }
}

fn running_digest(r: RunningView) -> pb::RunningDigest {
    pb::RunningDigest {
        image: r.image,
        digest: r.digest,
        clusters: Vec::new(),
        cluster_indexes: r.cluster_indexes,
        since_ms: r.since_ms,
        targets: r.targets,
    }
}

fn cluster_summary(c: ClusterSummaryView) -> pb::ClusterSummary {
    pb::ClusterSummary {
        cluster: c.cluster,
        cursor: c.cursor,
        lag: c.lag,
        connected: c.connected,
        reported_at_ms: c.reported_at_ms,
        targets: c.targets,
        failing: c.failing,
    }
}

/// A pipeline's status as GetPipeline sends it.
pub fn pipeline_status(v: PipelineView) -> pb::PipelineStatus {
    let head = v.head_seq;
    let clusters = v.clusters;
    pb::PipelineStatus {
        spec: Some(pb_pipeline_spec(&v.spec)),
        generation: v.generation,
        rings: v
            .rings
            .into_iter()
            .map(|r| pb::RingStatus {
                name: r.name,
                pointers: r.pointers.into_iter().map(ring_pointer).collect(),
                gate: r.gate.as_ref().map(gate),
                gate_status: r.gate_status.map(gate_status),
                hold: r.hold,
                clusters: r
                    .clusters
                    .into_iter()
                    .map(|t| cluster_target(&t, &clusters, head))
                    .collect(),
                history: r
                    .history
                    .into_iter()
                    .map(|(image, rows)| {
                        (
                            image,
                            pb::RingHistoryList {
                                entries: rows.into_iter().map(history_entry).collect(),
                            },
                        )
                    })
                    .collect(),
                rejected_running: r.rejected_running,
                running: r.running.into_iter().map(running_digest).collect(),
                cluster_summaries: r
                    .cluster_summaries
                    .into_iter()
                    .map(cluster_summary)
                    .collect(),
            })
            .collect(),
        rejected: v.rejected.into_iter().map(rejection).collect(),
        head_seq: head,
        also: Vec::new(),
    }
}
