//! Which pipeline, ring and pointer `ferry version next` and `ferry needs-build` look at.

use anyhow::{anyhow, bail, Context};
use ferry_proto::pb;
use ferry_proto::pipeline::all_rings;
use ferry_proto::reference::ImageName;
use ferry_proto::versioning::{Running, Side};

use super::print::cell;
use crate::ServerArgs;

/// The normalised image `target` names when `status` is not the pipeline called `target`
/// (`ferry status IMAGE`), for filtering rows; `None` for `ferry status PIPELINE`.
pub fn image_filter(status: &pb::PipelineStatus, target: &str) -> Option<String> {
    let name = status.spec.as_ref().map_or("", |s| s.name.as_str());
    if name == target {
        return None;
    }
    ImageName::parse(target).ok().map(|n| n.to_string())
}

/// The one pipeline of `image` to use: `--pipeline`, or the only pipeline listing the image.
pub async fn pipeline(
    conn: &ServerArgs,
    image: &str,
    pipeline: Option<&str>,
) -> anyhow::Result<pb::PipelineStatus> {
    let status = super::get(conn, pipeline.unwrap_or(image), false, false).await?;
    choose(status, image, pipeline)
}

/// [`pipeline`] after the call: picks from the answer and its `also`.
pub fn choose(
    status: pb::PipelineStatus,
    image: &str,
    pipeline: Option<&str>,
) -> anyhow::Result<pb::PipelineStatus> {
    let normalised = ImageName::parse(image)
        .with_context(|| format!("image {}", cell(image)))?
        .to_string();
    let mut all = vec![status.clone()];
    all.extend(status.also);
    let lists = |s: &pb::PipelineStatus| {
        s.spec
            .as_ref()
            .is_some_and(|sp| sp.images.contains(&normalised))
    };
    let name = |s: &pb::PipelineStatus| s.spec.clone().unwrap_or_default().name;
    if let Some(p) = pipeline {
        let Some(found) = all.into_iter().find(|s| name(s) == p) else {
            bail!("ferry-server has no pipeline {}", cell(p));
        };
        if !lists(&found) {
            bail!(
                "pipeline {} does not list {normalised} (its images: {})",
                cell(p),
                found.spec.unwrap_or_default().images.join(", ")
            );
        }
        return Ok(found);
    }
    let mut listing: Vec<pb::PipelineStatus> = all.into_iter().filter(lists).collect();
    match listing.len() {
        0 => {
            bail!("no pipeline lists {normalised}: add it to a pipeline's spec.images and apply it")
        }
        1 => Ok(listing.remove(0)),
        _ => bail!(
            "{normalised} is in several pipelines ({}): pass --pipeline",
            listing.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A ring's name and what it runs of the image.
#[derive(Debug, Clone)]
pub struct RingRun {
    /// The ring's name (`(none)` after post).
    pub ring: String,
    /// What it runs, if anything.
    pub running: Option<Running>,
}

impl RingRun {
    /// As the versioning functions take it.
    pub fn side(&self) -> Side<'_> {
        Side {
            ring: &self.ring,
            running: self.running.as_ref(),
        }
    }
}

/// What `ring` and the ring after it run of `image` in `status` (after post: nothing).
pub fn this_and_next(
    status: &pb::PipelineStatus,
    image: &str,
    ring: &str,
) -> anyhow::Result<(RingRun, RingRun)> {
    let image = ImageName::parse(image)
        .with_context(|| format!("image {}", cell(image)))?
        .to_string();
    let spec = status.spec.clone().unwrap_or_default();
    let order = all_rings(&spec.rings);
    let at = order.iter().position(|r| *r == ring).ok_or_else(|| {
        anyhow!(
            "{} is not a ring of pipeline {} ({})",
            cell(ring),
            cell(&spec.name),
            order.join(", ")
        )
    })?;
    let run_of = |name: &str| RingRun {
        ring: name.to_string(),
        running: status
            .rings
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| {
                r.pointers
                    .iter()
                    .find(|p| p.image == image && !p.digest.is_empty())
            })
            .map(Running::from),
    };
    let this = run_of(order[at]);
    let next = match order.get(at + 1) {
        Some(n) => run_of(n),
        None => RingRun {
            ring: "(none after post)".to_string(),
            running: None,
        },
    };
    Ok((this, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, images: &[&str]) -> pb::PipelineStatus {
        pb::PipelineStatus {
            spec: Some(pb::PipelineSpec {
                name: name.into(),
                rings: vec!["testers".into(), "users".into()],
                images: images.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            rings: vec![pb::RingStatus {
                name: "users".into(),
                pointers: vec![pb::RingPointer {
                    image: "r.io/a/api".into(),
                    digest: "sha256:1".into(),
                    version: "1.2.0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn several_pipelines_need_pipeline() {
        let mut s = status("a", &["r.io/a/api"]);
        s.also.push(status("b", &["r.io/a/api"]));
        let err = choose(s.clone(), "r.io/a/api", None).unwrap_err();
        assert!(err.to_string().contains("(a, b): pass --pipeline"), "{err}");
        let got = choose(s.clone(), "r.io/a/api", Some("b")).unwrap();
        assert_eq!(got.spec.unwrap().name, "b");
        let err = choose(s, "r.io/a/web", None).unwrap_err();
        assert!(
            err.to_string().contains("no pipeline lists r.io/a/web"),
            "{err}"
        );
    }

    #[test]
    fn the_ring_after_the_last_is_post_and_after_post_nothing() {
        let s = status("a", &["r.io/a/api"]);
        let (this, next) = this_and_next(&s, "r.io/a/api", "testers").unwrap();
        assert!(this.running.is_none());
        assert_eq!(next.ring, "users");
        assert_eq!(next.running.unwrap().version(), Some("1.2.0"));
        let (this, next) = this_and_next(&s, "r.io/a/api", "users").unwrap();
        assert!(this.running.is_some());
        assert_eq!(next.ring, "post");
        let (_, next) = this_and_next(&s, "r.io/a/api", "post").unwrap();
        assert!(next.running.is_none());
        let err = this_and_next(&s, "r.io/a/api", "prod").unwrap_err();
        assert!(
            err.to_string().contains("ante, testers, users, post"),
            "{err}"
        );
    }
}
