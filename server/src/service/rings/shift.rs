//! Shift and unshift: every ring of a pipeline at once, and its exact undo.

use super::*;

impl Service {
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
                        let reports = self.image_reports(pipeline, source, &[image.as_str()]);
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
}
