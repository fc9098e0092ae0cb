//! Raw YAML paths (`spec.template.spec.containers[0].image`, `image.tag`) and looking them up.
//!
//! Keys are separated by `.`, sequence indexes written `[N]`; a key that itself holds a dot is
//! written `["app.kubernetes.io/name"]`. Lookups never follow aliases: an edit through an alias
//! would change every place that shares the anchor, which the target did not ask for.

use std::fmt;

use super::error::EditError;
use super::tree::{Kind, Node};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path: a list of mapping keys and sequence indexes from a document's root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Path(pub Vec<Segment>);

impl Path {
    /// Parses the configured path syntax.
    pub fn parse(text: &str) -> Result<Path, EditError> {
        let invalid = |reason: &str| EditError::InvalidPath {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        let mut segments = Vec::new();
        let mut rest = text;
        let mut first = true;
        loop {
            // A key runs to the next `.` or `[`; only the first segment may be an index instead.
            let key_len = rest.find(['.', '[']).unwrap_or(rest.len());
            let (key, after) = rest.split_at(key_len);
            if !key.is_empty() {
                if key.contains(']') {
                    return Err(invalid("unbalanced ']'"));
                }
                segments.push(Segment::Key(key.to_string()));
            } else if !(first && after.starts_with('[')) {
                return Err(invalid("empty key"));
            }
            rest = after;
            while let Some(inner) = rest.strip_prefix('[') {
                let (segment, after) = parse_bracket(inner).ok_or_else(|| {
                    invalid("brackets hold an index such as [0] or a quoted key such as [\"a.b\"]")
                })?;
                segments.push(segment);
                rest = after;
            }
            if rest.is_empty() {
                return Ok(Path(segments));
            }
            match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => return Err(invalid("expected '.' or '[' after a ']'")),
            }
            first = false;
        }
    }

    /// The path with one more segment.
    pub fn child(&self, segment: Segment) -> Path {
        let mut segments = self.0.clone();
        segments.push(segment);
        Path(segments)
    }

    /// The first `n` segments.
    pub fn prefix(&self, n: usize) -> Path {
        Path(self.0[..n.min(self.0.len())].to_vec())
    }

    /// Splits off the last segment: the parent path and the last key, if it is a key.
    pub fn split_last_key(&self) -> Option<(Path, &str)> {
        match self.0.split_last() {
            Some((Segment::Key(k), parent)) => Some((Path(parent.to_vec()), k)),
            _ => None,
        }
    }
}

/// `[0]` → index 0; `["a.b"]` or `['a.b']` → key `a.b`. Returns the text after the `]`.
fn parse_bracket(inner: &str) -> Option<(Segment, &str)> {
    if let Some(quote) = inner.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &inner[1..];
        let close = body.find(quote)?;
        let after = body[close + 1..].strip_prefix(']')?;
        return Some((Segment::Key(body[..close].to_string()), after));
    }
    let close = inner.find(']')?;
    let digits = &inner[..close];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Segment::Index(digits.parse().ok()?), &inner[close + 1..]))
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) if k.is_empty() || k.contains(['.', '[', ']']) => {
                    let quote = if k.contains('"') { '\'' } else { '"' };
                    write!(f, "[{quote}{k}{quote}]")?;
                }
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// The result of looking a path up in one document.
pub(crate) enum Lookup<'n> {
    Found(&'n Node),
    /// A key on the way appears twice; the path up to it.
    Duplicate(Path),
    /// `matched` segments resolved; `detail` says which prefix is missing and why.
    Missing {
        matched: usize,
        detail: String,
    },
}

/// Looks `path` up from `root`.
pub(crate) fn lookup<'n>(root: &'n Node, text: &str, path: &Path) -> Lookup<'n> {
    let mut node = root;
    for (i, segment) in path.0.iter().enumerate() {
        let here = || match i {
            0 => "the document".to_string(),
            _ => path.prefix(i).to_string(),
        };
        let missing = |why: String| Lookup::Missing {
            matched: i,
            detail: format!("{:?} does not exist: {why}", path.prefix(i + 1).to_string()),
        };
        if let Kind::Alias = node.kind {
            return Lookup::Missing {
                matched: i,
                detail: format!(
                    "{} is {}, and ferry does not follow aliases",
                    here(),
                    node.describe(text)
                ),
            };
        }
        node = match (segment, &node.kind) {
            (Segment::Key(key), Kind::Map { .. }) if node.is_duplicated(key) => {
                return Lookup::Duplicate(path.prefix(i + 1))
            }
            (Segment::Key(key), Kind::Map { .. }) => match node.get(key) {
                Some((_, value)) => value,
                None => return missing(format!("{} has no key {key:?}", here())),
            },
            (Segment::Index(n), Kind::Seq { items, .. }) => match items.get(*n) {
                Some(item) => item,
                None => return missing(format!("{} has {} items", here(), items.len())),
            },
            (Segment::Key(_), _) => {
                return missing(format!(
                    "{} is {}, not a mapping",
                    here(),
                    node.describe(text)
                ))
            }
            (Segment::Index(_), _) => {
                return missing(format!(
                    "{} is {}, not a sequence",
                    here(),
                    node.describe(text)
                ))
            }
        };
    }
    Lookup::Found(node)
}

/// Looks `path` up in each document in turn: the first document where it exists wins. When none
/// has it, the error reports the document that came closest.
pub(crate) fn find<'n>(
    docs: &'n [Node],
    text: &str,
    path: &Path,
) -> Result<(usize, &'n Node), EditError> {
    let mut best: Option<(usize, String)> = None;
    for (i, root) in docs.iter().enumerate() {
        match lookup(root, text, path) {
            Lookup::Found(node) => return Ok((i, node)),
            Lookup::Duplicate(at) => {
                return Err(EditError::DuplicateKey {
                    path: at.to_string(),
                })
            }
            Lookup::Missing { matched, detail } => {
                if best.as_ref().is_none_or(|(m, _)| matched > *m) {
                    best = Some((matched, detail));
                }
            }
        }
    }
    Err(EditError::PathNotFound {
        path: path.to_string(),
        detail: best.map_or_else(|| "the file holds no YAML document".to_string(), |(_, d)| d),
    })
}

/// Looks `path` up in one document, which must have it.
pub(crate) fn require<'n>(root: &'n Node, text: &str, path: &Path) -> Result<&'n Node, EditError> {
    match lookup(root, text, path) {
        Lookup::Found(node) => Ok(node),
        Lookup::Duplicate(at) => Err(EditError::DuplicateKey {
            path: at.to_string(),
        }),
        Lookup::Missing { detail, .. } => Err(EditError::PathNotFound {
            path: path.to_string(),
            detail,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse;
    use super::*;

    fn keys(path: &str) -> Vec<Segment> {
        Path::parse(path).unwrap().0
    }

    #[test]
    fn parses_keys_indexes_and_quoted_keys() {
        use Segment::{Index, Key};
        assert_eq!(
            keys("spec.containers[0].image"),
            [
                Key("spec".into()),
                Key("containers".into()),
                Index(0),
                Key("image".into())
            ]
        );
        assert_eq!(keys("[1].a"), [Index(1), Key("a".into())]);
        assert_eq!(
            keys("metadata.labels[\"app.kubernetes.io/name\"]"),
            [
                Key("metadata".into()),
                Key("labels".into()),
                Key("app.kubernetes.io/name".into())
            ]
        );
        assert_eq!(keys("a[0][1]"), [Key("a".into()), Index(0), Index(1)]);
    }

    #[test]
    fn display_round_trips() {
        for p in [
            "spec.containers[0].image",
            "a[0][1]",
            "metadata.labels[\"a.b\"].x",
            "[2]",
        ] {
            assert_eq!(Path::parse(p).unwrap().to_string(), p);
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        for p in [
            "",
            "a..b",
            "a.",
            ".a",
            "a[x]",
            "a[0",
            "a[0]b",
            "a]",
            "a.[0]",
            "a[-1]",
            "a[99999999999999999999999]",
        ] {
            assert!(
                matches!(Path::parse(p), Err(EditError::InvalidPath { .. })),
                "{p:?}"
            );
        }
    }

    #[test]
    fn missing_path_names_the_first_missing_prefix() {
        let text = "spec:\n  containers: []\n";
        let docs = parse(text).unwrap();
        let err = find(
            &docs,
            text,
            &Path::parse("spec.containers[0].image").unwrap(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"spec.containers[0]\" does not exist: spec.containers has 0 items"),
            "{msg}"
        );
    }

    #[test]
    fn first_document_with_the_path_wins() {
        let text = "a: {b: 1}\n---\na: {c: 2}\n---\na: {c: 3}\n";
        let docs = parse(text).unwrap();
        let (doc, node) = find(&docs, text, &Path::parse("a.c").unwrap()).unwrap();
        assert_eq!((doc, &text[node.start..node.end]), (1, "2"));
    }

    #[test]
    fn aliases_are_not_followed() {
        let text = "base: &b {image: x}\nuse: *b\n";
        let docs = parse(text).unwrap();
        let err = find(&docs, text, &Path::parse("use.image").unwrap()).unwrap_err();
        assert!(err.to_string().contains("alias (*b)"), "{err}");
    }
}
