//! `GET /ui/live`: Server-Sent Events telling open pages that something changed.
//!
//! Each publish or ring move (one batch of the live fan-out) and each stored cluster report
//! sends one `change` event; the page's script then fetches itself again. The events carry
//! only what changed (kind, seq, image), never labels, so nothing untrusted reaches the script.
//! A comment line every 15 s keeps proxies from closing an idle stream; the stream ends when
//! the server shuts down.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use super::{State, UiAuth};
use crate::service::{EventBatch, EventKind};

/// How often an idle stream sends a keep-alive comment.
const KEEPALIVE: Duration = Duration::from_secs(15);

struct Live {
    events: broadcast::Receiver<EventBatch>,
    reports: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    first: bool,
}

fn change(kind: &str, seq: u64, image: &str) -> Bytes {
    let data = serde_json::json!({ "kind": kind, "seq": seq, "image": image });
    Bytes::from(format!("event: change\ndata: {data}\n\n"))
}

impl Live {
    /// The next chunk to send, or None when the stream should end.
    async fn next(&mut self) -> Option<Bytes> {
        if std::mem::take(&mut self.first) {
            // Tells the browser how long to wait before reconnecting after a drop.
            return Some(Bytes::from_static(b"retry: 2000\n: ferry live\n\n"));
        }
        if *self.closing.borrow() {
            return None;
        }
        tokio::select! {
            batch = self.events.recv() => match batch {
                Ok(batch) => {
                    let last = batch.last()?;
                    let kind = match &last.kind {
                        EventKind::TagMoved(_) => "tag",
                        EventKind::RingMoved(_) => "ring",
                        EventKind::PipelineApplied { .. } => "pipeline",
                    };
                    Some(change(kind, last.seq, &last.image))
                }
                // Fell behind: one change covers everything missed, the page re-reads it all.
                Err(broadcast::error::RecvError::Lagged(_)) => Some(change("lagged", 0, "")),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            changed = self.reports.changed() => match changed {
                Ok(()) => Some(change("report", 0, "")),
                Err(_) => None,
            },
            _ = self.closing.changed() => None,
            () = tokio::time::sleep(KEEPALIVE) => Some(Bytes::from_static(b": keep-alive\n\n")),
        }
    }
}

/// `GET /ui/live`.
pub(super) async fn live(state: State, auth: web::Data<UiAuth>, req: HttpRequest) -> HttpResponse {
    if auth.viewer(&state, &req).await.is_err() {
        return HttpResponse::Unauthorized()
            .content_type("text/plain; charset=utf-8")
            .body("the live stream needs a dashboard session: log in at /ui/login");
    }
    let live = Live {
        events: state.subscribe_live(),
        reports: state.reports_changed(),
        closing: auth.closing.clone(),
        first: true,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        live.next()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), live))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
