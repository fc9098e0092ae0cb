//! Releases made up in memory and published straight over gRPC, for tests and benchmarks that
//! need many distinct releases without an origin registry: each has its own config (a revision
//! label) and so its own manifest digest, as a CI build would. Layers are descriptors only;
//! ferry never reads them.

use ferry_proto::digest::sha256_digest;
use ferry_proto::pb;
use serde_json::json;

/// Release number `n` of `image`, tagged `tags`.
pub fn release(image: &str, n: u64, tags: Vec<String>) -> pb::PublishRequest {
    let layer = sha256_digest(format!("{image} layer {n}").as_bytes());
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "org.opencontainers.image.revision": format!("r{n}") } },
        "rootfs": { "type": "layers", "diff_ids": [layer] },
    }))
    .expect("JSON");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
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
    pb::PublishRequest {
        image: image.into(),
        manifest: Some(pb::Content {
            digest: String::new(),
            media_type: String::new(),
            data: manifest,
        }),
        blobs: vec![pb::Content {
            digest: sha256_digest(&config),
            media_type: String::new(),
            data: config,
        }],
        tags,
        ..Default::default()
    }
}
