//! The in-memory catalog the read path answers from: no SQLite round trip per registry request.
//!
//! It mirrors what the store holds except blob bytes (read on demand, rarely). Publishes update it
//! after their transaction commits, under the service's publish lock, so readers never see a tag
//! whose manifest is not durable yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

/// Where a manifest's layers can be pulled from: an origin registry and the repository there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Base URL, `http://127.0.0.1:5001` or `https://ghcr.io`.
    pub registry_url: String,
    /// Repository path at the origin, `team/app`.
    pub repository: String,
}

impl Origin {
    /// The origin's URL of blob `digest`, where layer reads are redirected.
    pub fn blob_url(&self, digest: &str) -> String {
        format!(
            "{}/v2/{}/blobs/{digest}",
            self.registry_url.trim_end_matches('/'),
            self.repository
        )
    }
}

impl From<(String, String)> for Origin {
    fn from((registry_url, repository): (String, String)) -> Self {
        Origin {
            registry_url,
            repository,
        }
    }
}

/// A stored manifest, ready to serve.
#[derive(Debug)]
pub struct ManifestEntry {
    /// Its digest (the `Docker-Content-Digest` header).
    pub digest: String,
    /// Its media type (the `Content-Type` header).
    pub media_type: String,
    /// OCI 1.1 artifactType, for the referrers API.
    pub artifact_type: Option<String>,
    /// OCI 1.1 subject.
    pub subject: Option<String>,
    /// Manifest annotations, for the referrers API.
    pub annotations: BTreeMap<String, String>,
    /// Labels recorded at publish (top-level manifests only).
    pub labels: BTreeMap<String, String>,
    /// The bytes as published.
    pub data: Bytes,
    /// Where its layers live, if the publish said.
    pub origin: Option<Origin>,
    /// When it was first published (ms since the epoch): "the newest manifest of a version"
    /// for bundles.
    pub created_at_ms: i64,
}

/// Metadata of a stored blob; the bytes stay in SQLite.
#[derive(Debug, Clone)]
pub struct BlobMeta {
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// Where a tag points.
#[derive(Debug, Clone)]
pub struct TagEntry {
    /// The manifest digest.
    pub digest: String,
    /// The event that last moved it.
    pub seq: u64,
    /// When (ms since the epoch).
    pub updated_at_ms: i64,
}

/// One repository's state.
#[derive(Debug, Default)]
pub struct RepoView {
    /// Normalised image name.
    pub image: String,
    /// Tags, sorted (the tags list is lexical).
    pub tags: BTreeMap<String, TagEntry>,
    /// Manifests by digest.
    pub manifests: HashMap<String, Arc<ManifestEntry>>,
    /// Stored blobs by digest.
    pub blobs: HashMap<String, BlobMeta>,
    /// Layer digest → the origin its reads are redirected to. Layers of manifests published
    /// without an origin are not here: ferry cannot serve them.
    pub layer_origins: HashMap<String, Origin>,
    /// subject digest → digests of manifests that refer to it.
    pub referrers: HashMap<String, Vec<String>>,
}

impl RepoView {
    /// Adds a manifest and indexes its layers and subject.
    ///
    /// Layers follow the origin of the manifest that references them. A layer shared by manifests
    /// from different origins redirects to the origin recorded last: the most recently published
    /// manifest that named an origin. Both origins held the layer when their manifests were
    /// published, and the newer one is the more likely to still have it; the store loads
    /// manifests in that order (`origin_order`) so a restart keeps the same choice. A publish
    /// without an origin leaves the layers' origins as they were.
    pub fn insert_manifest(
        &mut self,
        mut entry: ManifestEntry,
        layers: impl IntoIterator<Item = String>,
    ) {
        // Only a publish that names an origin moves layers: one without keeps the manifest's old
        // origin (below) but must not take back layers a later manifest moved elsewhere, which
        // the store (whose origin_order it leaves alone) would not do after a restart either.
        let names_origin = entry.origin.is_some();
        if let Some(old) = self.manifests.get(&entry.digest) {
            // A re-publish that names no origin keeps the one recorded before (as the store
            // does); index children carry no labels, so theirs never replace the top's.
            if entry.origin.is_none() {
                entry.origin.clone_from(&old.origin);
            }
            if entry.labels.is_empty() {
                entry.labels.clone_from(&old.labels);
            }
            // The store keeps the first publish's time too.
            entry.created_at_ms = old.created_at_ms;
        }
        if let (true, Some(origin)) = (names_origin, &entry.origin) {
            for layer in layers {
                self.layer_origins.insert(layer, origin.clone());
            }
        }
        if let Some(subject) = &entry.subject {
            let list = self.referrers.entry(subject.clone()).or_default();
            if !list.contains(&entry.digest) {
                list.push(entry.digest.clone());
            }
        }
        let unchanged = self
            .manifests
            .get(&entry.digest)
            .is_some_and(|old| old.labels == entry.labels && old.origin == entry.origin);
        // Same bytes by definition; only the labels and origin of a re-publish may differ.
        if !unchanged {
            self.manifests.insert(entry.digest.clone(), Arc::new(entry));
        }
    }
}

/// All repositories, sorted by name (the catalog listing is lexical).
#[derive(Debug, Default)]
pub struct Catalog {
    /// Repositories by ferry repository name.
    pub repos: BTreeMap<String, RepoView>,
}
