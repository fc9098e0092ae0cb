//! Cluster reports over gRPC against a real server on loopback: a Report stored under the
//! cluster it names (or the token's name) and read back from the service's index, the role it
//! needs, a refusal that stores nothing, and `connected` following an open Subscribe stream.

mod common;

use std::time::{Duration, Instant};

use ferry_proto::pb;
use ferry_server::service::auth::Role;
use ferry_server::service::Limits;
use tonic::Code;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const IMAGE: &str = "registry.example.com/shop/api";

fn target(key: &str, ring: &str, digest: &str) -> pb::TargetReport {
    pb::TargetReport {
        target: key.into(),
        image: IMAGE.into(),
        digest: digest.into(),
        ring: ring.into(),
        pipeline: "shop".into(),
        file: "env/prod/kustomization.yaml".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        pushed_at_ms: 1,
        error: String::new(),
    }
}

/// Waits until `cond` holds, failing after 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_report_is_stored_under_its_cluster_and_resending_it_changes_nothing() {
    let server = common::Server::start(Limits::default(), Duration::from_secs(5)).await;
    let (_, agent_token) = server
        .service
        .create_token("agent-eu", &[Role::Agent], &[])
        .unwrap();
    let mut agent = server.client_with(&agent_token).await;
    let request = pb::ReportRequest {
        cluster: "prod-eu".into(),
        cursor: 3,
        targets: vec![target("r#a#0", "testers", D1), target("r#b#0", "users", D2)],
    };
    let out = agent.report(request.clone()).await.unwrap().into_inner();
    assert_eq!((out.cluster.as_str(), out.changed), ("prod-eu", 2));
    // The same report again (an agent restarted mid-promotion): nothing changed.
    let out = agent.report(request).await.unwrap().into_inner();
    assert_eq!(out.changed, 0);

    let testers = server.service.ring_reports("shop", "testers");
    assert_eq!(testers.len(), 1);
    assert_eq!(
        (testers[0].cluster.as_str(), testers[0].digest.as_str()),
        ("prod-eu", D1)
    );
    let eu = server.service.cluster("prod-eu").unwrap();
    assert_eq!((eu.token.as_str(), eu.cursor), ("agent-eu", 3));

    // No cluster named: the token's name. An empty report drops that cluster's targets only.
    let out = agent
        .report(pb::ReportRequest {
            cluster: String::new(),
            cursor: 4,
            targets: vec![target("r#a#0", "testers", D2)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.cluster, "agent-eu");
    agent
        .report(pb::ReportRequest {
            cluster: "prod-eu".into(),
            cursor: 5,
            targets: vec![],
        })
        .await
        .unwrap();
    let testers = server.service.ring_reports("shop", "testers");
    assert_eq!(testers.len(), 1);
    assert_eq!(testers[0].cluster, "agent-eu");
    assert!(server.service.ring_reports("shop", "users").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn report_needs_role_agent_and_a_refused_report_stores_nothing() {
    let server = common::Server::start(Limits::default(), Duration::from_secs(5)).await;
    let (_, publisher) = server
        .service
        .create_token("ci", &[Role::Publisher], &[])
        .unwrap();
    let mut ci = server.client_with(&publisher).await;
    let err = ci
        .report(pb::ReportRequest {
            cluster: "prod-eu".into(),
            cursor: 1,
            targets: vec![target("t", "testers", D1)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("role agent"), "{}", err.message());

    let mut agent = server.client().await;
    let err = agent
        .report(pb::ReportRequest {
            cluster: "prod-eu".into(),
            cursor: 1,
            targets: vec![
                target("t", "testers", D1),
                target("u", "testers", "sha1:00"),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("\"sha1:00\""), "{}", err.message());
    assert!(server.service.clusters().is_empty());
    assert!(server.service.ring_reports("shop", "testers").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_cluster_is_connected_while_its_subscribe_stream_is_open() {
    let server = common::Server::start(Limits::default(), Duration::from_millis(200)).await;
    let mut agent = server.client().await;
    agent
        .report(pb::ReportRequest {
            cluster: "prod-eu".into(),
            cursor: 0,
            targets: vec![target("t", "testers", D1)],
        })
        .await
        .unwrap();
    let service = server.service.clone();
    let connected = move || service.cluster("prod-eu").is_some_and(|c| c.connected);
    assert!(!connected());

    let mut stream = agent
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            images: vec![],
            cluster: "prod-eu".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The first heartbeat proves the stream is serving.
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("no heartbeat within 10 s")
        .unwrap()
        .expect("stream ended");
    assert!(connected());
    drop(stream);
    until("prod-eu to show disconnected", || !connected()).await;

    // Without a cluster name the stream counts for the token's name; an invalid name is refused.
    let stream = agent
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let service = server.service.clone();
    until("bootstrap to show connected", || {
        service.cluster("bootstrap").is_some_and(|c| c.connected)
    })
    .await;
    drop(stream);
    let err = agent
        .subscribe(pb::SubscribeRequest {
            cluster: "bad name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("\"bad name\""), "{}", err.message());

    // An observer (`ferry events`) streams like an agent but is no cluster.
    let mut watcher = agent
        .subscribe(pb::SubscribeRequest {
            cluster: "watcher".into(),
            observer: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), watcher.message())
        .await
        .expect("no heartbeat within 10 s")
        .unwrap()
        .expect("stream ended");
    assert!(server.service.cluster("watcher").is_none());
    assert!(server
        .service
        .clusters()
        .iter()
        .all(|c| c.name != "watcher"));
    server.stop().await;
}
