//! Issue 5, crash safety: 300 concurrent publishes with ferry-server killed by SIGKILL in the
//! middle. After a restart every publish that was acknowledged is served by the registry, its
//! event is in the log at the seq the publisher was told, the log has no gaps, and SQLite's
//! integrity check passes (`ferry-server check`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::ferry::SubscribeFrom;
use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::http;
use ferry_tests::releases;

/// A one-tag release (`1.0.N`) of `image`; `n` makes its digest unique.
fn release(image: &str, n: usize) -> pb::PublishRequest {
    releases::release(image, n as u64, vec![format!("1.0.{n}")])
}

/// An acknowledged publish: image, tag, digest and the seq of its event.
type Ack = (String, String, String, u64);

/// Fails unless the registry serves every acknowledged publish at its digest.
fn assert_served(server: &FerryServer, acked: &[Ack]) {
    for (image, tag, digest, _) in acked {
        let resp = http::get(&server.http_addr, &format!("/v2/{image}/manifests/{tag}")).unwrap();
        assert_eq!(
            resp.status, 200,
            "{image}:{tag} was acknowledged but is gone"
        );
        let served = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("docker-content-digest"));
        assert_eq!(
            served.map(|(_, v)| v.as_str()),
            Some(digest.as_str()),
            "{image}:{tag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_publishes_survive_sigkill_in_the_middle_of_300() {
    let mut server = FerryServer::start();
    let (url, token) = (server.grpc_url(), server.token());
    let acked: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(
            ferry_proto::client::connect(&url, Some(&token))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for n in 0..300 {
        let mut client = clients[n % clients.len()].clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let image = format!("registry.example.com/storm/app-{}", n % 10);
            if let Ok(resp) = client.publish(release(&image, n)).await {
                let resp = resp.into_inner();
                let moved = &resp.moved[0];
                acked.lock().unwrap().push((
                    image,
                    moved.tag.clone(),
                    resp.digest.clone(),
                    moved.seq,
                ));
            }
        }));
    }
    // Kill once a fifth have been acknowledged: the rest are in flight or not yet sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "60 publishes were not acknowledged in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill9();
    for t in tasks {
        tokio::time::timeout(ANSWER, t)
            .await
            .expect("a publish task never finished after the kill")
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < 300,
        "every publish returned before the kill; the test proves nothing"
    );
    eprintln!(
        "{} of 300 publishes were acknowledged before SIGKILL",
        acked.len()
    );

    // The data directory as the crash left it.
    let check = std::process::Command::new(binary("ferry-server"))
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg("check")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(report.contains("integrity_check: ok"), "{report}");

    server.restart();
    assert_served(&server, &acked);

    // Every acknowledged seq is in the log with its release.
    let mut client = server.client().await;
    let head = client
        .list_tags(pb::ListTagsRequest { images: vec![] })
        .await
        .unwrap()
        .into_inner()
        .head_seq;
    let mut stream = client.subscribe_from(0, &[]).await.unwrap().into_inner();
    let mut log = BTreeMap::new();
    while log.len() < head as usize {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("replay stalled")
            .unwrap()
            .expect("stream ended");
        if let Some(pb::subscribe_response::Item::Event(e)) = msg.item {
            log.insert(e.seq, (e.image, e.tag, e.digest));
        }
    }
    assert_eq!(
        log.keys().copied().collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "gapless"
    );
    for (image, tag, digest, seq) in &acked {
        assert_eq!(
            log.get(seq),
            Some(&(image.clone(), tag.clone(), digest.clone())),
            "event {seq}"
        );
    }
}

/// How one publish of the SIGTERM test ended.
#[derive(Debug)]
enum Outcome {
    /// Answered OK.
    Acked(Ack),
    /// Refused with a status.
    Refused(tonic::Code, String),
    /// No answer within [`ANSWER`]: neither finished nor refused.
    Hung,
}

/// How long any one publish, join or stream read may take before the test fails: every wait has
/// a deadline, so a server that never answers fails the test instead of hanging it.
const ANSWER: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_publishes_in_flight_and_ends_streams_with_a_status() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut server = FerryServer::start();
    let (url, token) = (server.grpc_url(), server.token());
    let mut stream = server
        .client()
        .await
        .subscribe_from(0, &[])
        .await
        .unwrap()
        .into_inner();
    let signalled = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (url, token, signalled, acked_count) = (
            url.clone(),
            token.clone(),
            signalled.clone(),
            acked_count.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(mut client) = ferry_proto::client::connect(&url, Some(&token)).await else {
                return None; // the listener already closed: no publish was sent
            };
            let image = "registry.example.com/drain/app".to_string();
            let sent_before_signal = !signalled.load(Ordering::SeqCst);
            let answer = tokio::time::timeout(ANSWER, client.publish(release(&image, n))).await;
            let answered_after_signal = signalled.load(Ordering::SeqCst);
            let outcome = match answer {
                Ok(Ok(resp)) => {
                    acked_count.fetch_add(1, Ordering::SeqCst);
                    let resp = resp.into_inner();
                    let m = &resp.moved[0];
                    Outcome::Acked((image, m.tag.clone(), resp.digest.clone(), m.seq))
                }
                Ok(Err(status)) => Outcome::Refused(status.code(), status.message().to_string()),
                Err(_) => Outcome::Hung,
            };
            Some((n, sent_before_signal && answered_after_signal, outcome))
        }));
    }
    let deadline = std::time::Instant::now() + ANSWER;
    while acked_count.load(Ordering::SeqCst) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "20 publishes were not acknowledged in {ANSWER:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    signalled.store(true, Ordering::SeqCst);
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(15)));
    let status = status.expect("ferry-server did not exit within 15 s of SIGTERM");
    assert!(
        status.success(),
        "ferry-server exited with {status} after SIGTERM"
    );
    let mut outcomes = Vec::new();
    for t in tasks {
        let joined = tokio::time::timeout(ANSWER, t)
            .await
            .expect("a publish task never finished");
        outcomes.extend(joined.unwrap());
    }

    // Every publish either finished (acknowledged) or was refused with UNAVAILABLE: no other
    // code, no publish left without an answer.
    let in_flight = outcomes.iter().filter(|(_, f, _)| *f).count();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for (n, was_in_flight, outcome) in &outcomes {
        match outcome {
            Outcome::Acked(ack) => acked.push(ack.clone()),
            Outcome::Refused(tonic::Code::Unavailable, why) => refused.push(why.as_str()),
            other => panic!(
                "publish {n} (in flight at SIGTERM: {was_in_flight}) ended neither acknowledged nor UNAVAILABLE: {other:?}"
            ),
        }
    }
    eprintln!(
        "{} publishes sent; {in_flight} in flight at SIGTERM; {} acknowledged, {} refused UNAVAILABLE {:?}",
        outcomes.len(),
        acked.len(),
        refused.len(),
        refused.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        in_flight > 0,
        "no publish was in flight when SIGTERM arrived; the test proves nothing"
    );

    // The open stream ended with a status saying why, after the events it was sent.
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("stream hung")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("shutting down"),
        "{}",
        ended.message()
    );

    // Every publish that was answered OK is there after a restart: none acknowledged but missing.
    server.restart();
    assert_served(&server, &acked);
}
