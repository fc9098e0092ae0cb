//! The Subscribe stream against a real server on loopback: replay then live with no gap and no
//! duplicate, a lagging subscriber moved back to replay, heartbeats with the head seq, and a
//! snapshot for a cursor the log cannot serve.

mod common;

use std::time::Duration;

use ferry_proto::pb::{self, subscribe_response::Item};
use ferry_server::service::Limits;
use ferry_tests::ferry::SubscribeFrom;
use ferry_tests::releases::release;

const IMAGE: &str = "registry.example.com/team/app";

/// A server whose live fan-out holds `live_buffer` batches, heartbeating every 200 ms.
async fn start(live_buffer: usize) -> common::Server {
    let limits = Limits {
        live_buffer,
        ..Limits::default()
    };
    common::Server::start(limits, Duration::from_millis(200)).await
}

async fn publish(client: &mut ferry_proto::client::Client, n: u64) -> u64 {
    client
        .publish(release(IMAGE, n, vec![format!("t{n}")]))
        .await
        .unwrap()
        .into_inner()
        .head_seq
}

/// Reads events until `last` is seen; returns their seqs in order.
async fn events_until(stream: &mut tonic::Streaming<pb::SubscribeResponse>, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let msg = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| panic!("stream stalled after {:?}", seqs.last()))
            .unwrap()
            .expect("stream ended");
        if let Some(Item::Event(e)) = msg.item {
            seqs.push(e.seq);
        }
    }
    seqs
}

#[tokio::test]
async fn replay_then_live_has_no_gap_and_no_duplicate() {
    let server = start(4096).await;
    let mut client = server.client().await;
    for n in 1..=30 {
        publish(&mut client, n).await;
    }
    // Subscribe from 10 while 30 more publishes race the replay.
    let publisher = {
        let mut c = server.client().await;
        tokio::spawn(async move {
            for n in 31..=60 {
                publish(&mut c, n).await;
            }
        })
    };
    let mut stream = client
        .subscribe_from(10, &[IMAGE])
        .await
        .unwrap()
        .into_inner();
    let seqs = events_until(&mut stream, 60).await;
    publisher.await.unwrap();
    assert_eq!(seqs, (11..=60).collect::<Vec<u64>>());
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_lags_behind_the_live_buffer_is_replayed_not_dropped() {
    // A live buffer of 2 publishes: a client that stops reading falls behind almost at once.
    let server = start(2).await;
    let mut client = server.client().await;
    let mut stream = client.subscribe_from(0, &[]).await.unwrap().into_inner();
    // Not reading while 300 publishes of ~32 KB events happen (~10 MB): more than the per-stream
    // buffer (64 messages) and the HTTP/2 windows can hold, so the stream task blocks and the
    // broadcast overruns its receiver.
    let mut publisher = server.client().await;
    let filler = "x".repeat(4000);
    for n in 1..=300 {
        let mut req = release(IMAGE, n, vec![format!("t{n}")]);
        for k in 0..8 {
            req.labels.insert(format!("filler.{k}"), filler.clone());
        }
        publisher.publish(req).await.unwrap();
    }
    let seqs = events_until(&mut stream, 300).await;
    assert!(
        server.service.lag_replays() >= 1,
        "the subscriber never lagged, so the replay path was not exercised"
    );
    // Every seq exactly once, in order.
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_carry_the_head_and_filters_hide_other_images() {
    let server = start(4096).await;
    let mut client = server.client().await;
    for n in 1..=3 {
        publish(&mut client, n).await;
    }
    let mut stream = client
        .subscribe_from(0, &["other.example.com/x"])
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first.item {
        Some(Item::Heartbeat(h)) => assert_eq!(h.head_seq, 3),
        other => panic!("expected a heartbeat (the filter hides every event), got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_cursor_the_log_cannot_serve_gets_a_snapshot_of_current_tags() {
    let server = start(4096).await;
    let mut client = server.client().await;
    for n in 1..=2 {
        publish(&mut client, n).await;
    }
    // A cursor ahead of the head: the agent saw a server whose data was since reset.
    let mut stream = client.subscribe_from(1000, &[]).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    let Some(Item::Snapshot(snap)) = first.item else {
        panic!("expected a snapshot, got {first:?}")
    };
    assert_eq!(snap.as_of_seq, 2);
    let mut tags: Vec<&str> = snap.tags.iter().map(|t| t.tag.as_str()).collect();
    tags.sort();
    assert_eq!(tags, ["t1", "t2"]);
    // Then live from the snapshot's seq.
    publish(&mut client, 3).await;
    assert_eq!(events_until(&mut stream, 3).await, vec![3]);
    server.stop().await;
}

#[tokio::test]
async fn republishing_the_same_digest_under_the_same_tag_emits_no_event() {
    let server = start(4096).await;
    let mut client = server.client().await;
    let first = client
        .publish(release(IMAGE, 1, vec!["v1".into()]))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .publish(release(IMAGE, 1, vec!["v1".into()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.moved.len(), 1);
    assert!(again.moved.is_empty());
    assert_eq!(again.head_seq, first.head_seq);
    server.stop().await;
}
