//! Which published tags are releases an agent may deploy, and why the others are passed over.
//!
//! A tag can point at a container image (a manifest or an index) or at an artifact published
//! beside it: a signature, an attestation or an SBOM. Artifacts stay queryable through the
//! registry (tags list, referrers), but writing one into a Deployment would break the cluster,
//! so agents only ever deploy releases. Shared by the server (which records what each manifest
//! is) and the agent (which decides), so both sides agree.

use std::fmt;

/// Why a tag is not a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotARelease {
    /// The manifest declares an OCI 1.1 `artifactType` (or a config that is not an image config).
    Artifact {
        /// The artifact type.
        artifact_type: String,
    },
    /// The manifest has an OCI 1.1 `subject`: it describes another manifest.
    Referrer {
        /// The digest it refers to.
        subject: String,
    },
    /// A cosign-style tag (`sha256-<hex>.sig`, `.att`, `.sbom`), which names the image it signs.
    CosignTag {
        /// The tag.
        tag: String,
    },
}

impl fmt::Display for NotARelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotARelease::Artifact { artifact_type } => {
                write!(f, "it is an artifact of type {artifact_type}, not an image")
            }
            NotARelease::Referrer { subject } => {
                write!(f, "it refers to {subject} (a signature, attestation or SBOM), so it is not an image to run")
            }
            NotARelease::CosignTag { tag } => write!(
                f,
                "{tag:?} is a cosign signature, attestation or SBOM tag, not an image to run"
            ),
        }
    }
}

/// Whether `tag`, pointing at a manifest with these OCI 1.1 fields, is a release candidate.
/// Empty strings count as absent (as proto3 sends them).
pub fn check(
    tag: &str,
    artifact_type: Option<&str>,
    subject: Option<&str>,
) -> Result<(), NotARelease> {
    if let Some(subject) = subject.filter(|s| !s.is_empty()) {
        return Err(NotARelease::Referrer {
            subject: subject.to_string(),
        });
    }
    if let Some(artifact_type) = artifact_type.filter(|a| !a.is_empty()) {
        return Err(NotARelease::Artifact {
            artifact_type: artifact_type.to_string(),
        });
    }
    if is_cosign_tag(tag) {
        return Err(NotARelease::CosignTag {
            tag: tag.to_string(),
        });
    }
    Ok(())
}

/// `sha256-<64 lowercase hex>.sig|.att|.sbom`: the tags cosign (and sigstore tools) push
/// signatures, attestations and SBOMs under, named after the image digest they describe.
pub fn is_cosign_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && matches!(suffix, "sig" | "att" | "sbom")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn images_are_releases() {
        assert_eq!(check("1.2.3", None, None), Ok(()));
        assert_eq!(check("latest", Some(""), Some("")), Ok(()));
        assert_eq!(check(&format!("sha256-{HEX}"), None, None), Ok(()));
    }

    #[test]
    fn artifacts_referrers_and_cosign_tags_are_not() {
        let sbom = check("1.2.3-sbom", Some("application/spdx+json"), None).unwrap_err();
        assert!(sbom.to_string().contains("application/spdx+json"), "{sbom}");
        let sig = check("sig", None, Some(&format!("sha256:{HEX}"))).unwrap_err();
        assert!(matches!(sig, NotARelease::Referrer { .. }));
        for suffix in ["sig", "att", "sbom"] {
            let tag = format!("sha256-{HEX}.{suffix}");
            assert_eq!(
                check(&tag, None, None),
                Err(NotARelease::CosignTag { tag: tag.clone() })
            );
        }
        assert!(!is_cosign_tag(&format!("sha256-{HEX}.txt")));
        assert!(!is_cosign_tag("sha256-abc.sig"));
        assert!(!is_cosign_tag(&format!(
            "sha256-{}.sig",
            HEX.to_uppercase()
        )));
    }
}
