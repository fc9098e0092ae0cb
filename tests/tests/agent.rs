//! Issue 3 end to end: a release published to ferry-server reaches ferry-agent over the gRPC
//! stream and lands in the config repo (served by `git daemon`) as one GPG-signed commit that
//! changes only the intended scalars.

use std::path::Path;
use std::time::Duration;

use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::gpg::GpgKey;
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::process::require_tool;
use ferry_tests::skopeo;

const DEPLOYMENT: &str = "# web tier -- keep this comment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web   # inline\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: \"IMG:0.9.0\"   # bumped by ferry\n          ports: [{containerPort: 8080}]\n";
const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: IMG\n    newTag: 0.9.0   # set by CI\n";
const VALUES: &str =
    "# production values\nimage:\n  repository: IMG\n  tag: 0.9.0\n\nreplicas: 3\n";

fn watcher(image: &str) -> String {
    format!(
        "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  commitMessage: \"Deploy {{{{image}}}}:{{{{tag}}}} ({{{{digest_short}}}}) rev {{{{revision}}}}\"\n  targets:\n    - image: {image}\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n      policy: {{semver: \">=1.0, <2\"}}\n    - image: {image}\n      provider: ferry\n      filePath: web/kustomization.yaml\n      kustomize: {{}}\n      policy: {{semver: \">=1.0, <2\"}}\n    - image: {image}\n      provider: ferry\n      filePath: prod/values.yaml\n      helm: {{repository: image.repository, tag: image.tag, digest: image.digest}}\n      format: digest\n      policy: {{semver: \">=1.0, <2\"}}\n"
    )
}

fn head(url: &str, dir: &Path) -> String {
    let _ = std::fs::remove_dir_all(dir);
    git::clone(url, dir).unwrap();
    git::git(dir, &["rev-parse", "HEAD"])
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn publish_lands_as_one_signed_commit_touching_only_the_scalars() {
    for tool in ["skopeo", "git", "gpg"] {
        require_tool(tool);
    }
    let tmp = tempfile::tempdir().unwrap();
    let origin = OriginRegistry::start();
    let server = FerryServer::start();
    let image = format!("{}/team/web", origin.addr());
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", &DEPLOYMENT.replace("IMG", &image)),
            (
                "web/kustomization.yaml",
                &KUSTOMIZATION.replace("IMG", &image),
            ),
            ("prod/values.yaml", &VALUES.replace("IMG", &image)),
            (".pipe/imagewatcher.yaml", &watcher(&image)),
        ],
    );
    let key = GpgKey::generate("ferry-bot", "ferry-bot@example.com");
    let agent = FerryAgent::start(
        &agent_config(&server, &url, Some("gpg.asc"), &[]),
        &[("gpg.asc", &key.armored_secret_key)],
    );
    assert!(
        agent.wait_for_log("connected", 1, Duration::from_secs(30)),
        "agent never connected:\n{}",
        agent.log()
    );
    let before = head(&url, &tmp.path().join("before"));

    // Release 1.2.4 (and a 2.0.0 outside the policy's range) through a real origin.
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let rel = layout.add_image(ImageSpec {
        labels: [(
            "org.opencontainers.image.revision".to_string(),
            "abc123".to_string(),
        )]
        .into(),
        ..ImageSpec::default()
    });
    layout.tag(&rel, "1.2.4");
    skopeo::copy(
        &layout.reference("1.2.4"),
        &origin.docker_ref("team/web:1.2.4"),
    )
    .unwrap();
    // How fast the commit follows is measured by the end-to-end benchmark (bench/src/
    // end_to_end.rs, publish → commit), not asserted here: a threshold only makes this test
    // depend on the machine's load.
    let digest = server.publish_ok(&[&format!("docker://{image}:1.2.4"), "--insecure"]);
    let mut after = before.clone();
    let landed = wait_until(Duration::from_secs(30), || {
        after = head(&url, &tmp.path().join("after"));
        after != before
    });
    assert!(landed, "no commit within 30 s:\n{}", agent.log());
    let clone = tmp.path().join("after");

    // Exactly one new commit, signed, by the configured author, with the templated message.
    let log = git::log(&clone).unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    let verify = key.verify_commit(&clone, "HEAD").unwrap();
    assert!(verify.contains("Good signature"), "{verify}");
    let author = git::git(&clone, &["log", "-1", "--format=%an <%ae>|%s"]).unwrap();
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        author.trim(),
        format!("ferry-bot <ferry-bot@example.com>|Deploy {image}:1.2.4 ({short}) rev abc123")
    );

    // The diff touches only the intended scalars.
    let read = |p: &str| std::fs::read_to_string(clone.join(p)).unwrap();
    assert_eq!(
        read("web/deployment.yaml"),
        DEPLOYMENT
            .replace("IMG", &image)
            .replace(":0.9.0\"", ":1.2.4\"")
    );
    assert_eq!(
        read("web/kustomization.yaml"),
        KUSTOMIZATION
            .replace("IMG", &image)
            .replace("newTag: 0.9.0", "newTag: 1.2.4")
    );
    // Helm values end with image.digest set and no image.tag.
    assert_eq!(
        read("prod/values.yaml"),
        VALUES
            .replace("IMG", &image)
            .replace("tag: 0.9.0", &format!("digest: {digest}"))
    );

    // A release outside the range moves nothing; restarting with nothing new makes no commit.
    let mut layout2 = OciLayout::new(tmp.path().join("img2"));
    let major = layout2.add_image(ImageSpec::default());
    layout2.tag(&major, "2.0.0");
    skopeo::copy(
        &layout2.reference("2.0.0"),
        &origin.docker_ref("team/web:2.0.0"),
    )
    .unwrap();
    server.publish_ok(&[&format!("docker://{image}:2.0.0"), "--insecure"]);
    let mut agent = agent;
    // The cursor only moves past 2.0.0's event once the agent has applied it; then the remote
    // must still be at the 1.2.4 commit. (The start-up reconcile's "nothing to change" says
    // nothing about 2.0.0.)
    assert!(
        agent.wait_caught_up(&server, Duration::from_secs(30)),
        "the agent never applied up to the server's head:\n{}",
        agent.log()
    );
    assert_eq!(
        head(&url, &tmp.path().join("major")),
        after,
        "2.0.0 is outside the policy's range but moved the repo:\n{}",
        agent.log()
    );
    agent.restart();
    // The restarted agent's log starts afresh: its start-up reconcile ends in one outcome.
    assert!(
        wait_until(Duration::from_secs(30), || {
            let log = agent.log();
            log.contains("nothing to change") || log.contains("pushed")
        }),
        "the restarted agent never finished its start-up reconcile:\n{}",
        agent.log()
    );
    assert!(
        !agent.log().contains("pushed"),
        "a restart with nothing new pushed:\n{}",
        agent.log()
    );
    assert!(
        agent.wait_caught_up(&server, Duration::from_secs(30)),
        "{}",
        agent.log()
    );
    assert_eq!(
        head(&url, &tmp.path().join("final")),
        after,
        "no new commit:\n{}",
        agent.log()
    );
}
