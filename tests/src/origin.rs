//! An origin registry: the CNCF reference registry (`docker-registry`, distribution v2) on a
//! free loopback port, with filesystem storage in a temp dir. [`OriginRegistry::start`] runs
//! it as the tests want it (deletes enabled, no caches); [`OriginRegistry::start_as_shipped`]
//! with the configuration the official `registry` image ships, which is how users run it and
//! so what the benchmarks compare ferry with.
//!
//! Counting requests: distribution writes an Apache combined-format access log line per HTTP
//! request to **stdout**, e.g.
//! `127.0.0.1 - - [21/Nov/2026:17:33:19 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`,
//! and logrus `key=value` lines (`msg="response completed" http.request.method=GET …`) to
//! stderr. Both go to one log file; only the access-log lines are counted. The line is
//! written after the handler returns, so a client can see its response a moment before the
//! line lands: use [`OriginRegistry::wait_for_requests`] when asserting growth.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http;
use crate::ports::free_port;
use crate::process::{require_tool, spawn_logged, ChildGuard};

/// A running `docker-registry`; killed when dropped.
pub struct OriginRegistry {
    // Declared before `dir` so the process is gone (and its log tail printed on failure)
    // before the temp dir holding the log is deleted.
    child: ChildGuard,
    addr: String,
    config: OriginConfig,
    dir: TempDir,
}

/// One line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// The HTTP method: `GET`, `HEAD`, …
    pub method: String,
    /// Path and query as requested, e.g. `/v2/team/app/manifests/1`.
    pub path: String,
    /// The status code the registry answered with.
    pub status: u16,
}

/// Which configuration the registry runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginConfig {
    /// The tests' own: filesystem storage with deletes enabled, no blob-descriptor cache.
    Tests,
    /// The `/etc/docker/registry/config.yml` of the official `registry` image: filesystem
    /// storage with the in-memory blob-descriptor cache, the `nosniff` header and the storage
    /// health check; no deletes.
    AsShipped,
}

impl OriginConfig {
    /// How a benchmark table names it.
    pub fn label(self) -> &'static str {
        match self {
            OriginConfig::Tests => "tests' config",
            OriginConfig::AsShipped => "as shipped",
        }
    }
}

impl OriginRegistry {
    /// Starts the registry with the tests' configuration ([`OriginConfig::Tests`]).
    pub fn start() -> OriginRegistry {
        OriginRegistry::start_with(OriginConfig::Tests)
    }

    /// Starts the registry with the official image's configuration
    /// ([`OriginConfig::AsShipped`]).
    pub fn start_as_shipped() -> OriginRegistry {
        OriginRegistry::start_with(OriginConfig::AsShipped)
    }

    /// Starts the registry and returns once `GET /v2/` answers 200 (that probe, and any
    /// retries of it, appear in the access log). Panics with the log tail if it does not
    /// come up within 10 s.
    pub fn start_with(config_kind: OriginConfig) -> OriginRegistry {
        let binary = require_tool("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("ferry-origin-")
            .tempdir()
            .expect("creating a temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            config_yaml(config_kind, &addr, &dir.path().join("storage")),
        )
        .expect("writing the registry config");
        let mut cmd = Command::new(binary);
        cmd.arg("serve").arg(&config);
        let mut child = spawn_logged(cmd, "docker-registry", dir.path());

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            child.assert_running();
            match http::get(&addr, "/v2/") {
                Ok(r) if r.status == 200 => break,
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                other => panic!(
                    "docker-registry on {addr} not ready after 10 s (last probe: {other:?})\n{}",
                    child.log_tail(40)
                ),
            }
        }
        OriginRegistry {
            child,
            addr,
            config: config_kind,
            dir,
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> OriginConfig {
        self.config
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// A skopeo reference into this registry: `docker://127.0.0.1:PORT/{repo_and_tag}`.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.addr)
    }

    /// Where the registry stores blobs and manifests.
    pub fn storage_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("storage")
    }

    /// Every request the registry has logged so far, oldest first.
    pub fn requests(&self) -> Vec<AccessLogEntry> {
        self.child
            .log()
            .lines()
            .filter_map(parse_access_line)
            .collect()
    }

    /// How many HTTP requests the registry has logged so far (including the readiness probe
    /// made by [`OriginRegistry::start`]; compare counts before and after, not absolutes).
    pub fn count_requests(&self) -> usize {
        self.requests().len()
    }

    /// Waits until at least `at_least` requests are logged; returns the count reached, which
    /// is lower than `at_least` only on timeout.
    pub fn wait_for_requests(&self, at_least: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.count_requests();
            if n >= at_least || Instant::now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of the registry's combined stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }
}

fn config_yaml(kind: OriginConfig, addr: &str, storage: &Path) -> String {
    let storage = storage.display();
    match kind {
        // A fixed http.secret silences the "No HTTP secret provided" warning; the access log
        // is on by default and is what `count_requests` reads.
        OriginConfig::Tests => format!(
            "version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: ferry-tests-not-secret
"
        ),
        // The official image's file, with only the address and the storage directory
        // changed (the access log stays on, as there).
        OriginConfig::AsShipped => format!(
            "version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {storage}
http:
  addr: {addr}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"
        ),
    }
}

/// Parses `IP - - [date] "METHOD PATH HTTP/1.1" STATUS SIZE "referer" "agent"`.
fn parse_access_line(line: &str) -> Option<AccessLogEntry> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    if !parts.next()?.starts_with("HTTP/") || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let status = rest.trim_start().split(' ').next()?.parse().ok()?;
    Some(AccessLogEntry {
        method: method.to_string(),
        path: path.to_string(),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_lines_and_ignores_logrus_lines() {
        let access = r#"127.0.0.1 - - [21/Nov/2026:17:33:19 +0000] "GET /v2/foo/manifests/x HTTP/1.1" 404 91 "" "curl/7.88.1""#;
        assert_eq!(
            parse_access_line(access),
            Some(AccessLogEntry {
                method: "GET".into(),
                path: "/v2/foo/manifests/x".into(),
                status: 404
            })
        );
        let logrus = r#"time="2026-11-21T17:33:19Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/ http.response.status=200"#;
        assert_eq!(parse_access_line(logrus), None);
    }

    #[test]
    fn origin_starts_and_counts_requests() {
        let origin = OriginRegistry::start();
        let before = origin.count_requests();
        assert!(
            before >= 1,
            "the readiness probe is logged:\n{}",
            origin.log_tail(20)
        );
        let r = http::get(&origin.addr(), "/v2/nothing/here/manifests/latest").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            origin.wait_for_requests(before + 1, Duration::from_secs(5)),
            before + 1
        );
        let last = origin.requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.path.as_str(), last.status),
            ("GET", "/v2/nothing/here/manifests/latest", 404)
        );
    }

    /// The benchmarks' baseline: the official image's configuration starts, answers with its
    /// extra header, serves a pushed image through the blob-descriptor cache and still logs
    /// each request.
    #[test]
    fn as_shipped_origin_serves_an_image_and_counts_requests() {
        let origin = OriginRegistry::start_as_shipped();
        let probe = http::get(&origin.addr(), "/v2/").unwrap();
        assert_eq!(probe.header("X-Content-Type-Options"), Some("nosniff"));
        let tmp = tempfile::tempdir().unwrap();
        let mut layout = crate::oci::OciLayout::new(tmp.path().join("img"));
        let image = layout.add_image(crate::oci::ImageSpec::default());
        layout.tag(&image, "v1");
        crate::skopeo::copy(&layout.reference("v1"), &origin.docker_ref("team/app:v1")).unwrap();
        let before = origin.count_requests();
        let path = format!("/v2/team/app/manifests/{}", image.manifest_digest);
        let got = http::request(
            &origin.addr(),
            "GET",
            &path,
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        )
        .unwrap();
        assert_eq!(got.status, 200, "{}", origin.log_tail(20));
        assert_eq!(got.body, image.manifest_bytes);
        assert_eq!(
            origin.wait_for_requests(before + 1, Duration::from_secs(5)),
            before + 1
        );
    }
}
