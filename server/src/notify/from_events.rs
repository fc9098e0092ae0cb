//! Notifications from the event log: a publish's tag moves of one digest become one
//! `release_published`; every ring move becomes one `ring_moved`. Artifacts (signatures, SBOMs)
//! and pipeline edits notify nothing.

use crate::service::{Event, EventKind};

use super::message::{Notification, What};

/// The notifications `events` (in seq order) make. Consecutive tag moves of one image to one
/// digest are one publish's, so they are one notification listing every tag.
pub fn notifications(events: &[Event]) -> Vec<Notification> {
    let mut out: Vec<Notification> = Vec::new();
    for e in events {
        match &e.kind {
            EventKind::TagMoved(t) => {
                if ferry_proto::release::check(
                    &t.tag,
                    t.artifact_type.as_deref(),
                    t.subject.as_deref(),
                )
                .is_err()
                {
                    continue;
                }
                if let Some(Notification {
                    what:
                        What::ReleasePublished {
                            seq,
                            image,
                            tags,
                            digest,
                            ..
                        },
                    ..
                }) = out.last_mut()
                {
                    if *image == e.image && *digest == t.digest && *seq + 1 == e.seq {
                        tags.push(t.tag.clone());
                        *seq = e.seq;
                        refresh_summary(out.last_mut().expect("just matched"));
                        continue;
                    }
                }
                out.push(Notification::new(
                    // The first event's seq: the same publish gets the same id on a replay.
                    format!("release_published:{}", e.seq),
                    e.published_at_ms,
                    What::ReleasePublished {
                        seq: e.seq,
                        image: e.image.clone(),
                        tags: vec![t.tag.clone()],
                        digest: t.digest.clone(),
                        version: t
                            .labels
                            .get(crate::service::rings::VERSION_LABEL)
                            .cloned()
                            .unwrap_or_default(),
                        labels: t.labels.clone(),
                    },
                ));
            }
            EventKind::RingMoved(r) => out.push(Notification::new(
                format!("ring_moved:{}", e.seq),
                e.published_at_ms,
                What::RingMoved {
                    seq: e.seq,
                    pipeline: r.pipeline.clone(),
                    ring: r.ring.clone(),
                    image: e.image.clone(),
                    digest: r.digest.clone(),
                    previous_digest: r.previous_digest.clone(),
                    tag: r.tag.clone(),
                    version: r.version().to_string(),
                    actor: r.actor.clone(),
                    reason: r.reason.clone(),
                    forced: r.forced,
                },
            )),
            EventKind::PipelineApplied { .. } => {}
        }
    }
    out
}

/// Rebuilds the summary after a tag was added to the notification.
fn refresh_summary(n: &mut Notification) {
    let fresh = Notification::new(n.id.clone(), 0, n.what.clone());
    n.summary = fresh.summary;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::service::TagMove;

    fn moved(seq: u64, tag: &str, digest: &str, artifact: Option<&str>) -> Event {
        Event {
            seq,
            repository: "x.io_5000/app".into(),
            image: "x.io:5000/app".into(),
            published_at_ms: 1000,
            kind: EventKind::TagMoved(TagMove {
                tag: tag.into(),
                digest: digest.into(),
                previous_digest: String::new(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                artifact_type: artifact.map(str::to_string),
                subject: None,
                labels: BTreeMap::from([(
                    "org.opencontainers.image.version".to_string(),
                    "1.2.0".to_string(),
                )]),
            }),
        }
    }

    #[test]
    fn one_publish_of_two_tags_is_one_notification_and_artifacts_none() {
        let events = [
            moved(7, "v1.2.0", "sha256:aa", None),
            moved(8, "latest", "sha256:aa", None),
            moved(9, "sbom", "sha256:bb", Some("application/spdx+json")),
            moved(10, "v1.3.0", "sha256:cc", None),
        ];
        let n = notifications(&events);
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!(n[0].id, "release_published:7");
        let What::ReleasePublished {
            tags, seq, version, ..
        } = &n[0].what
        else {
            panic!("{n:?}")
        };
        assert_eq!(
            (tags.as_slice(), *seq, version.as_str()),
            (
                &["v1.2.0".to_string(), "latest".to_string()][..],
                8,
                "1.2.0"
            )
        );
        assert_eq!(
            n[0].summary,
            "published x.io:5000/app:v1.2.0,latest (1.2.0) → sha256:aa"
        );
        assert_eq!(n[1].id, "release_published:10");
    }
}
