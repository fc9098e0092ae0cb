//! Ring moves: planning promote (with its bundle), shift, unshift, rollback and a publish's
//! moves against the in-memory state, then committing each call as one batch.
//!
//! Every verb takes the publish lock, plans, and commits: seq order is commit order, the live
//! fan-out carries the moves in order, and a refused request writes nothing. Plans read only
//! memory; unshift and rollback read the history they undo from the store.
//!
//! - `promote`: one ring, the order rule, gates, bundles of a root image;
//! - `shift`: every ring at once, and unshift;
//! - `rollback`: back to the previous digest, with a hold;
//! - `publish`: a publish's moves into ante (and `--to`);
//! - `auto`: one autoPromote round.
//!
//! This file holds what they share: the `Planner` that sees a call's earlier moves as made,
//! and the checks every verb applies.

use std::collections::BTreeMap;

use ferry_proto::names::validate_digest;
use ferry_proto::reference::ImageName;

use super::catalog::Catalog;
use super::events::Event;
use super::gates::{evaluate, GateQuery};
use super::pipelines::PipelineSpec;
use super::ring_state::{manifest, repository_of, tag_of, RingPipeline, RingState};
use super::{Service, ServiceError};
use crate::store::{now_ms, PublishRecord, RingBatch, RingMoveRecord, StoredHold};

mod auto;
mod promote;
mod publish;
mod rollback;
mod shift;

pub use ferry_proto::pipeline::{ANTE, POST};
/// The label that names a release's version.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";
/// The label that names a release's source revision.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";
/// The prefix of a root image's dependency labels.
const DEPENDENCY_PREFIX: &str = "dependency.";
/// The actor of autoPromote's moves.
pub const SERVER_ACTOR: &str = "ferry-server";

fn invalid(msg: String) -> ServiceError {
    ServiceError::RingInvalid(msg)
}
fn refused(msg: String) -> ServiceError {
    ServiceError::RingRefused(msg)
}
fn unknown(msg: String) -> ServiceError {
    ServiceError::RingUnknown(msg)
}

/// The normalised form of an image name given to a ring verb.
pub fn normalise_image(image: &str) -> Result<String, ServiceError> {
    ImageName::parse(image)
        .map(|n| n.to_string())
        .map_err(|e| invalid(format!("image {image:?}: {e}")))
}

/// A promote, protocol-independent.
#[derive(Debug, Clone, Default)]
pub struct PromoteInput {
    /// Image name.
    pub image: String,
    /// "", ":tag" (or "tag") or "@sha256:…".
    pub reference: String,
    /// Ring to enter.
    pub to_ring: String,
    /// Pipeline, when the image is in several.
    pub pipeline: String,
    /// Skip the order rule and the gate.
    pub force: bool,
    /// Required with force.
    pub reason: String,
    /// The token's name.
    pub actor: String,
}

/// What a manifest is, for the event of a move to it.
#[derive(Debug, Clone, Default)]
struct Facts {
    media_type: String,
    artifact_type: Option<String>,
    subject: Option<String>,
    labels: BTreeMap<String, String>,
}

/// The moves of one call being planned, seen as already made by the checks that follow
/// (a publish's ante move before its promote).
struct Planner<'a> {
    st: &'a RingState,
    catalog: &'a Catalog,
    moves: Vec<RingMoveRecord>,
    /// A publish's own manifest, not in the catalog until it commits.
    fresh: Option<(String, String, Facts)>,
    now: i64,
}

impl<'a> Planner<'a> {
    fn new(st: &'a RingState, catalog: &'a Catalog) -> Self {
        Planner {
            st,
            catalog,
            moves: Vec::new(),
            fresh: None,
            now: now_ms(),
        }
    }

    fn facts(&self, image: &str, digest: &str) -> Option<Facts> {
        if let Some((i, d, f)) = &self.fresh {
            if i == image && d == digest {
                return Some(f.clone());
            }
        }
        manifest(self.catalog, image, digest).map(|m| Facts {
            media_type: m.media_type.clone(),
            artifact_type: m.artifact_type.clone(),
            subject: m.subject.clone(),
            labels: m.labels.clone(),
        })
    }

    /// (digest, tag, since) of a pointer, counting planned moves.
    fn pointer(&self, pipeline: &str, ring: &str, image: &str) -> Option<(String, String, i64)> {
        if let Some(m) = self
            .moves
            .iter()
            .rev()
            .find(|m| m.pipeline == pipeline && m.ring == ring && m.image == image)
        {
            return (!m.digest.is_empty()).then(|| (m.digest.clone(), m.tag.clone(), self.now));
        }
        self.st
            .pointer(pipeline, ring, image)
            .map(|p| (p.digest.clone(), p.tag.clone(), p.since_ms))
    }

    fn digest_in(&self, pipeline: &str, ring: &str, image: &str) -> String {
        self.pointer(pipeline, ring, image)
            .map(|p| p.0)
            .unwrap_or_default()
    }

    /// Whether `digest` ever was in `ring` (the order rule).
    fn entered(&self, pipeline: &str, ring: &str, image: &str, digest: &str) -> bool {
        self.digest_in(pipeline, ring, image) == digest
            || self.moves.iter().any(|m| {
                m.pipeline == pipeline && m.ring == ring && m.image == image && m.digest == digest
            })
            || self.st.entered.contains(&(
                pipeline.to_string(),
                ring.to_string(),
                image.to_string(),
                digest.to_string(),
            ))
    }

    /// Plans moving `ring` of `image` to `digest` (empty: emptying it).
    fn push(&mut self, pipeline: &str, ring: &str, image: &str, digest: &str, tag: &str) {
        let facts = if digest.is_empty() {
            Facts::default()
        } else {
            self.facts(image, digest).unwrap_or_default()
        };
        let tag = if tag.is_empty() && !digest.is_empty() {
            tag_of(self.catalog, image, digest)
        } else {
            tag.to_string()
        };
        let previous_digest = self.digest_in(pipeline, ring, image);
        self.moves.push(RingMoveRecord {
            pipeline: pipeline.to_string(),
            ring: ring.to_string(),
            image: image.to_string(),
            repository: repository_of(image),
            digest: digest.to_string(),
            previous_digest,
            tag,
            media_type: facts.media_type,
            artifact_type: facts.artifact_type,
            subject: facts.subject,
            labels: facts.labels,
        });
    }

    /// Refuses a digest that may not enter a ring: unknown, not a release, or rejected.
    fn check_enterable(&self, image: &str, digest: &str) -> Result<(), ServiceError> {
        let Some(facts) = self.facts(image, digest) else {
            return Err(unknown(format!(
                "{digest} is not a published manifest of {image}"
            )));
        };
        if let Err(why) = ferry_proto::release::check(
            "",
            facts.artifact_type.as_deref(),
            facts.subject.as_deref(),
        ) {
            return Err(invalid(format!(
                "{image}@{digest} cannot enter a ring: {why}; only releases (images and indexes) move through rings"
            )));
        }
        if let Some(r) = self.st.rejection(image, digest) {
            return Err(refused(format!(
                "{image}@{digest} was rejected by {} ({}); a rejected digest never enters a ring again",
                r.actor, r.reason
            )));
        }
        Ok(())
    }
}

/// Checks that `ring` is a user ring of `spec` a promote may name.
fn check_promote_ring(spec: &PipelineSpec, ring: &str) -> Result<(), ServiceError> {
    if ring == POST {
        return Err(invalid(format!(
            "promote --to post: only shift fills post (pipeline {})",
            spec.name
        )));
    }
    if ring == ANTE {
        return Err(invalid(format!(
            "promote --to ante: ante is where publish puts new builds (pipeline {})",
            spec.name
        )));
    }
    if !spec.rings.iter().any(|r| r == ring) {
        return Err(invalid(format!(
            "ring {ring:?} is not a ring of pipeline {} (its rings: {})",
            spec.name,
            spec.rings.join(", ")
        )));
    }
    Ok(())
}

/// The pipeline a verb on `image` addresses: `pipeline` when named, else the only one listing it.
pub(crate) fn pipeline_for<'a>(
    st: &'a RingState,
    image: &str,
    pipeline: &str,
) -> Result<&'a RingPipeline, ServiceError> {
    if !pipeline.is_empty() {
        let p = st.pipelines.get(pipeline).ok_or_else(|| {
            unknown(format!(
                "no pipeline named {pipeline:?}; `ferry pipeline apply` creates one"
            ))
        })?;
        if !p.spec.lists(image) {
            return Err(unknown(format!(
                "pipeline {pipeline} does not list image {image} (its images: {})",
                p.spec.images.join(", ")
            )));
        }
        return Ok(p);
    }
    let listing = st.pipelines_listing(image);
    match listing.as_slice() {
        [] => Err(unknown(format!(
            "no pipeline lists image {image}; add it to a pipeline's spec.images"
        ))),
        [one] => Ok(one),
        many => Err(invalid(format!(
            "image {image} is in pipelines {}; say which with --pipeline",
            many.iter()
                .map(|p| p.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A pipeline by name.
fn pipeline_named<'a>(st: &'a RingState, name: &str) -> Result<&'a RingPipeline, ServiceError> {
    st.pipelines.get(name).ok_or_else(|| {
        unknown(format!(
            "no pipeline named {name:?}; `ferry pipeline apply` creates one"
        ))
    })
}

fn is_reason(reason: &str, verb: &str) -> bool {
    reason == verb
        || reason
            .strip_prefix(verb)
            .is_some_and(|r| r.starts_with(": "))
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}
