//! `GET|HEAD /v2/<name>/blobs/<digest>`: stored blobs (configs) from SQLite, with `Range`; layers
//! redirected (307) to the origin registry; anything else `BLOB_UNKNOWN`.

use actix_web::http::header;
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{OciError, State};
use crate::service::BlobAnswer;

async fn answer(state: State, name: String, digest: String) -> Result<BlobAnswer, OciError> {
    // Stored blob bytes come from SQLite: keep that off the async workers.
    let answer = web::block(move || state.blob(&name, &digest))
        .await
        .map_err(|_| {
            OciError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "blob read was cancelled",
            )
        })??;
    Ok(answer)
}

fn base(status: StatusCode, media_type: &str, digest: &str) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CONTENT_TYPE, media_type))
        .insert_header(("Docker-Content-Digest", digest))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    b
}

/// GET, and HEAD (answered like GET without a Range: actix-web keeps Content-Length and drops
/// the body).
pub(super) async fn get(
    state: State,
    name: &str,
    digest: &str,
    req: &HttpRequest,
) -> Result<HttpResponse, OciError> {
    let (name, digest) = (name.to_string(), digest.to_string());
    match answer(state, name, digest.clone()).await? {
        BlobAnswer::Redirect(url) => Ok(HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, url))
            .finish()),
        BlobAnswer::Stored { media_type, data } => {
            let range = req
                .headers()
                .get(header::RANGE)
                .filter(|_| req.method() == Method::GET)
                .and_then(|v| v.to_str().ok());
            match range.map(|r| parse_range(r, data.len() as u64)) {
                None => Ok(base(StatusCode::OK, &media_type, &digest).body(data)),
                Some(Some((start, end))) => {
                    Ok(base(StatusCode::PARTIAL_CONTENT, &media_type, &digest)
                        .insert_header((
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{end}/{}", data.len()),
                        ))
                        .body(data[start as usize..=end as usize].to_vec()))
                }
                Some(None) => Ok(HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{}", data.len())))
                    .finish()),
            }
        }
    }
}

/// Parses a single `bytes=` range against a body of `len` bytes into inclusive bounds.
/// `None` means unsatisfiable (or a form we do not serve, such as several ranges).
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (len.saturating_sub(n), len - 1)
        }
        (s, "") => (s.parse().ok()?, len - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-3", 10), Some((0, 3)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=4-2", 10), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }
}
