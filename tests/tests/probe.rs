//! Issue 12: `ferry-server probe`, the health check of the FROM-scratch image, against a real
//! ferry-server: 0 on a ready server, 1 with the reason on stderr otherwise.

use std::process::{Command, Output};
use std::time::Duration;

use ferry_tests::ferry::{binary, FerryServer};

fn probe(args: &[&str]) -> Output {
    Command::new(binary("ferry-server"))
        .arg("probe")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running ferry-server probe")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn probe_passes_on_a_ready_server_and_fails_with_the_reason_otherwise() {
    let mut server = FerryServer::start();
    let url = format!("http://{}", server.http_addr);

    for path in ["/readyz", "/healthz"] {
        let out = probe(&["--url", &url, "--path", path]);
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("GET {url}{path}: 200 OK\n")
        );
    }

    let out = probe(&["--url", &url, "--path", "/v2/nothing/here"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "ferry-server: error: GET {url}/v2/nothing/here: 404"
        )),
        "{}",
        stderr(&out)
    );

    let out = probe(&["--url", &format!("https://{}", server.http_addr)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("plain HTTP only"), "{}", stderr(&out));

    server
        .terminate(Duration::from_secs(15))
        .expect("server exits on SIGTERM");
    let out = probe(&["--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("GET {url}/readyz: connecting")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn probe_defaults_to_readyz_on_port_5000_of_loopback() {
    // What the Compose health check runs: no flags. Nothing listens on 5000 here, so the probe
    // must fail, naming the URL it tried.
    let out = probe(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("GET http://127.0.0.1:5000/readyz: "),
        "{}",
        stderr(&out)
    );
}
