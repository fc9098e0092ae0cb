//! The in-memory catalog the read path answers from: no SQLite round trip per registry request.
//!
//! It mirrors what the store holds except blob bytes (read on demand, rarely). Publishes update it
//! after their transaction commits, under the service's publish lock, so readers never see a tag
//! whose manifest is not durable yet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

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
    /// Origin base URL and repository for layer redirects.
    pub origin: Option<(String, String)>,
    /// Tags, sorted (the tags list is lexical).
    pub tags: BTreeMap<String, TagEntry>,
    /// Manifests by digest.
    pub manifests: HashMap<String, Arc<ManifestEntry>>,
    /// Stored blobs by digest.
    pub blobs: HashMap<String, BlobMeta>,
    /// Layer digests referenced by stored manifests (redirected to the origin).
    pub layers: HashSet<String>,
    /// subject digest → digests of manifests that refer to it.
    pub referrers: HashMap<String, Vec<String>>,
}

impl RepoView {
    /// Adds a manifest and indexes its layers and subject.
    pub fn insert_manifest(
        &mut self,
        entry: ManifestEntry,
        layers: impl IntoIterator<Item = String>,
    ) {
        self.layers.extend(layers);
        if let Some(subject) = &entry.subject {
            let list = self.referrers.entry(subject.clone()).or_default();
            if !list.contains(&entry.digest) {
                list.push(entry.digest.clone());
            }
        }
        match self.manifests.get(&entry.digest) {
            // Same bytes by definition; only the labels of a re-publish may differ.
            Some(old) if old.labels == entry.labels || entry.labels.is_empty() => {}
            _ => {
                self.manifests.insert(entry.digest.clone(), Arc::new(entry));
            }
        }
    }
}

/// All repositories, sorted by name (the catalog listing is lexical).
#[derive(Debug, Default)]
pub struct Catalog {
    /// Repositories by ferry repository name.
    pub repos: BTreeMap<String, RepoView>,
}
