//! One autoPromote round (the task that runs it is `service/auto_promote.rs`).

use super::*;

impl Service {
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
