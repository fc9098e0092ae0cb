//! Pipeline files (`apiVersion: ferry.dev/v1`, `kind: Pipeline`): YAML → [`pb::PipelineSpec`],
//! every refusal naming `FILE:LINE:COL`, the field, the value and the rule.
//!
//! The shape (unknown fields, types) is serde's, with positions from [`ferry_proto::yaml`]; the
//! rules are [`ferry_proto::pipeline::validate`]'s (the server applies the same ones again), and
//! the field each rule names is mapped back to where the file wrote it.

use std::fmt;

use ferry_proto::pb;
use ferry_proto::pipeline;
use ferry_proto::yaml::{from_yaml, Diagnostic, Pos, Spanned};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The only apiVersion a pipeline file has.
pub const API_VERSION: &str = "ferry.dev/v1";
/// The kind of a pipeline file.
pub const KIND: &str = "Pipeline";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: Spanned<RawMetadata>,
    spec: Spanned<RawSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    rings: Spanned<Vec<Spanned<String>>>,
    images: Spanned<Vec<Spanned<String>>>,
    root: Option<Spanned<String>>,
    #[serde(default)]
    gates: Gates,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGate {
    require_applied: Option<Spanned<Flag>>,
    soak: Option<Spanned<String>>,
    auto_promote: Option<Spanned<Flag>>,
}

/// A boolean whose refusal names the value (`autoPromote: maybe` → `expected true or false,
/// got "maybe"`), where the YAML library says only "invalid boolean".
#[derive(Debug, Clone, Copy)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Flag, E> {
                Ok(Flag(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Flag, E> {
                Err(E::custom(format!(
                    "expected true or false, got {}",
                    ferry_proto::names::Shown(s)
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// `gates:` in file order. Keys are plain strings so that a shape error inside a gate keeps the
/// ring in its field path (`spec.gates.users.sok`); a key's position is its gate's.
#[derive(Default)]
struct Gates(Vec<(String, Spanned<RawGate>)>);

impl<'de> Deserialize<'de> for Gates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Gates, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Gates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from ring name to gate")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Gates, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(Gates(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A parsed pipeline file: the spec as the CLI sends it, and the text (stored with the
/// generation).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineFile {
    /// The spec, checked against every rule (images normalised).
    pub spec: pb::PipelineSpec,
    /// The file as written.
    pub source: String,
}

/// Parses and checks a pipeline file; `file` is the name used in messages.
pub fn parse(text: &str, file: &str) -> Result<PipelineFile, Diagnostic> {
    let raw: RawFile = from_yaml(text, file)?;
    let invalid = |field: &str, pos: Option<Pos>, message: String| Diagnostic {
        file: file.to_string(),
        field: field.to_string(),
        pos,
        message,
    };
    if raw.api_version.value != API_VERSION {
        return Err(invalid(
            "apiVersion",
            Pos::of(&raw.api_version),
            format!(
                "unsupported apiVersion {}: a pipeline file has apiVersion: {API_VERSION}",
                ferry_proto::names::Shown(&raw.api_version.value)
            ),
        ));
    }
    if raw.kind.value != KIND {
        return Err(invalid(
            "kind",
            Pos::of(&raw.kind),
            format!(
                "kind is {}; expected {KIND}",
                ferry_proto::names::Shown(&raw.kind.value)
            ),
        ));
    }
    let spec = &raw.spec.value;
    let mut gates = std::collections::HashMap::new();
    for (key, gate) in &spec.gates.0 {
        let field = format!("spec.gates.{key}");
        let g = &gate.value;
        let soak_seconds = match &g.soak {
            None => 0,
            Some(s) => pipeline::parse_duration(&s.value)
                .map_err(|m| invalid(&format!("{field}.soak"), Pos::of(s), m))?,
        };
        // Two gates for one ring are refused by the YAML reader (duplicate key) already.
        gates.insert(
            key.clone(),
            pb::Gate {
                require_applied: g.require_applied.as_ref().is_some_and(|b| b.value.0),
                soak_seconds,
                auto_promote: g.auto_promote.as_ref().is_some_and(|b| b.value.0),
            },
        );
    }
    let strings = |v: &[Spanned<String>]| v.iter().map(|s| s.value.clone()).collect();
    let wire = pb::PipelineSpec {
        name: raw.metadata.value.name.value.clone(),
        rings: strings(&spec.rings.value),
        images: strings(&spec.images.value),
        root: spec
            .root
            .as_ref()
            .map(|r| r.value.clone())
            .unwrap_or_default(),
        gates,
    };
    let checked = pipeline::validate(&wire)
        .map_err(|e| invalid(&e.field, position_of(&raw, &e.field), e.message))?;
    Ok(PipelineFile {
        spec: checked,
        source: text.to_string(),
    })
}

/// Where the file wrote the field a [`pipeline::SpecError`] names.
fn position_of(raw: &RawFile, field: &str) -> Option<Pos> {
    let spec = &raw.spec.value;
    let index = |prefix: &str| -> Option<usize> {
        field.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    if field == "metadata.name" {
        return Pos::of(&raw.metadata.value.name);
    }
    if field == "spec.rings" {
        return Pos::of(&spec.rings);
    }
    if field == "spec.images" {
        return Pos::of(&spec.images);
    }
    if field == "spec.root" {
        return spec.root.as_ref().and_then(Pos::of);
    }
    if let Some(i) = index("spec.rings[") {
        return spec.rings.value.get(i).and_then(Pos::of);
    }
    if let Some(i) = index("spec.images[") {
        return spec.images.value.get(i).and_then(Pos::of);
    }
    if let Some(rest) = field.strip_prefix("spec.gates.") {
        let (ring, sub) = match rest.split_once('.') {
            Some((r, s)) => (r, Some(s)),
            None => (rest, None),
        };
        let (_, gate) = spec.gates.0.iter().find(|(k, _)| k == ring)?;
        return match sub {
            Some("requireApplied") => gate.value.require_applied.as_ref().and_then(Pos::of),
            Some("soak") => gate.value.soak.as_ref().and_then(Pos::of),
            Some("autoPromote") => gate.value.auto_promote.as_ref().and_then(Pos::of),
            _ => Pos::of(gate),
        };
    }
    Pos::of(&raw.spec)
}

#[cfg(test)]
#[path = "pipeline_file_tests.rs"]
mod tests;
