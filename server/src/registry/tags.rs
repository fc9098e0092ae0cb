//! `GET /v2/<name>/tags/list?n=&last=`: lexically sorted, with a `Link` to the next page.

use actix_web::{http::header, HttpResponse};
use serde::Serialize;

use super::{next_link, OciError, PageQuery, State, MAX_PAGE};

#[derive(Serialize)]
struct TagList<'a> {
    name: &'a str,
    tags: Vec<String>,
}

pub(super) fn list(state: &State, name: &str, q: PageQuery) -> Result<HttpResponse, OciError> {
    let n = q.n.map(|n| n.min(MAX_PAGE)).or(Some(MAX_PAGE));
    let (tags, more) = state.tags(name, n, q.last.as_deref())?;
    let mut resp = HttpResponse::Ok();
    if more {
        if let (Some(n), Some(last)) = (n, tags.last()) {
            resp.insert_header((
                header::LINK,
                next_link(&format!("/v2/{name}/tags/list"), n, last),
            ));
        }
    }
    Ok(resp.json(TagList { name, tags }))
}
