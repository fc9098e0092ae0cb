//! Reading an image from an OCI image layout directory (what rules_oci, buildah, skopeo and
//! `crane` write): `index.json`, then `blobs/<alg>/<hex>`, every file checked against its digest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ferry_proto::names::validate_digest;
use ferry_proto::pb;
use serde::Deserialize;

use super::{collect, DocumentReader, FetchedImage};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Layout files bigger than this are not manifests or configs; refuse before reading them whole.
const MAX_FILE: u64 = 16 * 1024 * 1024;

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    /// Required by the image-spec; checked against the manifest's bytes.
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn read_blob(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        // The digest names a file: validate it first so it cannot walk out of blobs/.
        validate_digest(digest).with_context(|| format!("in layout {}", self.dir.display()))?;
        let (alg, hex) = digest.split_once(':').expect("validated digest has ':'");
        let path = self.dir.join("blobs").join(alg).join(hex);
        let len = std::fs::metadata(&path)
            .with_context(|| {
                format!(
                    "layout {} is missing blob {digest} ({})",
                    self.dir.display(),
                    path.display()
                )
            })?
            .len();
        if len > MAX_FILE {
            bail!(
                "blob {} is {len} bytes; manifests and configs are at most {MAX_FILE}",
                path.display()
            );
        }
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        ferry_proto::digest::verify(digest, &data).with_context(|| {
            format!(
                "layout file {} does not match its name (tampered layout?)",
                path.display()
            )
        })?;
        Ok(data)
    }
}

impl DocumentReader for Layout {
    async fn manifest(&mut self, digest: &str, _media_type: &str) -> anyhow::Result<Vec<u8>> {
        self.read_blob(digest)
    }
    async fn blob(&mut self, digest: &str) -> anyhow::Result<Vec<u8>> {
        self.read_blob(digest)
    }
}

/// Reads the image tagged `tag` (or the only image, when `tag` is None) from the layout at `dir`.
/// Returns it with the tag it was found under, if any.
pub async fn read(dir: &Path, tag: Option<&str>) -> anyhow::Result<(FetchedImage, Option<String>)> {
    let index_path = dir.join("index.json");
    let raw = std::fs::read(&index_path).with_context(|| {
        format!(
            "{} is not an OCI layout: cannot read {}",
            dir.display(),
            index_path.display()
        )
    })?;
    let index: Index = serde_json::from_slice(&raw)
        .with_context(|| format!("malformed {}", index_path.display()))?;
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(t))
            .with_context(|| {
                let known: Vec<&str> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                    .collect();
                format!(
                    "layout {} has no image tagged {t:?} (it has: {known:?})",
                    dir.display()
                )
            })?,
        None => match index.manifests.as_slice() {
            [only] => only,
            [] => bail!("layout {} holds no image", dir.display()),
            _ => bail!(
                "layout {} holds {} images: name one with oci:DIR:TAG",
                dir.display(),
                index.manifests.len()
            ),
        },
    };
    let found_tag = chosen
        .annotations
        .get(REF_NAME)
        .filter(|t| ferry_proto::names::validate_tag(t).is_ok())
        .cloned();
    let mut layout = Layout {
        dir: dir.to_path_buf(),
    };
    let data = layout.read_blob(&chosen.digest)?;
    // The digest already matched, so a wrong size means a broken layout writer: refuse it rather
    // than publish a descriptor that registries and skopeo would reject later.
    if data.len() as u64 != chosen.size {
        bail!(
            "{}: the descriptor of {} says size {} but the manifest is {} bytes; \
             fix the size in index.json or rebuild the layout",
            index_path.display(),
            chosen.digest,
            chosen.size,
            data.len()
        );
    }
    let top = pb::Content {
        digest: chosen.digest.clone(),
        media_type: chosen.media_type.clone(),
        data,
    };
    Ok((collect(&mut layout, top).await?, found_tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a layout holding one blob, `manifest`, named in index.json with `size`.
    fn layout_with(dir: &Path, manifest: &[u8], size: u64) -> String {
        let digest = ferry_proto::digest::sha256_digest(manifest);
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("blobs/sha256").join(hex), manifest).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        digest
    }

    #[tokio::test]
    async fn a_top_level_descriptor_whose_size_is_not_the_manifests_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = br#"{"schemaVersion":2}"#;
        let digest = layout_with(dir.path(), manifest, manifest.len() as u64 + 1);
        let e = format!("{:#}", read(dir.path(), None).await.err().unwrap());
        let want = format!(
            "the descriptor of {digest} says size {} but the manifest is {} bytes",
            manifest.len() + 1,
            manifest.len()
        );
        assert!(e.contains(&want) && e.contains("index.json"), "{e}");
    }

    #[tokio::test]
    async fn a_top_level_descriptor_with_the_right_size_gets_past_the_size_check() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = br#"{"schemaVersion":2}"#;
        layout_with(dir.path(), manifest, manifest.len() as u64);
        // Not a full image, so reading may fail later, but not on the size.
        if let Err(e) = read(dir.path(), None).await {
            assert!(!format!("{e:#}").contains("says size"), "{e:#}");
        }
    }
}
