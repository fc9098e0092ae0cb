//! Where `ferry publish` reads an image from.
//!
//! - `docker://HOST/REPO:TAG` or `…@DIGEST`: the origin registry ([`registry`]).
//! - `oci:DIR[:TAG]`: an OCI image layout on disk ([`oci_layout`]).
//!
//! Either way the result is the same [`FetchedImage`]: the manifest bytes exactly as stored,
//! every index child, and every config blob, each checked against its digest.

pub mod oci_layout;
pub mod registry;

use std::collections::HashSet;

use anyhow::{bail, Context};
use ferry_proto::digest::verify;
use ferry_proto::manifest::{Kind, ManifestInfo};
use ferry_proto::pb;
use ferry_proto::reference::Reference;

/// The documents of one image, ready to publish.
#[derive(Debug, Default)]
pub struct FetchedImage {
    /// The top-level manifest.
    pub manifest: pb::Content,
    /// Index children.
    pub children: Vec<pb::Content>,
    /// Config blobs.
    pub blobs: Vec<pb::Content>,
}

/// A parsed SOURCE argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An origin registry reference.
    Docker(Reference),
    /// An OCI layout directory and optional tag (ref name).
    OciLayout {
        /// The layout directory.
        dir: std::path::PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick.
        tag: Option<String>,
    },
}

impl Source {
    /// Parses `docker://…` or `oci:DIR[:TAG]`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if let Some(r) = s.strip_prefix("docker://") {
            let reference = Reference::parse(r).with_context(|| format!("source {s:?}"))?;
            if reference.tag.is_none() && reference.digest.is_none() {
                bail!("source {s:?} names no tag or digest: write docker://HOST/REPO:TAG or docker://HOST/REPO@sha256:…");
            }
            return Ok(Source::Docker(reference));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            // DIR may itself contain ':'; only a suffix that is a valid tag is taken as the tag.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t))
                    if !d.is_empty()
                        && ferry_proto::names::validate_tag(t).is_ok()
                        && !t.contains('/') =>
                {
                    (d, Some(t.to_string()))
                }
                _ => (rest, None),
            };
            if dir.is_empty() {
                bail!("source {s:?} has no directory: write oci:DIR[:TAG]");
            }
            return Ok(Source::OciLayout {
                dir: dir.into(),
                tag,
            });
        }
        bail!("source {s:?}: expected docker://HOST/REPO:TAG, docker://HOST/REPO@DIGEST or oci:DIR[:TAG]")
    }
}

/// Reads documents by digest from wherever the image lives.
pub(crate) trait DocumentReader {
    /// A manifest by digest, declared with `media_type`.
    async fn manifest(&mut self, digest: &str, media_type: &str) -> anyhow::Result<Vec<u8>>;
    /// A blob by digest.
    async fn blob(&mut self, digest: &str) -> anyhow::Result<Vec<u8>>;
}

/// Collects every child manifest and config blob reachable from `top`, verifying each.
pub(crate) async fn collect(
    reader: &mut impl DocumentReader,
    top: pb::Content,
) -> anyhow::Result<FetchedImage> {
    let mut image = FetchedImage::default();
    let mut pending = vec![(
        top.digest.clone(),
        ManifestInfo::parse(
            Some(&top.media_type)
                .filter(|m| !m.is_empty())
                .map(String::as_str),
            &top.data,
        )
        .with_context(|| format!("manifest {}", top.digest))?,
    )];
    image.manifest = top;
    let mut seen = HashSet::new();
    while let Some((digest, info)) = pending.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        match &info.kind {
            Kind::Index { manifests } => {
                for child in manifests {
                    if seen.contains(&child.digest) {
                        continue;
                    }
                    let data = reader.manifest(&child.digest, &child.media_type).await?;
                    verify(&child.digest, &data)
                        .with_context(|| format!("child manifest of {digest}"))?;
                    let child_info = ManifestInfo::parse(Some(&child.media_type), &data)
                        .with_context(|| format!("child manifest {}", child.digest))?;
                    image.children.push(pb::Content {
                        digest: child.digest.clone(),
                        media_type: child_info.media_type.clone(),
                        data,
                    });
                    pending.push((child.digest.clone(), child_info));
                }
            }
            Kind::Image { config, .. } => {
                if image.blobs.iter().any(|b| b.digest == config.digest) {
                    continue;
                }
                let data = reader.blob(&config.digest).await?;
                verify(&config.digest, &data)
                    .with_context(|| format!("config of manifest {digest}"))?;
                image.blobs.push(pb::Content {
                    digest: config.digest.clone(),
                    media_type: config.media_type.clone(),
                    data,
                });
            }
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        let s = Source::parse("docker://127.0.0.1:5001/team/app:1.0").unwrap();
        let Source::Docker(r) = s else { panic!() };
        assert_eq!(r.name.to_string(), "127.0.0.1:5001/team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(
            Source::parse("oci:/tmp/lay:v1").unwrap(),
            Source::OciLayout {
                dir: "/tmp/lay".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Source::parse("oci:./lay").unwrap(),
            Source::OciLayout {
                dir: "./lay".into(),
                tag: None
            }
        );
        assert!(Source::parse("docker://gcr.io/team/app")
            .unwrap_err()
            .to_string()
            .contains("no tag or digest"));
        assert!(Source::parse("docker://gcr.io/Team/app:1").is_err());
        assert!(Source::parse("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("expected docker://"));
    }
}
