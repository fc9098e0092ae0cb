//! Reads what ferry needs from a manifest: its kind, config, layers, children, subject.
//!
//! Manifests are parsed only to read fields. The bytes a client gets are always the bytes that
//! were published, because re-serialising JSON changes the digest.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;
use thiserror::Error;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Every manifest media type ferry stores, for `Accept` headers.
pub const ACCEPTED_MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A manifest ferry cannot store.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// Not JSON, or not shaped like a manifest of its media type.
    #[error("malformed {media_type} manifest: {reason}")]
    Malformed {
        /// The media type it was read as.
        media_type: String,
        /// What the parser said.
        reason: String,
    },
    /// A media type that is neither an OCI nor a Docker schema 2 manifest or index.
    #[error("unsupported manifest media type {0:?}: ferry stores OCI image manifests and indexes and Docker schema 2 manifests and lists")]
    UnsupportedMediaType(String),
    /// The body's `mediaType` field disagrees with the declared type.
    #[error("manifest declares mediaType {body:?} but was sent as {declared:?}")]
    MediaTypeMismatch {
        /// What the sender declared (e.g. the Content-Type).
        declared: String,
        /// What the JSON says.
        body: String,
    },
}

/// A reference from one document to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `sha256:…`
    pub digest: String,
    /// The descriptor's media type.
    pub media_type: String,
    /// The descriptor's size in bytes.
    pub size: u64,
    /// `os/arch[/variant]` for index entries that say so.
    pub platform: Option<String>,
    /// The descriptor's artifactType, if any.
    pub artifact_type: Option<String>,
}

/// Whether the document is a single image or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest: one config, many layers.
    Image {
        /// The config blob.
        config: Ref,
        /// The layer blobs.
        layers: Vec<Ref>,
    },
    /// An index or manifest list: child manifests.
    Index {
        /// The child manifests.
        manifests: Vec<Ref>,
    },
}

/// What ferry reads from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The effective media type (the body's `mediaType`, else the declared one).
    pub media_type: String,
    /// Image or index.
    pub kind: Kind,
    /// OCI 1.1 `subject`: the manifest this one refers to (signatures, SBOMs…).
    pub subject: Option<String>,
    /// OCI 1.1 `artifactType`, or for images the config media type when it is not an image config.
    pub artifact_type: Option<String>,
    /// Manifest annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

fn to_ref(d: &Descriptor) -> Ref {
    Ref {
        digest: d.digest().to_string(),
        media_type: d.media_type().to_string(),
        size: d.size(),
        platform: d.platform().as_ref().map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        }),
        artifact_type: d.artifact_type().as_ref().map(|a| a.to_string()),
    }
}

/// Just the `mediaType` field, to decide how to parse the rest.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

/// The media type a manifest says it has: its `mediaType` field, or the `declared` one, or a guess
/// from its shape (an OCI manifest may omit `mediaType`).
pub fn effective_media_type(declared: Option<&str>, data: &[u8]) -> Result<String, ManifestError> {
    let probe: Probe = serde_json::from_slice(data).map_err(|e| ManifestError::Malformed {
        media_type: declared.unwrap_or("unknown").to_string(),
        reason: e.to_string(),
    })?;
    let declared = declared.filter(|d| !d.is_empty());
    match (probe.media_type, declared) {
        (Some(body), Some(decl)) if body != decl => Err(ManifestError::MediaTypeMismatch {
            declared: decl.to_string(),
            body,
        }),
        (Some(body), _) => Ok(body),
        (None, Some(decl)) => Ok(decl.to_string()),
        (None, None) if probe.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        (None, None) => Ok(OCI_MANIFEST.to_string()),
    }
}

impl ManifestInfo {
    /// Parses `data`, declared (by a Content-Type or a layout descriptor) as `declared`. Every
    /// descriptor digest must be one ferry accepts (`sha256:`/`sha512:` with the right length):
    /// oci-spec takes any `algorithm:encoded`, which no client could then fetch.
    pub fn parse(declared: Option<&str>, data: &[u8]) -> Result<Self, ManifestError> {
        let info = Self::parse_unchecked(declared, data)?;
        let layers = match &info.kind {
            Kind::Image { layers, .. } => layers.as_slice(),
            Kind::Index { .. } => &[],
        };
        let digests = info
            .references()
            .into_iter()
            .chain(layers)
            .map(|r| r.digest.as_str())
            .chain(info.subject.as_deref());
        for d in digests {
            crate::names::validate_digest(d).map_err(|e| ManifestError::Malformed {
                media_type: info.media_type.clone(),
                reason: format!("descriptor digest {d:?}: {e}"),
            })?;
        }
        Ok(info)
    }

    fn parse_unchecked(declared: Option<&str>, data: &[u8]) -> Result<Self, ManifestError> {
        let media_type = effective_media_type(declared, data)?;
        let malformed = |e: oci_spec::OciSpecError| ManifestError::Malformed {
            media_type: media_type.clone(),
            reason: e.to_string(),
        };
        match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let m = ImageManifest::from_reader(data).map_err(malformed)?;
                let config = to_ref(m.config());
                let artifact_type =
                    m.artifact_type()
                        .as_ref()
                        .map(|a| a.to_string())
                        .or_else(|| {
                            let c = config.media_type.as_str();
                            let is_image_config = c == "application/vnd.oci.image.config.v1+json"
                                || c == "application/vnd.docker.container.image.v1+json";
                            (!is_image_config).then(|| c.to_string())
                        });
                Ok(ManifestInfo {
                    kind: Kind::Image {
                        config,
                        layers: m.layers().iter().map(to_ref).collect(),
                    },
                    subject: m.subject().as_ref().map(|s| s.digest().to_string()),
                    artifact_type,
                    annotations: m
                        .annotations()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    media_type,
                })
            }
            OCI_INDEX | DOCKER_MANIFEST_LIST => {
                let i = ImageIndex::from_reader(data).map_err(malformed)?;
                Ok(ManifestInfo {
                    kind: Kind::Index {
                        manifests: i.manifests().iter().map(to_ref).collect(),
                    },
                    subject: i.subject().as_ref().map(|s| s.digest().to_string()),
                    artifact_type: i.artifact_type().as_ref().map(|a| a.to_string()),
                    annotations: i
                        .annotations()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    media_type,
                })
            }
            other => Err(ManifestError::UnsupportedMediaType(other.to_string())),
        }
    }

    /// Every document this one points at that ferry stores too: the config, or the children.
    pub fn references(&self) -> Vec<&Ref> {
        match &self.kind {
            Kind::Image { config, .. } => vec![config],
            Kind::Index { manifests } => manifests.iter().collect(),
        }
    }
}

/// Reads `config.Labels` from an image config blob; empty when absent or unreadable (an artifact's
/// config need not be an image config).
pub fn config_labels(config: &[u8]) -> std::collections::BTreeMap<String, String> {
    #[derive(Deserialize)]
    struct Config {
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Labels")]
        labels: Option<std::collections::BTreeMap<String, String>>,
    }
    serde_json::from_slice::<Config>(config)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const L1: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{L1}","size":20}}]}}"#
        )
    }

    #[test]
    fn reads_image_and_docker_manifests() {
        for mt in [OCI_MANIFEST, DOCKER_MANIFEST] {
            let info = ManifestInfo::parse(Some(mt), image(mt).as_bytes()).unwrap();
            assert_eq!(info.media_type, mt);
            let Kind::Image { config, layers } = &info.kind else {
                panic!()
            };
            assert_eq!(config.digest, CFG);
            assert_eq!(layers[0].size, 20);
            assert_eq!(info.artifact_type, None);
        }
    }

    #[test]
    fn reads_index_with_platforms_and_subject() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{CFG}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{L1}","size":3}}}}"#
        );
        let info = ManifestInfo::parse(None, idx.as_bytes()).unwrap();
        let Kind::Index { manifests } = &info.kind else {
            panic!()
        };
        assert_eq!(manifests[0].platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(info.subject.as_deref(), Some(L1));
    }

    #[test]
    fn rejects_mismatch_garbage_and_unknown_types() {
        let m = image(OCI_MANIFEST);
        assert!(matches!(
            ManifestInfo::parse(Some(DOCKER_MANIFEST), m.as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            ManifestInfo::parse(Some(OCI_MANIFEST), b"{not json"),
            Err(ManifestError::Malformed { .. })
        ));
        let s1 = r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        let err = ManifestInfo::parse(None, s1.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("v1+prettyjws"), "{err}");
    }

    #[test]
    fn rejects_descriptor_digests_no_client_could_fetch() {
        // Found by fuzzing (fuzz/regressions/manifest): oci-spec accepts any algorithm name.
        let m = image(OCI_MANIFEST).replacen("sha256:", "s0ha256:", 1);
        let err = ManifestInfo::parse(None, m.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("descriptor digest \"s0ha256:"),
            "{err}"
        );
    }

    #[test]
    fn reads_config_labels() {
        let cfg = br#"{"architecture":"amd64","config":{"Labels":{"org.opencontainers.image.revision":"abc"}}}"#;
        assert_eq!(
            config_labels(cfg)["org.opencontainers.image.revision"],
            "abc"
        );
        assert!(config_labels(b"{}").is_empty());
    }
}
