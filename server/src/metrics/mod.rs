//! Prometheus metrics of the server: one [`Metrics`] with one registry, owned by the
//! [`Service`](crate::service::Service) and shared by every layer that counts something.
//!
//! Names follow Prometheus conventions: a `ferry_` prefix, the unit in the name (`_seconds`),
//! `_total` on counters. Label values are a closed set (results, event kinds, endpoint
//! patterns, HTTP statuses) except `cluster`, whose names the server validated when the agent
//! reported; raw request paths never become labels, since they carry untrusted names. The
//! encoder escapes every label value.
//!
//! Gauges that mirror the service's state (head seq, cursor lag) are set when `/metrics` is
//! scraped ([`crate::service::Service::refresh_metrics`]), not on every change: a scrape every
//! few seconds costs less than touching a gauge on every publish and report.
//!
//! [`http`] serves `GET /metrics` and times registry requests.

pub mod http;

use std::borrow::Cow;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s output: OpenMetrics text, which Prometheus
/// negotiates and parses (the crate writes only that format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `result` label only.
type ByResult = Family<[(&'static str, &'static str); 1], Counter>;

/// One registry request's labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/v2/{name}/manifests/{reference}`), never the raw path.
    pub endpoint: Cow<'static, str>,
    /// The HTTP status answered.
    pub status: u16,
}

/// Every metric the server exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    publishes: ByResult,
    events_appended: Family<[(&'static str, &'static str); 1], Counter>,
    head_seq: Gauge,
    open_streams: Gauge,
    registry_requests: Family<RequestLabels, Counter>,
    registry_duration: Family<[(&'static str, Cow<'static, str>); 1], Histogram>,
    cluster_lag: Family<[(&'static str, String); 1], Gauge>,
    store_commit: Histogram,
    token_checks: ByResult,
    notifications: ByResult,
}

/// Buckets for request and commit latencies: 100 µs doubling to about 3.3 s. A registry read
/// from memory takes tens of microseconds; an fsynced SQLite commit a few milliseconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let publishes = ByResult::default();
        registry.register(
            "publishes",
            "Publish calls by result: ok, or the gRPC status code of the refusal",
            publishes.clone(),
        );
        let events_appended = Family::default();
        registry.register(
            "events_appended",
            "Events appended to the log, by kind",
            events_appended.clone(),
        );
        let head_seq = Gauge::default();
        registry.register(
            "head_seq",
            "The seq of the newest event in the log",
            head_seq.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "subscribe_streams_open",
            "Subscribe (event) streams open now",
            open_streams.clone(),
        );
        let registry_requests = Family::default();
        registry.register(
            "http_requests",
            "Requests on the HTTP (registry) listener by endpoint pattern and status",
            registry_requests.clone(),
        );
        let registry_duration = Family::new_with_constructor(latency_histogram as fn() -> _);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer a request on the HTTP (registry) listener, by endpoint pattern",
            Unit::Seconds,
            registry_duration.clone(),
        );
        let cluster_lag = Family::default();
        registry.register(
            "cluster_cursor_lag_events",
            "Events between the head of the log and a cluster's cursor at its last report",
            cluster_lag.clone(),
        );
        let store_commit = latency_histogram();
        registry.register_with_unit(
            "store_commit_duration",
            "Time SQLite write transactions take, commit (fsync) included",
            Unit::Seconds,
            store_commit.clone(),
        );
        let token_checks = ByResult::default();
        registry.register(
            "token_checks",
            "Token checks against the store by result: ok, missing, unknown, revoked",
            token_checks.clone(),
        );
        let notifications = ByResult::default();
        registry.register(
            "notifications",
            "Notifications to --notify-url receivers by result: delivered, retried (an attempt failed and was tried again), failed (given up), dropped (the receiver's queue was full)",
            notifications.clone(),
        );
        Metrics {
            registry,
            publishes,
            events_appended,
            head_seq,
            open_streams,
            registry_requests,
            registry_duration,
            cluster_lag,
            store_commit,
            token_checks,
            notifications,
        }
    }

    /// The counters the notification outbox counts into (`ferry_notifications_total`).
    pub fn notification_stats(&self) -> crate::notify::OutboxStats {
        let counter = |result: &'static str| {
            self.notifications
                .get_or_create(&[("result", result)])
                .clone()
        };
        crate::notify::OutboxStats {
            delivered: counter("delivered"),
            retried: counter("retried"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The text exposition of every metric ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// One Publish call ended with `result` (`ok` or a gRPC code name).
    pub fn publish(&self, result: &'static str) {
        self.publishes.get_or_create(&[("result", result)]).inc();
    }

    /// `n` events of `kind` were appended.
    pub fn events_appended(&self, kind: &'static str, n: u64) {
        self.events_appended
            .get_or_create(&[("kind", kind)])
            .inc_by(n);
    }

    /// Sets the head seq gauge.
    pub fn set_head_seq(&self, seq: u64) {
        self.head_seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// A Subscribe stream opened; the returned guard counts it until dropped.
    pub fn stream_opened(&self) -> OpenStream {
        self.open_streams.inc();
        OpenStream(self.open_streams.clone())
    }

    /// One HTTP request to `endpoint` (a route pattern) answered `status` after `elapsed`.
    pub fn http_request(&self, endpoint: Cow<'static, str>, status: u16, elapsed: Duration) {
        self.registry_duration
            .get_or_create(&[("endpoint", endpoint.clone())])
            .observe(elapsed.as_secs_f64());
        self.registry_requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
    }

    /// Replaces the per-cluster lag gauges with `lags` (cluster, events behind the head), so a
    /// cluster the server no longer knows leaves the series.
    pub fn set_cluster_lags(&self, lags: impl IntoIterator<Item = (String, u64)>) {
        self.cluster_lag.clear();
        for (cluster, lag) in lags {
            self.cluster_lag
                .get_or_create(&[("cluster", cluster)])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }

    /// The histogram the store times its write transactions with.
    pub fn store_commit_histogram(&self) -> Histogram {
        self.store_commit.clone()
    }

    /// One token check against the store ended with `result`.
    pub fn token_check(&self, result: &'static str) {
        self.token_checks.get_or_create(&[("result", result)]).inc();
    }
}

/// Counts one open Subscribe stream while it lives.
#[derive(Debug)]
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_labels_are_escaped() {
        let m = Metrics::new();
        m.publish("ok");
        m.events_appended("tag_moved", 2);
        m.set_head_seq(7);
        let stream = m.stream_opened();
        m.http_request(
            "/v2/{name}/manifests/{reference}".into(),
            200,
            Duration::from_millis(1),
        );
        m.set_cluster_lags([("eu\"prod\n".to_string(), 3)]);
        m.store_commit_histogram().observe(0.002);
        m.token_check("unknown");
        let text = m.encode();
        for line in [
            "ferry_publishes_total{result=\"ok\"} 1",
            "ferry_events_appended_total{kind=\"tag_moved\"} 2",
            "ferry_head_seq 7",
            "ferry_subscribe_streams_open 1",
            "ferry_http_requests_total{endpoint=\"/v2/{name}/manifests/{reference}\",status=\"200\"} 1",
            "ferry_http_request_duration_seconds_count{endpoint=\"/v2/{name}/manifests/{reference}\"} 1",
            "ferry_cluster_cursor_lag_events{cluster=\"eu\\\"prod\\n\"} 3",
            "ferry_store_commit_duration_seconds_count 1",
            "ferry_token_checks_total{result=\"unknown\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
        drop(stream);
        m.set_cluster_lags([]);
        let text = m.encode();
        assert!(text.contains("ferry_subscribe_streams_open 0"), "{text}");
        assert!(!text.contains("ferry_cluster_cursor_lag_events{"), "{text}");
    }
}
