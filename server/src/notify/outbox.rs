//! The outbox: one bounded queue and one sender task per receiver, so a slow or hanging
//! receiver delays only its own notifications, never a publish and never another receiver.
//!
//! Queuing never waits: [`Outbox::offer`] uses `try_send`, and a full queue drops the
//! notification, counts it and logs it. Each attempt has a timeout; a failed attempt is retried
//! with doubling backoff a bounded number of times, then given up (counted and logged).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use super::message::{Format, Notification};
use super::url::WebhookUrl;

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The body format.
    pub format: Format,
    /// Notifications waiting per receiver; one more is dropped.
    pub queue: usize,
    /// Longest one attempt (connect, send, answer) may take.
    pub timeout: Duration,
    /// Attempts per notification, the first included.
    pub attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub backoff: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            format: Format::Json,
            queue: 1024,
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: Duration::from_secs(1),
        }
    }
}

/// What the outbox did since start, over every receiver: the server's
/// `ferry_notifications_total{result}` counters ([`crate::metrics::Metrics::notification_stats`]).
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Notifications a receiver answered with 2xx.
    pub delivered: Counter,
    /// Attempts that failed and were tried again.
    pub retried: Counter,
    /// Notifications given up after the last attempt or a refusal (4xx).
    pub failed: Counter,
    /// Notifications dropped because a receiver's queue was full.
    pub dropped: Counter,
}

/// The queues of every receiver.
#[derive(Clone)]
pub struct Outbox {
    queues: Vec<(WebhookUrl, mpsc::Sender<Arc<Notification>>)>,
    stats: Arc<OutboxStats>,
}

impl Outbox {
    /// Starts one sender task per URL on the current runtime.
    /// `stats`: the counters to count into (the server's metrics).
    pub fn start(urls: &[WebhookUrl], delivery: &Delivery, stats: OutboxStats) -> Outbox {
        let stats = Arc::new(stats);
        let client = reqwest::Client::builder()
            .user_agent(concat!("ferry-server/", env!("CARGO_PKG_VERSION")))
            // Webhook receivers answer directly; a redirect could send the body elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building the notification HTTP client");
        let queues = urls
            .iter()
            .map(|url| {
                let (tx, rx) = mpsc::channel(delivery.queue.max(1));
                tokio::spawn(deliver(
                    client.clone(),
                    url.clone(),
                    delivery.clone(),
                    rx,
                    stats.clone(),
                ));
                (url.clone(), tx)
            })
            .collect();
        Outbox { queues, stats }
    }

    /// Queues `n` for every receiver without waiting.
    pub fn offer(&self, n: Notification) {
        let n = Arc::new(n);
        for (url, tx) in &self.queues {
            match tx.try_send(n.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let dropped = self.stats.dropped.inc() + 1;
                    tracing::warn!(
                        receiver = %url.shown(),
                        kind = n.what.kind(),
                        id = %n.id,
                        dropped_total = dropped,
                        "notification dropped: the receiver's queue is full"
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<OutboxStats> {
        &self.stats
    }
}

/// One receiver's sender task: ends when the outbox is dropped.
async fn deliver(
    client: reqwest::Client,
    url: WebhookUrl,
    delivery: Delivery,
    mut rx: mpsc::Receiver<Arc<Notification>>,
    stats: Arc<OutboxStats>,
) {
    let receiver = url.shown();
    while let Some(n) = rx.recv().await {
        let body = n.body(delivery.format);
        let mut wait = delivery.backoff;
        for attempt in 1..=delivery.attempts.max(1) {
            let sent = client
                .post(url.url().clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Ferry-Event", n.what.kind())
                .header("X-Ferry-Delivery", &n.id)
                .timeout(delivery.timeout)
                .body(body.clone())
                .send()
                .await;
            let why = match sent {
                Ok(r) if r.status().is_success() => {
                    stats.delivered.inc();
                    tracing::debug!(%receiver, kind = n.what.kind(), id = %n.id, attempt, "notification delivered");
                    break;
                }
                // A refusal other than "too many requests" or "timeout" will not change on retry.
                Ok(r)
                    if r.status().is_client_error()
                        && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS
                        && r.status() != reqwest::StatusCode::REQUEST_TIMEOUT =>
                {
                    stats.failed.inc();
                    tracing::warn!(%receiver, kind = n.what.kind(), id = %n.id, status = %r.status(), "notification refused by the receiver; not retried");
                    break;
                }
                Ok(r) => format!("answered {}", r.status()),
                // Without the URL: it may carry the receiver's secret.
                Err(e) => describe(&e.without_url()),
            };
            if attempt == delivery.attempts.max(1) {
                stats.failed.inc();
                tracing::warn!(%receiver, kind = n.what.kind(), id = %n.id, attempt, error = %why, "notification failed; giving up");
            } else {
                stats.retried.inc();
                tracing::warn!(%receiver, kind = n.what.kind(), id = %n.id, attempt, error = %why, retry_in_ms = wait.as_millis() as u64, "notification failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// An error and its causes in one line.
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(": ");
            s.push_str(&c_text);
        }
        cause = c.source();
    }
    s
}
