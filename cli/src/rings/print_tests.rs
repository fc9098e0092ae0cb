//! The printers on a hand-built PipelineStatus: exact text, so a change of layout is a
//! decision, and hostile values are quoted and cut.

use super::*;

const API: &str = "registry.example.com/shop/api";
const WEB: &str = "registry.example.com/shop/web";

fn d(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

// 2026-12-01 11:46:16Z
const T: i64 = 1_796_125_576_000;

fn pointer(ring: &str, image: &str, digest: String, version: &str) -> pb::RingPointer {
    pb::RingPointer {
        pipeline: "shop".into(),
        ring: ring.into(),
        image: image.into(),
        digest,
        version: version.into(),
        since_ms: T,
        ..Default::default()
    }
}

fn cluster(
    name: &str,
    image: &str,
    digest: String,
    error: &str,
    connected: bool,
) -> pb::ClusterTarget {
    pb::ClusterTarget {
        cluster: name.into(),
        target: "repo#.pipe/w.yaml#targets[0]".into(),
        image: image.into(),
        digest,
        file: "envs/prod/kustomization.yaml".into(),
        error: error.into(),
        since_ms: T,
        lag: 3,
        connected,
        ..Default::default()
    }
}

fn running(image: &str, digest: String, clusters: &[&str]) -> pb::RunningDigest {
    pb::RunningDigest {
        image: image.into(),
        digest,
        clusters: clusters.iter().map(|c| c.to_string()).collect(),
        since_ms: T,
        targets: clusters.len() as u32,
        ..Default::default()
    }
}

fn summary(
    name: &str,
    lag: u64,
    connected: bool,
    targets: u32,
    failing: u32,
) -> pb::ClusterSummary {
    pb::ClusterSummary {
        cluster: name.into(),
        cursor: 42 - lag,
        lag,
        connected,
        reported_at_ms: T,
        targets,
        failing,
    }
}

fn sample() -> pb::PipelineStatus {
    pb::PipelineStatus {
        spec: Some(pb::PipelineSpec {
            name: "shop".into(),
            rings: vec!["testers".into(), "users".into()],
            images: vec![API.into(), WEB.into()],
            root: API.into(),
            gates: Default::default(),
        }),
        generation: 2,
        head_seq: 42,
        rings: vec![
            pb::RingStatus {
                name: "ante".into(),
                // No rules: no gate line.
                gate: Some(pb::Gate::default()),
                gate_status: Some(pb::GateStatus {
                    open: true,
                    ..Default::default()
                }),
                pointers: vec![pointer("ante", API, d('b'), "1.3.0")],
                ..Default::default()
            },
            pb::RingStatus {
                name: "testers".into(),
                pointers: vec![
                    pointer("testers", API, d('a'), "1.2.0"),
                    pointer("testers", WEB, d('c'), ""),
                ],
                // The default answer: only the failing target's row.
                clusters: vec![cluster("qa-2", API, d('a'), "push refused\nby hook", false)],
                running: vec![
                    running(API, d('a'), &["qa-1", "qa-2"]),
                    running(API, d('b'), &["qa-2"]),
                ],
                cluster_summaries: vec![
                    summary("qa-1", 0, true, 1, 0),
                    summary("qa-2", 3, false, 2, 1),
                ],
                rejected_running: vec![d('c')],
                ..Default::default()
            },
            pb::RingStatus {
                name: "users".into(),
                gate: Some(pb::Gate {
                    require_applied: true,
                    soak_seconds: 600,
                    auto_promote: false,
                }),
                gate_status: Some(pb::GateStatus {
                    open: false,
                    why_closed: "qa-2 has not applied it".into(),
                    candidate: d('a'),
                    ..Default::default()
                }),
                hold: "rollback by alice at 2026-12-01".into(),
                ..Default::default()
            },
        ],
        rejected: vec![pb::Rejection {
            image: WEB.into(),
            digest: d('c'),
            reason: "leaks memory".into(),
            actor: "alice".into(),
            at_ms: T,
        }],
        ..Default::default()
    }
}

#[test]
fn show_is_a_ring_by_image_table() {
    let got = show(&sample(), false);
    let want = "\
pipeline shop (generation 2, head seq 42)
root: registry.example.com/shop/api
RING     IMAGE                          VERSION  DIGEST               SINCE                 CLUSTERS
ante     registry.example.com/shop/api  1.3.0    sha256:bbbbbbbbbbbb  2026-12-01 11:46:16Z  -
ante     registry.example.com/shop/web  -        -                    -                     -
testers  registry.example.com/shop/api  1.2.0    sha256:aaaaaaaaaaaa  2026-12-01 11:46:16Z  qa-1, qa-2
testers  registry.example.com/shop/web  -        sha256:cccccccccccc  2026-12-01 11:46:16Z  -
users    registry.example.com/shop/api  -        -                    -                     -
users    registry.example.com/shop/web  -        -                    -                     -
post     registry.example.com/shop/api  -        -                    -                     -
post     registry.example.com/shop/web  -        -                    -                     -
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn show_history_lists_moves() {
    let mut s = sample();
    s.rings[1].history.insert(
        API.into(),
        pb::RingHistoryList {
            entries: vec![pb::RingHistoryEntry {
                seq: 7,
                digest: d('a'),
                previous_digest: String::new(),
                actor: "ci".into(),
                reason: "hotfix".into(),
                forced: true,
                at_ms: T,
            }],
        },
    );
    let got = show(&s, true);
    assert!(
        got.ends_with(
            "history of registry.example.com/shop/api in testers:\n  2026-12-01 11:46:16Z  seq 7  (empty) → sha256:aaaaaaaaaaaa  by ci (hotfix) FORCED\n"
        ),
        "{got}"
    );
}

#[test]
fn status_shows_clusters_gates_holds_failures_and_rejections() {
    let got = status(&sample(), None, false);
    let want = "\
pipeline shop (generation 2, head seq 42)
root: registry.example.com/shop/api
ring ante
  registry.example.com/shop/api  1.3.0  sha256:bbbbbbbbbbbb  since 2026-12-01 11:46:16Z
ring testers
  registry.example.com/shop/api  1.2.0  sha256:aaaaaaaaaaaa  since 2026-12-01 11:46:16Z
    sha256:aaaaaaaaaaaa → 2 clusters (qa-1, qa-2) since 2026-12-01 11:46:16Z
    sha256:bbbbbbbbbbbb → 1 cluster (qa-2) since 2026-12-01 11:46:16Z
  registry.example.com/shop/web  -  sha256:cccccccccccc  since 2026-12-01 11:46:16Z  REJECTED
  cluster qa-2  lag 3  disconnected  1 of 2 targets failing  reported 2026-12-01 11:46:16Z
    FAILING repo#.pipe/w.yaml#targets[0] (envs/prod/kustomization.yaml) registry.example.com/shop/api sha256:aaaaaaaaaaaa: \"push refused\\nby hook\"
  1 cluster caught up, connected, not failing
ring users
  (empty)
  gate: closed (requireApplied, soak 10m) for sha256:aaaaaaaaaaaa: qa-2 has not applied it
  hold: rollback by alice at 2026-12-01
ring post
  (empty)
rejected:
  registry.example.com/shop/web@sha256:cccccccccccc by alice at 2026-12-01 11:46:16Z: leaks memory
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn status_of_an_image_shows_only_its_rows() {
    let got = status(&sample(), Some(WEB), false);
    assert!(!got.contains("shop/api  1.2.0"), "{got}");
    assert!(!got.contains("cluster qa-2"), "qa-2 runs no web: {got}");
    assert!(!got.contains("sha256:aaaaaaaaaaaa → "), "{got}");
    assert!(got.contains("shop/web  -  sha256:cccccccccccc"), "{got}");
    assert!(got.contains("rejected:"), "{got}");
    // The pipeline's other pipelines are printed after it.
    let mut s = sample();
    let mut other = sample();
    other.spec.as_mut().unwrap().name = "other".into();
    s.also.push(other);
    assert!(status(&s, Some(WEB), false).contains("\n\npipeline other (generation 2"));
}

#[test]
fn status_cuts_long_cluster_lists_and_targets_lists_every_target() {
    let mut s = sample();
    let many: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    s.rings[1].running = vec![running(API, d('a'), &names)];
    let got = status(&s, None, false);
    assert!(
        got.contains("    sha256:aaaaaaaaaaaa → 25 clusters (c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, … and 15 more) since 2026-12-01 11:46:16Z\n"),
        "{got}"
    );
    assert!(!got.contains("  target "), "{got}");
    // --targets: the server sent every target; each gets a row.
    s.rings[1]
        .clusters
        .insert(0, cluster("qa-1", API, d('a'), "", true));
    let got = status(&s, None, true);
    assert!(
        got.contains("  target qa-1  repo#.pipe/w.yaml#targets[0]  registry.example.com/shop/api  sha256:aaaaaaaaaaaa  since 2026-12-01 11:46:16Z\n"),
        "{got}"
    );
    assert!(got.contains("  target qa-2  repo#.pipe/w.yaml#targets[0]  registry.example.com/shop/api  sha256:aaaaaaaaaaaa  since 2026-12-01 11:46:16Z  FAILING\n"), "{got}");
}

#[test]
fn moves_say_ring_image_previous_new_and_version() {
    let m = pb::RingMove {
        pipeline: "shop".into(),
        ring: "users".into(),
        image: API.into(),
        digest: d('a'),
        previous_digest: d('b'),
        seq: 9,
        tag: "1.2.0-build".into(),
        version: "1.2.0".into(),
    };
    let emptied = pb::RingMove {
        digest: String::new(),
        previous_digest: String::new(),
        tag: String::new(),
        version: String::new(),
        ..m.clone()
    };
    assert_eq!(
        move_outcome(&[m, emptied], "unused"),
        "moved shop/users registry.example.com/shop/api: sha256:bbbbbbbbbbbb → sha256:aaaaaaaaaaaa (1.2.0, tag 1.2.0-build)\n\
         moved shop/users registry.example.com/shop/api: (empty) → (empty)\n"
    );
    assert_eq!(
        move_outcome(&[], "users already runs it"),
        "nothing moved: users already runs it\n"
    );
}

#[test]
fn hostile_values_are_quoted_and_cut() {
    assert_eq!(cell("plain-value 1.2"), "plain-value 1.2");
    assert_eq!(cell("a\u{1b}[2Jb"), "\"a\\u{1b}[2Jb\"");
    let long = "x".repeat(5000);
    let shown = cell(&long);
    assert!(
        shown.len() < 130 && shown.ends_with("(5000 bytes)"),
        "{shown}"
    );
    let mut s = sample();
    s.rings[2].hold = "evil\r\nring users\n  forged line".into();
    let got = status(&s, None, false);
    assert!(!got.contains("\n  forged line"), "{got}");
}

#[test]
fn list_and_apply_lines() {
    let list = pipelines(&[pb::PipelineSummary {
        name: "shop".into(),
        generation: 3,
        rings: vec!["testers".into(), "users".into()],
        images: vec![API.into(), WEB.into()],
        updated_at_ms: T,
    }]);
    assert_eq!(
        list,
        "NAME  GENERATION  RINGS            IMAGES  UPDATED\nshop  3           testers → users  2       2026-12-01 11:46:16Z\n"
    );
    assert!(pipelines(&[]).contains("ferry pipeline apply"));
    let spec = Some(pb::PipelineSpec {
        name: "shop".into(),
        ..Default::default()
    });
    assert_eq!(
        applied(&pb::ApplyPipelineResponse {
            spec: spec.clone(),
            generation: 2,
            changed: true,
            seq: 17
        }),
        "pipeline shop applied: generation 2 (event seq 17)\n"
    );
    assert!(applied(&pb::ApplyPipelineResponse {
        spec,
        generation: 2,
        changed: false,
        seq: 0
    })
    .starts_with("nothing changed"));
}

#[test]
fn times_are_utc() {
    assert_eq!(when(0), "-");
    assert_eq!(when(T), "2026-12-01 11:46:16Z");
    assert_eq!(when(951_782_400_000), "2000-02-29 00:00:00Z");
}

#[test]
fn durations_are_written_as_in_the_file() {
    for (secs, text) in [
        (0, "0s"),
        (90, "1m30s"),
        (600, "10m"),
        (5400, "1h30m"),
        (3601, "1h1s"),
    ] {
        assert_eq!(duration(secs), text);
        assert_eq!(ferry_proto::pipeline::parse_duration(text), Ok(secs));
    }
}
