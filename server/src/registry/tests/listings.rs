//! The listings: `tags/list` and `_catalog` (paginated with `n`, `last` and a `Link` to the next
//! page) and `referrers` (an index, filtered by `artifactType`).

use actix_web::http::StatusCode;
use ferry_proto::manifest::{OCI_INDEX, OCI_MANIFEST};
use ferry_tests::releases::release;
use serde_json::json;

use super::{assert_error, manifest_of, Registry, Reply, IMAGE, REPO, SBOM, SIGNATURE};

/// Follows `Link` headers from `first`, returning each page's `key` list and the links seen.
async fn pages(registry: &Registry, first: &str, key: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut lists, mut links) = (Vec::new(), Vec::new());
    let mut uri = Some(first.to_string());
    while let Some(u) = uri.take() {
        let reply = registry.get(&u).await;
        assert_eq!(reply.status, StatusCode::OK, "{u}");
        let list = reply.json()[key]
            .as_array()
            .unwrap_or_else(|| panic!("{u}: no {key} array"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect();
        lists.push(list);
        if let Some(link) = reply.header("link") {
            links.push(link.to_string());
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("a Link of the spec's form: {link}"));
            uri = Some(target.to_string());
        }
        assert!(lists.len() < 10, "the Link chain does not end: {links:?}");
    }
    (lists, links)
}

#[actix_web::test]
async fn tags_list_pages_with_n_and_last_and_links_the_next_page() {
    let registry = Registry::new();
    let tags = ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "latest"];
    registry.publish(release(
        IMAGE,
        1,
        tags.iter().map(|t| t.to_string()).collect(),
    ));

    let all = registry.get(&format!("/v2/{REPO}/tags/list")).await;
    assert_eq!(all.json(), json!({ "name": REPO, "tags": tags }));
    assert_eq!(all.header("link"), None, "one page holds every tag");

    let (lists, links) = pages(&registry, &format!("/v2/{REPO}/tags/list?n=2"), "tags").await;
    assert_eq!(
        lists,
        [
            vec!["1.0.0", "1.0.1"],
            vec!["1.1.0", "2.0.0"],
            vec!["latest"]
        ]
    );
    assert_eq!(
        links[0],
        format!("</v2/{REPO}/tags/list?n=2&last=1.0.1>; rel=\"next\"")
    );

    let after = registry
        .get(&format!("/v2/{REPO}/tags/list?last=1.1.0"))
        .await;
    assert_eq!(after.json()["tags"], json!(["2.0.0", "latest"]));
}

#[actix_web::test]
async fn catalog_pages_with_n_and_last_and_links_the_next_page() {
    let registry = Registry::new();
    let names = [
        "registry.example.com/a",
        "registry.example.com/b/c",
        "registry.example.com/d",
    ];
    for (n, image) in names.iter().enumerate() {
        registry.publish(release(image, n as u64, vec!["v1".into()]));
    }
    let all = registry.get("/v2/_catalog").await;
    assert_eq!(all.json(), json!({ "repositories": names }));

    let (lists, links) = pages(&registry, "/v2/_catalog?n=2", "repositories").await;
    assert_eq!(lists, [&names[..2], &names[2..]]);
    assert_eq!(
        links,
        ["</v2/_catalog?n=2&last=registry.example.com/b/c>; rel=\"next\""]
    );
}

#[actix_web::test]
async fn a_page_size_that_is_not_a_number_is_pagination_number_invalid() {
    let (registry, _) = Registry::with_images();
    for uri in [
        format!("/v2/{REPO}/tags/list?n=ten"),
        "/v2/_catalog?n=-1".into(),
    ] {
        let reply = registry.get(&uri).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID");
    }
}

/// The `manifests` of a referrers answer, after checking it is an OCI index.
fn referrer_index(reply: &Reply) -> Vec<serde_json::Value> {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some(OCI_INDEX));
    let body = reply.json();
    assert_eq!(body["schemaVersion"], 2);
    assert_eq!(body["mediaType"], OCI_INDEX);
    body["manifests"].as_array().expect("manifests").clone()
}

#[actix_web::test]
async fn referrers_list_every_artifact_and_filter_by_artifact_type() {
    let (registry, published) = Registry::with_images();
    let (_, subject) = manifest_of(&published.image);
    let descriptor = |req, artifact_type: &str| {
        let (data, digest) = manifest_of(req);
        json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": data.len(),
            "artifactType": artifact_type,
            "annotations": {
                "org.opencontainers.image.title": format!("{artifact_type} of {IMAGE}")
            },
        })
    };
    let sbom = descriptor(&published.sbom, SBOM);
    let signature = descriptor(&published.signature, SIGNATURE);

    let all = registry
        .get(&format!("/v2/{REPO}/referrers/{subject}"))
        .await;
    let mut listed = referrer_index(&all);
    listed.sort_by_key(|d| d["artifactType"].as_str().map(String::from));
    assert_eq!(listed, [sbom.clone(), signature]);
    assert_eq!(all.header("oci-filters-applied"), None);

    // `+` means a space in a query string: clients send it encoded.
    let query = SBOM.replace('+', "%2B");
    let filtered = registry
        .get(&format!(
            "/v2/{REPO}/referrers/{subject}?artifactType={query}"
        ))
        .await;
    assert_eq!(referrer_index(&filtered), [sbom]);
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
}

#[actix_web::test]
async fn referrers_of_a_manifest_nothing_refers_to_is_an_empty_index() {
    let (registry, published) = Registry::with_images();
    let (_, index) = manifest_of(&published.index);
    let reply = registry.get(&format!("/v2/{REPO}/referrers/{index}")).await;
    assert!(referrer_index(&reply).is_empty());
    let none = registry
        .get(&format!(
            "/v2/{REPO}/referrers/{}?artifactType=application/x-none",
            manifest_of(&published.image).1
        ))
        .await;
    assert!(referrer_index(&none).is_empty());
}
