//! Issue 12 end to end: a config repository whose `main` refuses pushes (a `pre-receive` hook,
//! as a protected branch on a forge). With `push.branch`, releases published to ferry-server
//! reach ferry-agent and land on the push branch, one ferry commit per release, fast-forwarded
//! and with the push options, while `main` only moves when a human commits to it.

use std::time::Duration;

use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::process::require_tool;

const WAIT: Duration = Duration::from_secs(20);
const IMAGE: &str = "registry.example.com/team/web";
const PUSH_BRANCH: &str = "ferry/updates";

fn deployment(tag: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {IMAGE}:{tag}   # managed by ferry\n")
}

const WATCHER: &str = "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/team/web\n      provider: ferry\n      filePath: web/deployment.yaml\n      field: spec.template.spec.containers[0].image\n";

#[test]
fn releases_land_on_the_push_branch_and_main_only_moves_by_hand() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", &deployment("1.0.0")),
            (".pipe/imagewatcher.yaml", WATCHER),
            ("README", "config\n"),
        ],
    );
    let options_log = daemon.protect_main("config");
    let bare = daemon.repo_path("config");
    let show = |rev: &str| git::git(&bare, &["show", rev]).unwrap_or_default();
    let rev = |rev: &str| {
        git::git(&bare, &["rev-parse", "--verify", "--quiet", rev])
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let initial = rev("refs/heads/main");

    let config = agent_config(&server, &url, None, &[]).replacen(
        "      branch: main\n",
        &format!("      branch: main\n      push:\n        branch: {PUSH_BRANCH}\n        pushOptions: [merge_request.create, \"merge_request.target=main\"]\n"),
        1,
    );
    let agent = FerryAgent::start(&config, &[]);
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "agent never connected:\n{}",
        agent.log()
    );

    let mut layout = OciLayout::new(tmp.path().join("images"));
    let mut publish = |tag: &str| {
        let desc = layout.add_image(ImageSpec::default());
        let ref_name = format!("web-{tag}");
        layout.tag(&desc, &ref_name);
        server.publish_ok(&[&layout.reference(&ref_name), "--image", IMAGE, "--tag", tag]);
    };
    let on_branch = format!("{PUSH_BRANCH}:web/deployment.yaml");
    let wait_for = |tag: &str| {
        let wanted = deployment(tag);
        assert!(
            wait_until(WAIT, || show(&on_branch) == wanted),
            "{PUSH_BRANCH} never got {tag}; it has:\n{}\nagent log:\n{}",
            show(&on_branch),
            agent.log()
        );
    };

    publish("1.1.0");
    wait_for("1.1.0");
    let first = rev(&format!("refs/heads/{PUSH_BRANCH}"));
    // A maintainer commits to main between the releases (forges let them; the hook only
    // stops pushes, so the commit is fetched in).
    let human =
        git::commit_file_to_main(&bare, "README", "edited by a human\n", "docs: README").unwrap();
    publish("1.2.0");
    wait_for("1.2.0");
    let second = rev(&format!("refs/heads/{PUSH_BRANCH}"));

    // main never received the agent's commits.
    assert_eq!(rev("refs/heads/main"), human);
    assert_eq!(show("main:web/deployment.yaml"), deployment("1.0.0"));
    git::git(&bare, &["merge-base", "--is-ancestor", &initial, &human]).unwrap();

    // Two ferry commits on the branch beyond main, each a fast-forward of the last, the second
    // bringing the human's commit along.
    let ferry_commits = git::git(
        &bare,
        &["log", "--format=%an %s", &format!("main..{PUSH_BRANCH}")],
    )
    .unwrap();
    let ferry_commits: Vec<&str> = ferry_commits.lines().collect();
    assert_eq!(
        ferry_commits,
        [
            format!("ferry-bot ferry: update {IMAGE} to 1.2.0"),
            format!("ferry-bot ferry: update {IMAGE} to 1.1.0"),
        ],
        "{}",
        agent.log()
    );
    git::git(&bare, &["merge-base", "--is-ancestor", &first, &second]).unwrap();
    git::git(&bare, &["merge-base", "--is-ancestor", &human, &second]).unwrap();
    assert_eq!(
        show(&format!("{PUSH_BRANCH}:README")),
        "edited by a human\n"
    );

    // Both pushes carried the push options.
    let options = std::fs::read_to_string(&options_log).unwrap();
    let expected = "push\nmerge_request.create\nmerge_request.target=main\n";
    assert_eq!(options, expected.repeat(2), "{}", agent.log());
}

#[test]
fn branch_template_names_a_branch_per_release() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let server = FerryServer::start();
    let daemon = GitDaemon::start(tmp.path().join("git"));
    let url = daemon.init_bare_repo_with_files(
        "config",
        &[
            ("web/deployment.yaml", &deployment("1.0.0")),
            (".pipe/imagewatcher.yaml", WATCHER),
        ],
    );
    daemon.protect_main("config");
    let bare = daemon.repo_path("config");
    let show = |rev: &str| git::git(&bare, &["show", rev]).unwrap_or_default();
    let initial = git::git(&bare, &["rev-parse", "main"]).unwrap();
    let config = agent_config(&server, &url, None, &[]).replacen(
        "      branch: main\n",
        "      branch: main\n      push:\n        branchTemplate: \"ferry/{{image}}-{{tag}}\"\n",
        1,
    );
    let agent = FerryAgent::start(&config, &[]);
    assert!(
        agent.wait_for_log("connected", 1, WAIT),
        "agent never connected:\n{}",
        agent.log()
    );
    let mut layout = OciLayout::new(tmp.path().join("images"));
    for tag in ["1.1.0", "1.2.0"] {
        let desc = layout.add_image(ImageSpec::default());
        let ref_name = format!("web-{tag}");
        layout.tag(&desc, &ref_name);
        server.publish_ok(&[&layout.reference(&ref_name), "--image", IMAGE, "--tag", tag]);
        // The image's '/' are kept: they are fine in branch names.
        let file = format!("ferry/{IMAGE}-{tag}:web/deployment.yaml");
        assert!(
            wait_until(WAIT, || show(&file) == deployment(tag)),
            "no branch ferry/{IMAGE}-{tag} with {tag}; agent log:\n{}",
            agent.log()
        );
        // Each branch is one commit on main's tip.
        let parents = git::git(
            &bare,
            &["log", "-1", "--format=%P", &format!("ferry/{IMAGE}-{tag}")],
        )
        .unwrap();
        assert_eq!(parents, initial);
    }
    assert_eq!(git::git(&bare, &["rev-parse", "main"]).unwrap(), initial);
}
