//! Publish validation, in steps: the tags, the origin and labels, each document's digest and size
//! cap, the manifest graph walked from the top-level manifest (every child and config present,
//! nothing sent that is not reachable), and the release's labels. Nothing here touches the store.

use std::collections::{BTreeMap, HashMap};

use ferry_proto::digest::{sha256_digest, verify};
use ferry_proto::manifest::{config_labels, Kind, ManifestInfo, Ref};
use ferry_proto::names::{validate_tag, Shown};
use ferry_proto::reference::ImageName;

use super::publish::{Content, PublishInput};
use super::{Service, ServiceError};
use crate::store::{BlobRecord, ManifestRecord, PublishRecord};

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
            format!("{what} {}", Shown(&c.digest)),
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
                "origin registry URL {} must start with http:// or https:// and be at most 2048 bytes",
                Shown(url)
            )));
        }
        ferry_proto::names::validate_repository(repo)?;
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>, limit: usize) -> Result<(), ServiceError> {
    if labels.len() > limit {
        return Err(invalid(format!(
            "{} labels, over the limit of {limit}; keep release metadata in fewer labels",
            labels.len()
        )));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > 256 || v.len() > 4096 {
            return Err(invalid(format!(
                "label {}: keys are 1 to 256 bytes and values at most 4096 bytes",
                Shown(k)
            )));
        }
    }
    Ok(())
}

/// The documents of a publish after their digests and size caps were checked, before the manifest
/// graph is walked: each child and blob by its verified digest.
struct Verified {
    top: (ManifestRecord, ManifestInfo),
    children: HashMap<String, Content>,
    blobs: HashMap<String, Content>,
}

/// The manifests and blobs a publish stores, found by walking from the top-level manifest.
struct Graph {
    /// The top-level manifest first, then index children in the order the indexes list them.
    manifests: Vec<(ManifestRecord, ManifestInfo)>,
    /// Config blobs, each once.
    blobs: Vec<BlobRecord>,
}

impl Service {
    /// Checks everything and returns the record to store, with each manifest's parsed form (in
    /// the record's order) for the catalog. Nothing is stored here.
    pub(super) fn validate(
        &self,
        input: PublishInput,
    ) -> Result<(PublishRecord, Vec<ManifestInfo>), ServiceError> {
        let name = ImageName::parse(&input.image)?;
        let tags = self.checked_tags(&input.tags)?;
        check_origin(&input.origin)?;
        check_labels(&input.labels, self.limits.max_labels)?;
        let verified = self.verify_documents(input.manifest, input.children, input.blobs)?;
        let graph = walk_manifest_graph(verified)?;
        let labels = release_labels(&graph.blobs, input.labels, self.limits.max_labels)?;
        let (manifests, infos) = graph.manifests.into_iter().unzip();
        let record = PublishRecord {
            repository: name.ferry_repository(),
            image: name.to_string(),
            origin: input.origin,
            manifests,
            blobs: graph.blobs,
            tags,
            labels,
        };
        Ok((record, infos))
    }

    /// The tags to move: each valid, within the per-publish cap, duplicates dropped.
    fn checked_tags(&self, tags: &[String]) -> Result<Vec<String>, ServiceError> {
        let limit = self.limits.max_tags_per_publish;
        if tags.len() > limit {
            return Err(invalid(format!(
                "{} tags in one publish, over the limit of {limit}",
                tags.len()
            )));
        }
        let mut out = Vec::with_capacity(tags.len());
        for t in tags {
            validate_tag(t)?;
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        Ok(out)
    }

    /// Checks every document's size cap and digest, and parses the top-level manifest.
    fn verify_documents(
        &self,
        manifest: Content,
        children: Vec<Content>,
        blobs: Vec<Content>,
    ) -> Result<Verified, ServiceError> {
        let limits = &self.limits;
        if children.len() > limits.max_children {
            return Err(invalid(format!(
                "{} child manifests, over the limit of {}",
                children.len(),
                limits.max_children
            )));
        }
        let top_digest = verified_digest(&manifest, "manifest", limits.max_manifest_bytes, true)?;
        let declared = Some(manifest.media_type.as_str()).filter(|m| !m.is_empty());
        let top_info = ManifestInfo::parse(declared, &manifest.data)?;
        let top = (record(top_digest, &top_info, manifest.data), top_info);
        let mut by_digest = HashMap::new();
        for c in children {
            let d = verified_digest(&c, "child manifest", limits.max_manifest_bytes, false)?;
            by_digest.insert(d, c);
        }
        let mut blob_by_digest = HashMap::new();
        for b in blobs {
            let d = verified_digest(&b, "blob", limits.max_blob_bytes, false)?;
            blob_by_digest.insert(d, b);
        }
        Ok(Verified {
            top,
            children: by_digest,
            blobs: blob_by_digest,
        })
    }
}

/// Walks from the top-level manifest: every manifest an index lists and every config an image
/// names must be in the publish, so a client pulling any of them never meets a hole; and every
/// document sent must be reachable, so nothing is stored that nobody can find.
fn walk_manifest_graph(mut v: Verified) -> Result<Graph, ServiceError> {
    let mut graph = Graph {
        manifests: vec![v.top],
        blobs: Vec::new(),
    };
    let mut i = 0;
    while i < graph.manifests.len() {
        let digest = graph.manifests[i].0.digest.clone();
        match graph.manifests[i].1.kind.clone() {
            Kind::Index { manifests: refs } => {
                for r in refs {
                    if let Some(child) = take_child(&mut v.children, &graph, &digest, &r)? {
                        graph.manifests.push(child);
                    }
                }
            }
            Kind::Image { config, .. } => {
                if let Some(blob) = take_config(&mut v.blobs, &graph, &digest, &config)? {
                    graph.blobs.push(blob);
                }
            }
        }
        i += 1;
    }
    if let Some(d) = v.children.keys().next() {
        return Err(invalid(format!(
            "child manifest {d} is not listed by the index"
        )));
    }
    if let Some(d) = v.blobs.keys().next() {
        return Err(invalid(format!(
            "blob {d} is not referenced by any manifest"
        )));
    }
    Ok(graph)
}

/// The child manifest `r` that index `index` lists, parsed as the index declares it; None when
/// the walk already holds it (an index may list a manifest twice).
fn take_child(
    children: &mut HashMap<String, Content>,
    graph: &Graph,
    index: &str,
    r: &Ref,
) -> Result<Option<(ManifestRecord, ManifestInfo)>, ServiceError> {
    let Some(c) = children.remove(&r.digest) else {
        if graph.manifests.iter().any(|(m, _)| m.digest == r.digest) {
            return Ok(None);
        }
        return Err(invalid(format!(
            "index {index} lists manifest {} which the publish does not include",
            r.digest
        )));
    };
    check_size("manifest", &r.digest, &c.data, r.size, "the index")?;
    let info = ManifestInfo::parse(Some(&r.media_type), &c.data)?;
    Ok(Some((record(r.digest.clone(), &info, c.data), info)))
}

/// The config blob `config` that image `manifest` names; None when the walk already holds it
/// (images of one index often share a config).
fn take_config(
    blobs: &mut HashMap<String, Content>,
    graph: &Graph,
    manifest: &str,
    config: &Ref,
) -> Result<Option<BlobRecord>, ServiceError> {
    if graph.blobs.iter().any(|b| b.digest == config.digest) {
        return Ok(None);
    }
    let Some(b) = blobs.remove(&config.digest) else {
        return Err(invalid(format!(
            "manifest {manifest} references config {} which the publish does not include",
            config.digest
        )));
    };
    check_size(
        "config",
        &config.digest,
        &b.data,
        config.size,
        "the manifest",
    )?;
    Ok(Some(BlobRecord {
        digest: config.digest.clone(),
        media_type: config.media_type.clone(),
        data: b.data,
    }))
}

/// The release's labels: the (first) image config's, with the publisher's on top.
fn release_labels(
    blobs: &[BlobRecord],
    publisher: BTreeMap<String, String>,
    max_labels: usize,
) -> Result<BTreeMap<String, String>, ServiceError> {
    let mut labels = blobs
        .first()
        .map(|b| config_labels(&b.data))
        .unwrap_or_default();
    labels.extend(publisher);
    check_labels(&labels, max_labels)?;
    Ok(labels)
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
