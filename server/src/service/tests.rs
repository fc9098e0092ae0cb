//! Service tests on a real store in a temp dir: publish validation refusing hostile input with
//! nothing stored, and the catalog's manifests, referrers and layer origins.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_proto::digest::{sha256_digest, DigestError};
use ferry_proto::manifest::{ManifestError, OCI_INDEX, OCI_MANIFEST};
use serde_json::json;

use super::*;
use crate::store::Store;

const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const IMAGE: &str = "registry.example.com/team/app";
const REPO: &str = "registry.example.com/team/app";

fn content(media_type: &str, data: Vec<u8>) -> Content {
    Content {
        digest: sha256_digest(&data),
        media_type: media_type.to_string(),
        data,
    }
}

fn layer_digest(n: u32) -> String {
    sha256_digest(format!("layer {n}").as_bytes())
}

/// An image manifest (config and manifest) whose one layer is `layer_digest(layer)`; `n` makes
/// the config unique. Extra manifest fields (artifactType, subject) come from `extra`.
fn image(n: u32, layer: u32, extra: serde_json::Value) -> (Content, Content) {
    let config = content(
        CONFIG_TYPE,
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": { "Labels": { "n": n.to_string() } },
        }))
        .unwrap(),
    );
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.data.len() },
        "layers": [{ "mediaType": LAYER_TYPE, "digest": layer_digest(layer), "size": 100 }],
    });
    if let serde_json::Value::Object(fields) = extra {
        for (k, v) in fields {
            manifest[k] = v;
        }
    }
    (
        content(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        config,
    )
}

fn release(n: u32, tag: &str) -> PublishInput {
    let (manifest, config) = image(n, n, json!({}));
    PublishInput {
        image: IMAGE.into(),
        manifest,
        blobs: vec![config],
        tags: vec![tag.into()],
        ..Default::default()
    }
}

/// An index over one image, with the child and its config.
fn index_release(n: u32, tag: &str) -> PublishInput {
    let (child, config) = image(n, n, json!({}));
    let index = content(
        OCI_INDEX,
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{ "mediaType": OCI_MANIFEST, "digest": child.digest, "size": child.data.len() }],
        }))
        .unwrap(),
    );
    PublishInput {
        image: IMAGE.into(),
        manifest: index,
        children: vec![child],
        blobs: vec![config],
        tags: vec![tag.into()],
        ..Default::default()
    }
}

fn origin(url: &str, repo: &str) -> Option<(String, String)> {
    Some((url.to_string(), repo.to_string()))
}

struct Fixture {
    service: Service,
    _dir: tempfile::TempDir,
}

fn limits() -> Limits {
    Limits {
        max_manifest_bytes: 64 * 1024,
        max_blob_bytes: 1024,
        max_tags_per_publish: 3,
        max_children: 2,
        max_labels: 4,
        live_buffer: 16,
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    Fixture {
        service: Service::load(store, limits()).unwrap(),
        _dir: dir,
    }
}

/// What a refused publish must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    head_seq: u64,
    log: (u64, u64, u64),
    manifests_in_store: usize,
    repositories: Vec<String>,
    tags: Vec<(String, String)>,
    manifests_in_catalog: usize,
}

fn observe(s: &Service) -> Observed {
    let catalog = s.catalog.read().unwrap();
    Observed {
        head_seq: s.head_seq(),
        log: s.store().event_log_extent().unwrap(),
        manifests_in_store: s.store().load_state().unwrap().manifests.len(),
        repositories: catalog.repos.keys().cloned().collect(),
        tags: s
            .current_tags(|_| true)
            .1
            .into_iter()
            .map(|t| (t.tag, t.digest))
            .collect(),
        manifests_in_catalog: catalog.repos.values().map(|r| r.manifests.len()).sum(),
    }
}

/// A publish that breaks one rule each, with a check of the error it must get.
type Case = (&'static str, PublishInput, fn(&ServiceError) -> bool);

fn hostile_inputs() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();

    let mut p = release(10, "1.0.0");
    p.manifest.digest = sha256_digest(b"something else");
    cases.push(("wrong digest", p, |e| {
        matches!(e, ServiceError::Digest(DigestError::Mismatch { .. }))
    }));

    let mut p = release(11, "1.0.0");
    p.image = "registry.example.com/Team/App".into();
    cases.push(("bad name", p, |e| matches!(e, ServiceError::Reference(_))));

    let mut p = release(12, "1.0.0");
    p.tags = vec!["v1:2".into()];
    cases.push(("bad tag", p, |e| matches!(e, ServiceError::NameInvalid(_))));

    let mut p = release(13, "1.0.0");
    p.tags = (0..4).map(|i| format!("t{i}")).collect();
    cases.push(("too many tags", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("4 tags in one publish, over the limit of 3"))
    }));

    let mut p = index_release(14, "1.0.0");
    let extra = image(15, 15, json!({})).0;
    let more = image(16, 16, json!({})).0;
    p.children.extend([extra, more]);
    cases.push(("too many children", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("3 child manifests, over the limit of 2"))
    }));

    let mut p = release(17, "1.0.0");
    p.labels = (0..5).map(|i| (format!("k{i}"), "v".to_string())).collect();
    cases.push(("too many labels", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("5 labels, over the limit of 4"))
    }));

    let mut p = release(18, "1.0.0");
    p.labels = BTreeMap::from([(String::new(), "v".to_string())]);
    cases.push((
        "empty label key",
        p,
        |e| matches!(e, ServiceError::InvalidPublish(m) if m.contains("label \"\"")),
    ));

    let mut p = release(19, "1.0.0");
    p.blobs.push(content(CONFIG_TYPE, vec![b'x'; 2048]));
    cases.push(("oversized blob", p, |e| {
        matches!(
            e,
            ServiceError::TooLarge {
                size: 2048,
                limit: 1024,
                ..
            }
        )
    }));

    let mut p = release(20, "1.0.0");
    p.manifest.media_type = OCI_INDEX.into();
    cases.push(("media type contradicting what it was sent as", p, |e| {
        matches!(
            e,
            ServiceError::Manifest(ManifestError::MediaTypeMismatch { .. })
        )
    }));

    let mut p = release(21, "1.0.0");
    p.blobs.clear();
    cases.push((
        "missing config blob",
        p,
        |e| matches!(e, ServiceError::InvalidPublish(m) if m.contains("references config")),
    ));

    let mut p = index_release(22, "1.0.0");
    p.children.clear();
    cases.push(("missing index child", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("which the publish does not include"))
    }));

    let mut p = release(23, "1.0.0");
    p.children.push(image(24, 24, json!({})).0);
    cases.push(("unlisted child", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("is not listed by the index"))
    }));

    let mut p = release(25, "1.0.0");
    p.blobs.push(content(CONFIG_TYPE, b"{}".to_vec()));
    cases.push(("unreferenced blob", p, |e| {
        matches!(e, ServiceError::InvalidPublish(m) if m.contains("is not referenced by any manifest"))
    }));

    let mut p = release(26, "1.0.0");
    let config = &p.blobs[0];
    p.manifest = content(
        OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.data.len() + 1 },
            "layers": [],
        }))
        .unwrap(),
    );
    cases.push((
        "config size contradicting its descriptor",
        p,
        |e| matches!(e, ServiceError::InvalidPublish(m) if m.contains("but the manifest says")),
    ));

    let mut p = release(27, "1.0.0");
    p.origin = origin("ftp://origin.example.com", "team/app");
    cases.push((
        "origin that is not http(s)",
        p,
        |e| matches!(e, ServiceError::InvalidPublish(m) if m.contains("must start with http://")),
    ));

    cases
}

#[test]
fn hostile_publishes_are_refused_and_store_nothing() {
    let f = fixture();
    f.service.publish(release(1, "0.9.0")).unwrap();
    let before = observe(&f.service);
    assert_eq!(before.head_seq, 1);
    for (what, input, expected) in hostile_inputs() {
        let err = f
            .service
            .publish(input)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(expected(&err), "{what}: unexpected error {err:?}");
        assert_eq!(observe(&f.service), before, "{what}: something was stored");
    }
    // Every case is refused for its own reason: the same inputs, repaired, are accepted.
    f.service.publish(release(10, "1.0.0")).unwrap();
    f.service.publish(index_release(14, "1.1.0")).unwrap();
    assert_eq!(f.service.head_seq(), 3);
}

#[test]
fn a_publish_stores_the_index_its_children_and_the_config() {
    let f = fixture();
    let input = index_release(1, "1.0.0");
    let child = input.children[0].digest.clone();
    let config = input.blobs[0].digest.clone();
    let out = f.service.publish(input).unwrap();
    assert_eq!(out.repository, REPO);
    assert_eq!(out.events.len(), 1);
    let EventKind::TagMoved(m) = &out.events[0].kind else {
        panic!("a tag move");
    };
    assert_eq!(
        (m.tag.as_str(), m.digest.as_str()),
        ("1.0.0", out.digest.as_str())
    );
    assert_eq!(m.media_type, OCI_INDEX);
    assert_eq!(m.labels.get("n").map(String::as_str), Some("1"));
    assert!(f.service.manifest(REPO, &child).is_ok());
    assert!(matches!(
        f.service.blob(REPO, &config).unwrap(),
        BlobAnswer::Stored { .. }
    ));
    // Re-publishing the same digest to the same tag moves nothing.
    let again = f.service.publish(index_release(1, "1.0.0")).unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.head_seq, 1);
}

#[test]
fn events_and_tag_states_carry_the_artifact_type_and_subject() {
    let f = fixture();
    let rel = f.service.publish(release(1, "1.0.0")).unwrap();
    let (sbom, config) = image(
        2,
        2,
        json!({
            "artifactType": "application/spdx+json",
            "subject": { "mediaType": OCI_MANIFEST, "digest": rel.digest, "size": 10 },
        }),
    );
    let out = f
        .service
        .publish(PublishInput {
            image: IMAGE.into(),
            manifest: sbom,
            blobs: vec![config],
            tags: vec!["sbom".into()],
            ..Default::default()
        })
        .unwrap();
    let live = &out.events[0];
    let replayed = f.service.replay(0, 10).unwrap();
    assert_eq!(&replayed[1], live, "replay equals what went live");
    let EventKind::TagMoved(m) = &live.kind else {
        panic!("a tag move");
    };
    assert_eq!(m.artifact_type.as_deref(), Some("application/spdx+json"));
    assert_eq!(m.subject.as_deref(), Some(rel.digest.as_str()));
    let EventKind::TagMoved(first) = &replayed[0].kind else {
        panic!("a tag move");
    };
    assert_eq!(
        (first.artifact_type.as_deref(), first.subject.as_deref()),
        (None, None)
    );

    let (_, tags) = f.service.current_tags(|_| true);
    let sbom_tag = tags.iter().find(|t| t.tag == "sbom").unwrap();
    assert_eq!(
        sbom_tag.artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert_eq!(sbom_tag.subject.as_deref(), Some(rel.digest.as_str()));
    let release_tag = tags.iter().find(|t| t.tag == "1.0.0").unwrap();
    assert_eq!(release_tag.artifact_type, None);

    // The referrers index finds the artifact by its subject.
    let referrers = f.service.referrers(REPO, &rel.digest, None).unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest, out.digest);
}

fn redirect(s: &Service, layer: u32) -> Option<String> {
    match s.blob(REPO, &layer_digest(layer)) {
        Ok(BlobAnswer::Redirect(url)) => Some(url),
        Ok(BlobAnswer::Stored { .. }) => panic!("a layer is never stored"),
        Err(ServiceError::BlobUnknown { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn layers_redirect_to_the_origin_of_the_manifest_that_references_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = Service::load(store.clone(), limits()).unwrap();
    let mut one = release(1, "1.0.0");
    one.origin = origin("http://one.example.com:5000", "team/app");
    let mut two = release(2, "2.0.0");
    two.origin = origin("https://two.example.com/", "mirror/app");
    s.publish(one).unwrap();
    s.publish(two).unwrap();
    // A release published with no origin: ferry cannot serve its layer.
    s.publish(release(3, "3.0.0")).unwrap();
    let expected = |s: &Service| {
        assert_eq!(
            redirect(s, 1).as_deref(),
            Some(
                format!(
                    "http://one.example.com:5000/v2/team/app/blobs/{}",
                    layer_digest(1)
                )
                .as_str()
            )
        );
        assert_eq!(
            redirect(s, 2).as_deref(),
            Some(
                format!(
                    "https://two.example.com/v2/mirror/app/blobs/{}",
                    layer_digest(2)
                )
                .as_str()
            )
        );
        assert_eq!(redirect(s, 3), None);
    };
    expected(&s);
    // The same answers after a restart.
    drop(s);
    let s = Service::load(store, limits()).unwrap();
    expected(&s);
}

#[test]
fn a_shared_layer_follows_the_origin_recorded_last_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = Service::load(store.clone(), limits()).unwrap();
    // Two manifests (different configs) sharing layer 7, from two origins.
    let (m1, c1) = image(1, 7, json!({}));
    let (m2, c2) = image(2, 7, json!({}));
    let publish = |s: &Service, m: &Content, c: &Content, tag: &str, url: &str| {
        s.publish(PublishInput {
            image: IMAGE.into(),
            manifest: m.clone(),
            blobs: vec![c.clone()],
            tags: vec![tag.into()],
            origin: origin(url, "team/app"),
            ..Default::default()
        })
        .unwrap();
    };
    publish(&s, &m1, &c1, "1.0.0", "http://one:5000");
    publish(&s, &m2, &c2, "2.0.0", "http://two:5000");
    let latest = |s: &Service| redirect(s, 7).unwrap();
    assert!(latest(&s).starts_with("http://two:5000/"), "{}", latest(&s));
    // Re-publishing the first manifest from a third origin makes it the latest.
    publish(&s, &m1, &c1, "1.0.0", "http://three:5000");
    assert!(
        latest(&s).starts_with("http://three:5000/"),
        "{}",
        latest(&s)
    );
    assert_eq!(
        s.manifest(REPO, "1.0.0")
            .unwrap()
            .origin
            .as_ref()
            .unwrap()
            .registry_url,
        "http://three:5000"
    );
    // The catalog loaded from the store makes the same choice.
    drop(s);
    let s = Service::load(store, limits()).unwrap();
    assert!(
        latest(&s).starts_with("http://three:5000/"),
        "{}",
        latest(&s)
    );
    assert_eq!(
        s.manifest(REPO, "2.0.0")
            .unwrap()
            .origin
            .as_ref()
            .unwrap()
            .registry_url,
        "http://two:5000"
    );
}

// Regression (review of issue 9): re-publishing a manifest without an origin took back, in
// memory only, the shared layers a later manifest had moved to its origin; after a restart the
// store (which leaves origin_order alone) pointed them at the later origin again.
#[test]
fn a_re_publish_without_an_origin_moves_no_layer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = Service::load(store.clone(), limits()).unwrap();
    let (m1, c1) = image(1, 7, json!({}));
    let (m2, c2) = image(2, 7, json!({}));
    let publish = |s: &Service, m: &Content, c: &Content, tag: &str, url: Option<&str>| {
        s.publish(PublishInput {
            image: IMAGE.into(),
            manifest: m.clone(),
            blobs: vec![c.clone()],
            tags: vec![tag.into()],
            origin: url.and_then(|u| origin(u, "team/app")),
            ..Default::default()
        })
        .unwrap();
    };
    publish(&s, &m1, &c1, "1.0.0", Some("http://one:5000"));
    publish(&s, &m2, &c2, "2.0.0", Some("http://two:5000"));
    publish(&s, &m1, &c1, "1.0.1", None);
    let latest = |s: &Service| redirect(s, 7).unwrap();
    assert!(latest(&s).starts_with("http://two:5000/"), "{}", latest(&s));
    drop(s);
    let s = Service::load(store, limits()).unwrap();
    assert!(latest(&s).starts_with("http://two:5000/"), "{}", latest(&s));
}

fn entry(digest: &str, labels: &[(&str, &str)], origin: Option<Origin>) -> ManifestEntry {
    ManifestEntry {
        created_at_ms: 0,
        digest: digest.into(),
        media_type: OCI_MANIFEST.into(),
        artifact_type: None,
        subject: None,
        annotations: BTreeMap::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        data: Bytes::from_static(b"{}"),
        origin,
    }
}

#[test]
fn insert_manifest_keeps_labels_and_origin_a_re_publish_does_not_name() {
    let mut repo = RepoView::default();
    let one = Origin::from(("http://one".to_string(), "a".to_string()));
    repo.insert_manifest(
        entry("sha256:aa", &[("team", "web")], Some(one.clone())),
        ["sha256:l1".to_string()],
    );
    // Re-published as an index child: no labels, no origin.
    repo.insert_manifest(entry("sha256:aa", &[], None), ["sha256:l1".to_string()]);
    let m = &repo.manifests["sha256:aa"];
    assert_eq!(m.labels.get("team").map(String::as_str), Some("web"));
    assert_eq!(m.origin.as_ref(), Some(&one));
    assert_eq!(repo.layer_origins["sha256:l1"], one);
    // New labels replace the old.
    repo.insert_manifest(entry("sha256:aa", &[("team", "api")], None), Vec::new());
    assert_eq!(repo.manifests["sha256:aa"].labels["team"], "api");
    assert_eq!(repo.manifests["sha256:aa"].origin.as_ref(), Some(&one));
}

#[test]
fn the_referrers_index_lists_each_referrer_once() {
    let mut repo = RepoView::default();
    let mut sig = entry("sha256:sig", &[], None);
    sig.subject = Some("sha256:app".into());
    sig.artifact_type = Some("application/vnd.example.signature".into());
    repo.insert_manifest(sig, Vec::new());
    let mut again = entry("sha256:sig", &[], None);
    again.subject = Some("sha256:app".into());
    repo.insert_manifest(again, Vec::new());
    let mut sbom = entry("sha256:sbom", &[], None);
    sbom.subject = Some("sha256:app".into());
    repo.insert_manifest(sbom, Vec::new());
    assert_eq!(repo.referrers["sha256:app"], ["sha256:sig", "sha256:sbom"]);
    assert!(!repo.referrers.contains_key("sha256:sig"));
}

#[test]
fn an_origin_builds_blob_urls_with_one_slash() {
    let o = Origin::from(("https://ghcr.io/".to_string(), "acme/app".to_string()));
    assert_eq!(
        o.blob_url("sha256:ab"),
        "https://ghcr.io/v2/acme/app/blobs/sha256:ab"
    );
}
