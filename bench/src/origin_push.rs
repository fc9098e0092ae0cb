//! Pushing releases to docker-registry over its HTTP API, the way CI's push leaves them: a config
//! blob upload (POST for a session, PUT with the digest) and a manifest PUT. Every release shares
//! one small layer, uploaded once per repository with [`upload_shared_layer`].

use anyhow::{bail, Context};
use ferry_proto::digest::sha256_digest;
use serde_json::json;

const SHARED_LAYER: &[u8] = b"one shared layer";

/// `http://ADDR/v2/REPO`: the base of a repository's URLs.
pub fn repo_base(addr: &str, repo: &str) -> String {
    format!("http://{addr}/v2/{repo}")
}

/// A monolithic blob upload: POST for a session, PUT with the digest.
pub async fn upload_blob(http: &reqwest::Client, base: &str, data: &[u8]) -> anyhow::Result<()> {
    let r = http.post(format!("{base}/blobs/uploads/")).send().await?;
    if r.status() != reqwest::StatusCode::ACCEPTED {
        bail!("blob upload POST to {base}: {}", r.status());
    }
    let location = r
        .headers()
        .get("location")
        .context("blob upload without Location")?
        .to_str()?
        .to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = http
        .put(format!("{location}{sep}digest={}", sha256_digest(data)))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::CREATED {
        bail!(
            "blob upload PUT to {base}: {} {}",
            r.status(),
            r.text().await?
        );
    }
    Ok(())
}

/// Uploads the layer every release of the repository at `base` refers to.
pub async fn upload_shared_layer(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    upload_blob(http, base, SHARED_LAYER).await
}

/// Pushes release `n` (its own config, so its own digest) as `tag`.
pub async fn push_release(
    http: &reqwest::Client,
    base: &str,
    n: u64,
    tag: &str,
) -> anyhow::Result<()> {
    let layer = sha256_digest(SHARED_LAYER);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": { "org.opencontainers.image.revision": format!("r{n}") } },
        "rootfs": { "type": "layers", "diff_ids": [layer] },
    }))?;
    upload_blob(http, base, &config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256_digest(&config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": layer, "size": SHARED_LAYER.len() }],
    }))?;
    let r = http
        .put(format!("{base}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "manifest PUT {base}:{tag}: {} {}",
            r.status(),
            r.text().await?
        );
    }
    Ok(())
}
