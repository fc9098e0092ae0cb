//! Ring pointers as the agent knows them, and which one a ring target follows.
//!
//! The table starts from `ListRings` (a consistent view as of its `head_seq`) and takes every
//! later `RING_MOVED` event of the watched images. The ring is the authority: a move back
//! (rollback, unshift) replaces the pointer like any other move; only an emptied ring leaves
//! the target's file as it is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferry_proto::pb;

use crate::config::RingFollow;

/// The label a ring pointer's version is read from.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// What one (pipeline, ring, image) points at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RingInfo {
    /// Manifest digest; empty when the ring was emptied (unshift of a ring that was empty).
    pub digest: String,
    /// A tag that points (or pointed) at the digest; empty if none.
    pub tag: String,
    /// The digest's `org.opencontainers.image.version` label; empty if none.
    pub version: String,
    /// The event that set it.
    pub seq: u64,
}

/// The pointer a ring target resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The pipeline it is in (the target's `pipeline:`, or the only one with a pointer).
    pub pipeline: &'a str,
    /// The ring.
    pub ring: &'a str,
    /// What it points at (never an empty digest).
    pub info: &'a RingInfo,
}

/// Normalised image → (pipeline, ring) → pointer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingTable {
    images: HashMap<String, BTreeMap<(String, String), RingInfo>>,
    /// Events up to this seq are already reflected (the `ListRings` head): a replayed one
    /// must not move a pointer back to what it was before.
    as_of: u64,
}

impl RingTable {
    /// The table `ListRings` answered.
    pub fn from_list(listed: &pb::ListRingsResponse) -> RingTable {
        let mut table = RingTable {
            images: HashMap::new(),
            as_of: listed.head_seq,
        };
        for p in &listed.pointers {
            let version = if p.version.is_empty() {
                p.labels.get(VERSION_LABEL).cloned().unwrap_or_default()
            } else {
                p.version.clone()
            };
            table.set(
                &p.image,
                &p.pipeline,
                &p.ring,
                RingInfo {
                    digest: p.digest.clone(),
                    tag: p.tag.clone(),
                    version,
                    seq: p.seq,
                },
            );
        }
        table
    }

    /// Records a `RING_MOVED` event. `false` when the table already reflects it (it was listed
    /// after the event) or it is not a ring move: nothing changed.
    pub fn record_event(&mut self, e: &pb::Event) -> bool {
        if e.kind != pb::EventKind::RingMoved as i32 || e.seq <= self.as_of {
            return false;
        }
        let info = RingInfo {
            digest: e.digest.clone(),
            tag: e.tag.clone(),
            version: e.labels.get(VERSION_LABEL).cloned().unwrap_or_default(),
            seq: e.seq,
        };
        self.set(&e.image, &e.pipeline, &e.ring, info);
        true
    }

    fn set(&mut self, image: &str, pipeline: &str, ring: &str, info: RingInfo) {
        self.images
            .entry(image.to_string())
            .or_default()
            .insert((pipeline.to_string(), ring.to_string()), info);
    }

    /// The pointer `follow` selects for `image`: `Ok(None)` when no pipeline's ring holds a
    /// digest for it (the file stays as it is); an error when `follow` names no pipeline and
    /// several pipelines point this ring at the image.
    pub fn resolve(
        &self,
        image: &str,
        follow: &RingFollow,
    ) -> Result<Option<Resolved<'_>>, String> {
        let Some(pointers) = self.images.get(image) else {
            return Ok(None);
        };
        let matching: Vec<Resolved<'_>> = pointers
            .iter()
            .filter(|((pipeline, ring), info)| {
                ring == &follow.ring
                    && !info.digest.is_empty()
                    && follow.pipeline.as_ref().is_none_or(|p| p == pipeline)
            })
            .map(|((pipeline, ring), info)| Resolved {
                pipeline,
                ring,
                info,
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            several => {
                let pipelines: BTreeSet<&str> = several.iter().map(|r| r.pipeline).collect();
                let names: Vec<&str> = pipelines.into_iter().collect();
                Err(format!(
                    "ring {} of {image} is in several pipelines ({}): set pipeline: to one of them",
                    follow.ring,
                    names.join(", ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "registry.example.com/shop/api";

    fn pointer(pipeline: &str, ring: &str, digest: &str, seq: u64) -> pb::RingPointer {
        pb::RingPointer {
            pipeline: pipeline.into(),
            ring: ring.into(),
            image: IMAGE.into(),
            digest: digest.into(),
            tag: format!("t{seq}"),
            labels: [(VERSION_LABEL.to_string(), format!("1.{seq}.0"))].into(),
            seq,
            ..Default::default()
        }
    }

    fn follow(ring: &str, pipeline: Option<&str>) -> RingFollow {
        RingFollow {
            ring: ring.into(),
            pipeline: pipeline.map(str::to_string),
        }
    }

    fn moved(pipeline: &str, ring: &str, digest: &str, seq: u64) -> pb::Event {
        pb::Event {
            seq,
            kind: pb::EventKind::RingMoved as i32,
            image: IMAGE.into(),
            pipeline: pipeline.into(),
            ring: ring.into(),
            digest: digest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_the_one_pipeline_or_names_them_all() {
        let table = RingTable::from_list(&pb::ListRingsResponse {
            head_seq: 9,
            pointers: vec![
                pointer("shop", "testers", "sha256:a", 3),
                pointer("shop", "users", "sha256:b", 4),
                pointer("outlet", "testers", "sha256:c", 5),
            ],
        });
        let err = table.resolve(IMAGE, &follow("testers", None)).unwrap_err();
        assert!(err.contains("several pipelines (outlet, shop)"), "{err}");
        assert!(err.contains("set pipeline:"), "{err}");
        let r = table
            .resolve(IMAGE, &follow("testers", Some("outlet")))
            .unwrap()
            .unwrap();
        assert_eq!((r.pipeline, r.info.digest.as_str()), ("outlet", "sha256:c"));
        // The version comes from the label when the pointer does not say it.
        assert_eq!(r.info.version, "1.5.0");
        let r = table
            .resolve(IMAGE, &follow("users", None))
            .unwrap()
            .unwrap();
        assert_eq!(r.info.digest, "sha256:b");
        assert_eq!(table.resolve(IMAGE, &follow("devs", None)), Ok(None));
        assert_eq!(table.resolve("other", &follow("users", None)), Ok(None));
    }

    #[test]
    fn events_move_pointers_back_and_empty_them_but_replays_do_not() {
        let mut table = RingTable::from_list(&pb::ListRingsResponse {
            head_seq: 10,
            pointers: vec![pointer("shop", "testers", "sha256:new", 10)],
        });
        // Listed after it: a replay must not move the ring back to what it was before.
        assert!(!table.record_event(&moved("shop", "testers", "sha256:old", 8)));
        let at = |t: &RingTable| {
            t.resolve(IMAGE, &follow("testers", None))
                .unwrap()
                .map(|r| r.info.digest.clone())
        };
        assert_eq!(at(&table).as_deref(), Some("sha256:new"));
        // A rollback after the listing moves it back.
        assert!(table.record_event(&moved("shop", "testers", "sha256:old", 11)));
        assert_eq!(at(&table).as_deref(), Some("sha256:old"));
        // Emptied: nothing to write.
        assert!(table.record_event(&moved("shop", "testers", "", 12)));
        assert_eq!(at(&table), None);
        // Tag moves are not ring moves.
        let tag = pb::Event {
            kind: pb::EventKind::TagMoved as i32,
            ..moved("", "", "sha256:x", 13)
        };
        assert!(!table.record_event(&tag));
    }
}
