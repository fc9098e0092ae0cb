//! Outbound notifications (`--notify-url`): JSON (or Slack) POSTs for a release published, a
//! ring moved, a gate opened, a target failing and an agent disconnected too long.
//!
//! - [`args`]: the `--notify-*` flags and their checks.
//! - [`url`]: the webhook URL rule (http/https, no userinfo) and how logs name a receiver.
//! - [`message`]: what a notification holds and its two bodies (docs/notifications.md).
//! - [`from_events`]: releases and ring moves from the event log.
//! - [`trackers`]: failing targets, disconnected clusters and opened gates, from the service's
//!   state.
//! - [`outbox`]: a bounded queue and a sender task per receiver, timeouts, bounded retries.
//!
//! The watcher reads the service's live fan-out like a Subscribe stream does (and the log when it
//! lags), so publishes never wait for it; it only ever *offers* to the outbox, which drops when
//! a receiver's queue is full.

pub mod args;
pub mod from_events;
pub mod message;
pub mod outbox;
pub mod trackers;
pub mod url;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::service::Service;
pub use args::NotifyArgs;
pub use message::{Format, Notification, What};
pub use outbox::{Delivery, Outbox, OutboxStats};
pub use url::WebhookUrl;

/// Where and how notifications go; nothing is sent without URLs.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The receivers.
    pub urls: Vec<WebhookUrl>,
    /// Queue, timeout, retries and body format.
    pub delivery: Delivery,
    /// A cluster without a stream this long is announced (default 5 minutes).
    pub disconnect_after: Duration,
}

/// How often disconnections and soaking gates are looked at: they change with no event.
const TICK: Duration = Duration::from_secs(1);
/// Events read from the log per page when the watcher lagged behind the live fan-out.
const REPLAY_PAGE: usize = 1000;

/// Starts the watcher (and the outbox's senders) when URLs are configured; the watcher ends when
/// `shutdown` turns true.
pub fn spawn(
    service: Arc<Service>,
    cfg: &NotifyConfig,
    shutdown: watch::Receiver<bool>,
) -> Option<Outbox> {
    if cfg.urls.is_empty() {
        return None;
    }
    let outbox = Outbox::start(
        &cfg.urls,
        &cfg.delivery,
        service.metrics().notification_stats(),
    );
    let receivers: Vec<String> = cfg.urls.iter().map(WebhookUrl::shown).collect();
    tracing::info!(receivers = ?receivers, format = ?cfg.delivery.format, "notifications on");
    tokio::spawn(watch_service(
        service,
        outbox.clone(),
        cfg.disconnect_after,
        shutdown,
    ));
    Some(outbox)
}

async fn watch_service(
    service: Arc<Service>,
    outbox: Outbox,
    disconnect_after: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut live = service.subscribe_live();
    let mut reports = service.reports_changed();
    // Subscribed first, so nothing after this head is missed (as Subscribe does).
    let mut cursor = service.head_seq();
    let mut failing = trackers::Failing::default();
    let mut disconnects = trackers::Disconnects::default();
    let mut gates = trackers::Gates::default();
    // Seed: what is already true at start is not news.
    read_reports(&service, &mut failing, false);
    let (_, mut soaking) = gates.update(&gate_views(&service).await, now_ms());
    let mut gates_dirty = false;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = live.recv() => {
                let events = match batch {
                    Ok(batch) if batch.first().is_none_or(|e| e.seq <= cursor + 1) => batch.to_vec(),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => replay(&service, cursor).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let fresh: Vec<_> = events.into_iter().filter(|e| e.seq > cursor).collect();
                if let Some(last) = fresh.last() {
                    cursor = last.seq;
                }
                for n in from_events::notifications(&fresh) {
                    outbox.offer(n);
                }
                gates_dirty = true;
            }
            r = reports.changed() => {
                if r.is_err() {
                    reports = service.reports_changed();
                }
                for n in read_reports(&service, &mut failing, true) {
                    outbox.offer(n);
                }
                gates_dirty = true;
            }
            _ = tick.tick() => {
                for n in disconnects.update(&service.clusters(), now_ms(), disconnect_after) {
                    outbox.offer(n);
                }
                if gates_dirty || soaking {
                    gates_dirty = false;
                    let (opened, still) = gates.update(&gate_views(&service).await, now_ms());
                    soaking = still;
                    for n in opened {
                        outbox.offer(n);
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Every event after `cursor` from the log (blocking reads off the executor).
async fn replay(service: &Arc<Service>, mut cursor: u64) -> Vec<crate::service::Event> {
    let mut out = Vec::new();
    loop {
        let s = service.clone();
        match tokio::task::spawn_blocking(move || s.replay(cursor, REPLAY_PAGE)).await {
            Ok(Ok(page)) => {
                let done = page.len() < REPLAY_PAGE;
                if let Some(last) = page.last() {
                    cursor = last.seq;
                }
                out.extend(page);
                if done {
                    return out;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, cursor, "notifications: reading the event log failed; events after it are not announced");
                return out;
            }
            Err(e) => {
                tracing::warn!(error = %e, "notifications: log replay task failed");
                return out;
            }
        }
    }
}

/// Reads the clusters whose report changed into `failing`.
fn read_reports(
    service: &Service,
    failing: &mut trackers::Failing,
    announce: bool,
) -> Vec<Notification> {
    let clusters = service.clusters();
    let mut out = Vec::new();
    for c in failing.stale(&clusters) {
        let targets = service.cluster_targets(&c.name);
        out.extend(failing.update(c, &targets, announce));
    }
    out
}

/// Every pipeline's status without history, on the blocking pool (it takes the catalog, ring
/// and report locks).
async fn gate_views(service: &Arc<Service>) -> Vec<crate::service::PipelineView> {
    let s = service.clone();
    tokio::task::spawn_blocking(move || {
        s.pipelines()
            .iter()
            .filter_map(|p| s.pipeline_status(&p.spec.name, false, false).ok())
            .flatten()
            .collect()
    })
    .await
    .unwrap_or_default()
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}
