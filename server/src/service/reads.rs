//! The registry's read operations, answered from the in-memory catalog.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use ferry_proto::names::{is_digest_like, validate_digest, validate_repository, validate_tag};

use super::catalog::{ManifestEntry, RepoView};
use super::{Service, ServiceError};

/// How to answer a blob request.
#[derive(Debug)]
pub enum BlobAnswer {
    /// Stored here: serve these bytes.
    Stored {
        /// Media type.
        media_type: String,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A layer: redirect the client to the origin registry's blob URL.
    Redirect(String),
}

/// One entry of a referrers index.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The referring manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its artifactType.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Service {
    fn with_repo<T>(
        &self,
        name: &str,
        f: impl FnOnce(&RepoView) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        validate_repository(name)?;
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let repo = catalog
            .repos
            .get(name)
            .ok_or_else(|| ServiceError::NameUnknown(name.to_string()))?;
        f(repo)
    }

    /// A manifest by tag or digest.
    pub fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Arc<ManifestEntry>, ServiceError> {
        if is_digest_like(reference) {
            validate_digest(reference)?;
        } else {
            validate_tag(reference)?;
        }
        self.with_repo(repository, |repo| {
            let digest = if is_digest_like(reference) {
                reference
            } else {
                repo.tags
                    .get(reference)
                    .map(|t| t.digest.as_str())
                    .unwrap_or("")
            };
            repo.manifests
                .get(digest)
                .cloned()
                .ok_or_else(|| ServiceError::ManifestUnknown {
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                })
        })
    }

    /// A blob: stored bytes, a redirect to the origin for known layers, or `BlobUnknown`.
    /// Reads SQLite for stored blobs, so call it off the async executor.
    pub fn blob(&self, repository: &str, digest: &str) -> Result<BlobAnswer, ServiceError> {
        validate_digest(digest)?;
        let unknown = || ServiceError::BlobUnknown {
            repository: repository.to_string(),
            digest: digest.to_string(),
        };
        enum Found {
            Stored(String),
            Layer(String),
        }
        let found = self.with_repo(repository, |repo| {
            if let Some(meta) = repo.blobs.get(digest) {
                return Ok(Found::Stored(meta.media_type.clone()));
            }
            match repo.layer_origins.get(digest) {
                Some(origin) => Ok(Found::Layer(origin.blob_url(digest))),
                None => Err(unknown()),
            }
        })?;
        match found {
            Found::Layer(url) => Ok(BlobAnswer::Redirect(url)),
            Found::Stored(media_type) => {
                let data = self
                    .store
                    .blob_data(repository, digest)?
                    .ok_or_else(unknown)?;
                Ok(BlobAnswer::Stored { media_type, data })
            }
        }
    }

    /// Up to `n` tags after `last`, sorted; and whether more remain.
    pub fn tags(
        &self,
        repository: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool), ServiceError> {
        self.with_repo(repository, |repo| Ok(page(&repo.tags, n, last)))
    }

    /// Up to `n` repository names after `last`, sorted; and whether more remain.
    pub fn catalog(&self, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        page(&catalog.repos, n, last)
    }

    /// Manifests whose `subject` is `digest`, optionally only those of `artifact_type`.
    pub fn referrers(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, ServiceError> {
        validate_digest(digest)?;
        self.with_repo(repository, |repo| {
            let digests = repo.referrers.get(digest).map(Vec::as_slice).unwrap_or(&[]);
            Ok(digests
                .iter()
                .filter_map(|d| repo.manifests.get(d))
                .filter(|m| artifact_type.is_none() || m.artifact_type.as_deref() == artifact_type)
                .map(|m| Referrer {
                    media_type: m.media_type.clone(),
                    digest: m.digest.clone(),
                    size: m.data.len() as u64,
                    artifact_type: m.artifact_type.clone(),
                    annotations: m.annotations.clone(),
                })
                .collect())
        })
    }
}

/// Lexical pagination over a sorted map: keys strictly after `last`, at most `n`, and whether
/// more remain. A range query, so a page of a 100,000-tag repository costs O(log n + page).
fn page<V>(map: &BTreeMap<String, V>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let start = match last {
        Some(l) => Bound::Excluded(l),
        None => Bound::Unbounded,
    };
    let mut it = map
        .range::<str, _>((start, Bound::Unbounded))
        .map(|(k, _)| k);
    let items: Vec<String> = it.by_ref().take(n.unwrap_or(usize::MAX)).cloned().collect();
    let more = it.next().is_some();
    (items, more)
}
