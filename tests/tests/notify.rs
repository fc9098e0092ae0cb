//! Issue 11, notifications and sync triggers end to end: a real ferry-server, ferry-agent and
//! git daemon, with HTTP receivers written in this test (`ferry_tests::receiver`).
//!
//! The Argo CD receiver stands in for Argo CD's API server (a SaaS-like peer that cannot run
//! here): it checks what Argo CD's documented REST API expects of `POST
//! /api/v1/applications/{name}/sync` (method, path, `Authorization: Bearer`, JSON
//! `ApplicationSyncRequest` fields name, revision, prune, dryRun). Webhook bodies are checked
//! against the JSON Schemas in docs/ with Python's `jsonschema`.
//!
//! A hanging receiver must not slow publishes; that is measured in `ferry-bench notify`. Here it
//! is asserted by condition: every publish succeeds while the receiver hangs, and the outbox's
//! retry and queue-full drop are observable.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ferry_tests::ferry::{agent_config, binary, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::receiver::{check_schema, Answer, Received, Receiver};
use ferry_tests::releases::release;

const IMAGE: &str = "registry.example.com/team/web";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: registry.example.com/team/web:0.9.0\n";
const WATCHER: &str = "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/team/web\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n    - image: registry.example.com/team/web\n      provider: ferry\n      filePath: missing/deployment.yaml\n      field: spec.template.spec.containers[0].image\n";
const PIPELINE: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nspec:\n  rings: [testers, users]\n  images: [registry.example.com/team/web]\n  gates:\n    users: {soak: 2s}\n";
const ARGOCD_TOKEN: &str = "argocd-secret-token";
const WAIT: Duration = Duration::from_secs(60);

fn schema(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name)
}

fn kinds(r: &[Received]) -> Vec<String> {
    r.iter()
        .map(|r| r.json()["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

fn publish(server: &FerryServer, n: u64, tag: &str, labels: &[(&str, &str)]) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut req = release(IMAGE, n, vec![tag.to_string()]);
        req.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server
            .client()
            .await
            .publish(req)
            .await
            .expect("publish must succeed")
            .into_inner()
            .digest
    })
}

fn ferry(server: &FerryServer, token: &str, args: &[&str]) -> String {
    let out = Command::new(binary("ferry"))
        .args(args)
        .args(["--server", &server.grpc_url()])
        .env("FERRY_TOKEN", token)
        .env_remove("FERRY_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn notifications_and_sync_triggers_reach_receivers_and_a_hanging_one_slows_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // The first notification is refused with 503, so its retry is observable.
    let good = Receiver::start(|n| Answer::Status(if n == 0 { 503 } else { 200 }));
    let hang = Receiver::start(|_| Answer::Hang);
    // Argo CD's API server answers the first sync 503 (as while it restarts): retried, counted.
    let argocd = Receiver::start(|n| Answer::Status(if n == 0 { 503 } else { 200 }));
    let hook = Receiver::start(|_| Answer::Status(200));
    let good_url = good.url("/hooks/ferry?key=s3cret");
    let hang_url = hang.url("/hang");
    let server = FerryServer::start_with(&[
        "--notify-url",
        &good_url,
        "--notify-url",
        &hang_url,
        "--notify-disconnect-after",
        "1s",
        "--notify-timeout",
        "2s",
        "--notify-attempts",
        "2",
        "--notify-queue",
        "8",
    ]);
    let token = server
        .token_command(&[
            "create",
            "--role",
            "publisher,promoter,agent",
            "--name",
            "ci",
        ])
        .trim()
        .to_string();
    let pipeline = tmp.path().join("pipeline.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    ferry(
        &server,
        &token,
        &["pipeline", "apply", "-f", pipeline.to_str().unwrap()],
    );

    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", DEPLOYMENT),
            (".pipe/imagewatcher.yaml", WATCHER),
        ],
    );
    let config = format!(
        "{}  syncTriggers:\n    - repoId: config\n      argocd:\n        server: {}\n        tokenFile: argocd-token\n        applications:\n          - name: shop-prod\n          - name: api-prod\n            paths: [apps/api]\n    - repoId: config\n      webhook:\n        url: {}\n",
        agent_config(&server, &url, None, &[]),
        argocd.url(""),
        hook.url("/post-push")
    );
    let mut agent = FerryAgent::start(&config, &[("argocd-token", &format!("{ARGOCD_TOKEN}\n"))]);
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "agent never connected:\n{}",
        agent.log()
    );

    // A release: published, retried once after the 503, then delivered.
    let digest = publish(
        &server,
        1,
        "1.0.0",
        &[
            ("org.opencontainers.image.version", "1.0.0"),
            ("note", "<!channel> \u{1b}[2J"),
        ],
    );
    // The receiver's first request was refused; the retry carries the same id.
    assert!(
        wait_until(WAIT, || good.received().len() >= 2
            && kinds(&good.received())
                .contains(&"release_published".to_string())),
        "no release_published at the receiver: {:?}\n{}",
        kinds(&good.received()),
        server.log()
    );
    let first = good.received();
    assert_eq!(
        first[0].header("x-ferry-delivery"),
        first[1].header("x-ferry-delivery"),
        "{:?}",
        kinds(&first)
    );
    let rel = first
        .iter()
        .map(Received::json)
        .find(|j| j["kind"] == "release_published")
        .unwrap();
    assert_eq!(rel["digest"], digest.as_str());
    assert_eq!(rel["tags"], serde_json::json!(["1.0.0"]));
    assert_eq!(rel["version"], "1.0.0");
    assert_eq!(rel["labels"]["note"], "<!channel> \u{1b}[2J");
    for r in &first {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/hooks/ferry?key=s3cret");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.header("x-ferry-event"),
            r.json()["kind"].as_str().unwrap()
        );
    }

    // The agent pushes; Argo CD is asked to sync the application every push concerns (not the
    // one limited to apps/api), and the post-push webhook is called, both with the pushed commit.
    assert!(
        wait_until(WAIT, || !argocd.received().is_empty()
            && !hook.received().is_empty()),
        "no sync trigger calls:\n{}",
        agent.log()
    );
    let commit = git::git(&daemon.repo_path("config"), &["rev-parse", "main"])
        .unwrap()
        .trim()
        .to_string();
    let sync = &argocd.received()[0];
    assert_eq!(sync.method, "POST");
    assert_eq!(sync.target, "/api/v1/applications/shop-prod/sync");
    assert_eq!(
        sync.header("authorization"),
        format!("Bearer {ARGOCD_TOKEN}")
    );
    assert_eq!(sync.header("content-type"), "application/json");
    assert_eq!(
        sync.json(),
        serde_json::json!({"name": "shop-prod", "revision": commit, "prune": false, "dryRun": false})
    );
    assert!(argocd
        .received()
        .iter()
        .all(|r| r.target != "/api/v1/applications/api-prod/sync"));
    let post = hook.received()[0].json();
    assert_eq!(hook.received()[0].target, "/post-push");
    assert_eq!(
        hook.received()[0].header("authorization"),
        "",
        "no token configured, none sent"
    );
    assert_eq!(post["repoId"], "config");
    assert_eq!(post["branch"], "main");
    assert_eq!(post["commit"], commit.as_str());
    assert_eq!(post["remote"], url.as_str());
    assert_eq!(post["targets"][0]["file"], "web/deployment.yaml");
    assert_eq!(post["targets"][0]["digest"], digest.as_str());
    assert_eq!(post["targets"].as_array().unwrap().len(), 1, "{post}");

    // The target whose file is missing is reported failing, and announced.
    assert!(
        wait_until(WAIT, || kinds(&good.received())
            .contains(&"target_failing".to_string())),
        "no target_failing: {:?}\n{}",
        kinds(&good.received()),
        agent.log()
    );
    let failing = good
        .received()
        .into_iter()
        .map(|r| r.json())
        .find(|j| j["kind"] == "target_failing")
        .unwrap();
    assert_eq!(failing["file"], "missing/deployment.yaml");
    assert!(
        failing["error"]
            .as_str()
            .unwrap()
            .contains("missing/deployment.yaml"),
        "{failing}"
    );

    // A ring move, then the users gate opens when testers' 2 s soak runs out.
    ferry(
        &server,
        &token,
        &[
            "promote",
            &format!("{IMAGE}@{digest}"),
            "--to",
            "testers",
            "--force",
            "--reason",
            "ship it",
        ],
    );
    assert!(
        wait_until(WAIT, || kinds(&good.received())
            .contains(&"gate_opened".to_string())),
        "no gate_opened: {:?}\n{}",
        kinds(&good.received()),
        server.log()
    );
    let bodies: Vec<serde_json::Value> = good.received().iter().map(Received::json).collect();
    let moved = bodies
        .iter()
        .find(|j| j["kind"] == "ring_moved" && j["ring"] == "testers")
        .expect("ring_moved testers");
    assert_eq!(
        (
            moved["actor"].as_str(),
            moved["reason"].as_str(),
            moved["forced"].as_bool()
        ),
        (Some("ci"), Some("ship it"), Some(true))
    );
    let gate = bodies.iter().find(|j| j["kind"] == "gate_opened").unwrap();
    assert_eq!(
        (gate["ring"].as_str(), gate["digest"].as_str()),
        (Some("users"), Some(digest.as_str()))
    );

    // The hung receiver: every publish still succeeds; its queue overflows (dropped, logged) and
    // its first notification is tried again after the 2 s timeout.
    for n in 2..30 {
        publish(&server, n, &format!("1.0.{n}"), &[]);
    }
    let hang_shown = hang.url("");
    assert!(
        wait_until(WAIT, || server
            .log()
            .contains("notification dropped: the receiver's queue is full")
            && server
                .log()
                .lines()
                .any(|l| l.contains("dropped") && l.contains(&hang_shown))),
        "no drop logged:\n{}",
        server.log()
    );
    assert!(
        wait_until(WAIT, || {
            let r = hang.received();
            r.len() >= 2 && r[0].header("x-ferry-delivery") == r[1].header("x-ferry-delivery")
        }),
        "the hung receiver's notification was not retried: {:?}",
        hang.received().len()
    );
    assert!(
        wait_until(WAIT, || good
            .received()
            .iter()
            .any(|r| r.json()["tags"] == serde_json::json!(["1.0.29"]))),
        "the good receiver fell behind: {:?}",
        kinds(&good.received())
    );

    // What the outbox did is on /metrics: the good receiver's first 503 was retried, the hung
    // receiver's queue dropped, and deliveries were counted.
    let counted = |result: &str| -> u64 {
        let page = ferry_tests::http::get(&server.http_addr, "/metrics").expect("GET /metrics");
        let text = String::from_utf8_lossy(&page.body).into_owned();
        let line = format!("ferry_notifications_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in /metrics:\n{text}"))
    };
    assert!(
        wait_until(WAIT, || counted("retried") >= 1
            && counted("dropped") >= 1
            && counted("delivered") >= 1),
        "outbox counters: delivered {}, retried {}, dropped {}",
        counted("delivered"),
        counted("retried"),
        counted("dropped")
    );

    // The agent goes away: announced once it has been gone 1 s.
    agent.kill9();
    assert!(
        wait_until(WAIT, || kinds(&good.received())
            .contains(&"agent_disconnected".to_string())),
        "no agent_disconnected: {:?}",
        kinds(&good.received())
    );

    // Every body the receiver got follows the documented schema; no secret reached a log.
    let bodies: Vec<serde_json::Value> = good.received().iter().map(Received::json).collect();
    check_schema(&schema("notification.schema.json"), &bodies).unwrap();
    // And the schema is no rubber stamp: an unknown field or a short digest fails it.
    let mut extra = rel.clone();
    extra["surprise"] = serde_json::json!(1);
    let mut short = rel.clone();
    short["digest"] = serde_json::json!("sha256:abc");
    for bad in [extra, short] {
        assert!(check_schema(&schema("notification.schema.json"), &[bad]).is_err());
    }
    assert!(
        !server.log().contains("s3cret"),
        "the webhook URL's secret was logged"
    );
    assert!(
        !agent.log().contains(ARGOCD_TOKEN),
        "the Argo CD token was logged"
    );
}

#[test]
fn slack_bodies_escape_hostile_labels_and_bad_urls_are_refused() {
    let slack = Receiver::start(|_| Answer::Status(200));
    let server = FerryServer::start_with(&[
        "--notify-url",
        &slack.url("/services/T0/B0/x"),
        "--notify-format",
        "slack",
    ]);
    publish(
        &server,
        1,
        "1.0.0",
        &[(
            "org.opencontainers.image.version",
            "<!channel> & <https://evil|x>",
        )],
    );
    assert!(
        wait_until(WAIT, || !slack.received().is_empty()),
        "{}",
        server.log()
    );
    let body = slack.received()[0].json();
    check_schema(
        &schema("notification-slack.schema.json"),
        std::slice::from_ref(&body),
    )
    .unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"),
        "{text}"
    );

    // Configuration errors name the value and the rule, before anything starts.
    let dir = tempfile::tempdir().unwrap();
    for (url, rule) in [
        (
            "ftp://hooks.example.com/x",
            "scheme \"ftp\" is not http or https",
        ),
        ("hooks.example.com/x", "write http://HOST[:PORT]/PATH"),
        ("https://me:pw@hooks.example.com/x", "user:password@"),
    ] {
        let out = Command::new(binary("ferry-server"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--notify-url", url])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--notify-url") && err.contains(rule),
            "{url}: {err}"
        );
    }
}
