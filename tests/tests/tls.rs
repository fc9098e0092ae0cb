//! Issue 5, TLS end to end with a CA the test makes: ferry-server serves both listeners over
//! TLS; `ferry publish --ca-file` publishes over it; ferry-agent with `caFile` subscribes over
//! it and commits the release; skopeo reads the registry verifying the certificate; clients
//! without the CA, or speaking plain text, are refused.

use std::process::Command;
use std::time::{Duration, Instant};

use ferry_proto::pb;
use ferry_tests::certs::make_certificates;
use ferry_tests::ferry::SubscribeFrom;
use ferry_tests::ferry::{agent_config, binary, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::process::require_tool;

const IMAGE: &str = "registry.example.com/team/web";

fn publish(
    server: &FerryServer,
    url: &str,
    source: &str,
    ca: Option<&std::path::Path>,
) -> std::process::Output {
    let mut cmd = Command::new(binary("ferry"));
    cmd.args(["publish", source, "--image", IMAGE, "--server", url])
        .env("FERRY_TOKEN", server.token())
        .env_remove("FERRY_CA_FILE");
    if let Some(ca) = ca {
        cmd.arg("--ca-file").arg(ca);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_and_registry_reads_over_tls() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs);
    let ca = certs.join("ca.pem");
    let server = FerryServer::start_with(&[
        "--tls-cert",
        certs.join("server.pem").to_str().unwrap(),
        "--tls-key",
        certs.join("server.key").to_str().unwrap(),
    ]);
    let https = format!("https://{}", server.grpc_addr);

    // An agent over TLS, watching the image.
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let deployment = format!("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {IMAGE}:1.0.0\n");
    let watcher = format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: {IMAGE}\n      provider: ferry\n      filePath: web.yaml\n      field: spec.template.spec.containers[0].image\n      policy: {{semver: \">=1.0\"}}\n");
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[("web.yaml", &deployment), (".pipe/w.yaml", &watcher)],
    );
    let config = agent_config(&server, &url, None, &[])
        .replace("address: http://", "address: https://")
        .replace(
            "        tokenFile:",
            &format!("        caFile: {}\n        tokenFile:", ca.display()),
        );
    let agent = FerryAgent::start(&config, &[]);
    assert!(
        agent.wait_for_log("connected", 1, Duration::from_secs(30)),
        "{}",
        agent.log()
    );

    // A raw subscriber over TLS too.
    let mut client = ferry_proto::client::connect_with(&https, Some(&server.token()), Some(&ca))
        .await
        .unwrap();
    let mut stream = client
        .subscribe_from(0, &[IMAGE])
        .await
        .unwrap()
        .into_inner();

    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "1.2.0");
    let source = layout.reference("1.2.0");

    // Refused: no CA (the test CA is not a system CA), and plain text to a TLS port.
    let out = publish(&server, &https, &source, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "published without trusting the CA");
    assert!(stderr.contains("cannot reach ferry-server"), "{stderr}");
    let out = publish(&server, &server.grpc_url(), &source, None);
    assert!(
        !out.status.success(),
        "published in plain text to a TLS listener"
    );
    let out = publish(&server, &server.grpc_url(), &source, Some(&ca));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not https://"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let out = publish(&server, &https, &source, Some(&ca));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(pb::subscribe_response::Item::Event(e)) =
                stream.message().await.unwrap().unwrap().item
            {
                return e;
            }
        }
    })
    .await
    .expect("no event over TLS within 10 s");
    assert_eq!(
        (event.tag.as_str(), event.digest.as_str()),
        ("1.2.0", digest.as_str())
    );

    // The agent commits it.
    let clone = tmp.path().join("clone");
    let landed = ferry_tests::ferry::wait_until(Duration::from_secs(20), || {
        let _ = std::fs::remove_dir_all(&clone);
        git::clone(&url, &clone).is_ok()
            && std::fs::read_to_string(clone.join("web.yaml"))
                .unwrap_or_default()
                .contains(":1.2.0")
    });
    assert!(
        landed,
        "the agent did not commit 1.2.0 over TLS in 20 s:\n{}",
        agent.log()
    );
    eprintln!("publish → commit over TLS: {:?}", started.elapsed());

    // skopeo verifies the registry's certificate against the CA (--cert-dir holds ca.crt).
    let cert_dir = tmp.path().join("skopeo-certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(&ca, cert_dir.join("ca.crt")).unwrap();
    let reference = format!("docker://{}/{IMAGE}:1.2.0", server.http_addr);
    let out = Command::new("skopeo")
        .args(["inspect", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&reference)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    let out = Command::new("skopeo")
        .args(["inspect", &reference])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "skopeo trusted the test CA without being told to"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
