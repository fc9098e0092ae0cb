//! The clusters page: every cluster that reported or holds a stream, whether it is connected,
//! when it last reported, how far its cursor lags behind the head, its last commit, and every
//! failing target with the agent's error text.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::format::{commit, digest, time, when};
use super::{layout, State, UiAuth};
use crate::service::ReportedTarget;

/// `GET /ui/clusters`.
pub(super) async fn list(state: State, auth: web::Data<UiAuth>, req: HttpRequest) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let head = state.head_seq();
    let clusters = state.clusters();
    let mut failing: Vec<ReportedTarget> = Vec::new();
    let mut rows = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let targets = state.cluster_targets(&c.name);
        let last = targets.iter().max_by_key(|t| t.pushed_at_ms).cloned();
        let bad = targets.iter().filter(|t| !t.error.is_empty()).count();
        failing.extend(targets.into_iter().filter(|t| !t.error.is_empty()));
        rows.push((c, last, bad));
    }
    let count = clusters.len();
    let body = html! {
        h1 { "Clusters " span.muted { "(" (count) ", head seq " (head) ")" } }
        table #clusters {
            thead { tr {
                th { "Cluster" } th { "Stream" } th { "Last report" } th title="the cursor the agent sent with its last report" { "Cursor at last report" } th { "Lag behind head" } th { "Failing" } th { "Last commit" }
            } }
            tbody {
                @for (c, last, bad) in &rows {
                    @let lag = head.saturating_sub(c.cursor);
                    tr data-cluster=(c.name) {
                        td { strong { (c.name) } br; span.muted { "token " (c.token) } }
                        td { @if c.connected { span.pill.ok { "connected" } } @else { span.pill.bad { "disconnected" } } }
                        td title=(time(c.reported_at_ms)) { (when(c.reported_at_ms)) }
                        td.cursor { (c.cursor) }
                        td.lag { @if lag == 0 { span.ok { "0" } } @else { span.warn { (lag) } " events behind" } }
                        td { @if *bad == 0 { span.ok { "0" } } @else { span.bad { (bad) } } }
                        td { @match last.as_ref().filter(|t| !t.commit.is_empty()) {
                            Some(t) => { (commit(&t.commit)) " " span.muted { (when(t.pushed_at_ms)) } }
                            None => { span.muted { "-" } }
                        } }
                    }
                }
                @if rows.is_empty() {
                    tr { td colspan="7" .muted { "No agent has connected or reported yet." } }
                }
            }
        }
        h2 { "Failing targets (" (failing.len()) ")" }
        table #failing {
            thead { tr { th { "Cluster" } th { "Target" } th { "Image" } th { "Holds" } th { "Error" } } }
            tbody {
                @for t in &failing {
                    tr {
                        td { (t.cluster) }
                        td { code { (t.target) } br; span.muted { (t.file) } }
                        td { (t.image) @if !t.ring.is_empty() { br; span.muted { "ring " (t.ring) } } }
                        td { (digest(&t.digest)) }
                        td.error { (t.error) }
                    }
                }
                @if failing.is_empty() {
                    tr { td colspan="5" .muted { "Every reported target applies cleanly." } }
                }
            }
        }
    };
    layout::page(&viewer, "Clusters", "clusters", body)
}
