//! `GET /v2/_catalog?n=&last=`: every repository, sorted, paginated.

use actix_web::{http::header, HttpResponse};
use serde::Serialize;

use super::{next_link, PageQuery, State, MAX_PAGE};

#[derive(Serialize)]
struct Catalog {
    repositories: Vec<String>,
}

pub(super) fn list(state: &State, q: PageQuery) -> HttpResponse {
    let n = q.n.map(|n| n.min(MAX_PAGE)).unwrap_or(MAX_PAGE);
    let (repositories, more) = state.catalog(Some(n), q.last.as_deref());
    let mut resp = HttpResponse::Ok();
    if more {
        if let Some(last) = repositories.last() {
            resp.insert_header((header::LINK, next_link("/v2/_catalog", n, last)));
        }
    }
    resp.json(Catalog { repositories })
}
