//! Ring verbs on a real store in a temp dir: publish into ante, promote through the rings,
//! shift and unshift, rollback and holds, rejection, bundles, autoPromote, and a table of
//! refusals that each change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_proto::pb;

use super::pipelines::{normalise, Gate, PipelineSpec};
use super::*;
use crate::store::Store;

const WEB: &str = "registry.example.com/shop/web";
const API: &str = "registry.example.com/shop/api";
const ROOT: &str = "registry.example.com/shop/root";

fn service(dir: &std::path::Path) -> Service {
    Service::load(Arc::new(Store::open(dir).unwrap()), Limits::default()).unwrap()
}

fn input(req: pb::PublishRequest) -> PublishInput {
    let content = |c: pb::Content| Content {
        digest: c.digest,
        media_type: c.media_type,
        data: c.data,
    };
    PublishInput {
        image: req.image,
        manifest: content(req.manifest.unwrap()),
        children: req.children.into_iter().map(content).collect(),
        blobs: req.blobs.into_iter().map(content).collect(),
        tags: req.tags,
        labels: req.labels.into_iter().collect(),
        to_ring: req.to_ring,
        pipeline: req.pipeline,
        actor: "ci".into(),
        ..Default::default()
    }
}

/// Publishes release `n` of `image` with version label `version` (and `labels`); its digest.
fn publish(s: &Service, image: &str, n: u64, version: &str, labels: &[(&str, &str)]) -> String {
    let mut req = ferry_tests::releases::release(image, n, vec![version.to_string()]);
    req.labels
        .insert(rings::VERSION_LABEL.into(), version.to_string());
    for (k, v) in labels {
        req.labels.insert(k.to_string(), v.to_string());
    }
    s.publish(input(req)).unwrap().digest
}

fn apply(s: &Service, name: &str, images: &[&str], root: &str, gates: &[(&str, Gate)]) {
    let spec = normalise(PipelineSpec {
        name: name.into(),
        rings: vec!["dev".into(), "test".into(), "prod".into()],
        images: images.iter().map(|i| i.to_string()).collect(),
        root: root.into(),
        gates: gates.iter().map(|(r, g)| (r.to_string(), *g)).collect(),
    })
    .unwrap();
    s.apply_pipeline(spec, "", "admin").unwrap();
}

fn promote(
    s: &Service,
    image: &str,
    reference: &str,
    ring: &str,
) -> Result<Vec<Event>, ServiceError> {
    s.promote(PromoteInput {
        image: image.into(),
        reference: reference.into(),
        to_ring: ring.into(),
        actor: "alice".into(),
        ..Default::default()
    })
}

/// (ring, image) → digest of pipeline `name`.
fn pointers(s: &Service, name: &str) -> BTreeMap<(String, String), String> {
    let (_, all) = s.ring_pointers(|_| true);
    all.into_iter()
        .filter(|p| p.pipeline == name)
        .map(|p| ((p.ring, p.image), p.digest))
        .collect()
}

fn at(s: &Service, ring: &str, image: &str) -> Option<String> {
    pointers(s, "shop")
        .get(&(ring.to_string(), image.to_string()))
        .cloned()
}

#[test]
fn apply_stores_a_generation_only_when_the_spec_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let spec = |images: &[&str]| {
        normalise(PipelineSpec {
            name: "shop".into(),
            rings: vec!["dev".into()],
            images: images.iter().map(|i| i.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    };
    let a = s.apply_pipeline(spec(&[WEB]), "yaml", "admin").unwrap();
    assert_eq!((a.generation, a.changed, a.seq), (1, true, 1));
    let b = s.apply_pipeline(spec(&[WEB]), "yaml", "admin").unwrap();
    assert_eq!((b.generation, b.changed, b.seq), (1, false, 0));
    let c = s.apply_pipeline(spec(&[WEB, API]), "", "admin").unwrap();
    assert_eq!((c.generation, c.changed, c.seq), (2, true, 2));
    let replayed = s.replay(0, 10).unwrap();
    assert!(
        matches!(&replayed[1].kind, EventKind::PipelineApplied { pipeline, actor } if pipeline == "shop" && actor == "admin")
    );
    // Survives a restart.
    drop(s);
    let s = service(dir.path());
    assert_eq!(s.pipelines()[0].generation, 2);
    assert_eq!(s.pipelines()[0].spec.images, [WEB, API]);
}

#[test]
fn publish_enters_ante_in_its_own_transaction_and_promote_walks_the_rings() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    apply(&s, "shop", &[WEB], "", &[]);
    let mut req = ferry_tests::releases::release(WEB, 1, vec!["1.0.0".into()]);
    req.labels
        .insert(rings::VERSION_LABEL.into(), "1.0.0".into());
    let out = s.publish(input(req)).unwrap();
    let v1 = out.digest.clone();
    assert_eq!(out.events.len(), 2, "one tag move, one ring move");
    assert!(matches!(out.events[0].kind, EventKind::TagMoved(_)));
    let EventKind::RingMoved(m) = &out.events[1].kind else {
        panic!("{:?}", out.events[1]);
    };
    assert_eq!(out.events[1].seq, out.events[0].seq + 1, "gapless");
    assert_eq!(
        (m.ring.as_str(), m.digest.as_str(), m.actor.as_str()),
        ("ante", v1.as_str(), "ci")
    );
    assert_eq!(
        (m.tag.as_str(), m.version(), m.reason.as_str()),
        ("1.0.0", "1.0.0", "publish")
    );

    let moved = promote(&s, WEB, "", "dev").unwrap();
    assert_eq!(moved.len(), 1);
    assert!(
        promote(&s, WEB, "", "dev").unwrap().is_empty(),
        "already there: no move"
    );
    promote(&s, WEB, ":1.0.0", "test").unwrap();
    promote(&s, WEB, &format!("@{v1}"), "prod").unwrap();
    for ring in ["ante", "dev", "test", "prod"] {
        assert_eq!(at(&s, ring, WEB).as_deref(), Some(v1.as_str()), "{ring}");
    }
    // `none` moves no ring; a publish straight to dev goes through ante first.
    let mut req = ferry_tests::releases::release(WEB, 2, vec!["2".into()]);
    req.to_ring = "none".into();
    assert_eq!(s.publish(input(req)).unwrap().events.len(), 1);
    let mut req = ferry_tests::releases::release(WEB, 3, vec!["3".into()]);
    req.to_ring = "dev".into();
    let out = s.publish(input(req)).unwrap();
    assert_eq!(out.events.len(), 3);
    assert_eq!(at(&s, "dev", WEB), Some(out.digest.clone()));
    assert_eq!(at(&s, "ante", WEB), Some(out.digest));

    // Everything came back after a restart, and the log is gapless.
    let before = pointers(&s, "shop");
    drop(s);
    let s = service(dir.path());
    assert_eq!(pointers(&s, "shop"), before);
    let (count, lo, hi) = s.store().event_log_extent().unwrap();
    assert_eq!(count, hi - lo + 1);
}

#[test]
fn refused_moves_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    apply(&s, "shop", &[WEB], "", &[]);
    apply(&s, "other", &[API], "", &[]);
    let v1 = publish(&s, WEB, 1, "1.0.0", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    let v2 = publish(&s, WEB, 2, "1.1.0", &[]);
    let bad = publish(&s, WEB, 3, "1.2.0", &[]);
    s.reject(WEB, &bad, "crashes on start", "alice").unwrap();
    let sig = ferry_tests::releases::release(WEB, 9, vec![]);
    let art = ferry_tests::releases::artifact(
        WEB,
        sig.manifest.as_ref().unwrap(),
        "application/vnd.dev.sig",
        vec!["sig".into()],
    );
    let art = s.publish(input(art)).unwrap().digest;
    apply(&s, "twice", &[API], "", &[]);

    type Case<'a> = (
        &'a str,
        Box<dyn Fn() -> Result<Vec<Event>, ServiceError> + 'a>,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "order rule",
            Box::new(|| promote(&s, WEB, &format!("@{v2}"), "test")),
            "refused",
            "never was in ring dev",
        ),
        (
            "post",
            Box::new(|| promote(&s, WEB, "", "post")),
            "invalid",
            "only shift fills post",
        ),
        (
            "unknown ring",
            Box::new(|| promote(&s, WEB, "", "qa")),
            "invalid",
            "not a ring of pipeline shop",
        ),
        (
            "rejected",
            Box::new(|| promote(&s, WEB, &format!("@{bad}"), "dev")),
            "refused",
            "crashes on start",
        ),
        (
            "forced rejected",
            Box::new(|| {
                s.promote(PromoteInput {
                    image: WEB.into(),
                    reference: format!("@{bad}"),
                    to_ring: "dev".into(),
                    force: true,
                    reason: "try".into(),
                    actor: "a".into(),
                    ..Default::default()
                })
            }),
            "refused",
            "rejected",
        ),
        (
            "force without reason",
            Box::new(|| {
                s.promote(PromoteInput {
                    image: WEB.into(),
                    to_ring: "dev".into(),
                    force: true,
                    ..Default::default()
                })
            }),
            "invalid",
            "--reason",
        ),
        (
            "artifact",
            Box::new(|| promote(&s, WEB, &format!("@{art}"), "dev")),
            "invalid",
            "only releases",
        ),
        (
            "unknown digest",
            Box::new(|| promote(&s, WEB, &format!("@sha256:{}", "0".repeat(64)), "dev")),
            "unknown",
            "not a published manifest",
        ),
        (
            "unknown tag",
            Box::new(|| promote(&s, WEB, ":nope", "dev")),
            "unknown",
            "tag \"nope\"",
        ),
        (
            "unlisted image",
            Box::new(|| promote(&s, "registry.example.com/x", "", "dev")),
            "unknown",
            "no pipeline lists",
        ),
        (
            "two pipelines",
            Box::new(|| promote(&s, API, "", "dev")),
            "invalid",
            "other, twice",
        ),
        (
            "empty previous ring",
            Box::new(|| promote(&s, WEB, "", "prod")),
            "refused",
            "ring test of pipeline shop holds nothing",
        ),
        (
            "unshift without shift",
            Box::new(|| s.unshift("shop", "a")),
            "refused",
            "not a shift",
        ),
        (
            "forced shift without reason",
            Box::new(|| s.shift("shop", true, "  ", "a")),
            "invalid",
            "--reason",
        ),
        (
            "unknown pipeline",
            Box::new(|| s.shift("nope", false, "", "a")),
            "unknown",
            "no pipeline named \"nope\"",
        ),
        (
            "rollback without previous",
            Box::new(|| s.rollback(WEB, "dev", "", "", "a")),
            "refused",
            "no previous digest",
        ),
        (
            "reject without reason",
            Box::new(|| s.reject(WEB, &v1, " ", "a").map(|_| vec![])),
            "invalid",
            "--reason",
        ),
        (
            "reject an artifact",
            Box::new(|| s.reject(WEB, &art, "x", "a").map(|_| vec![])),
            "invalid",
            "not a release",
        ),
    ];
    for (what, f, kind, words) in cases {
        let head = s.head_seq();
        let before = (pointers(&s, "shop"), s.store().event_log_extent().unwrap());
        let err = f().expect_err(what);
        let got = match &err {
            ServiceError::RingInvalid(_) => "invalid",
            ServiceError::RingRefused(_) => "refused",
            ServiceError::RingUnknown(_) => "unknown",
            _ => "other",
        };
        assert_eq!(got, kind, "{what}: {err}");
        assert!(
            err.to_string().contains(words),
            "{what}: {err:?} lacks {words:?}"
        );
        assert_eq!(s.head_seq(), head, "{what}: head moved");
        assert_eq!(
            (pointers(&s, "shop"), s.store().event_log_extent().unwrap()),
            before,
            "{what}"
        );
    }
    // A publish whose ring move is refused stores nothing at all.
    let head = s.head_seq();
    let mut req = ferry_tests::releases::release(WEB, 7, vec!["7".into()]);
    req.to_ring = "test".into();
    let err = s.publish(input(req.clone())).unwrap_err();
    assert!(err.to_string().contains("never was in ring dev"), "{err}");
    assert_eq!(s.head_seq(), head);
    req.to_ring = String::new();
    let out = s.publish(input(req)).unwrap();
    assert_eq!(
        out.events.len(),
        2,
        "the tag had not moved: the refused publish stored nothing"
    );
}

#[test]
fn shift_moves_every_ring_at_once_and_unshift_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    apply(&s, "shop", &[WEB, API], "", &[]);
    let w1 = publish(&s, WEB, 1, "1", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    promote(&s, WEB, "", "test").unwrap();
    let w2 = publish(&s, WEB, 2, "2", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    let a1 = publish(&s, API, 1, "1", &[]);
    let before = pointers(&s, "shop");
    let moved = s.shift("shop", false, "", "bob").unwrap();
    // last → post first, ante → first ring last; ante keeps its digests.
    let order: Vec<(String, String)> = moved
        .iter()
        .map(|e| match &e.kind {
            EventKind::RingMoved(m) => (m.ring.clone(), e.image.clone()),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        order,
        [
            ("prod".to_string(), WEB.to_string()),
            ("test".to_string(), WEB.to_string()),
            ("dev".to_string(), API.to_string()),
        ],
        "dev of web already runs what ante has"
    );
    assert!(moved.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(at(&s, "prod", WEB), Some(w1.clone()));
    assert_eq!(at(&s, "test", WEB), Some(w2.clone()));
    assert_eq!(at(&s, "dev", API), Some(a1.clone()));
    assert_eq!(at(&s, "ante", API), Some(a1));
    let rows = s.store().ring_batch("shop", None).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.batch == moved[0].seq && r.reason == "shift"));

    s.unshift("shop", "bob").unwrap();
    assert_eq!(
        pointers(&s, "shop"),
        before,
        "exactly what it was, empty rings emptied"
    );
    let err = s.unshift("shop", "bob").unwrap_err().to_string();
    assert!(err.contains("already undone"), "{err}");
}

#[test]
fn a_forced_shift_skips_closed_gates_never_a_rejection_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let applied = Gate {
        require_applied: true,
        ..Default::default()
    };
    apply(&s, "shop", &[WEB, API], "", &[("test", applied)]);
    let w1 = publish(&s, WEB, 1, "1", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    // Nobody follows dev: the gate of test is closed, and a plain shift moves nothing.
    let head = s.head_seq();
    let err = s.shift("shop", false, "", "bob").unwrap_err();
    assert!(matches!(err, ServiceError::RingRefused(_)), "{err:?}");
    assert!(err.to_string().contains("--force --reason"), "{err}");
    assert_eq!(s.head_seq(), head);

    let moved = s.shift("shop", true, " incident 42 ", "bob").unwrap();
    assert_eq!(at(&s, "test", WEB), Some(w1.clone()));
    assert!(!moved.is_empty());
    for e in &moved {
        let EventKind::RingMoved(m) = &e.kind else {
            panic!("{e:?}")
        };
        assert!(m.forced, "{m:?}");
        assert_eq!(m.reason, "shift: incident 42");
    }
    let rows = s.store().ring_batch("shop", None).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.forced && r.reason == "shift: incident 42" && r.actor == "bob"));
    // Still a shift: unshift undoes it.
    s.unshift("shop", "bob").unwrap();
    assert_eq!(at(&s, "test", WEB), None);

    // Force never carries a rejected digest.
    s.reject(WEB, &w1, "leaks", "carol").unwrap();
    let head = s.head_seq();
    let err = s.shift("shop", true, "anyway", "bob").unwrap_err();
    assert!(matches!(err, ServiceError::RingRefused(_)), "{err:?}");
    assert!(err.to_string().contains("leaks"), "{err}");
    assert_eq!(s.head_seq(), head, "nothing moved");
}

#[test]
fn rollback_holds_auto_promote_and_a_manual_promote_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let auto = Gate {
        auto_promote: true,
        ..Default::default()
    };
    apply(&s, "shop", &[WEB], "", &[("test", auto)]);
    let v1 = publish(&s, WEB, 1, "1", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    assert_eq!(s.auto_promote_once(), 1);
    assert_eq!(at(&s, "test", WEB), Some(v1.clone()));
    let last = s
        .store()
        .last_ring_move("shop", "test", WEB)
        .unwrap()
        .unwrap();
    assert_eq!(
        (last.actor.as_str(), last.reason.as_str()),
        ("ferry-server", "auto")
    );
    assert_eq!(s.auto_promote_once(), 0, "nothing left to move");

    let v2 = publish(&s, WEB, 2, "2", &[]);
    promote(&s, WEB, "", "dev").unwrap();
    assert_eq!(s.auto_promote_once(), 1);
    s.rollback(WEB, "test", "", "bad", "carol").unwrap();
    assert_eq!(at(&s, "test", WEB), Some(v1.clone()));
    let status = s.pipeline_status("shop", true, false).unwrap();
    let test = status[0].rings.iter().find(|r| r.name == "test").unwrap();
    assert!(
        test.hold.contains("carol") && test.hold.contains("bad"),
        "{}",
        test.hold
    );
    assert_eq!(test.history[WEB].len(), 3);
    assert_eq!(s.auto_promote_once(), 0, "held: autoPromote leaves it");
    // The hold survives a restart.
    drop(status);
    let s = {
        drop(s);
        service(dir.path())
    };
    assert_eq!(s.auto_promote_once(), 0);
    promote(&s, WEB, "", "test").unwrap();
    assert_eq!(at(&s, "test", WEB), Some(v2.clone()));
    let status = s.pipeline_status(WEB, false, false).unwrap();
    assert!(status[0].rings.iter().all(|r| r.hold.is_empty()));

    // A rejected digest never moves on by itself.
    let v3 = publish(&s, WEB, 3, "3", &[]);
    s.reject(WEB, &v3, "leaks", "carol").unwrap();
    let err = promote(&s, WEB, "", "dev").unwrap_err();
    assert!(err.to_string().contains("leaks"), "{err}");
    let (_, running) = s.reject(WEB, &v2, "slow", "carol").unwrap();
    assert_eq!(running.len(), 2, "dev and test run it");
    let status = s.pipeline_status("shop", false, false).unwrap();
    let dev = status[0].rings.iter().find(|r| r.name == "dev").unwrap();
    assert_eq!(dev.rejected_running, [v2]);
}

#[test]
fn a_root_moves_its_bundle_in_one_batch_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    apply(&s, "shop", &[ROOT, API, WEB], ROOT, &[]);
    let api1 = publish(&s, API, 1, "1.4.0", &[]);
    let web1 = publish(&s, WEB, 1, "2.0.1", &[]);
    publish(&s, API, 2, "1.5.0", &[]);
    let root1 = publish(
        &s,
        ROOT,
        1,
        "3.0.0",
        &[
            ("dependency.api", "1.4.0"),
            ("dependency.registry.example.com/shop/web", "2.0.1"),
        ],
    );
    let moved = promote(&s, ROOT, "", "dev").unwrap();
    assert_eq!(moved.len(), 3);
    assert!(moved.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(at(&s, "dev", ROOT), Some(root1));
    assert_eq!(
        at(&s, "dev", API),
        Some(api1),
        "the pinned api, not the newest"
    );
    assert_eq!(at(&s, "dev", WEB), Some(web1));
    let rows = s.store().ring_batch("shop", None).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.batch == moved[0].seq));

    publish(&s, ROOT, 2, "3.1.0", &[("dependency.api", "9.9.9")]);
    let head = s.head_seq();
    let before = pointers(&s, "shop");
    let err = promote(&s, ROOT, "", "dev").unwrap_err();
    assert!(matches!(err, ServiceError::RingRefused(_)));
    assert!(err.to_string().contains("dependency.api=9.9.9"), "{err}");
    assert_eq!((s.head_seq(), pointers(&s, "shop")), (head, before));
    publish(&s, ROOT, 3, "3.2.0", &[("dependency.db", "1")]);
    let err = promote(&s, ROOT, "", "dev").unwrap_err().to_string();
    assert!(
        err.contains("dependency.db=1")
            && err.contains("no image of pipeline shop is named \"db\""),
        "{err}"
    );

    // Rolling the root back restores every pointer its last move moved.
    promote(&s, ROOT, ":3.0.0", "test").unwrap();
    s.rollback(ROOT, "test", "", "", "a").unwrap();
    for image in [ROOT, API, WEB] {
        assert_eq!(at(&s, "test", image), None, "{image}");
    }
}
