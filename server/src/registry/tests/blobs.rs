//! `GET|HEAD /v2/<name>/blobs/<digest>`: stored configs (with `Range`), layers redirected to the
//! origin, anything else unknown.

use actix_web::http::{header, Method, StatusCode};
use actix_web::test::TestRequest;

use super::{assert_error, manifest_of, Registry, ORIGIN_REPO, ORIGIN_URL, REPO};
use ferry_tests::oci::sha256_digest;

/// The published image's config bytes and digest, and its one layer's digest.
fn config_and_layer(published: &super::Published) -> (Vec<u8>, String, String) {
    let config = published.image.blobs[0].data.clone();
    let (manifest, _) = manifest_of(&published.image);
    let manifest: serde_json::Value = serde_json::from_slice(manifest).expect("JSON");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("a layer digest")
        .to_string();
    let digest = sha256_digest(&config);
    (config, digest, layer)
}

#[actix_web::test]
async fn stored_config_is_served_whole_and_by_range() {
    let (registry, published) = Registry::with_images();
    let (config, digest, _) = config_and_layer(&published);
    let uri = format!("/v2/{REPO}/blobs/{digest}");

    let whole = registry.get(&uri).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, config);
    assert_eq!(whole.length, Some(config.len() as u64));
    assert_eq!(
        whole.header("content-type"),
        Some("application/vnd.oci.image.config.v1+json")
    );
    assert_eq!(whole.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));

    let part = registry.get_with(&uri, (header::RANGE, "bytes=0-9")).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, config[..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-9/{}", config.len()).as_str())
    );

    let tail = registry.get_with(&uri, (header::RANGE, "bytes=-5")).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, config[config.len() - 5..]);
}

#[actix_web::test]
async fn a_range_past_the_end_is_416_with_the_length() {
    let (registry, published) = Registry::with_images();
    let (config, digest, _) = config_and_layer(&published);
    let reply = registry
        .get_with(
            &format!("/v2/{REPO}/blobs/{digest}"),
            (header::RANGE, format!("bytes={}-", config.len())),
        )
        .await;
    assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes */{}", config.len()).as_str())
    );
}

#[actix_web::test]
async fn head_blob_ignores_range_and_sends_the_whole_length() {
    let (registry, published) = Registry::with_images();
    let (config, digest, _) = config_and_layer(&published);
    let reply = registry
        .send(
            TestRequest::default()
                .method(Method::HEAD)
                .uri(&format!("/v2/{REPO}/blobs/{digest}"))
                .insert_header((header::RANGE, "bytes=0-9")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.length, Some(config.len() as u64));
    assert_eq!(reply.header("docker-content-digest"), Some(digest.as_str()));
}

#[actix_web::test]
async fn a_layer_is_redirected_to_the_origin_registry() {
    let (registry, published) = Registry::with_images();
    let (_, _, layer) = config_and_layer(&published);
    let reply = registry.get(&format!("/v2/{REPO}/blobs/{layer}")).await;
    assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        reply.header("location"),
        Some(format!("{ORIGIN_URL}/v2/{ORIGIN_REPO}/blobs/{layer}").as_str())
    );
    assert!(reply.body.is_empty());
}

#[actix_web::test]
async fn an_unknown_blob_is_blob_unknown() {
    let (registry, _) = Registry::with_images();
    let digest = sha256_digest(b"never published");
    let reply = registry.get(&format!("/v2/{REPO}/blobs/{digest}")).await;
    let message = assert_error(&reply, StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    assert!(message.contains(&digest), "{message}");
}
