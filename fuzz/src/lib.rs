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
//! - [`yaml_edit`]: an edit that changes a file produces a file the same edit leaves unchanged.
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

/// The format-preserving YAML editors.
pub fn yaml_edit(data: &[u8]) {
    let release = Release {
        image: IMAGE,
        tag: "1.2.4",
        digest: DIGEST,
    };
    let kinds = [
        EditKind::Field {
            path: "spec.template.spec.containers[0].image".into(),
        },
        EditKind::Kustomize,
        EditKind::Helm {
            repository: Some("image.repository".into()),
            tag: Some("image.tag".into()),
            digest: Some("image.digest".into()),
        },
    ];
    for kind in &kinds {
        for format in [Format::Tag, Format::Digest, Format::TagDigest] {
            let Ok(EditOutcome::Changed { content, .. }) =
                edit::apply(data, kind, format, IMAGE, &release)
            else {
                continue;
            };
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
