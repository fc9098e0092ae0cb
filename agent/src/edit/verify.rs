//! The safety net: after splicing, the new text is parsed again and must read exactly like the
//! old one except at the paths the edit meant to change. A layout the splicer mishandles then
//! becomes an error, never a silently corrupted manifest in someone's config repository.

use std::collections::BTreeMap;

use super::error::EditError;
use super::path::{Path, Segment};
use super::scalar::{reading, Reading};
use super::tree::{self, Kind, Node};

/// One intended result of an edit: `path` in document `doc` reads `value`, or is gone (`None`).
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    pub doc: usize,
    pub path: Path,
    pub value: Option<String>,
}

/// What a leaf reads as. Strings are kept apart from plain scalars YAML reads as something else,
/// so a tag that lost its quotes (`"1.40"` → `1.40`) shows up as a difference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    Str(String),
    Other(String),
    Alias(String),
    EmptySeq,
    EmptyMap,
}

fn flatten(node: &Node, text: &str, path: &mut Path, out: &mut BTreeMap<String, Leaf>) {
    let leaf = match &node.kind {
        Kind::Scalar(s) => match reading(s) {
            Reading::Str => Leaf::Str(s.value.clone()),
            _ => Leaf::Other(s.value.clone()),
        },
        Kind::Alias => Leaf::Alias(
            text.get(node.start..node.end)
                .unwrap_or_default()
                .to_string(),
        ),
        Kind::Seq { items, .. } if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Segment::Index(i));
                flatten(item, text, path, out);
                path.0.pop();
            }
            return;
        }
        Kind::Map { pairs, .. } if !pairs.is_empty() => {
            for (i, (k, v)) in pairs.iter().enumerate() {
                let key = match &k.kind {
                    Kind::Scalar(s) => s.value.clone(),
                    // Complex keys cannot be named by a path; index them so both sides agree.
                    _ => format!("?{i}"),
                };
                path.0.push(Segment::Key(key));
                flatten(v, text, path, out);
                path.0.pop();
            }
            return;
        }
        Kind::Seq { .. } => Leaf::EmptySeq,
        Kind::Map { .. } => Leaf::EmptyMap,
    };
    out.insert(path.to_string(), leaf);
}

fn flat(node: &Node, text: &str) -> BTreeMap<String, Leaf> {
    let mut out = BTreeMap::new();
    flatten(node, text, &mut Path::default(), &mut out);
    out
}

/// Checks that `new_text` reads like `old_docs` with exactly the `expect`ed changes.
pub(crate) fn verify(
    old_docs: &[Node],
    old_text: &str,
    new_text: &str,
    expect: &[Expect],
) -> Result<(), EditError> {
    let new_docs = tree::parse(new_text)
        .map_err(|e| EditError::Unsafe(format!("the edited file would not parse ({e})")))?;
    if new_docs.len() != old_docs.len() {
        return Err(EditError::Unsafe(
            "the edit would change the number of YAML documents".into(),
        ));
    }
    for (i, (old, new)) in old_docs.iter().zip(&new_docs).enumerate() {
        let mut want = flat(old, old_text);
        for e in expect.iter().filter(|e| e.doc == i) {
            match &e.value {
                Some(v) => want.insert(e.path.to_string(), Leaf::Str(v.clone())),
                None => want.remove(&e.path.to_string()),
            };
        }
        let got = flat(new, new_text);
        if want != got {
            let differs = want
                .iter()
                .find(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .or_else(|| got.keys().find(|k| !want.contains_key(*k)).cloned())
                .unwrap_or_default();
            return Err(EditError::Unsafe(format!(
                "the edit would also change {differs:?} in document {}",
                i + 1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(old: &str, new: &str, expect: &[(&str, Option<&str>)]) -> Result<(), EditError> {
        let docs = tree::parse(old).unwrap();
        let expect: Vec<Expect> = expect
            .iter()
            .map(|(p, v)| Expect {
                doc: 0,
                path: Path::parse(p).unwrap(),
                value: v.map(str::to_string),
            })
            .collect();
        verify(&docs, old, new, &expect)
    }

    #[test]
    fn accepts_exactly_the_intended_change() {
        check(
            "a: {b: 1, c: x}\n",
            "a: {b: 1, c: z}\n",
            &[("a.c", Some("z"))],
        )
        .unwrap();
        check("a: {b: 1, c: x}\n", "a: {b: 1}\n", &[("a.c", None)]).unwrap();
    }

    #[test]
    fn catches_collateral_damage() {
        let err = check("a: {b: 1, c: x}\n", "a: {c: z}\n", &[("a.c", Some("z"))]).unwrap_err();
        assert!(err.to_string().contains("a.b"), "{err}");
        assert!(check("c: \"1.40\"\n", "c: 1.40\n", &[("c", Some("1.40"))]).is_err());
        assert!(check("a: x\n", "a: [\n", &[]).is_err());
        assert!(check("a: x\n", "a: x\n---\nb: y\n", &[]).is_err());
    }
}
