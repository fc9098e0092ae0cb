//! Issue 10, crash safety of ring moves: ferry-server is killed with SIGKILL while a `shift` of
//! a pipeline with many pointers is in flight. After each restart the pipeline is in exactly one
//! of two states — every ring moved, or none — and the event log has no gap. `unshift` then
//! restores the state before, so every round starts from the same place.

use std::collections::BTreeMap;

use ferry_proto::pb;
use ferry_tests::ferry::{FerryServer, SubscribeFrom};
use ferry_tests::releases;

const IMAGES: usize = 40;
const RINGS: [&str; 5] = ["ante", "developers", "testers", "users", "post"];

fn image(i: usize) -> String {
    format!("127.0.0.1:5999/crash/app{i}")
}

/// (ring, image) → digest of every pointer.
type Pointers = BTreeMap<(String, String), String>;

async fn pointers(client: &mut ferry_proto::client::Client) -> Pointers {
    let st = client
        .get_pipeline(pb::GetPipelineRequest {
            name_or_image: "crash".into(),
            history: false,
            targets: false,
        })
        .await
        .expect("GetPipeline")
        .into_inner();
    st.rings
        .iter()
        .flat_map(|r| {
            r.pointers
                .iter()
                .map(|p| ((r.name.clone(), p.image.clone()), p.digest.clone()))
        })
        .collect()
}

/// What a shift of `before` gives: every ring takes the previous ring's digest, ante keeps its
/// own, and a ring whose previous ring is empty keeps its own.
fn shifted(before: &Pointers) -> Pointers {
    let mut after = before.clone();
    for i in 0..IMAGES {
        for w in RINGS.windows(2) {
            let from = (w[0].to_string(), image(i));
            let to = (w[1].to_string(), image(i));
            if let Some(d) = before.get(&from) {
                after.insert(to, d.clone());
            }
        }
    }
    after
}

async fn publish_round(client: &mut ferry_proto::client::Client, n: u64) {
    for i in 0..IMAGES {
        let mut req = releases::release(&image(i), n * 1000 + i as u64, vec![format!("1.{n}.0")]);
        req.labels.insert(
            "org.opencontainers.image.version".into(),
            format!("1.{n}.0"),
        );
        client.publish(req).await.expect("publish");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_shift_leaves_every_ring_moved_or_none() {
    let mut server = FerryServer::start();
    let promoter = server
        .token_command(&["create", "--role", "promoter", "--name", "release-bot"])
        .trim()
        .to_string();
    let url = server.grpc_url();
    let connect = |token: String| {
        let url = url.clone();
        async move {
            ferry_proto::client::connect(&url, Some(&token))
                .await
                .expect("connect")
        }
    };
    let mut publisher = connect(server.token()).await;
    let mut promote = connect(promoter.clone()).await;
    promote
        .apply_pipeline(pb::ApplyPipelineRequest {
            spec: Some(pb::PipelineSpec {
                name: "crash".into(),
                rings: RINGS[1..4].iter().map(|r| r.to_string()).collect(),
                images: (0..IMAGES).map(image).collect(),
                ..Default::default()
            }),
            source: String::new(),
        })
        .await
        .expect("ApplyPipeline");
    // Fill the rings with distinct versions: 1.3.0 waits in ante, 1.2.0 runs in developers, …
    for n in 0..4 {
        publish_round(&mut publisher, n).await;
        if n < 3 {
            promote
                .shift(pb::ShiftRequest {
                    pipeline: "crash".into(),
                    ..Default::default()
                })
                .await
                .expect("shift");
        }
    }
    let before = pointers(&mut promote).await;
    assert_eq!(
        before.len(),
        IMAGES * 4,
        "ante and three rings set: {before:?}"
    );
    let after = shifted(&before);
    assert_ne!(before, after);

    // How long one shift takes here, so the kills below spread from before the request to well
    // after its commit.
    let started = std::time::Instant::now();
    promote
        .shift(pb::ShiftRequest {
            pipeline: "crash".into(),
            ..Default::default()
        })
        .await
        .expect("shift");
    let took = started.elapsed();
    assert_eq!(pointers(&mut promote).await, after);
    promote
        .unshift(pb::ShiftRequest {
            pipeline: "crash".into(),
            ..Default::default()
        })
        .await
        .expect("unshift");
    assert_eq!(
        pointers(&mut promote).await,
        before,
        "unshift restores exactly"
    );

    const ROUNDS: u32 = 12;
    let (mut moved, mut not_moved) = (0, 0);
    for round in 0..ROUNDS {
        let mut client = connect(promoter.clone()).await;
        let shift = tokio::spawn(async move {
            client
                .shift(pb::ShiftRequest {
                    pipeline: "crash".into(),
                    ..Default::default()
                })
                .await
        });
        // Kill at a different point of the request each round; some land before, some during,
        // some after the transaction. Which one a round hit is what the check below tells.
        tokio::time::sleep(took * 2 * round / ROUNDS).await;
        server.kill9();
        let acked = shift.await.unwrap().is_ok();
        server.restart();
        let mut client = connect(promoter.clone()).await;
        let now = pointers(&mut client).await;
        if now == after {
            moved += 1;
            client
                .unshift(pb::ShiftRequest {
                    pipeline: "crash".into(),
                    ..Default::default()
                })
                .await
                .expect("unshift after a shift that landed");
            assert_eq!(
                pointers(&mut client).await,
                before,
                "unshift restores exactly"
            );
        } else {
            assert!(
                !acked,
                "round {round}: the shift was acknowledged but is not there"
            );
            assert_eq!(
                now, before,
                "round {round}: some rings moved and some did not"
            );
            not_moved += 1;
        }
        // The log stays gapless across the crash.
        let mut watcher = connect(server.token()).await;
        let head = watcher
            .list_tags(pb::ListTagsRequest { images: vec![] })
            .await
            .expect("ListTags")
            .into_inner()
            .head_seq;
        let mut seen = 0u64;
        let mut sub = watcher
            .subscribe_from(0, &[])
            .await
            .expect("subscribe")
            .into_inner();
        while seen < head {
            match sub.message().await.expect("stream").expect("open").item {
                Some(pb::subscribe_response::Item::Event(e)) => {
                    assert_eq!(e.seq, seen + 1, "gap in the log after round {round}");
                    seen = e.seq;
                }
                Some(_) => {}
                None => {}
            }
        }
    }
    eprintln!("one shift took {took:?}; {moved} rounds landed, {not_moved} did not");
    // Both outcomes must have been seen, or the kills missed the window they are meant to hit.
    assert!(
        moved > 0 && not_moved > 0,
        "{moved} landed, {not_moved} did not"
    );
}
