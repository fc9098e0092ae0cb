//! Report tests on a real store in a temp dir: full-set semantics through the in-memory index,
//! a re-sent report adding no history, refusals changing nothing, the index rebuilt from the
//! store at start, and `connected` following the stream guards.

use std::sync::Arc;

use super::*;
use crate::service::Limits;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn service(dir: &std::path::Path) -> Service {
    let store = Arc::new(Store::open(dir).unwrap());
    Service::load(store, Limits::default()).unwrap()
}

fn target(key: &str, ring: &str, digest: &str) -> TargetInput {
    TargetInput {
        target: key.into(),
        image: "registry.example.com/shop/api".into(),
        digest: digest.into(),
        ring: ring.into(),
        pipeline: if ring.is_empty() { "" } else { "shop" }.into(),
        file: "env/prod/kustomization.yaml".into(),
        commit: "c1".into(),
        ..Default::default()
    }
}

fn report(cluster: &str, targets: Vec<TargetInput>) -> ReportInput {
    ReportInput {
        cluster: cluster.into(),
        cursor: 7,
        targets,
    }
}

fn keys(targets: &[ReportedTarget]) -> Vec<String> {
    targets
        .iter()
        .map(|t| format!("{}/{}", t.cluster, t.target))
        .collect()
}

#[test]
fn reports_are_indexed_by_ring_and_replace_the_cluster_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let mut changes = s.reports_changed();
    let out = s
        .record_report(
            "agent-eu",
            report(
                "prod-eu",
                vec![
                    target("a", "testers", D1),
                    target("b", "users", D1),
                    target("c", "", D1),
                ],
            ),
        )
        .unwrap();
    assert_eq!(
        out,
        ReportOutcome {
            cluster: "prod-eu".into(),
            changed: 3,
            removed: 0
        }
    );
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 1);
    // An empty cluster takes the token's name.
    s.record_report("agent-us", report("", vec![target("a", "testers", D2)]))
        .unwrap();
    assert_eq!(
        keys(&s.ring_reports("shop", "testers")),
        ["agent-us/a", "prod-eu/a"]
    );
    assert_eq!(keys(&s.ring_reports("shop", "users")), ["prod-eu/b"]);
    assert!(s.ring_reports("other", "testers").is_empty());

    // The next report of prod-eu drops b and c, and moves a to users.
    let out = s
        .record_report(
            "agent-eu",
            report("prod-eu", vec![target("a", "users", D1)]),
        )
        .unwrap();
    assert_eq!(out.removed, 2);
    assert_eq!(
        out.changed, 0,
        "digest, commit and error of a are unchanged"
    );
    assert_eq!(keys(&s.ring_reports("shop", "testers")), ["agent-us/a"]);
    assert_eq!(keys(&s.ring_reports("shop", "users")), ["prod-eu/a"]);
    assert_eq!(keys(&s.cluster_targets("prod-eu")), ["prod-eu/a"]);

    let eu = s.cluster("prod-eu").unwrap();
    assert_eq!(
        (eu.token.as_str(), eu.cursor, eu.connected),
        ("agent-eu", 7, false)
    );
    let names: Vec<_> = s.clusters().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["agent-us", "prod-eu"]);

    // A restarted service rebuilds the same index from the store.
    drop(s);
    let s = service(dir.path());
    assert_eq!(keys(&s.ring_reports("shop", "users")), ["prod-eu/a"]);
    assert_eq!(keys(&s.ring_reports("shop", "testers")), ["agent-us/a"]);
    assert_eq!(s.cluster("prod-eu").unwrap().cursor, 7);
}

#[test]
fn a_resent_report_keeps_since_and_adds_no_history() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let first = report("prod-eu", vec![target("a", "testers", D1)]);
    assert_eq!(s.record_report("t", first.clone()).unwrap().changed, 1);
    let since = s.ring_reports("shop", "testers")[0].since_ms;
    std::thread::sleep(std::time::Duration::from_millis(5)); // so a new `since` would differ
    assert_eq!(s.record_report("t", first).unwrap().changed, 0);
    let again = &s.ring_reports("shop", "testers")[0];
    assert_eq!(again.since_ms, since);
    assert!(again.reported_at_ms > since);
    assert_eq!(s.store().cluster_history("prod-eu", 10).unwrap().len(), 1);

    let moved = report("prod-eu", vec![target("a", "testers", D2)]);
    assert_eq!(s.record_report("t", moved).unwrap().changed, 1);
    let now = &s.ring_reports("shop", "testers")[0];
    assert_eq!(now.digest, D2);
    assert!(now.since_ms > since);
    assert_eq!(s.store().cluster_history("prod-eu", 10).unwrap().len(), 2);
}

#[test]
fn refused_reports_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    s.record_report("t", report("prod-eu", vec![target("a", "testers", D1)]))
        .unwrap();
    let long = "x".repeat(5000);
    let bad_cases: Vec<(ReportInput, &str)> = vec![
        (report("-eu", vec![]), "cluster name \"-eu\" is not valid"),
        (report(&long, vec![]), "(5000 bytes)"),
        (report("eu//prod", vec![]), "is not valid"),
        (
            report("prod-eu", vec![target("a", "testers", "sha256:abc")]),
            "invalid digest \"sha256:abc\"",
        ),
        (
            report(
                "prod-eu",
                vec![target("a", "testers", D1), target("a", "users", D1)],
            ),
            "listed twice",
        ),
        (
            report("prod-eu", vec![target("a", "Testers", D1)]),
            "ring \"Testers\"",
        ),
        (
            report("prod-eu", vec![target("", "testers", D1)]),
            "target key is empty",
        ),
        (
            report(
                "prod-eu",
                vec![TargetInput {
                    image: "Not An Image".into(),
                    ..target("a", "testers", D1)
                }],
            ),
            "target \"a\": image",
        ),
        (
            report(
                "prod-eu",
                vec![TargetInput {
                    file: long.clone(),
                    ..target("a", "testers", D1)
                }],
            ),
            "file \"xxxx",
        ),
        (
            report(
                "prod-eu",
                (0..=MAX_REPORT_TARGETS)
                    .map(|i| target(&i.to_string(), "", D1))
                    .collect(),
            ),
            "10001 targets",
        ),
    ];
    let mut changes = s.reports_changed();
    changes.mark_unchanged();
    for (input, expect) in bad_cases {
        let err = s.record_report("t", input).unwrap_err();
        assert!(matches!(err, ServiceError::InvalidReport(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(expect), "{msg:?} should contain {expect:?}");
        assert!(msg.len() < 600, "errors quote values cut short: {msg}");
    }
    assert!(!changes.has_changed().unwrap());
    assert_eq!(keys(&s.ring_reports("shop", "testers")), ["prod-eu/a"]);
    assert_eq!(s.ring_reports("shop", "testers")[0].digest, D1);
    assert_eq!(s.store().cluster_history("prod-eu", 10).unwrap().len(), 1);
    assert_eq!(s.clusters().len(), 1);
}

#[test]
fn images_are_normalised_and_long_errors_cut() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let t = TargetInput {
        image: "nginx".into(),
        error: "é".repeat(3000),
        ..target("a", "testers", D1)
    };
    s.record_report("t", report("c", vec![t])).unwrap();
    let got = &s.ring_reports("shop", "testers")[0];
    assert_eq!(got.image, "docker.io/library/nginx");
    assert!(got.error.len() <= MAX_TARGET_ERROR && got.error.len() > 4000);
}

#[test]
fn unnamed_pipeline_targets_show_under_every_pipeline_of_that_ring() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let mut unnamed = target("b", "testers", D1);
    unnamed.pipeline.clear();
    s.record_report("t", report("c", vec![target("a", "testers", D1), unnamed]))
        .unwrap();
    assert_eq!(keys(&s.ring_reports("shop", "testers")), ["c/a", "c/b"]);
    assert_eq!(keys(&s.ring_reports("web", "testers")), ["c/b"]);
}

#[test]
fn connected_follows_the_stream_guards() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    assert!(s.cluster("prod-eu").is_none());
    let first = s.cluster_connected("prod-eu", "agent-eu");
    let second = s.cluster_connected("prod-eu", "agent-eu");
    let c = s.cluster("prod-eu").unwrap();
    assert!(c.connected);
    assert_eq!((c.token.as_str(), c.cursor), ("agent-eu", 0));
    s.record_report("agent-eu", report("prod-eu", vec![]))
        .unwrap();
    drop(first);
    assert!(
        s.cluster("prod-eu").unwrap().connected,
        "one stream is still open"
    );
    assert!(s.clusters()[0].connected);
    drop(second);
    assert!(!s.cluster("prod-eu").unwrap().connected);
    assert!(!s.clusters()[0].connected);
}
