//! `GET|HEAD /v2/<name>/manifests/<reference>`: bytes exactly as published.
//!
//! Clients that bite: skopeo takes the digest from `Docker-Content-Digest` on HEAD with no
//! fallback; crane errors on a HEAD without Content-Type, Content-Length or the digest header.
//! So HEAD sends all three, with the length of the body GET would send.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::{OciError, State};

/// Registers the manifest routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{name:.+}/manifests/{reference}", web::get().to(get))
        .route("/{name:.+}/manifests/{reference}", web::head().to(head));
}

async fn get(state: State, path: web::Path<(String, String)>) -> Result<HttpResponse, OciError> {
    let (name, reference) = path.into_inner();
    let m = state.manifest(&name, &reference)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, m.media_type.as_str()))
        .insert_header(("Docker-Content-Digest", m.digest.as_str()))
        .insert_header((header::ETAG, format!("\"{}\"", m.digest)))
        .body(m.data.clone()))
}

/// HEAD answers exactly like GET: actix-web sends the headers, including the body's
/// Content-Length, and leaves the body off the wire for HEAD requests.
async fn head(state: State, path: web::Path<(String, String)>) -> Result<HttpResponse, OciError> {
    get(state, path).await
}
