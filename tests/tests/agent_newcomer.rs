//! Issue 9, what a newcomer meets first: an agent whose token the server refuses, and an
//! ImageWatcher file with a misspelt kind. Real ferry-server, ferry-agent and git daemon; the
//! assertions read the agent's log, because that is where the newcomer looks.

use std::time::Duration;

use ferry_tests::ferry::{agent_config, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::ports;
use ferry_tests::process::require_tool;

const WAIT: Duration = Duration::from_secs(30);

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: example.com/app:1.0.0\n";

fn watcher(kind: &str) -> String {
    format!("apiVersion: pipecd.dev/v1beta1\nkind: {kind}\nspec:\n  targets:\n    - image: example.com/app\n      provider: ferry\n      filePath: deployment.yaml\n      field: spec.template.spec.containers[0].image\n")
}

/// A config repository with one ImageWatcher file, and any `extra` files.
fn config_repo(daemon: &GitDaemon, extra: &[(&str, &str)]) -> String {
    let watcher = watcher("ImageWatcher");
    let mut files = vec![
        ("deployment.yaml", DEPLOYMENT),
        (".pipe/imagewatcher.yaml", watcher.as_str()),
    ];
    files.extend_from_slice(extra);
    daemon.init_bare_repo_with_files("config", &files)
}

// Regression (issue 9): an agent holding a revoked token logged "connected" (the channel opened)
// and then a bare `ListTags: …` error that did not say which token to fix.
#[test]
fn an_agent_whose_token_is_refused_never_says_connected_and_names_the_token_file() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = config_repo(&daemon, &[]);

    let secret = server
        .token_command(&["create", "--role", "agent", "--name", "cluster"])
        .trim()
        .to_string();
    server.token_command(&["revoke", "cluster"]);
    let token_file = tmp.path().join("agent-token");
    std::fs::write(&token_file, &secret).unwrap();
    let config = agent_config(&server, &url, None, &[]).replace(
        &server.token_file().display().to_string(),
        &token_file.display().to_string(),
    );
    let agent = FerryAgent::start(&config, &[]);

    // Refused on every attempt (the agent keeps retrying, so a fixed file is picked up).
    assert!(
        agent.wait_for_log("the server refused the token in", 2, WAIT),
        "no refusal in the log:\n{}",
        agent.log()
    );
    let log = agent.log();
    assert!(!log.contains("connected"), "said connected:\n{log}");
    let refusal = log
        .lines()
        .find(|l| l.contains("refused the token"))
        .unwrap();
    assert!(
        refusal.contains(&token_file.display().to_string())
            && refusal.contains("\"cluster\" has been revoked")
            && refusal.contains("--role agent"),
        "the refusal must name the file, the server's reason and what to do: {refusal}"
    );
    assert_eq!(
        refusal.matches("revoked").count(),
        1,
        "reason repeated: {refusal}"
    );

    // Putting a good token in the file is enough: no restart.
    std::fs::write(&token_file, server.token()).unwrap();
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "never connected with a good token:\n{}",
        agent.log()
    );
}

// Regression (issue 9): an ImageWatcher file with a misspelt kind was skipped without a word.
#[test]
fn a_watcher_file_with_a_wrong_kind_is_warned_about_once_naming_file_and_kind() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let typo = watcher("ImageWatch");
    let url = config_repo(
        &daemon,
        &[
            (".pipe/typo.yaml", typo.as_str()),
            (
                ".pipe/app.yaml",
                "apiVersion: pipecd.dev/v1beta1\nkind: KubernetesApp\nspec: {}\n",
            ),
        ],
    );
    let agent = FerryAgent::start(&agent_config(&server, &url, None, &[]), &[]);
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "agent never connected:\n{}",
        agent.log()
    );
    let log = agent.log();
    let warning = log
        .lines()
        .find(|l| l.contains(".pipe/typo.yaml"))
        .unwrap_or_else(|| panic!("no warning about .pipe/typo.yaml:\n{log}"));
    assert!(
        warning.contains("WARN") && warning.contains("\"ImageWatch\""),
        "{warning}"
    );
    assert!(
        !log.contains(".pipe/app.yaml"),
        "a PipeCD app file is not a mistake:\n{log}"
    );

    // A resync that finds changed ImageWatcher files reloads them all, the typo included: it is
    // still said once.
    let other = watcher("ImageWatcher").replace("deployment.yaml", "other.yaml");
    git::commit_file_and_push(&url, ".pipe/other.yaml", &other, "human: another watcher").unwrap();
    assert!(
        agent.wait_for_log("ImageWatcher files changed", 1, WAIT)
            && agent.wait_for_log("connected", 2, WAIT),
        "the change was not picked up:\n{}",
        agent.log()
    );
    let log = agent.log();
    assert_eq!(
        log.matches(".pipe/typo.yaml: skipped").count(),
        1,
        "warned more than once:\n{log}"
    );
}

// Regression (issue 9): an unreachable server was logged as `cannot reach …: transport error:
// transport error`, the same cause twice.
#[test]
fn an_unreachable_server_is_logged_with_each_cause_once() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = config_repo(&daemon, &[]);
    // Nothing listens on this port.
    let nowhere = format!("http://127.0.0.1:{}", ports::free_port());
    let config = agent_config(&server, &url, None, &[]).replace(&server.grpc_url(), &nowhere);
    let agent = FerryAgent::start(&config, &[]);
    assert!(
        agent.wait_for_log("session ended", 2, WAIT),
        "no failed session in the log:\n{}",
        agent.log()
    );
    let log = agent.log();
    let line = log.lines().find(|l| l.contains("session ended")).unwrap();
    assert!(
        line.contains(&format!("cannot reach ferry-server at {nowhere}")),
        "{line}"
    );
    // Each cause once: the OS's reason appears exactly once, tonic's bare label at most once.
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
    assert!(line.matches("transport error").count() <= 1, "{line}");
    assert!(!log.contains("connected"), "{log}");
}

// Regression (issue 9): a fatal agent error was printed as `Error: …` with a "Caused by" list and,
// under RUST_BACKTRACE, a stack backtrace, instead of one line saying what to fix.
#[test]
fn a_fatal_error_is_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("agent.yaml");
    std::fs::write(
        &config,
        "apiVersion: pipecd.dev/v1beta1\nkind: Piped\nspce: {}\n",
    )
    .unwrap();
    let out = std::process::Command::new(ferry_tests::ferry::binary("ferry-agent"))
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("ferry-agent: error: loading "),
        "{stderr}"
    );
    assert!(
        stderr.contains("spce"),
        "the bad field is not named: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
