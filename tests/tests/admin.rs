//! Issue 9: `ferry-server token …` and `check` run in a directory that holds no ferry database
//! refuse, naming the directory and `--data-dir`, and create nothing. The real binary.

use std::path::Path;
use std::process::{Command, Output};

use ferry_tests::ferry::{binary, FerryServer};

fn admin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("ferry-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running ferry-server")
}

fn assert_refused(out: &Output, dir: &Path, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded: {stderr}");
    assert!(
        stderr.contains(&dir.display().to_string()),
        "{what}: stderr does not name {}: {stderr}",
        dir.display()
    );
    assert!(stderr.contains("--data-dir"), "{what}: {stderr}");
    // One line a newcomer can act on: no "Caused by:" block, no backtrace, even with
    // RUST_BACKTRACE set.
    assert!(
        stderr.starts_with("ferry-server: error: "),
        "{what}: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{what} printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Regression (issue 9): `ferry-server token create` in the wrong directory silently created a
/// new empty database there and printed a token the running server rejects.
#[test]
fn token_create_in_a_directory_without_a_database_creates_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let out = admin(empty.path(), &["token", "create", "--role", "agent"]);
    assert_refused(&out, empty.path(), "token create");
    assert!(
        !empty.path().join("ferry.db").exists(),
        "ferry.db was created"
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    for args in [
        &["token", "list"][..],
        &["token", "revoke", "bootstrap"],
        &["check"],
    ] {
        let out = admin(empty.path(), args);
        assert_refused(&out, empty.path(), &args.join(" "));
    }
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // A directory that does not exist is not created either.
    let missing = empty.path().join("typo");
    let out = admin(&missing, &["token", "list"]);
    assert_refused(&out, &missing, "token list in a missing directory");
    assert!(!missing.exists());
}

#[test]
fn token_commands_work_on_the_servers_own_directory() {
    let server = FerryServer::start();
    let secret = server.token_command(&["create", "--role", "agent", "--name", "cluster-1"]);
    assert!(secret.trim().starts_with("ferry_"), "{secret}");
    let list = server.token_command(&["list"]);
    assert!(
        list.contains("cluster-1") && list.contains("bootstrap"),
        "{list}"
    );
    assert!(
        !list.contains(secret.trim()),
        "the list never shows secrets"
    );
    let out = admin(server.data_dir(), &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("integrity_check: ok"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
