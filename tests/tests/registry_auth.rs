//! Issue 5, registry reads with `--registry-auth token`: `/v2/` challenges with a Bearer realm
//! on the registry's own host; skopeo logs in with `--creds` through the token flow; Basic auth
//! with the token as password works on any request; a wrong or revoked token, and a registry
//! token used outside its scope, are refused. Issue 9: the server remembers token checks for
//! 250 ms, and a revocation by `ferry-server token revoke` still applies within one second.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferry_tests::ferry::{wait_until, FerryServer};
use ferry_tests::http;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::skopeo;

const IMAGE: &str = "registry.example.com/team/app";
const REPO: &str = "registry.example.com/team/app";

fn header<'a>(resp: &'a http::Response, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn basic(token: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("anyone:{token}")))
}

/// A server in token mode holding one published image (tag v1); returns it and the digest.
fn server_with_image() -> (FerryServer, String, tempfile::TempDir) {
    let server = FerryServer::start_with(&["--registry-auth", "token"]);
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "v1");
    let digest = server.publish_ok(&[&layout.reference("v1"), "--image", IMAGE]);
    (server, digest, tmp)
}

#[test]
fn anonymous_reads_are_challenged_and_skopeo_logs_in_with_a_token() {
    let (server, digest, _tmp) = server_with_image();
    let addr = &server.http_addr;

    // The challenge points at /token on the same host and port.
    let ping = http::get(addr, "/v2/").unwrap();
    assert_eq!(ping.status, 401);
    assert_eq!(
        header(&ping, "www-authenticate"),
        Some(format!("Bearer realm=\"http://{addr}/token\",service=\"ferry\"").as_str())
    );
    assert!(String::from_utf8_lossy(&ping.body).contains("\"UNAUTHORIZED\""));
    let manifest = http::get(addr, &format!("/v2/{REPO}/manifests/v1")).unwrap();
    assert_eq!(manifest.status, 401);
    assert!(header(&manifest, "www-authenticate")
        .unwrap()
        .contains(&format!("scope=\"repository:{REPO}:pull\"")));

    let reference = server.docker_ref(&format!("{REPO}:v1"));
    let err = skopeo::inspect(&reference, &[]).unwrap_err();
    assert!(
        format!("{err:#}").to_lowercase().contains("unauthorized"),
        "{err:#}"
    );

    // A reader token through the Bearer flow.
    let reader = server.token_command(&["create", "--role", "reader", "--name", "viewer"]);
    let creds = format!("anyone:{}", reader.trim());
    let inspected = skopeo::inspect(&reference, &["--creds", &creds]).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    let err = skopeo::inspect(&reference, &["--creds", "anyone:ferry_wrong"]).unwrap_err();
    assert!(
        format!("{err:#}").to_lowercase().contains("unauthorized"),
        "{err:#}"
    );

    // Revoked: refused once the server's last check of the token is older than 250 ms (the
    // bound itself is asserted in the next test), also for registry tokens issued before.
    server.token_command(&["revoke", "viewer"]);
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            last = skopeo::inspect(&reference, &["--creds", &creds]).err();
            last.is_some()
        }),
        "skopeo still reads with the revoked token"
    );
    let err = last.unwrap();
    assert!(
        format!("{err:#}").to_lowercase().contains("unauthorized"),
        "{err:#}"
    );
}

#[test]
fn a_token_revoked_by_another_process_is_refused_within_one_second_by_basic_and_bearer() {
    let (server, _digest, _tmp) = server_with_image();
    let addr = &server.http_addr;
    let reader = server.token_command(&["create", "--role", "reader", "--name", "viewer"]);
    let by_basic = basic(reader.trim());
    let answer = http::request(
        addr,
        "GET",
        &format!("/token?service=ferry&scope=repository:{REPO}:pull"),
        &[("Authorization", &by_basic)],
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let by_bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    let manifest = |authorization: &str| {
        http::request(
            addr,
            "GET",
            &format!("/v2/{REPO}/manifests/v1"),
            &[("Authorization", authorization)],
        )
        .unwrap()
        .status
    };
    // Both let in, so the server now holds a fresh check of the token for each.
    assert_eq!(manifest(&by_bearer), 200);
    assert_eq!(manifest(&by_basic), 200);

    // Another process, on the same --data-dir.
    server.token_command(&["revoke", "viewer"]);
    let revoked = Instant::now();
    loop {
        let (bearer, basic) = (manifest(&by_bearer), manifest(&by_basic));
        let after = revoked.elapsed();
        assert!(
            after < Duration::from_secs(1),
            "{after:?} after `token revoke` returned, Bearer got {bearer} and Basic got {basic}; both must be 401 within 1 s"
        );
        if (bearer, basic) == (401, 401) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn basic_auth_and_scoped_registry_tokens() {
    let (server, digest, _tmp) = server_with_image();
    let addr = &server.http_addr;
    let token = server.token();
    let auth = basic(&token);

    let manifest = http::request(
        addr,
        "GET",
        &format!("/v2/{REPO}/manifests/v1"),
        &[("Authorization", &auth)],
    )
    .unwrap();
    assert_eq!(manifest.status, 200);
    assert_eq!(
        header(&manifest, "docker-content-digest"),
        Some(digest.as_str())
    );
    let wrong = http::request(
        addr,
        "GET",
        "/v2/",
        &[("Authorization", &basic("ferry_nope"))],
    )
    .unwrap();
    assert_eq!(wrong.status, 401);

    // /token without credentials is refused; with them it grants pull on what was asked.
    assert_eq!(http::get(addr, "/token?service=ferry").unwrap().status, 401);
    let answer = http::request(
        addr,
        "GET",
        &format!("/token?service=ferry&scope=repository:{REPO}:pull,push"),
        &[("Authorization", &auth)],
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["expires_in"], 300);
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());

    let ok = http::request(
        addr,
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        &[("Authorization", &bearer)],
    )
    .unwrap();
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let other = http::request(
        addr,
        "GET",
        "/v2/registry.example.com/other/manifests/v1",
        &[("Authorization", &bearer)],
    )
    .unwrap();
    assert_eq!(other.status, 401);
    assert!(header(&other, "www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    let tampered = format!("{}x", bearer);
    let bad = http::request(
        addr,
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        &[("Authorization", &tampered)],
    )
    .unwrap();
    assert_eq!(bad.status, 401);
    assert!(header(&bad, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));

    // Anonymous mode (the default) stays open.
    let open = FerryServer::start();
    assert_eq!(http::get(&open.http_addr, "/v2/").unwrap().status, 200);
}

#[test]
fn oversized_headers_are_refused_with_a_clear_error() {
    let server = FerryServer::start();
    let big = "a".repeat(20 * 1024);
    let resp = http::request(&server.http_addr, "GET", "/v2/", &[("X-Padding", &big)]).unwrap();
    assert_eq!(resp.status, 431);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(
        body.contains("\"DENIED\"") && body.contains("at most 16384"),
        "{body}"
    );
    let ok = http::request(&server.http_addr, "GET", "/v2/", &[("X-Padding", "small")]).unwrap();
    assert_eq!(ok.status, 200);
}
