//! Issue 2 end to end: `ferry publish` from a real origin (`docker-registry`) and from OCI layouts,
//! then real registry clients (`skopeo`) and raw HTTP against ferry's read API.

use std::collections::BTreeMap;

use ferry_tests::ferry::FerryServer;
use ferry_tests::http::{self, Response};
use ferry_tests::oci::{sha256_digest, ImageDesc, ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::process::require_tool;
use ferry_tests::skopeo;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn image(labels_: &[(&str, &str)]) -> ImageSpec {
    ImageSpec {
        labels: labels(labels_),
        ..ImageSpec::default()
    }
}

/// The ferry repository of `repo` at the origin: `127.0.0.1_PORT/repo`.
fn ferry_repo(origin: &OriginRegistry, repo: &str) -> String {
    format!("{}/{repo}", origin.addr().replace(':', "_"))
}

fn error_code(r: &Response) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&r.body)
        )
    });
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Three tags of one image pushed to the origin with skopeo, each with its own labels.
fn seed_origin(origin: &OriginRegistry, dir: &std::path::Path) -> Vec<ImageDesc> {
    let mut layout = OciLayout::new(dir);
    let mut out = Vec::new();
    for (i, tag) in ["v1", "v2", "v3"].iter().enumerate() {
        let rev = format!("rev{i}");
        let desc = layout.add_image(image(&[
            ("org.opencontainers.image.revision", &rev),
            ("team", "web"),
        ]));
        layout.tag(&desc, tag);
        skopeo::copy(
            &layout.reference(tag),
            &origin.docker_ref(&format!("team/app:{tag}")),
        )
        .unwrap();
        out.push(desc);
    }
    out
}

#[test]
fn published_images_are_served_to_skopeo_like_a_registry() {
    require_tool("skopeo");
    let origin = OriginRegistry::start();
    let ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let descs = seed_origin(&origin, &tmp.path().join("seed"));

    // Three publishes from the origin: each prints exactly the origin's digest.
    for (tag, desc) in ["v1", "v2", "v3"].iter().zip(&descs) {
        let digest = ferry.publish_ok(&[
            &format!("docker://{}/team/app:{tag}", origin.addr()),
            "--insecure",
        ]);
        let at_origin =
            skopeo::inspect(&origin.docker_ref(&format!("team/app:{tag}")), &[]).unwrap();
        assert_eq!(digest, at_origin["Digest"].as_str().unwrap());
        assert_eq!(digest, desc.manifest_digest);
    }
    let repo = ferry_repo(&origin, "team/app");

    // skopeo inspect: digest and labels equal the origin's.
    let via_ferry = skopeo::inspect(&ferry.docker_ref(&format!("{repo}:v2")), &[]).unwrap();
    let at_origin = skopeo::inspect(&origin.docker_ref("team/app:v2"), &[]).unwrap();
    assert_eq!(via_ferry["Digest"], at_origin["Digest"]);
    assert_eq!(via_ferry["Labels"], at_origin["Labels"]);
    assert_eq!(
        via_ferry["Labels"]["org.opencontainers.image.revision"],
        "rev1"
    );
    // Raw bytes are identical, byte for byte.
    assert_eq!(
        skopeo::inspect_raw(&ferry.docker_ref(&format!("{repo}:v3"))).unwrap(),
        skopeo::inspect_raw(&origin.docker_ref("team/app:v3")).unwrap()
    );

    // skopeo list-tags.
    assert_eq!(
        skopeo::list_tags(&ferry.docker_ref(&repo)).unwrap(),
        vec!["v1", "v2", "v3"]
    );

    // A full pull through ferry: manifest and config from ferry, layers by redirect to the origin.
    let pulled = tmp.path().join("pulled");
    skopeo::copy(
        &ferry.docker_ref(&format!("{repo}:v3")),
        &format!("oci:{}:v3", pulled.display()),
    )
    .unwrap();
    let copied = skopeo::inspect(&format!("oci:{}:v3", pulled.display()), &[]).unwrap();
    assert_eq!(copied["Digest"], descs[2].manifest_digest.as_str());
    assert!(
        pulled
            .join("blobs/sha256")
            .join(descs[2].layer_digests[0].trim_start_matches("sha256:"))
            .exists(),
        "the layer was pulled through the redirect"
    );

    // An OCI layout publish under another image name, with an extra tag and label.
    let mut local = OciLayout::new(tmp.path().join("local"));
    let worker = local.add_image(image(&[("team", "batch")]));
    local.tag(&worker, "1.0.0");
    let digest = ferry.publish_ok(&[
        &local.reference("1.0.0"),
        "--image",
        "gcr.io/acme/worker",
        "--tag",
        "stable",
        "--label",
        "owner=ops",
    ]);
    assert_eq!(digest, worker.manifest_digest);
    let inspected = skopeo::inspect(&ferry.docker_ref("gcr.io/acme/worker:stable"), &[]).unwrap();
    assert_eq!(inspected["Digest"], worker.manifest_digest.as_str());
    assert_eq!(
        skopeo::list_tags(&ferry.docker_ref("gcr.io/acme/worker")).unwrap(),
        vec!["1.0.0", "stable"]
    );
    // The config's labels are intact: --label does not rewrite the image.
    assert_eq!(inspected["Labels"]["team"], "batch");
    assert!(inspected["Labels"].get("owner").is_none(), "{inspected}");
    // The --label is recorded with the release, on top of the config's: ListTags (what the agent
    // reads, as events carry the same labels) shows both on every tag of the release.
    let listed = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = ferry.client().await;
        client
            .list_tags(ferry_proto::pb::ListTagsRequest {
                images: vec!["gcr.io/acme/worker".into()],
            })
            .await
            .unwrap()
            .into_inner()
    });
    let mut tags: Vec<&str> = listed.tags.iter().map(|t| t.tag.as_str()).collect();
    tags.sort();
    assert_eq!(tags, ["1.0.0", "stable"], "{listed:?}");
    for t in &listed.tags {
        assert_eq!(
            t.labels.get("owner").map(String::as_str),
            Some("ops"),
            "{t:?}"
        );
        assert_eq!(
            t.labels.get("team").map(String::as_str),
            Some("batch"),
            "{t:?}"
        );
    }
}

#[test]
fn multi_arch_index_publishes_and_resolves_per_platform() {
    require_tool("skopeo");
    let origin = OriginRegistry::start();
    let ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(tmp.path().join("multi"));
    let amd = layout.add_image(ImageSpec {
        arch: "amd64".into(),
        ..image(&[("arch", "amd64")])
    });
    let arm = layout.add_image(ImageSpec {
        arch: "arm64".into(),
        variant: Some("v8".into()),
        ..image(&[("arch", "arm64")])
    });
    let index = layout.add_index(&[amd.clone(), arm.clone()]);
    layout.tag(&index, "1.0");
    skopeo::copy_all(
        &layout.reference("1.0"),
        &origin.docker_ref("team/multi:1.0"),
    )
    .unwrap();

    let digest = ferry.publish_ok(&[
        &format!("docker://{}/team/multi:1.0", origin.addr()),
        "--insecure",
    ]);
    assert_eq!(digest, index.manifest_digest);
    let repo = ferry_repo(&origin, "team/multi");
    // The whole index, byte for byte.
    assert_eq!(
        skopeo::inspect_raw(&ferry.docker_ref(&format!("{repo}:1.0"))).unwrap(),
        index.manifest_bytes
    );
    // Per platform: skopeo resolves the child manifest and reads its config through ferry.
    let on_arm = skopeo::inspect(
        &ferry.docker_ref(&format!("{repo}:1.0")),
        &["--override-arch", "arm64", "--override-variant", "v8"],
    )
    .unwrap();
    assert_eq!(on_arm["Architecture"], "arm64");
    assert_eq!(on_arm["Labels"]["arch"], "arm64");
    let on_amd = skopeo::inspect(
        &ferry.docker_ref(&format!("{repo}:1.0")),
        &["--override-arch", "amd64"],
    )
    .unwrap();
    assert_eq!(on_amd["Labels"]["arch"], "amd64");
    // Each child is addressable by digest.
    assert_eq!(
        skopeo::inspect_raw(&ferry.docker_ref(&format!("{repo}@{}", arm.manifest_digest))).unwrap(),
        arm.manifest_bytes
    );
}

#[test]
fn read_api_follows_the_distribution_spec_endpoint_by_endpoint() {
    require_tool("skopeo");
    let origin = OriginRegistry::start();
    let ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let descs = seed_origin(&origin, &tmp.path().join("seed"));
    let src = format!("docker://{}/team/app:v1", origin.addr());
    ferry.publish_ok(&[
        &src,
        "--insecure",
        "--tag",
        "a",
        "--tag",
        "b",
        "--tag",
        "c",
        "--tag",
        "d",
    ]);
    let repo = ferry_repo(&origin, "team/app");
    let addr = ferry.http_addr.as_str();
    let v1 = &descs[0];

    // /v2/ answers 200 with the API version header.
    let base = http::get(addr, "/v2/").unwrap();
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Manifests: GET by tag and by digest give the same bytes; HEAD carries all three headers.
    let by_tag = http::get(addr, &format!("/v2/{repo}/manifests/v1")).unwrap();
    assert_eq!(by_tag.status, 200);
    assert_eq!(by_tag.body, v1.manifest_bytes);
    assert_eq!(
        by_tag.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        by_tag.header("docker-content-digest"),
        Some(v1.manifest_digest.as_str())
    );
    let by_digest = http::get(
        addr,
        &format!("/v2/{repo}/manifests/{}", v1.manifest_digest),
    )
    .unwrap();
    assert_eq!(by_digest.body, v1.manifest_bytes);
    let head = http::request(addr, "HEAD", &format!("/v2/{repo}/manifests/v1"), &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("docker-content-digest"),
        Some(v1.manifest_digest.as_str())
    );
    assert_eq!(
        head.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        head.header("content-length"),
        Some(v1.manifest_bytes.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    // Tags list pagination: lexical order, Link to the next page, last page without Link.
    let page1 = http::get(addr, &format!("/v2/{repo}/tags/list?n=2")).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&page1.body).unwrap();
    assert_eq!(body["name"], repo.as_str());
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    let link = page1
        .header("link")
        .expect("Link header on a partial page")
        .to_string();
    assert_eq!(
        link,
        format!("</v2/{repo}/tags/list?n=2&last=b>; rel=\"next\"")
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let page2 = http::get(addr, next).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&page2.body).unwrap()["tags"],
        serde_json::json!(["c", "d"])
    );
    let page3 = http::get(addr, &format!("/v2/{repo}/tags/list?n=2&last=d")).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&page3.body).unwrap()["tags"],
        serde_json::json!(["v1"])
    );
    assert_eq!(page3.header("link"), None);

    // Catalog pagination.
    let mut layout = OciLayout::new(tmp.path().join("more"));
    let other = layout.add_image(image(&[]));
    layout.tag(&other, "x");
    ferry.publish_ok(&[
        &layout.reference("x"),
        "--image",
        "zz.example.com/last/repo",
    ]);
    let cat = http::get(addr, "/v2/_catalog?n=1").unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&cat.body).unwrap()["repositories"],
        serde_json::json!([repo])
    );
    assert!(cat
        .header("link")
        .unwrap()
        .contains(&format!("last={repo}")));
    let cat2 = http::get(addr, &format!("/v2/_catalog?n=1&last={repo}")).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&cat2.body).unwrap()["repositories"],
        serde_json::json!(["zz.example.com/last/repo"])
    );

    // Errors carry the spec's codes.
    let unknown_digest = format!("sha256:{}", "0".repeat(64));
    for (path, status, code) in [
        (
            format!("/v2/{repo}/manifests/nope"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{repo}/manifests/{unknown_digest}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/no/such/repo/manifests/v1".to_string(),
            404,
            "NAME_UNKNOWN",
        ),
        (
            format!("/v2/{repo}/blobs/{unknown_digest}"),
            404,
            "BLOB_UNKNOWN",
        ),
        ("/v2/Bad_Name/manifests/v1".to_string(), 400, "NAME_INVALID"),
        (
            format!("/v2/{repo}/blobs/sha256:abc"),
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/no/such/repo/tags/list".to_string(),
            404,
            "NAME_UNKNOWN",
        ),
    ] {
        let r = http::get(addr, &path).unwrap();
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (status, code),
            "GET {path}"
        );
    }
    for method in ["PUT", "POST", "DELETE", "PATCH"] {
        let r = http::request(
            addr,
            method,
            &format!("/v2/{repo}/manifests/v1"),
            &[("Content-Length", "0")],
        )
        .unwrap();
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (405, "UNSUPPORTED"),
            "{method}"
        );
    }

    // Blobs: the config is stored (Range → 206), the layer redirects to the origin.
    let config = v1.config_digest.as_deref().unwrap();
    let full = http::get(addr, &format!("/v2/{repo}/blobs/{config}")).unwrap();
    assert_eq!(full.status, 200);
    assert_eq!(sha256_digest(&full.body), config);
    let part = http::request(
        addr,
        "GET",
        &format!("/v2/{repo}/blobs/{config}"),
        &[("Range", "bytes=2-9")],
    )
    .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body, full.body[2..=9]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 2-9/{}", full.body.len()).as_str())
    );
    let blob_head =
        http::request(addr, "HEAD", &format!("/v2/{repo}/blobs/{config}"), &[]).unwrap();
    assert_eq!(
        blob_head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    let layer = &v1.layer_digests[0];
    let redirect = http::get(addr, &format!("/v2/{repo}/blobs/{layer}")).unwrap();
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some(format!("http://{}/v2/team/app/blobs/{layer}", origin.addr()).as_str())
    );
}

#[test]
fn referrers_list_artifacts_whose_subject_is_the_digest() {
    let ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(tmp.path().join("signed"));
    let app = layout.add_image(image(&[]));
    layout.tag(&app, "1.0");
    let sig =
        layout.add_artifact_with_subject(&app, "application/vnd.dev.sigstore.bundle.v0.3+json");
    layout.tag(&sig, "sig");
    let sbom = layout.add_artifact_with_subject(&app, "application/spdx+json");
    layout.tag(&sbom, "sbom");
    for tag in ["1.0", "sig", "sbom"] {
        ferry.publish_ok(&[&layout.reference(tag), "--image", "gcr.io/acme/app"]);
    }
    let addr = ferry.http_addr.as_str();
    let all = http::get(
        addr,
        &format!("/v2/gcr.io/acme/app/referrers/{}", app.manifest_digest),
    )
    .unwrap();
    assert_eq!(all.status, 200);
    assert_eq!(
        all.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    let mut digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    digests.sort();
    let mut expected = vec![sig.manifest_digest.as_str(), sbom.manifest_digest.as_str()];
    expected.sort();
    assert_eq!(digests, expected);
    let filtered = http::get(
        addr,
        &format!(
            "/v2/gcr.io/acme/app/referrers/{}?artifactType=application/spdx%2Bjson",
            app.manifest_digest
        ),
    )
    .unwrap();
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let index: serde_json::Value = serde_json::from_slice(&filtered.body).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["digest"],
        sbom.manifest_digest.as_str()
    );
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
    // A digest nobody refers to: an empty index, not an error.
    let none = http::get(
        addr,
        &format!("/v2/gcr.io/acme/app/referrers/{}", sig.manifest_digest),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&none.body).unwrap()["manifests"],
        serde_json::json!([])
    );
}

#[test]
fn everything_published_survives_kill_9() {
    require_tool("skopeo");
    let origin = OriginRegistry::start();
    let mut ferry = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let descs = seed_origin(&origin, &tmp.path().join("seed"));
    for tag in ["v1", "v2", "v3"] {
        ferry.publish_ok(&[
            &format!("docker://{}/team/app:{tag}", origin.addr()),
            "--insecure",
        ]);
    }
    ferry.kill9();
    ferry.restart();
    let repo = ferry_repo(&origin, "team/app");
    assert_eq!(
        skopeo::list_tags(&ferry.docker_ref(&repo)).unwrap(),
        vec!["v1", "v2", "v3"]
    );
    for (tag, desc) in ["v1", "v2", "v3"].iter().zip(&descs) {
        let inspected = skopeo::inspect(&ferry.docker_ref(&format!("{repo}:{tag}")), &[]).unwrap();
        assert_eq!(inspected["Digest"], desc.manifest_digest.as_str());
    }
    // Re-publishing an unchanged tag after the restart is a no-op: no event is logged (the head
    // seq stays) and every tag keeps the seq it had.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tag_state = || {
        rt.block_on(async {
            let mut client = ferry.client().await;
            let listed = client
                .list_tags(ferry_proto::pb::ListTagsRequest { images: vec![] })
                .await
                .unwrap()
                .into_inner();
            let mut tags: Vec<(String, String, u64)> = listed
                .tags
                .into_iter()
                .map(|t| (t.image, t.tag, t.seq))
                .collect();
            tags.sort();
            (listed.head_seq, tags)
        })
    };
    let before = tag_state();
    ferry.publish_ok(&[
        &format!("docker://{}/team/app:v1", origin.addr()),
        "--insecure",
    ]);
    assert_eq!(
        tag_state(),
        before,
        "re-publishing an unchanged tag must move nothing"
    );
}

/// Runs a publish that must fail; returns its stderr.
fn publish_err(ferry: &FerryServer, args: &[&str]) -> String {
    let out = ferry.publish(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "publish {args:?} should have failed; stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "a failed publish prints nothing on stdout"
    );
    stderr
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_stores_nothing() {
    require_tool("skopeo");
    let origin = OriginRegistry::start();
    let ferry = FerryServer::start_with(&["--max-manifest-bytes", "2000"]);
    let tmp = tempfile::tempdir().unwrap();
    seed_origin(&origin, &tmp.path().join("seed"));
    ferry.publish_ok(&[
        &format!("docker://{}/team/app:v1", origin.addr()),
        "--insecure",
    ]);
    let addr = ferry.http_addr.as_str();
    let snapshot = || {
        let cat = http::get(addr, "/v2/_catalog").unwrap().body;
        let tags = http::get(
            addr,
            &format!("/v2/{}/tags/list", ferry_repo(&origin, "team/app")),
        )
        .unwrap()
        .body;
        (cat, tags)
    };
    let before = snapshot();
    let o = origin.addr();

    // Unknown tag at the origin.
    let e = publish_err(
        &ferry,
        &[&format!("docker://{o}/team/app:nope"), "--insecure"],
    );
    assert!(
        e.contains("\"nope\" not found") && e.contains("MANIFEST_UNKNOWN"),
        "{e}"
    );
    // A digest the origin does not have.
    let zero = format!("sha256:{}", "0".repeat(64));
    let e = publish_err(
        &ferry,
        &[&format!("docker://{o}/team/app@{zero}"), "--insecure"],
    );
    assert!(e.contains(&zero) && e.contains("not found"), "{e}");
    // A malformed digest.
    let e = publish_err(
        &ferry,
        &[&format!("docker://{o}/team/app@sha256:1234"), "--insecure"],
    );
    assert!(
        e.contains("sha256:1234") && e.contains("64 lowercase hex"),
        "{e}"
    );
    // Unreachable origin.
    let e = publish_err(&ferry, &["docker://127.0.0.1:1/team/app:v1", "--insecure"]);
    assert!(
        e.contains("cannot reach origin registry http://127.0.0.1:1"),
        "{e}"
    );
    // Invalid repository and tag.
    let mut layout = OciLayout::new(tmp.path().join("bad"));
    let img = layout.add_image(image(&[]));
    layout.tag(&img, "1.0");
    let e = publish_err(
        &ferry,
        &[&layout.reference("1.0"), "--image", "gcr.io/Acme/App"],
    );
    assert!(e.contains("\"Acme/App\"") && e.contains("[a-z0-9]+"), "{e}");
    let e = publish_err(
        &ferry,
        &[
            &layout.reference("1.0"),
            "--image",
            "gcr.io/acme/app",
            "--tag",
            "v1:2",
        ],
    );
    assert!(
        e.contains("\"v1:2\"") && e.contains("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"),
        "{e}"
    );
    // Oversized manifest: the server's cap (2000 bytes here).
    let mut big = OciLayout::new(tmp.path().join("big"));
    let mut spec = image(&[]);
    spec.labels = (0..40)
        .map(|i| (format!("k{i}"), "v".repeat(100)))
        .collect();
    let big_index_children: Vec<ImageDesc> = (0..12).map(|_| big.add_image(spec.clone())).collect();
    let big_index = big.add_index(&big_index_children);
    big.tag(&big_index, "huge");
    let e = publish_err(
        &ferry,
        &[&big.reference("huge"), "--image", "gcr.io/acme/big"],
    );
    assert!(e.contains("over the limit of 2000 bytes"), "{e}");
    // Tampered layout: a config blob whose bytes no longer match its digest.
    let mut tampered = OciLayout::new(tmp.path().join("tampered"));
    let t = tampered.add_image(image(&[]));
    tampered.tag(&t, "1.0");
    let cfg = t.config_digest.clone().unwrap();
    std::fs::write(
        tmp.path()
            .join("tampered/blobs/sha256")
            .join(cfg.trim_start_matches("sha256:")),
        b"{\"evil\":true}",
    )
    .unwrap();
    let e = publish_err(
        &ferry,
        &[
            &tampered.reference("1.0"),
            "--image",
            "gcr.io/acme/tampered",
        ],
    );
    assert!(e.contains("does not match") && e.contains(&cfg), "{e}");
    // Malformed manifest (valid digest, not a manifest).
    let mut malformed = OciLayout::new(tmp.path().join("malformed"));
    let junk_bytes = b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":42}";
    let junk_digest = malformed.add_blob(junk_bytes);
    let mut junk = img.clone();
    junk.manifest_digest = junk_digest;
    // The real length: the layout must be wrong only in what this case tests (a non-manifest).
    junk.size = junk_bytes.len() as u64;
    malformed.tag(&junk, "junk");
    let e = publish_err(
        &ferry,
        &[&malformed.reference("junk"), "--image", "gcr.io/acme/junk"],
    );
    assert!(
        e.contains("malformed application/vnd.oci.image.manifest.v1+json manifest"),
        "{e}"
    );

    // Nothing of the above was stored.
    assert_eq!(snapshot(), before);
}
