//! Proves the shared helpers work against the real tools: hand-written OCI layouts go
//! through skopeo into a real docker-registry unchanged, and git daemon serves clones and
//! pushes. (gpg and SSH signing are proved by unit tests in `src/gpg.rs`, `src/ssh_signing.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_tests::git::{self, GitDaemon};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::skopeo;

#[test]
fn oci_image_copies_into_origin_with_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(dir.path().join("layout"));
    let labels = BTreeMap::from([(
        "org.opencontainers.image.title".to_string(),
        "app".to_string(),
    )]);
    let image = layout.add_image(ImageSpec {
        labels,
        layer_size: 64 * 1024,
        ..Default::default()
    });
    layout.tag(&image, "v1");

    let local = skopeo::inspect(&layout.reference("v1"), &[]).unwrap();
    assert_eq!(local["Digest"], image.manifest_digest.as_str());
    assert_eq!(local["Labels"]["org.opencontainers.image.title"], "app");
    assert_eq!(local["Architecture"], "amd64");

    let origin = OriginRegistry::start();
    let before = origin.count_requests();
    skopeo::copy(&layout.reference("v1"), &origin.docker_ref("team/app:1")).unwrap();
    assert!(
        origin.count_requests() > before,
        "the push is in the access log:\n{}",
        origin.log_tail(20)
    );
    assert!(origin
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path == "/v2/team/app/manifests/1"));

    assert_eq!(
        skopeo::inspect_raw(&origin.docker_ref("team/app:1")).unwrap(),
        image.manifest_bytes
    );
    assert_eq!(
        skopeo::list_tags(&origin.docker_ref("team/app")).unwrap(),
        vec!["1"]
    );
    let config = skopeo::inspect(&origin.docker_ref("team/app:1"), &["--config"]).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        image.layer_digests[0].as_str()
    );

    let n = origin.count_requests();
    skopeo::inspect_raw(&origin.docker_ref("team/app:1")).unwrap();
    assert!(origin.wait_for_requests(n + 1, Duration::from_secs(5)) > n);
}

#[test]
fn multi_arch_index_copies_with_all_children() {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(dir.path());
    let amd = layout.add_image(ImageSpec::default());
    let arm = layout.add_image(ImageSpec {
        arch: "arm64".into(),
        variant: Some("v8".into()),
        ..Default::default()
    });
    let index = layout.add_index(&[amd.clone(), arm.clone()]);
    layout.tag(&index, "multi");

    let origin = OriginRegistry::start();
    skopeo::copy_all(
        &layout.reference("multi"),
        &origin.docker_ref("team/multi:1"),
    )
    .unwrap();
    assert_eq!(
        skopeo::inspect_raw(&origin.docker_ref("team/multi:1")).unwrap(),
        index.manifest_bytes
    );
    for child in [&amd, &arm] {
        let by_digest = origin.docker_ref(&format!("team/multi@{}", child.manifest_digest));
        assert_eq!(
            skopeo::inspect_raw(&by_digest).unwrap(),
            child.manifest_bytes
        );
    }
    let arm_inspect = skopeo::inspect(
        &origin.docker_ref("team/multi:1"),
        &["--override-arch", "arm64", "--override-variant", "v8"],
    );
    // Without --raw skopeo resolves the index to one platform, but "Digest" stays the
    // digest of what the tag points at: the index.
    let arm_inspect = arm_inspect.unwrap();
    assert_eq!(arm_inspect["Architecture"], "arm64");
    assert_eq!(arm_inspect["Digest"], index.manifest_digest.as_str());
}

#[test]
fn skopeo_errors_carry_stderr() {
    let origin = OriginRegistry::start();
    let err = skopeo::inspect_raw(&origin.docker_ref("team/missing:1")).unwrap_err();
    assert!(format!("{err:#}").contains("manifest unknown"), "{err:#}");
}

#[test]
fn git_daemon_serves_clone_and_push() {
    let base = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(base.path());
    let url = daemon.init_bare_repo_with_files(
        "deploy",
        &[("apps/app.yaml", "image: a\n"), ("README", "hi\n")],
    );
    assert_eq!(url, format!("git://127.0.0.1:{}/deploy.git", daemon.port()));

    let work = tempfile::tempdir().unwrap();
    git::clone(&url, &work.path().join("c1")).unwrap();
    let c1 = work.path().join("c1");
    assert_eq!(git::log(&c1).unwrap().len(), 1);
    assert_eq!(git::show(&c1, "HEAD:apps/app.yaml").unwrap(), "image: a\n");

    let pushed =
        git::commit_file_and_push(&url, "apps/app.yaml", "image: b\n", "human edit").unwrap();
    git::git(&c1, &["pull", "--quiet", "--ff-only"]).unwrap();
    let log = git::log(&c1).unwrap();
    assert_eq!(log[0], format!("{pushed} human edit"), "{log:?}");
    assert_eq!(git::show(&c1, "HEAD:apps/app.yaml").unwrap(), "image: b\n");
    let on_server = git::git(&daemon.repo_path("deploy"), &["rev-parse", "main"]).unwrap();
    assert_eq!(on_server.trim(), pushed);
}

#[test]
fn artifact_with_subject_copies_into_origin_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(dir.path());
    let image = layout.add_image(ImageSpec::default());
    let sig = layout.add_artifact_with_subject(&image, "application/vnd.example.signature");
    layout.tag(&image, "v1");
    layout.tag(&sig, "sig");

    let origin = OriginRegistry::start();
    skopeo::copy(&layout.reference("v1"), &origin.docker_ref("team/app:1")).unwrap();
    skopeo::copy(&layout.reference("sig"), &origin.docker_ref("team/app:sig")).unwrap();
    let raw = skopeo::inspect_raw(&origin.docker_ref("team/app:sig")).unwrap();
    assert_eq!(raw, sig.manifest_bytes);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["subject"]["digest"],
        image.manifest_digest.as_str()
    );
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.example.signature"
    );

    // skopeo 1.9 reads artifacts only raw: its image view refuses a non-image config.
    let err = skopeo::inspect(&layout.reference("sig"), &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("unsupported image-specific operation on artifact"),
        "{err:#}"
    );
}
