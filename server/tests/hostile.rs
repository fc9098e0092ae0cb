//! Hostile publishes sent straight to the gRPC service, as a stolen token would: the `ferry` CLI
//! validates before it calls, so these reach the server's own checks.

mod common;

use std::time::Duration;

use ferry_proto::pb;
use ferry_server::service::Limits;
use ferry_tests::releases::{multi_arch_release, release};
use tonic::Code;

/// A server on loopback: (gRPC URL, registry address, bootstrap token, its data directory).
async fn start() -> (String, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path(), Limits::default(), Duration::from_secs(5));
    let service = ferry_server::run::open_service(&cfg).unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = http.local_addr().unwrap().to_string();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", grpc.local_addr().unwrap());
    tokio::spawn(ferry_server::run::run(
        cfg,
        service,
        http,
        grpc,
        std::future::pending(),
    ));
    let token =
        std::fs::read_to_string(ferry_server::admin::bootstrap_token_path(dir.path())).unwrap();
    (addr, registry, token, dir)
}

// Regression (issue 14): a 10 KB image name made the refusal exceed gRPC's 16 KiB metadata
// limit, and the client saw only "Stream removed" instead of the rule it broke.
#[tokio::test]
async fn a_huge_invalid_name_is_refused_with_a_short_message_that_names_the_rule() {
    let (addr, _registry, token, _dir) = start().await;
    let mut client = ferry_proto::client::connect(&addr, Some(&token))
        .await
        .unwrap();
    let huge = format!("registry.example.com/{}", "A".repeat(10_000));
    for (field, request) in [
        ("image", release(&huge, 1, vec!["1.0.0".into()])),
        (
            "tag",
            release(
                "registry.example.com/team/app",
                2,
                vec![format!("{}:x", "t".repeat(10_000))],
            ),
        ),
    ] {
        let err = client.publish(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().len() < 1024,
            "{field}: a {} byte message",
            err.message().len()
        );
        assert!(
            err.message().contains("bytes)"),
            "{field}: the length is not said: {}",
            err.message()
        );
    }
    // Nothing was stored: the log is still empty.
    let listed = client
        .list_tags(pb::ListTagsRequest { images: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.head_seq, 0);
    assert!(listed.tags.is_empty());
}

const IMAGE: &str = "registry.example.com/team/app";

/// A publish request bent one way, and the code the server must answer it with.
fn hostile_requests() -> Vec<(&'static str, pb::PublishRequest, Code)> {
    let ok = || release(IMAGE, 1, vec!["1.0.0".into()]);
    let mut cases = Vec::new();
    let mut r = ok();
    r.manifest.as_mut().unwrap().digest = format!("sha256:{}", "0".repeat(64));
    cases.push((
        "manifest digest that is not its bytes'",
        r,
        Code::InvalidArgument,
    ));
    let mut r = ok();
    r.blobs[0].digest = format!("sha256:{}", "1".repeat(64));
    cases.push((
        "config digest that is not its bytes'",
        r,
        Code::InvalidArgument,
    ));
    let mut r = ok();
    r.image = "Registry.Example.com/UPPER//app".into();
    cases.push(("bad image name", r, Code::InvalidArgument));
    cases.push((
        "bad tag",
        release(IMAGE, 1, vec!["v1:2".into()]),
        Code::InvalidArgument,
    ));
    cases.push((
        "more tags than allowed",
        release(IMAGE, 1, (0..101).map(|i| format!("t{i}")).collect()),
        Code::InvalidArgument,
    ));
    let mut r = ok();
    r.labels = (0..300).map(|i| (format!("k{i}"), "v".into())).collect();
    cases.push(("more labels than allowed", r, Code::InvalidArgument));
    let mut r = ok();
    r.blobs[0].data = vec![b' '; 1024 * 1024 + 1];
    r.blobs[0].digest = ferry_proto::digest::sha256_digest(&r.blobs[0].data);
    cases.push(("a blob over the size cap", r, Code::ResourceExhausted));
    let mut r = multi_arch_release(IMAGE, 1, vec!["1.0.0".into()]);
    let child = r.children[0].clone();
    r.children = (0..257).map(|_| child.clone()).collect();
    cases.push(("more children than allowed", r, Code::InvalidArgument));
    let mut r = ok();
    r.manifest.as_mut().unwrap().media_type = "application/vnd.oci.image.index.v1+json".into();
    cases.push((
        "a manifest sent as another media type",
        r,
        Code::InvalidArgument,
    ));
    let mut r = ok();
    r.blobs.clear();
    cases.push(("the config blob missing", r, Code::InvalidArgument));
    let mut r = multi_arch_release(IMAGE, 1, vec!["1.0.0".into()]);
    r.children.pop();
    cases.push(("an index child missing", r, Code::InvalidArgument));
    cases
}

// Issue 14: the server's own checks, at the trust boundary. A stolen publisher token speaks
// gRPC directly, past the CLI's checks; each refusal must come with its code and store nothing.
#[tokio::test]
async fn hostile_publishes_sent_straight_to_the_server_are_refused_and_store_nothing() {
    let (addr, registry, token, _dir) = start().await;
    let mut client = ferry_proto::client::connect(&addr, Some(&token))
        .await
        .unwrap();
    for (what, request, code) in hostile_requests() {
        let err = client
            .publish(request)
            .await
            .expect_err(&format!("{what}: accepted"));
        assert_eq!(err.code(), code, "{what}: {}", err.message());
        assert!(
            !err.message().is_empty() && err.message().len() < 2048,
            "{what}: {:?}",
            err.message()
        );
        let listed = client
            .list_tags(pb::ListTagsRequest { images: vec![] })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.head_seq, 0, "{what}: an event was appended");
        assert!(listed.tags.is_empty(), "{what}: a tag was stored");
        // The registry answers on actix-web's own worker threads, so a blocking GET is fine here.
        let catalog = ferry_tests::http::get(&registry, "/v2/_catalog").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&catalog.body),
            r#"{"repositories":[]}"#,
            "{what}: a repository was stored"
        );
    }
    // The same release, unbent, is accepted: the refusals were about what was bent.
    let moved = client
        .publish(release(IMAGE, 1, vec!["1.0.0".into()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.head_seq, 1);
}
