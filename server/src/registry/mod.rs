//! The OCI distribution read API over actix-web: a "fake registry" that real clients (skopeo,
//! crane, docker) can pull metadata from.
//!
//! Direction: `registry` → `service`. Handlers extract, call the service, map the result; this
//! layer never touches SQL. Each OCI resource has its own module exposing `configure`.

mod blobs;
mod catalog;
mod errors;
mod manifests;
mod referrers;
mod tags;

use std::sync::Arc;

use actix_web::{http::Method, middleware::DefaultHeaders, web, HttpRequest, HttpResponse};

use crate::service::Service;
pub use errors::OciError;

/// Shared handler state.
pub type State = web::Data<Arc<Service>>;

/// Registers every route of the read API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v2")
            .wrap(DefaultHeaders::new().add(("Docker-Distribution-API-Version", "registry/2.0")))
            .route("/", web::get().to(base))
            .route("/", web::head().to(base))
            .route("", web::get().to(base))
            .configure(catalog::configure)
            .configure(manifests::configure)
            .configure(blobs::configure)
            .configure(tags::configure)
            .configure(referrers::configure)
            .default_service(web::to(not_routed)),
    );
}

/// `GET /v2/`: the API version check every client starts with.
async fn base() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
}

/// Anything else under `/v2`: writes are not supported (this registry is written only through
/// `ferry publish`); unknown reads are 404.
async fn not_routed(req: HttpRequest) -> Result<HttpResponse, OciError> {
    Err(if matches!(*req.method(), Method::GET | Method::HEAD) {
        OciError::not_found(format!("no such endpoint: {}", req.path()))
    } else {
        OciError::unsupported(format!(
            "{} {}: this registry is read-only; publish images with `ferry publish`",
            req.method(),
            req.path()
        ))
    })
}

/// Pagination parameters shared by tags list and catalog.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery {
    n: Option<usize>,
    last: Option<String>,
}

/// The `Link` header value for the next page, per the distribution spec.
pub(crate) fn next_link(path: &str, n: usize, last: &str) -> String {
    format!("<{path}?n={n}&last={}>; rel=\"next\"", percent_encode(last))
}

/// Encodes the few characters of a tag or repository name that need it in a query string.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The largest page we hand out, whatever `n` says: keeps one request's work bounded.
pub(crate) const MAX_PAGE: usize = 10_000;
