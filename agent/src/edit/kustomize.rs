//! `kustomize: {}` targets: the `images:` entry for the target's image gets `newTag` and/or
//! `digest`. Kustomize lets a digest override the tag, so whichever key the format does not use
//! is dropped; otherwise the edit would not change what deploys.

use super::error::EditError;
use super::keys::{put, KeyRef};
use super::path::{self, Path, Segment};
use super::tree::{Kind, Node};
use super::{same_image, Format, Plan, Release};

const TAG: &str = "newTag";
const DIGEST: &str = "digest";

pub(crate) fn plan(
    docs: &[Node],
    text: &str,
    format: Format,
    image: &str,
    release: &Release<'_>,
) -> Result<Plan, EditError> {
    let images_path = Path(vec![Segment::Key("images".into())]);
    let (doc, images) = path::find(docs, text, &images_path)?;
    let Kind::Seq { items, .. } = &images.kind else {
        return Err(EditError::WrongType {
            path: images_path.to_string(),
            found: images.describe(text),
            expected: "a sequence of image entries",
        });
    };
    // `name` is the image the base manifests use; `newName` the one kustomize swaps in. A target
    // may watch either, but an entry naming it as `name` wins.
    let index = find_entry(items, "name", image)
        .or_else(|| find_entry(items, "newName", image))
        .ok_or_else(|| EditError::KustomizeEntryMissing {
            image: image.to_string(),
            names: items
                .iter()
                .filter_map(|e| scalar_value(e, "name"))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let entry = &items[index];
    let key = |key: &str| KeyRef {
        doc,
        map: entry,
        map_path: images_path.child(Segment::Index(index)),
        key: key.to_string(),
    };
    let (tag, digest) = (key(TAG), key(DIGEST));
    let previous = match tag.current(text)? {
        Some(t) if !t.is_empty() => Some(t),
        _ => digest.current(text)?.filter(|d| !d.is_empty()),
    };
    let mut plan = Plan::default();
    match format {
        Format::Tag => put(&mut plan, text, &tag, release.tag, Some(&digest))?,
        Format::Digest => put(&mut plan, text, &digest, release.digest, Some(&tag))?,
        Format::TagDigest => {
            put(&mut plan, text, &tag, release.tag, None)?;
            put(&mut plan, text, &digest, release.digest, None)?;
        }
    }
    if !plan.splices.is_empty() {
        plan.previous = previous;
    }
    Ok(plan)
}

fn scalar_value<'n>(entry: &'n Node, key: &str) -> Option<&'n str> {
    match &entry.get(key)?.1.kind {
        Kind::Scalar(s) => Some(&s.value),
        _ => None,
    }
}

fn find_entry(items: &[Node], key: &str, image: &str) -> Option<usize> {
    items
        .iter()
        .position(|e| scalar_value(e, key).is_some_and(|name| same_image(name, image)))
}

#[cfg(test)]
mod tests {
    use super::super::{apply, EditKind, EditOutcome};
    use super::*;

    const D: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

    fn edit(text: &str, format: Format, tag: &str) -> Result<EditOutcome, EditError> {
        let release = Release {
            image: "gcr.io/acme/app",
            tag,
            digest: D,
        };
        apply(
            text.as_bytes(),
            &EditKind::Kustomize,
            format,
            "gcr.io/acme/app",
            &release,
        )
    }

    fn changed(text: &str, format: Format, tag: &str) -> String {
        match edit(text, format, tag).unwrap() {
            EditOutcome::Changed { content, .. } => String::from_utf8(content).unwrap(),
            EditOutcome::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn missing_entry_lists_the_names_there() {
        let err = edit(
            "images:\n  - name: busybox\n    newTag: \"1.36\"\n",
            Format::Tag,
            "1.2.4",
        )
        .unwrap_err();
        assert!(
            matches!(err, EditError::KustomizeEntryMissing { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("gcr.io/acme/app") && err.to_string().contains("busybox"),
            "{err}"
        );
        let err = edit("resources: [a.yaml]\n", Format::Tag, "1.2.4").unwrap_err();
        assert!(
            err.to_string().contains("\"images\" does not exist"),
            "{err}"
        );
    }

    #[test]
    fn numeric_looking_tags_are_quoted_when_written_plain() {
        let text = "images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.3\n";
        assert_eq!(
            changed(text, Format::Tag, "1.40"),
            "images:\n  - name: gcr.io/acme/app\n    newTag: \"1.40\"\n"
        );
        let text = "images:\n  - name: gcr.io/acme/app\n    newTag: '1.2.3'\n";
        assert_eq!(
            changed(text, Format::Tag, "1.40"),
            "images:\n  - name: gcr.io/acme/app\n    newTag: '1.40'\n"
        );
    }

    #[test]
    fn missing_tag_key_is_inserted_with_the_entry_indent() {
        let text = "images:\n- name: gcr.io/acme/app   # ours\n- name: other\n";
        assert_eq!(
            changed(text, Format::Tag, "1.2.4"),
            "images:\n- name: gcr.io/acme/app   # ours\n  newTag: 1.2.4\n- name: other\n"
        );
    }

    #[test]
    fn tag_plus_digest_sets_both_and_keeps_order() {
        let text = "images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.3\n";
        let want =
            format!("images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.4\n    digest: {D}\n");
        assert_eq!(changed(text, Format::TagDigest, "1.2.4"), want);
        let text = "images:\n  - name: gcr.io/acme/app";
        let want =
            format!("images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.4\n    digest: {D}");
        assert_eq!(changed(text, Format::TagDigest, "1.2.4"), want);
    }

    #[test]
    fn digest_updates_an_existing_digest_and_deletes_new_tag() {
        let text =
            "images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.3\n    digest: sha256:00\nx: 1\n";
        assert_eq!(
            changed(text, Format::Digest, "1.2.4"),
            format!("images:\n  - name: gcr.io/acme/app\n    digest: {D}\nx: 1\n")
        );
    }

    #[test]
    fn tag_format_drops_a_digest_that_would_override_it() {
        let text = format!("images:\n  - name: gcr.io/acme/app\n    digest: {D}\n");
        assert_eq!(
            changed(&text, Format::Tag, "1.2.4"),
            "images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.4\n"
        );
    }

    #[test]
    fn flow_entries_and_new_name_matches() {
        let text = "images: [{name: nginx, newName: gcr.io/acme/app, newTag: 1.2.3}]\n";
        assert_eq!(
            changed(text, Format::Tag, "1.2.4"),
            "images: [{name: nginx, newName: gcr.io/acme/app, newTag: 1.2.4}]\n"
        );
        let text = "images: [{name: gcr.io/acme/app, newTag: 1.2.3}]\n";
        assert_eq!(
            changed(text, Format::Digest, "1.2.4"),
            format!("images: [{{name: gcr.io/acme/app, digest: {D}}}]\n")
        );
    }

    #[test]
    fn current_entry_is_unchanged() {
        let text = "images:\n  - name: gcr.io/acme/app\n    newTag: \"1.2.4\"\n";
        assert_eq!(
            edit(text, Format::Tag, "1.2.4").unwrap(),
            EditOutcome::Unchanged
        );
    }

    #[test]
    fn boolean_tag_is_refused() {
        let err = edit(
            "images:\n  - name: gcr.io/acme/app\n    newTag: yes\n",
            Format::Tag,
            "1.2.4",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("images[0].newTag") && err.to_string().contains("boolean"),
            "{err}"
        );
    }

    /// Regression: a duplicated `newTag` made the edit land on one copy while readers use the
    /// other; it is now refused by name instead of by the safety net.
    #[test]
    fn duplicated_tag_key_is_refused_by_name() {
        let text = "images:\n  - name: gcr.io/acme/app\n    newTag: 1.2.3\n    newTag: 1.2.3\n";
        let err = edit(text, Format::Tag, "1.2.4").unwrap_err();
        assert_eq!(
            err,
            EditError::DuplicateKey {
                path: "images[0].newTag".into()
            }
        );
    }
}
