//! Ring moves: planning promote (with its bundle), shift, unshift, rollback and a publish's
//! moves against the in-memory state, then committing each call as one batch.
//!
//! Every verb takes the publish lock, plans, and commits: seq order is commit order, the live
//! fan-out carries the moves in order, and a refused request writes nothing. Plans read only
//! memory; unshift and rollback read the history they undo from the store.

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

impl Service {
    /// Plans entering `ring` with `digest` of `image` (a root image: its bundle) under the
    /// rules: rejection, no-op, order rule and gate (the last two skipped by `force`).
    fn plan_promote(
        &self,
        pl: &mut Planner,
        spec: &PipelineSpec,
        (image, digest, tag): (&str, &str, &str),
        ring: &str,
        force: bool,
    ) -> Result<(), ServiceError> {
        check_promote_ring(spec, ring)?;
        let previous = spec
            .previous_ring(ring)
            .expect("a user ring has a previous ring");
        let members = if !spec.root.is_empty() && spec.root == image {
            self.bundle(pl, spec, image, digest, tag)?
        } else {
            vec![(image.to_string(), digest.to_string(), tag.to_string())]
        };
        for (i, d, _) in &members {
            pl.check_enterable(i, d)?;
        }
        let moving: Vec<_> = members
            .into_iter()
            .filter(|(i, d, _)| pl.digest_in(&spec.name, ring, i) != *d)
            .collect();
        if moving.is_empty() {
            return Ok(()); // already there: nothing moves
        }
        if !force {
            for (i, d, _) in &moving {
                if !pl.entered(&spec.name, previous, i, d) {
                    return Err(refused(format!(
                        "{i}@{} never was in ring {previous} of pipeline {}, so it cannot enter {ring}; promote it to {previous} first (or --force --reason TEXT)",
                        short(d),
                        spec.name
                    )));
                }
            }
            let gate = spec.gate(ring);
            if gate.guards() {
                let members: Vec<(String, String)> = moving
                    .iter()
                    .map(|(i, d, _)| (i.clone(), d.clone()))
                    .collect();
                let reports = self.ring_reports_shared(&spec.name, previous);
                let entered_previous_ms = pl
                    .pointer(&spec.name, previous, &members[0].0)
                    .filter(|p| p.0 == members[0].1)
                    .map(|p| p.2);
                let eval = evaluate(
                    &gate,
                    &GateQuery {
                        pipeline: &spec.name,
                        ring,
                        previous,
                        members: &members,
                        reports: &reports,
                        entered_previous_ms,
                        now_ms: pl.now,
                    },
                );
                if !eval.open {
                    return Err(refused(format!(
                        "{}; --force --reason TEXT skips the gate",
                        eval.why_closed
                    )));
                }
            }
        }
        for (i, d, t) in moving {
            pl.push(&spec.name, ring, &i, &d, &t);
        }
        Ok(())
    }

    /// The root's bundle: the root, and per `dependency.<name>=<version>` label the newest
    /// published manifest of the pipeline image named `<name>` with that version.
    fn bundle(
        &self,
        pl: &Planner,
        spec: &PipelineSpec,
        root: &str,
        digest: &str,
        tag: &str,
    ) -> Result<Vec<(String, String, String)>, ServiceError> {
        let facts = pl
            .facts(root, digest)
            .ok_or_else(|| unknown(format!("{digest} is not a published manifest of {root}")))?;
        let mut out = vec![(root.to_string(), digest.to_string(), tag.to_string())];
        for (key, version) in &facts.labels {
            let Some(name) = key.strip_prefix(DEPENDENCY_PREFIX) else {
                continue;
            };
            let image = spec
                .images
                .iter()
                .find(|i| *i == name || i.rsplit('/').next() == Some(name))
                .ok_or_else(|| {
                    refused(format!(
                        "{key}={version} of {root}@{}: no image of pipeline {} is named {name:?} (its images: {}); nothing moved",
                        short(digest),
                        spec.name,
                        spec.images.join(", ")
                    ))
                })?;
            let found = pl
                .catalog
                .repos
                .get(&repository_of(image))
                .and_then(|repo| {
                    repo.manifests
                        .values()
                        .filter(|m| m.labels.get(VERSION_LABEL) == Some(version))
                        .max_by(|a, b| {
                            (a.created_at_ms, &a.digest).cmp(&(b.created_at_ms, &b.digest))
                        })
                        .map(|m| m.digest.clone())
                })
                .ok_or_else(|| {
                    refused(format!(
                        "{key}={version} of {root}@{}: {image} has no published manifest with {VERSION_LABEL}={version}; publish it first; nothing moved",
                        short(digest)
                    ))
                })?;
            let t = tag_of(pl.catalog, image, &found);
            out.push((image.clone(), found, t));
        }
        Ok(out)
    }

    /// Promotes as asked. Blocking (SQLite). Returns the moves (none when the ring already
    /// runs the digest).
    pub fn promote(&self, req: PromoteInput) -> Result<Vec<Event>, ServiceError> {
        let image = normalise_image(&req.image)?;
        if req.force && req.reason.trim().is_empty() {
            return Err(invalid(
                "--force needs --reason TEXT: a forced move is recorded with why".into(),
            ));
        }
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        let batch = {
            let catalog = self.catalog.read().expect("catalog lock poisoned");
            let st = self.rings_read();
            let p = pipeline_for(&st, &image, &req.pipeline)?;
            let spec = &p.spec;
            check_promote_ring(spec, &req.to_ring)?;
            let mut pl = Planner::new(&st, &catalog);
            let (digest, tag) = self.resolve_reference(&pl, spec, &image, &req)?;
            self.plan_promote(
                &mut pl,
                spec,
                (&image, &digest, &tag),
                &req.to_ring,
                req.force,
            )?;
            if pl.moves.is_empty() {
                tracing::info!(%image, ring = %req.to_ring, %digest, "promote: the ring already runs it");
                return Ok(Vec::new());
            }
            RingBatch {
                moves: pl.moves,
                actor: req.actor.clone(),
                reason: if req.force {
                    req.reason.trim().to_string()
                } else {
                    "promote".into()
                },
                forced: req.force,
                clear_holds: vec![(spec.name.clone(), req.to_ring.clone())],
                ..Default::default()
            }
        };
        self.commit_ring_batch(batch)
    }

    /// The digest (and tag) a promote names: what the previous ring runs, a tag, or a digest.
    fn resolve_reference(
        &self,
        pl: &Planner,
        spec: &PipelineSpec,
        image: &str,
        req: &PromoteInput,
    ) -> Result<(String, String), ServiceError> {
        let reference = req.reference.trim();
        if reference.is_empty() {
            let previous = spec.previous_ring(&req.to_ring).unwrap_or(ANTE);
            let (digest, tag, _) = pl.pointer(&spec.name, previous, image).ok_or_else(|| {
                refused(format!(
                    "ring {previous} of pipeline {} holds nothing for {image}, so there is nothing to promote into {}; name one with IMAGE:TAG or IMAGE@DIGEST",
                    spec.name, req.to_ring
                ))
            })?;
            return Ok((digest, tag));
        }
        if let Some(digest) = reference.strip_prefix('@') {
            validate_digest(digest).map_err(|e| invalid(format!("digest {digest:?}: {e}")))?;
            return Ok((digest.to_string(), String::new()));
        }
        let tag = reference.strip_prefix(':').unwrap_or(reference);
        let digest = pl
            .catalog
            .repos
            .get(&repository_of(image))
            .and_then(|r| r.tags.get(tag))
            .map(|t| t.digest.clone())
            .ok_or_else(|| unknown(format!("tag {tag:?} is not known for {image}")))?;
        Ok((digest, tag.to_string()))
    }

    /// Shifts every ring of `pipeline` by one (last → post first, ante → first ring last).
    /// `force` skips closed gates (never a rejection) and needs a `reason`, recorded as
    /// `shift: REASON` so unshift still finds the shift. Blocking (SQLite).
    pub fn shift(
        &self,
        pipeline: &str,
        force: bool,
        reason: &str,
        actor: &str,
    ) -> Result<Vec<Event>, ServiceError> {
        let reason = reason.trim();
        if force && reason.is_empty() {
            return Err(invalid(format!(
                "shift {pipeline} --force needs --reason TEXT: a forced move is recorded with why"
            )));
        }
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        let batch = {
            let catalog = self.catalog.read().expect("catalog lock poisoned");
            let st = self.rings_read();
            let spec = &pipeline_named(&st, pipeline)?.spec;
            let mut pl = Planner::new(&st, &catalog);
            let all = spec.all_rings();
            for i in (1..all.len()).rev() {
                let (source, target) = (all[i - 1], all[i]);
                for image in &spec.images {
                    // The state before the shift: each ring takes what its previous ring ran.
                    let Some(src) = st.pointer(pipeline, source, image) else {
                        continue;
                    };
                    if pl.digest_in(pipeline, target, image) == src.digest {
                        continue;
                    }
                    pl.check_enterable(image, &src.digest)?;
                    let gate = spec.gate(target);
                    if !force && target != POST && gate.guards() {
                        let members = [(image.clone(), src.digest.clone())];
                        let reports = self.ring_reports_shared(pipeline, source);
                        let eval = evaluate(
                            &gate,
                            &GateQuery {
                                pipeline,
                                ring: target,
                                previous: source,
                                members: &members,
                                reports: &reports,
                                entered_previous_ms: Some(src.since_ms),
                                now_ms: pl.now,
                            },
                        );
                        if !eval.open {
                            return Err(refused(format!(
                                "shift {pipeline}: {}; --force --reason TEXT skips the gate",
                                eval.why_closed
                            )));
                        }
                    }
                    pl.push(pipeline, target, image, &src.digest, &src.tag);
                }
            }
            if pl.moves.is_empty() {
                return Ok(Vec::new());
            }
            RingBatch {
                moves: pl.moves,
                actor: actor.to_string(),
                reason: if force {
                    format!("shift: {reason}")
                } else {
                    "shift".into()
                },
                forced: force,
                ..Default::default()
            }
        };
        self.commit_ring_batch(batch)
    }

    /// Puts back exactly what the pipeline's last shift moved. Blocking (SQLite).
    pub fn unshift(&self, pipeline: &str, actor: &str) -> Result<Vec<Event>, ServiceError> {
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        pipeline_named(&self.rings_read(), pipeline)?;
        let rows = self.store.ring_batch(pipeline, None)?;
        let Some(first) = rows.first() else {
            return Err(refused(format!(
                "pipeline {pipeline} has no ring moves; unshift undoes the pipeline's last shift"
            )));
        };
        if is_reason(&first.reason, "unshift") {
            return Err(refused(format!(
                "the last shift of pipeline {pipeline} was already undone (unshift by {} at seq {}); unshift undoes only the pipeline's last move, when it is a shift",
                first.actor, first.seq
            )));
        }
        if !is_reason(&first.reason, "shift") {
            return Err(refused(format!(
                "the last move of pipeline {pipeline} was a {} by {} (seq {}), not a shift; unshift undoes only the pipeline's last move, when it is a shift",
                first.reason, first.actor, first.seq
            )));
        }
        let batch = {
            let catalog = self.catalog.read().expect("catalog lock poisoned");
            let st = self.rings_read();
            let mut pl = Planner::new(&st, &catalog);
            for row in rows.iter().rev() {
                if !row.previous_digest.is_empty() {
                    if let Some(r) = st.rejection(&row.image, &row.previous_digest) {
                        return Err(refused(format!(
                            "unshift {pipeline}: ring {} would go back to {}@{}, which was rejected by {} ({})",
                            row.ring, row.image, short(&row.previous_digest), r.actor, r.reason
                        )));
                    }
                }
                pl.push(pipeline, &row.ring, &row.image, &row.previous_digest, "");
            }
            RingBatch {
                moves: pl.moves,
                actor: actor.to_string(),
                reason: "unshift".into(),
                ..Default::default()
            }
        };
        self.commit_ring_batch(batch)
    }

    /// Moves `ring` of `image` back to its previous digest (a root: every pointer its last move
    /// in that ring moved) and holds autoPromote there. Blocking (SQLite).
    pub fn rollback(
        &self,
        image: &str,
        ring: &str,
        pipeline: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Vec<Event>, ServiceError> {
        let image = normalise_image(image)?;
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        let (name, root) = {
            let st = self.rings_read();
            let p = pipeline_for(&st, &image, pipeline)?;
            check_promote_ring(&p.spec, ring)?;
            (p.spec.name.clone(), p.spec.root == image)
        };
        let last = self
            .store
            .last_ring_move(&name, ring, &image)?
            .filter(|h| !h.previous_digest.is_empty() || root);
        let Some(last) = last else {
            return Err(refused(format!(
                "ring {ring} of pipeline {name} has no previous digest of {image} to roll back to"
            )));
        };
        let rows = if root {
            self.store
                .ring_batch(&name, Some(last.batch))?
                .into_iter()
                .filter(|h| h.ring == ring)
                .collect()
        } else {
            vec![last]
        };
        let batch = {
            let catalog = self.catalog.read().expect("catalog lock poisoned");
            let st = self.rings_read();
            let mut pl = Planner::new(&st, &catalog);
            for row in &rows {
                if !row.previous_digest.is_empty() {
                    if let Some(r) = st.rejection(&row.image, &row.previous_digest) {
                        return Err(refused(format!(
                            "rollback of ring {ring}: {}@{} was rejected by {} ({}); a rejected digest never enters a ring again",
                            row.image, short(&row.previous_digest), r.actor, r.reason
                        )));
                    }
                }
                if pl.digest_in(&name, ring, &row.image) != row.previous_digest {
                    pl.push(&name, ring, &row.image, &row.previous_digest, "");
                }
            }
            let text = reason.trim();
            let why = if text.is_empty() {
                format!("rollback of {image} by {actor}")
            } else {
                format!("rollback of {image} by {actor}: {text}")
            };
            RingBatch {
                moves: pl.moves,
                actor: actor.to_string(),
                reason: if text.is_empty() {
                    "rollback".into()
                } else {
                    format!("rollback: {text}")
                },
                set_holds: vec![StoredHold {
                    pipeline: name.clone(),
                    ring: ring.to_string(),
                    reason: why,
                    actor: actor.to_string(),
                    at_ms: pl.now,
                }],
                ..Default::default()
            }
        };
        self.commit_ring_batch(batch)
    }

    /// The ring moves of a publish of `rec` (`to_ring`: "" or "ante", "none", or a user ring;
    /// `pipeline`: "" for every pipeline listing the image). Called under the publish lock,
    /// before the publish commits: the moves are stored in its transaction. None: no move.
    pub(super) fn plan_publish_rings(
        &self,
        rec: &PublishRecord,
        to_ring: &str,
        pipeline: &str,
        actor: &str,
    ) -> Result<Option<RingBatch>, ServiceError> {
        let to_ring = to_ring.trim();
        if to_ring == "none" {
            return Ok(None);
        }
        let explicit = !(to_ring.is_empty() || to_ring == ANTE);
        let top = &rec.manifests[0];
        if let Err(why) =
            ferry_proto::release::check("", top.artifact_type.as_deref(), top.subject.as_deref())
        {
            if explicit || !pipeline.is_empty() {
                return Err(invalid(format!(
                    "publish --to {to_ring}: {why}; artifacts never enter rings"
                )));
            }
            return Ok(None);
        }
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let st = self.rings_read();
        let targets: Vec<&RingPipeline> = if pipeline.is_empty() {
            st.pipelines_listing(&rec.image)
        } else {
            vec![pipeline_for(&st, &rec.image, pipeline)?]
        };
        if targets.is_empty() {
            if explicit {
                return Err(unknown(format!(
                    "publish --to {to_ring}: no pipeline lists image {}; add it to a pipeline's spec.images",
                    rec.image
                )));
            }
            return Ok(None);
        }
        let digest = top.digest.as_str();
        let mut pl = Planner::new(&st, &catalog);
        pl.fresh = Some((
            rec.image.clone(),
            digest.to_string(),
            Facts {
                media_type: top.media_type.clone(),
                artifact_type: top.artifact_type.clone(),
                subject: top.subject.clone(),
                labels: rec.labels.clone(),
            },
        ));
        let tag = rec.tags.first().cloned().unwrap_or_default();
        if let Some(r) = st.rejection(&rec.image, digest) {
            if explicit {
                return Err(refused(format!(
                    "{}@{digest} was rejected by {} ({}); a rejected digest never enters a ring again",
                    rec.image, r.actor, r.reason
                )));
            }
            return Ok(None);
        }
        for p in &targets {
            if pl.digest_in(&p.spec.name, ANTE, &rec.image) != digest {
                pl.push(&p.spec.name, ANTE, &rec.image, digest, &tag);
            }
        }
        if explicit {
            for p in &targets {
                self.plan_promote(&mut pl, &p.spec, (&rec.image, digest, &tag), to_ring, false)?;
            }
        }
        if pl.moves.is_empty() {
            return Ok(None);
        }
        Ok(Some(RingBatch {
            moves: pl.moves,
            actor: actor.to_string(),
            reason: "publish".into(),
            ..Default::default()
        }))
    }

    /// One round of autoPromote: every ring whose gate says autoPromote, is not held, and whose
    /// previous ring runs another digest that the gate lets in, is promoted (actor
    /// `ferry-server`, reason `auto`). Returns how many pointers moved. Blocking (SQLite).
    pub fn auto_promote_once(&self) -> usize {
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        let mut candidates = Vec::new();
        {
            let st = self.rings_read();
            for p in st.pipelines.values() {
                let spec = &p.spec;
                for ring in &spec.rings {
                    if !spec.gate(ring).auto_promote
                        || st.holds.contains_key(&(spec.name.clone(), ring.clone()))
                    {
                        continue;
                    }
                    let previous = spec.previous_ring(ring).unwrap_or(ANTE);
                    let images: Vec<&String> = if spec.root.is_empty() {
                        spec.images.iter().collect()
                    } else {
                        vec![&spec.root]
                    };
                    for image in images {
                        let Some(src) = st.pointer(&spec.name, previous, image) else {
                            continue;
                        };
                        let here = st
                            .pointer(&spec.name, ring, image)
                            .map(|p| p.digest.as_str());
                        if here != Some(src.digest.as_str())
                            && st.rejection(image, &src.digest).is_none()
                        {
                            candidates.push((spec.name.clone(), ring.clone(), image.clone()));
                        }
                    }
                }
            }
        }
        let mut moved = 0;
        for (pipeline, ring, image) in candidates {
            let batch = {
                let catalog = self.catalog.read().expect("catalog lock poisoned");
                let st = self.rings_read();
                let Some(p) = st.pipelines.get(&pipeline) else {
                    continue;
                };
                let previous = p.spec.previous_ring(&ring).unwrap_or(ANTE);
                let Some(src) = st.pointer(&pipeline, previous, &image).cloned() else {
                    continue;
                };
                let mut pl = Planner::new(&st, &catalog);
                if let Err(e) = self.plan_promote(
                    &mut pl,
                    &p.spec,
                    (&image, &src.digest, &src.tag),
                    &ring,
                    false,
                ) {
                    tracing::debug!(%pipeline, %ring, %image, reason = %e, "autoPromote waits");
                    continue;
                }
                if pl.moves.is_empty() {
                    continue;
                }
                RingBatch {
                    moves: pl.moves,
                    actor: SERVER_ACTOR.into(),
                    reason: "auto".into(),
                    ..Default::default()
                }
            };
            match self.commit_ring_batch(batch) {
                Ok(events) => moved += events.len(),
                Err(e) => {
                    tracing::warn!(%pipeline, %ring, %image, error = %e, "autoPromote failed")
                }
            }
        }
        moved
    }
}
