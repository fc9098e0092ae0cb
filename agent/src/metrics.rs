//! Prometheus metrics of the agent, served at `GET /metrics` on `--metrics-addr` ([`health`]
//! answers there): one registry, shared by the run loop through [`crate::run::RunOptions`].
//!
//! Names follow Prometheus conventions: a `ferry_agent_` prefix, the unit in the name,
//! `_total` on counters. Labels are closed sets (provider names from the agent's own config,
//! rejection reasons), never image names or tags.
//!
//! [`health`]: crate::health

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus
/// negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type ByLabel = Family<[(&'static str, String); 1], Counter>;

/// Every metric the agent exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events_received: ByLabel,
    events_applied: ByLabel,
    commits_pushed: Counter,
    push_retries: Counter,
    push_rejections: Family<[(&'static str, &'static str); 1], Counter>,
    apply_duration: Histogram,
    publish_to_push: Histogram,
    targets_failing: Family<[(&'static str, String); 1], Gauge>,
    sync_calls: Family<[(&'static str, &'static str); 1], Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry_agent");
        let events_received = ByLabel::default();
        registry.register(
            "events_received",
            "Events received on a provider's stream",
            events_received.clone(),
        );
        let events_applied = ByLabel::default();
        registry.register(
            "events_applied",
            "Events applied (their batch committed and pushed, or nothing to change), by provider",
            events_applied.clone(),
        );
        let commits_pushed = Counter::default();
        registry.register(
            "commits_pushed",
            "Commits pushed to config repositories",
            commits_pushed.clone(),
        );
        let push_retries = Counter::default();
        registry.register(
            "push_retries",
            "Pushes retried after losing a race with another writer of the branch",
            push_retries.clone(),
        );
        let push_rejections = Family::default();
        registry.register(
            "push_rejections",
            "Pushes given up: refused by the remote (a hook, a protected branch), or contended past the last retry",
            push_rejections.clone(),
        );
        // One repository's plan, commit and push: tens of milliseconds on loopback, seconds
        // against a busy remote.
        let apply_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register_with_unit(
            "apply_duration",
            "Time to apply a batch to one repository: fetch, plan, commit, sign and push",
            Unit::Seconds,
            apply_duration.clone(),
        );
        // From 50 ms (a publish the agent applies at once) doubling to about 27 minutes (a
        // release waiting for an agent that was down).
        let publish_to_push = Histogram::new(exponential_buckets(0.05, 2.0, 16));
        registry.register_with_unit(
            "publish_to_push",
            "Time from a release's published_at (the tag move it deploys) to the push that put it in a target's file",
            Unit::Seconds,
            publish_to_push.clone(),
        );
        let targets_failing = Family::default();
        registry.register(
            "targets_failing",
            "Targets whose last apply failed, by provider",
            targets_failing.clone(),
        );
        let sync_calls = Family::default();
        registry.register(
            "sync_calls",
            "Sync-trigger calls after a push (Argo CD, webhooks) by result: succeeded, retried (an attempt failed and was tried again), failed (given up), dropped (the queue was full)",
            sync_calls.clone(),
        );
        Metrics {
            registry,
            events_received,
            events_applied,
            commits_pushed,
            push_retries,
            push_rejections,
            apply_duration,
            publish_to_push,
            targets_failing,
            sync_calls,
        }
    }

    /// The counters the sync triggers count into (`ferry_agent_sync_calls_total`).
    pub fn sync_stats(&self) -> crate::sync_trigger::SyncStats {
        let counter =
            |result: &'static str| self.sync_calls.get_or_create(&[("result", result)]).clone();
        crate::sync_trigger::SyncStats {
            succeeded: counter("succeeded"),
            retried: counter("retried"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The text exposition of every metric ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// `n` events arrived on `provider`'s stream.
    pub fn events_received(&self, provider: &str, n: u64) {
        self.events_received
            .get_or_create(&[("provider", provider.to_string())])
            .inc_by(n);
    }

    /// `n` events of `provider` were applied.
    pub fn events_applied(&self, provider: &str, n: u64) {
        self.events_applied
            .get_or_create(&[("provider", provider.to_string())])
            .inc_by(n);
    }

    /// A commit was pushed after `attempts` tries.
    pub fn pushed(&self, attempts: u32) {
        self.commits_pushed.inc();
        self.push_retries
            .inc_by(u64::from(attempts.saturating_sub(1)));
    }

    /// A push was given up for `reason` (`refused` or `contended`).
    pub fn push_rejected(&self, reason: &'static str) {
        self.push_rejections
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// One repository's apply took `secs`.
    pub fn apply_took(&self, secs: f64) {
        self.apply_duration.observe(secs);
    }

    /// A target's file got a release `ms` milliseconds after it was published (clamped at 0
    /// when the clocks of server and agent disagree).
    pub fn published_to_pushed(&self, ms: i64) {
        self.publish_to_push.observe(ms.max(0) as f64 / 1000.0);
    }

    /// `provider` has `n` targets whose last apply failed.
    pub fn set_targets_failing(&self, provider: &str, n: usize) {
        self.targets_failing
            .get_or_create(&[("provider", provider.to_string())])
            .set(n as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.events_received("ferry", 3);
        m.events_applied("ferry", 2);
        m.pushed(3);
        m.push_rejected("refused");
        m.apply_took(0.02);
        m.published_to_pushed(1500);
        m.published_to_pushed(-20);
        m.set_targets_failing("ferry", 1);
        let text = m.encode();
        for line in [
            "ferry_agent_events_received_total{provider=\"ferry\"} 3",
            "ferry_agent_events_applied_total{provider=\"ferry\"} 2",
            "ferry_agent_commits_pushed_total 1",
            "ferry_agent_push_retries_total 2",
            "ferry_agent_push_rejections_total{reason=\"refused\"} 1",
            "ferry_agent_apply_duration_seconds_count 1",
            "ferry_agent_publish_to_push_seconds_count 2",
            "ferry_agent_publish_to_push_seconds_sum 1.5",
            "ferry_agent_targets_failing{provider=\"ferry\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
