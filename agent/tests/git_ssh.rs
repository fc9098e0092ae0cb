//! The agent's git layer over a real `ssh://` remote: OpenSSH's sshd runs git on the server
//! side, the agent logs in with its key file (`sshKeyFile`), and libgit2 checks the server's
//! host key against `$HOME/.ssh/known_hosts` (README, "Testing").
//!
//! libgit2 reads `$HOME` once, when it initialises, so every test here shares one HOME, set
//! before the first git2 call, and only ever appends to its known_hosts (each server has its
//! own port, so their entries never collide).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{identity, pushed, set_file, tip_file, FILE, V1, V2};
use ferry_agent::git::{GitError, RemoteAuth, Workspace};
use ferry_tests::git::{self as harness, git};
use ferry_tests::ssh_signing::SshKey;
use ferry_tests::sshd::SshServer;

/// `$HOME/.ssh/known_hosts` of the HOME this test binary runs libgit2 with.
fn known_hosts() -> &'static Path {
    static KNOWN_HOSTS: OnceLock<PathBuf> = OnceLock::new();
    KNOWN_HOSTS.get_or_init(|| {
        // Under the target dir, not /tmp: a static is never dropped, so a TempDir would leak.
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("git_ssh-home");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        // Every test calls this before anything else, and OnceLock makes the others wait, so
        // no thread reads the environment meanwhile.
        std::env::set_var("HOME", &home);
        home.join(".ssh/known_hosts")
    })
}

/// An sshd serving one bare repository whose `main` holds [`FILE`] = [`V1`].
struct Remote {
    tmp: tempfile::TempDir,
    server: SshServer,
    bare: PathBuf,
}

impl Remote {
    fn start() -> Remote {
        known_hosts();
        let tmp = tempfile::tempdir().unwrap();
        let server = SshServer::start(&tmp.path().join("srv"));
        let bare = server.repo_path("config");
        harness::init_bare_repo_with_files(&bare, &[(FILE, V1)]);
        Remote { tmp, server, bare }
    }

    fn url(&self) -> String {
        self.server.url(&self.bare)
    }

    fn open(&self) -> Result<Workspace, GitError> {
        let auth = RemoteAuth {
            ssh_key_file: Some(self.server.client_key_path()),
            ..RemoteAuth::default()
        };
        Workspace::open(
            &self.tmp.path().join("agent-clone"),
            &self.url(),
            "main",
            auth,
        )
    }

    /// The bare repository's `main`, read by the git CLI on the server's disk.
    fn main_tip(&self) -> String {
        git(&self.bare, &["rev-parse", "refs/heads/main"])
            .unwrap()
            .trim()
            .to_string()
    }
}

#[test]
fn clones_fetches_and_pushes_over_ssh_with_the_key_file() {
    let remote = Remote::start();
    remote.server.trust_in(known_hosts());

    let mut ws = remote
        .open()
        .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20)));
    assert_eq!(ws.head().unwrap().to_string(), remote.main_tip());
    assert_eq!(tip_file(&ws, FILE), V1);
    let login = format!("Accepted publickey for {}", remote.server.user());
    assert!(
        remote.server.log().contains(&login),
        "{}",
        remote.server.log()
    );

    // A commit that reached the remote some other way arrives with the next fetch.
    let human = harness::commit_file_and_push(
        &remote.bare.to_string_lossy(),
        "README",
        "hi\n",
        "Add a README",
    )
    .unwrap();
    assert_eq!(ws.sync().unwrap().to_string(), human);

    let (commit, attempts) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20))),
    );
    assert_eq!(attempts, 1);
    assert_eq!(remote.main_tip(), commit.to_string());
    assert_eq!(
        git(&remote.bare, &["log", "--format=%s", "main"]).unwrap(),
        "Deploy foo:v2\nAdd a README\ninitial commit\n"
    );
    assert_eq!(
        harness::show(&remote.bare, &format!("main:{FILE}")).unwrap(),
        V2
    );
}

#[test]
fn unknown_or_changed_host_key_is_refused_before_logging_in() {
    let remote = Remote::start();
    let initial = remote.main_tip();
    let login = format!("Accepted publickey for {}", remote.server.user());
    let host = format!("[127.0.0.1]:{}", remote.server.port());
    let assert_refused = |case: &str| {
        let err = remote
            .open()
            .expect_err(&format!("{case}: the host key was accepted"));
        let message = err.to_string();
        match &err {
            GitError::HostKeyRejected {
                host: refused,
                key,
                known_hosts: file,
                ..
            } => {
                assert_eq!(refused, &host, "{case}");
                assert_eq!(
                    key,
                    &format!("ssh-ed25519 {}", remote.server.host_key_fingerprint()),
                    "{case}"
                );
                assert_eq!(file, known_hosts(), "{case}");
            }
            other => panic!("{case}: expected HostKeyRejected, got {other:?}"),
        }
        for part in [&host, remote.server.host_key_fingerprint(), &remote.url()] {
            assert!(
                message.contains(part),
                "{case}: {part:?} missing from {message}"
            );
        }
        assert!(
            message.contains(&known_hosts().display().to_string()),
            "{case}: {message}"
        );
        // Refused before authenticating: the client key was never even offered.
        assert!(!remote.server.log().contains(&login), "{case}");
        assert_eq!(remote.main_tip(), initial, "{case}: something was pushed");
    };

    assert_refused("no known_hosts entry");

    // The same host and port with another key: a changed (or spoofed) server.
    let impostor = SshKey::generate();
    let mut fields = impostor.public_key.split_whitespace();
    let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
    let line = format!("{host} {kind} {blob}\n");
    // Appended in one write, like `trust_in`: the other test may be appending too.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(known_hosts())
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .unwrap();
    assert_refused("a different key in known_hosts");

    // With the right key as well, the same workspace gets through: the refusals above were
    // about the host key and nothing else.
    remote.server.trust_in(known_hosts());
    let mut ws = remote
        .open()
        .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20)));
    pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_ne!(remote.main_tip(), initial);
    assert!(remote.server.log().contains(&login));
}
