//! Reading and writing one scalar: where its text sits inside its span, how YAML will read a plain
//! value, and how to write a new value in the style the old one used.
//!
//! Plain values are judged the way the readers of these files do (Kubernetes' YAML 1.1-ish
//! go-yaml, and YAML 1.2 core): a tag such as `1.40` written plain would reach the cluster as the
//! float 1.4, so it is written `"1.40"`. Quoting when unsure is always safe.

use std::fmt;

use saphyr_parser::ScalarStyle;

use super::error::EditError;
use super::path::Path;
use super::tree::{Kind, Node, Scalar};

/// How YAML reads a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    Str,
    Null,
    Bool,
    Number,
    Timestamp,
    /// An explicit tag other than `!!str`.
    Tagged(String),
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reading::Str => f.write_str("a string"),
            Reading::Null => f.write_str("null"),
            Reading::Bool => f.write_str("a boolean"),
            Reading::Number => f.write_str("a number"),
            Reading::Timestamp => f.write_str("a timestamp"),
            Reading::Tagged(t) => write!(f, "a value tagged {t}"),
        }
    }
}

const STR_TAG: &str = "tag:yaml.org,2002:str";

/// How YAML reads `scalar`.
pub(crate) fn reading(scalar: &Scalar) -> Reading {
    match (&scalar.tag, scalar.style) {
        (Some(tag), _) if tag == STR_TAG => Reading::Str,
        (Some(tag), _) => Reading::Tagged(tag.clone()),
        (None, ScalarStyle::Plain) => plain_reading(&scalar.value),
        (None, _) => Reading::Str,
    }
}

/// How YAML reads `s` written as a plain scalar, erring towards "not a string".
pub(crate) fn plain_reading(s: &str) -> Reading {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Reading::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "true" | "True"
        | "TRUE" | "false" | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            return Reading::Bool
        }
        _ => {}
    }
    if is_number(s) {
        Reading::Number
    } else if is_timestamp(s) {
        Reading::Timestamp
    } else {
        Reading::Str
    }
}

/// Integers (decimal with `_`, 0x, 0o, 0b, leading-zero octal, sexagesimal `1:30`), floats
/// (`1.5`, `.5`, `1.`, `1e3`, `1_0.5`) and `.inf` / `.nan`.
fn is_number(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let digits_in = |t: &str, radix: u32| {
        !t.is_empty()
            && t.chars().all(|c| c == '_' || c.is_digit(radix))
            && t.chars().any(|c| c != '_')
    };
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unsigned.strip_prefix(prefix) {
            return digits_in(rest, radix);
        }
    }
    if unsigned.contains(':') {
        // YAML 1.1 base-60 (`1:30`, `1:30.5`): digit groups, a fraction only on the last one.
        let groups: Vec<&str> = unsigned.split(':').collect();
        return groups.split_last().is_some_and(|(last, init)| {
            let whole = last.split_once('.').map_or(*last, |(w, _)| w);
            init.iter().all(|g| digits_in(g, 10)) && digits_in(whole, 10)
        });
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        None => digits_in(mantissa, 10),
        Some((whole, frac)) => {
            let part_ok = |p: &str| p.is_empty() || digits_in(p, 10);
            part_ok(whole) && part_ok(frac) && (digits_in(whole, 10) || digits_in(frac, 10))
        }
    };
    let exponent_ok =
        exponent.is_none_or(|e| digits_in(e.strip_prefix(['+', '-']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}

/// `2024-01-15`, optionally followed by a time: YAML 1.1 reads these as timestamps.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..6)
        && (b.get(6) == Some(&b'-') || (digits(6..7) && b.get(7) == Some(&b'-')))
}

/// Whether `s` can be written plain and read back as the same string, in block and flow context.
fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphanumeric() || first == '_' || first == '/' || first == '.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/@:+".contains(c))
        && !s.ends_with(':')
        && plain_reading(s) == Reading::Str
}

/// Writes `value` as a scalar in `style`, or double-quoted when the style cannot hold it.
pub(crate) fn render(value: &str, style: ScalarStyle) -> String {
    match style {
        ScalarStyle::Plain if plain_safe(value) => value.to_string(),
        ScalarStyle::SingleQuoted if !value.chars().any(char::is_control) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The bytes to replace to give a scalar a new value, and text to put before the new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub start: usize,
    pub end: usize,
    /// `" "` when the value is empty (`tag:`) and the new text goes right after the colon.
    pub lead: &'static str,
}

/// The one-line scalar at `path`, or why it is not one.
pub(crate) fn scalar_at<'n>(
    node: &'n Node,
    text: &str,
    path: &Path,
) -> Result<&'n Scalar, EditError> {
    let wrong = |found: String| EditError::WrongType {
        path: path.to_string(),
        found,
        expected: "a one-line string scalar",
    };
    match &node.kind {
        Kind::Scalar(s) if matches!(s.style, ScalarStyle::Literal | ScalarStyle::Folded) => {
            Err(wrong("a block scalar (| or >)".to_string()))
        }
        Kind::Scalar(s) => Ok(s),
        _ => Err(wrong(node.describe(text))),
    }
}

/// The scalar at `path` where a tag or digest belongs. Numbers and empty values are accepted
/// (`tag: 1.36`, `tag:` are common in values files and read fine as tag text); anything else YAML
/// reads as a non-string is a mistake worth stopping for.
pub(crate) fn tag_slot_at<'n>(
    node: &'n Node,
    text: &str,
    path: &Path,
) -> Result<&'n Scalar, EditError> {
    let scalar = scalar_at(node, text, path)?;
    match reading(scalar) {
        Reading::Str | Reading::Number | Reading::Null => Ok(scalar),
        other => Err(EditError::NotAString {
            path: path.to_string(),
            value: scalar.value.clone(),
            reading: other.to_string(),
        }),
    }
}

/// Where the text of `scalar` (the node `node`) sits: past any `&anchor` or `!tag` in the span.
/// Errors rather than guesses when the span does not look like the scalar the parser reported.
pub(crate) fn slot(
    node: &Node,
    scalar: &Scalar,
    text: &str,
    path: &Path,
) -> Result<Slot, EditError> {
    let unsafe_at = |why: &str| EditError::Unsafe(format!("the value at {path} {why}"));
    if node.start == node.end {
        // An empty value (`tag:`): the parser places it on the `:` that introduced it.
        return match text.as_bytes().get(node.start) {
            Some(b':') if scalar.value.is_empty() => Ok(Slot {
                start: node.start + 1,
                end: node.start + 1,
                lead: " ",
            }),
            _ => Err(unsafe_at(
                "is empty in a layout ferry does not edit; write a placeholder such as \"\"",
            )),
        };
    }
    let start = skip_properties(text, node.start, node.end);
    if start == node.end && scalar.value.is_empty() && scalar.style == ScalarStyle::Plain {
        // `tag: &t` — an anchor on an empty value: the new value goes after it, spaced off.
        return Ok(Slot {
            start,
            end: start,
            lead: " ",
        });
    }
    // saphyr's span for a quoted scalar can run on over trailing spaces and a comment, so the
    // closing quote is found by scanning rather than taken from the span's end.
    let end = match scalar.style {
        ScalarStyle::Plain => Some(node.end),
        ScalarStyle::SingleQuoted => closing_quote(text, start, node.end, b'\''),
        ScalarStyle::DoubleQuoted => closing_quote(text, start, node.end, b'"'),
        ScalarStyle::Literal | ScalarStyle::Folded => None,
    };
    let body = end.and_then(|end| text.get(start..end));
    let located = match (scalar.style, body) {
        (ScalarStyle::Plain, Some(body)) => body == scalar.value,
        (_, body) => body.is_some(),
    };
    match end {
        Some(end) if located => Ok(Slot {
            start,
            end,
            lead: "",
        }),
        _ => Err(unsafe_at(
            "spans several lines or could not be located; write it on one line",
        )),
    }
}

/// The end (just past the closing quote) of the quoted scalar opening at `start`.
fn closing_quote(text: &str, start: usize, limit: usize, quote: u8) -> Option<usize> {
    let b = text.as_bytes().get(..limit)?;
    if b.get(start) != Some(&quote) {
        return None;
    }
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            // `\` escapes the next character in double quotes.
            b'\\' if quote == b'"' => i += 2,
            // `''` is an escaped quote in single quotes.
            c if c == quote && quote == b'\'' && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Skips `&anchor`, `!tag`, whitespace and comments at the start of a node's span. None of these
/// characters can start a scalar's own text, so the skip never eats into the value.
fn skip_properties(text: &str, mut p: usize, end: usize) -> usize {
    let b = text.as_bytes();
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    while p < end {
        match b[p] {
            c if is_space(c) => p += 1,
            b'#' => {
                while p < end && b[p] != b'\n' {
                    p += 1;
                }
            }
            b'&' | b'!' => {
                while p < end && !is_space(b[p]) {
                    p += 1;
                }
            }
            _ => break,
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_bools_nulls_and_dates_are_not_strings() {
        for s in [
            "1", "-1", "1.40", "1.36", ".5", "1.", "1e3", "1E-3", "0x1F", "0o17", "0b101", "0755",
            "1_000", "1:30", ".inf", "-.Inf", ".NaN",
        ] {
            assert_eq!(plain_reading(s), Reading::Number, "{s}");
        }
        for s in ["true", "No", "on", "y"] {
            assert_eq!(plain_reading(s), Reading::Bool, "{s}");
        }
        for s in ["", "~", "null"] {
            assert_eq!(plain_reading(s), Reading::Null, "{s}");
        }
        assert_eq!(plain_reading("2024-01-15"), Reading::Timestamp);
        for s in [
            "1.2.4",
            "v1.40",
            "1.2.3-rc.1",
            "sha256:abc",
            "latest",
            "e3",
            "1e",
            "0x",
            "1:2.3:4",
            "gcr.io/a:1",
            ".",
        ] {
            assert_eq!(plain_reading(s), Reading::Str, "{s}");
        }
    }

    #[test]
    fn render_keeps_the_style_and_quotes_what_would_misread() {
        assert_eq!(render("1.2.4", ScalarStyle::Plain), "1.2.4");
        assert_eq!(render("1.40", ScalarStyle::Plain), "\"1.40\"");
        assert_eq!(render("true", ScalarStyle::Plain), "\"true\"");
        assert_eq!(render("1.40", ScalarStyle::DoubleQuoted), "\"1.40\"");
        assert_eq!(render("1.40", ScalarStyle::SingleQuoted), "'1.40'");
        assert_eq!(render("it's", ScalarStyle::SingleQuoted), "'it''s'");
        assert_eq!(render("a\nb", ScalarStyle::SingleQuoted), "\"a\\nb\"");
        assert_eq!(render("a: b", ScalarStyle::Plain), "\"a: b\"");
        assert_eq!(render("a\"\\", ScalarStyle::DoubleQuoted), "\"a\\\"\\\\\"");
        assert_eq!(
            render("gcr.io/a/b@sha256:00", ScalarStyle::Plain),
            "gcr.io/a/b@sha256:00"
        );
    }

    #[test]
    fn properties_before_the_value_are_skipped() {
        let text = "&a !!str \"x\"";
        assert_eq!(skip_properties(text, 0, text.len()), 9);
        let text = "&a # note\n  x";
        assert_eq!(skip_properties(text, 0, text.len()), 12);
    }

    #[test]
    fn closing_quotes_skip_escapes() {
        let text = r#""a\"b\\" # c"#;
        assert_eq!(closing_quote(text, 0, text.len(), b'"'), Some(8));
        let text = "'it''s'  # c";
        assert_eq!(closing_quote(text, 0, text.len(), b'\''), Some(7));
        assert_eq!(closing_quote("'open", 0, 5, b'\''), None);
    }
}
