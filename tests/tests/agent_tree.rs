//! Issue 13: the agent reads the config repo as a tree (a bare clone, files read as blobs of
//! the tip), so what humans do to that tree between releases must be handled as before: a
//! symlink entry on a target's path is refused, a target file deleted upstream fails that
//! target alone, and a renamed ImageWatcher file is followed. Real ferry-server, ferry-agent
//! and git daemon; the human side is the git CLI.

use ferry_tests::agent_stack::{deployment, target, watcher, Stack, WAIT};
use ferry_tests::ferry::FerryAgent;
use ferry_tests::git;

const A: &str = "registry.example.com/team/a";
const B: &str = "registry.example.com/team/b";

/// The paths the commit at the tip of the remote's `main` changed.
fn tip_changes(s: &Stack) -> Vec<String> {
    git::git(&s.bare(), &["show", "--name-only", "--format=", "main"])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_logged(agent: &FerryAgent, needle: &str) {
    assert!(
        agent.wait_for_log(needle, 1, WAIT),
        "the agent never said {needle:?}:\n{}",
        agent.log()
    );
}

#[test]
fn a_symlink_entry_on_a_target_path_is_refused_and_nothing_goes_through_it() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("real/b.yaml", deployment(B, "1.0.0")),
        (
            ".pipe/watch.yaml",
            watcher(&[
                target(A, "a.yaml"),
                // A link to a file inside the repository, and a path through a linked directory.
                target(B, "b-link.yaml"),
                target(B, "linkdir/b.yaml"),
            ]),
        ),
    ]);
    git::commit_change_and_push(&s.url, "links", |work| {
        std::os::unix::fs::symlink("real/b.yaml", work.join("b-link.yaml"))?;
        std::os::unix::fs::symlink("real", work.join("linkdir"))
    })
    .unwrap();
    let links = s.remote_main();
    let agent = s.agent(&[]);
    s.release(A, "1.1.0");
    s.release(B, "1.1.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.1.0"), &[&agent]);
    assert_logged(&agent, "\"b-link.yaml\" is a symlink in the repository");
    assert_logged(&agent, "\"linkdir\" is a symlink in the repository");
    // The good target's commit carries only its file; the links and what they point at are
    // as the human left them.
    assert_eq!(tip_changes(&s), ["a.yaml"]);
    assert_eq!(s.remote_file("real/b.yaml"), deployment(B, "1.0.0"));
    let tree = git::git(&s.bare(), &["ls-tree", "main", "b-link.yaml", "linkdir"]).unwrap();
    assert_eq!(tree.matches("120000 blob").count(), 2, "{tree}");
    let parent = git::git(&s.bare(), &["rev-parse", "main^"]).unwrap();
    assert_eq!(parent.trim(), links);
}

#[test]
fn a_target_file_deleted_upstream_fails_that_target_alone() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("b.yaml", deployment(B, "1.0.0")),
        (
            ".pipe/watch.yaml",
            watcher(&[target(A, "a.yaml"), target(B, "b.yaml")]),
        ),
    ]);
    let agent = s.agent(&[]);
    git::commit_change_and_push(&s.url, "retire b", |work| {
        std::fs::remove_file(work.join("b.yaml"))
    })
    .unwrap();
    s.release(B, "1.1.0");
    s.release(A, "1.1.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.1.0"), &[&agent]);
    assert_logged(&agent, "\"b.yaml\" does not exist at commit");
    // Not recreated, and the agent is still applying: the next release lands too.
    assert_eq!(tip_changes(&s), ["a.yaml"]);
    assert!(!git::git(&s.bare(), &["ls-tree", "--name-only", "main"])
        .unwrap()
        .lines()
        .any(|l| l == "b.yaml"));
    s.release(A, "1.2.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.2.0"), &[&agent]);
}

#[test]
fn an_imagewatcher_file_renamed_between_two_releases_is_followed() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        (".pipe/watch.yaml", watcher(&[target(A, "a.yaml")])),
    ]);
    let agent = s.agent(&[]);
    s.release(A, "1.1.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.1.0"), &[&agent]);

    // A human reorganises: the ImageWatcher file moves under a team directory, and the
    // deployment it names moves with the app.
    git::commit_change_and_push(&s.url, "reorganise", |work| {
        std::fs::create_dir_all(work.join(".pipe/team-a"))?;
        std::fs::create_dir_all(work.join("apps"))?;
        std::fs::rename(work.join("a.yaml"), work.join("apps/a.yaml"))?;
        std::fs::remove_file(work.join(".pipe/watch.yaml"))?;
        std::fs::write(
            work.join(".pipe/team-a/imagewatcher.yaml"),
            watcher(&[target(A, "apps/a.yaml")]),
        )
    })
    .unwrap();
    assert_logged(&agent, "ImageWatcher files changed");
    s.release(A, "1.2.0");
    s.wait_for_file("apps/a.yaml", &deployment(A, "1.2.0"), &[&agent]);
    assert_eq!(tip_changes(&s), ["apps/a.yaml"]);
    assert!(
        !agent.log().contains("does not exist at commit"),
        "the agent looked for the old location:\n{}",
        agent.log()
    );
}
