//! Issue 11, must show 3: ferry-server's readiness goes false while it drains on SIGTERM (at the
//! start of the drain, while its listeners still serve and a Subscribe stream still flows) and
//! while its database file is gone or replaced; the standard gRPC health service says the same
//! on the gRPC listener, for the drain and for the store. Real ferry-server binary, real HTTP and gRPC clients.

use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::ferry::{wait_until, FerryServer};
use ferry_tests::http;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const WAIT: Duration = Duration::from_secs(30);

/// `GET /readyz`: the status and the JSON body's `reason` (empty when ready).
fn readyz(addr: &str) -> Option<(u16, String)> {
    let r = http::get(addr, "/readyz").ok()?;
    let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    assert_eq!(body["ready"], r.status == 200, "{body}");
    let reason = body["reason"].as_str().unwrap_or_default().to_string();
    Some((r.status, reason))
}

/// The gRPC health status of `service` ("" is the whole server), or the call's error code.
async fn grpc_health(url: &str, service: &str) -> Result<ServingStatus, tonic::Code> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .expect("gRPC URL")
        .connect()
        .await
        .map_err(|_| tonic::Code::Unavailable)?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| s.code())?;
    Ok(answer.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_false_at_the_start_of_the_drain_while_a_stream_still_flows() {
    // A drain long enough that the test sees it whatever the machine's load; the server exits
    // when it ends.
    let mut server = FerryServer::start_with(&["--drain-secs", "10", "--heartbeat-secs", "1"]);
    let url = server.grpc_url();
    for service in ["", "ferry.v1.Ferry"] {
        assert_eq!(
            grpc_health(&url, service).await,
            Ok(ServingStatus::Serving),
            "{service:?}"
        );
    }
    assert_eq!(
        grpc_health(&url, "no.such.Service").await,
        Err(tonic::Code::NotFound)
    );
    let addr = server.http_addr.clone();
    assert_eq!(
        tokio::task::block_in_place(|| readyz(&addr)),
        Some((200, String::new()))
    );

    // A Subscribe stream holds the server open.
    let mut stream = server
        .client()
        .await
        .subscribe(pb::SubscribeRequest::default())
        .await
        .expect("Subscribe")
        .into_inner();
    assert!(
        stream.message().await.expect("first message").is_some(),
        "the stream ended before SIGTERM"
    );

    server.send_sigterm();
    let mut last = None;
    let not_ready = tokio::task::block_in_place(|| {
        wait_until(WAIT, || {
            last = readyz(&addr);
            matches!(&last, Some((503, reason)) if reason.starts_with("draining"))
        })
    });
    assert!(
        not_ready,
        "/readyz never answered 503 draining: {last:?}\n{}",
        server.log()
    );
    // Not ready on gRPC too, for every name, from the listener that still serves.
    for service in ["", "ferry.v1.Ferry"] {
        assert_eq!(
            grpc_health(&url, service).await,
            Ok(ServingStatus::NotServing),
            "{service:?}"
        );
    }
    // The stream still flows after readiness went false: the drain did not close it.
    let during = stream.message().await;
    assert!(
        matches!(during, Ok(Some(_))),
        "the stream ended as the drain started: {during:?}\n{}",
        server.log()
    );

    // The drain ends: the stream is told the server is shutting down, and the server exits 0.
    let end = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    let status = end.expect_err("the stream ended without a status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    let exit = tokio::task::block_in_place(|| server.wait_exit(WAIT));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}\n{}",
        server.log()
    );
}

#[test]
fn readiness_goes_false_while_the_database_file_is_gone_or_replaced() {
    let server = FerryServer::start();
    let addr = &server.http_addr;
    assert_eq!(readyz(addr), Some((200, String::new())));
    let db = server.data_dir().join("ferry.db");
    let aside = server.data_dir().join("ferry.db.aside");

    let assert_store_not_ready = |what: &str| {
        let answer = readyz(addr);
        assert!(
            matches!(&answer, Some((503, reason)) if reason.starts_with("store:")),
            "{what}: {answer:?}\n{}",
            server.log()
        );
        let health = http::get(addr, "/healthz").expect("GET /healthz");
        assert_eq!(health.status, 200, "{what}: the process is still alive");
    };
    // gRPC health follows the store too (it asks it every second).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = server.grpc_url();
    let grpc_says =
        |want: ServingStatus| wait_until(WAIT, || rt.block_on(grpc_health(&url, "")) == Ok(want));
    assert!(grpc_says(ServingStatus::Serving));
    std::fs::rename(&db, &aside).unwrap();
    assert_store_not_ready("the database file removed");
    assert!(
        grpc_says(ServingStatus::NotServing),
        "gRPC health with the database file removed: {:?}",
        rt.block_on(grpc_health(&url, ""))
    );
    std::fs::write(&db, b"this is not an SQLite database").unwrap();
    assert_store_not_ready("the database file replaced");
    assert!(
        server
            .log()
            .contains("readiness: the store did not answer a read"),
        "the cause is logged:\n{}",
        server.log()
    );

    std::fs::rename(&aside, &db).unwrap();
    assert_eq!(readyz(addr), Some((200, String::new())));
    assert!(
        grpc_says(ServingStatus::Serving),
        "gRPC health once the file is back: {:?}",
        rt.block_on(grpc_health(&url, ""))
    );
}
