//! `ferry-agent --metrics-addr`: `/healthz` and `/readyz` as a kubelet sees them, while the
//! server is down, refuses the agent's token, comes up, is killed and restarts, and while the
//! config repository is gone. Real ferry-server, ferry-agent and git daemon.

use std::path::Path;
use std::time::Duration;

use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::GitDaemon;
use ferry_tests::http;
use ferry_tests::ports::free_port;
use ferry_tests::process::require_tool;

/// Reconnects back off up to 10 s, so a state change can take that long to show.
const WAIT: Duration = Duration::from_secs(30);

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: example.com/team/web:1.0.0\n";
const WATCHER: &str = "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: example.com/team/web\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n";

/// `GET /readyz`: the status and the body's `reasons` (empty when ready).
fn readyz(addr: &str) -> Option<(u16, Vec<String>)> {
    let r = http::get(addr, "/readyz").ok()?;
    let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let ready = body["ready"].as_bool()?;
    assert_eq!(
        ready,
        r.status == 200,
        "ready and the status disagree: {r:?}"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let reasons = body["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Some((r.status, reasons))
}

fn assert_healthy(addr: &str, agent: &FerryAgent) {
    let r = http::get(addr, "/healthz").expect("GET /healthz");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"ok"[..]),
        "{}",
        agent.log()
    );
}

/// Waits until `/readyz` answers `status` with a reason that contains `needle` (any reasons
/// when `needle` is empty); returns the last answer seen when it never did.
fn wait_ready(addr: &str, status: u16, needle: &str) -> Result<(), Option<(u16, Vec<String>)>> {
    let mut last = None;
    let ok = wait_until(WAIT, || {
        last = readyz(addr);
        matches!(&last, Some((s, reasons)) if *s == status
            && (needle.is_empty() || reasons.iter().any(|r| r.contains(needle))))
    });
    if ok {
        Ok(())
    } else {
        Err(last)
    }
}

fn write_token(path: &Path, token: &str) {
    std::fs::write(path, token).expect("writing the agent's token file");
}

#[test]
fn readyz_follows_the_server_the_token_and_the_repository_while_healthz_stays_ok() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", DEPLOYMENT),
            (".pipe/imagewatcher.yaml", WATCHER),
        ],
    );
    // Started once for its token and ports, then stopped: the agent starts with no server.
    let mut server = FerryServer::start();
    let good_token = server.token();
    server.kill9();
    let token_file = tmp.path().join("agent-token");
    write_token(&token_file, "not-a-token-this-server-knows");
    let config = agent_config(&server, &url, None, &[]).replace(
        &server.token_file().display().to_string(),
        &token_file.display().to_string(),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let agent = FerryAgent::start_with(
        &config,
        &[],
        &["--resync-secs", "2", "--metrics-addr", &addr],
        "info,ferry_agent=debug",
    );
    assert!(
        wait_until(WAIT, || http::get(&addr, "/healthz").is_ok()),
        "the agent never listened on --metrics-addr {addr}:\n{}",
        agent.log()
    );
    assert_healthy(&addr, &agent);

    // No server: not ready, and the reason names the provider and its last error.
    let down = wait_ready(&addr, 503, "provider ferry: not connected: ");
    assert!(
        down.is_ok(),
        "before the server is up: {down:?}\n{}",
        agent.log()
    );
    assert_healthy(&addr, &agent);

    // The server is up but refuses the token: still not ready, saying why.
    server.restart();
    let refused = wait_ready(&addr, 503, "refused the token in");
    assert!(
        refused.is_ok(),
        "token refused: {refused:?}\n{}",
        agent.log()
    );
    assert_healthy(&addr, &agent);

    // A good token (read on every connect): ready.
    write_token(&token_file, &good_token);
    let up = wait_ready(&addr, 200, "");
    assert!(up.is_ok(), "once connected: {up:?}\n{}", agent.log());
    assert_healthy(&addr, &agent);

    // The server dies: the stream ends, so not ready.
    server.kill9();
    let killed = wait_ready(&addr, 503, "provider ferry: not connected: ");
    assert!(
        killed.is_ok(),
        "after the kill: {killed:?}\n{}",
        agent.log()
    );
    assert_healthy(&addr, &agent);

    // It comes back: ready again, without restarting the agent.
    server.restart();
    let back = wait_ready(&addr, 200, "");
    assert!(back.is_ok(), "after the restart: {back:?}\n{}", agent.log());
    assert_healthy(&addr, &agent);

    // The config repository goes away: the next resync's fetch fails, and /readyz says so.
    drop(daemon);
    let gone = wait_ready(&addr, 503, "repository config: last fetch failed: syncing");
    assert!(gone.is_ok(), "repository gone: {gone:?}\n{}", agent.log());
    assert_healthy(&addr, &agent);

    // Anything but the probes and `/metrics` (tests/tests/metrics.rs) is 404.
    let r = http::get(&addr, "/metricz").expect("GET /metricz");
    assert_eq!(r.status, 404);
}
