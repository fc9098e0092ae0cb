//! Folding stream items into what the agent knows: tag moves into the tag table, ring moves
//! into the ring table, snapshots replacing the tags, and which targets a batch concerns.

use std::collections::{BTreeSet, HashMap};

use ferry_proto::pb::{self, subscribe_response::Item};

use crate::apply::{Known, TagInfo, TagTable};
use crate::cursor::Cursor;
use crate::targets::Target;

/// The table entry for a tag as the server describes it.
fn tag_info(
    digest: &str,
    seq: u64,
    labels: &HashMap<String, String>,
    artifact_type: &str,
    subject: &str,
    published_at_ms: i64,
) -> TagInfo {
    TagInfo {
        published_at_ms,
        digest: digest.to_string(),
        seq,
        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        artifact_type: artifact_type.to_string(),
        subject: subject.to_string(),
    }
}

/// Records a listed or snapshotted tag. Artifacts are recorded too: planning passes them over
/// and says why, once.
pub(crate) fn record_state(table: &mut TagTable, t: &pb::TagState) {
    let info = tag_info(
        &t.digest,
        t.seq,
        &t.labels,
        &t.artifact_type,
        &t.subject,
        t.published_at_ms,
    );
    table
        .entry(t.image.clone())
        .or_default()
        .insert(t.tag.clone(), info);
}

/// Records a tag moved by an event.
fn record_event(table: &mut TagTable, e: &pb::Event) {
    let info = tag_info(
        &e.digest,
        e.seq,
        &e.labels,
        &e.artifact_type,
        &e.subject,
        e.published_at_ms,
    );
    table
        .entry(e.image.clone())
        .or_default()
        .insert(e.tag.clone(), info);
}

/// The images a batch of events moved, by what moved: tag moves concern tag targets only, ring
/// moves ring targets only.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub(crate) tags: BTreeSet<String>,
    pub(crate) rings: BTreeSet<String>,
}

impl Touched {
    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.rings.is_empty()
    }

    pub(crate) fn covers(&self, t: &Target) -> bool {
        let moved = if t.spec.ring.is_some() {
            &self.rings
        } else {
            &self.tags
        };
        moved.contains(&t.spec.image.to_string())
    }
}

/// What a batch of stream items changed.
pub(crate) struct Batch {
    /// Images with moved tags and ring pointers.
    pub(crate) touched: Touched,
    /// A snapshot replaced the table: every target needs applying.
    pub(crate) full: bool,
    /// The seq to move the cursor to once applied.
    pub(crate) last_seq: Option<u64>,
}

/// Folds `items` into `known`. A heartbeat in a batch without events moves the cursor at once
/// (nothing to apply first). `PIPELINE_APPLIED` events (no image) and tag deletions change
/// nothing but the cursor.
pub(crate) fn fold_batch(
    items: Vec<pb::SubscribeResponse>,
    known: &mut Known,
    cursor: &mut Cursor,
) -> anyhow::Result<Batch> {
    let mut batch = Batch {
        touched: Touched::default(),
        full: false,
        last_seq: None,
    };
    for item in items.into_iter().filter_map(|r| r.item) {
        match item {
            Item::Event(e) => {
                if e.kind == pb::EventKind::TagMoved as i32 {
                    record_event(&mut known.tags, &e);
                    batch.touched.tags.insert(e.image.clone());
                } else if known.rings.record_event(&e) {
                    batch.touched.rings.insert(e.image.clone());
                }
                batch.last_seq = Some(e.seq);
            }
            Item::Heartbeat(h) => {
                if batch.last_seq.is_none() && batch.touched.is_empty() {
                    cursor.advance(h.head_seq)?;
                }
            }
            Item::Snapshot(s) => {
                known.tags.clear();
                for t in &s.tags {
                    record_state(&mut known.tags, t);
                }
                batch.full = true;
                batch.last_seq = Some(s.as_of_seq);
            }
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rings::RingTable;

    const IMAGE: &str = "registry.example.com/app";

    fn event(seq: u64, kind: pb::EventKind, image: &str) -> pb::SubscribeResponse {
        pb::SubscribeResponse {
            item: Some(Item::Event(pb::Event {
                seq,
                kind: kind as i32,
                image: image.into(),
                tag: "1.0.0".into(),
                pipeline: "shop".into(),
                ring: if kind == pb::EventKind::RingMoved {
                    "testers".into()
                } else {
                    String::new()
                },
                digest: format!("sha256:{seq:064x}"),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn tag_and_ring_moves_touch_their_own_targets_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut cursor = Cursor::load(dir.path(), "ferry").unwrap();
        let mut known = Known {
            rings: RingTable::from_list(&pb::ListRingsResponse {
                head_seq: 4,
                ..Default::default()
            }),
            ..Known::default()
        };
        let items = vec![
            event(3, pb::EventKind::RingMoved, IMAGE), // listed already: skipped
            event(5, pb::EventKind::TagMoved, IMAGE),
            event(6, pb::EventKind::PipelineApplied, ""),
        ];
        let batch = fold_batch(items, &mut known, &mut cursor).unwrap();
        assert_eq!(batch.touched.tags, BTreeSet::from([IMAGE.to_string()]));
        assert!(batch.touched.rings.is_empty());
        assert_eq!(
            batch.last_seq,
            Some(6),
            "every event moves the cursor once applied"
        );
        assert!(known.tags[IMAGE].contains_key("1.0.0"));

        let batch = fold_batch(
            vec![event(7, pb::EventKind::RingMoved, IMAGE)],
            &mut known,
            &mut cursor,
        )
        .unwrap();
        assert!(batch.touched.tags.is_empty());
        assert_eq!(batch.touched.rings, BTreeSet::from([IMAGE.to_string()]));
        assert_eq!(cursor.seq(), 0, "the cursor moves only after applying");
    }
}
