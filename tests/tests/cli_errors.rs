//! Issue 9, "Errors a user can act on" and "Names": the real `ferry` binary against a real
//! plain-HTTP docker-registry origin and a real ferry-server, pointed at the wrong scheme or
//! port. Each failure must say what is wrong and what to write instead, once, on one line,
//! without repeating a cause; and the registry must answer a `HOST:PORT/…` repository path
//! with the `HOST_PORT/…` name ferry knows it by.

use std::process::{Command, Output};
use std::time::Duration;

use ferry_tests::ferry::{agent_config, binary, FerryAgent, FerryServer};
use ferry_tests::git::GitDaemon;
use ferry_tests::http;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::ports::free_port;
use ferry_tests::skopeo;

const IMAGE: &str = "registry.example.com/team/web";

/// `ferry publish ARGS…` with `server`'s bootstrap token and no FERRY_* settings from the
/// environment.
fn ferry_publish(server: &FerryServer, args: &[&str]) -> Output {
    Command::new(binary("ferry"))
        .arg("publish")
        .args(args)
        .env("FERRY_TOKEN", server.token())
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN_FILE")
        .env_remove("FERRY_CA_FILE")
        .env_remove("FERRY_ORIGIN_CREDS")
        .env_remove("FERRY_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("running ferry publish")
}

/// An OCI layout in `dir` holding one image tagged `1.0`; returns its `oci:DIR:1.0` source.
fn layout_source(dir: &std::path::Path) -> String {
    let mut layout = OciLayout::new(dir);
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "1.0");
    layout.reference("1.0")
}

/// Asserts that `out` failed with exactly one line on stderr, `ferry: error: …`, containing
/// every one of `needles` once and no cause twice in a row (`transport error: transport
/// error`); returns that line.
fn assert_one_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "ferry succeeded:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one error line, nothing else (no tracing copy):\n{stderr}"
    );
    let line = lines[0];
    assert!(line.starts_with("ferry: error: "), "{line}");
    for needle in needles {
        assert_eq!(
            line.matches(needle).count(),
            1,
            "{needle:?} once in:\n{line}"
        );
    }
    let causes: Vec<&str> = line.split(": ").collect();
    for pair in causes.windows(2) {
        assert_ne!(pair[0], pair[1], "a cause said twice in:\n{line}");
    }
    line.to_string()
}

#[test]
fn a_plain_http_origin_without_insecure_says_to_pass_insecure() {
    // Regression: this failed with "received corrupt message of type InvalidContentType", the
    // TLS handshake's view of an HTTP answer.
    let tmp = tempfile::tempdir().unwrap();
    let origin = OriginRegistry::start();
    let server = FerryServer::start();
    skopeo::copy(
        &layout_source(tmp.path()),
        &origin.docker_ref("team/app:1.0"),
    )
    .unwrap();
    let source = origin.docker_ref("team/app:1.0");
    let grpc = server.grpc_url();

    let out = ferry_publish(&server, &[&source, "--server", &grpc]);
    let line = assert_one_error(
        &out,
        &[
            &format!("the origin registry {} speaks plain HTTP", origin.addr()),
            "pass --insecure",
        ],
    );
    assert!(!line.contains("InvalidContentType"), "{line}");

    // The advice is right: with --insecure the same publish goes through.
    let out = ferry_publish(&server, &[&source, "--insecure", "--server", &grpc]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_https_server_address_for_a_plain_grpc_port_says_to_use_http() {
    // Regression: this failed with "transport error: transport error: received corrupt message
    // of type InvalidContentType: received corrupt message of type InvalidContentType".
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let source = layout_source(tmp.path());
    let https = format!("https://{}", server.grpc_addr);
    let out = ferry_publish(&server, &[&source, "--image", IMAGE, "--server", &https]);
    let line = assert_one_error(
        &out,
        &[
            &format!("the server at {https} speaks plain HTTP"),
            &format!("use an http:// address (http://{})", server.grpc_addr),
        ],
    );
    assert!(!line.contains("InvalidContentType"), "{line}");
}

/// Starts an agent whose FERRY provider is at `address`, and waits for its log to say `wanted`.
fn assert_agent_says(server: &FerryServer, address: &str, wanted: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let remote = daemon.init_bare_repo_with_files("config", &[("README", "config\n")]);
    let config = agent_config(server, &remote, None, &[]).replace(
        &format!("address: {}", server.grpc_url()),
        &format!("address: {address}"),
    );
    assert!(config.contains(address), "{config}");
    let agent = FerryAgent::start(&config, &[]);
    assert!(
        agent.wait_for_log(wanted, 1, Duration::from_secs(30)),
        "{}",
        agent.log()
    );
    for noise in ["transport error: transport error", "h2 protocol error"] {
        assert!(!agent.log().contains(noise), "{}", agent.log());
    }
}

#[test]
fn the_agent_says_an_https_address_for_a_plain_grpc_port_should_be_http() {
    // Regression: the agent shares the connection code with the CLI and logged the same
    // doubled TLS error, every retry.
    let server = FerryServer::start();
    let https = format!("https://{}", server.grpc_addr);
    assert_agent_says(
        &server,
        &https,
        &format!("the server at {https} speaks plain HTTP, not TLS: use an http:// address"),
    );
}

#[test]
fn the_agent_says_an_address_at_the_registry_port_is_not_grpc() {
    // Regression: an agent pointed at the registry port logged "ListTags: h2 protocol error:
    // http2 error" on every retry.
    let server = FerryServer::start();
    let registry = format!("http://{}", server.http_addr);
    assert_agent_says(
        &server,
        &registry,
        &format!("{registry} looks like ferry-server's registry (HTTP) port, not its gRPC port"),
    );
}

#[test]
fn a_server_address_at_the_registry_port_names_the_grpc_port() {
    // Regression: pointing --server at ferry-server's registry (HTTP/1.1) listener failed
    // with "ferry-server refused the publish: h2 protocol error: http2 error".
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let source = layout_source(tmp.path());
    let registry = format!("http://{}", server.http_addr);
    let out = ferry_publish(&server, &[&source, "--image", IMAGE, "--server", &registry]);
    let line = assert_one_error(
        &out,
        &[
            &format!("{registry} looks like ferry-server's registry (HTTP) port"),
            "--grpc-addr, port 50051 by default",
            "e.g. http://127.0.0.1:50051",
        ],
    );
    assert!(!line.contains("h2 protocol error"), "{line}");

    // The same through https:// (plain registry port, so TLS fails first): still named.
    let registry_tls = format!("https://{}", server.http_addr);
    let out = ferry_publish(
        &server,
        &[&source, "--image", IMAGE, "--server", &registry_tls],
    );
    assert_one_error(
        &out,
        &[
            "looks like ferry-server's registry (HTTP) port",
            "e.g. http://127.0.0.1:50051",
        ],
    );
}

#[test]
fn a_refused_connection_says_each_cause_once() {
    // Regression: "cannot reach ferry-server at …: transport error: transport error: tcp
    // connect error: tcp connect error: Connection refused".
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let source = layout_source(tmp.path());
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = ferry_publish(&server, &[&source, "--image", IMAGE, "--server", &nobody]);
    let line = assert_one_error(
        &out,
        &[
            &format!("cannot reach ferry-server at {nobody}"),
            "Connection refused",
        ],
    );
    assert!(!line.contains("transport error"), "{line}");
}

#[test]
fn an_invalid_image_name_states_its_rule_once() {
    // Regression: the name rule was both in the message and its source, so `{:#}` said it twice.
    let server = FerryServer::start();
    let out = ferry_publish(
        &server,
        &["docker://gcr.io/Team/app:1", "--server", &server.grpc_url()],
    );
    assert_one_error(
        &out,
        &["invalid repository name \"Team/app\"", "separated by '/'"],
    );
}

#[test]
fn a_repository_path_with_a_port_is_answered_with_the_underscore_form() {
    // Regression: GET /v2/127.0.0.1:5001/team/app/… got NAME_INVALID with only the grammar.
    // skopeo and docker refuse such a reference before sending it (":" cannot appear in a
    // path), so the request is made raw, as a hand-written client or URL would.
    let server = FerryServer::start();
    let r = http::get(
        &server.http_addr,
        "/v2/127.0.0.1:5001/team/app/manifests/1.0",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"127.0.0.1:5001/team/app\"")
            && message.contains("write 127.0.0.1_5001/team/app"),
        "{message}"
    );
}

#[test]
fn publish_help_states_the_default_server() {
    let out = Command::new(binary("ferry"))
        .args(["publish", "--help"])
        .env_remove("FERRY_SERVER")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(help.contains("[default: http://127.0.0.1:50051]"), "{help}");
}
