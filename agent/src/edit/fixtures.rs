//! Runs every case in `agent/tests/fixtures/edits/` (the set grows; each folder is picked up).
//! The repository owns its copy: the cases started in the project's shared fixtures, and new
//! cases there are copied in here, so a fresh clone tests without anything beside it.
//! `case.yaml` is read with the editor's own YAML tree, so the test needs no other YAML crate.

use std::fs;
use std::path::PathBuf;

use super::path::{lookup, Lookup, Path};
use super::tree::{parse, Kind, Node};
use super::{apply, EditKind, EditOutcome, Format, Release};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edits")
}

/// The string at `path` in the case file, if it is there.
fn string(root: &Node, text: &str, path: &str) -> Option<String> {
    match lookup(root, text, &Path::parse(path).unwrap()) {
        Lookup::Found(Node {
            kind: Kind::Scalar(s),
            ..
        }) => Some(s.value.clone()),
        _ => None,
    }
}

fn exists(root: &Node, text: &str, path: &str) -> bool {
    matches!(
        lookup(root, text, &Path::parse(path).unwrap()),
        Lookup::Found(_)
    )
}

fn run_case(dir: &std::path::Path) -> Result<(), String> {
    let case_text =
        fs::read_to_string(dir.join("case.yaml")).map_err(|e| format!("reading case.yaml: {e}"))?;
    let docs = parse(&case_text).map_err(|e| format!("case.yaml: {e}"))?;
    let case = &docs[0];
    let get = |p: &str| string(case, &case_text, p);
    let need = |p: &str| get(p).ok_or_else(|| format!("case.yaml has no {p}"));

    let kind = if let Some(path) = get("target.field") {
        EditKind::Field { path }
    } else if exists(case, &case_text, "target.kustomize") {
        EditKind::Kustomize
    } else if exists(case, &case_text, "target.helm") {
        EditKind::Helm {
            repository: get("target.helm.repository"),
            tag: get("target.helm.tag"),
            digest: get("target.helm.digest"),
        }
    } else {
        return Err("case.yaml target has no field, kustomize or helm".into());
    };
    let format: Format = get("target.format")
        .map_or(Ok(Format::Tag), |f| f.parse())
        .map_err(|e| e.to_string())?;
    let (image, tag, digest) = (
        need("event.image")?,
        need("event.tag")?,
        need("event.digest")?,
    );
    let release = Release {
        image: &image,
        tag: &tag,
        digest: &digest,
    };
    let input_name = need("target.filePath")?;
    let input =
        fs::read(dir.join(&input_name)).map_err(|e| format!("reading {input_name}: {e}"))?;

    let result = apply(&input, &kind, format, &need("target.image")?, &release);
    if let Ok(want) = fs::read_to_string(dir.join("expected-error.txt")) {
        return match result {
            Err(e) if e.to_string().contains(want.trim()) => Ok(()),
            Err(e) => Err(format!(
                "error {:?} does not contain {:?}",
                e.to_string(),
                want.trim()
            )),
            Ok(outcome) => Err(format!(
                "expected an error containing {:?}, got {outcome:?}",
                want.trim()
            )),
        };
    }
    let expected =
        fs::read(dir.join("expected.yaml")).map_err(|e| format!("reading expected.yaml: {e}"))?;
    match result.map_err(|e| format!("unexpected error: {e}"))? {
        // An edit that changes nothing must say so, so that no empty commit is made.
        EditOutcome::Unchanged if expected == input => Ok(()),
        EditOutcome::Unchanged => {
            Err("reported Unchanged but expected.yaml differs from the input".into())
        }
        EditOutcome::Changed { .. } if expected == input => {
            Err("expected Unchanged (expected.yaml equals the input)".into())
        }
        EditOutcome::Changed { content, .. } if content == expected => Ok(()),
        EditOutcome::Changed { content, .. } => Err(format!(
            "output differs from expected.yaml\n--- got\n{}\n--- want\n{}",
            String::from_utf8_lossy(&content).escape_debug(),
            String::from_utf8_lossy(&expected).escape_debug()
        )),
    }
}

#[test]
fn every_fixture_case_matches_byte_for_byte() {
    let dir = fixtures_dir();
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.yaml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run_case(c).err().map(|e| {
                format!(
                    "{}: {e}",
                    c.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Hostile-input smoke test until the fuzzer takes over: every truncation of every fixture input,
/// and every byte replaced by a YAML-significant character, must give an outcome, never a panic,
/// and any edit it does make must still parse.
#[test]
fn mangled_fixture_inputs_never_panic() {
    let kinds = [
        EditKind::Field {
            path: "spec.containers[0].image".into(),
        },
        EditKind::Kustomize,
        EditKind::Helm {
            repository: None,
            tag: Some("image.tag".into()),
            digest: Some("image.digest".into()),
        },
    ];
    let digest = format!("sha256:{}", "4f".repeat(32));
    let release = Release {
        image: "gcr.io/acme/app",
        tag: "1.2.4",
        digest: &digest,
    };
    let try_all = |input: &[u8], formats: &[Format]| {
        for kind in &kinds {
            for format in formats {
                if let Ok(EditOutcome::Changed { content, .. }) =
                    apply(input, kind, *format, "gcr.io/acme/app", &release)
                {
                    let text = String::from_utf8(content).expect("edits keep UTF-8");
                    parse(&text).expect("edits keep the file parseable");
                }
            }
        }
    };
    let dir = fixtures_dir();
    for entry in fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
        let Ok(input) = fs::read(entry.path().join("input.yaml")) else {
            continue;
        };
        for cut in 0..input.len() {
            try_all(
                &input[..cut],
                &[Format::Tag, Format::Digest, Format::TagDigest],
            );
        }
        for at in 0..input.len() {
            for b in *b":-'\"\n{#&|" {
                let mut mangled = input.clone();
                mangled[at] = b;
                try_all(&mangled, &[Format::Digest]);
            }
        }
    }
}
