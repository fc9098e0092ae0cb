//! `GET|HEAD /v2/<name>/manifests/<reference>`.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use ferry_proto::manifest::{OCI_INDEX, OCI_MANIFEST};

use super::{manifest_of, Registry, REPO};
use ferry_tests::oci::sha256_digest;

#[actix_web::test]
async fn manifest_by_tag_and_by_digest_is_the_published_bytes() {
    let (registry, published) = Registry::with_images();
    let (data, digest) = manifest_of(&published.image);
    for reference in ["v1", digest.as_str()] {
        let reply = registry
            .get(&format!("/v2/{REPO}/manifests/{reference}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reference}");
        assert_eq!(reply.body, data, "{reference}: bytes exactly as published");
        assert_eq!(reply.length, Some(data.len() as u64), "{reference}");
        assert_eq!(reply.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(reply.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{digest}\"").as_str()),
            "{reference}"
        );
        assert_eq!(
            reply.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
    }
}

#[actix_web::test]
async fn head_manifest_sends_the_headers_and_length_of_get() {
    // skopeo reads the digest from HEAD with no fallback; crane needs all three headers.
    let (registry, published) = Registry::with_images();
    let (data, _) = manifest_of(&published.index);
    let uri = format!("/v2/{REPO}/manifests/v2");
    let get = registry.get(&uri).await;
    let head = registry
        .send(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&uri),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.length, Some(data.len() as u64));
    for name in ["content-type", "docker-content-digest", "etag"] {
        assert!(head.header(name).is_some(), "HEAD has no {name}");
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
}

#[actix_web::test]
async fn an_index_and_each_of_its_children_are_served() {
    let (registry, published) = Registry::with_images();
    let (data, digest) = manifest_of(&published.index);
    let reply = registry.get(&format!("/v2/{REPO}/manifests/v2")).await;
    assert_eq!(reply.body, data);
    assert_eq!(reply.header("content-type"), Some(OCI_INDEX));
    assert_eq!(reply.header("docker-content-digest"), Some(digest.as_str()));

    assert_eq!(published.index.children.len(), 2);
    let listed: Vec<String> = reply.json()["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| m["digest"].as_str().expect("a digest").to_string())
        .collect();
    for child in &published.index.children {
        let child_digest = sha256_digest(&child.data);
        assert!(
            listed.contains(&child_digest),
            "{child_digest} in {listed:?}"
        );
        let reply = registry
            .get(&format!("/v2/{REPO}/manifests/{child_digest}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{child_digest}");
        assert_eq!(reply.body, child.data);
        assert_eq!(reply.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(
            reply.header("docker-content-digest"),
            Some(child_digest.as_str())
        );
    }
}

#[actix_web::test]
async fn a_moved_tag_serves_the_newer_manifest_and_the_old_digest_stays() {
    let (registry, published) = Registry::with_images();
    let (old, old_digest) = manifest_of(&published.image);
    let newer = ferry_tests::releases::release(super::IMAGE, 3, vec!["v1".into()]);
    registry.publish(newer.clone());
    let (new, new_digest) = manifest_of(&newer);
    let by_tag = registry.get(&format!("/v2/{REPO}/manifests/v1")).await;
    assert_eq!(by_tag.body, new);
    assert_eq!(
        by_tag.header("docker-content-digest"),
        Some(new_digest.as_str())
    );
    let by_digest = registry
        .get(&format!("/v2/{REPO}/manifests/{old_digest}"))
        .await;
    assert_eq!(by_digest.status, StatusCode::OK);
    assert_eq!(by_digest.body, old);
}
