//! Read models for the web dashboard (`ui/`): images with their tags, an image's releases and
//! tag moves, the newest events, and what one cluster runs. Everything but the event log is
//! answered from memory, so a page costs the rows it shows, not the catalog's size.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::catalog::{ManifestEntry, Origin, RepoView};
use super::rings::{REVISION_LABEL, VERSION_LABEL};
use super::{Event, Service, ServiceError};

/// One image of the images page.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// ferry repository name (what `/v2/NAME` uses).
    pub repository: String,
    /// Normalised image name.
    pub image: String,
    /// How many tags it has.
    pub tags: usize,
    /// How many of those point at releases (the rest at artifacts: signatures, SBOMs).
    pub releases: usize,
    /// The most recently moved tag, with its version label.
    pub newest: Option<TagView>,
}

/// One tag with what the dashboard shows of its manifest.
#[derive(Debug, Clone, Default)]
pub struct TagView {
    /// The tag.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// `org.opencontainers.image.version`, or empty.
    pub version: String,
    /// `org.opencontainers.image.revision`, or empty.
    pub revision: String,
    /// Every label.
    pub labels: BTreeMap<String, String>,
    /// When the manifest was first published (ms since the epoch).
    pub published_at_ms: i64,
    /// When the tag last moved (ms since the epoch).
    pub moved_at_ms: i64,
    /// Where its layers are pulled from.
    pub origin: Option<Origin>,
    /// Why it is not a release (an artifact: signature, SBOM, referrer); None for a release.
    pub artifact: Option<String>,
}

/// One image page: its tags, newest first, releases and artifacts apart.
#[derive(Debug, Clone, Default)]
pub struct ImageDetail {
    /// ferry repository name.
    pub repository: String,
    /// Normalised image name.
    pub image: String,
    /// Tags pointing at releases, most recently moved first.
    pub releases: Vec<TagView>,
    /// Tags pointing at artifacts, most recently moved first.
    pub artifacts: Vec<TagView>,
}

fn tag_view(tag: &str, digest: &str, moved_at_ms: i64, m: Option<&ManifestEntry>) -> TagView {
    let label = |k: &str| m.and_then(|m| m.labels.get(k)).cloned().unwrap_or_default();
    TagView {
        tag: tag.to_string(),
        digest: digest.to_string(),
        media_type: m.map(|m| m.media_type.clone()).unwrap_or_default(),
        version: label(VERSION_LABEL),
        revision: label(REVISION_LABEL),
        labels: m.map(|m| m.labels.clone()).unwrap_or_default(),
        published_at_ms: m.map_or(0, |m| m.created_at_ms),
        moved_at_ms,
        origin: m.and_then(|m| m.origin.clone()),
        artifact: ferry_proto::release::check(
            tag,
            m.and_then(|m| m.artifact_type.as_deref()),
            m.and_then(|m| m.subject.as_deref()),
        )
        .err()
        .map(|why| why.to_string()),
    }
}

fn summary(name: &str, repo: &RepoView) -> ImageSummary {
    let mut releases = 0;
    let mut newest: Option<(&String, &super::catalog::TagEntry)> = None;
    for (tag, t) in &repo.tags {
        let m = repo.manifests.get(&t.digest);
        let release = ferry_proto::release::check(
            tag,
            m.and_then(|m| m.artifact_type.as_deref()),
            m.and_then(|m| m.subject.as_deref()),
        )
        .is_ok();
        if release {
            releases += 1;
            if newest.is_none_or(|(_, n)| t.seq > n.seq) {
                newest = Some((tag, t));
            }
        }
    }
    ImageSummary {
        repository: name.to_string(),
        image: repo.image.clone(),
        tags: repo.tags.len(),
        releases,
        newest: newest.map(|(tag, t)| {
            tag_view(
                tag,
                &t.digest,
                t.updated_at_ms,
                repo.manifests.get(&t.digest).map(|m| &**m),
            )
        }),
    }
}

impl Service {
    /// Up to `limit` images after repository `after` (by name), the number of images in all,
    /// and whether more follow. `filter` keeps names containing it.
    pub fn image_summaries(
        &self,
        after: Option<&str>,
        limit: usize,
        filter: &str,
    ) -> (Vec<ImageSummary>, usize, bool) {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut more = false;
        for (name, repo) in catalog
            .repos
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(name, _)| filter.is_empty() || name.contains(filter))
        {
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(summary(name, repo));
        }
        (out, catalog.repos.len(), more)
    }

    /// One image's tags (`repository` is the ferry repository name or the image name).
    pub fn image_detail(&self, repository: &str) -> Result<ImageDetail, ServiceError> {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let (name, repo) = catalog
            .repos
            .get_key_value(repository)
            .or_else(|| catalog.repos.iter().find(|(_, r)| r.image == repository))
            .ok_or_else(|| ServiceError::NameUnknown(repository.to_string()))?;
        let mut detail = ImageDetail {
            repository: name.clone(),
            image: repo.image.clone(),
            ..Default::default()
        };
        let mut tags: Vec<_> = repo.tags.iter().collect();
        tags.sort_by_key(|(_, t)| std::cmp::Reverse(t.seq));
        for (tag, t) in tags {
            let view = tag_view(
                tag,
                &t.digest,
                t.updated_at_ms,
                repo.manifests.get(&t.digest).map(|m| &**m),
            );
            if view.artifact.is_some() {
                detail.artifacts.push(view);
            } else {
                detail.releases.push(view);
            }
        }
        Ok(detail)
    }

    /// The newest `limit` events of image `image` (every image when empty), newest first.
    /// Blocking (SQLite).
    pub fn recent_events(&self, image: &str, limit: usize) -> Result<Vec<Event>, ServiceError> {
        let stored = self.store.events_newest(image, limit)?;
        Ok(stored.into_iter().map(Event::from).collect())
    }
}
