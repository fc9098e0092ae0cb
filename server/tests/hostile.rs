//! Hostile publishes sent straight to the gRPC service, as a stolen token would: the `ferry` CLI
//! validates before it calls, so these reach the server's own checks.

use std::time::Duration;

use ferry_proto::pb;
use ferry_server::config::ServerConfig;
use ferry_server::service::Limits;
use ferry_tests::releases::release;
use tonic::Code;

async fn start() -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
        heartbeat: Duration::from_secs(5),
        http_workers: 1,
        registry_auth: ferry_server::registry::auth::RegistryAuthMode::Anonymous,
        registry_token_ttl: Duration::from_secs(300),
        tls: None,
        max_streams_per_token: 1000,
        bootstrap_token_file: None,
    };
    let service = ferry_server::run::open_service(&cfg).unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
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
    (addr, token, dir)
}

// Regression (issue 14): a 10 KB image name made the refusal exceed gRPC's 16 KiB metadata
// limit, and the client saw only "Stream removed" instead of the rule it broke.
#[tokio::test]
async fn a_huge_invalid_name_is_refused_with_a_short_message_that_names_the_rule() {
    let (addr, token, _dir) = start().await;
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
