//! The YAML stream as a tree of nodes that remember their byte ranges in the source.
//!
//! saphyr-parser reports positions as *character* indexes; they are converted to byte offsets
//! here, once, so the editors can slice and splice the original `&str` directly.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use super::error::EditError;

/// Deeper nesting is refused: manifests nest a few dozen levels at most, and the bound keeps the
/// recursive walks over the tree (and its drop) safe from stack exhaustion on hostile input.
pub(crate) const MAX_DEPTH: usize = 256;

/// One node and the bytes it came from.
#[derive(Debug)]
pub(crate) struct Node {
    /// Start byte. For scalars and collections this includes anchor and tag properties.
    pub start: usize,
    /// End byte (exclusive). For block collections it is where the next token starts; for flow
    /// collections it is just after the closing bracket.
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
    Map {
        pairs: Vec<(Node, Node)>,
        flow: bool,
    },
    Alias,
}

#[derive(Debug)]
pub(crate) struct Scalar {
    /// The value after unquoting and folding.
    pub value: String,
    pub style: ScalarStyle,
    /// The explicit tag, as `handle` + `suffix` (`tag:yaml.org,2002:str` for `!!str`).
    pub tag: Option<String>,
}

impl Node {
    /// "a mapping", "a sequence", ... for error messages.
    pub fn describe(&self, text: &str) -> String {
        match &self.kind {
            Kind::Scalar(_) => "a scalar".to_string(),
            Kind::Seq { .. } => "a sequence".to_string(),
            Kind::Map { .. } => "a mapping".to_string(),
            Kind::Alias => format!(
                "an alias ({})",
                text.get(self.start..self.end).unwrap_or("*")
            ),
        }
    }

    /// The pairs of a mapping node.
    pub fn pairs(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map { pairs, .. } => Some(pairs),
            _ => None,
        }
    }

    /// The index and value of the first pair whose key is the scalar `key`.
    pub fn get(&self, key: &str) -> Option<(usize, &Node)> {
        self.pairs()?
            .iter()
            .enumerate()
            .find(|(_, (k, _))| matches!(&k.kind, Kind::Scalar(s) if s.value == key))
            .map(|(i, (_, v))| (i, v))
    }

    /// Whether `key` appears more than once: YAML forbids it, and readers disagree on which wins.
    pub fn is_duplicated(&self, key: &str) -> bool {
        let pairs = self.pairs().unwrap_or_default();
        pairs
            .iter()
            .filter(|(k, _)| matches!(&k.kind, Kind::Scalar(s) if s.value == key))
            .count()
            > 1
    }
}

/// Char index → byte offset. ASCII text (the common case) needs no table.
struct Offsets(Option<Vec<usize>>);

impl Offsets {
    fn new(text: &str) -> Self {
        if text.is_ascii() {
            return Offsets(None);
        }
        let table = text
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(text.len()))
            .collect();
        Offsets(Some(table))
    }

    fn byte(&self, char_index: usize, len: usize) -> usize {
        match &self.0 {
            None => char_index.min(len),
            Some(table) => table.get(char_index).copied().unwrap_or(len),
        }
    }
}

/// An open collection while its children are being read.
enum Frame {
    Seq {
        start: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

fn yaml_error(e: &ScanError) -> EditError {
    EditError::Yaml {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

/// Parses every document of `text`; the result has one root node per document.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, EditError> {
    let offsets = Offsets::new(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| yaml_error(&e))?;
        let start = offsets.byte(span.start.index(), text.len());
        let end = offsets.byte(span.end.index(), text.len());
        let node = match event {
            Event::Scalar(value, style, _, tag) => Node {
                start,
                end,
                kind: Kind::Scalar(Scalar {
                    value: value.into_owned(),
                    style,
                    tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                }),
            },
            Event::Alias(_) => Node {
                start,
                end,
                kind: Kind::Alias,
            },
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(EditError::TooDeep {
                        limit: MAX_DEPTH,
                        line: span.start.line(),
                    });
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq {
                        start,
                        items: Vec::new(),
                    },
                    _ => Frame::Map {
                        start,
                        pairs: Vec::new(),
                        key: None,
                    },
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { start, items }) => Node {
                    start,
                    end,
                    // A flow sequence ends at its `]`; a block sequence's end event is empty.
                    kind: Kind::Seq {
                        items,
                        flow: span.end.index() > span.start.index(),
                    },
                },
                _ => {
                    return Err(EditError::Unsafe(
                        "the parser ended a sequence that was not open".into(),
                    ))
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    start,
                    pairs,
                    key: None,
                }) => Node {
                    start,
                    end,
                    // A flow mapping ends at its `}`; a block mapping's end event is empty.
                    kind: Kind::Map {
                        pairs,
                        flow: span.end.index() > span.start.index(),
                    },
                },
                _ => {
                    return Err(EditError::Unsafe(
                        "the parser ended a mapping that was not open".into(),
                    ))
                }
            },
            _ => continue,
        };
        match stack.last_mut() {
            None => docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
    if !stack.is_empty() {
        return Err(EditError::Unsafe(
            "the parser left a collection open".into(),
        ));
    }
    Ok(docs)
}

/// The end of the last source text that belongs to `node`: for a block collection the end of its
/// last child (its own end is where the *next* token starts, possibly lines later).
pub(crate) fn content_end(node: &Node) -> usize {
    let mut node = node;
    loop {
        let last = match &node.kind {
            Kind::Seq { items, flow: false } => items.last(),
            Kind::Map { pairs, flow: false } => pairs.last().map(|(_, v)| v),
            _ => None,
        };
        match last {
            Some(child) => node = child,
            None => return node.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_bytes_even_after_non_ascii_text() {
        let text = "# café ☕\nname: \"ü\"\nimage: app:1\n";
        let docs = parse(text).unwrap();
        let (_, image) = docs[0].get("image").unwrap();
        assert_eq!(&text[image.start..image.end], "app:1");
        let (_, name) = docs[0].get("name").unwrap();
        assert_eq!(&text[name.start..name.end], "\"ü\"");
    }

    #[test]
    fn every_document_is_a_root() {
        let docs = parse("a: 1\n---\nb: 2\n---\n- x\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].get("b").is_some());
    }

    #[test]
    fn flow_mappings_are_marked() {
        let docs = parse("a: {b: 1}\nc:\n  d: 2\n").unwrap();
        let flow = |n: &Node| matches!(n.kind, Kind::Map { flow: true, .. });
        assert!(flow(docs[0].get("a").unwrap().1));
        assert!(!flow(docs[0].get("c").unwrap().1));
    }

    #[test]
    fn content_end_stops_at_the_last_child() {
        let text = "a:\n  - x: 1\n    y: 2\n\n# trailing\nb: 3\n";
        let docs = parse(text).unwrap();
        let (_, a) = docs[0].get("a").unwrap();
        assert_eq!(&text[..content_end(a)], "a:\n  - x: 1\n    y: 2");
    }

    #[test]
    fn invalid_yaml_reports_line_and_column() {
        let err = parse("a: [\n").unwrap_err();
        assert!(matches!(err, EditError::Yaml { line: 2, .. }), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let block: String = (0..MAX_DEPTH + 10)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert!(matches!(parse(&block), Err(EditError::TooDeep { .. })));
        let flow = "[".repeat(250) + &"]".repeat(250);
        assert!(parse(&flow).is_ok());
        assert!(parse(&"[".repeat(300)).is_err());
    }
}
