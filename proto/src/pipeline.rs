//! The rules of a pipeline spec (docs/rings.md, "The pipeline file"): names, rings, images, the
//! root and gates, and `soak` durations.
//!
//! Shared so that `ferry pipeline apply` refuses a file with the same words the server would,
//! before sending it, and can point at `file:line:col`; the server re-validates what it is sent.
//! Every error names its field as written in the file (`spec.rings[2]`, `spec.gates.users.soak`).

use std::collections::HashSet;

use thiserror::Error;

use crate::names::Shown;
use crate::pb;
use crate::reference::ImageName;

/// The pseudo ring before the first: where a new build waits.
pub const ANTE: &str = "ante";
/// The pseudo ring after the last: what `ferry shift` moved off the last ring.
pub const POST: &str = "post";
/// The longest pipeline or ring name.
pub const MAX_NAME_LEN: usize = 63;
/// The most rings a pipeline has (without ante and post).
pub const MAX_RINGS: usize = 16;
/// The most images a pipeline lists.
pub const MAX_IMAGES: usize = 64;

/// A spec that breaks a rule: the field as written in the file, and the rule with the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// `metadata.name`, `spec.rings[1]`, `spec.images`, `spec.gates.users.requireApplied`.
    pub field: String,
    /// What is wrong, with the offending value, and what to write instead.
    pub message: String,
}

fn fail(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a pipeline or ring name against `[a-z0-9][a-z0-9-]*`, at most [`MAX_NAME_LEN`]
/// characters; `Err` is the message (with the value).
pub fn validate_name(name: &str) -> Result<(), String> {
    let rule = "names match [a-z0-9][a-z0-9-]*, at most 63 characters";
    let ok_first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() {
        return Err(format!("the name is empty: {rule}"));
    }
    if !ok_first || !ok_rest || name.len() > MAX_NAME_LEN {
        return Err(format!("invalid name {}: {rule}", Shown(name)));
    }
    Ok(())
}

/// Parses a duration written `90s`, `10m`, `1h30m` or `2h15m10s` (hours, minutes, seconds, each at
/// most once and in that order) into seconds; `Err` is the message.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let rule = "a duration is hours, minutes and seconds in that order, each a number and a unit: 90s, 10m, 1h30m";
    let bad = || format!("invalid duration {}: {rule}", Shown(text));
    if text.is_empty() {
        return Err(format!("the duration is empty: {rule}"));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    // Units must come in this order, each once: the index of the next allowed unit.
    let units = [('h', 3600u64), ('m', 60), ('s', 1)];
    let mut next_unit = 0;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let n = number.take().ok_or_else(bad)?;
        let at = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == c)
            .ok_or_else(bad)?;
        let (_, scale) = units[next_unit + at];
        next_unit += at + 1;
        total = n
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if number.is_some() {
        return Err(format!(
            "invalid duration {}: a number needs a unit (s, m or h): {rule}",
            Shown(text)
        ));
    }
    Ok(total)
}

/// Checks `spec` against every rule and returns it normalised: images written as pulls
/// normalise them (`nginx` → `docker.io/library/nginx`), the root likewise. Errors come in file
/// order: name, rings, images, root, gates (by ring order).
pub fn validate(spec: &pb::PipelineSpec) -> Result<pb::PipelineSpec, SpecError> {
    validate_name(&spec.name).map_err(|m| fail("metadata.name", m))?;
    if spec.rings.is_empty() || spec.rings.len() > MAX_RINGS {
        return Err(fail(
            "spec.rings",
            format!(
                "{} rings: a pipeline has 1 to {MAX_RINGS} rings",
                spec.rings.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, ring) in spec.rings.iter().enumerate() {
        let field = format!("spec.rings[{i}]");
        validate_name(ring).map_err(|m| fail(&field, m))?;
        if ring == ANTE || ring == POST {
            return Err(fail(
                field,
                format!("{ring:?} is reserved: ferry adds the rings ante (before the first) and post (after the last) itself; name yours otherwise"),
            ));
        }
        if !seen.insert(ring.as_str()) {
            return Err(fail(
                field,
                format!("ring {ring:?} is listed twice: rings are distinct"),
            ));
        }
    }
    if spec.images.is_empty() || spec.images.len() > MAX_IMAGES {
        return Err(fail(
            "spec.images",
            format!(
                "{} images: a pipeline lists 1 to {MAX_IMAGES} images",
                spec.images.len()
            ),
        ));
    }
    let mut images = Vec::with_capacity(spec.images.len());
    for (i, raw) in spec.images.iter().enumerate() {
        let field = format!("spec.images[{i}]");
        let name = ImageName::parse(raw)
            .map_err(|e| fail(&field, e.to_string()))?
            .to_string();
        if let Some(first) = images.iter().position(|n| n == &name) {
            return Err(fail(
                field,
                format!(
                    "image {} is spec.images[{first}] again ({name}): images are distinct",
                    Shown(raw)
                ),
            ));
        }
        images.push(name);
    }
    let root = if spec.root.is_empty() {
        String::new()
    } else {
        let name = ImageName::parse(&spec.root)
            .map_err(|e| fail("spec.root", e.to_string()))?
            .to_string();
        if !images.contains(&name) {
            return Err(fail(
                "spec.root",
                format!(
                    "root {} ({name}) is not one of spec.images: the root is a listed image",
                    Shown(&spec.root)
                ),
            ));
        }
        name
    };
    let mut keys: Vec<&String> = spec.gates.keys().collect();
    // Gates come as a map: check them in ring order (unknown names last, sorted) so that the
    // first error is the same every time.
    keys.sort_by_key(|k| (spec.rings.iter().position(|r| r == *k), (*k).clone()));
    for key in keys {
        let field = format!("spec.gates.{key}");
        let Some(at) = spec.rings.iter().position(|r| r == key) else {
            return Err(fail(
                field,
                format!(
                    "{} is not a ring of spec.rings ({}): gates are keyed by ring name",
                    Shown(key),
                    spec.rings.join(", ")
                ),
            ));
        };
        if at == 0 && spec.gates[key].require_applied {
            return Err(fail(
                format!("{field}.requireApplied"),
                format!("{key:?} is the first ring: requireApplied would wait for clusters of ante, which has none; remove it or gate a later ring"),
            ));
        }
    }
    Ok(pb::PipelineSpec {
        name: spec.name.clone(),
        rings: spec.rings.clone(),
        images,
        root,
        gates: spec.gates.clone(),
    })
}

/// Every ring of a pipeline in order: ante, the user rings, post.
pub fn all_rings(rings: &[String]) -> Vec<&str> {
    std::iter::once(ANTE)
        .chain(rings.iter().map(String::as_str))
        .chain(std::iter::once(POST))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> pb::PipelineSpec {
        pb::PipelineSpec {
            name: "shop".into(),
            rings: vec!["developers".into(), "testers".into(), "users".into()],
            images: vec!["nginx".into(), "registry.example.com/shop/api".into()],
            root: "registry.example.com/shop/api".into(),
            gates: [(
                "users".to_string(),
                pb::Gate {
                    require_applied: true,
                    soak_seconds: 600,
                    auto_promote: false,
                },
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn a_good_spec_is_normalised() {
        let got = validate(&spec()).unwrap();
        assert_eq!(
            got.images,
            ["docker.io/library/nginx", "registry.example.com/shop/api"]
        );
        assert_eq!(got.root, "registry.example.com/shop/api");
    }

    #[test]
    fn each_rule_names_the_field_and_value() {
        type Edit = fn(&mut pb::PipelineSpec);
        let cases: &[(Edit, &str, &str)] = &[
            (|s| s.name = "Shop".into(), "metadata.name", "\"Shop\""),
            (|s| s.name = "a".repeat(64), "metadata.name", "at most 63"),
            (
                |s| s.name = "-x".into(),
                "metadata.name",
                "[a-z0-9][a-z0-9-]*",
            ),
            (|s| s.rings.clear(), "spec.rings", "1 to 16"),
            (
                |s| s.rings = (0..17).map(|i| format!("r{i}")).collect(),
                "spec.rings",
                "17 rings",
            ),
            (|s| s.rings[1] = "ante".into(), "spec.rings[1]", "reserved"),
            (|s| s.rings[2] = "post".into(), "spec.rings[2]", "reserved"),
            (|s| s.rings[2] = "testers".into(), "spec.rings[2]", "twice"),
            (|s| s.rings[0] = "Dev".into(), "spec.rings[0]", "\"Dev\""),
            (|s| s.images.clear(), "spec.images", "1 to 64"),
            (
                |s| s.images = (0..65).map(|i| format!("x/i{i}")).collect(),
                "spec.images",
                "65 images",
            ),
            (
                |s| s.images[1] = "nginx:1.2".into(),
                "spec.images[1]",
                "tag or digest",
            ),
            (
                |s| s.images[1] = "docker.io/library/nginx".into(),
                "spec.images[1]",
                "spec.images[0] again",
            ),
            (
                |s| s.root = "other/img".into(),
                "spec.root",
                "not one of spec.images",
            ),
            (
                |s| {
                    s.gates.insert("userz".into(), pb::Gate::default());
                },
                "spec.gates.userz",
                "developers, testers, users",
            ),
            (
                |s| {
                    s.gates.insert(
                        "developers".into(),
                        pb::Gate {
                            require_applied: true,
                            ..Default::default()
                        },
                    );
                },
                "spec.gates.developers.requireApplied",
                "first ring",
            ),
        ];
        for (edit, field, needle) in cases {
            let mut s = spec();
            edit(&mut s);
            let err = validate(&s).unwrap_err();
            assert_eq!(&err.field, field, "{err}");
            assert!(err.message.contains(needle), "{err} lacks {needle:?}");
        }
    }

    #[test]
    fn autopromote_on_the_first_ring_is_fine() {
        let mut s = spec();
        s.gates.insert(
            "developers".into(),
            pb::Gate {
                auto_promote: true,
                soak_seconds: 60,
                ..Default::default()
            },
        );
        validate(&s).unwrap();
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("1h30m", 5400),
            ("2h15m10s", 8110),
            ("1h", 3600),
            ("0s", 0),
            ("1m30s", 90),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for text in [
            "",
            "90",
            "10x",
            "m",
            "1m1h",
            "1h1h",
            "1.5h",
            "-1s",
            "1 m",
            "99999999999999999999s",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("90s, 10m, 1h30m"), "{text}: {err}");
        }
        assert!(parse_duration("90").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn rings_in_order() {
        assert_eq!(
            all_rings(&["a".into(), "b".into()]),
            ["ante", "a", "b", "post"]
        );
    }
}
