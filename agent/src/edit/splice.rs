//! Byte-range edits on the original text: replacing a scalar, renaming a key, inserting or
//! deleting a key/value pair in a mapping. Everything outside the ranges is copied untouched,
//! which is what keeps comments, spacing and line endings exactly as they were.

use super::error::EditError;
use super::path::Path;
use super::scalar::{render, scalar_at, slot};
use super::tree::{content_end, Kind, Node};
use saphyr_parser::ScalarStyle;

#[derive(Debug)]
struct Splice {
    start: usize,
    end: usize,
    text: String,
}

/// The edits planned for one file, applied together.
#[derive(Debug, Default)]
pub(crate) struct Splices(Vec<Splice>);

impl Splices {
    pub fn replace(&mut self, start: usize, end: usize, text: String) {
        self.0.push(Splice { start, end, text });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies every splice. Insertions at the same position keep the order they were planned in.
    pub fn apply(mut self, text: &str) -> Result<String, EditError> {
        self.0.sort_by_key(|s| (s.start, s.end)); // stable: same-position inserts keep their order
        let mut out = String::with_capacity(text.len() + 64);
        let mut at = 0;
        for s in &self.0 {
            let kept = (s.start >= at && s.end >= s.start)
                .then(|| text.get(at..s.start))
                .flatten();
            let kept = kept.ok_or_else(|| EditError::Unsafe("two planned edits overlap".into()))?;
            out.push_str(kept);
            out.push_str(&s.text);
            at = s.end;
        }
        out.push_str(
            text.get(at..)
                .ok_or_else(|| EditError::Unsafe("an edit ends inside a character".into()))?,
        );
        Ok(out)
    }
}

/// The file's line break: CRLF files get CRLF in inserted lines.
pub(crate) fn eol(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// The start of the line holding byte `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// The start of the line after the one holding byte `pos` (or the end of the text).
fn next_line(text: &str, pos: usize) -> usize {
    let from = pos.min(text.len());
    text.as_bytes()[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| from + i + 1)
}

/// The start of the line after the last line of `node`'s own text.
fn after_node_line(text: &str, node: &Node) -> usize {
    // `content_end` is exclusive; step back one byte so an end just past a `\n` stays on its line.
    next_line(text, content_end(node).saturating_sub(1).max(node.start))
}

/// Sets the scalar `node` (at `path`) to `value`, keeping its quoting style where it can.
/// Plans nothing when the value already reads `value` (even if written as a YAML number).
pub(crate) fn set_scalar(
    splices: &mut Splices,
    text: &str,
    node: &Node,
    path: &Path,
    value: &str,
) -> Result<(), EditError> {
    let scalar = scalar_at(node, text, path)?;
    if scalar.value == value {
        return Ok(());
    }
    let slot = slot(node, scalar, text, path)?;
    splices.replace(
        slot.start,
        slot.end,
        format!("{}{}", slot.lead, render(value, scalar.style)),
    );
    Ok(())
}

/// Renames the key of pair `index` in `map` to `key`, in the key's own quoting style.
pub(crate) fn rename_key(
    splices: &mut Splices,
    text: &str,
    map: &Node,
    index: usize,
    key: &str,
    path: &Path,
) -> Result<(), EditError> {
    let pair = map.pairs().and_then(|p| p.get(index));
    let (k, _) =
        pair.ok_or_else(|| EditError::Unsafe(format!("no pair {index} in the mapping at {path}")))?;
    let scalar = scalar_at(k, text, path)?;
    let slot = slot(k, scalar, text, path)?;
    splices.replace(slot.start, slot.end, render(key, scalar.style));
    Ok(())
}

/// Adds `key: value` pairs at the end of `map` (at `path`), indented like its first key, or
/// `, key: value` inside a flow mapping.
pub(crate) fn insert_pairs(
    splices: &mut Splices,
    text: &str,
    map: &Node,
    path: &Path,
    new: &[(&str, &str)],
) -> Result<(), EditError> {
    let Kind::Map { pairs, flow } = &map.kind else {
        return Err(EditError::WrongType {
            path: path.to_string(),
            found: map.describe(text),
            expected: "a mapping",
        });
    };
    let rendered: Vec<String> = new
        .iter()
        .map(|(k, v)| {
            format!(
                "{}: {}",
                render(k, ScalarStyle::Plain),
                render(v, ScalarStyle::Plain)
            )
        })
        .collect();
    if *flow {
        return match pairs.last() {
            // An empty last value has no reliable span in a flow mapping (it may cover the `}`).
            Some((_, last)) if last.end > last.start && !is_empty_scalar(last) => {
                let text = rendered.iter().map(|p| format!(", {p}")).collect();
                splices.replace(last.end, last.end, text);
                Ok(())
            }
            None if map.end > map.start && text.as_bytes().get(map.end - 1) == Some(&b'}') => {
                splices.replace(map.end - 1, map.end - 1, rendered.join(", "));
                Ok(())
            }
            _ => Err(EditError::Unsafe(format!(
                "cannot add a key to the flow mapping at {path}"
            ))),
        };
    }
    let (Some((first_key, _)), Some((_, last_value))) = (pairs.first(), pairs.last()) else {
        return Err(EditError::Unsafe(format!(
            "cannot add a key to the empty mapping at {path}"
        )));
    };
    // Indent like the first key; for `- name: x` that is the width of `- ` plus its indent.
    let indent = " ".repeat(
        text.get(line_start(text, first_key.start)..first_key.start)
            .map_or(0, |p| p.chars().count()),
    );
    let eol = eol(text);
    let at = after_node_line(text, last_value);
    let lines: String = rendered
        .iter()
        .map(|p| format!("{indent}{p}{eol}"))
        .collect();
    if at == text.len() && !text.ends_with('\n') {
        // The mapping ends the file without a final line break: start a new line, add none after.
        let lines = format!("{eol}{}", lines.strip_suffix(eol).unwrap_or(&lines));
        splices.replace(at, at, lines);
    } else {
        splices.replace(at, at, lines);
    }
    Ok(())
}

fn is_empty_scalar(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar(s) if s.value.is_empty() && s.style == ScalarStyle::Plain)
}

/// Deletes pair `index` of `map` (at `path`): its whole lines in a block mapping, or the pair and
/// its comma in a flow mapping.
pub(crate) fn delete_pair(
    splices: &mut Splices,
    text: &str,
    map: &Node,
    index: usize,
    path: &Path,
) -> Result<(), EditError> {
    let Kind::Map { pairs, flow } = &map.kind else {
        return Err(EditError::Unsafe(format!("{path} is not a mapping")));
    };
    let cannot = || EditError::Unsafe(format!("cannot delete the key in its layout at {path}"));
    let (key, value) = pairs.get(index).ok_or_else(cannot)?;
    let next_key = pairs.get(index + 1).map(|(k, _)| k.start);
    if *flow {
        if next_key.is_none() && is_empty_scalar(value) {
            return Err(cannot()); // its span may cover the closing `}`
        }
        let (start, end) = match (next_key, index.checked_sub(1).and_then(|i| pairs.get(i))) {
            (Some(next), _) => (key.start, next),
            (None, Some((_, prev))) => (prev.end, value.end),
            (None, None) => (key.start, value.end),
        };
        if end < start {
            return Err(cannot());
        }
        splices.replace(start, end, String::new());
        return Ok(());
    }
    let line = line_start(text, key.start);
    let on_own_line = text
        .get(line..key.start)
        .is_some_and(|p| p.bytes().all(|b| b == b' '));
    if on_own_line {
        splices.replace(line, after_node_line(text, value), String::new());
    } else {
        // `- newTag: x` opens a sequence entry: keep the `- ` and pull the next key up to it.
        let next = next_key.ok_or_else(cannot)?;
        splices.replace(key.start, next, String::new());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse;
    use super::*;

    fn root_edit(text: &str, f: impl FnOnce(&mut Splices, &Node)) -> String {
        let docs = parse(text).unwrap();
        let mut s = Splices::default();
        f(&mut s, &docs[0]);
        s.apply(text).unwrap()
    }

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn insert_after_last_pair_with_its_indent_and_line_break() {
        let text = "a:\r\n  - name: x\r\n    newTag: 1  # c\r\nb: 2\r\n";
        let out = root_edit(text, |s, root| {
            let Kind::Seq { items, .. } = &root.get("a").unwrap().1.kind else {
                panic!()
            };
            insert_pairs(s, text, &items[0], &p("a[0]"), &[("digest", "sha256:00")]).unwrap();
        });
        assert_eq!(
            out,
            "a:\r\n  - name: x\r\n    newTag: 1  # c\r\n    digest: sha256:00\r\nb: 2\r\n"
        );
    }

    #[test]
    fn insert_at_end_of_file_without_final_newline() {
        let text = "image:\n  tag: x";
        let out = root_edit(text, |s, root| {
            insert_pairs(
                s,
                text,
                root.get("image").unwrap().1,
                &p("image"),
                &[("digest", "d"), ("x", "1.0")],
            )
            .unwrap();
        });
        assert_eq!(out, "image:\n  tag: x\n  digest: d\n  x: \"1.0\"");
    }

    #[test]
    fn insert_into_flow_mappings() {
        let text = "a: {name: x}\nb: {}\n";
        let out = root_edit(text, |s, root| {
            insert_pairs(
                s,
                text,
                root.get("a").unwrap().1,
                &p("a"),
                &[("newTag", "1.2")],
            )
            .unwrap();
            insert_pairs(s, text, root.get("b").unwrap().1, &p("b"), &[("k", "v")]).unwrap();
        });
        assert_eq!(out, "a: {name: x, newTag: \"1.2\"}\nb: {k: v}\n");
    }

    #[test]
    fn delete_whole_lines_or_the_first_key_after_a_dash() {
        let text = "- newTag: 1\n  name: x\n  # keep\n  digest: d\n";
        let out = root_edit(text, |s, root| {
            let Kind::Seq { items, .. } = &root.kind else {
                panic!()
            };
            delete_pair(s, text, &items[0], 0, &p("[0]")).unwrap();
            delete_pair(s, text, &items[0], 2, &p("[0]")).unwrap();
        });
        assert_eq!(out, "- name: x\n  # keep\n");
    }

    #[test]
    fn delete_in_flow_mapping() {
        let text = "a: {name: x, newTag: 1}\nb: {newTag: 1, name: y}\n";
        let out = root_edit(text, |s, root| {
            delete_pair(s, text, root.get("a").unwrap().1, 1, &p("a")).unwrap();
            delete_pair(s, text, root.get("b").unwrap().1, 0, &p("b")).unwrap();
        });
        assert_eq!(out, "a: {name: x}\nb: {name: y}\n");
    }

    #[test]
    fn empty_value_gets_a_space_after_the_colon() {
        let text = "tag:\nx: 1\n";
        let out = root_edit(text, |s, root| {
            set_scalar(s, text, root.get("tag").unwrap().1, &p("tag"), "1.2.4").unwrap();
        });
        assert_eq!(out, "tag: 1.2.4\nx: 1\n");
    }

    #[test]
    fn overlapping_edits_are_refused() {
        let mut s = Splices::default();
        s.replace(0, 3, "x".into());
        s.replace(2, 4, "y".into());
        assert!(s.apply("abcdef").is_err());
    }
}
