//! Issue 10 end to end: a real ferry-agent with a `ring: testers` target follows the ring on a
//! real ferry-server (promote forward, rollback back), commits each move to a config repo served
//! by `git daemon`, and reports under its cluster name what the file holds; restarted, it
//! reports the same state again without adding history.

use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::process::require_tool;
use ferry_tests::releases::release;

const IMAGE: &str = "registry.example.com/shop/api";
const VERSION: &str = "org.opencontainers.image.version";
const CLUSTER: &str = "prod-eu-1";
const WAIT: Duration = Duration::from_secs(30);

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: registry.example.com/shop/api\n    newTag: 0.9.0   # set by ferry\n";

const WATCHER: &str = "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  commitMessage: \"Deploy {{version}} to {{ring}}\"\n  targets:\n    - image: registry.example.com/shop/api\n      provider: ferry\n      filePath: testers/kustomization.yaml\n      kustomize: {}\n      ring: testers\n      format: tag+digest\n";

type Client = ferry_proto::client::Client;

/// Publishes release `n` of IMAGE as version `version` (into ante, the pipeline listing it).
async fn publish(c: &mut Client, n: u64, version: &str) -> String {
    let mut req = release(IMAGE, n, vec![version.to_string()]);
    req.labels.insert(VERSION.into(), version.into());
    c.publish(req).await.unwrap().into_inner().digest
}

/// Promotes `digest` through developers into testers.
async fn promote_to_testers(c: &mut Client, digest: &str) {
    for ring in ["developers", "testers"] {
        c.promote(pb::PromoteRequest {
            image: IMAGE.into(),
            reference: format!("@{digest}"),
            to_ring: ring.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("promote {digest} to {ring}: {s}"));
    }
}

/// The latest report of the one target following testers (every target's row: it may be
/// healthy).
async fn testers_report(c: &mut Client) -> Option<pb::ClusterTarget> {
    let status = c
        .get_pipeline(pb::GetPipelineRequest {
            name_or_image: "shop".into(),
            history: false,
            targets: true,
        })
        .await
        .unwrap()
        .into_inner();
    let ring = status.rings.into_iter().find(|r| r.name == "testers")?;
    ring.clusters.into_iter().find(|t| t.cluster == CLUSTER)
}

/// The kustomization on `main` of the bare repository, and `main`'s tip.
fn main_state(daemon: &GitDaemon) -> (String, String) {
    let bare = daemon.repo_path("config");
    let file = git::show(&bare, "main:testers/kustomization.yaml").unwrap();
    let tip = git::git(&bare, &["rev-parse", "main"]).unwrap();
    (file, tip.trim().to_string())
}

/// Whether the kustomization pins `version` and `digest`.
fn pins(file: &str, version: &str, digest: &str) -> bool {
    file.contains(&format!("newTag: {version}   # set by ferry\n"))
        && file.contains(&format!("digest: {digest}\n"))
}

#[test]
fn a_ring_target_follows_promotions_and_rollbacks_and_reports_them() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ci = rt.block_on(server.client());
    let (_, mut rm) = server.promoter(&rt, "release-manager");

    rt.block_on(rm.apply_pipeline(pb::ApplyPipelineRequest {
        spec: Some(pb::PipelineSpec {
            name: "shop".into(),
            rings: vec!["developers".into(), "testers".into(), "users".into()],
            images: vec![IMAGE.into()],
            ..Default::default()
        }),
        source: String::new(),
    }))
    .unwrap();
    let d1 = rt.block_on(publish(&mut ci, 1, "1.0.0"));
    rt.block_on(promote_to_testers(&mut rm, &d1));

    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("testers/kustomization.yaml", KUSTOMIZATION),
            (".pipe/imagewatcher.yaml", WATCHER),
        ],
    );
    let config = agent_config(&server, &url, None, &[]).replacen(
        "spec:\n",
        &format!("spec:\n  name: {CLUSTER}\n"),
        1,
    );
    let mut agent = FerryAgent::start(&config, &[]);

    // Reconciled: the file holds what testers points at.
    let landed = wait_until(WAIT, || pins(&main_state(&daemon).0, "1.0.0", &d1));
    assert!(landed, "testers' digest never landed:\n{}", agent.log());

    // Promoted forward: RING_MOVED is applied as one commit with the templated message.
    let d2 = rt.block_on(publish(&mut ci, 2, "1.1.0"));
    rt.block_on(promote_to_testers(&mut rm, &d2));
    let landed = wait_until(WAIT, || pins(&main_state(&daemon).0, "1.1.0", &d2));
    assert!(landed, "the promotion never landed:\n{}", agent.log());
    let bare = daemon.repo_path("config");
    let subject = git::git(&bare, &["log", "-1", "--format=%s", "main"]).unwrap();
    assert_eq!(subject.trim(), "Deploy 1.1.0 to testers");

    // Rolled back: the ring moves back, and so does the file (never-downgrade is for policies).
    rt.block_on(rm.rollback(pb::RollbackRequest {
        image: IMAGE.into(),
        ring: "testers".into(),
        ..Default::default()
    }))
    .unwrap();
    let landed = wait_until(WAIT, || pins(&main_state(&daemon).0, "1.0.0", &d1));
    assert!(landed, "the rollback never landed:\n{}", agent.log());
    let (_, tip) = main_state(&daemon);

    // A new build moves a tag and ante, not testers: once the agent has taken those events,
    // the file and the branch are as they were.
    rt.block_on(publish(&mut ci, 3, "1.2.0"));
    assert!(
        agent.wait_caught_up(&server, WAIT),
        "the agent never took the new build's events:\n{}",
        agent.log()
    );
    let (file, still) = main_state(&daemon);
    assert!(pins(&file, "1.0.0", &d1) && still == tip, "{file}");
    let commits = git::git(&bare, &["rev-list", "--count", "main"]).unwrap();
    assert_eq!(commits.trim(), "4", "initial, reconcile, promote, rollback");

    // The report: the digest the file holds, the commit that wrote it, under the cluster name.
    let mut report = None;
    let reported = wait_until(WAIT, || {
        report = rt.block_on(testers_report(&mut ci));
        report
            .as_ref()
            .is_some_and(|r| r.digest == d1 && r.commit == tip)
    });
    assert!(
        reported,
        "no report of {d1} at {tip}: {report:?}\n{}",
        agent.log()
    );
    let before = report.unwrap();
    assert_eq!(before.image, IMAGE);
    assert_eq!(before.ring, "testers");
    assert_eq!(before.file, "testers/kustomization.yaml");
    assert_eq!(before.error, "");
    assert!(before.connected, "{before:?}");
    assert!(before.pushed_at_ms > 0, "{before:?}");

    // Restarted: it reports the same state again, and the server records no change.
    agent.restart();
    let again = wait_until(WAIT, || {
        agent
            .log()
            .lines()
            .any(|l| l.contains("reported") && l.contains("changed=0"))
    });
    assert!(
        again,
        "the restarted agent did not re-report:\n{}",
        agent.log()
    );
    assert!(
        !agent
            .log()
            .lines()
            .any(|l| l.contains("reported") && !l.contains("changed=0")),
        "the re-report changed history:\n{}",
        agent.log()
    );
    let after = rt
        .block_on(testers_report(&mut ci))
        .expect("still reported");
    assert_eq!(
        (after.digest.as_str(), after.commit.as_str(), after.since_ms),
        (d1.as_str(), tip.as_str(), before.since_ms)
    );
    assert_eq!(main_state(&daemon).1, tip, "a restart commits nothing");
}
