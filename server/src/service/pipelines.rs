//! Pipelines: validating and normalising a spec (the rules table of docs/rings.md, kept once in
//! `ferry_proto::pipeline`), and applying it as a new generation only when it changed.

use std::collections::BTreeMap;

use ferry_proto::pb;
use ferry_proto::pipeline::validate;
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

    /// The image whose gate a status shows: the root, or the first image without one.
    pub fn gate_image(&self) -> &str {
        if self.root.is_empty() {
            self.images.first().map_or("", String::as_str)
        } else {
            &self.root
        }
    }

    /// Whether `image` (normalised) is one of the pipeline's images.
    pub fn lists(&self, image: &str) -> bool {
        self.images.iter().any(|i| i == image)
    }
}

/// Checks `spec` against the rules of docs/rings.md — `ferry_proto::pipeline::validate`, the
/// same rules and words `ferry pipeline apply` checks before sending — and normalises its image
/// names. The first broken rule is reported, naming the field, the value and the rule.
pub fn normalise(spec: PipelineSpec) -> Result<PipelineSpec, ServiceError> {
    let wire = pb::PipelineSpec {
        name: spec.name.clone(),
        rings: spec.rings,
        images: spec.images,
        root: spec.root,
        gates: spec
            .gates
            .iter()
            .map(|(ring, g)| {
                let gate = pb::Gate {
                    require_applied: g.require_applied,
                    soak_seconds: g.soak_seconds,
                    auto_promote: g.auto_promote,
                };
                (ring.clone(), gate)
            })
            .collect(),
    };
    let valid = validate(&wire).map_err(|e| {
        ServiceError::RingInvalid(format!("pipeline {:?} not applied: {e}", spec.name))
    })?;
    // Gates that check nothing and promote nothing are dropped, so an equal spec compares equal.
    let gates = spec
        .gates
        .into_iter()
        .filter(|(_, g)| g.guards() || g.auto_promote)
        .collect();
    Ok(PipelineSpec {
        name: valid.name,
        rings: valid.rings,
        images: valid.images,
        root: valid.root,
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

    /// The rules live in ferry_proto::pipeline (tested there); here: that the server applies
    /// them, in their words, as an invalid ring request that names the pipeline.
    #[test]
    fn each_broken_rule_is_refused_with_the_shared_words() {
        let gated = |ring: &str| {
            let mut s = spec(&["dev", "prod"], &["x"]);
            s.gates.insert(
                ring.into(),
                Gate {
                    require_applied: true,
                    ..Default::default()
                },
            );
            s
        };
        let named = |name: &str| {
            let mut s = spec(&["dev"], &["x"]);
            s.name = name.into();
            s
        };
        let rooted = |root: &str| {
            let mut s = spec(&["dev"], &["x"]);
            s.root = root.into();
            s
        };
        let cases = [
            (named("-shop"), "metadata.name: invalid name \"-shop\""),
            (spec(&[], &["x"]), "spec.rings: 0 rings"),
            (
                spec(&["Dev"], &["x"]),
                "spec.rings[0]: invalid name \"Dev\"",
            ),
            (
                spec(&["a", "ante"], &["x"]),
                "spec.rings[1]: \"ante\" is reserved",
            ),
            (
                spec(&["b", "b"], &["x"]),
                "spec.rings[1]: ring \"b\" is listed twice",
            ),
            (spec(&["a"], &[]), "spec.images: 0 images"),
            (
                spec(&["a"], &["x", "x"]),
                "spec.images[1]: image \"x\" is spec.images[0] again",
            ),
            (spec(&["a"], &["a:1"]), "spec.images[0]:"),
            (rooted("other"), "spec.root: root \"other\""),
            (gated("nope"), "spec.gates.nope: \"nope\" is not a ring"),
            (gated("dev"), "spec.gates.dev.requireApplied:"),
        ];
        for (s, want) in cases {
            let name = s.name.clone();
            let err = normalise(s).unwrap_err();
            assert!(matches!(err, ServiceError::RingInvalid(_)), "{err:?}");
            let err = err.to_string();
            assert!(
                err.contains(&format!("pipeline {name:?} not applied: {want}")),
                "{want:?} missing from {err}"
            );
        }
        assert!(normalise(gated("prod")).is_ok());
    }
}
