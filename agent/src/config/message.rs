//! Commit messages: `spec.commitMessage` templates with `{{placeholder}}`s, the default message,
//! and one message for several updates committed together.

use thiserror::Error;

/// What one update changed, for the commit message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitVars {
    /// The image as the target names it.
    pub image: String,
    /// The new tag (may be empty when only a digest is known).
    pub tag: String,
    /// The new digest, `sha256:...`.
    pub digest: String,
    /// The tag the file had before; when it pinned only a digest, that digest's first 12 hex
    /// digits (see [`digest_short`]), so a message still says what was replaced.
    pub previous_tag: Option<String>,
    /// The `org.opencontainers.image.revision` label of the image, when set.
    pub revision: Option<String>,
    /// The edited file, repo-relative.
    pub file_path: String,
    /// For a ring target: the ring it follows (`testers`).
    pub ring: Option<String>,
    /// The `org.opencontainers.image.version` label of the image, when set.
    pub version: Option<String>,
}

/// The placeholders a template may use, each written `{{name}}` (spaces inside the braces are
/// allowed).
pub const PLACEHOLDERS: &[&str] = &[
    "image",
    "tag",
    "digest",
    "digest_short",
    "previous_tag",
    "revision",
    "file_path",
    "ring",
    "version",
];

/// A template that would not render as meant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// `{{name}}` with a name that is not a placeholder; it would stay in the message literally.
    #[error("unknown placeholder {{{{{name}}}}}: the placeholders are {}", PLACEHOLDERS.join(", "))]
    UnknownPlaceholder {
        /// The name between the braces, trimmed.
        name: String,
    },
    /// `{{` with no `}}` after it.
    #[error("unclosed {{{{ at byte {at}: close it with }}}}")]
    Unclosed {
        /// Byte offset of the `{{` in the template.
        at: usize,
    },
}

/// The first 12 hex digits of a digest: `sha256:0123456789abcdef...` → `0123456789ab`.
pub fn digest_short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.get(..12).unwrap_or(hex)
}

fn value<'a>(name: &str, v: &'a CommitVars) -> Option<&'a str> {
    Some(match name {
        "image" => &v.image,
        "tag" => &v.tag,
        "digest" => &v.digest,
        "digest_short" => digest_short(&v.digest),
        "previous_tag" => v.previous_tag.as_deref().unwrap_or(""),
        "revision" => v.revision.as_deref().unwrap_or(""),
        "file_path" => &v.file_path,
        "ring" => v.ring.as_deref().unwrap_or(""),
        "version" => v.version.as_deref().unwrap_or(""),
        _ => return None,
    })
}

/// A part of a template.
enum Piece<'a> {
    Text(&'a str),
    Placeholder { name: &'a str, raw: &'a str },
    Unclosed { at: usize, raw: &'a str },
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push(Piece::Unclosed {
                at: offset + open,
                raw: &rest[open..],
            });
            return out;
        };
        out.push(Piece::Placeholder {
            name: after[..close].trim(),
            raw: &rest[open..open + 2 + close + 2],
        });
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push(Piece::Text(rest));
    out
}

/// Checks that a template uses only known placeholders and closes every `{{`.
pub fn validate_template(template: &str) -> Result<(), TemplateError> {
    for piece in pieces(template) {
        match piece {
            Piece::Text(_) => {}
            Piece::Placeholder { name, .. } if PLACEHOLDERS.contains(&name) => {}
            Piece::Placeholder { name, .. } => {
                return Err(TemplateError::UnknownPlaceholder {
                    name: name.to_string(),
                });
            }
            Piece::Unclosed { at, .. } => return Err(TemplateError::Unclosed { at }),
        }
    }
    Ok(())
}

fn render_template(template: &str, vars: &CommitVars) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            // Unknown placeholders stay as written: visible in the commit, never silently lost.
            Piece::Placeholder { name, raw } => out.push_str(value(name, vars).unwrap_or(raw)),
            Piece::Unclosed { raw, .. } => out.push_str(raw),
        }
    }
    out
}

/// The tag, or the digest when there is no tag.
fn tag_or_digest(v: &CommitVars) -> &str {
    if v.tag.is_empty() {
        &v.digest
    } else {
        &v.tag
    }
}

/// Git trailers for one update (`Digest: ...`), skipping what is unknown.
fn trailers(v: &CommitVars) -> Vec<String> {
    let mut lines = Vec::new();
    if !v.digest.is_empty() {
        lines.push(format!("Digest: {}", v.digest));
    }
    if let Some(r) = v.revision.as_deref().filter(|r| !r.is_empty()) {
        lines.push(format!("Revision: {r}"));
    }
    if let Some(p) = v.previous_tag.as_deref().filter(|p| !p.is_empty()) {
        lines.push(format!("Previous-Tag: {p}"));
    }
    if let Some(r) = v.ring.as_deref().filter(|r| !r.is_empty()) {
        lines.push(format!("Ring: {r}"));
    }
    if !v.file_path.is_empty() {
        lines.push(format!("File: {}", v.file_path));
    }
    lines
}

/// The commit message for one update: the template rendered, or by default
/// `ferry: update IMAGE to TAG` with `Digest:`, `Revision:`, `Previous-Tag:`, `Ring:` (ring
/// targets) and `File:` trailers.
pub fn render_commit_message(template: Option<&str>, vars: &CommitVars) -> String {
    if let Some(t) = template {
        return render_template(t, vars);
    }
    let mut msg = format!("ferry: update {} to {}", vars.image, tag_or_digest(vars));
    let trailers = trailers(vars);
    if !trailers.is_empty() {
        msg.push_str("\n\n");
        msg.push_str(&trailers.join("\n"));
    }
    msg
}

/// One commit message for updates that are committed together. A single update (or several
/// that render to the same templated message) gets the single-update message; otherwise the
/// subject counts the images (`ferry: update 3 images`) and the body lists each update.
pub fn combined_message(updates: &[CommitVars], template: Option<&str>) -> String {
    match updates {
        [] => return "ferry: no updates".to_string(),
        [one] => return render_commit_message(template, one),
        _ => {}
    }
    let lines: Vec<String> = match template {
        Some(t) => {
            let rendered: Vec<String> = updates.iter().map(|u| render_template(t, u)).collect();
            if rendered.iter().all(|r| r == &rendered[0]) {
                return rendered[0].clone();
            }
            rendered
                .iter()
                .map(|r| r.lines().next().unwrap_or_default().to_string())
                .collect()
        }
        None => updates
            .iter()
            .map(|u| {
                let mut line = format!("{} to {} in {}", u.image, tag_or_digest(u), u.file_path);
                if !u.digest.is_empty() {
                    line.push_str(&format!(" ({})", u.digest));
                }
                line
            })
            .collect(),
    };
    let mut images: Vec<&str> = Vec::new();
    for u in updates {
        if !images.contains(&u.image.as_str()) {
            images.push(&u.image);
        }
    }
    let subject = match images.as_slice() {
        [one] => format!("ferry: update {one} in {} files", updates.len()),
        _ => format!("ferry: update {} images", images.len()),
    };
    let body: Vec<String> = lines.iter().map(|l| format!("- {l}")).collect();
    format!("{subject}\n\n{}", body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn vars() -> CommitVars {
        CommitVars {
            image: "gcr.io/pipecd/foo".into(),
            tag: "1.2.4".into(),
            digest: DIGEST.into(),
            previous_tag: Some("1.2.3".into()),
            revision: Some("1a2b3c4".into()),
            file_path: "foo/deployment.yaml".into(),
            ring: None,
            version: None,
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let t = "{{image}}|{{tag}}|{{digest}}|{{digest_short}}|{{previous_tag}}|{{revision}}|{{ file_path }}";
        assert_eq!(
            render_commit_message(Some(t), &vars()),
            format!(
                "gcr.io/pipecd/foo|1.2.4|{DIGEST}|0123456789ab|1.2.3|1a2b3c4|foo/deployment.yaml"
            )
        );
        let design = "Deploy {{image}}:{{tag}} ({{digest_short}})";
        assert_eq!(
            render_commit_message(Some(design), &vars()),
            "Deploy gcr.io/pipecd/foo:1.2.4 (0123456789ab)"
        );
        assert!(validate_template(design).is_ok());
    }

    #[test]
    fn ring_targets_render_ring_and_version() {
        let v = CommitVars {
            ring: Some("testers".into()),
            version: Some("1.4.0".into()),
            ..vars()
        };
        let t = "Deploy {{version}} to {{ ring }}";
        assert!(validate_template(t).is_ok());
        assert_eq!(
            render_commit_message(Some(t), &v),
            "Deploy 1.4.0 to testers"
        );
        assert_eq!(render_commit_message(Some(t), &vars()), "Deploy  to ");
        let default = render_commit_message(None, &v);
        assert!(
            default.contains("\nPrevious-Tag: 1.2.3\nRing: testers\nFile: "),
            "{default}"
        );
    }

    #[test]
    fn missing_optional_values_render_empty() {
        let v = CommitVars {
            previous_tag: None,
            revision: None,
            ..vars()
        };
        assert_eq!(
            render_commit_message(Some("[{{previous_tag}}][{{revision}}]"), &v),
            "[][]"
        );
    }

    #[test]
    fn unknown_placeholders_stay_and_are_reported() {
        let t = "Deploy {{image}}:{{tga}} {{";
        assert_eq!(
            render_commit_message(Some(t), &vars()),
            "Deploy gcr.io/pipecd/foo:{{tga}} {{"
        );
        let err = validate_template("Deploy {{image}}:{{ tga }}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder { name: "tga".into() }
        );
        assert!(
            err.to_string()
                .starts_with("unknown placeholder {{tga}}: the placeholders are image, tag"),
            "{err}"
        );
        let err = validate_template("Deploy {{image").unwrap_err();
        assert_eq!(err, TemplateError::Unclosed { at: 7 });
        assert!(err.to_string().contains("unclosed {{ at byte 7"), "{err}");
        assert!(validate_template("no placeholders, {single} braces }}").is_ok());
    }

    #[test]
    fn digest_short_takes_twelve_hex_digits() {
        assert_eq!(digest_short(DIGEST), "0123456789ab");
        assert_eq!(digest_short("0123456789abcdef"), "0123456789ab");
        assert_eq!(digest_short("sha256:abc"), "abc");
        assert_eq!(digest_short(""), "");
    }

    #[test]
    fn default_message_has_subject_and_trailers() {
        assert_eq!(
            render_commit_message(None, &vars()),
            format!("ferry: update gcr.io/pipecd/foo to 1.2.4\n\nDigest: {DIGEST}\nRevision: 1a2b3c4\nPrevious-Tag: 1.2.3\nFile: foo/deployment.yaml")
        );
        let bare = CommitVars {
            tag: String::new(),
            previous_tag: None,
            revision: None,
            ..vars()
        };
        assert_eq!(
            render_commit_message(None, &bare),
            format!("ferry: update gcr.io/pipecd/foo to {DIGEST}\n\nDigest: {DIGEST}\nFile: foo/deployment.yaml")
        );
    }

    #[test]
    fn combined_message_lists_each_update() {
        let bar = CommitVars {
            image: "docker.io/pipecd/bar".into(),
            tag: "2.0.0".into(),
            file_path: "bar/kustomization.yaml".into(),
            ..vars()
        };
        let baz = CommitVars {
            image: "registry.example.com/baz".into(),
            file_path: "baz/values.yaml".into(),
            ..vars()
        };
        let msg = combined_message(&[vars(), bar.clone(), baz], None);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "ferry: update 3 images");
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            format!("- gcr.io/pipecd/foo to 1.2.4 in foo/deployment.yaml ({DIGEST})")
        );
        assert_eq!(
            lines[3],
            format!("- docker.io/pipecd/bar to 2.0.0 in bar/kustomization.yaml ({DIGEST})")
        );
        assert_eq!(lines.len(), 5);

        let t = Some("Deploy {{image}}:{{tag}}");
        let msg = combined_message(&[vars(), bar], t);
        assert_eq!(msg, "ferry: update 2 images\n\n- Deploy gcr.io/pipecd/foo:1.2.4\n- Deploy docker.io/pipecd/bar:2.0.0");
    }

    #[test]
    fn combined_message_for_one_image_in_several_files() {
        let other = CommitVars {
            file_path: "foo/cronjob.yaml".into(),
            ..vars()
        };
        let msg = combined_message(&[vars(), other.clone()], None);
        assert!(
            msg.starts_with("ferry: update gcr.io/pipecd/foo in 2 files\n\n- "),
            "{msg}"
        );
        assert!(msg.contains("in foo/cronjob.yaml"), "{msg}");
        // The same templated message for every update: one deploy, one message.
        let t = Some("Deploy {{image}}:{{tag}}");
        assert_eq!(
            combined_message(&[vars(), other], t),
            "Deploy gcr.io/pipecd/foo:1.2.4"
        );
        assert_eq!(
            combined_message(&[vars()], None),
            render_commit_message(None, &vars())
        );
        assert_eq!(combined_message(&[], None), "ferry: no updates");
    }
}
