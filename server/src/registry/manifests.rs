//! `GET|HEAD /v2/<name>/manifests/<reference>`: bytes exactly as published.
//!
//! Clients that bite: skopeo takes the digest from `Docker-Content-Digest` on HEAD with no
//! fallback; crane errors on a HEAD without Content-Type, Content-Length or the digest header.
//! So HEAD sends all three, with the length of the body GET would send.

use actix_web::http::header;
use actix_web::HttpResponse;

use super::{OciError, State};

/// GET and HEAD (actix-web leaves the body off for HEAD).
pub(super) fn get(state: &State, name: &str, reference: &str) -> Result<HttpResponse, OciError> {
    let m = state.manifest(name, reference)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, m.media_type.as_str()))
        .insert_header(("Docker-Content-Digest", m.digest.as_str()))
        .insert_header((header::ETAG, format!("\"{}\"", m.digest)))
        .body(m.data.clone()))
}
