//! The base endpoint and the answers that are not content: OCI error bodies for each code a
//! read can meet, writes refused as UNSUPPORTED, oversized headers refused with 431.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;

use super::{assert_error, Registry, REPO};
use crate::registry::MAX_HEADER_BYTES;

#[actix_web::test]
async fn base_answers_get_and_head_with_the_api_version() {
    let registry = Registry::new();
    for (method, uri) in [
        (Method::GET, "/v2/"),
        (Method::GET, "/v2"),
        (Method::HEAD, "/v2/"),
    ] {
        let reply = registry
            .send(TestRequest::default().method(method.clone()).uri(uri))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{method} {uri}");
        assert_eq!(
            reply.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "{method} {uri}"
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.length, Some(2), "{method} {uri}: the body is {{}}");
    }
}

#[actix_web::test]
async fn an_unknown_repository_is_name_unknown() {
    let (registry, _) = Registry::with_images();
    for resource in ["manifests/v1", "tags/list"] {
        let reply = registry
            .get(&format!("/v2/registry.example.com/team/other/{resource}"))
            .await;
        let message = assert_error(&reply, StatusCode::NOT_FOUND, "NAME_UNKNOWN");
        assert!(
            message.contains("registry.example.com/team/other"),
            "{message}"
        );
    }
}

#[actix_web::test]
async fn an_unknown_tag_or_digest_is_manifest_unknown() {
    let (registry, _) = Registry::with_images();
    let digest = ferry_tests::oci::sha256_digest(b"never published");
    for reference in ["v9", digest.as_str()] {
        let reply = registry
            .get(&format!("/v2/{REPO}/manifests/{reference}"))
            .await;
        let message = assert_error(&reply, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
        assert!(message.contains(reference), "{message}");
    }
}

#[actix_web::test]
async fn a_repository_name_outside_the_grammar_is_name_invalid() {
    let (registry, _) = Registry::with_images();
    // Repository names are lower case.
    let reply = registry
        .get("/v2/Registry.example.com/Team/manifests/v1")
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "NAME_INVALID");
}

#[actix_web::test]
async fn a_malformed_digest_is_digest_invalid() {
    let (registry, _) = Registry::with_images();
    for uri in [
        format!("/v2/{REPO}/manifests/sha256:not-hex"),
        format!("/v2/{REPO}/blobs/sha256:abc"),
        format!("/v2/{REPO}/referrers/sha256:abc"),
    ] {
        let reply = registry.get(&uri).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    }
}

#[actix_web::test]
async fn an_unknown_endpoint_is_not_found() {
    let registry = Registry::new();
    let reply = registry.get(&format!("/v2/{REPO}/other/thing")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[actix_web::test]
async fn writes_are_unsupported_on_every_endpoint() {
    let (registry, _) = Registry::with_images();
    for (method, uri) in [
        (Method::PUT, format!("/v2/{REPO}/manifests/v1")),
        (Method::DELETE, format!("/v2/{REPO}/manifests/v1")),
        (Method::POST, format!("/v2/{REPO}/blobs/uploads/")),
        (Method::PATCH, format!("/v2/{REPO}/blobs/uploads/1")),
        (
            Method::PUT,
            "/v2/registry.example.com/new/manifests/v1".into(),
        ),
    ] {
        let reply = registry
            .send(TestRequest::default().method(method.clone()).uri(&uri))
            .await;
        let message = assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
        assert!(
            message.contains("ferry publish"),
            "{method} {uri}: {message}"
        );
    }
    // Nothing was written: the tag still points where the fixture put it.
    let after = registry.get(&format!("/v2/{REPO}/manifests/v1")).await;
    assert_eq!(after.status, StatusCode::OK);
}

#[actix_web::test]
async fn headers_over_the_limit_are_refused_with_431() {
    let registry = Registry::new();
    let big = "x".repeat(MAX_HEADER_BYTES + 1);
    let reply = registry.get_with("/v2/", ("x-padding", big.as_str())).await;
    let message = assert_error(
        &reply,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "DENIED",
    );
    assert!(message.contains(&MAX_HEADER_BYTES.to_string()), "{message}");

    let within = "x".repeat(MAX_HEADER_BYTES / 2);
    let reply = registry
        .get_with("/v2/", ("x-padding", within.as_str()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}
