//! Issue 9: artifacts published beside a release (an SBOM with a tag, a cosign-style `.sig` tag)
//! are recorded as artifacts on every event and tag state, stay queryable through the registry,
//! and are never deployed. Real docker-registry origin, ferry-server, ferry-agent and git daemon.

use std::time::Duration;

use ferry_proto::pb::{self, subscribe_response::Item};
use ferry_tests::ferry::SubscribeFrom;
use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::http;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::process::require_tool;
use ferry_tests::skopeo;

const WAIT: Duration = Duration::from_secs(20);
const SBOM_TYPE: &str = "application/spdx+json";

fn deployment(image: &str, tag: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {image}:{tag}\n")
}

/// One target with no policy: the latest published tag wins.
fn watcher(image: &str) -> String {
    format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: {image}\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n")
}

/// The first `n` events of the log, read from a Subscribe stream.
async fn first_events(server: &FerryServer, n: usize) -> Vec<pb::Event> {
    let mut client = server.client().await;
    let mut stream = client.subscribe_from(0, &[]).await.unwrap().into_inner();
    let mut events = Vec::new();
    while events.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        if let Some(Item::Event(e)) = msg.item {
            events.push(e);
        }
    }
    events
}

/// Regression (issue 9): an SBOM pushed with a tag was the "latest published" tag, so an agent
/// with no policy wrote the SBOM's tag into the Deployment and broke the rollout.
#[test]
fn an_sbom_published_with_a_tag_is_not_deployed() {
    for tool in ["skopeo", "git"] {
        require_tool(tool);
    }
    let tmp = tempfile::tempdir().unwrap();
    let origin = OriginRegistry::start();
    let server = FerryServer::start();
    let image = format!("{}/team/web", origin.addr());
    let repo = format!("{}/team/web", origin.addr().replace(':', "_"));
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", &deployment(&image, "0.9.0")),
            (".pipe/imagewatcher.yaml", &watcher(&image)),
        ],
    );
    let agent = FerryAgent::start(&agent_config(&server, &url, None, &[]), &[]);
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "agent never connected:\n{}",
        agent.log()
    );

    // The release, then an SBOM of it (artifactType + subject) and a cosign-style signature tag.
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let release = layout.add_image(ImageSpec::default());
    layout.tag(&release, "1.0.0");
    let sbom = layout.add_artifact_with_subject(&release, SBOM_TYPE);
    layout.tag(&sbom, "sbom");
    let sig = layout.add_image(ImageSpec::default());
    let sig_tag = format!(
        "sha256-{}.sig",
        release.manifest_digest.trim_start_matches("sha256:")
    );
    layout.tag(&sig, &sig_tag);
    for tag in ["1.0.0", "sbom", sig_tag.as_str()] {
        skopeo::copy(
            &layout.reference(tag),
            &origin.docker_ref(&format!("team/web:{tag}")),
        )
        .unwrap();
    }
    server.publish_ok(&[&format!("docker://{image}:1.0.0"), "--insecure"]);
    let bare = daemon.repo_path("config");
    let remote_file = || git::git(&bare, &["show", "main:web/deployment.yaml"]).unwrap_or_default();
    assert!(
        wait_until(WAIT, || remote_file() == deployment(&image, "1.0.0")),
        "1.0.0 never landed:\n{}\n{}",
        remote_file(),
        agent.log()
    );
    let sbom_digest = server.publish_ok(&[&format!("docker://{image}:sbom"), "--insecure"]);
    assert_eq!(sbom_digest, sbom.manifest_digest);
    server.publish_ok(&[&format!("docker://{image}:{sig_tag}"), "--insecure"]);

    // The server records what each tag points at: on live events and in ListTags.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(first_events(&server, 3));
    let fields = |e: &pb::Event| (e.tag.clone(), e.artifact_type.clone(), e.subject.clone());
    assert_eq!(
        events.iter().map(fields).collect::<Vec<_>>(),
        [
            ("1.0.0".to_string(), String::new(), String::new()),
            (
                "sbom".to_string(),
                SBOM_TYPE.to_string(),
                release.manifest_digest.clone()
            ),
            (sig_tag.clone(), String::new(), String::new()),
        ]
    );
    let listed = rt.block_on(async {
        let mut client = server.client().await;
        client
            .list_tags(pb::ListTagsRequest {
                images: vec![image.clone()],
            })
            .await
            .unwrap()
            .into_inner()
    });
    let sbom_state = listed
        .tags
        .iter()
        .find(|t| t.tag == "sbom")
        .expect("sbom tag listed");
    assert_eq!(sbom_state.artifact_type, SBOM_TYPE);
    assert_eq!(sbom_state.subject, release.manifest_digest);
    let release_state = listed.tags.iter().find(|t| t.tag == "1.0.0").unwrap();
    assert_eq!(
        (
            release_state.artifact_type.as_str(),
            release_state.subject.as_str()
        ),
        ("", "")
    );
    let sig_state = listed.tags.iter().find(|t| t.tag == sig_tag).unwrap();
    assert_eq!(sig_state.digest, sig.manifest_digest);
    assert!(ferry_proto::release::is_cosign_tag(&sig_tag), "{sig_tag}");

    // The registry still serves the artifacts: tags list and referrers.
    let mut tags = skopeo::list_tags(&server.docker_ref(&repo)).unwrap();
    tags.sort();
    let mut expected = vec!["1.0.0".to_string(), "sbom".to_string(), sig_tag.clone()];
    expected.sort();
    assert_eq!(tags, expected);
    let referrers = http::get(
        &server.http_addr,
        &format!("/v2/{repo}/referrers/{}", release.manifest_digest),
    )
    .unwrap();
    assert_eq!(referrers.status, 200);
    let index: serde_json::Value = serde_json::from_slice(&referrers.body).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        sbom.manifest_digest.as_str()
    );
    assert_eq!(index["manifests"][0]["artifactType"], SBOM_TYPE);

    // The agent stays on 1.0.0, with exactly one commit, once it has applied every event
    // (its cursor moves past an event only after applying it).
    assert!(
        agent.wait_caught_up(&server, WAIT),
        "the agent never applied up to the server's head:\n{}",
        agent.log()
    );
    assert_eq!(
        remote_file(),
        deployment(&image, "1.0.0"),
        "{}",
        agent.log()
    );
    let log = git::git(&bare, &["log", "--format=%s", "main"]).unwrap();
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(
        subjects.len(),
        2,
        "the initial commit and 1.0.0's only: {subjects:?}"
    );
    assert!(subjects[0].contains("1.0.0"), "{subjects:?}");
}
