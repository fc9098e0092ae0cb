//! YAML → raw structs, with errors that carry the field path and the line and column: shared by
//! the agent's config files and `ferry pipeline apply`, so both point at `file:12:5` alike.
//!
//! `serde-saphyr` knows where in the text an error happened; `serde_path_to_error` knows which
//! field the deserializer was in. Together they give `file:12:5: spec.targets[1].fromat: unknown
//! field ...`. Rule checks after deserializing take positions from `serde_saphyr::Spanned`
//! values ([`Pos::of`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;

pub use serde_saphyr::Spanned;

/// A position in a YAML file, 1-based, as the parser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, counting from 1.
    pub line: u64,
    /// Column, counting from 1.
    pub column: u64,
}

impl Pos {
    /// `None` for the parser's "unknown location" (line 0).
    pub fn from_saphyr(loc: serde_saphyr::Location) -> Option<Pos> {
        (loc.line() > 0).then(|| Pos {
            line: loc.line(),
            column: loc.column(),
        })
    }

    /// Where a `Spanned` value was written (the alias site for `*alias` values).
    pub fn of<T>(spanned: &serde_saphyr::Spanned<T>) -> Option<Pos> {
        Pos::from_saphyr(spanned.referenced)
    }
}

/// What went wrong, where: `file:line:col: field.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as named to the parser (a path as given on the command line, or the
    /// repo-relative path of an ImageWatcher file).
    pub file: String,
    /// The YAML field path, `spec.imageProviders[1].type`; empty for the whole document.
    pub field: String,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// The rule that was broken, with the offending value.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Deserializes the single YAML document in `text`.
pub fn from_yaml<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, Diagnostic> {
    run(text, file, PhantomData::<T>)
}

/// Deserializes only element `index` of the sequence found under the mapping keys `keys`
/// (`["spec", "targets"]`), skipping everything else, so one bad element does not hide the
/// others. The rest of the document is expected to have been checked already. `Ok(None)` when
/// there is no such element.
///
/// Each call parses the whole text: reading every element this way costs the square of the
/// sequence's length. Try [`sequence_from_yaml`] first and come here for the elements of a
/// sequence that did not deserialize as a whole.
pub fn element_from_yaml<T: DeserializeOwned>(
    text: &str,
    file: &str,
    keys: &[&str],
    index: usize,
) -> Result<Option<T>, Diagnostic> {
    let leaf = ElementAt::<T> {
        index,
        element: PhantomData,
    };
    run(text, file, Under { keys, leaf }).map(Option::flatten)
}

/// Deserializes the whole sequence found under the mapping keys `keys` in one pass, skipping
/// everything else. `Ok(None)` when there is no such sequence. The first bad element fails the
/// whole call; [`element_from_yaml`] then reads the elements one by one.
pub fn sequence_from_yaml<T: DeserializeOwned>(
    text: &str,
    file: &str,
    keys: &[&str],
) -> Result<Option<Vec<T>>, Diagnostic> {
    let leaf = PhantomData::<Vec<T>>;
    run(text, file, Under { keys, leaf })
}

fn run<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    file: &str,
    seed: S,
) -> Result<S::Value, Diagnostic> {
    let mut track = serde_path_to_error::Track::new();
    let options = serde_saphyr::options! { with_snippet: false };
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    result.map_err(|err| {
        let pos = err.location().and_then(Pos::from_saphyr);
        let mut message = err.to_string();
        // The plain rendering ends with " at line L, column C"; the diagnostic prints the
        // position in front instead.
        if let Some(p) = pos {
            let suffix = format!(" at line {}, column {}", p.line, p.column);
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // The library's hint is for programmers, not for whoever edits the file.
        if let Some(cut) = message.find(", set DuplicateKeyPolicy") {
            message.truncate(cut);
        }
        // A mapping that takes no keys (`kustomize: {}`) gets a list of none from the library.
        if let Some(head) = message.strip_suffix(", expected one of ") {
            message = format!("{head}: this mapping takes no keys (write {{}})");
        }
        if message.contains("unexpected end of input") && text.trim().is_empty() {
            message = "the file is empty".to_string();
        }
        Diagnostic {
            file: file.to_string(),
            field: field_path(&track.path()),
            pos,
            message,
        }
    })
}

/// The path as the user wrote it: `serde_path_to_error` also records `Spanned`'s own `value`
/// field (no config field is called `value`) and `?` where it lost track (a duplicate key).
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } if key != "value" => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => {}
        }
    }
    out
}

/// Walks down `keys` through mappings, then reads the value there with the seed `leaf`.
struct Under<'k, S> {
    keys: &'k [&'k str],
    leaf: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Under<'_, S> {
    type Value = Option<S::Value>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.keys.is_empty() {
            self.leaf.deserialize(d).map(Some)
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Under<'_, S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping with `{}`", self.keys[0])
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (key_wanted, rest) = (self.keys[0], &self.keys[1..]);
        let mut leaf = Some(self.leaf);
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            match leaf.take() {
                Some(seed) if key == key_wanted => {
                    found = map.next_value_seed(Under {
                        keys: rest,
                        leaf: seed,
                    })?;
                }
                unused => {
                    leaf = unused;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Picks element `index` of a sequence, skipping the others.
struct ElementAt<T> {
    index: usize,
    element: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ElementAt<T> {
    type Value = Option<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ElementAt<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        let mut i = 0;
        loop {
            if i == self.index {
                match seq.next_element::<T>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_saphyr::Spanned;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: Spanned<String>,
        port: Option<u16>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        items: Vec<Item>,
    }

    const DOC: &str = "items:\n  - name: a\n  - name: b\n    prot: 1\n  - name: c\n    port: 80\n";

    #[test]
    fn shape_errors_carry_field_path_and_position() {
        let err = from_yaml::<Doc>(DOC, "x.yaml").unwrap_err();
        let d = &err;
        assert_eq!(d.field, "items[1].prot");
        assert_eq!(d.pos, Some(Pos { line: 4, column: 5 }));
        assert!(d.message.contains("unknown field `prot`"), "{}", d.message);
        assert!(
            err.to_string()
                .starts_with("x.yaml:4:5: items[1].prot: unknown field `prot`"),
            "{err}"
        );
    }

    #[test]
    fn one_element_is_read_alone() {
        let c: Item = element_from_yaml(DOC, "x.yaml", &["items"], 2)
            .unwrap()
            .unwrap();
        assert_eq!(c.name.value, "c");
        assert_eq!(c.port, Some(80));
        assert_eq!(
            Pos::of(&c.name),
            Some(Pos {
                line: 5,
                column: 11
            })
        );
        let err = element_from_yaml::<Item>(DOC, "x.yaml", &["items"], 1).unwrap_err();
        assert_eq!(err.field, "items[1].prot");
        assert!(element_from_yaml::<Item>(DOC, "x.yaml", &["items"], 3)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_whole_sequence_is_read_in_one_pass() {
        let good = "kind: x\nitems:\n  - name: a\n  - name: b\n    port: 80\nother: [1]\n";
        let items: Vec<Item> = sequence_from_yaml(good, "x.yaml", &["items"])
            .unwrap()
            .unwrap();
        let names: Vec<&str> = items.iter().map(|i| i.name.value.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            Pos::of(&items[1].name),
            Some(Pos {
                line: 4,
                column: 11
            })
        );
        // One bad element fails the pass, with its own path; the caller then reads each alone.
        let err = sequence_from_yaml::<Item>(DOC, "x.yaml", &["items"]).unwrap_err();
        assert_eq!(err.field, "items[1].prot");
        assert!(
            sequence_from_yaml::<Item>("other: 1\n", "x.yaml", &["items"])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn spanned_inner_value_is_not_in_the_path() {
        let err = from_yaml::<Doc>("items:\n  - name: [x]\n", "x.yaml").unwrap_err();
        assert_eq!(err.field, "items[0].name");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = from_yaml::<Doc>("items: []\nitems: []\n", "x.yaml").unwrap_err();
        assert_eq!(err.to_string(), "x.yaml:2:1: duplicate mapping key: items");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Flag {
        on: Option<Empty>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}

    // Regression: a key under a mapping that takes none read "expected one of " and stopped.
    #[test]
    fn a_key_under_an_empty_mapping_says_it_takes_none() {
        let err = from_yaml::<Flag>("on: {name: x}\n", "x.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown field `name`"), "{text}");
        assert!(
            text.ends_with("this mapping takes no keys (write {})"),
            "{text}"
        );
    }

    #[test]
    fn empty_file_says_so() {
        let err = from_yaml::<Doc>("\n", "x.yaml").unwrap_err();
        assert!(err.to_string().contains("x.yaml"), "{err}");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
