//! Issue 3, the hard cases: the agent or the server goes away, humans and other agents push to
//! the same branch, and the config holds mistakes. Real ferry-server, ferry-agent and git daemon.

use std::time::Duration;

use ferry_tests::agent_stack::{deployment, target, watcher, Stack, WAIT};
use ferry_tests::ferry::{agent_config, binary, wait_until, FerryAgent};
use ferry_tests::git::{self, HeldHook};
use ferry_tests::process::run;

/// Waits for the outcome of a freshly started agent's start-up reconcile (its log starts
/// afresh on each start) and fails unless it was "nothing to change": no commit was pushed.
fn assert_reconciled_without_a_push(agent: &FerryAgent) {
    assert!(
        wait_until(WAIT, || {
            let log = agent.log();
            log.contains("nothing to change") || log.contains("pushed")
        }),
        "the agent's start-up reconcile never finished:\n{}",
        agent.log()
    );
    assert!(
        !agent.log().contains("pushed"),
        "the start-up reconcile pushed a commit:\n{}",
        agent.log()
    );
}

/// The agent's log line for a commit it pushed (ferry-agent's git module logs one too, at
/// debug level, so a bare "pushed" counts each push twice).
const PUSHED: &str = "ferry_agent::run: pushed";

const A: &str = "registry.example.com/team/a";
const B: &str = "registry.example.com/team/b";
const C: &str = "registry.example.com/team/c";

#[test]
fn releases_made_while_the_agent_or_the_server_is_down_are_applied_exactly_once() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("b.yaml", deployment(B, "1.0.0")),
        ("c.yaml", deployment(C, "1.0.0")),
        (
            ".pipe/watch.yaml",
            watcher(&[
                target(A, "a.yaml"),
                target(B, "b.yaml"),
                target(C, "c.yaml"),
            ]),
        ),
    ]);
    let mut agent = s.agent(&[]);

    // Three releases while the agent is stopped (SIGKILL, no goodbye).
    agent.kill9();
    for image in [A, B, C] {
        s.release(image, "1.1.0");
    }
    agent.restart();
    for (image, file) in [(A, "a.yaml"), (B, "b.yaml"), (C, "c.yaml")] {
        s.wait_for_file(file, &deployment(image, "1.1.0"), &[&agent]);
        // Applied exactly once: the initial commit plus one.
        assert_eq!(
            s.remote_log(&[file]).len(),
            2,
            "{file}: {:?}",
            s.remote_log(&[file])
        );
    }
    let commits = s.remote_log(&[]).len();

    // Restart with nothing new: no commit.
    let main_before = git::git(&s.bare(), &["rev-parse", "main"]).unwrap();
    agent.restart();
    assert_reconciled_without_a_push(&agent);
    assert!(agent.wait_caught_up(&s.server, WAIT), "{}", agent.log());
    assert_eq!(
        git::git(&s.bare(), &["rev-parse", "main"]).unwrap(),
        main_before
    );
    assert_eq!(
        s.remote_log(&[]).len(),
        commits,
        "a restart with nothing new committed:\n{}",
        agent.log()
    );

    // The server restarts under a connected agent: it reconnects and follows new releases.
    s.server.restart();
    assert!(
        agent.wait_for_log("connected", 2, WAIT),
        "agent did not reconnect:\n{}",
        agent.log()
    );
    s.release(A, "1.2.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.2.0"), &[&agent]);
    assert_eq!(s.remote_log(&[]).len(), commits + 1);
}

#[test]
fn a_human_push_between_releases_is_kept_under_the_agent_commits() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        (".pipe/watch.yaml", watcher(&[target(A, "a.yaml")])),
    ]);
    let agent = s.agent(&[]);
    s.release(A, "1.1.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.1.0"), &[&agent]);
    let human =
        git::commit_file_and_push(&s.url, "docs/notes.md", "hello\n", "human: notes").unwrap();
    s.release(A, "1.2.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.2.0"), &[&agent]);
    // Both stay: the human commit is an ancestor of the agent's newest commit.
    git::git(&s.bare(), &["merge-base", "--is-ancestor", &human, "main"])
        .expect("the human commit was lost");
    assert_eq!(s.remote_file("docs/notes.md"), "hello\n");
    assert_eq!(s.remote_log(&[]).len(), 4, "{:?}", s.remote_log(&[]));
}

#[test]
fn two_agents_writing_different_files_through_50_interleaved_releases_lose_nothing() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("b.yaml", deployment(B, "1.0.0")),
        (".pipe/one.yaml", watcher(&[target(A, "a.yaml")])),
        (".pipe/two.yaml", watcher(&[target(B, "b.yaml")])),
    ]);
    let one = s.agent(&[".pipe/one.yaml"]);
    let two = s.agent(&[".pipe/two.yaml"]);
    for i in 1..=50 {
        let tag = format!("1.0.{i}");
        s.release(A, &tag);
        s.release(B, &tag);
        // Let some releases land one by one and others arrive together.
        if i % 5 == 0 {
            let done = format!("1.0.{i}");
            assert!(
                wait_until(WAIT, || s.remote_file("a.yaml") == deployment(A, &done)
                    && s.remote_file("b.yaml") == deployment(B, &done)),
                "release {done} did not land:\n{}\n-----\n{}",
                one.log(),
                two.log()
            );
        }
    }
    s.wait_for_file("a.yaml", &deployment(A, "1.0.50"), &[&one, &two]);
    s.wait_for_file("b.yaml", &deployment(B, "1.0.50"), &[&one, &two]);
    // Linear history with no merges (re-applied on the new tip, never merged or forced), and
    // each agent only ever touched its own file.
    assert_eq!(
        git::git(&s.bare(), &["rev-list", "--merges", "main"])
            .unwrap()
            .trim(),
        ""
    );
    let a_commits = s.remote_log(&["a.yaml"]).len();
    let b_commits = s.remote_log(&["b.yaml"]).len();
    assert_eq!(
        s.remote_log(&[]).len(),
        a_commits + b_commits - 1,
        "a commit touched both files"
    );
    assert!(
        a_commits > 10 && b_commits > 10,
        "releases were applied: {a_commits} and {b_commits} commits"
    );
}

#[test]
fn bad_targets_are_refused_with_clear_errors_and_the_good_one_still_moves() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("b.yaml", deployment(B, "1.0.0")),
        (
            ".pipe/watch.yaml",
            watcher(&[
                target(A, "a.yaml"),
                // A YAML path that does not exist in the file.
                format!("    - image: {B}\n      provider: ferry\n      filePath: b.yaml\n      field: spec.template.spec.initContainers[0].image\n"),
                // Paths that leave the repository.
                target(B, "../../etc/passwd"),
                target(B, "/etc/passwd"),
                // A provider the agent does not have, and a format that does not exist.
                format!("    - image: {C}\n      provider: dockerhub\n      filePath: b.yaml\n      kustomize: {{}}\n"),
                format!("    - image: {B}\n      provider: ferry\n      filePath: b.yaml\n      field: spec.x\n      format: sha\n"),
            ]),
        ),
    ]);
    let agent = s.agent(&[]);
    s.release(A, "1.1.0");
    s.release(B, "1.1.0");
    s.wait_for_file("a.yaml", &deployment(A, "1.1.0"), &[&agent]);
    assert!(
        agent.wait_for_log("initContainers", 1, WAIT),
        "{}",
        agent.log()
    );
    let log = agent.log();
    for needle in [
        "spec.template.spec.initContainers",
        "../../etc/passwd",
        "/etc/passwd",
        "\"dockerhub\"",
        "unknown format \"sha\"",
    ] {
        assert!(
            log.contains(needle),
            "no clear error naming {needle:?}:\n{log}"
        );
    }
    // Nothing but the good target's file changed.
    assert_eq!(s.remote_file("b.yaml"), deployment(B, "1.0.0"));
    assert_eq!(s.remote_log(&[]).len(), 2);

    // A malformed agent config stops the agent at once with the file, the field and the rule.
    let bad = s.tmp.path().join("bad-agent.yaml");
    std::fs::write(
        &bad,
        agent_config(&s.server, &s.url, None, &[]).replace("type: FERRY", "type: GCR"),
    )
    .unwrap();
    let err = run(std::process::Command::new(binary("ferry-agent"))
        .arg("--config")
        .arg(&bad)
        .arg("--state-dir")
        .arg(s.tmp.path().join("bad-state")))
    .expect_err("the agent must refuse a GCR provider");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("bad-agent.yaml")
            && msg.contains("spec.imageProviders[0].type")
            && msg.contains("GCR"),
        "{msg}"
    );
}

#[test]
fn a_target_added_to_an_imagewatcher_file_is_reconciled_without_a_new_release() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        ("b.yaml", deployment(B, "1.0.0")),
        (".pipe/watch.yaml", watcher(&[target(A, "a.yaml")])),
    ]);
    // B is released before anyone watches it: no event will ever mention it again.
    s.release(B, "1.4.0");
    let agent = s.agent(&[]);
    assert_reconciled_without_a_push(&agent);
    assert!(agent.wait_caught_up(&s.server, WAIT), "{}", agent.log());
    assert_eq!(
        s.remote_file("b.yaml"),
        deployment(B, "1.0.0"),
        "b.yaml is not watched yet"
    );
    // A human adds the target; the agent notices at its next resync (2 s in tests).
    git::commit_file_and_push(
        &s.url,
        ".pipe/watch.yaml",
        &watcher(&[target(A, "a.yaml"), target(B, "b.yaml")]),
        "watch b",
    )
    .unwrap();
    s.wait_for_file("b.yaml", &deployment(B, "1.4.0"), &[&agent]);
    assert!(
        agent.log().contains("ImageWatcher files changed"),
        "{}",
        agent.log()
    );
}

#[test]
fn an_agent_killed_during_its_push_leaves_the_repo_consistent_and_applies_once() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        (".pipe/watch.yaml", watcher(&[target(A, "a.yaml")])),
    ]);
    let mut agent = s.agent(&[]);
    // Before the refs move (a pre-receive hook that refuses: the push does not land) and after
    // (post-receive: it landed, but the agent dies before it hears so).
    for (round, hook, exit_code) in [(1, "pre-receive", 1), (2, "post-receive", 0)] {
        assert!(
            agent.wait_caught_up(&s.server, WAIT),
            "round {round}: the agent never caught up before the release:\n{}",
            agent.log()
        );
        let cursor_before = agent.cursor();
        let pushes_before = agent.log().matches(PUSHED).count();
        let main_before = s.remote_main();
        let held = HeldHook::install(
            &s.bare(),
            s.tmp.path(),
            hook,
            &format!("push-{round}"),
            exit_code,
        );
        let tag = format!("1.{round}.0");
        s.release(A, &tag);
        assert!(
            wait_until(WAIT, || held.reached()),
            "round {round}: no push reached the {hook} hook:\n{}",
            agent.log()
        );
        // The push is in flight: not reported, and the cursor has not moved past it.
        assert_eq!(
            agent.cursor(),
            cursor_before,
            "round {round}: {}",
            agent.log()
        );
        assert_eq!(
            agent.log().matches(PUSHED).count(),
            pushes_before,
            "round {round}: a push was reported while the hook held it:\n{}",
            agent.log()
        );
        let log_before_kill = agent.log();
        agent.kill9();
        held.release();
        assert!(
            wait_until(WAIT, || held.done()),
            "round {round}: the {hook} hook never finished"
        );
        // Still nothing recorded by the dead agent; the remote has the push or not, per round.
        assert_eq!(agent.cursor(), cursor_before, "round {round}");
        let main_after_kill = s.remote_main();
        if round == 1 {
            assert_eq!(
                main_after_kill, main_before,
                "round 1: the refused push moved main:\n{log_before_kill}"
            );
            assert_eq!(s.remote_file("a.yaml"), deployment(A, "1.0.0"));
        } else {
            assert_ne!(
                main_after_kill, main_before,
                "round 2: the push did not land before post-receive:\n{log_before_kill}"
            );
            assert_eq!(s.remote_file("a.yaml"), deployment(A, &tag));
        }
        held.remove();
        agent.restart();
        s.wait_for_file("a.yaml", &deployment(A, &tag), &[&agent]);
        assert!(
            agent.wait_caught_up(&s.server, WAIT),
            "round {round}: the restarted agent never applied up to the head:\n{}",
            agent.log()
        );
        // Round 1: the refused push left nothing, so the restarted agent pushes the edit itself;
        // round 2: it finds the edit already there and pushes nothing.
        let pushes = agent.log().matches(PUSHED).count();
        assert_eq!(
            pushes,
            if round == 1 { 1 } else { 0 },
            "round {round}: the restarted agent's pushes:\n{}",
            agent.log()
        );
        let history = s.remote_log(&["a.yaml"]);
        assert_eq!(
            history.len(),
            round + 1,
            "round {round} ({hook}): {tag} must be applied exactly once: {history:?}\n{}",
            agent.log()
        );
        let fsck = run(git::git_command()
            .args(["fsck", "--strict", "--no-dangling"])
            .current_dir(s.bare()));
        assert!(fsck.is_ok(), "round {round}: git fsck: {fsck:?}");
    }
}

#[test]
fn sigterm_during_a_push_lets_the_push_finish_then_exits() {
    let mut s = Stack::new(&[
        ("a.yaml", deployment(A, "1.0.0")),
        (".pipe/watch.yaml", watcher(&[target(A, "a.yaml")])),
    ]);
    let mut agent = s.agent(&[]);
    let before = s.remote_main();
    let held = HeldHook::install(&s.bare(), s.tmp.path(), "pre-receive", "push", 0);
    s.release(A, "1.1.0");
    assert!(
        wait_until(WAIT, || held.reached()),
        "no push reached the hook:\n{}",
        agent.log()
    );
    agent.send_sigterm();
    assert!(
        agent.wait_for_log("stopping; a push in progress is finished first", 1, WAIT),
        "the agent did not say it is stopping:\n{}",
        agent.log()
    );
    // The push is still held by the hook: the agent must wait for it rather than exit.
    assert!(
        agent.wait_exit(Duration::ZERO).is_none(),
        "the agent exited with its push in flight:\n{}",
        agent.log()
    );
    assert_eq!(s.remote_main(), before);
    held.release();
    let status = agent
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("the agent did not exit after its push:\n{}", agent.log()));
    assert!(status.success(), "exit status {status}:\n{}", agent.log());
    // The push that was under way landed, once, before the agent exited: main moved to a
    // commit on top of the old one that holds the edit.
    let after = s.remote_main();
    assert_ne!(
        after,
        before,
        "the push in progress did not land:\n{}",
        agent.log()
    );
    let parent = git::git(&s.bare(), &["rev-parse", "main^"]).unwrap();
    assert_eq!(parent.trim(), before);
    assert_eq!(s.remote_file("a.yaml"), deployment(A, "1.1.0"));
    assert_eq!(s.remote_log(&["a.yaml"]).len(), 2);
    assert!(agent.log().contains("pushed"), "{}", agent.log());
}
