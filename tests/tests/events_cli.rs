//! Issue 11, `ferry events`: the real `ferry` binary against a real ferry-server prints the
//! event log like `kubectl get events` after publishes and a promote, filters by image, pages
//! with --since-seq and --limit, follows new publishes with --follow, and never lets a hostile
//! reason reach the terminal raw.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::releases::release;

const API: &str = "registry.example.com/shop/api";
const WEB: &str = "registry.example.com/shop/web";
const PIPELINE: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nspec:\n  rings: [testers]\n  images: [registry.example.com/shop/api]\n";

fn ferry_cmd(server: &FerryServer, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(binary("ferry"));
    c.args(args)
        .args(["--server", &server.grpc_url()])
        .env("FERRY_TOKEN", token)
        .env_remove("FERRY_TOKEN_FILE")
        .env_remove("FERRY_SERVER");
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "ferry failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn publish(server: &FerryServer, image: &str, n: u64, tag: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        server
            .client()
            .await
            .publish(release(image, n, vec![tag.to_string()]))
            .await
            .expect("publish")
            .into_inner()
            .digest
    })
}

/// The cells of each row (split on runs of two or more spaces), header first.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn events_prints_the_log_filters_pages_follows_and_escapes() {
    let server = FerryServer::start();
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, PIPELINE).unwrap();
    ok(ferry_cmd(
        &server,
        &token,
        &["pipeline", "apply", "-f", file.to_str().unwrap()],
    )
    .output()
    .unwrap());
    let api = publish(&server, API, 1, "1.0.0");
    let web = publish(&server, WEB, 2, "2.0.0");
    // A hostile reason: an escape sequence that would clear the screen, and a newline.
    ok(ferry_cmd(
        &server,
        &token,
        &[
            "promote",
            &format!("{API}@{api}"),
            "--to",
            "testers",
            "--force",
            "--reason",
            "fix\u{1b}[2J\nnow",
        ],
    )
    .output()
    .unwrap());

    let out = ok(ferry_cmd(&server, &token, &["events"]).output().unwrap());
    assert!(
        !out.contains('\u{1b}'),
        "a raw escape reached the terminal:\n{out}"
    );
    let t = rows(&out);
    assert_eq!(
        t[0],
        ["SEQ", "AGE", "KIND", "IMAGE", "TAG/RING", "DIGEST", "ACTOR", "REASON"]
    );
    let short = |d: &str| d[..7 + 12].to_string();
    // pipeline applied; api 1.0.0 and its ante move; web 2.0.0 (no pipeline); the promote.
    let body: Vec<Vec<String>> = t[1..].iter().map(|r| [&r[..1], &r[2..]].concat()).collect();
    assert_eq!(
        body,
        vec![
            vec![
                "1".to_string(),
                "PipelineApplied".into(),
                "-".into(),
                "shop".into(),
                "-".into(),
                "ci".into(),
                "-".into()
            ],
            vec![
                "2".into(),
                "TagMoved".into(),
                API.into(),
                "1.0.0".into(),
                short(&api),
                "-".into(),
                "-".into()
            ],
            vec![
                "3".into(),
                "RingMoved".into(),
                API.into(),
                "shop/ante".into(),
                short(&api),
                "bootstrap".into(),
                "publish".into()
            ],
            vec![
                "4".into(),
                "TagMoved".into(),
                WEB.into(),
                "2.0.0".into(),
                short(&web),
                "-".into(),
                "-".into()
            ],
            vec![
                "5".into(),
                "RingMoved".into(),
                API.into(),
                "shop/testers".into(),
                short(&api),
                "ci".into(),
                "\"fix\\u{1b}[2J\\nnow\"".into()
            ],
        ],
        "{out}"
    );
    assert!(
        t[1..].iter().all(|r| r[1].ends_with('s')),
        "ages in seconds: {out}"
    );

    // Filtered by image; paged; absolute times.
    let web_only = rows(&ok(ferry_cmd(&server, &token, &["events", "--image", WEB])
        .output()
        .unwrap()));
    assert_eq!(web_only.len(), 2, "{web_only:?}");
    assert_eq!(web_only[1][0], "4");
    let page = rows(&ok(ferry_cmd(
        &server,
        &token,
        &["events", "--since-seq", "2", "--limit", "2", "--time"],
    )
    .output()
    .unwrap()));
    assert_eq!(page[0][1], "TIME");
    assert_eq!(
        page.iter()
            .skip(1)
            .map(|r| r[0].as_str())
            .collect::<Vec<_>>(),
        ["3", "4"]
    );
    assert!(page[1][1].ends_with('Z'), "{page:?}");
    let none = rows(&ok(ferry_cmd(
        &server,
        &token,
        &["events", "--since-seq", "5"],
    )
    .output()
    .unwrap()));
    assert_eq!(none.len(), 1, "only the header past the head: {none:?}");

    // --follow prints what is there, then a new publish as it happens.
    let mut child = ferry_cmd(&server, &token, &["events", "--follow", "--image", WEB])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no {what} line from ferry events --follow"))
    };
    assert!(next("header").starts_with("SEQ"));
    assert!(next("first row").contains("2.0.0"));
    let newer = publish(&server, WEB, 3, "2.1.0");
    let line = next("followed row");
    assert!(
        line.starts_with("6 ") && line.contains("2.1.0") && line.contains(&short(&newer)),
        "{line}"
    );
    child.kill().unwrap();
    let _ = child.wait();
}
