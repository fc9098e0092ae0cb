//! A real Prometheus (Debian's `prometheus`) on a free loopback port with its own storage,
//! scraping the given targets every second, queried through its HTTP API (`/api/v1/query`).

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::http;
use crate::ports::free_port;
use crate::process::{require_tool, spawn_logged, ChildGuard};

/// A running Prometheus, stopped (and its storage removed) on drop.
pub struct Prometheus {
    /// Its web and API address, "127.0.0.1:PORT".
    pub addr: String,
    child: ChildGuard,
    _dir: tempfile::TempDir,
}

/// One sample of an instant query: the series' labels and its value.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The series' labels, `__name__` included.
    pub labels: serde_json::Map<String, Value>,
    /// The value at the query's time.
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name, "HOST:PORT"; path `/metrics`) every
    /// second, and waits until its API answers.
    pub fn start(targets: &[(&str, &str)]) -> Prometheus {
        let binary = require_tool("prometheus");
        let dir = tempfile::tempdir().expect("prometheus dir");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("writing prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        let mut child = spawn_logged(cmd, "prometheus", dir.path());
        child.wait_for_tcp(&addr, Duration::from_secs(30));
        let p = Prometheus {
            addr,
            child,
            _dir: dir,
        };
        let ready = crate::ferry::wait_until(Duration::from_secs(30), || {
            http::get(&p.addr, "/-/ready").is_ok_and(|r| r.status == 200)
        });
        assert!(ready, "prometheus never became ready:\n{}", p.log());
        p
    }

    /// Prometheus's log so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Runs the instant query `promql` and returns its samples (a vector result).
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let r = http::get(&self.addr, &path)?;
        let body: Value = serde_json::from_slice(&r.body)
            .with_context(|| format!("{promql}: the API answered {} with non-JSON", r.status))?;
        if body["status"] != "success" {
            bail!("{promql}: {body}");
        }
        let result = body["data"]["result"]
            .as_array()
            .with_context(|| format!("{promql}: no result in {body}"))?;
        result
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("{promql}: sample without a value: {s}"))?;
                let labels = s["metric"].as_object().cloned().unwrap_or_default();
                Ok(Sample { labels, value })
            })
            .collect()
    }

    /// The value of `promql` when it has exactly one sample; None when it has none (or the
    /// query failed).
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).ok()?.as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query parameter.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
