//! A publish's ring moves: into ante, then `--to` under the promote rules.

use super::*;

impl Service {
    /// The ring moves of a publish of `rec` (`to_ring`: "" or "ante", "none", or a user ring;
    /// `pipeline`: "" for every pipeline listing the image). Called under the publish lock,
    /// before the publish commits: the moves are stored in its transaction. None: no move.
    pub(in crate::service) fn plan_publish_rings(
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
}
