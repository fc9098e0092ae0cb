//! Issue 11, the dashboard end to end: a real headless Chromium (DevTools Protocol) reads
//! `/ui/` from a real ferry-server with published images, a pipeline and two real agents
//! committing to repositories served by `git daemon`, one of them failing.
//!
//! It asserts each page's content against what the gRPC API says (tags, the ring table, the
//! failing target's error, a stopped cluster's lag), that a publish shows up on an open page
//! without a reload (Server-Sent Events), that a label holding `<script>` is shown as text and
//! never runs, and that `--registry-auth token` refuses the dashboard until a login, after
//! which a promoter can promote through the confirmation step. Screenshots go to
//! `target/screenshots/`, or to `FERRY_SCREENSHOTS_DIR` (README, "Dashboard").

use std::path::PathBuf;
use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::browser::Browser;
use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::GitDaemon;
use ferry_tests::process::require_tool;
use ferry_tests::releases::{artifact, release};
use serde_json::json;

const IMAGE: &str = "registry.example.com/shop/api";
const VERSION: &str = "org.opencontainers.image.version";
const REVISION: &str = "org.opencontainers.image.revision";
/// Publisher input that would run if any page forgot to escape it.
const HOSTILE: &str = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";
const WAIT: Duration = Duration::from_secs(30);

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: registry.example.com/shop/api\n    newTag: 0.9.0   # set by ferry\n";
/// Not YAML: the agent following it reports the parse error for its target.
const BROKEN: &str = "images: [\n";
const WATCHER: &str = "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/shop/api\n      provider: ferry\n      filePath: testers/kustomization.yaml\n      kustomize: {}\n      ring: testers\n      format: tag+digest\n";

type Client = ferry_proto::client::Client;

/// Where screenshots go: `target/screenshots/` so a test run leaves the tree clean, or
/// `FERRY_SCREENSHOTS_DIR` (`FERRY_SCREENSHOTS_DIR=docs/screenshots` refreshes the README's).
fn screenshots() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("FERRY_SCREENSHOTS_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target/screenshots"),
    }
}

async fn publish(c: &mut Client, image: &str, n: u64, version: &str) -> pb::PublishResponse {
    let mut req = release(image, n, vec![version.to_string(), "latest".into()]);
    req.labels.insert(VERSION.into(), version.into());
    req.labels.insert(REVISION.into(), format!("{n:040x}"));
    req.labels.insert("note".into(), HOSTILE.into());
    c.publish(req).await.unwrap().into_inner()
}

async fn status(c: &mut Client) -> pb::PipelineStatus {
    c.get_pipeline(pb::GetPipelineRequest {
        name_or_image: "shop".into(),
        history: false,
        targets: true,
    })
    .await
    .unwrap()
    .into_inner()
}

fn agent_for(server: &FerryServer, daemon: &GitDaemon, cluster: &str, file: &str) -> FerryAgent {
    let url = daemon.init_bare_repo_with_files(
        cluster,
        &[
            ("testers/kustomization.yaml", file),
            (".pipe/imagewatcher.yaml", WATCHER),
        ],
    );
    let config = agent_config(server, &url, None, &[]).replacen(
        "spec:\n",
        &format!("spec:\n  name: {cluster}\n"),
        1,
    );
    FerryAgent::start(&config, &[])
}

/// Reloads `url` until `expression` holds (for state no live event announces, such as a
/// cluster disconnecting).
fn reload_until(b: &mut Browser, url: &str, expression: &str) -> bool {
    wait_until(WAIT, || {
        b.goto(url).unwrap();
        b.eval(expression).unwrap() == json!(true)
    })
}

#[test]
fn the_dashboard_shows_images_rings_and_clusters_and_updates_live() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let ui = format!("http://{}/ui", server.http_addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ci = rt.block_on(server.client());
    let (_, mut rm) = server.promoter(&rt, "release-manager");
    rt.block_on(
        rm.apply_pipeline(pb::ApplyPipelineRequest {
            spec: Some(pb::PipelineSpec {
                name: "shop".into(),
                rings: vec!["developers".into(), "testers".into(), "users".into()],
                images: vec![IMAGE.into()],
                gates: [(
                    "users".to_string(),
                    pb::Gate {
                        require_applied: true,
                        soak_seconds: 3600,
                        auto_promote: false,
                    },
                )]
                .into(),
                ..Default::default()
            }),
            source: String::new(),
        }),
    )
    .unwrap();
    let r1 = rt.block_on(publish(&mut ci, IMAGE, 1, "1.0.0"));
    let subject = release(IMAGE, 1, vec![]).manifest.unwrap();
    rt.block_on(ci.publish(artifact(
        IMAGE,
        &subject,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        vec!["sig-1.0.0".into()],
    )))
    .unwrap();
    for ring in ["developers", "testers"] {
        rt.block_on(rm.promote(pb::PromoteRequest {
            image: IMAGE.into(),
            reference: format!("@{}", r1.digest),
            to_ring: ring.into(),
            ..Default::default()
        }))
        .unwrap();
    }

    let daemon = GitDaemon::start(tmp.path().join("git"));
    let _healthy = agent_for(&server, &daemon, "prod-eu-1", KUSTOMIZATION);
    let mut failing = agent_for(&server, &daemon, "prod-us-1", BROKEN);
    let mut error = String::new();
    let reported = wait_until(WAIT, || {
        let s = rt.block_on(status(&mut ci));
        let testers = s.rings.iter().find(|r| r.name == "testers").unwrap();
        let eu = testers
            .clusters
            .iter()
            .any(|t| t.cluster == "prod-eu-1" && t.digest == r1.digest && t.error.is_empty());
        if let Some(us) = testers.clusters.iter().find(|t| t.cluster == "prod-us-1") {
            error = us.error.clone();
        }
        eu && !error.is_empty()
    });
    assert!(
        reported,
        "both agents never reported (error so far {error:?}):\n{}",
        failing.log()
    );
    let users_gate = rt.block_on(status(&mut ci)).rings[3]
        .gate_status
        .clone()
        .expect("users has a gate");
    assert!(!users_gate.open, "{users_gate:?}");

    let mut b = Browser::start().expect("starting headless chromium");

    // Images: the image, its newest release's tag and version.
    b.goto(&format!("{ui}/images")).unwrap();
    let images = b.text("#images").unwrap();
    assert!(
        images.contains(IMAGE) && images.contains("1.0.0"),
        "{images}"
    );
    assert!(
        images.contains("+ 1 artifact"),
        "the signature is counted apart: {images}"
    );

    // One image: releases with digest, version, revision and labels; the artifact apart; the
    // hostile label as text, with no script of its run.
    let href = b
        .eval("document.querySelector('#images tbody a').getAttribute('href')")
        .unwrap();
    b.goto(&format!(
        "http://{}{}",
        server.http_addr,
        href.as_str().unwrap()
    ))
    .unwrap();
    let releases = b.text("#releases").unwrap();
    for want in [
        "1.0.0",
        "latest",
        &format!("{:040x}", 1)[..12],
        &r1.digest[..19],
    ] {
        assert!(releases.contains(want), "{want:?} missing from {releases}");
    }
    assert!(releases.contains(&format!("note={HOSTILE}")), "{releases}");
    let artifacts = b.text("#artifacts").unwrap();
    assert!(
        artifacts.contains("sig-1.0.0") && !releases.contains("sig-1.0.0"),
        "{artifacts}"
    );
    assert_eq!(
        b.eval("window.__pwned === undefined").unwrap(),
        json!(true),
        "{:?}",
        b.console
    );
    assert_eq!(
        b.eval("document.querySelectorAll('main script, main img').length")
            .unwrap(),
        json!(0)
    );
    assert!(b.text("#events").unwrap().contains("tag moved"));
    b.screenshot(&screenshots().join("image.png"), 1280)
        .unwrap();

    // The pipeline: what each ring runs, the closed gate with why, the failing target's error.
    b.goto(&format!("{ui}/pipelines/shop")).unwrap();
    let testers = b.text("#rings tr[data-ring=testers]").unwrap();
    assert!(
        testers.contains("1.0.0") && testers.contains(&r1.digest[..19]),
        "{testers}"
    );
    assert!(
        testers.contains("prod-eu-1") && testers.contains("prod-us-1"),
        "{testers}"
    );
    let users = b.text("#rings tr[data-ring=users]").unwrap();
    assert!(
        users.contains("closed") && users.contains(&users_gate.why_closed),
        "{users} vs {users_gate:?}"
    );
    assert!(b
        .text("#rings tr[data-ring=ante]")
        .unwrap()
        .contains("1.0.0"));
    let failing_rows = b.text("#failing").unwrap();
    assert!(
        failing_rows.contains("prod-us-1") && failing_rows.contains(&error),
        "{failing_rows} vs {error}"
    );
    assert!(b.text("#history").unwrap().contains("developers"));
    b.screenshot(&screenshots().join("pipeline.png"), 1280)
        .unwrap();

    // Clusters: stop one agent, publish twice; it shows disconnected, lagging by head - cursor.
    failing.kill9();
    let cursor = failing.cursor();
    rt.block_on(publish(&mut ci, IMAGE, 2, "1.1.0"));
    let disconnected = reload_until(
        &mut b,
        &format!("{ui}/clusters"),
        "document.querySelector('#clusters tr[data-cluster=\"prod-us-1\"]').innerText.includes('disconnected')",
    );
    assert!(disconnected, "{}", b.text("#clusters").unwrap());
    // The server knows the cursor of the agent's last report, at most what it saved.
    let head = server.head_seq();
    let row = "#clusters tr[data-cluster=\"prod-us-1\"]";
    let shown: u64 = b
        .text(&format!("{row} td.cursor"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        shown > 0 && shown <= cursor,
        "cursor {shown} shown, {cursor} saved"
    );
    let lag = b.text(&format!("{row} td.lag")).unwrap();
    assert_eq!(
        lag,
        format!("{} events behind", head - shown),
        "head {head}"
    );
    assert!(b
        .text("#clusters tr[data-cluster=\"prod-eu-1\"]")
        .unwrap()
        .contains("connected"));
    assert!(b.text("#failing").unwrap().contains(&error));
    b.screenshot(&screenshots().join("clusters.png"), 1280)
        .unwrap();

    // Live: an open page shows a new image without reloading (the marker survives).
    b.goto(&format!("{ui}/images")).unwrap();
    assert!(
        b.wait_for(
            "document.getElementById('live').textContent === 'live'",
            WAIT
        )
        .unwrap(),
        "the EventSource never opened: {:?}",
        b.console
    );
    b.eval("window.__marker = 42").unwrap();
    rt.block_on(publish(
        &mut ci,
        "registry.example.com/shop/web",
        1,
        "0.1.0",
    ));
    let shown = b
        .wait_for(
            "document.querySelector('#images').innerText.includes('shop/web') && window.__marker === 42",
            WAIT,
        )
        .unwrap();
    assert!(
        shown,
        "the publish never appeared: {}",
        b.text("#images").unwrap()
    );
    b.screenshot(&screenshots().join("images.png"), 1280)
        .unwrap();

    // Events: the log, newest first, tag and ring moves.
    b.goto(&format!("{ui}/events")).unwrap();
    let events = b.text("#events").unwrap();
    assert!(
        events.contains("ring moved") && events.contains("tag moved"),
        "{events}"
    );
    assert!(events.contains("shop/web"), "{events}");
    b.screenshot(&screenshots().join("events.png"), 1280)
        .unwrap();
    assert_eq!(b.eval("window.__pwned === undefined").unwrap(), json!(true));
}

#[test]
fn token_mode_refuses_the_dashboard_until_login_and_a_promoter_can_promote() {
    let server = FerryServer::start_with(&["--registry-auth", "token"]);
    let ui = format!("http://{}/ui", server.http_addr);
    let reader = server
        .token_command(&["create", "--role", "reader", "--name", "viewer"])
        .trim()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ci = rt.block_on(server.client());
    let (promoter, mut rm) = server.promoter(&rt, "release-manager");
    rt.block_on(rm.apply_pipeline(pb::ApplyPipelineRequest {
        spec: Some(pb::PipelineSpec {
            name: "shop".into(),
            rings: vec!["developers".into()],
            images: vec![IMAGE.into()],
            ..Default::default()
        }),
        source: String::new(),
    }))
    .unwrap();
    let r1 = rt.block_on(publish(&mut ci, IMAGE, 1, "1.0.0"));

    // Without a session: every page and the live stream refuse, and show nothing published.
    for path in [
        "/ui/",
        "/ui/images",
        "/ui/pipelines/shop",
        "/ui/clusters",
        "/ui/events",
        "/ui/live",
    ] {
        let resp = ferry_tests::http::get(&server.http_addr, path).unwrap();
        let body = String::from_utf8_lossy(&resp.body);
        assert_eq!(resp.status, 401, "{path}: {body}");
        assert!(!body.contains("shop/api"), "{path} leaks: {body}");
    }

    let mut b = Browser::start().expect("starting headless chromium");
    b.goto(&format!("{ui}/images")).unwrap();
    assert!(b.text("main").unwrap().contains("needs a token"));
    b.screenshot(&screenshots().join("login.png"), 900).unwrap();

    // A wrong token is refused with the reason.
    login(&mut b, "ferry_not-a-token");
    assert!(
        b.text("main").unwrap().contains("not known"),
        "{}",
        b.text("main").unwrap()
    );

    // A reader logs in: pages show, the cookie is out of the page's reach, no ring buttons.
    b.goto(&format!("{ui}/login")).unwrap();
    login(&mut b, &reader);
    assert!(
        b.text("#images").unwrap().contains(IMAGE),
        "{}",
        b.text("main").unwrap()
    );
    assert_eq!(
        b.eval("document.cookie").unwrap(),
        json!(""),
        "the session cookie is HttpOnly"
    );
    b.goto(&format!("{ui}/pipelines/shop")).unwrap();
    assert_eq!(
        b.eval("document.querySelectorAll('form[action$=\"/confirm\"]').length")
            .unwrap(),
        json!(0)
    );

    // A promoter: promote developers through the confirmation step.
    b.navigate_by("document.querySelector('form[action=\"/ui/logout\"]').submit()")
        .unwrap();
    assert!(
        b.text("main").unwrap().contains("needs a token"),
        "logged out"
    );
    b.goto(&format!("{ui}/login")).unwrap();
    login(&mut b, &promoter);
    b.goto(&format!("{ui}/pipelines/shop")).unwrap();
    b.navigate_by("document.querySelector('tr[data-ring=developers] form[action$=\"/confirm\"] button').click()")
        .unwrap();
    assert!(b.eval("!!document.querySelector('form.confirm')").unwrap() == json!(true));
    assert!(b
        .text("main")
        .unwrap()
        .contains("Promote registry.example.com/shop/api into ring developers"));
    b.screenshot(&screenshots().join("confirm.png"), 1280)
        .unwrap();
    b.navigate_by("document.querySelector('form.confirm button').click()")
        .unwrap();
    assert_eq!(
        b.eval("location.pathname").unwrap(),
        json!("/ui/pipelines/shop"),
        "{}",
        b.text("main").unwrap()
    );
    let s = rt.block_on(status(&mut ci));
    let developers = s.rings.iter().find(|r| r.name == "developers").unwrap();
    assert_eq!(
        developers.pointers[0].digest, r1.digest,
        "the confirmed promote moved the ring"
    );
    assert!(b.text("#history").unwrap().contains("release-manager"));
}

/// Submits the login form with `token` and waits for the next page.
fn login(b: &mut Browser, token: &str) {
    b.navigate_by(&format!(
        "document.querySelector('#token').value = {}; document.querySelector('form[action=\"/ui/login\"]').submit()",
        json!(token)
    ))
    .unwrap();
}
