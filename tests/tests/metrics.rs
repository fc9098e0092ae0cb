//! Issue 11, must show 2: a real Prometheus scrapes ferry-server's and ferry-agent's `/metrics`,
//! and PromQL queries through its HTTP API see a publish, the agent's push (its publish → pushed
//! histogram counts one more release) and a registry read by skopeo, by endpoint pattern. Real
//! ferry-server, ferry-agent, docker-registry, git daemon, skopeo and Prometheus.

use std::time::Duration;

use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::ports::free_port;
use ferry_tests::process::require_tool;
use ferry_tests::prometheus::Prometheus;
use ferry_tests::skopeo;

/// Scrapes run every second; a change shows within a few, a reconnecting agent within ten.
const WAIT: Duration = Duration::from_secs(60);

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: IMG:0.9.0\n";

fn watcher(image: &str) -> String {
    format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: {image}\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n")
}

/// Waits until `promql` has one sample equal to `want`; panics with the last answer and the
/// logs otherwise.
fn wait_value(prom: &Prometheus, promql: &str, want: f64, logs: &dyn Fn() -> String) {
    let mut last = None;
    let seen = wait_until(WAIT, || {
        last = prom.query(promql).ok();
        matches!(last.as_deref(), Some([one]) if one.value == want)
    });
    assert!(
        seen,
        "{promql} never answered {want}; last answer: {last:?}\n{}",
        logs()
    );
}

#[test]
fn prometheus_sees_a_publish_the_agents_push_and_registry_reads() {
    for tool in ["skopeo", "git", "prometheus"] {
        require_tool(tool);
    }
    let tmp = tempfile::tempdir().unwrap();
    let origin = OriginRegistry::start();
    let server = FerryServer::start();
    let image = format!("{}/team/web", origin.addr());
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", &DEPLOYMENT.replace("IMG", &image)),
            (".pipe/imagewatcher.yaml", &watcher(&image)),
        ],
    );
    let agent_addr = format!("127.0.0.1:{}", free_port());
    let agent = FerryAgent::start_with(
        &agent_config(&server, &url, None, &[]),
        &[],
        &["--resync-secs", "2", "--metrics-addr", &agent_addr],
        "info",
    );
    let prom = Prometheus::start(&[
        ("ferry-server", &server.http_addr),
        ("ferry-agent", &agent_addr),
    ]);
    let logs = || {
        format!(
            "--- ferry-server\n{}\n--- ferry-agent\n{}\n--- prometheus\n{}",
            server.log(),
            agent.log(),
            prom.log()
        )
    };

    // Both targets are up, and the agent holds its stream.
    wait_value(&prom, r#"up{job="ferry-server"}"#, 1.0, &logs);
    wait_value(&prom, r#"up{job="ferry-agent"}"#, 1.0, &logs);
    wait_value(&prom, "ferry_subscribe_streams_open", 1.0, &logs);
    wait_value(
        &prom,
        "ferry_agent_publish_to_push_seconds_count",
        0.0,
        &logs,
    );
    assert!(
        prom.query(r#"ferry_publishes_total{result="ok"}"#)
            .unwrap()
            .is_empty(),
        "nothing was published yet"
    );

    // One release, published from a real origin: the server counts it, the agent pushes it.
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let rel = layout.add_image(ImageSpec::default());
    layout.tag(&rel, "1.0.0");
    skopeo::copy(
        &layout.reference("1.0.0"),
        &origin.docker_ref("team/web:1.0.0"),
    )
    .unwrap();
    server.publish_ok(&[&format!("docker://{image}:1.0.0"), "--insecure"]);
    let clone = tmp.path().join("clone");
    let landed = wait_until(WAIT, || {
        let _ = std::fs::remove_dir_all(&clone);
        git::clone(&url, &clone).is_ok()
            && std::fs::read_to_string(clone.join("web/deployment.yaml"))
                .is_ok_and(|f| f.contains(":1.0.0"))
    });
    assert!(landed, "the agent never pushed 1.0.0:\n{}", logs());

    wait_value(&prom, r#"ferry_publishes_total{result="ok"}"#, 1.0, &logs);
    wait_value(
        &prom,
        r#"ferry_events_appended_total{kind="tag_moved"}"#,
        1.0,
        &logs,
    );
    wait_value(&prom, "ferry_head_seq", 1.0, &logs);
    wait_value(
        &prom,
        "ferry_agent_publish_to_push_seconds_count",
        1.0,
        &logs,
    );
    wait_value(&prom, "ferry_agent_commits_pushed_total", 1.0, &logs);
    wait_value(
        &prom,
        r#"ferry_agent_events_received_total{provider="ferry"}"#,
        1.0,
        &logs,
    );
    wait_value(
        &prom,
        r#"ferry_agent_events_applied_total{provider="ferry"}"#,
        1.0,
        &logs,
    );
    wait_value(
        &prom,
        r#"ferry_agent_targets_failing{provider="ferry"}"#,
        0.0,
        &logs,
    );
    // The agent reported its cursor at the head: no lag for its cluster (the token's name).
    wait_value(
        &prom,
        r#"ferry_cluster_cursor_lag_events{cluster="bootstrap"}"#,
        0.0,
        &logs,
    );
    // The publish committed to SQLite and checked the publisher's token.
    let commits = prom
        .value("ferry_store_commit_duration_seconds_count")
        .unwrap_or(0.0);
    assert!(commits >= 1.0, "no SQLite commit observed:\n{}", logs());
    let ok_checks = prom
        .value(r#"ferry_token_checks_total{result="ok"}"#)
        .unwrap_or(0.0);
    assert!(ok_checks >= 1.0, "no token check observed:\n{}", logs());

    // A registry read by skopeo is counted under the route pattern, never the image's name.
    let repo = format!("{}/team/web", origin.addr().replace(':', "_"));
    skopeo::inspect(&server.docker_ref(&format!("{repo}:1.0.0")), &[]).unwrap();
    let manifests =
        r#"ferry_http_requests_total{endpoint="/v2/{name}/manifests/{reference}",status="200"}"#;
    let mut last = None;
    let counted = wait_until(WAIT, || {
        last = prom.value(manifests);
        last.is_some_and(|v| v >= 1.0)
    });
    assert!(counted, "{manifests}: {last:?}\n{}", logs());
    let by_endpoint = prom
        .query("sum by (endpoint) (ferry_http_requests_total)")
        .unwrap();
    for s in &by_endpoint {
        let endpoint = s.labels["endpoint"].as_str().unwrap_or_default();
        assert!(
            !endpoint.contains("team/web"),
            "a raw path became a label: {by_endpoint:?}"
        );
    }
    let latency = prom
        .value(r#"sum(ferry_http_request_duration_seconds_count{endpoint="/v2/{name}/manifests/{reference}"})"#)
        .unwrap_or(0.0);
    assert!(latency >= 1.0, "no latency observed: {latency}");
}
