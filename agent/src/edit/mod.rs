//! Format-preserving manifest edits: write a release's tag and/or digest into one YAML file.
//!
//! Only the bytes of the changed scalar change (docs/architecture.md §5); `agent/tests/fixtures/edits/` pins the
//! rules byte for byte. The pipeline, one module per step:
//!
//! - [`tree`]: parse with saphyr-parser into nodes that carry byte ranges;
//! - [`path`]: find the target (`spec.containers[0].image`, `image.tag`) in the first document
//!   that has it;
//! - [`field`], [`kustomize`], [`helm`]: decide what to change and plan [`splice`]s;
//! - [`keys`]: set one key while dropping another (tag ↔ digest);
//! - [`scalar`]: write each new value in the old value's quoting style;
//! - [`verify`]: re-parse the result and refuse it unless it reads like the original everywhere
//!   except the intended paths.

mod error;
mod field;
mod helm;
mod keys;
mod kustomize;
mod path;
mod scalar;
mod splice;
mod tree;
mod verify;

#[cfg(test)]
mod fixtures;

use std::fmt;
use std::str::FromStr;

use ferry_proto::names::{validate_digest, validate_tag};
use ferry_proto::reference::ImageName;

pub use error::EditError;

use splice::Splices;
use verify::Expect;

/// How a target pins the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `name:tag` (kustomize `newTag`, Helm `tag`).
    #[default]
    Tag,
    /// `name@digest` (kustomize `digest`, Helm `digest`); the tag key is dropped.
    Digest,
    /// `name:tag@digest`; both keys are set.
    TagDigest,
}

impl Format {
    /// The name used in ImageWatcher files.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tag => "tag",
            Format::Digest => "digest",
            Format::TagDigest => "tag+digest",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = EditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tag" => Ok(Format::Tag),
            "digest" => Ok(Format::Digest),
            "tag+digest" => Ok(Format::TagDigest),
            _ => Err(EditError::UnknownFormat(s.to_string())),
        }
    }
}

/// Which part of the file a target edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditKind {
    /// A scalar holding a whole image reference, at a raw YAML path such as
    /// `spec.template.spec.containers[0].image`.
    Field {
        /// The path, looked up in the first document where it exists.
        path: String,
    },
    /// The `images:` entry of a kustomization whose `name` (or, failing that, `newName`) is the
    /// target's image.
    Kustomize,
    /// Helm values at value paths such as `image.tag`.
    Helm {
        /// Checked, never written: must hold the target's image, so a wrong path is caught.
        repository: Option<String>,
        /// Where the tag goes (format tag, tag+digest); with format digest, the key deleted.
        tag: Option<String>,
        /// Where the digest goes (format digest, tag+digest).
        digest: Option<String>,
    },
}

/// The release being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    /// The image, as the target writes it or normalised; must name the target's image.
    pub image: &'a str,
    /// The tag, e.g. `1.2.4`.
    pub tag: &'a str,
    /// The manifest digest, e.g. `sha256:4f4f…`.
    pub digest: &'a str,
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    /// The file already pins this release: no commit.
    Unchanged,
    /// The file's new bytes.
    Changed {
        /// The whole edited file.
        content: Vec<u8>,
        /// The tag the file had before (or the digest, when it pinned no tag), for commit messages.
        previous: Option<String>,
    },
}

/// What an editor wants done to the file.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub splices: Splices,
    /// What the edited file must read at the changed paths; everything else must read as before.
    pub expect: Vec<Expect>,
    pub previous: Option<String>,
}

/// Writes `release` into `content` the way `kind` and `format` say, for a target whose image is
/// `target_image`.
///
/// Errors name the path or value at fault; on error nothing is written. Never panics on any input.
pub fn apply(
    content: &[u8],
    kind: &EditKind,
    format: Format,
    target_image: &str,
    release: &Release<'_>,
) -> Result<EditOutcome, EditError> {
    check_release(format, target_image, release)?;
    let text = std::str::from_utf8(content).map_err(|e| EditError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let docs = tree::parse(text)?;
    let plan = match kind {
        EditKind::Field { path } => field::plan(&docs, text, path, format, target_image, release)?,
        EditKind::Kustomize => kustomize::plan(&docs, text, format, target_image, release)?,
        EditKind::Helm {
            repository,
            tag,
            digest,
        } => {
            let paths = helm::Paths {
                repository: repository.as_deref(),
                tag: tag.as_deref(),
                digest: digest.as_deref(),
            };
            helm::plan(&docs, text, &paths, format, target_image, release)?
        }
    };
    if plan.splices.is_empty() {
        return Ok(EditOutcome::Unchanged);
    }
    let edited = plan.splices.apply(text)?;
    if edited == text {
        return Ok(EditOutcome::Unchanged);
    }
    verify::verify(&docs, text, &edited, &plan.expect)?;
    Ok(EditOutcome::Changed {
        content: edited.into_bytes(),
        previous: plan.previous,
    })
}

/// Refuses releases whose tag or digest could not be a real one: they are about to be written
/// into a file that deploys to a cluster.
fn check_release(
    format: Format,
    target_image: &str,
    release: &Release<'_>,
) -> Result<(), EditError> {
    if !same_image(release.image, target_image) {
        return Err(EditError::ReleaseImageMismatch {
            release: release.image.to_string(),
            target: target_image.to_string(),
        });
    }
    let invalid = |what| {
        move |e: ferry_proto::names::NameError| EditError::InvalidRelease {
            what,
            reason: e.to_string(),
        }
    };
    if format != Format::Digest {
        validate_tag(release.tag).map_err(invalid("tag"))?;
    }
    if format != Format::Tag {
        validate_digest(release.digest).map_err(invalid("digest"))?;
    }
    Ok(())
}

/// Whether two spellings name the same image: `nginx` and `docker.io/library/nginx` do. Names
/// that do not parse as image names compare as written.
pub(crate) fn same_image(a: &str, b: &str) -> bool {
    match (ImageName::parse(a), ImageName::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// An image reference split as written: `name[:tag][@digest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrittenRef<'a> {
    /// The name, not normalised (`localhost:5000/app`).
    pub name: &'a str,
    /// The tag, without its `:`.
    pub tag: Option<&'a str>,
    /// The digest, without its `@` (`sha256:…`).
    pub digest: Option<&'a str>,
}

/// Splits `name[:tag][@digest]` as written, without normalising the name.
pub(crate) fn split_reference(value: &str) -> WrittenRef<'_> {
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    // A `:` after the last `/` starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => WrittenRef {
            name: &rest[..last_slash + i],
            tag: Some(&rest[last_slash + i + 1..]),
            digest,
        },
        None => WrittenRef {
            name: rest,
            tag: None,
            digest,
        },
    }
}

/// `name` pinned to `release` in `format`.
pub(crate) fn reference(name: &str, format: Format, release: &Release<'_>) -> String {
    match format {
        Format::Tag => format!("{name}:{}", release.tag),
        Format::Digest => format!("{name}@{}", release.digest),
        Format::TagDigest => format!("{name}:{}@{}", release.tag, release.digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
    const R: Release<'static> = Release {
        image: "gcr.io/acme/app",
        tag: "1.2.4",
        digest: D,
    };

    fn field(text: &str, format: Format) -> Result<EditOutcome, EditError> {
        let kind = EditKind::Field {
            path: "spec.image".into(),
        };
        apply(text.as_bytes(), &kind, format, "gcr.io/acme/app", &R)
    }

    fn changed(outcome: EditOutcome) -> String {
        match outcome {
            EditOutcome::Changed { content, .. } => String::from_utf8(content).unwrap(),
            EditOutcome::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in [Format::Tag, Format::Digest, Format::TagDigest] {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        assert!("sha"
            .parse::<Format>()
            .unwrap_err()
            .to_string()
            .contains("tag+digest"));
        assert_eq!(Format::default(), Format::Tag);
    }

    #[test]
    fn splits_references_as_written() {
        let written = |name, tag, digest| WrittenRef { name, tag, digest };
        assert_eq!(split_reference("nginx"), written("nginx", None, None));
        assert_eq!(
            split_reference("localhost:5000/app:1@sha256:aa"),
            written("localhost:5000/app", Some("1"), Some("sha256:aa"))
        );
        assert_eq!(
            split_reference("localhost:5000/app"),
            written("localhost:5000/app", None, None)
        );
    }

    #[test]
    fn non_ascii_before_the_value_keeps_bytes_exact() {
        let text =
            "# Ünïcödé ☕ comment\nspec:\n  name: \"日本語\"\n  image: gcr.io/acme/app:1.2.3 # ✓\n";
        assert_eq!(
            changed(field(text, Format::Tag).unwrap()),
            text.replace("1.2.3", "1.2.4")
        );
    }

    #[test]
    fn crlf_and_bom_are_kept() {
        let text = "\u{feff}spec:\r\n  image: 'gcr.io/acme/app:1.2.3'\r\n";
        assert_eq!(
            changed(field(text, Format::Tag).unwrap()),
            text.replace("1.2.3", "1.2.4")
        );
    }

    #[test]
    fn previous_tag_is_reported() {
        let out = field("spec: {image: gcr.io/acme/app:1.2.3}\n", Format::Digest).unwrap();
        assert!(matches!(out, EditOutcome::Changed { previous: Some(p), .. } if p == "1.2.3"));
        let out = field("spec: {image: gcr.io/acme/app@sha256:00}\n", Format::Tag).unwrap();
        assert!(matches!(out, EditOutcome::Changed { previous: Some(p), .. } if p == "sha256:00"));
    }

    #[test]
    fn a_field_for_another_image_is_refused() {
        let err = field("spec:\n  image: nginx:1.0\n", Format::Tag).unwrap_err();
        assert!(matches!(err, EditError::ImageMismatch { .. }), "{err}");
        assert!(err.to_string().contains("spec.image"), "{err}");
    }

    #[test]
    fn a_field_that_is_not_a_string_is_refused() {
        for (text, want) in [
            ("spec:\n  image: true\n", "a boolean"),
            ("spec:\n  image: 12\n", "a number"),
            ("spec:\n  image:\n", "null"),
            ("spec:\n  image: [a]\n", "a sequence"),
            ("spec:\n  image: |\n    gcr.io/acme/app:1\n", "block scalar"),
            (
                "a: &x gcr.io/acme/app:1\nspec:\n  image: *x\n",
                "alias (*x)",
            ),
        ] {
            let err = field(text, Format::Tag).unwrap_err().to_string();
            assert!(
                err.contains("spec.image") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        assert!(matches!(
            apply(
                b"\xff\xfe",
                &EditKind::Kustomize,
                Format::Tag,
                "a",
                &Release { image: "a", ..R }
            ),
            Err(EditError::NotUtf8 { .. })
        ));
        let err = field("spec: [\n", Format::Tag).unwrap_err();
        assert!(err.to_string().starts_with("invalid YAML at line"), "{err}");
        assert!(field("", Format::Tag).is_err());
    }

    #[test]
    fn bad_releases_are_refused_before_reading_the_file() {
        let kind = EditKind::Field {
            path: "spec.image".into(),
        };
        let text = b"spec:\n  image: gcr.io/acme/app:1\n";
        let bad_tag = Release {
            tag: "1.2\nx: y",
            ..R
        };
        assert!(matches!(
            apply(text, &kind, Format::Tag, "gcr.io/acme/app", &bad_tag),
            Err(EditError::InvalidRelease { what: "tag", .. })
        ));
        let bad_digest = Release {
            digest: "sha256:zz",
            ..R
        };
        assert!(matches!(
            apply(text, &kind, Format::Digest, "gcr.io/acme/app", &bad_digest),
            Err(EditError::InvalidRelease { what: "digest", .. })
        ));
        let other = Release {
            image: "gcr.io/acme/other",
            ..R
        };
        assert!(matches!(
            apply(text, &kind, Format::Tag, "gcr.io/acme/app", &other),
            Err(EditError::ReleaseImageMismatch { .. })
        ));
    }
}
