//! Releases made up in memory and published straight over gRPC, for tests and benchmarks that
//! need many distinct releases without an origin registry: each has its own config (a revision
//! label) and so its own manifest digest, as a CI build would. Layers are descriptors only;
//! ferry never reads them.
//!
//! - [`release`]: a single-platform image (manifest and config).
//! - [`multi_arch_release`]: an OCI index of a linux/amd64 and a linux/arm64 image.
//! - [`artifact`]: an OCI 1.1 artifact (signature, SBOM…) whose `subject` is another manifest.

use ferry_proto::digest::sha256_digest;
use ferry_proto::pb;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Release number `n` of `image`, tagged `tags`.
pub fn release(image: &str, n: u64, tags: Vec<String>) -> pb::PublishRequest {
    let (manifest, config) = platform_image(image, n, "amd64");
    pb::PublishRequest {
        image: image.into(),
        manifest: Some(content(String::new(), manifest.data)),
        blobs: vec![config],
        tags,
        ..Default::default()
    }
}

/// Release number `n` of `image` for linux/amd64 and linux/arm64 under one OCI index, tagged
/// `tags`. The children and both configs travel with the index, as `ferry publish` sends them.
pub fn multi_arch_release(image: &str, n: u64, tags: Vec<String>) -> pb::PublishRequest {
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (manifest, config) = platform_image(image, n, arch);
        descriptors.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": manifest.digest,
            "size": manifest.data.len(),
            "platform": { "architecture": arch, "os": "linux" },
        }));
        children.push(manifest);
        blobs.push(config);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
    }))
    .expect("JSON");
    pb::PublishRequest {
        image: image.into(),
        manifest: Some(content(String::new(), index)),
        children,
        blobs,
        tags,
        ..Default::default()
    }
}

/// An artifact of `artifact_type` in `image` whose `subject` is the manifest `subject` (as
/// published: its media type is read from its `mediaType`), tagged `tags`. Its config and its
/// one layer are the empty descriptor, as OCI 1.1 recommends for artifacts without a config.
pub fn artifact(
    image: &str,
    subject: &pb::Content,
    artifact_type: &str,
    tags: Vec<String>,
) -> pb::PublishRequest {
    let subject_type = serde_json::from_slice::<serde_json::Value>(&subject.data)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(String::from))
        .expect("the subject manifest names its mediaType");
    let empty = b"{}".to_vec();
    let empty_descriptor = json!({
        "mediaType": OCI_EMPTY,
        "digest": sha256_digest(&empty),
        "size": empty.len(),
    });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_descriptor,
        "layers": [empty_descriptor],
        "subject": {
            "mediaType": subject_type,
            "digest": sha256_digest(&subject.data),
            "size": subject.data.len(),
        },
        "annotations": { "org.opencontainers.image.title": format!("{artifact_type} of {image}") },
    }))
    .expect("JSON");
    pb::PublishRequest {
        image: image.into(),
        manifest: Some(content(String::new(), manifest)),
        blobs: vec![pb::Content {
            digest: sha256_digest(&empty),
            media_type: OCI_EMPTY.into(),
            data: empty,
        }],
        tags,
        ..Default::default()
    }
}

/// Release `n` of `image` for linux/`arch`: its manifest and its config, each with its digest.
fn platform_image(image: &str, n: u64, arch: &str) -> (pb::Content, pb::Content) {
    let layer = sha256_digest(format!("{image} {arch} layer {n}").as_bytes());
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": { "Labels": { "org.opencontainers.image.revision": format!("r{n}") } },
        "rootfs": { "type": "layers", "diff_ids": [layer] },
    }))
    .expect("JSON");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer,
            "size": 4096 + n,
        }],
    }))
    .expect("JSON");
    (
        content(sha256_digest(&manifest), manifest),
        content(sha256_digest(&config), config),
    )
}

fn content(digest: String, data: Vec<u8>) -> pb::Content {
    pb::Content {
        digest,
        media_type: String::new(),
        data,
    }
}
