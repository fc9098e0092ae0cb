//! Promote: one ring of one image (a root image moves its bundle), under the order rule, the
//! gate and rejections.

use super::*;

impl Service {
    /// Plans entering `ring` with `digest` of `image` (a root image: its bundle) under the
    /// rules: rejection, no-op, order rule and gate (the last two skipped by `force`).
    pub(super) fn plan_promote(
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
                let images: Vec<&str> = members.iter().map(|(i, _)| i.as_str()).collect();
                let reports = self.image_reports(&spec.name, previous, &images);
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
    pub(super) fn bundle(
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
    pub(super) fn resolve_reference(
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
}
