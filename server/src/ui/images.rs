//! The images page (every image, paginated by name) and one image's page (its releases, its
//! artifacts apart, and its history from the event log).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::format::{digest, labels, time, when};
use super::{blocking, error_page, events, layout, State, UiAuth};
use crate::service::browse::TagView;

/// Images per page: at 1,000 images a page stays a few hundred KB and answers in milliseconds.
pub(super) const PAGE: usize = 100;
/// History rows on an image's page.
const HISTORY: usize = 50;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// Show images after this repository name.
    after: Option<String>,
    /// Keep names containing this.
    #[serde(default)]
    q: String,
}

/// `GET /ui/` and `/ui/images`.
pub(super) async fn list(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let (images, total, more) = state.image_summaries(query.after.as_deref(), PAGE, &query.q);
    let next = images.last().map(|i| i.repository.clone());
    let body = html! {
        h1 { "Images " span.muted { "(" (total) ")" } }
        form method="get" action="/ui/images" {
            input type="search" name="q" value=(query.q) placeholder="filter by name";
            " " button.act type="submit" { "Filter" }
        }
        table #images {
            thead { tr { th { "Image" } th { "Tags" } th { "Newest release" } th { "Version" } th { "Digest" } th { "Published" } } }
            tbody {
                @for i in &images {
                    tr {
                        td { a href={ "/ui/images/" (i.repository) } { (i.image) } }
                        td { (i.releases) @if i.tags > i.releases { span.muted { " + " (i.tags - i.releases) @if i.tags - i.releases == 1 { " artifact" } @else { " artifacts" } } } }
                        @match &i.newest {
                            Some(t) => {
                                td { code { (t.tag) } }
                                td { (t.version) }
                                td { (digest(&t.digest)) }
                                td { (when(t.published_at_ms)) }
                            }
                            None => { td colspan="4" .muted { "no release yet" } }
                        }
                    }
                }
                @if images.is_empty() {
                    tr { td colspan="6" .muted { "Nothing published yet: " code { "ferry publish docker://REGISTRY/IMAGE:TAG" } } }
                }
            }
        }
        @if more {
            p.pager {
                a href={ "/ui/images?after=" (url_encode(next.as_deref().unwrap_or(""))) "&q=" (url_encode(&query.q)) } { "Next " (PAGE) " images →" }
            }
        }
    };
    layout::page(&viewer, "Images", "images", body)
}

/// `GET /ui/images/{repository}`.
pub(super) async fn detail(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let detail = match state.image_detail(&path) {
        Ok(d) => d,
        Err(e) => return error_page(&viewer, e),
    };
    let (service, image) = (state.clone(), detail.image.clone());
    let history = match blocking(&viewer, move || service.recent_events(&image, HISTORY)).await {
        Ok(h) => h,
        Err(answer) => return answer,
    };
    let body = html! {
        h1 { (detail.image) }
        p.muted { "Pull metadata with " code { "skopeo inspect docker://" (req.connection_info().host()) "/" (detail.repository) ":TAG" } }
        h2 { "Releases (" (detail.releases.len()) ")" }
        (tag_table("releases", &detail.releases, false))
        h2 { "Artifacts (" (detail.artifacts.len()) ")" }
        p.muted { "Signatures, attestations, SBOMs and other referrers: stored and served, never deployed." }
        (tag_table("artifacts", &detail.artifacts, true))
        h2 { "History" }
        (events::table(&history, false))
    };
    layout::page(&viewer, &detail.image, "images", body)
}

fn tag_table(id: &str, tags: &[TagView], artifacts: bool) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th { "Tag" } th { "Digest" } th { "Version" } th { "Revision" } th { "Labels" } th { "Published" } th { "Origin" }
                @if artifacts { th { "Why not a release" } }
            } }
            tbody {
                @for t in tags {
                    tr {
                        td { code.tag { (t.tag) } }
                        td { (digest(&t.digest)) br; span.muted { (t.media_type) } }
                        td { (t.version) }
                        td { code { (t.revision.get(..12).unwrap_or(&t.revision)) } }
                        td { (labels(&t.labels)) }
                        td title=(time(t.published_at_ms)) { (time(t.published_at_ms)) }
                        td { @match &t.origin { Some(o) => { code { (o.registry_url) "/" (o.repository) } } None => { span.muted { "-" } } } }
                        @if artifacts { td.why.muted { (t.artifact.as_deref().unwrap_or("")) } }
                    }
                }
                @if tags.is_empty() {
                    tr { td colspan="8" .muted { "none" } }
                }
            }
        }
    }
}

/// Percent-encodes a query value (names hold `/`, `.`, `-`, `_`; anything else is encoded).
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
