//! Pipelines: validating and normalising a spec (the rules table of docs/rings.md), and
//! applying it as a new generation only when it changed.

use std::collections::BTreeMap;

use ferry_proto::reference::ImageName;
use serde::{Deserialize, Serialize};

use super::events::Event;
use super::ring_state::RingPipeline;
use super::rings::{ANTE, POST};
use super::{Service, ServiceError};

/// A gate on entering a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// Every cluster following the previous ring reported the digest applied.
    #[serde(default)]
    pub require_applied: bool,
    /// And at least this long passed since the last of those reports.
    #[serde(default)]
    pub soak_seconds: u64,
    /// The server promotes the ring itself when the gate opens.
    #[serde(default)]
    pub auto_promote: bool,
}

impl Gate {
    /// Whether the gate checks anything before a ring may be entered.
    pub fn guards(&self) -> bool {
        self.require_applied || self.soak_seconds > 0
    }
}

/// A normalised pipeline spec, as stored (JSON) and compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// `metadata.name`.
    pub name: String,
    /// User rings in order, without ante and post.
    pub rings: Vec<String>,
    /// Normalised image names.
    pub images: Vec<String>,
    /// Optional root image (one of `images`); empty when none.
    #[serde(default)]
    pub root: String,
    /// Gates by ring name.
    #[serde(default)]
    pub gates: BTreeMap<String, Gate>,
}

impl PipelineSpec {
    /// ante, the user rings, post.
    pub fn all_rings(&self) -> Vec<&str> {
        let mut v = Vec::with_capacity(self.rings.len() + 2);
        v.push(ANTE);
        v.extend(self.rings.iter().map(String::as_str));
        v.push(POST);
        v
    }

    /// The ring before `ring` (ante for the first user ring); None for ante and unknown rings.
    pub fn previous_ring(&self, ring: &str) -> Option<&str> {
        let all = self.all_rings();
        let i = all.iter().position(|r| *r == ring)?;
        (i > 0).then(|| all[i - 1])
    }

    /// The gate of `ring` (none: an open gate).
    pub fn gate(&self, ring: &str) -> Gate {
        self.gates.get(ring).copied().unwrap_or_default()
    }

    /// Whether `image` (normalised) is one of the pipeline's images.
    pub fn lists(&self, image: &str) -> bool {
        self.images.iter().any(|i| i == image)
    }
}

/// Whether `s` is a valid pipeline or ring name: `[a-z0-9][a-z0-9-]*`, at most 63 characters.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

const NAME_RULE: &str = "names match [a-z0-9][a-z0-9-]* and have at most 63 characters";

/// Checks `spec` against the rules of docs/rings.md and normalises its image names. Every
/// problem is reported at once, each naming the field, the value and the rule.
pub fn normalise(spec: PipelineSpec) -> Result<PipelineSpec, ServiceError> {
    let mut errors = Vec::new();
    if !valid_name(&spec.name) {
        errors.push(format!("metadata.name {:?}: {NAME_RULE}", spec.name));
    }
    if spec.rings.is_empty() || spec.rings.len() > 16 {
        errors.push(format!(
            "spec.rings: {} rings; a pipeline has 1 to 16",
            spec.rings.len()
        ));
    }
    for (i, r) in spec.rings.iter().enumerate() {
        if !valid_name(r) {
            errors.push(format!("spec.rings[{i}] {r:?}: {NAME_RULE}"));
        } else if r == ANTE || r == POST {
            errors.push(format!(
                "spec.rings[{i}] {r:?}: ante and post are reserved (ferry adds them around your rings)"
            ));
        } else if spec.rings[..i].contains(r) {
            errors.push(format!("spec.rings[{i}] {r:?}: rings must be distinct"));
        }
    }
    if spec.images.is_empty() || spec.images.len() > 64 {
        errors.push(format!(
            "spec.images: {} images; a pipeline has 1 to 64",
            spec.images.len()
        ));
    }
    let mut images: Vec<String> = Vec::with_capacity(spec.images.len());
    for (i, raw) in spec.images.iter().enumerate() {
        match ImageName::parse(raw) {
            Ok(n) => {
                let n = n.to_string();
                if images.contains(&n) {
                    errors.push(format!(
                        "spec.images[{i}] {raw:?}: images must be distinct (it is {n} again)"
                    ));
                } else {
                    images.push(n);
                }
            }
            Err(e) => errors.push(format!(
                "spec.images[{i}] {raw:?}: an image reference without tag or digest: {e}"
            )),
        }
    }
    let root = if spec.root.is_empty() {
        String::new()
    } else {
        match ImageName::parse(&spec.root).map(|n| n.to_string()) {
            Ok(n) if images.contains(&n) => n,
            _ => {
                errors.push(format!(
                    "spec.root {:?}: the root must be one of spec.images",
                    spec.root
                ));
                String::new()
            }
        }
    };
    for (ring, gate) in &spec.gates {
        if !spec.rings.contains(ring) {
            errors.push(format!(
                "spec.gates.{ring}: gates are keyed by ring names of spec.rings ({})",
                spec.rings.join(", ")
            ));
        } else if gate.require_applied && spec.rings.first() == Some(ring) {
            errors.push(format!(
                "spec.gates.{ring}.requireApplied: refused on the first ring (ante has no clusters to apply it)"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::RingInvalid(format!(
            "pipeline {:?} not applied: {}",
            spec.name,
            errors.join("; ")
        )));
    }
    // Gates that check nothing and promote nothing are dropped, so an equal spec compares equal.
    let gates = spec
        .gates
        .into_iter()
        .filter(|(_, g)| g.guards() || g.auto_promote)
        .collect();
    Ok(PipelineSpec {
        name: spec.name,
        rings: spec.rings,
        images,
        root,
        gates,
    })
}

/// What applying a pipeline did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The spec as stored.
    pub spec: PipelineSpec,
    /// Its generation (unchanged when the spec did not change).
    pub generation: u64,
    /// Whether a new generation was stored.
    pub changed: bool,
    /// The PIPELINE_APPLIED event; 0 when unchanged.
    pub seq: u64,
}

impl Service {
    /// Stores `spec` (already normalised) as a new generation when it differs from the current
    /// one. The caller checked that `actor` may apply it. Blocking (SQLite).
    pub fn apply_pipeline(
        &self,
        spec: PipelineSpec,
        source: &str,
        actor: &str,
    ) -> Result<Applied, ServiceError> {
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        if let Some(p) = self.rings_read().pipelines.get(&spec.name) {
            if p.spec == spec {
                return Ok(Applied {
                    spec,
                    generation: p.generation,
                    changed: false,
                    seq: 0,
                });
            }
        }
        let json = serde_json::to_string(&spec).expect("a spec serialises");
        let (generation, stored) = self
            .store
            .apply_pipeline(&spec.name, &json, source, actor)?;
        let event = Event::from(stored);
        let seq = event.seq;
        self.rings_write().pipelines.insert(
            spec.name.clone(),
            RingPipeline {
                spec: spec.clone(),
                generation,
                updated_at_ms: event.published_at_ms,
            },
        );
        self.broadcast(&[event]);
        tracing::info!(pipeline = %spec.name, generation, seq, "pipeline applied");
        Ok(Applied {
            spec,
            generation,
            changed: true,
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rings: &[&str], images: &[&str]) -> PipelineSpec {
        PipelineSpec {
            name: "shop".into(),
            rings: rings.iter().map(|s| s.to_string()).collect(),
            images: images.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn images_are_normalised_and_empty_gates_dropped() {
        let mut s = spec(&["dev", "prod"], &["nginx", "ghcr.io/a/b"]);
        s.root = "nginx".into();
        s.gates.insert("dev".into(), Gate::default());
        let n = normalise(s).unwrap();
        assert_eq!(n.images, ["docker.io/library/nginx", "ghcr.io/a/b"]);
        assert_eq!(n.root, "docker.io/library/nginx");
        assert!(n.gates.is_empty());
        assert_eq!(n.all_rings(), ["ante", "dev", "prod", "post"]);
        assert_eq!(n.previous_ring("dev"), Some("ante"));
        assert_eq!(n.previous_ring("post"), Some("prod"));
        assert_eq!(n.previous_ring("ante"), None);
    }

    #[test]
    fn every_rule_is_reported_with_the_value() {
        let mut s = spec(&["Dev", "ante", "b", "b"], &["x", "x", "a:1"]);
        s.name = "-shop".into();
        s.root = "other".into();
        s.gates.insert("nope".into(), Gate::default());
        s.gates.insert(
            "Dev".into(),
            Gate {
                require_applied: true,
                ..Default::default()
            },
        );
        let err = normalise(s).unwrap_err().to_string();
        for want in [
            "metadata.name \"-shop\"",
            "spec.rings[0] \"Dev\"",
            "spec.rings[1] \"ante\": ante and post are reserved",
            "spec.rings[3] \"b\": rings must be distinct",
            "spec.images[1] \"x\": images must be distinct",
            "spec.images[2] \"a:1\"",
            "spec.root \"other\"",
            "spec.gates.nope",
            "spec.gates.Dev.requireApplied",
        ] {
            assert!(err.contains(want), "{want:?} missing from {err}");
        }
        assert!(normalise(spec(&[], &["x"])).is_err());
        assert!(normalise(spec(&["a"], &[])).is_err());
    }
}
