//! Fuzz targets for ferry's untrusted-input parsers, driven by proptest: inputs are a seed from
//! the committed corpus (`fuzz/corpus/<target>/`) with a run of random byte-level mutations, and
//! a failing input is shrunk to a small one before it is reported.
//!
//! Why not cargo-fuzz: libFuzzer instrumentation needs a nightly compiler, and the machines this
//! project builds on have only the stable toolchain. The targets are plain functions of bytes,
//! so moving them under cargo-fuzz later is a matter of a `fuzz_target!` line each.
//!
//! Each target checks more than "does not panic":
//! - [`reference`]: a name that parses normalises to a fixed point, and its ferry repository name
//!   maps back to it.
//! - [`manifest`]: parsing any bytes under any declared media type returns, never panics.
//! - [`yaml_edit`]: an edit that changes a file produces a file the same edit leaves unchanged, and a
//!   field edit changes only the bytes of one scalar, which then holds the new reference.
//! - [`image_watcher`]: every error names the file.

use ferry_agent::config::ImageWatcherFile;
use ferry_agent::edit::{self, EditKind, EditOutcome, Format, Release};
use ferry_proto::manifest::{config_labels, ManifestInfo};
use ferry_proto::names::{validate_digest, validate_repository, validate_tag};
use ferry_proto::reference::{ImageName, Reference};
use proptest::prelude::*;

/// The fuzz targets, by name.
pub const TARGETS: [&str; 4] = ["reference", "manifest", "yaml_edit", "image_watcher"];

/// Runs target `name` on `data`; panics when a property fails.
pub fn run_target(name: &str, data: &[u8]) {
    match name {
        "reference" => reference(data),
        "manifest" => manifest(data),
        "yaml_edit" => yaml_edit(data),
        "image_watcher" => image_watcher(data),
        _ => panic!("unknown fuzz target {name:?}; targets: {TARGETS:?}"),
    }
}

/// Image references and OCI names.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = (validate_repository(s), validate_tag(s), validate_digest(s));
    if let Ok(r) = Reference::parse(s) {
        let again = Reference::parse(&r.to_string())
            .unwrap_or_else(|e| panic!("{s:?} parsed as {r}, which does not parse: {e}"));
        assert_eq!(again, r, "normalising {s:?} twice changed it");
    }
    if let Ok(n) = ImageName::parse(s) {
        let repo = n.ferry_repository();
        assert!(
            validate_repository(&repo).is_ok(),
            "{s:?}: ferry repository {repo:?} is not a valid name"
        );
        let back = ImageName::from_ferry_repository(&repo)
            .unwrap_or_else(|e| panic!("{s:?}: {repo:?} does not map back: {e}"));
        assert_eq!(back, n, "{s:?}: {repo:?} maps back to another image");
    }
}

/// Manifests, indexes and configs.
pub fn manifest(data: &[u8]) {
    for declared in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        Some("text/plain"),
    ] {
        if let Ok(info) = ManifestInfo::parse(declared, data) {
            for r in info.references() {
                assert!(
                    validate_digest(&r.digest).is_ok(),
                    "a parsed manifest references the invalid digest {:?}",
                    r.digest
                );
            }
        }
    }
    let _ = config_labels(data);
}

const IMAGE: &str = "gcr.io/acme/app";
const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

/// The `field` paths of the edit cases the corpus was seeded from (agent/tests/fixtures/edits):
/// every input is tried with each, so each seed is edited at its own path.
const FIELD_PATHS: [&str; 3] = [
    "spec.template.spec.containers[0].image",
    "spec.containers[0].image",
    "spec.containers[1].image",
];

/// The format-preserving YAML editors.
pub fn yaml_edit(data: &[u8]) {
    let release = Release {
        image: IMAGE,
        tag: "1.2.4",
        digest: DIGEST,
    };
    let mut kinds: Vec<EditKind> = FIELD_PATHS
        .iter()
        .map(|p| EditKind::Field { path: (*p).into() })
        .collect();
    kinds.push(EditKind::Kustomize);
    kinds.push(EditKind::Helm {
        repository: Some("image.repository".into()),
        tag: Some("image.tag".into()),
        digest: Some("image.digest".into()),
    });
    for kind in &kinds {
        for format in [Format::Tag, Format::Digest, Format::TagDigest] {
            let Ok(EditOutcome::Changed { content, .. }) =
                edit::apply(data, kind, format, IMAGE, &release)
            else {
                continue;
            };
            if matches!(kind, EditKind::Field { .. }) {
                let written = match format {
                    Format::Tag => release.tag,
                    _ => release.digest,
                };
                only_one_scalar_changed(data, &content, written)
                    .unwrap_or_else(|why| panic!("{kind:?} {format}: {why}"));
            }
            match edit::apply(&content, kind, format, IMAGE, &release) {
                Ok(EditOutcome::Unchanged) => {}
                other => panic!(
                    "{kind:?} {format}: editing again did not leave the file unchanged: {other:?}\nfirst result:\n{}",
                    String::from_utf8_lossy(&content)
                ),
            }
        }
    }
}

/// A scalar's byte start, byte end, value and quoting style.
type Span = (usize, usize, String, saphyr_parser::ScalarStyle);

/// The README's promise for a field edit: outside the changed scalar's bytes, input and output
/// are equal. Some scalar of the input, at bytes `s..e`, must be such that the input's bytes before
/// `s` and after `e` are the output's first `s` and last `len - e` bytes, and the output must hold
/// a scalar exactly where that one was, now ending with what was written (`written`: the tag or
/// digest). Spans come from saphyr-parser directly, not from the editor, so the check is
/// independent of the editor's own bookkeeping.
fn only_one_scalar_changed(input: &[u8], output: &[u8], written: &str) -> Result<(), String> {
    let shown = || {
        format!(
            "\ninput:\n{}\noutput:\n{}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(output)
        )
    };
    let text_in = std::str::from_utf8(input).map_err(|e| e.to_string())?;
    let text_out = std::str::from_utf8(output)
        .map_err(|e| format!("the output is not UTF-8: {e}{}", shown()))?;
    let spans_in = scalar_spans(text_in).ok_or("the editor accepted input saphyr cannot parse")?;
    let spans_out = scalar_spans(text_out)
        .ok_or_else(|| format!("the output does not parse as YAML{}", shown()))?;
    let kept_around = |&&(s, e, ..): &&Span| {
        let tail = input.len() - e;
        s + tail <= output.len()
            && input[..s] == output[..s]
            && input[e..] == output[output.len() - tail..]
    };
    let Some(old) = spans_in.iter().find(kept_around) else {
        return Err(format!(
            "bytes outside every single scalar of the input changed{}",
            shown()
        ));
    };
    let new_end = output.len() - (input.len() - old.1);
    let Some(new) = spans_out
        .iter()
        .find(|(s, e, ..)| *s == old.0 && *e == new_end)
    else {
        return Err(format!(
            "output bytes {}..{new_end}, which replaced the input's scalar {:?}, are not one scalar{}",
            old.0,
            old.2,
            shown()
        ));
    };
    if new.3 != old.3 {
        return Err(format!(
            "the changed scalar's style went from {:?} to {:?}{}",
            old.3,
            new.3,
            shown()
        ));
    }
    if !new.2.ends_with(written) {
        return Err(format!(
            "the changed scalar reads {:?}, not ending in {written:?}{}",
            new.2,
            shown()
        ));
    }
    Ok(())
}

/// Where a quoted scalar starting at (or, after an anchor or tag, near) `start` really ends: just
/// past its closing quote. saphyr's end marker for a quoted scalar can run on over a trailing
/// comment, which would hide a dropped comment from the check.
fn quoted_end(text: &str, start: usize, style: saphyr_parser::ScalarStyle) -> Option<usize> {
    let quote = match style {
        saphyr_parser::ScalarStyle::DoubleQuoted => b'"',
        saphyr_parser::ScalarStyle::SingleQuoted => b'\'',
        _ => return None,
    };
    let bytes = text.as_bytes();
    let open = start + bytes.get(start..)?.iter().position(|&b| b == quote)?;
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Byte start, byte end, value and quoting style of every scalar in `text`, or None when it does
/// not parse.
fn scalar_spans(text: &str) -> Option<Vec<Span>> {
    // saphyr reports character indexes; map them to byte offsets.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain([text.len()])
        .collect();
    let byte = |i: usize| bytes.get(i).copied().unwrap_or(text.len());
    let mut spans = Vec::new();
    for item in saphyr_parser::Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        if let saphyr_parser::Event::Scalar(value, style, ..) = event {
            let start = byte(span.start.index());
            let end = quoted_end(text, start, style).unwrap_or(byte(span.end.index()));
            spans.push((start, end, value.into_owned(), style));
        }
    }
    Some(spans)
}

/// ImageWatcher files.
pub fn image_watcher(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = ImageWatcherFile::parse(text, "fuzz.yaml") {
        let message = e.to_string();
        assert!(
            message.contains("fuzz.yaml"),
            "an error that does not name the file: {message}"
        );
    }
}

/// Bytes that matter to the grammars: separators, quotes, YAML indicators, digits.
const TOKENS: &[&[u8]] = &[
    b":",
    b"@",
    b"/",
    b".",
    b"-",
    b"_",
    b"sha256:",
    b"\n",
    b"\r\n",
    b"  ",
    b"- ",
    b"# ",
    b"'",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"|\n",
    b">-\n",
    b"---\n",
    b"\t",
    b"\\",
    b"0",
    b"9",
    b"A",
    b"\xff",
    b"\xe2\x80\x8b",
    b"null",
    b"~",
    b"true",
    b"!!str ",
];

/// One byte-level mutation.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit at a position (taken modulo the length).
    Flip(usize, u8),
    /// Insert a grammar token.
    Token(usize, usize),
    /// Delete up to n bytes.
    Delete(usize, usize),
    /// Copy a range to another place.
    Duplicate(usize, usize, usize),
    /// Replace a byte.
    Set(usize, u8),
}

impl Mutation {
    fn apply(&self, data: &mut Vec<u8>) {
        let len = data.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *self {
            Mutation::Flip(i, bit) if len > 0 => data[i % len] ^= 1 << (bit % 8),
            Mutation::Set(i, b) if len > 0 => data[i % len] = b,
            Mutation::Token(i, t) => {
                let pos = at(i);
                let token = TOKENS[t % TOKENS.len()];
                data.splice(pos..pos, token.iter().copied());
            }
            Mutation::Delete(i, n) if len > 0 => {
                let start = i % len;
                let end = (start + n % 16 + 1).min(len);
                data.drain(start..end);
            }
            Mutation::Duplicate(from, n, to) if len > 0 => {
                let start = from % len;
                let end = (start + n % 64 + 1).min(len);
                let chunk: Vec<u8> = data[start..end].to_vec();
                let pos = at(to);
                data.splice(pos..pos, chunk);
            }
            _ => {}
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, t)| Mutation::Token(i, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(f, n, t)| Mutation::Duplicate(f, n, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
    ]
}

/// Inputs for a target: a corpus seed (by index) and 0–12 mutations of it. Shrinking removes
/// mutations and moves towards the first seed, so a failure is reported close to a seed.
pub fn inputs(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!corpus.is_empty(), "an empty corpus");
    let n = corpus.len();
    (0..n, prop::collection::vec(mutation(), 0..12)).prop_map(move |(seed, muts)| {
        let mut data = corpus[seed].clone();
        for m in &muts {
            m.apply(&mut data);
        }
        data
    })
}

/// The committed seed corpus of `target`, plus its saved regressions.
pub fn corpus(target: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        if !dir.is_dir() {
            continue;
        }
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            files.push(std::fs::read(e.path())?);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::only_one_scalar_changed;

    const BEFORE: &str = "a: 1 # keep\nimage: \"gcr.io/acme/app:1.2.3\" # ci\n";

    #[test]
    fn a_field_edit_that_changes_only_the_scalar_passes() {
        let after = "a: 1 # keep\nimage: \"gcr.io/acme/app:1.2.4\" # ci\n";
        only_one_scalar_changed(BEFORE.as_bytes(), after.as_bytes(), "1.2.4").unwrap();
    }

    #[test]
    fn a_field_edit_that_also_touches_a_comment_or_the_quotes_is_caught() {
        for after in [
            "a: 1 # kept\nimage: \"gcr.io/acme/app:1.2.4\" # ci\n",
            "a: 1 # keep\nimage: gcr.io/acme/app:1.2.4 # ci\n",
            "a: 1 # keep\nimage: \"gcr.io/acme/app:1.2.4\"\n",
            "a: 1 # keep\nimage: \"gcr.io/acme/app:1.2.5\" # ci\n",
        ] {
            assert!(
                only_one_scalar_changed(BEFORE.as_bytes(), after.as_bytes(), "1.2.4").is_err(),
                "{after:?} passed"
            );
        }
    }
}
