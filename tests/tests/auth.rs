//! Issue 5, tokens and roles against the real ferry-server binary: no token, the wrong role or
//! the wrong scope is refused with UNAUTHENTICATED or PERMISSION_DENIED and nothing is stored;
//! a token revoked by `ferry-server token revoke` (another process) is refused on the next
//! call, and its open streams end within a heartbeat.

use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::ferry::FerryServer;
use ferry_tests::ferry::SubscribeFrom;
use ferry_tests::http;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::releases;
use tonic::Code;

/// A one-tag release (`1.0.N`) of `image`; `n` makes its digest unique.
fn release(image: &str, n: u32) -> pb::PublishRequest {
    releases::release(image, n as u64, vec![format!("1.0.{n}")])
}

async fn client(server: &FerryServer, token: Option<&str>) -> ferry_proto::client::Client {
    ferry_proto::client::connect(&server.grpc_url(), token)
        .await
        .unwrap()
}

/// The server's head seq and catalog, read with the bootstrap token and anonymously.
async fn stored(server: &FerryServer) -> (u64, String) {
    let head = server
        .client()
        .await
        .list_tags(pb::ListTagsRequest { images: vec![] })
        .await
        .unwrap()
        .into_inner()
        .head_seq;
    let catalog = http::get(&server.http_addr, "/v2/_catalog").unwrap();
    (head, String::from_utf8(catalog.body).unwrap())
}

/// Creates a token with `args` (e.g. `--role publisher --scope x`); returns the secret.
fn create(server: &FerryServer, args: &[&str]) -> String {
    let mut full = vec!["create"];
    full.extend_from_slice(args);
    server.token_command(&full).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_needs_a_publisher_token_within_its_scope() {
    let server = FerryServer::start();
    let agent = create(&server, &["--role", "agent", "--name", "cluster-1"]);
    let team_a = create(
        &server,
        &[
            "--role",
            "publisher",
            "--scope",
            "registry.example.com/team-a",
            "--name",
            "ci-team-a",
        ],
    );
    let before = stored(&server).await;

    let refusals = [
        (
            None,
            "registry.example.com/team-a/app",
            Code::Unauthenticated,
            "no token",
        ),
        (
            Some("ferry_0000"),
            "registry.example.com/team-a/app",
            Code::Unauthenticated,
            "not known",
        ),
        (
            Some(agent.as_str()),
            "registry.example.com/team-a/app",
            Code::PermissionDenied,
            "that needs role publisher",
        ),
        (
            Some(team_a.as_str()),
            "registry.example.com/team-b/app",
            Code::PermissionDenied,
            "may publish only under registry.example.com/team-a",
        ),
        (
            Some(team_a.as_str()),
            "registry.example.com/team-a-evil/app",
            Code::PermissionDenied,
            "is outside them",
        ),
    ];
    for (token, image, code, words) in refusals {
        let err = client(&server, token)
            .await
            .publish(release(image, 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{token:?} {image}: {err:?}");
        assert!(
            err.message().contains(words),
            "{token:?} {image}: {}",
            err.message()
        );
    }
    assert_eq!(
        stored(&server).await,
        before,
        "a refused publish stores nothing"
    );

    let ok = client(&server, Some(&team_a))
        .await
        .publish(release("registry.example.com/team-a/app", 1))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().moved.len(), 1);

    // The CLI says why, naming the flag to use.
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "v1");
    let source = layout.reference("v1");
    let out = server.publish_as(
        &[&source, "--image", "registry.example.com/team-a/cli"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no token") && stderr.contains("--token"),
        "{stderr}"
    );
    let out = server.publish_as(
        &[&source, "--image", "registry.example.com/team-a/cli"],
        Some(&team_a),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_needs_an_agent_token() {
    let server = FerryServer::start();
    let publisher = create(&server, &["--role", "publisher"]);
    for (token, code) in [
        (None, Code::Unauthenticated),
        (Some(publisher.as_str()), Code::PermissionDenied),
    ] {
        let mut c = client(&server, token).await;
        let err = c
            .list_tags(pb::ListTagsRequest { images: vec![] })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "ListTags with {token:?}: {err:?}");
        let err = c.subscribe_from(0, &[]).await.unwrap_err();
        assert_eq!(err.code(), code, "Subscribe with {token:?}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_once_and_loses_its_streams() {
    let server = FerryServer::start_with(&["--heartbeat-secs", "1"]);
    let ci = create(&server, &["--role", "publisher", "--name", "ci"]);
    let cluster = create(&server, &["--role", "agent", "--name", "cluster"]);
    let mut publisher = client(&server, Some(&ci)).await;
    publisher
        .publish(release("registry.example.com/app", 1))
        .await
        .unwrap();
    let mut stream = client(&server, Some(&cluster))
        .await
        .subscribe_from(0, &[])
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(
        matches!(first.item, Some(pb::subscribe_response::Item::Event(_))),
        "{first:?}"
    );

    server.token_command(&["revoke", "ci"]);
    server.token_command(&["revoke", "cluster"]);
    let err = publisher
        .publish(release("registry.example.com/app", 2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("\"ci\" has been revoked"),
        "{}",
        err.message()
    );

    // The open stream ends with UNAUTHENTICATED at its next heartbeat (1 s here).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue, // a heartbeat sent before the revocation
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the revoked token's stream is still open after 5 s");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");

    let list = server.token_command(&["list"]);
    assert!(list.contains("ci") && list.contains("revoked"), "{list}");
    assert!(
        !list.contains(&ci) && !list.contains("ferry_"),
        "token list must not show secrets:\n{list}"
    );
}

#[test]
fn bootstrap_token_is_owner_only_and_token_create_checks_its_input() {
    use std::os::unix::fs::PermissionsExt;
    let server = FerryServer::start();
    let mode = std::fs::metadata(server.token_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "bootstrap-token mode {mode:o}");
    assert!(
        server.log().contains("bootstrap-token"),
        "the log says where the token is:\n{}",
        server.log()
    );

    for (args, words) in [
        (
            vec!["create", "--role", "admin"],
            "role \"admin\" is not one of publisher, agent, reader",
        ),
        (
            vec!["create", "--role", "agent", "--scope", "team"],
            "--scope limits publishing and promoting, so it needs --role publisher or --role promoter",
        ),
        (
            vec!["create", "--role", "publisher", "--scope", "Team/*"],
            "must be a repository prefix",
        ),
        (
            vec!["create", "--role", "agent", "--name", "bootstrap"],
            "\"bootstrap\" already exists",
        ),
        (
            vec!["revoke", "nobody"],
            "no token with id or name \"nobody\"",
        ),
    ] {
        let out = std::process::Command::new(ferry_tests::ferry::binary("ferry-server"))
            .arg("--data-dir")
            .arg(server.data_dir())
            .arg("token")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(words),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_per_token_are_capped() {
    let server = FerryServer::start_with(&["--max-streams-per-token", "2"]);
    let token = create(&server, &["--role", "agent", "--name", "cluster"]);
    let subscribe = || async {
        client(&server, Some(&token))
            .await
            .subscribe_from(0, &[])
            .await
    };
    let first = subscribe().await.unwrap();
    let _second = subscribe().await.unwrap();
    let err = subscribe().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message()
            .contains("\"cluster\" already has 2 open event streams"),
        "{}",
        err.message()
    );
    // Another token is not affected, and a closed stream frees its place.
    server.client().await.subscribe_from(0, &[]).await.unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match subscribe().await {
            Ok(_) => break,
            Err(e)
                if std::time::Instant::now() < deadline && e.code() == Code::ResourceExhausted =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the closed stream's place was not freed: {e:?}"),
        }
    }
}
