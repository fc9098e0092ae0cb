//! The OCI distribution read API over actix-web: a "fake registry" that real clients (skopeo,
//! crane, docker) can pull metadata from.
//!
//! Direction: `registry` → `service`. Handlers extract, call the service, map the result; this
//! layer never touches SQL. Each OCI resource has its own module exposing `configure`.

pub mod auth;
mod blobs;
mod catalog;
mod errors;
mod manifests;
mod referrers;
mod route;
mod tags;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{middleware::DefaultHeaders, web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::service::Service;
use auth::RegistryAuth;
pub use errors::OciError;
use route::Endpoint;

/// Shared handler state.
pub type State = web::Data<Arc<Service>>;

/// Registers the read API: every `/v2` request goes to [`dispatch`]; `/token` issues registry
/// tokens when reads need a token. Expects `web::Data<RegistryAuth>` among the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::get().to(auth::token_endpoint));
    cfg.service(
        web::scope("/v2")
            .wrap(DefaultHeaders::new().add(("Docker-Distribution-API-Version", "registry/2.0")))
            .default_service(web::to(dispatch)),
    );
}

/// The route pattern of a `/v2` path (`/v2/{name}/blobs/{digest}`), for metrics; None for a
/// path outside `/v2`.
pub fn endpoint_pattern(path: &str) -> Option<&'static str> {
    let under_v2 = path
        .strip_prefix("/v2")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    under_v2.then(|| route::parse(path).pattern())
}

/// Chooses the handler from the method and the path ([`route::parse`]). HEAD is answered like
/// GET everywhere: actix-web keeps the headers, including Content-Length, and drops the body.
async fn dispatch(
    state: State,
    registry_auth: web::Data<RegistryAuth>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    check_header_size(&req)?;
    let endpoint = route::parse(req.path());
    auth::check(&state, &registry_auth, &req, endpoint.repository()).await?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(OciError::unsupported(format!(
            "{} {}: this registry is read-only; publish images with `ferry publish`",
            req.method(),
            req.path()
        )));
    }
    match endpoint {
        Endpoint::Base => Ok(base()),
        Endpoint::Catalog => Ok(catalog::list(&state, query(&req)?)),
        Endpoint::Manifest { name, reference } => manifests::get(&state, name, reference),
        Endpoint::Blob { name, digest } => blobs::get(state.clone(), name, digest, &req).await,
        Endpoint::Tags { name } => tags::list(&state, name, query(&req)?),
        Endpoint::Referrers { name, digest } => referrers::list(&state, name, digest, query(&req)?),
        Endpoint::Unknown => Err(OciError::not_found(format!(
            "no such endpoint: {}",
            req.path()
        ))),
    }
}

/// The most header bytes (names and values) a registry request may carry. Registry clients send
/// well under 4 KiB; actix-web itself accepts up to 128 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses a request whose headers exceed [`MAX_HEADER_BYTES`] with 431 DENIED.
fn check_header_size(req: &HttpRequest) -> Result<(), OciError> {
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(OciError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "DENIED",
            format!("the request headers are {bytes} bytes; this registry accepts at most {MAX_HEADER_BYTES}"),
        ));
    }
    Ok(())
}

/// The request's query string as `T`, or a 400 naming what was wrong.
fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, OciError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("query {:?}: {e}", req.query_string()),
            )
        })
}

/// `GET /v2/`: the API version check every client starts with.
fn base() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
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
