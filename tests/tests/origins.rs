//! Issue 9: layer redirects follow the origin of each published manifest, not the repository's
//! last publish. Real docker-registry origins, ferry-server and skopeo on loopback.

use std::path::Path;

use ferry_tests::ferry::FerryServer;
use ferry_tests::http;
use ferry_tests::oci::{sha256_digest, ImageDesc, ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::process::require_tool;
use ferry_tests::skopeo;

/// Pulls `repo:tag` from ferry into a fresh `oci:` dir and checks the manifest digest and that
/// every layer arrived with bytes that hash to its digest.
fn pull_and_check(ferry: &FerryServer, repo: &str, tag: &str, desc: &ImageDesc, into: &Path) {
    let dst = format!("oci:{}:{tag}", into.display());
    skopeo::copy(&ferry.docker_ref(&format!("{repo}:{tag}")), &dst).unwrap_or_else(|e| {
        panic!(
            "skopeo copy {repo}:{tag} from ferry: {e:#}\n{}",
            ferry.log()
        )
    });
    let copied = skopeo::inspect(&dst, &[]).unwrap();
    assert_eq!(copied["Digest"], desc.manifest_digest.as_str(), "{tag}");
    for layer in &desc.layer_digests {
        let path = into
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{tag}: layer {layer} not pulled ({e})"));
        assert_eq!(&sha256_digest(&bytes), layer, "{tag}: layer bytes");
    }
}

fn location(ferry: &FerryServer, repo: &str, layer: &str) -> (u16, Option<String>) {
    let r = http::get(&ferry.http_addr, &format!("/v2/{repo}/blobs/{layer}")).unwrap();
    (r.status, r.header("location").map(str::to_string))
}

/// Regression (issue 9): publishing 2.0.0 of an image from a second origin used to repoint the
/// layer redirects of every tag, 1.0.0 included, at that origin, which lacks 1.0.0's layers, so
/// `skopeo copy …:1.0.0` through ferry failed.
#[test]
fn layer_redirects_follow_each_manifests_own_origin() {
    require_tool("skopeo");
    let one = OriginRegistry::start();
    let two = OriginRegistry::start();
    let mut ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();

    // 1.0.0 lives at origin one, 2.0.0 (other layers) at origin two only.
    let mut layout = OciLayout::new(tmp.path().join("src"));
    let v1 = layout.add_image(ImageSpec::default());
    layout.tag(&v1, "1.0.0");
    let v2 = layout.add_image(ImageSpec::default());
    layout.tag(&v2, "2.0.0");
    assert_ne!(v1.layer_digests, v2.layer_digests);
    skopeo::copy(
        &layout.reference("1.0.0"),
        &one.docker_ref("team/app:1.0.0"),
    )
    .unwrap();
    skopeo::copy(
        &layout.reference("2.0.0"),
        &two.docker_ref("mirror/app:2.0.0"),
    )
    .unwrap();

    // 1.0.0 from origin one over plain HTTP; 2.0.0 of the same image from an OCI layout whose
    // layers are at origin two.
    let image = format!("{}/team/app", one.addr());
    ferry.publish_ok(&[&format!("docker://{image}:1.0.0"), "--insecure"]);
    ferry.publish_ok(&[
        &layout.reference("2.0.0"),
        "--image",
        &image,
        "--origin",
        &format!("docker://{}/mirror/app", two.addr()),
        "--insecure",
    ]);
    let repo = format!("{}/team/app", one.addr().replace(':', "_"));

    let expect_locations = |ferry: &FerryServer| {
        assert_eq!(
            location(ferry, &repo, &v1.layer_digests[0]),
            (
                307,
                Some(format!(
                    "http://{}/v2/team/app/blobs/{}",
                    one.addr(),
                    v1.layer_digests[0]
                ))
            ),
            "1.0.0's layer"
        );
        assert_eq!(
            location(ferry, &repo, &v2.layer_digests[0]),
            (
                307,
                Some(format!(
                    "http://{}/v2/mirror/app/blobs/{}",
                    two.addr(),
                    v2.layer_digests[0]
                ))
            ),
            "2.0.0's layer"
        );
    };
    expect_locations(&ferry);
    pull_and_check(&ferry, &repo, "1.0.0", &v1, &tmp.path().join("pulled-1"));
    pull_and_check(&ferry, &repo, "2.0.0", &v2, &tmp.path().join("pulled-2"));

    // A restart loads the same origins from the store.
    ferry.restart();
    expect_locations(&ferry);
    pull_and_check(&ferry, &repo, "1.0.0", &v1, &tmp.path().join("pulled-1b"));
}
