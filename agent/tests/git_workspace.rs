//! The agent's git layer against real peers: a `git daemon` remote, the git CLI to inspect what
//! landed, and gpg / ssh-keygen to verify signatures (README, "Testing").

mod common;

use std::path::{Path, PathBuf};

use common::{identity, pushed, set_file, tip_file, FILE, V1, V2};
use ferry_agent::git::{
    ConfinementRule, Files, GitError, Oid, Outcome, RemoteAuth, SigningKey, TreeFiles, Workspace,
};
use ferry_tests::git::{self as harness, git, GitDaemon};
use ferry_tests::gpg::GpgKey;
use ferry_tests::ssh_signing::{SshKey, PRINCIPAL};

/// A remote served by `git daemon` holding one commit with [`FILE`] = [`V1`].
struct Remote {
    tmp: tempfile::TempDir,
    daemon: GitDaemon,
    url: String,
}

impl Remote {
    fn start() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = GitDaemon::start(tmp.path().join("srv"));
        let url = daemon.init_bare_repo_with_files("config", &[(FILE, V1), ("README", "hi\n")]);
        Remote { tmp, daemon, url }
    }

    fn workspace(&self) -> Workspace {
        Workspace::open(&self.clone_dir(), &self.url, "main", RemoteAuth::default())
            .unwrap_or_else(|e| panic!("{e}\n{}", self.daemon.log_tail(20)))
    }

    fn clone_dir(&self) -> PathBuf {
        self.tmp.path().join("agent-clone")
    }

    /// A fresh `git clone` of the remote, to look at what really landed.
    fn fresh_clone(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        harness::clone(&self.url, &dir.path().join("c")).unwrap();
        dir
    }
}

fn write_key(dir: &Path, text: &str) -> SigningKey {
    let path = dir.join("signing-key");
    std::fs::write(&path, text).unwrap();
    SigningKey::load(&path).unwrap()
}

/// Checks the remote's tip is `commit`, by the agent identity, with `message` and [`V2`].
fn assert_landed(checkout: &Path, commit: Oid, message: &str) {
    let log = harness::log(checkout).unwrap();
    assert_eq!(log[0], format!("{commit} {message}"), "{log:#?}");
    assert_eq!(
        harness::show(checkout, &format!("HEAD:{FILE}")).unwrap(),
        V2
    );
    let who = git(checkout, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]).unwrap();
    let agent = format!("Ferry Agent <{PRINCIPAL}>");
    assert_eq!(who.trim(), format!("{agent}|{agent}"));
}

#[test]
fn gpg_signed_commit_verifies_after_a_fresh_clone() {
    let remote = Remote::start();
    let gpg = GpgKey::generate("Ferry Agent", PRINCIPAL);
    let key = write_key(remote.tmp.path(), &gpg.armored_secret_key);
    let mut ws = remote.workspace();

    let outcome = ws
        .commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
        .unwrap();
    let (commit, attempts) = pushed(outcome);
    assert_eq!(attempts, 1);
    assert_eq!(ws.head().unwrap(), commit);
    assert_eq!(ws.head_message().unwrap(), "Deploy foo:v2\n");

    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    assert_eq!(harness::log(&checkout).unwrap().len(), 2);
    let verified = gpg.verify_commit(&checkout, "HEAD").unwrap();
    assert!(
        verified.contains(&format!(
            "Good signature from \"Ferry Agent <{PRINCIPAL}>\""
        )),
        "{verified}"
    );
}

#[test]
fn gpg_rsa_signing_subkey_is_preferred_and_verifies() {
    // An Ed25519 primary with a newer RSA signing subkey: gpg signs with the subkey, so must we.
    let remote = Remote::start();
    let gpg = GpgKey::generate("Ferry Agent", PRINCIPAL);
    // Loopback pinentry with an empty passphrase: batch gpg has no terminal to ask on.
    ferry_tests::process::run(gpg.gpg_command().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-add-key",
        &gpg.fingerprint,
        "rsa2048",
        "sign",
        "never",
    ]))
    .unwrap();
    let armored = ferry_tests::process::run(gpg.gpg_command().args([
        "--armor",
        "--export-secret-keys",
        &gpg.fingerprint,
    ]))
    .unwrap();
    let key = write_key(remote.tmp.path(), &armored);
    let mut ws = remote.workspace();

    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    let verified = gpg.verify_commit(&checkout, "HEAD").unwrap();
    assert!(verified.contains("Good signature"), "{verified}");
    // gpg names the key that made the signature: the subkey (the second `fpr` record).
    let listing = ferry_tests::process::run(gpg.gpg_command().args([
        "--with-colons",
        "--list-secret-keys",
        &gpg.fingerprint,
    ]))
    .unwrap();
    let subkey = listing
        .lines()
        .filter_map(|l| l.strip_prefix("fpr:"))
        .nth(1)
        .and_then(|l| l.split(':').nth(8))
        .unwrap_or_else(|| panic!("no subkey in\n{listing}"));
    assert_ne!(subkey, gpg.fingerprint);
    assert!(
        verified.contains(&format!("key {subkey}")),
        "not signed with the subkey {subkey}:\n{verified}"
    );
}

#[test]
fn ssh_signed_commit_verifies_after_a_fresh_clone() {
    let remote = Remote::start();
    let ssh = SshKey::generate();
    let key = SigningKey::load(&ssh.private_key_path).unwrap();
    let mut ws = remote.workspace();

    let (commit, attempts) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_eq!(attempts, 1);
    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    let verified = ssh.verify_commit(&checkout, "HEAD").unwrap();
    assert!(
        verified.contains(&format!("Good \"git\" signature for {PRINCIPAL}")),
        "{verified}"
    );
}

#[test]
fn lost_race_reapplies_on_the_new_tip_and_resigns() {
    let remote = Remote::start();
    let gpg = GpgKey::generate("Ferry Agent", PRINCIPAL);
    let key = write_key(remote.tmp.path(), &gpg.armored_secret_key);
    let mut ws = remote.workspace();

    // The human pushes after the agent's fetch and before its push: between the sync and the
    // push of the first attempt, from inside the edit.
    let mut calls = 0;
    let mut human = None;
    let mut edit = set_file(FILE, V2);
    let outcome = ws
        .commit_and_push(
            &identity(),
            Some(&key),
            "Deploy foo:v2",
            |tip: &TreeFiles<'_>| {
                calls += 1;
                if calls == 1 {
                    human = Some(
                        harness::commit_file_and_push(
                            &remote.url,
                            "README",
                            "edited\n",
                            "human edit",
                        )
                        .unwrap(),
                    );
                }
                edit(tip)
            },
        )
        .unwrap();
    let (commit, attempts) = pushed(outcome);
    assert_eq!((attempts, calls), (2, 2));
    let human = human.unwrap();

    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    let subjects: Vec<String> = harness::log(&checkout)
        .unwrap()
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    assert_eq!(subjects, ["Deploy foo:v2", "human edit", "initial commit"]);
    // Not forced: the human's commit is our parent, and its change survived.
    git(&checkout, &["merge-base", "--is-ancestor", &human, "HEAD"]).unwrap();
    assert_eq!(harness::show(&checkout, "HEAD:README").unwrap(), "edited\n");
    let verified = gpg.verify_commit(&checkout, "HEAD").unwrap();
    assert!(verified.contains("Good signature"), "{verified}");
}

#[test]
fn race_lost_on_the_server_is_retried() {
    // The branch moves after the server advertised it and before it updates the ref, so
    // libgit2's own fast-forward check passes and the rejection comes back as a ref status.
    let remote = Remote::start();
    let hook = remote.daemon.repo_path("config").join("hooks/pre-receive");
    std::fs::write(
        &hook,
        r#"#!/bin/sh
# First push only: another commit lands on main while this push is being received.
[ -e raced ] && exit 0
touch raced
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
tip=$(git rev-parse refs/heads/main)
export GIT_AUTHOR_NAME=Racer GIT_AUTHOR_EMAIL=racer@ferry-tests.invalid
export GIT_COMMITTER_NAME=Racer GIT_COMMITTER_EMAIL=racer@ferry-tests.invalid
racer=$(echo racer | git commit-tree "$tip^{tree}" -p "$tip")
git update-ref refs/heads/main "$racer" "$tip"
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ssh = SshKey::generate();
    let key = SigningKey::load(&ssh.private_key_path).unwrap();
    let mut ws = remote.workspace();

    let (commit, attempts) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
            .unwrap_or_else(|e| panic!("{e}\n{}", remote.daemon.log_tail(20))),
    );
    assert_eq!(attempts, 2);
    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    let subjects = git(&checkout, &["log", "--format=%s"]).unwrap();
    assert_eq!(subjects, "Deploy foo:v2\nracer\ninitial commit\n");
    assert!(ssh
        .verify_commit(&checkout, "HEAD")
        .unwrap()
        .contains("Good"));
}

#[test]
fn push_after_someone_else_pushed_keeps_both_commits() {
    let remote = Remote::start();
    let ssh = SshKey::generate();
    let key = SigningKey::load(&ssh.private_key_path).unwrap();
    let mut ws = remote.workspace();
    let human =
        harness::commit_file_and_push(&remote.url, "README", "edited\n", "human edit").unwrap();

    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), Some(&key), "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    git(&checkout, &["merge-base", "--is-ancestor", &human, "HEAD"]).unwrap();
    assert_eq!(harness::log(&checkout).unwrap().len(), 3);
    assert!(ssh
        .verify_commit(&checkout, "HEAD")
        .unwrap()
        .contains("Good"));
}

#[test]
fn refusal_by_a_hook_is_an_error_not_a_retry() {
    let remote = Remote::start();
    let hook = remote.daemon.repo_path("config").join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ws = remote.workspace();

    let mut calls = 0;
    let mut edit = set_file(FILE, V2);
    let err = ws
        .commit_and_push(&identity(), None, "Deploy foo:v2", |tip: &TreeFiles<'_>| {
            calls += 1;
            edit(tip)
        })
        .unwrap_err();
    assert_eq!(calls, 1, "a refusal must not be retried");
    assert!(matches!(err, GitError::PushRejected { .. }), "{err:?}");
    assert!(err.to_string().contains("hook declined"), "{err}");
    let fresh = remote.fresh_clone();
    assert_eq!(harness::log(&fresh.path().join("c")).unwrap().len(), 1);
}

#[test]
fn no_change_makes_no_commit() {
    let remote = Remote::start();
    let mut ws = remote.workspace();
    let before = ws.head().unwrap();

    let outcome = ws
        .commit_and_push(&identity(), None, "nothing", set_file(FILE, V1))
        .unwrap();
    assert_eq!(outcome, Outcome::NoChange);
    // An edit that names a file but rewrites the same bytes is no change either.
    let outcome = ws
        .commit_and_push(&identity(), None, "nothing", |_: &TreeFiles<'_>| {
            Ok::<_, std::io::Error>(Files::from([(FILE.to_string(), Some(V1.into()))]))
        })
        .unwrap();
    assert_eq!(outcome, Outcome::NoChange);
    assert_eq!(ws.head().unwrap(), before);

    let fresh = remote.fresh_clone();
    let log = harness::log(&fresh.path().join("c")).unwrap();
    assert_eq!(log, [format!("{before} initial commit")]);
}

#[test]
fn paths_are_confined_to_the_regular_files_of_the_tree() {
    let remote = Remote::start();
    harness::commit_change_and_push(&remote.url, "links", |work| {
        std::os::unix::fs::symlink("/tmp", work.join("apps/escape"))?;
        std::os::unix::fs::symlink("foo/deployment.yaml", work.join("apps/link.yaml"))
    })
    .unwrap();
    let mut ws = remote.workspace();
    let before = ws.head().unwrap();
    let tip = ws.files().unwrap();

    let refused = |rel: &str| match tip.read(rel) {
        Err(err @ GitError::Confinement { .. }) => {
            assert!(err.to_string().contains(&format!("{rel:?}")), "{err}");
            match err {
                GitError::Confinement { rule, .. } => rule,
                _ => unreachable!(),
            }
        }
        other => panic!("{rel:?}: expected a confinement error, got {other:?}"),
    };
    assert_eq!(refused("../x"), ConfinementRule::ParentDir);
    assert_eq!(refused("a/../../x"), ConfinementRule::ParentDir);
    assert_eq!(refused("/etc/passwd"), ConfinementRule::Absolute);
    assert_eq!(refused(".git/config"), ConfinementRule::GitDir);
    // A symlink entry (mode 120000) anywhere on the path, wherever it points.
    assert_eq!(
        refused("apps/escape/deployment.yaml"),
        ConfinementRule::Symlink {
            link: "apps/escape".into()
        }
    );
    assert_eq!(
        refused("apps/link.yaml"),
        ConfinementRule::Symlink {
            link: "apps/link.yaml".into()
        }
    );
    let err = tip.read("apps/escape/x.yaml").unwrap_err().to_string();
    assert!(
        err.contains("symlink") && err.contains("regular files"),
        "{err}"
    );
    assert_eq!(tip.read(FILE).unwrap(), V1.as_bytes());
    assert_eq!(tip.read("./README").unwrap(), b"hi\n");
    drop(tip);

    // Writing through a link is refused the same way, and nothing is committed.
    let err = ws
        .commit_and_push(&identity(), None, "through a link", |_: &TreeFiles<'_>| {
            Ok::<_, std::io::Error>(Files::from([(
                "apps/link.yaml".to_string(),
                Some(V2.into()),
            )]))
        })
        .unwrap_err();
    assert!(
        matches!(
            &err,
            GitError::Confinement {
                rule: ConfinementRule::Symlink { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(ws.head().unwrap(), before);
    let fresh = remote.fresh_clone();
    assert_eq!(harness::log(&fresh.path().join("c")).unwrap().len(), 2);
}

#[test]
fn file_url_remote_commits_unsigned_and_reopens() {
    let remote = Remote::start();
    let bare = remote.daemon.repo_path("config");
    let url = format!("file://{}", bare.display());
    let dir = remote.tmp.path().join("file-clone");
    let mut ws = Workspace::open(&dir, &url, "main", RemoteAuth::default()).unwrap();

    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", |_: &TreeFiles<'_>| {
            Ok::<_, std::io::Error>(Files::from([
                (FILE.to_string(), Some(V2.into())),
                ("README".to_string(), None),
            ]))
        })
        .unwrap(),
    );
    let fresh = remote.fresh_clone();
    let checkout = fresh.path().join("c");
    assert_landed(&checkout, commit, "Deploy foo:v2");
    assert!(
        !checkout.join("README").exists(),
        "the deletion was not committed"
    );
    let raw = git(&checkout, &["cat-file", "commit", "HEAD"]).unwrap();
    assert!(!raw.contains("gpgsig"), "{raw}");
    drop(ws);

    // Reopening the same directory fetches what others pushed meanwhile; a plain path works
    // as the remote too. The clone is bare: no work tree to check out or clean.
    let human = harness::commit_file_and_push(&remote.url, "README", "back\n", "restore").unwrap();
    let ws = Workspace::open(&dir, &bare.to_string_lossy(), "main", RemoteAuth::default()).unwrap();
    assert_eq!(ws.head().unwrap().to_string(), human);
    assert_eq!(tip_file(&ws, "README"), "back\n");
    assert!(!dir.join("README").exists() && !dir.join("index").exists());
}

// The clone became bare (issue 13): a work-tree clone an older agent left in the state
// directory is replaced by a bare one, and the agent carries on from the remote tip.
#[test]
fn a_work_tree_clone_from_an_older_agent_is_replaced_by_a_bare_one() {
    let remote = Remote::start();
    harness::clone(&remote.url, &remote.clone_dir()).unwrap();
    std::fs::write(remote.clone_dir().join("junk.txt"), "left over").unwrap();
    let mut ws = remote.workspace();
    assert!(!remote.clone_dir().join(".git").exists());
    assert!(!remote.clone_dir().join("junk.txt").exists());
    assert_eq!(tip_file(&ws, FILE), V1);
    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_landed(
        &remote.fresh_clone().path().join("c"),
        commit,
        "Deploy foo:v2",
    );
}

#[test]
fn open_refuses_foreign_directories_and_missing_branches() {
    let remote = Remote::start();
    let busy = remote.tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("precious.txt"), "x").unwrap();
    let err = Workspace::open(&busy, &remote.url, "main", RemoteAuth::default()).unwrap_err();
    assert!(matches!(err, GitError::NotAClone { .. }), "{err:?}");
    assert!(busy.join("precious.txt").exists());

    let dir = remote.tmp.path().join("nobranch");
    let err = Workspace::open(&dir, &remote.url, "release", RemoteAuth::default()).unwrap_err();
    assert!(matches!(err, GitError::BranchMissing { .. }), "{err:?}");
    assert!(err.to_string().contains(&remote.url), "{err}");
    assert!(err.to_string().contains("\"release\""), "{err}");

    let err = Workspace::open(&dir, &remote.url, "bad..name", RemoteAuth::default()).unwrap_err();
    assert!(matches!(err, GitError::InvalidBranch { .. }), "{err:?}");

    let err = Workspace::open(
        &remote.tmp.path().join("nowhere"),
        &remote.daemon.url("missing"),
        "main",
        RemoteAuth::default(),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
}

// Regression (issue 9, found by the agent-resilience test on a clean CI run): an agent killed
// with SIGKILL in the middle of a reset left `.git/index.lock` behind, and the restarted agent
// failed at once with "the index is locked", for good.
#[test]
fn locks_left_by_a_killed_agent_do_not_stop_the_next_one() {
    let remote = Remote::start();
    drop(remote.workspace());
    let git_dir = remote.clone_dir();
    std::fs::write(git_dir.join("index.lock"), "").unwrap();
    std::fs::write(git_dir.join("refs/heads/main.lock"), "").unwrap();
    let mut ws = remote.workspace();
    assert!(!git_dir.join("index.lock").exists());
    assert!(!git_dir.join("refs/heads/main.lock").exists());
    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_landed(
        &remote.fresh_clone().path().join("c"),
        commit,
        "Deploy foo:v2",
    );
}
