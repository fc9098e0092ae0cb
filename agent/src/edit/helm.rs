//! `helm: {repository, tag, digest}` targets: values at Helm value paths.
//!
//! `repository` is only checked (it must hold the target's image), never written: a values file
//! whose repository names another image means the target points at the wrong block, and writing a
//! tag there would deploy the wrong thing. Format digest drops the tag key (the configured `tag`
//! path, or the `tag` key beside the digest), putting the digest where the tag was. Format tag
//! leaves a digest key alone: charts differ in how they combine the two, so ferry does not guess.

use super::error::EditError;
use super::keys::{put, KeyRef};
use super::path::{self, Path};
use super::scalar::{reading, scalar_at, Reading};
use super::tree::{Kind, Node};
use super::{same_image, Format, Plan, Release};

/// The configured value paths.
pub(crate) struct Paths<'a> {
    pub repository: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

pub(crate) fn plan(
    docs: &[Node],
    text: &str,
    paths: &Paths<'_>,
    format: Format,
    image: &str,
    release: &Release<'_>,
) -> Result<Plan, EditError> {
    let parse = |p: Option<&str>| p.map(Path::parse).transpose();
    let (repository, tag, digest) = (
        parse(paths.repository)?,
        parse(paths.tag)?,
        parse(paths.digest)?,
    );
    let missing = |option| EditError::MissingHelmPath {
        format: format.as_str(),
        option,
    };
    match format {
        Format::Tag if tag.is_none() => return Err(missing("tag")),
        Format::Digest | Format::TagDigest if digest.is_none() => return Err(missing("digest")),
        Format::TagDigest if tag.is_none() => return Err(missing("tag")),
        _ => {}
    }
    // A values file is one mapping; a leading empty document (a lone `---`) is skipped.
    let (doc, root) = docs
        .iter()
        .enumerate()
        .find(|(_, d)| matches!(d.kind, Kind::Map { .. }))
        .ok_or_else(|| EditError::WrongType {
            path: "the document".into(),
            found: docs.first().map_or("empty".into(), |d| d.describe(text)),
            expected: "a mapping of Helm values",
        })?;

    if let Some(repository) = &repository {
        check_repository(root, text, repository, image)?;
    }
    let tag_ref = tag
        .as_ref()
        .map(|p| key_ref(doc, root, text, p))
        .transpose()?;
    let digest_ref = digest
        .as_ref()
        .map(|p| key_ref(doc, root, text, p))
        .transpose()?;
    // Without a configured tag path, the tag that a digest replaces is the `tag` beside it.
    let sibling_tag = match (&tag_ref, &digest_ref) {
        (None, Some(d)) => Some(KeyRef {
            doc,
            map: d.map,
            map_path: d.map_path.clone(),
            key: "tag".to_string(),
        }),
        _ => None,
    };
    let any_tag = tag_ref.as_ref().or(sibling_tag.as_ref());
    let previous = match any_tag.map(|t| t.current(text)).transpose()?.flatten() {
        Some(t) if !t.is_empty() => Some(t),
        _ => digest_ref
            .as_ref()
            .map(|d| d.current(text))
            .transpose()?
            .flatten()
            .filter(|d| !d.is_empty()),
    };

    let mut plan = Plan::default();
    match (format, &tag_ref, &digest_ref) {
        (Format::Tag, Some(t), _) => put(&mut plan, text, t, release.tag, None)?,
        (Format::Digest, _, Some(d)) => put(&mut plan, text, d, release.digest, any_tag)?,
        (Format::TagDigest, Some(t), Some(d)) => {
            put(&mut plan, text, t, release.tag, None)?;
            put(&mut plan, text, d, release.digest, None)?;
        }
        _ => return Err(EditError::Unsafe("helm paths were checked above".into())),
    }
    if !plan.splices.is_empty() {
        plan.previous = previous;
    }
    Ok(plan)
}

/// The repository value must name the target's image.
fn check_repository(root: &Node, text: &str, path: &Path, image: &str) -> Result<(), EditError> {
    let node = path::require(root, text, path)?;
    let scalar = scalar_at(node, text, path)?;
    if reading(scalar) != Reading::Str || !same_image(&scalar.value, image) {
        return Err(EditError::ImageMismatch {
            path: path.to_string(),
            found: scalar.value.clone(),
            image: image.to_string(),
        });
    }
    Ok(())
}

/// The mapping that holds the last key of `path`, which must exist even when the key does not.
fn key_ref<'n>(
    doc: usize,
    root: &'n Node,
    text: &str,
    path: &Path,
) -> Result<KeyRef<'n>, EditError> {
    let (parent, key) = path
        .split_last_key()
        .ok_or_else(|| EditError::InvalidPath {
            path: path.to_string(),
            reason: "a Helm value path ends with a key, not an index".into(),
        })?;
    // Report the whole configured path, with the detail of which prefix is missing.
    let map = path::require(root, text, &parent).map_err(|e| match e {
        EditError::PathNotFound { detail, .. } => EditError::PathNotFound {
            path: path.to_string(),
            detail,
        },
        e => e,
    })?;
    if !matches!(map.kind, Kind::Map { .. }) {
        return Err(EditError::WrongType {
            path: parent.to_string(),
            found: map.describe(text),
            expected: "a mapping of Helm values",
        });
    }
    Ok(KeyRef {
        doc,
        map,
        map_path: parent,
        key: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{apply, EditKind, EditOutcome};
    use super::*;

    const D: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
    const R: Release<'static> = Release {
        image: "gcr.io/acme/app",
        tag: "1.40",
        digest: D,
    };

    fn helm(repository: Option<&str>, tag: Option<&str>, digest: Option<&str>) -> EditKind {
        EditKind::Helm {
            repository: repository.map(str::to_string),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        }
    }

    fn edit(text: &str, kind: &EditKind, format: Format) -> Result<EditOutcome, EditError> {
        apply(text.as_bytes(), kind, format, "gcr.io/acme/app", &R)
    }

    fn changed(text: &str, kind: &EditKind, format: Format) -> String {
        match edit(text, kind, format).unwrap() {
            EditOutcome::Changed { content, .. } => String::from_utf8(content).unwrap(),
            EditOutcome::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn plain_tag_that_reads_as_a_number_gets_quotes() {
        let text = "image:\n  repository: gcr.io/acme/app\n  tag: 1.2.3\n";
        let kind = helm(Some("image.repository"), Some("image.tag"), None);
        assert_eq!(
            changed(text, &kind, Format::Tag),
            "image:\n  repository: gcr.io/acme/app\n  tag: \"1.40\"\n"
        );
    }

    #[test]
    fn empty_tag_is_filled_in() {
        let kind = helm(None, Some("image.tag"), None);
        assert_eq!(
            changed("image:\n  tag:\n  x: 1\n", &kind, Format::Tag),
            "image:\n  tag: \"1.40\"\n  x: 1\n"
        );
    }

    #[test]
    fn repository_for_another_image_is_refused() {
        let text = "image:\n  repository: gcr.io/acme/other\n  tag: 1.2.3\n";
        let err = edit(
            text,
            &helm(Some("image.repository"), Some("image.tag"), None),
            Format::Tag,
        )
        .unwrap_err();
        assert!(
            matches!(err, EditError::ImageMismatch { .. })
                && err.to_string().contains("image.repository"),
            "{err}"
        );
        let err = edit(
            text,
            &helm(Some("image.repo"), Some("image.tag"), None),
            Format::Tag,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("\"image.repo\" does not exist"),
            "{err}"
        );
    }

    #[test]
    fn format_needs_its_paths() {
        let text = "image:\n  tag: 1.2.3\n";
        let err = edit(text, &helm(None, None, Some("image.digest")), Format::Tag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "format tag needs helm.tag to be set in the target"
        );
        let err = edit(text, &helm(None, Some("image.tag"), None), Format::Digest).unwrap_err();
        assert_eq!(
            err.to_string(),
            "format digest needs helm.digest to be set in the target"
        );
    }

    #[test]
    fn digest_with_a_configured_tag_elsewhere_inserts_and_deletes() {
        let text = "image:\n  name: x\ntags:\n  app: 1.2.3\n  other: 1\n";
        let kind = helm(None, Some("tags.app"), Some("image.digest"));
        assert_eq!(
            changed(text, &kind, Format::Digest),
            format!("image:\n  name: x\n  digest: {D}\ntags:\n  other: 1\n")
        );
    }

    #[test]
    fn digest_already_current_is_unchanged() {
        let text = format!("image:\n  digest: \"{D}\"\n");
        assert_eq!(
            edit(
                &text,
                &helm(None, None, Some("image.digest")),
                Format::Digest
            )
            .unwrap(),
            EditOutcome::Unchanged
        );
    }

    #[test]
    fn tag_plus_digest_sets_both() {
        let text = "image:\n  tag: 1.2.3\n  digest: \"\"\n";
        let kind = helm(None, Some("image.tag"), Some("image.digest"));
        assert_eq!(
            changed(text, &kind, Format::TagDigest),
            format!("image:\n  tag: \"1.40\"\n  digest: \"{D}\"\n")
        );
    }

    #[test]
    fn missing_parent_mapping_is_an_error() {
        let err = edit(
            "other: 1\n",
            &helm(None, Some("image.tag"), None),
            Format::Tag,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("\"image\" does not exist"),
            "{err}"
        );
        let err = edit(
            "image: 1\n",
            &helm(None, Some("image.tag"), None),
            Format::Tag,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("value at image is a scalar"),
            "{err}"
        );
    }

    #[test]
    fn multi_line_plain_value_is_refused_not_mangled() {
        let text = "image:\n  tag: 1.2\n    .3\n";
        let err = edit(text, &helm(None, Some("image.tag"), None), Format::Tag).unwrap_err();
        assert!(
            matches!(&err, EditError::Unsafe(m) if m.contains("image.tag")),
            "{err}"
        );
    }

    #[test]
    fn anchored_empty_tag_keeps_its_anchor() {
        let kind = helm(None, Some("image.tag"), None);
        assert_eq!(
            changed("image:\n  tag: &t\nx: *t\n", &kind, Format::Tag),
            "image:\n  tag: &t \"1.40\"\nx: *t\n"
        );
    }

    #[test]
    fn duplicated_parent_key_is_refused() {
        let err = edit(
            "image: {tag: 1}\nimage: {tag: 2}\n",
            &helm(None, Some("image.tag"), None),
            Format::Tag,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("key image appears more than once"),
            "{err}"
        );
    }
}
