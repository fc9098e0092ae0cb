//! `GET /v2/<name>/referrers/<digest>?artifactType=`: OCI 1.1 referrers, as an image index of the
//! manifests whose `subject` is the digest.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};

use super::{OciError, State};
use ferry_proto::manifest::OCI_INDEX;

/// The referrers query string.
#[derive(Deserialize)]
pub(super) struct Query {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

pub(super) fn list(
    state: &State,
    name: &str,
    digest: &str,
    q: Query,
) -> Result<HttpResponse, OciError> {
    let filter = q.artifact_type.as_deref().filter(|t| !t.is_empty());
    let manifests = state
        .referrers(name, digest, filter)?
        .into_iter()
        .map(|r| Descriptor {
            media_type: r.media_type,
            digest: r.digest,
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: r.annotations,
        })
        .collect();
    let mut resp = HttpResponse::Ok();
    resp.content_type(OCI_INDEX);
    if filter.is_some() {
        resp.insert_header(("OCI-Filters-Applied", "artifactType"));
    }
    let body = serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    })
    .expect("index serialises");
    Ok(resp.body(body))
}
