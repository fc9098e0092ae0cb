//! The agent's git layer against a real `https://` remote: `git http-backend` behind lighttpd
//! with TLS from a CA the test makes, and HTTP Basic auth with `user:token` in the URL, as
//! GitHub and GitLab tokens are used. The git CLI checks, on the bare repository itself, what
//! landed (README, "Testing").

mod common;

use std::path::{Path, PathBuf};

use common::{identity, pushed, set_file, tip_file, FILE, V1, V2};
use ferry_agent::git::{GitError, HttpsCredentials, RemoteAuth, TreeFiles, Workspace};
use ferry_tests::git::git;
use ferry_tests::https_git::{HttpsGitServer, TOKEN, USER};
use ferry_tests::process::run;

/// An HTTPS server with one repository, "config", holding [`FILE`] = [`V1`].
struct Remote {
    tmp: tempfile::TempDir,
    server: HttpsGitServer,
    url: String,
}

impl Remote {
    fn start() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let server = HttpsGitServer::start(&tmp.path().join("srv"));
        let url = server.init_bare_repo_with_files("config", &[(FILE, V1)]);
        Remote { tmp, server, url }
    }

    fn trusting_its_ca(&self) -> RemoteAuth {
        RemoteAuth {
            ca_file: Some(self.server.ca_file()),
            ..RemoteAuth::default()
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `main` of the bare repository, newest first, as `"<hash> <subject>"`.
    fn log(&self) -> Vec<String> {
        let bare = self.server.repo_path("config");
        git(&bare, &["log", "--format=%H %s", "main"])
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn assert_unchanged(&self) {
        let log = self.log();
        assert_eq!(log.len(), 1, "something was pushed: {log:#?}");
        assert!(log[0].ends_with(" initial commit"), "{log:#?}");
    }
}

/// The error `open` must fail with.
fn open_error(result: Result<Workspace, GitError>) -> GitError {
    match result {
        Err(err) => err,
        Ok(ws) => panic!("expected an error, opened {ws:?}"),
    }
}

/// Asserts `err` is a TLS refusal that says what to fix.
fn assert_tls_refused(err: &GitError) {
    assert!(matches!(err, GitError::Tls { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("caFile"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
}

#[test]
fn clones_commits_and_pushes_over_https_with_a_token_and_a_private_ca() {
    let remote = Remote::start();
    let dir = remote.dir("agent-clone");
    let mut ws = Workspace::open(&dir, &remote.url, "main", remote.trusting_its_ca())
        .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20)));
    assert_eq!(tip_file(&ws, FILE), V1);
    assert!(!ws.remote().contains(TOKEN), "{}", ws.remote());

    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20))),
    );
    assert_eq!(remote.log()[0], format!("{commit} Deploy foo:v2"));
    let bare = remote.server.repo_path("config");
    assert_eq!(git(&bare, &["show", &format!("main:{FILE}")]).unwrap(), V2);
    drop(ws);

    // Someone pushes over HTTPS with the git CLI; reopening the clone fetches it.
    let human = tempfile::tempdir().unwrap();
    let work = human.path().join("c");
    let cli = |args: &[&str]| run(remote.server.git_command().current_dir(&work).args(args));
    run(remote
        .server
        .git_command()
        .args(["clone", "--quiet", &remote.url])
        .arg(&work))
    .unwrap();
    std::fs::write(work.join("README"), "hi\n").unwrap();
    cli(&["add", "README"]).unwrap();
    cli(&["commit", "--quiet", "-m", "human edit"]).unwrap();
    cli(&["push", "--quiet", "origin", "main"]).unwrap();
    let human_commit = cli(&["rev-parse", "HEAD"]).unwrap();

    let ws = Workspace::open(&dir, &remote.url, "main", remote.trusting_its_ca()).unwrap();
    assert_eq!(ws.head().unwrap().to_string(), human_commit.trim());
    assert_eq!(tip_file(&ws, "README"), "hi\n");
}

#[test]
fn wrong_token_is_refused_and_nothing_is_pushed() {
    let remote = Remote::start();
    let wrong = remote.server.url_with_password("config", "not-the-token");
    let err = open_error(Workspace::open(
        &remote.dir("wrong"),
        &wrong,
        "main",
        remote.trusting_its_ca(),
    ));
    match &err {
        GitError::Fetch { source, .. } => {
            assert_eq!(source.code(), git2::ErrorCode::Auth, "{err}")
        }
        other => panic!("expected a fetch error, got {other:?}"),
    }
    assert!(err.to_string().contains("check the key or token"), "{err}");
    assert!(!err.to_string().contains("not-the-token"), "{err}");

    // A token revoked after the clone: the next commit cannot even fetch, so nothing lands.
    let mut ws = Workspace::open(
        &remote.dir("revoked"),
        &remote.url,
        "main",
        remote.trusting_its_ca(),
    )
    .unwrap();
    remote.server.set_password("rotated");
    let mut applied = false;
    let mut set_v2 = set_file(FILE, V2);
    let err = ws
        .commit_and_push(&identity(), None, "Deploy foo:v2", |tip: &TreeFiles<'_>| {
            applied = true;
            set_v2(tip)
        })
        .unwrap_err();
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
    assert!(err.to_string().contains("check the key or token"), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert!(!applied, "edits ran without a fetch");
    remote.assert_unchanged();
}

// Issue 9: https credentials came only from inside the URL, which puts the token in the agent
// config and wherever the URL is shown. Now the token can live in a file of its own.
#[test]
fn pushes_over_https_with_the_token_in_a_file_and_none_in_the_url() {
    let remote = Remote::start();
    let token_file = remote.dir("git-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let auth = |password_file: &Path| RemoteAuth {
        https: Some(HttpsCredentials {
            username: USER.into(),
            password_file: password_file.to_path_buf(),
        }),
        ..remote.trusting_its_ca()
    };
    let url = remote.server.plain_url("config");
    let mut ws = Workspace::open(&remote.dir("clone"), &url, "main", auth(&token_file))
        .unwrap_or_else(|e| panic!("{e}\n{}", remote.server.log_tail(20)));
    let (commit, _) = pushed(
        ws.commit_and_push(&identity(), None, "Deploy foo:v2", set_file(FILE, V2))
            .unwrap(),
    );
    assert_eq!(remote.log()[0], format!("{commit} Deploy foo:v2"));

    // The file is read at each authentication: a rotated token works without a new workspace,
    // and a wrong one is refused without being shown.
    std::fs::write(&token_file, "not-the-token\n").unwrap();
    let err = open_error(Workspace::open(
        &remote.dir("wrong"),
        &url,
        "main",
        auth(&token_file),
    ));
    assert!(err.to_string().contains("check the key or token"), "{err}");
    assert!(!err.to_string().contains("not-the-token"), "{err}");
    let missing = remote.dir("no-such-file");
    let err = open_error(Workspace::open(
        &remote.dir("missing"),
        &url,
        "main",
        auth(&missing),
    ));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "the missing password file is not named: {err}"
    );
    assert_eq!(remote.log().len(), 2, "only the one commit landed");
}

#[test]
fn certificate_from_an_untrusted_ca_is_refused() {
    // libgit2 keeps one trust store per process and a CA once added stays: every server here
    // has a CA of its own, and this test adds only `other`'s.
    let remote = Remote::start();
    // No CA file: the system CAs do not know the test's CA.
    let err = open_error(Workspace::open(
        &remote.dir("no-ca"),
        &remote.url,
        "main",
        RemoteAuth::default(),
    ));
    assert_tls_refused(&err);
    assert!(err.to_string().contains("certificate"), "{err}");

    // Another server's CA is no better.
    let other = HttpsGitServer::start(&remote.dir("other-srv"));
    let auth = RemoteAuth {
        ca_file: Some(other.ca_file()),
        ..RemoteAuth::default()
    };
    let err = open_error(Workspace::open(
        &remote.dir("other-ca"),
        &remote.url,
        "main",
        auth,
    ));
    assert_tls_refused(&err);
    remote.assert_unchanged();
}

#[test]
fn certificate_for_another_host_is_refused_even_with_its_ca() {
    let remote = Remote::start();
    // The certificate names IP 127.0.0.1 only; "localhost" reaches the same server. libgit2
    // 1.9 reports this mismatch as "SSL error: received early EOF" (its host check fails
    // to find a common name), hence the hint in GitError::Tls.
    let localhost = remote.url.replace("@127.0.0.1:", "@localhost:");
    let err = open_error(Workspace::open(
        &remote.dir("localhost"),
        &localhost,
        "main",
        remote.trusting_its_ca(),
    ));
    assert_tls_refused(&err);
    // The same CA is trusted for the right name.
    Workspace::open(
        &remote.dir("by-ip"),
        &remote.url,
        "main",
        remote.trusting_its_ca(),
    )
    .unwrap();
}

#[test]
fn unusable_ca_file_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("ca.der");
    std::fs::write(&not_pem, [0x30, 0x82, 0x01, 0x0a]).unwrap();
    for ca_file in [tmp.path().join("missing.pem"), not_pem] {
        let auth = RemoteAuth {
            ca_file: Some(ca_file.clone()),
            ..RemoteAuth::default()
        };
        let err = Workspace::open(
            &tmp.path().join("clone"),
            "https://127.0.0.1:1/config.git",
            "main",
            auth,
        )
        .unwrap_err();
        assert!(matches!(err, GitError::CaFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&ca_file.display().to_string()),
            "{message}"
        );
        assert!(message.contains("PEM"), "{message}");
    }
    assert!(
        !tmp.path().join("clone").exists(),
        "a clone directory was made before the CA file was checked"
    );
}
