//! Publishing: validate everything, then store, update the catalog and fan the events out.
//!
//! Nothing is written until every check passes, and the write is one transaction, so a rejected
//! publish leaves the store exactly as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferry_proto::digest::{sha256_digest, verify};
use ferry_proto::manifest::{config_labels, Kind, ManifestInfo};
use ferry_proto::names::validate_tag;
use ferry_proto::reference::ImageName;

use super::catalog::{BlobMeta, TagEntry};
use super::{manifest_entry, Service, ServiceError};
use crate::store::{BlobRecord, ManifestRecord, PublishRecord, StoredEvent};

/// A document sent with a publish.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// Declared digest; empty means "compute it" (allowed for the top-level manifest only).
    pub digest: String,
    /// Declared media type; may be empty for manifests that carry `mediaType`.
    pub media_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// One publish request, protocol-independent.
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    /// Image name as clusters pull it.
    pub image: String,
    /// The top-level manifest.
    pub manifest: Content,
    /// Index children.
    pub children: Vec<Content>,
    /// Config blobs.
    pub blobs: Vec<Content>,
    /// Tags to move.
    pub tags: Vec<String>,
    /// Labels merged over the config's.
    pub labels: BTreeMap<String, String>,
    /// Origin registry base URL and repository path.
    pub origin: Option<(String, String)>,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishOutcome {
    /// Top-level manifest digest.
    pub digest: String,
    /// ferry repository name.
    pub repository: String,
    /// Events appended (one per tag that moved).
    pub events: Vec<StoredEvent>,
    /// Head of the log after this publish.
    pub head_seq: u64,
}

fn too_large(what: String, size: usize, limit: usize) -> ServiceError {
    ServiceError::TooLarge { what, size, limit }
}

fn invalid(msg: String) -> ServiceError {
    ServiceError::InvalidPublish(msg)
}

/// Checks a document's size cap and digest; returns the verified digest.
fn verified_digest(
    c: &Content,
    what: &str,
    limit: usize,
    allow_empty_digest: bool,
) -> Result<String, ServiceError> {
    if c.data.len() > limit {
        return Err(too_large(
            format!("{what} {}", c.digest),
            c.data.len(),
            limit,
        ));
    }
    if c.digest.is_empty() && allow_empty_digest {
        return Ok(sha256_digest(&c.data));
    }
    verify(&c.digest, &c.data)?;
    Ok(c.digest.clone())
}

/// A referenced document must have the size its descriptor declares.
fn check_size(
    what: &str,
    digest: &str,
    data: &[u8],
    declared: u64,
    declared_by: &str,
) -> Result<(), ServiceError> {
    if data.len() as u64 == declared {
        return Ok(());
    }
    Err(invalid(format!(
        "{what} {digest} is {} bytes but {declared_by} says {declared}",
        data.len()
    )))
}

fn check_origin(origin: &Option<(String, String)>) -> Result<(), ServiceError> {
    if let Some((url, repo)) = origin {
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return Err(invalid(format!(
                "origin registry URL {url:?} must start with http:// or https://"
            )));
        }
        ferry_proto::names::validate_repository(repo)?;
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    for (k, v) in labels {
        if k.is_empty() || k.len() > 256 || v.len() > 4096 {
            return Err(invalid(format!(
                "label {k:?}: keys are 1 to 256 bytes and values at most 4096 bytes"
            )));
        }
    }
    Ok(())
}

impl Service {
    /// Validates and stores a publish. Blocking (SQLite, fsync): call it off the async executor.
    pub fn publish(&self, input: PublishInput) -> Result<PublishOutcome, ServiceError> {
        let (record, infos) = self.validate(input)?;
        let _guard = self.publish_lock.lock().expect("publish lock poisoned");
        let events = self.store.commit_publish(&record)?;
        self.apply_to_catalog(&record, &infos, &events);
        let head_seq = match events.last() {
            Some(e) => {
                self.head_seq.store(e.seq, Ordering::Release);
                // No receiver is fine: nobody is subscribed right now.
                let _ = self.live.send(Arc::from(events.clone()));
                e.seq
            }
            None => self.head_seq(),
        };
        tracing::info!(repository = %record.repository, digest = %record.top_digest(), moved = events.len(), head_seq, "published");
        Ok(PublishOutcome {
            digest: record.top_digest().to_string(),
            repository: record.repository.clone(),
            events,
            head_seq,
        })
    }

    /// Checks everything and returns the record to store, with each manifest's parsed form (in
    /// the record's order) for the catalog.
    fn validate(
        &self,
        input: PublishInput,
    ) -> Result<(PublishRecord, Vec<ManifestInfo>), ServiceError> {
        let limits = &self.limits;
        let name = ImageName::parse(&input.image)?;
        if input.tags.len() > limits.max_tags_per_publish {
            return Err(invalid(format!(
                "{} tags in one publish, over the limit of {}",
                input.tags.len(),
                limits.max_tags_per_publish
            )));
        }
        let mut tags = Vec::with_capacity(input.tags.len());
        for t in &input.tags {
            validate_tag(t)?;
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        check_origin(&input.origin)?;
        check_labels(&input.labels)?;
        if input.children.len() > limits.max_children {
            return Err(invalid(format!(
                "{} child manifests, over the limit of {}",
                input.children.len(),
                limits.max_children
            )));
        }

        // Manifests: the top one, then children. Each is verified, parsed, and every manifest it
        // references must be present, so a client pulling any of them never meets a hole.
        let top_digest =
            verified_digest(&input.manifest, "manifest", limits.max_manifest_bytes, true)?;
        let mut manifests: Vec<(ManifestRecord, ManifestInfo)> = Vec::new();
        let top_info = ManifestInfo::parse(
            Some(&input.manifest.media_type)
                .filter(|m| !m.is_empty())
                .map(|s| s.as_str()),
            &input.manifest.data,
        )?;
        manifests.push((record(top_digest, &top_info, input.manifest.data), top_info));
        let mut children: HashMap<String, Content> = HashMap::new();
        for c in input.children {
            let d = verified_digest(&c, "child manifest", limits.max_manifest_bytes, false)?;
            children.insert(d, c);
        }
        let mut blobs: HashMap<String, Content> = HashMap::new();
        for b in input.blobs {
            let d = verified_digest(&b, "blob", limits.max_blob_bytes, false)?;
            blobs.insert(d, b);
        }
        let mut stored_blobs = Vec::new();
        let mut i = 0;
        while i < manifests.len() {
            let info = manifests[i].1.clone();
            match &info.kind {
                Kind::Index { manifests: refs } => {
                    for r in refs {
                        let Some(c) = children.remove(&r.digest) else {
                            if manifests.iter().any(|(m, _)| m.digest == r.digest) {
                                continue;
                            }
                            return Err(invalid(format!(
                                "index {} lists manifest {} which the publish does not include",
                                manifests[i].0.digest, r.digest
                            )));
                        };
                        check_size("manifest", &r.digest, &c.data, r.size, "the index")?;
                        let child_info = ManifestInfo::parse(Some(&r.media_type), &c.data)?;
                        manifests.push((record(r.digest.clone(), &child_info, c.data), child_info));
                    }
                }
                Kind::Image { config, .. } => {
                    if stored_blobs
                        .iter()
                        .any(|b: &BlobRecord| b.digest == config.digest)
                    {
                        i += 1;
                        continue;
                    }
                    let Some(b) = blobs.remove(&config.digest) else {
                        return Err(invalid(format!(
                            "manifest {} references config {} which the publish does not include",
                            manifests[i].0.digest, config.digest
                        )));
                    };
                    check_size(
                        "config",
                        &config.digest,
                        &b.data,
                        config.size,
                        "the manifest",
                    )?;
                    stored_blobs.push(BlobRecord {
                        digest: config.digest.clone(),
                        media_type: config.media_type.clone(),
                        data: b.data,
                    });
                }
            }
            i += 1;
        }
        if let Some(d) = children.keys().next() {
            return Err(invalid(format!(
                "child manifest {d} is not listed by the index"
            )));
        }
        if let Some(d) = blobs.keys().next() {
            return Err(invalid(format!(
                "blob {d} is not referenced by any manifest"
            )));
        }

        // Labels: the (first) image config's, with the publisher's on top.
        let mut labels = stored_blobs
            .first()
            .map(|b| config_labels(&b.data))
            .unwrap_or_default();
        labels.extend(input.labels);
        check_labels(&labels)?;

        let (manifests, infos) = manifests.into_iter().unzip();
        let record = PublishRecord {
            repository: name.ferry_repository(),
            image: name.to_string(),
            origin: input.origin,
            manifests,
            blobs: stored_blobs,
            tags,
            labels,
        };
        Ok((record, infos))
    }

    fn apply_to_catalog(
        &self,
        rec: &PublishRecord,
        infos: &[ManifestInfo],
        events: &[StoredEvent],
    ) {
        let mut catalog = self.catalog.write().expect("catalog lock poisoned");
        let repo = catalog.repos.entry(rec.repository.clone()).or_default();
        repo.image.clone_from(&rec.image);
        if rec.origin.is_some() {
            repo.origin.clone_from(&rec.origin);
        }
        for (i, (m, info)) in rec.manifests.iter().zip(infos).enumerate() {
            let labels = if i == 0 {
                rec.labels.clone()
            } else {
                BTreeMap::new()
            };
            let (entry, layers) = manifest_entry(
                m.digest.clone(),
                m.media_type.clone(),
                m.artifact_type.clone(),
                m.subject.clone(),
                labels,
                m.data.clone(),
                Some(info),
            );
            repo.insert_manifest(entry, layers);
        }
        for b in &rec.blobs {
            repo.blobs.insert(
                b.digest.clone(),
                BlobMeta {
                    media_type: b.media_type.clone(),
                    size: b.data.len() as u64,
                },
            );
        }
        for e in events {
            repo.tags.insert(
                e.tag.clone(),
                TagEntry {
                    digest: e.digest.clone(),
                    seq: e.seq,
                    updated_at_ms: e.created_at_ms,
                },
            );
        }
    }
}

fn record(digest: String, info: &ManifestInfo, data: Vec<u8>) -> ManifestRecord {
    ManifestRecord {
        digest,
        media_type: info.media_type.clone(),
        artifact_type: info.artifact_type.clone(),
        subject: info.subject.clone(),
        data,
    }
}
