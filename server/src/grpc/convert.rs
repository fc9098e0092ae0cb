//! Conversions between protobuf messages and domain types.

use ferry_proto::pb;
use tonic::Status;

use crate::service::{Content, CurrentTag, Event, EventKind, PublishInput};

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
