//! Branch mode against a real `git daemon` whose `main` refuses pushes (a `pre-receive` hook):
//! the agent's commits land on a push branch, fast-forwarded (never forced), carrying the
//! base's latest commits, with push options delivered to the server's hooks.

mod common;

use std::path::PathBuf;

use common::{identity, pushed, set_file, FILE, V1, V2};
use ferry_agent::git::{
    Change, GitError, Oid, Outcome, PushSettings, PushTo, RemoteAuth, SigningKey, TreeFiles,
    Workspace,
};
use ferry_tests::git::{self as harness, git, GitDaemon};
use ferry_tests::ssh_signing::SshKey;

const V3: &str = "image: gcr.io/pipecd/foo:v3\n";
const BAR: &str = "apps/bar/deployment.yaml";
const BAR_V1: &str = "image: gcr.io/pipecd/bar:v1\n";
const BAR_V2: &str = "image: gcr.io/pipecd/bar:v2\n";
const PUSH_BRANCH: &str = "ferry/updates";

/// A remote whose `main` holds [`FILE`] = [`V1`], [`BAR`] = [`BAR_V1`] and a README, and
/// refuses pushes to `main`.
struct Remote {
    tmp: tempfile::TempDir,
    daemon: GitDaemon,
    url: String,
    /// Where the hook records push options.
    options_log: PathBuf,
    /// `main` as created.
    initial: String,
}

impl Remote {
    fn start() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = GitDaemon::start(tmp.path().join("srv"));
        let url = daemon
            .init_bare_repo_with_files("config", &[(FILE, V1), (BAR, BAR_V1), ("README", "hi\n")]);
        let options_log = daemon.protect_main("config");
        let mut remote = Remote {
            tmp,
            daemon,
            url,
            options_log,
            initial: String::new(),
        };
        remote.initial = remote.rev("refs/heads/main").expect("main exists");
        remote
    }

    fn bare(&self) -> PathBuf {
        self.daemon.repo_path("config")
    }

    /// A workspace on `main` pushing as `push` says.
    fn workspace(&self, push: PushSettings) -> Workspace {
        let mut ws = Workspace::open(
            &self.tmp.path().join("agent-clone"),
            &self.url,
            "main",
            RemoteAuth::default(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.daemon.log_tail(20)));
        ws.set_push(push);
        ws
    }

    /// The commit `rev` names on the remote, or `None` when it names nothing.
    fn rev(&self, rev: &str) -> Option<String> {
        git(&self.bare(), &["rev-parse", "--verify", "--quiet", rev])
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// `path` as commit `rev` holds it.
    fn file(&self, rev: &str, path: &str) -> String {
        git(&self.bare(), &["show", &format!("{rev}:{path}")]).unwrap()
    }

    /// The parents of `commit`.
    fn parents(&self, commit: &str) -> Vec<String> {
        let line = git(&self.bare(), &["log", "-1", "--format=%P", commit]).unwrap();
        line.split_whitespace().map(String::from).collect()
    }

    fn is_ancestor(&self, ancestor: &str, commit: &str) -> bool {
        git(
            &self.bare(),
            &["merge-base", "--is-ancestor", ancestor, commit],
        )
        .is_ok()
    }

    /// The push options each push carried, in push order.
    fn pushes(&self) -> Vec<Vec<String>> {
        let log = std::fs::read_to_string(&self.options_log).unwrap_or_default();
        let mut pushes: Vec<Vec<String>> = Vec::new();
        for line in log.lines() {
            if line == "push" {
                pushes.push(Vec::new());
            } else if let Some(last) = pushes.last_mut() {
                last.push(line.to_string());
            }
        }
        pushes
    }
}

fn to_branch(options: &[&str]) -> PushSettings {
    PushSettings {
        to: PushTo::Branch(PUSH_BRANCH.into()),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

/// An edit setting `rel` to `content` for the branch `branch`, as a `branchTemplate` batch.
fn for_branch(
    rel: &'static str,
    content: &'static str,
    branch: &'static str,
) -> impl FnMut(&TreeFiles<'_>) -> std::io::Result<Option<Change>> {
    let mut edit = set_file(rel, content);
    move |tip| {
        let files = edit(tip)?;
        Ok((!files.is_empty()).then(|| Change {
            files,
            message: format!("ferry: {branch}"),
            branch: Some(branch.to_string()),
        }))
    }
}

fn hex(oid: Oid) -> String {
    oid.to_string()
}

#[test]
fn the_update_lands_on_the_push_branch_and_main_is_untouched() {
    let remote = Remote::start();
    let mut ws = remote.workspace(to_branch(&[
        "merge_request.create",
        "merge_request.target=main",
    ]));

    let (commit, attempts) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_eq!(attempts, 1);
    let branch = format!("refs/heads/{PUSH_BRANCH}");
    assert_eq!(remote.rev(&branch), Some(hex(commit)));
    assert_eq!(remote.file(&hex(commit), FILE), V2);
    // A new push branch starts at the base tip: a merge request shows only the edit.
    assert_eq!(remote.parents(&hex(commit)), vec![remote.initial.clone()]);
    assert_eq!(remote.rev("refs/heads/main"), Some(remote.initial.clone()));
    assert_eq!(
        remote.pushes(),
        vec![vec![
            "merge_request.create".to_string(),
            "merge_request.target=main".to_string()
        ]],
        "the hook saw other push options"
    );

    // The same release again: the push branch already holds this tree, so nothing is pushed.
    let again = ws
        .commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
        .unwrap();
    assert_eq!(again, Outcome::NoChange);
    assert_eq!(remote.rev(&branch), Some(hex(commit)));
    assert_eq!(remote.pushes().len(), 1, "a push with nothing to push");
}

#[test]
fn a_second_release_fast_forwards_the_push_branch_with_the_human_commit_on_main() {
    let remote = Remote::start();
    let ssh = SshKey::generate();
    let key = SigningKey::load(&ssh.private_key_path).unwrap();
    let mut ws = remote.workspace(to_branch(&[]));
    let (first, _) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    let human = harness::commit_file_to_main(
        &remote.bare(),
        "README",
        "edited by a human\n",
        "docs: README",
    )
    .unwrap();

    let (second, _) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v3", set_file(FILE, V3))
            .unwrap(),
    );
    let (first, second) = (hex(first), hex(second));
    // The merge commit is signed like any other.
    let verified = ssh.verify_commit(&remote.bare(), &second).unwrap();
    assert!(verified.contains("Good"), "{verified}");
    assert_eq!(
        remote.rev(&format!("refs/heads/{PUSH_BRANCH}")),
        Some(second.clone())
    );
    // Never forced: the first ferry commit is still in the branch's history.
    assert!(remote.is_ancestor(&first, &second));
    // The base's new commit is in it, content and all, and the push branch's tip and the
    // base tip are the parents.
    assert!(remote.is_ancestor(&human, &second));
    assert_eq!(remote.file(&second, "README"), "edited by a human\n");
    assert_eq!(remote.file(&second, FILE), V3);
    assert_eq!(remote.parents(&second), vec![first, human.clone()]);
    // A merge request from the branch shows only ferry's edit.
    let diff = git(&remote.bare(), &["diff", "--name-only", &human, &second]).unwrap();
    assert_eq!(diff.trim(), FILE);
    assert_eq!(remote.rev("refs/heads/main"), Some(human));
}

#[test]
fn a_release_waiting_on_the_push_branch_is_kept_by_the_next() {
    let remote = Remote::start();
    let mut ws = remote.workspace(to_branch(&[]));
    let (first, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    // The next release edits another file; it is planned on main, where foo is still v1.
    let (second, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy bar:v2", set_file(BAR, BAR_V2))
            .unwrap(),
    );
    let second = hex(second);
    assert_eq!(remote.parents(&second), vec![hex(first)]);
    assert_eq!(
        remote.file(&second, FILE),
        V2,
        "the first release was undone"
    );
    assert_eq!(remote.file(&second, BAR), BAR_V2);
    assert_eq!(remote.rev("refs/heads/main"), Some(remote.initial.clone()));
}

#[test]
fn branch_template_makes_one_branch_per_release_from_main() {
    let remote = Remote::start();
    let mut ws = remote.workspace(PushSettings {
        to: PushTo::PerChange,
        options: vec!["ci.skip".into()],
    });
    let (v2, _) = pushed(
        ws.commit_and_push_with(&identity(), None, for_branch(FILE, V2, "ferry/foo-v2"))
            .unwrap(),
    );
    let (v3, _) = pushed(
        ws.commit_and_push_with(&identity(), None, for_branch(FILE, V3, "ferry/foo-v3"))
            .unwrap(),
    );
    assert_eq!(remote.rev("refs/heads/ferry/foo-v2"), Some(hex(v2)));
    assert_eq!(remote.rev("refs/heads/ferry/foo-v3"), Some(hex(v3)));
    for (commit, content) in [(v2, V2), (v3, V3)] {
        assert_eq!(remote.parents(&hex(commit)), vec![remote.initial.clone()]);
        assert_eq!(remote.file(&hex(commit), FILE), content);
    }
    assert_eq!(remote.rev("refs/heads/main"), Some(remote.initial.clone()));
    assert_eq!(remote.pushes(), vec![vec!["ci.skip".to_string()]; 2]);

    // The release's branch exists with this content already: nothing to do.
    let again = ws
        .commit_and_push_with(&identity(), None, for_branch(FILE, V2, "ferry/foo-v2"))
        .unwrap();
    assert_eq!(again, Outcome::NoChange);
    assert_eq!(remote.rev("refs/heads/ferry/foo-v2"), Some(hex(v2)));
}

#[test]
fn branch_mode_never_pushes_the_base() {
    let remote = Remote::start();
    let mut ws = remote.workspace(PushSettings {
        to: PushTo::PerChange,
        options: vec![],
    });
    let err = ws
        .commit_and_push_with(&identity(), None, for_branch(FILE, V2, "main"))
        .unwrap_err();
    assert!(matches!(err, GitError::PushToBase { .. }), "{err:?}");
    assert!(err.to_string().contains("base branch"), "{err}");
    assert!(remote.pushes().is_empty(), "something was pushed");

    // Without branch mode the hook refuses main: that is why branch mode exists.
    let mut ws = remote.workspace(PushSettings::default());
    let err = ws
        .commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
        .unwrap_err();
    assert!(err.to_string().contains("hook declined"), "{err}");
    assert_eq!(remote.rev("refs/heads/main"), Some(remote.initial.clone()));
}

#[test]
fn a_race_lost_on_the_push_branch_is_replanned_not_forced() {
    // The push branch moves while the second push is received: the ref update fails, and
    // the agent syncs, plans and commits again on top of the other commit.
    let remote = Remote::start();
    let hook = remote.bare().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        r#"#!/bin/sh
while read -r old new ref; do
  if [ "$ref" = refs/heads/main ]; then echo "main is protected" >&2; exit 1; fi
  # Only an update of an existing branch, and only once.
  [ "$old" = 0000000000000000000000000000000000000000 ] && continue
  [ -e raced ] && continue
  touch raced
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  export GIT_AUTHOR_NAME=Racer GIT_AUTHOR_EMAIL=racer@ferry-tests.invalid
  export GIT_COMMITTER_NAME=Racer GIT_COMMITTER_EMAIL=racer@ferry-tests.invalid
  racer=$(echo racer | git commit-tree "$old^{tree}" -p "$old")
  git update-ref "$ref" "$racer" "$old"
  echo "$racer" > racer
done
"#,
    )
    .unwrap();
    let mut ws = remote.workspace(to_branch(&[]));
    let (first, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    let mut calls = 0;
    let mut edit = set_file(FILE, V3);
    let (second, attempts) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v3", |tip: &TreeFiles<'_>| {
            calls += 1;
            edit(tip)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", remote.daemon.log_tail(20))),
    );
    assert_eq!((attempts, calls), (2, 2));
    let racer = std::fs::read_to_string(remote.bare().join("racer")).unwrap();
    let (first, second) = (hex(first), hex(second));
    assert_eq!(remote.parents(&second), vec![racer.trim().to_string()]);
    assert!(remote.is_ancestor(&first, &second));
    assert_eq!(remote.file(&second, FILE), V3);
    assert_eq!(remote.rev("refs/heads/main"), Some(remote.initial.clone()));
}

#[test]
fn push_options_to_a_server_that_does_not_take_them_are_a_clear_error() {
    let remote = Remote::start();
    git(
        &remote.bare(),
        &["config", "receive.advertisePushOptions", "false"],
    )
    .unwrap();
    let mut ws = remote.workspace(to_branch(&["merge_request.create"]));
    let err = ws
        .commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
        .unwrap_err();
    assert!(
        matches!(err, GitError::PushOptionsUnsupported { .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("merge_request.create") && shown.contains("receive.advertisePushOptions"),
        "{shown}"
    );
    assert_eq!(remote.rev(&format!("refs/heads/{PUSH_BRANCH}")), None);
}
