//! `field:` targets: one scalar holding a whole image reference, rewritten as `name:tag`,
//! `name@digest` or `name:tag@digest` with the name spelled as the file spells it.

use super::error::EditError;
use super::path::{self, Path};
use super::scalar::{reading, scalar_at, Reading};
use super::splice::set_scalar;
use super::tree::Node;
use super::verify::Expect;
use super::{reference, same_image, split_reference, Format, Plan, Release, WrittenRef};

pub(crate) fn plan(
    docs: &[Node],
    text: &str,
    path_text: &str,
    format: Format,
    image: &str,
    release: &Release<'_>,
) -> Result<Plan, EditError> {
    let path = Path::parse(path_text)?;
    let (doc, node) = path::find(docs, text, &path)?;
    let scalar = scalar_at(node, text, &path)?;
    match reading(scalar) {
        Reading::Str => {}
        other => {
            return Err(EditError::NotAString {
                path: path.to_string(),
                value: scalar.value.clone(),
                reading: other.to_string(),
            })
        }
    }
    let WrittenRef { name, tag, digest } = split_reference(&scalar.value);
    if !same_image(name, image) {
        return Err(EditError::ImageMismatch {
            path: path.to_string(),
            found: name.to_string(),
            image: image.to_string(),
        });
    }
    let value = reference(name, format, release);
    let mut plan = Plan::default();
    set_scalar(&mut plan.splices, text, node, &path, &value)?;
    if !plan.splices.is_empty() {
        plan.previous = tag.or(digest).map(str::to_string);
    }
    plan.expect.push(Expect {
        doc,
        path,
        value: Some(value),
    });
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::{apply, EditError, EditKind, EditOutcome};
    use super::*;

    const D: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

    fn edit(text: &str, path: &str, image: &str, format: Format) -> Result<EditOutcome, EditError> {
        let release = Release {
            image,
            tag: "1.2.4",
            digest: D,
        };
        apply(
            text.as_bytes(),
            &EditKind::Field { path: path.into() },
            format,
            image,
            &release,
        )
    }

    fn changed(text: &str, path: &str, image: &str, format: Format) -> String {
        match edit(text, path, image, format).unwrap() {
            EditOutcome::Changed { content, .. } => String::from_utf8(content).unwrap(),
            EditOutcome::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn the_file_spelling_of_the_name_is_kept() {
        let text = "image: localhost:5000/app:1.2.3\n";
        assert_eq!(
            changed(text, "image", "localhost:5000/app", Format::Tag),
            "image: localhost:5000/app:1.2.4\n"
        );
        let text = "image: index.docker.io/library/nginx@sha256:00\n";
        let want = "image: index.docker.io/library/nginx:1.2.4\n";
        assert_eq!(changed(text, "image", "nginx", Format::Tag), want);
    }

    #[test]
    fn tags_anchors_and_comments_around_the_value_stay() {
        let text = "a: !!str &x gcr.io/acme/app:1.2.3 # c\nb: [*x]\n";
        let want = "a: !!str &x gcr.io/acme/app:1.2.4 # c\nb: [*x]\n";
        assert_eq!(changed(text, "a", "gcr.io/acme/app", Format::Tag), want);
        let text = "a: # the image\n  \"gcr.io/acme/app:1.2.3\"\n";
        let want = "a: # the image\n  \"gcr.io/acme/app:1.2.4\"\n";
        assert_eq!(changed(text, "a", "gcr.io/acme/app", Format::Tag), want);
    }

    #[test]
    fn quoted_keys_with_dots_are_addressable() {
        let text = "annotations:\n  \"ferry.dev/image\": gcr.io/acme/app:1.2.3\n";
        let out = changed(
            text,
            "annotations[\"ferry.dev/image\"]",
            "gcr.io/acme/app",
            Format::Tag,
        );
        assert_eq!(out, text.replace("1.2.3", "1.2.4"));
    }
}
