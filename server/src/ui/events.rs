//! The recent events page: the newest entries of the event log, newest first, like
//! `kubectl get events`; and the events table the image page reuses for its history.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::format::{digest, time, when};
use super::{blocking, layout, State, UiAuth};
use crate::service::{Event, EventKind};

/// Rows on the events page.
const ROWS: usize = 100;

/// `GET /ui/events`.
pub(super) async fn list(state: State, auth: web::Data<UiAuth>, req: HttpRequest) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let service = state.clone();
    let events = match blocking(&viewer, move || service.recent_events("", ROWS)).await {
        Ok(e) => e,
        Err(answer) => return answer,
    };
    let body = html! {
        h1 { "Recent events " span.muted { "(head seq " (state.head_seq()) ")" } }
        (table(&events, true))
    };
    layout::page(&viewer, "Events", "events", body)
}

/// Events as a table; `with_image` adds the image column (the image page leaves it out).
pub(super) fn table(events: &[Event], with_image: bool) -> Markup {
    html! {
        table #events {
            thead { tr {
                th { "Seq" } th { "When" } th { "Kind" }
                @if with_image { th { "Image" } }
                th { "What" } th { "Digest" } th { "By" }
            } }
            tbody {
                @for e in events {
                    tr {
                        td { (e.seq) }
                        td title=(time(e.published_at_ms)) { (when(e.published_at_ms)) }
                        @match &e.kind {
                            EventKind::TagMoved(t) => {
                                td { span.pill { "tag moved" } }
                                @if with_image { td { a href={ "/ui/images/" (e.repository) } { (e.image) } } }
                                td {
                                    code.tag { (t.tag) }
                                    @if t.previous_digest.is_empty() { span.muted { " (new)" } }
                                    @else { span.muted { " from " } (digest(&t.previous_digest)) }
                                }
                                td { (digest(&t.digest)) }
                                td.muted { "publish" }
                            }
                            EventKind::RingMoved(r) => {
                                td { span.pill.warn { "ring moved" } }
                                @if with_image { td { a href={ "/ui/images/" (e.repository) } { (e.image) } } }
                                td {
                                    a href={ "/ui/pipelines/" (r.pipeline) } { (r.pipeline) } " / " strong { (r.ring) }
                                    " " span.muted { (r.reason) }
                                    @if r.forced { " " span.pill.bad { "forced" } }
                                    @if !r.version().is_empty() { " " (r.version()) }
                                }
                                td { (digest(&r.digest)) }
                                td { (r.actor) }
                            }
                            EventKind::PipelineApplied { pipeline, actor } => {
                                td { span.pill { "pipeline applied" } }
                                @if with_image { td.muted { "-" } }
                                td { a href={ "/ui/pipelines/" (pipeline) } { (pipeline) } }
                                td.muted { "-" }
                                td { (actor) }
                            }
                        }
                    }
                }
                @if events.is_empty() {
                    tr { td colspan="7" .muted { "no events yet" } }
                }
            }
        }
    }
}
