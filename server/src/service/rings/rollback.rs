//! Rollback: a ring back to its previous digest, held against autoPromote.

use super::*;

impl Service {
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
}
