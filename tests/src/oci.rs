//! OCI image layouts written by hand, so tests control every byte and know every digest:
//! single-platform images (one random, uncompressed tar layer and a labelled config),
//! multi-arch indexes, and OCI 1.1 artifacts that point at a subject.
//!
//! Blobs are written as they are added; [`OciLayout::write`] (also run by
//! [`OciLayout::tag`]) writes `oci-layout` and `index.json`. JSON is compact `serde_json`
//! output and every digest is the sha256 of the exact bytes on disk.
//!
//! Layers are uncompressed tars. skopeo 1.9 pushes them to a registry unchanged, but gzips
//! them when the destination is another `oci:` layout (new digests) unless told not to;
//! [`crate::skopeo::copy`] passes `--preserve-digests` so copies never rewrite anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Media type of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index (a multi-arch image).
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed tar layer, the only kind written here.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of the empty `{}` config of an OCI 1.1 artifact.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The index.json annotation that names a tag in an OCI layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Timestamp used for every `created` field unless a spec says otherwise.
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// "sha256:<hex>" of `bytes`, computed here rather than with ferry's own code so that tests
/// check ferry against an independent implementation.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What to put in an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The config's and platform's `architecture`: `amd64`, `arm64`, …
    pub arch: String,
    /// The config's and platform's `os`: `linux`, …
    pub os: String,
    /// The platform's `variant` (`v8` for arm64), if any.
    pub variant: Option<String>,
    /// Go into the config's `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// Bytes of random content in the layer's single file (the tar is a little larger).
    pub layer_size: usize,
    /// RFC 3339 `created` of the config.
    pub created: String,
}

impl Default for ImageSpec {
    /// linux/amd64, no labels, a 1 KiB random file, created at [`FIXED_CREATED`].
    fn default() -> Self {
        ImageSpec {
            arch: "amd64".into(),
            os: "linux".into(),
            variant: None,
            labels: BTreeMap::new(),
            layer_size: 1024,
            created: FIXED_CREATED.into(),
        }
    }
}

/// Something added to a layout: an image manifest, an index or an artifact manifest.
#[derive(Debug, Clone)]
pub struct ImageDesc {
    /// [`MEDIA_TYPE_MANIFEST`] or [`MEDIA_TYPE_INDEX`].
    pub media_type: String,
    /// "sha256:…" of `manifest_bytes`.
    pub manifest_digest: String,
    /// None for an index; the empty config's digest for an artifact.
    pub config_digest: Option<String>,
    /// Layers of an image or artifact; empty for an index.
    pub layer_digests: Vec<String>,
    /// The manifest exactly as written to the layout's blobs.
    pub manifest_bytes: Vec<u8>,
    /// Length of `manifest_bytes`.
    pub size: u64,
    /// `{"architecture","os"[,"variant"]}` for images; None for indexes and artifacts.
    pub platform: Option<Value>,
    /// Set for artifacts.
    pub artifact_type: Option<String>,
}

impl ImageDesc {
    /// The OCI descriptor pointing at this manifest (with platform / artifactType if set).
    pub fn descriptor(&self) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.manifest_digest,
            "size": self.size,
        });
        if let Some(p) = &self.platform {
            d["platform"] = p.clone();
        }
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = json!(t);
        }
        d
    }

    /// The manifest parsed back as JSON.
    pub fn manifest_json(&self) -> Value {
        serde_json::from_slice(&self.manifest_bytes).expect("manifests written here are JSON")
    }
}

/// An OCI image layout directory being built.
pub struct OciLayout {
    dir: PathBuf,
    /// index.json entries, in tagging order.
    tagged: Vec<Value>,
}

impl OciLayout {
    /// Starts a layout in `dir` (created if missing; existing blobs are left alone).
    pub fn new(dir: impl Into<PathBuf>) -> OciLayout {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let layout = OciLayout {
            dir,
            tagged: Vec::new(),
        };
        layout.write();
        layout
    }

    /// The layout's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The skopeo reference to a tag in this layout: `oci:DIR:TAG`.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// Writes `bytes` as a blob; returns its digest ("sha256:…").
    pub fn add_blob(&mut self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        digest
    }

    /// Adds an image: a tar layer holding one file of `spec.layer_size` random bytes, a
    /// config carrying the platform, labels and `created`, and the manifest tying them.
    pub fn add_image(&mut self, spec: ImageSpec) -> ImageDesc {
        let layer = tar_with_one_file("ferry-test/random.bin", &random_bytes(spec.layer_size));
        let layer_digest = self.add_blob(&layer);

        let mut platform = json!({ "architecture": spec.arch, "os": spec.os });
        if let Some(v) = &spec.variant {
            platform["variant"] = json!(v);
        }
        let mut config = platform.clone();
        config["created"] = json!(spec.created);
        config["config"] = json!({ "Labels": spec.labels });
        // Uncompressed layers: the diff_id is the layer digest itself.
        config["rootfs"] = json!({ "type": "layers", "diff_ids": [layer_digest] });
        config["history"] = json!([{ "created": spec.created, "created_by": "ferry-tests" }]);
        let config = to_bytes(&config);
        let config_digest = self.add_blob(&config);

        let manifest = to_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": { "mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config.len() },
            "layers": [{ "mediaType": MEDIA_TYPE_LAYER_TAR, "digest": layer_digest, "size": layer.len() }],
        }));
        ImageDesc {
            media_type: MEDIA_TYPE_MANIFEST.into(),
            manifest_digest: self.add_blob(&manifest),
            config_digest: Some(config_digest),
            layer_digests: vec![layer_digest],
            size: manifest.len() as u64,
            manifest_bytes: manifest,
            platform: Some(platform),
            artifact_type: None,
        }
    }

    /// Adds an image index over `children` (their descriptors carry their platforms).
    pub fn add_index(&mut self, children: &[ImageDesc]) -> ImageDesc {
        let manifests: Vec<Value> = children.iter().map(ImageDesc::descriptor).collect();
        let index = to_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": manifests,
        }));
        ImageDesc {
            media_type: MEDIA_TYPE_INDEX.into(),
            manifest_digest: self.add_blob(&index),
            config_digest: None,
            layer_digests: Vec::new(),
            size: index.len() as u64,
            manifest_bytes: index,
            platform: None,
            artifact_type: None,
        }
    }

    /// Adds an OCI 1.1 artifact (e.g. a signature or SBOM) whose `subject` is `subject`: an
    /// image manifest with `artifactType`, the empty config `{}` and the empty descriptor as
    /// its one layer, as the image-spec recommends for artifacts without content. A random
    /// annotation keeps two artifacts of the same type for the same subject distinct.
    pub fn add_artifact_with_subject(
        &mut self,
        subject: &ImageDesc,
        artifact_type: &str,
    ) -> ImageDesc {
        let empty = self.add_blob(b"{}");
        let empty_desc = json!({ "mediaType": MEDIA_TYPE_EMPTY, "digest": empty, "size": 2 });
        let manifest = to_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "artifactType": artifact_type,
            "config": empty_desc,
            "layers": [empty_desc],
            "subject": subject.descriptor(),
            "annotations": {
                "org.opencontainers.image.created": FIXED_CREATED,
                "dev.ferry.tests.nonce": hex::encode(random_bytes(8)),
            },
        }));
        ImageDesc {
            media_type: MEDIA_TYPE_MANIFEST.into(),
            manifest_digest: self.add_blob(&manifest),
            config_digest: Some(empty.clone()),
            layer_digests: vec![empty],
            size: manifest.len() as u64,
            manifest_bytes: manifest,
            platform: None,
            artifact_type: Some(artifact_type.into()),
        }
    }

    /// Names `desc` as `ref_name` in index.json (replacing an earlier entry of that name)
    /// and writes index.json.
    pub fn tag(&mut self, desc: &ImageDesc, ref_name: &str) {
        self.tagged
            .retain(|d| d["annotations"][REF_NAME_ANNOTATION] != ref_name);
        let mut d = desc.descriptor();
        d["annotations"] = json!({ REF_NAME_ANNOTATION: ref_name });
        self.tagged.push(d);
        self.write();
    }

    /// Writes `oci-layout` and `index.json` (blobs are already on disk).
    pub fn write(&self) {
        let index = to_bytes(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": self.tagged,
        }));
        for (name, bytes) in [
            ("oci-layout", &br#"{"imageLayoutVersion":"1.0.0"}"#[..]),
            ("index.json", &index),
        ] {
            let path = self.dir.join(name);
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialising a serde_json::Value cannot fail")
}

/// `len` unpredictable bytes: xorshift64* seeded with sha256(time, pid, counter). Not
/// cryptographic; only meant to make every layer (and so every digest) unique.
pub fn random_bytes(len: usize) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut seed = Sha256::new();
    seed.update(nanos.to_le_bytes());
    seed.update(std::process::id().to_le_bytes());
    seed.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let seed = seed.finalize();
    let mut state = u64::from_le_bytes(seed[..8].try_into().unwrap()) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A POSIX ustar archive holding one regular file (mode 0644, owner root, mtime 0).
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    fn field(header: &mut [u8], at: usize, value: &str) {
        header[at..at + value.len()].copy_from_slice(value.as_bytes());
    }
    assert!(name.len() < 100, "tar names here fit the 100-byte field");
    let mut header = [0u8; 512];
    field(&mut header, 0, name);
    field(&mut header, 100, "0000644\0");
    field(&mut header, 108, "0000000\0");
    field(&mut header, 116, "0000000\0");
    field(&mut header, 124, &format!("{:011o}\0", content.len()));
    field(&mut header, 136, "00000000000\0");
    field(&mut header, 148, "        "); // checksum is computed with this field as spaces
    header[156] = b'0';
    field(&mut header, 257, "ustar\0");
    field(&mut header, 263, "00");
    field(&mut header, 265, "root");
    field(&mut header, 297, "root");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, &format!("{sum:06o}\0 "));

    let padded = content.len().div_ceil(512) * 512;
    let mut tar = Vec::with_capacity(512 + padded + 1024);
    tar.extend_from_slice(&header);
    tar.extend_from_slice(content);
    tar.resize(512 + padded + 1024, 0); // padding, then two zero blocks ending the archive
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_read_by_system_tar() {
        let dir = tempfile::tempdir().unwrap();
        let content = random_bytes(700);
        let path = dir.path().join("layer.tar");
        std::fs::write(&path, tar_with_one_file("d/f.bin", &content)).unwrap();
        let listing =
            crate::process::run(std::process::Command::new("tar").arg("-tvf").arg(&path)).unwrap();
        assert!(
            listing.contains("root/root") && listing.contains("700") && listing.contains("d/f.bin"),
            "{listing}"
        );
        crate::process::run(
            std::process::Command::new("tar")
                .arg("-xf")
                .arg(&path)
                .current_dir(dir.path()),
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/f.bin")).unwrap(), content);
    }

    #[test]
    fn digests_match_bytes_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut layout = OciLayout::new(dir.path());
        let labels = BTreeMap::from([("team".to_string(), "payments".to_string())]);
        let amd = layout.add_image(ImageSpec {
            labels,
            ..Default::default()
        });
        let arm = layout.add_image(ImageSpec {
            arch: "arm64".into(),
            variant: Some("v8".into()),
            ..Default::default()
        });
        let index = layout.add_index(&[amd.clone(), arm.clone()]);
        let sig = layout.add_artifact_with_subject(&amd, "application/vnd.example.signature");
        layout.tag(&index, "multi");
        for desc in [&amd, &arm, &index, &sig] {
            let hex = desc.manifest_digest.strip_prefix("sha256:").unwrap();
            let bytes = std::fs::read(dir.path().join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(bytes, desc.manifest_bytes);
            assert_eq!(hex::encode(Sha256::digest(&bytes)), hex);
            assert_eq!(desc.size, bytes.len() as u64);
        }
        assert_ne!(amd.layer_digests, arm.layer_digests, "layers are random");
        assert_eq!(
            index.manifest_json()["manifests"][1]["platform"]["variant"],
            "v8"
        );
        assert_eq!(
            sig.manifest_json()["subject"]["digest"],
            amd.manifest_digest.as_str()
        );
        let index_json: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index_json["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            "multi"
        );
    }
}
