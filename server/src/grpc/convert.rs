//! Conversions between protobuf messages and domain types.

use ferry_proto::pb;
use tonic::Status;

use crate::service::{Content, CurrentTag, PublishInput};
use crate::store::StoredEvent;

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
    })
}

fn kind(kind: &str) -> pb::EventKind {
    match kind {
        "TAG_MOVED" => pb::EventKind::TagMoved,
        "TAG_DELETED" => pb::EventKind::TagDeleted,
        "RING_MOVED" => pb::EventKind::RingMoved,
        _ => pb::EventKind::Unspecified,
    }
}

/// A stored event as sent on the stream.
pub fn event(e: &StoredEvent) -> pb::Event {
    pb::Event {
        seq: e.seq,
        kind: kind(&e.kind) as i32,
        image: e.image.clone(),
        repository: e.repository.clone(),
        tag: e.tag.clone(),
        digest: e.digest.clone(),
        previous_digest: e.previous_digest.clone(),
        media_type: e.media_type.clone(),
        labels: e.labels.clone().into_iter().collect(),
        published_at_ms: e.created_at_ms,
        ring: String::new(),
        // Filled once the store records them per event (issue 9).
        artifact_type: String::new(),
        subject: String::new(),
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
        artifact_type: String::new(),
        subject: String::new(),
    }
}
