//! Issue 12: `ferry-server --bootstrap-token-file` (a Kubernetes Secret) supplies the first
//! token instead of one generated into the data directory. The real binary: publishing with the
//! file's token succeeds, a later start ignores the file, and a file that holds no ferry token
//! is refused at start with what to do.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::ports::free_port;
use ferry_tests::releases;
use tonic::Code;

const TOKEN: &str = "ferry_5e3a9c0d7b1f4e26a8c3d9f0b2e7a1c4d6f8b0e2a4c6d8f0b1e3a5c7d9f1b3e5";

async fn publish(server: &FerryServer, token: &str, n: u64) -> Result<String, tonic::Status> {
    let mut client = ferry_proto::client::connect(&server.grpc_url(), Some(token))
        .await
        .unwrap();
    client
        .publish(releases::release(
            "registry.example.com/team/app",
            n,
            vec![format!("1.0.{n}")],
        ))
        .await
        .map(|r| r.into_inner().digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_token_comes_from_the_bootstrap_token_file() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut server = FerryServer::start_with(&["--bootstrap-token-file", file.to_str().unwrap()]);

    assert!(
        !server.token_file().exists(),
        "no token is generated into the data directory"
    );
    publish(&server, TOKEN, 1)
        .await
        .unwrap_or_else(|e| panic!("publish with the file's token: {e}\n{}", server.log()));
    let other = format!("ferry_{}", "0".repeat(64));
    let refused = publish(&server, &other, 2).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let list = server.token_command(&["list"]);
    assert!(
        list.contains("bootstrap") && list.contains("agent,publisher"),
        "{list}"
    );

    // Once the database holds tokens the file is not read again: a changed or broken Secret
    // neither stops the server nor replaces the token.
    std::fs::write(&file, "REPLACE-me").unwrap();
    server.restart();
    publish(&server, TOKEN, 3)
        .await
        .unwrap_or_else(|e| panic!("publish after a restart: {e}\n{}", server.log()));
    assert!(
        server.log().contains("--bootstrap-token-file ignored"),
        "{}",
        server.log()
    );
    assert!(!server.token_file().exists());
}

/// Runs `ferry-server` (expected to exit) with the token file passed through `env`; returns its
/// exit status and stderr.
fn start_expecting_exit(data_dir: &Path, env: (&str, &Path)) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(binary("ferry-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--grpc-addr", &format!("127.0.0.1:{}", free_port())])
        .env(env.0, env.1)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ferry-server");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("ferry-server started with a malformed --bootstrap-token-file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn a_bootstrap_token_file_without_a_ferry_token_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    // The example overlay's placeholder, as an operator who forgot to replace it would deploy.
    std::fs::write(&file, "REPLACE-with-a-ferry-token\n").unwrap();

    let (status, stderr) = start_expecting_exit(data.path(), ("FERRY_BOOTSTRAP_TOKEN_FILE", &file));
    assert!(!status.success(), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("ferry-server: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    for needed in [
        "--bootstrap-token-file",
        &file.display().to_string(),
        "`ferry_` and 64 lowercase hex digits",
        "openssl rand -hex 32",
    ] {
        assert!(error.contains(needed), "{needed:?} missing: {error}");
    }
    assert!(
        !stderr.contains("REPLACE-with"),
        "the content is not echoed: {stderr}"
    );
    assert!(!data.path().join("bootstrap-token").exists());

    // Nothing was stored, so a corrected file still bootstraps this data directory.
    let list = Command::new(binary("ferry-server"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["token", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains("bootstrap"), "a token was stored: {list}");
}
