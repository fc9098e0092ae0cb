//! Rings against a real server on loopback gRPC: apply a pipeline, publish into ante, promote
//! through the rings, shift and unshift, rollback and holds, rejection, bundles, autoPromote,
//! racing promoters, RING_MOVED on Subscribe, and the status codes and roles of refusals.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_proto::pb::{self, subscribe_response::Item};
use ferry_server::service::auth::Role;
use ferry_server::service::Limits;
use ferry_tests::ferry::SubscribeFrom;
use tonic::Code;

use common::Server;

const WEB: &str = "registry.example.com/shop/web";
const API: &str = "registry.example.com/shop/api";
const ROOT: &str = "registry.example.com/shop/root";
const VERSION: &str = "org.opencontainers.image.version";
const WAIT: Duration = Duration::from_secs(20);

type Client = ferry_proto::client::Client;

fn spec(
    name: &str,
    images: &[&str],
    root: &str,
    gates: &[(&str, pb::Gate)],
) -> pb::ApplyPipelineRequest {
    pb::ApplyPipelineRequest {
        spec: Some(pb::PipelineSpec {
            name: name.into(),
            rings: vec!["dev".into(), "test".into(), "prod".into()],
            images: images.iter().map(|i| i.to_string()).collect(),
            root: root.into(),
            gates: gates.iter().map(|(r, g)| (r.to_string(), *g)).collect(),
        }),
        source: String::new(),
    }
}

/// Publishes release `n` of `image` as version `version`: its digest and response.
async fn publish(
    c: &mut Client,
    image: &str,
    n: u64,
    version: &str,
    labels: &[(&str, &str)],
) -> (String, pb::PublishResponse) {
    let mut req = ferry_tests::releases::release(image, n, vec![version.to_string()]);
    req.labels.insert(VERSION.into(), version.into());
    for (k, v) in labels {
        req.labels.insert(k.to_string(), v.to_string());
    }
    let out = c.publish(req).await.unwrap().into_inner();
    (out.digest.clone(), out)
}

fn promote_req(image: &str, reference: &str, ring: &str) -> pb::PromoteRequest {
    pb::PromoteRequest {
        image: image.into(),
        reference: reference.into(),
        to_ring: ring.into(),
        ..Default::default()
    }
}

async fn promote(
    c: &mut Client,
    image: &str,
    reference: &str,
    ring: &str,
) -> Result<pb::MoveResponse, tonic::Status> {
    c.promote(promote_req(image, reference, ring))
        .await
        .map(|r| r.into_inner())
}

async fn status(c: &mut Client, name: &str, history: bool) -> pb::PipelineStatus {
    c.get_pipeline(pb::GetPipelineRequest {
        name_or_image: name.into(),
        history,
        targets: false,
    })
    .await
    .unwrap()
    .into_inner()
}

/// (ring, image) → digest.
async fn pointers(c: &mut Client, name: &str) -> BTreeMap<(String, String), String> {
    status(c, name, false)
        .await
        .rings
        .iter()
        .flat_map(|r| {
            r.pointers
                .iter()
                .map(|p| ((r.name.clone(), p.image.clone()), p.digest.clone()))
        })
        .collect()
}

async fn at(c: &mut Client, name: &str, ring: &str, image: &str) -> Option<String> {
    pointers(c, name)
        .await
        .get(&(ring.to_string(), image.to_string()))
        .cloned()
}

/// Polls `f` until it holds or WAIT passes.
async fn wait_for<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

struct Rig {
    server: Server,
    /// Bootstrap token: publisher and agent.
    publisher: Client,
    /// Role promoter, any image.
    promoter: Client,
}

async fn rig() -> Rig {
    let server = Server::start(Limits::default(), Duration::from_millis(200)).await;
    let token = server.token("release-bot", &[Role::Promoter], &[]);
    let publisher = server.client().await;
    let promoter = server.client_with(&token).await;
    Rig {
        server,
        publisher,
        promoter,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_walk_the_rings_and_shift_unshift_restore_exactly() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    let applied = promoter
        .apply_pipeline(spec("shop", &[WEB, API], "", &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((applied.generation, applied.changed), (1, true));

    let (v1, out) = publish(&mut publisher, WEB, 1, "1.0.0", &[]).await;
    assert_eq!(out.moved.len(), 1, "Publish's `moved` lists tag moves only");
    assert_eq!(out.ring_moves.len(), 1);
    let m = &out.ring_moves[0];
    assert_eq!(
        (m.ring.as_str(), m.digest.as_str(), m.version.as_str()),
        ("ante", v1.as_str(), "1.0.0")
    );
    assert_eq!(m.seq, out.moved[0].seq + 1, "one gapless log");

    for ring in ["dev", "test", "prod"] {
        let moved = promote(&mut promoter, WEB, "", ring).await.unwrap();
        assert_eq!(moved.moved.len(), 1, "{ring}");
        assert_eq!(moved.moved[0].previous_digest, "");
    }
    assert!(
        promote(&mut promoter, WEB, "", "prod")
            .await
            .unwrap()
            .moved
            .is_empty(),
        "already there"
    );
    let (v2, _) = publish(&mut publisher, WEB, 2, "1.1.0", &[]).await;
    let err = promote(&mut promoter, WEB, &format!("@{v2}"), "test")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("ring dev"),
        "the order rule names the ring: {}",
        err.message()
    );
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    publish(&mut publisher, API, 1, "0.1.0", &[]).await;

    // ListRings (role agent) shows what the agents reconcile to, with the version label.
    let rings = publisher
        .list_rings(pb::ListRingsRequest {
            images: vec![WEB.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let dev = rings.pointers.iter().find(|p| p.ring == "dev").unwrap();
    assert_eq!(
        (dev.digest.as_str(), dev.version.as_str(), dev.tag.as_str()),
        (v2.as_str(), "1.1.0", "1.1.0")
    );
    assert!(rings.pointers.iter().all(|p| p.image == WEB));

    let before = pointers(&mut promoter, "shop").await;
    let head = server.service.head_seq();
    let shifted = promoter
        .shift(pb::ShiftRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rings: Vec<(&str, &str)> = shifted
        .moved
        .iter()
        .map(|m| (m.ring.as_str(), m.image.as_str()))
        .collect();
    // prod already runs what test runs, and dev what ante has of web: they keep theirs.
    assert_eq!(rings, [("post", WEB), ("test", WEB), ("dev", API)]);
    assert_eq!(shifted.moved[0].seq, head + 1);
    assert_eq!(
        at(&mut promoter, "shop", "post", WEB).await,
        Some(v1.clone())
    );
    assert_eq!(
        at(&mut promoter, "shop", "test", WEB).await,
        Some(v2.clone())
    );
    promoter
        .unshift(pb::ShiftRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        pointers(&mut promoter, "shop").await,
        before,
        "unshift restores exactly"
    );
    let err = promoter
        .unshift(pb::ShiftRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("shift"), "{}", err.message());

    // Refusals map to codes.
    let err = promote(&mut promoter, WEB, "", "post").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = promote(&mut promoter, "registry.example.com/none", "", "dev")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = promoter
        .shift(pb::ShiftRequest {
            pipeline: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = promoter
        .apply_pipeline(spec("Bad", &[WEB], "", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("metadata.name: invalid name \"Bad\""),
        "{}",
        err.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_scopes_guard_every_ring_verb() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    // A publisher may not apply or promote; a promoter scoped elsewhere may not either.
    let err = publisher
        .apply_pipeline(spec("shop", &[WEB], "", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let other = server.token(
        "other-team",
        &[Role::Promoter],
        &["registry.example.com/other"],
    );
    let mut other = server.client_with(&other).await;
    let err = other
        .apply_pipeline(spec("shop", &[WEB], "", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains(WEB), "{}", err.message());
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[]))
        .await
        .unwrap();
    let (v1, _) = publish(&mut publisher, WEB, 1, "1", &[]).await;
    let err = promote(&mut publisher, WEB, "", "dev").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = promote(&mut other, WEB, "", "dev").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Publishing past ante promotes: a publisher alone may not.
    let mut req = ferry_tests::releases::release(WEB, 2, vec!["2".into()]);
    req.to_ring = "dev".into();
    let err = publisher.publish(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let both = server.token(
        "ci",
        &[Role::Publisher, Role::Promoter],
        &["registry.example.com/shop"],
    );
    let mut both = server.client_with(&both).await;
    let out = both.publish(req).await.unwrap().into_inner();
    let rings: Vec<&str> = out.ring_moves.iter().map(|m| m.ring.as_str()).collect();
    assert_eq!(rings, ["ante", "dev"]);
    // ListRings needs role agent; GetPipeline any valid token.
    let err = promoter
        .list_rings(pb::ListRingsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let reader = server.token("viewer", &[Role::Reader], &[]);
    let mut reader = server.client_with(&reader).await;
    let st = status(&mut reader, WEB, false).await;
    assert_eq!(st.spec.unwrap().name, "shop");
    let _ = v1;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_moves_arrive_on_subscribe_with_every_field() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[]))
        .await
        .unwrap();
    let head = server.service.head_seq();
    let mut stream = publisher
        .subscribe_from(head, &[WEB])
        .await
        .unwrap()
        .into_inner();
    let (v1, _) = publish(&mut publisher, WEB, 1, "1.0.0", &[]).await;
    let (v2, _) = publish(&mut publisher, WEB, 2, "1.1.0", &[]).await;
    let mut forced = promote_req(WEB, &format!("@{v2}"), "test");
    forced.force = true;
    forced.reason = "hotfix for ticket 7".into();
    promoter.promote(forced).await.unwrap();
    let mut ring_events = Vec::new();
    while ring_events.len() < 3 {
        let item = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(Item::Event(e)) = item.item {
            if e.kind == pb::EventKind::RingMoved as i32 {
                ring_events.push(e);
            }
        }
    }
    let e = &ring_events[0];
    assert_eq!(
        (e.pipeline.as_str(), e.ring.as_str(), e.image.as_str()),
        ("shop", "ante", WEB)
    );
    assert_eq!(
        (e.digest.as_str(), e.tag.as_str(), e.reason.as_str()),
        (v1.as_str(), "1.0.0", "publish")
    );
    assert_eq!(e.labels.get(VERSION).map(String::as_str), Some("1.0.0"));
    assert!(!e.media_type.is_empty() && e.actor == "bootstrap", "{e:?}");
    let e = &ring_events[2];
    assert_eq!(
        (e.ring.as_str(), e.digest.as_str(), e.actor.as_str()),
        ("test", v2.as_str(), "release-bot")
    );
    assert!(e.forced, "{e:?}");
    assert_eq!(e.reason, "hotfix for ticket 7");
    assert_eq!(e.previous_digest, "");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_moves_its_bundle_in_one_batch_or_names_the_missing_dependency() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    promoter
        .apply_pipeline(spec("suite", &[ROOT, API, WEB], ROOT, &[]))
        .await
        .unwrap();
    let (api1, _) = publish(&mut publisher, API, 1, "1.4.0", &[]).await;
    let (web1, _) = publish(&mut publisher, WEB, 1, "2.0.1", &[]).await;
    publish(&mut publisher, API, 2, "1.5.0", &[]).await;
    let (root1, _) = publish(
        &mut publisher,
        ROOT,
        1,
        "3.0.0",
        &[("dependency.api", "1.4.0"), ("dependency.web", "2.0.1")],
    )
    .await;
    let moved = promote(&mut promoter, ROOT, "", "dev").await.unwrap().moved;
    let got: BTreeMap<&str, &str> = moved
        .iter()
        .map(|m| (m.image.as_str(), m.digest.as_str()))
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            (ROOT, root1.as_str()),
            (API, api1.as_str()),
            (WEB, web1.as_str())
        ])
    );
    assert!(
        moved.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "consecutive: {moved:?}"
    );
    let st = status(&mut promoter, "suite", true).await;
    let dev = st.rings.iter().find(|r| r.name == "dev").unwrap();
    assert_eq!(dev.pointers.len(), 3);
    let seqs: Vec<u64> = dev.history.values().map(|h| h.entries[0].seq).collect();
    assert_eq!(seqs.len(), 3);

    publish(
        &mut publisher,
        ROOT,
        2,
        "3.1.0",
        &[("dependency.api", "9.9.9"), ("dependency.web", "2.0.1")],
    )
    .await;
    let before = pointers(&mut promoter, "suite").await;
    let head = server.service.head_seq();
    let err = promote(&mut promoter, ROOT, "", "dev").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("dependency.api") && err.message().contains("9.9.9"),
        "{}",
        err.message()
    );
    assert_eq!(server.service.head_seq(), head, "no event");
    assert_eq!(
        pointers(&mut promoter, "suite").await,
        before,
        "nothing moved"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_promoters_racing_on_one_ring_are_serialized() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[]))
        .await
        .unwrap();
    let mut digests = Vec::new();
    for n in 0..10 {
        digests.push(
            publish(&mut publisher, WEB, n, &format!("1.{n}.0"), &[])
                .await
                .0,
        );
    }
    let second = server.token("second-bot", &[Role::Promoter], &[]);
    let mut second = server.client_with(&second).await;
    let (a, b) = (digests.clone(), digests.clone());
    let mut first = promoter.clone();
    let one = tokio::spawn(async move {
        for _ in 0..3 {
            for d in &a {
                promote(&mut first, WEB, &format!("@{d}"), "dev")
                    .await
                    .unwrap();
            }
        }
    });
    let two = tokio::spawn(async move {
        for _ in 0..3 {
            for d in b.iter().rev() {
                promote(&mut second, WEB, &format!("@{d}"), "dev")
                    .await
                    .unwrap();
            }
        }
    });
    one.await.unwrap();
    two.await.unwrap();
    let st = status(&mut promoter, "shop", true).await;
    let dev = st.rings.iter().find(|r| r.name == "dev").unwrap();
    let rows = &dev.history[WEB].entries;
    assert!(rows.len() > 10, "{}", rows.len());
    assert_eq!(rows[0].previous_digest, "");
    for w in rows.windows(2) {
        assert!(w[1].seq > w[0].seq);
        assert_eq!(
            w[1].previous_digest, w[0].digest,
            "each move starts where the last ended"
        );
        assert_ne!(w[1].digest, w[0].digest, "a no-op promote appends nothing");
    }
    assert_eq!(dev.pointers[0].digest, rows.last().unwrap().digest);
    let (count, lo, hi) = server.service.store().event_log_extent().unwrap();
    assert_eq!(count, hi - lo + 1, "gapless");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promote_stops_at_a_held_ring_and_a_rejected_digest() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    let auto = pb::Gate {
        auto_promote: true,
        ..Default::default()
    };
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[("test", auto)]))
        .await
        .unwrap();
    // A second pipeline with its own image: once autoPromote has moved it, a round has run
    // after everything done before, so what did not move in "shop" was not going to.
    promoter
        .apply_pipeline(spec("probe", &[API], "", &[("test", auto)]))
        .await
        .unwrap();
    let mut probe_n = 0;
    let mut probe = |publisher: &mut Client, promoter: &mut Client| {
        probe_n += 1;
        let (mut publisher, mut promoter) = (publisher.clone(), promoter.clone());
        let n = probe_n;
        async move {
            let (d, _) = publish(&mut publisher, API, n, &format!("{n}"), &[]).await;
            promote(&mut promoter, API, "", "dev").await.unwrap();
            assert!(
                wait_for(|| {
                    let mut c = promoter.clone();
                    let d = d.clone();
                    async move { at(&mut c, "probe", "test", API).await == Some(d) }
                })
                .await,
                "autoPromote never ran"
            );
        }
    };

    let (v1, _) = publish(&mut publisher, WEB, 1, "1", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    assert!(
        wait_for(|| {
            let mut c = promoter.clone();
            let v1 = v1.clone();
            async move { at(&mut c, "shop", "test", WEB).await == Some(v1) }
        })
        .await,
        "v1 never reached test by itself"
    );
    let st = status(&mut promoter, "shop", true).await;
    let test = st.rings.iter().find(|r| r.name == "test").unwrap();
    let last = test.history[WEB].entries.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.reason.as_str()),
        ("ferry-server", "auto")
    );

    // Rejected in dev: it never moves on by itself.
    let (bad, _) = publish(&mut publisher, WEB, 2, "2", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    // (autoPromote may race the rejection; reject first, then look.)
    promoter
        .reject(pb::RejectRequest {
            image: WEB.into(),
            digest: bad.clone(),
            reason: "crashes on start".into(),
        })
        .await
        .unwrap();
    let in_test = at(&mut promoter, "shop", "test", WEB).await;
    probe(&mut publisher, &mut promoter).await;
    assert_eq!(at(&mut promoter, "shop", "test", WEB).await, in_test);
    let err = promote(&mut promoter, WEB, &format!("@{bad}"), "prod")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("crashes on start"),
        "{}",
        err.message()
    );

    // A rollback holds the ring: a new build in dev stays there until promoted by hand.
    promote(&mut promoter, WEB, &format!("@{v1}"), "test")
        .await
        .ok();
    let (v3, _) = publish(&mut publisher, WEB, 3, "3", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    assert!(
        wait_for(|| {
            let mut c = promoter.clone();
            let v3 = v3.clone();
            async move { at(&mut c, "shop", "test", WEB).await == Some(v3) }
        })
        .await
    );
    promoter
        .rollback(pb::RollbackRequest {
            image: WEB.into(),
            ring: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let rolled = at(&mut promoter, "shop", "test", WEB).await;
    assert_ne!(rolled, Some(v3.clone()));
    let (v4, _) = publish(&mut publisher, WEB, 4, "4", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    probe(&mut publisher, &mut promoter).await;
    assert_eq!(
        at(&mut promoter, "shop", "test", WEB).await,
        rolled,
        "a held ring moved by itself"
    );
    let st = status(&mut promoter, "shop", false).await;
    assert!(!st
        .rings
        .iter()
        .find(|r| r.name == "test")
        .unwrap()
        .hold
        .is_empty());
    promote(&mut promoter, WEB, "", "test").await.unwrap();
    assert_eq!(at(&mut promoter, "shop", "test", WEB).await, Some(v4));
    let st = status(&mut promoter, "shop", false).await;
    assert!(
        st.rings.iter().all(|r| r.hold.is_empty()),
        "a promote by hand lifts the hold"
    );
    server.stop().await;
}

async fn report(c: &mut Client, cluster: &str, ring: &str, digest: &str, error: &str) {
    c.report(pb::ReportRequest {
        cluster: cluster.into(),
        cursor: 1,
        targets: vec![pb::TargetReport {
            target: "repo#watcher.yaml#targets[0]".into(),
            image: WEB.into(),
            digest: digest.into(),
            ring: ring.into(),
            pipeline: "shop".into(),
            file: format!("environments/{cluster}/kustomization.yaml"),
            commit: "abc1234".into(),
            error: error.into(),
            ..Default::default()
        }],
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_gate_names_the_cluster_that_has_not_applied_it() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    let gate = pb::Gate {
        require_applied: true,
        soak_seconds: 0,
        auto_promote: false,
    };
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[("prod", gate)]))
        .await
        .unwrap();
    let (v1, _) = publish(&mut publisher, WEB, 1, "1", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    promote(&mut promoter, WEB, "", "test").await.unwrap();
    // Nobody follows test yet: closed, and it says so.
    let err = promote(&mut promoter, WEB, "", "prod").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("no cluster follows ring test"),
        "{}",
        err.message()
    );
    // staging still runs something else; qa applied it but failed.
    let old = format!("sha256:{}", "0".repeat(64));
    report(&mut publisher, "staging-cluster", "test", &old, "").await;
    report(
        &mut publisher,
        "qa-cluster",
        "test",
        &v1,
        "ImagePullBackOff",
    )
    .await;
    let head = server.service.head_seq();
    let err = promote(&mut promoter, WEB, "", "prod").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("qa-cluster, staging-cluster"),
        "the refusal names the clusters: {}",
        err.message()
    );
    assert_eq!(server.service.head_seq(), head, "nothing moved");
    let st = status(&mut promoter, "shop", false).await;
    let prod = st.rings.iter().find(|r| r.name == "prod").unwrap();
    let gs = prod.gate_status.as_ref().unwrap();
    assert!(!gs.open);
    assert_eq!(gs.waiting_for, ["qa-cluster", "staging-cluster"]);
    assert_eq!(gs.candidate, v1);
    let test = st.rings.iter().find(|r| r.name == "test").unwrap();
    // Summaries cover both clusters; the per-target rows are only the failing one.
    let summaries: Vec<(&str, u32, u32)> = test
        .cluster_summaries
        .iter()
        .map(|c| (c.cluster.as_str(), c.targets, c.failing))
        .collect();
    assert_eq!(
        summaries,
        [("qa-cluster", 1, 1), ("staging-cluster", 1, 0)],
        "{test:?}"
    );
    // On the wire a running digest names its clusters by position in cluster_summaries.
    let indexes: Vec<(&str, &[u32])> = test
        .running
        .iter()
        .map(|d| (d.digest.as_str(), d.cluster_indexes.as_slice()))
        .collect();
    assert_eq!(indexes, [(old.as_str(), &[1][..]), (v1.as_str(), &[0][..])]);
    let mut resolved = st.clone();
    ferry_proto::status::resolve_cluster_names(&mut resolved);
    let test = resolved.rings.iter().find(|r| r.name == "test").unwrap();
    let running: Vec<(&str, &[String])> = test
        .running
        .iter()
        .map(|d| (d.digest.as_str(), d.clusters.as_slice()))
        .collect();
    assert_eq!(
        running,
        [
            (old.as_str(), &["staging-cluster".to_string()][..]),
            (v1.as_str(), &["qa-cluster".to_string()][..]),
        ]
    );
    let failing: Vec<(&str, &str)> = test
        .clusters
        .iter()
        .map(|t| (t.cluster.as_str(), t.error.as_str()))
        .collect();
    assert_eq!(failing, [("qa-cluster", "ImagePullBackOff")]);
    let every = promoter
        .get_pipeline(pb::GetPipelineRequest {
            name_or_image: "shop".into(),
            targets: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let test = every.rings.iter().find(|r| r.name == "test").unwrap();
    assert_eq!(test.clusters.len(), 2, "targets: true lists every target");
    // --force skips the gate and is recorded as forced.
    let mut forced = promote_req(WEB, "", "prod");
    forced.force = true;
    forced.reason = "incident 42".into();
    let moved = promoter.promote(forced).await.unwrap().into_inner();
    assert_eq!(moved.moved.len(), 1);
    promoter
        .rollback(pb::RollbackRequest {
            image: WEB.into(),
            ring: "prod".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(); // prod was empty before: no previous digest
                       // Both apply it cleanly: the gate opens.
    report(&mut publisher, "staging-cluster", "test", &v1, "").await;
    report(&mut publisher, "qa-cluster", "test", &v1, "").await;
    let st = status(&mut promoter, "shop", false).await;
    let prod = st.rings.iter().find(|r| r.name == "prod").unwrap();
    assert!(prod.gate_status.as_ref().unwrap().open, "{prod:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_shift_needs_a_reason_skips_the_closed_gate_and_is_recorded() {
    let Rig {
        server,
        mut publisher,
        mut promoter,
    } = rig().await;
    let gate = pb::Gate {
        require_applied: true,
        soak_seconds: 0,
        auto_promote: false,
    };
    promoter
        .apply_pipeline(spec("shop", &[WEB], "", &[("test", gate)]))
        .await
        .unwrap();
    let (v1, _) = publish(&mut publisher, WEB, 1, "1", &[]).await;
    promote(&mut promoter, WEB, "", "dev").await.unwrap();
    let shift = |force: bool, reason: &str| pb::ShiftRequest {
        pipeline: "shop".into(),
        force,
        reason: reason.into(),
    };
    let head = server.service.head_seq();
    // Nobody follows dev: the gate of test is closed.
    let err = promoter.shift(shift(false, "")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("--force"), "{}", err.message());
    let err = promoter.shift(shift(true, "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("--reason"), "{}", err.message());
    assert_eq!(server.service.head_seq(), head, "refusals move nothing");

    let moved = promoter
        .shift(shift(true, "incident 42"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.moved.len(), 1, "{moved:?}");
    assert_eq!(moved.moved[0].ring, "test");
    assert_eq!(at(&mut promoter, "shop", "test", WEB).await, Some(v1));
    let st = status(&mut promoter, "shop", true).await;
    let test = st.rings.iter().find(|r| r.name == "test").unwrap();
    let last = &test.history[WEB].entries[0];
    assert!(last.forced, "{last:?}");
    assert_eq!(last.reason, "shift: incident 42");
    // The stored RING_MOVED event says so too.
    let events = server.service.store().events_after(head, 10).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].forced, "{events:?}");
    assert_eq!(events[0].reason, "shift: incident 42");
    server.stop().await;
}
