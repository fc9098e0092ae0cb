//! A real git server (`git daemon` on loopback, push enabled) and git CLI helpers.
//!
//! Every git command runs hermetically: no system or global config (`GIT_CONFIG_NOSYSTEM`,
//! `GIT_CONFIG_GLOBAL=/dev/null`), a fixed identity, no prompts. Default branch is `main`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::ports::free_port;
use crate::process::{require_tool, run, spawn_logged, ChildGuard};

/// Identity of commits made by these helpers (a "human" in the tests' stories).
pub const USER_NAME: &str = "Test Human";
/// Email of that identity.
pub const USER_EMAIL: &str = "human@ferry-tests.invalid";

/// `git` with the hermetic environment and identity; add `-c` options, then the subcommand.
pub fn git_command() -> Command {
    let mut cmd = Command::new(require_tool("git"));
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .args([
            "-c",
            &format!("user.name={USER_NAME}"),
            "-c",
            &format!("user.email={USER_EMAIL}"),
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ]);
    cmd
}

/// Runs `git ARGS…` in `dir`; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    run(git_command().current_dir(dir).args(args))
}

/// A `git daemon` serving every repository under its base dir, push included; killed on drop.
pub struct GitDaemon {
    child: ChildGuard,
    port: u16,
    base: PathBuf,
    _logs: TempDir,
}

impl GitDaemon {
    /// Starts `git daemon` on a free 127.0.0.1 port serving `base_dir` (created if missing),
    /// and returns once the port accepts connections.
    pub fn start(base_dir: impl Into<PathBuf>) -> GitDaemon {
        let base = base_dir.into();
        std::fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
        let logs = tempfile::Builder::new()
            .prefix("ferry-git-daemon-")
            .tempdir()
            .expect("creating a temp dir");
        let port = free_port();
        let mut cmd = git_command();
        cmd.arg("daemon")
            .args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
            ])
            .arg(format!("--base-path={}", base.display()))
            .args(["--listen=127.0.0.1", &format!("--port={port}")])
            .arg(&base);
        let mut child = spawn_logged(cmd, "git-daemon", logs.path());
        child.wait_for_tcp(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        GitDaemon {
            child,
            port,
            base,
            _logs: logs,
        }
    }

    /// The 127.0.0.1 port `git daemon` listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory it serves; a repository `NAME` is `NAME.git` under it.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// `git://127.0.0.1:PORT/{repo}.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}.git", self.port)
    }

    /// Where the bare repository `repo` lives on disk: `BASE/{repo}.git`.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.base.join(format!("{repo}.git"))
    }

    /// Creates the bare repository `name` whose `main` has one commit ("initial commit")
    /// holding `files` (`(path, content)`, parent dirs created); returns its URL.
    pub fn init_bare_repo_with_files(&self, name: &str, files: &[(&str, &str)]) -> String {
        init_bare_repo_with_files(&self.repo_path(name), files);
        self.url(name)
    }

    /// Makes `main` of the repository `repo` a protected branch, as forges that forbid pushes
    /// to it do: a `pre-receive` hook refuses every update of `refs/heads/main`, and appends
    /// each push's options (`GIT_PUSH_OPTION_<n>`) to the returned file, one per line after a
    /// `push` line. Receive-pack is told to advertise push options, which clients need to
    /// send them.
    pub fn protect_main(&self, repo: &str) -> PathBuf {
        let bare = self.repo_path(repo);
        let hook = bare.join("hooks/pre-receive");
        std::fs::write(&hook, PROTECT_MAIN_HOOK)
            .unwrap_or_else(|e| panic!("writing {}: {e}", hook.display()));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("making {} executable: {e}", hook.display()));
        git(&bare, &["config", "receive.advertisePushOptions", "true"])
            .unwrap_or_else(|e| panic!("configuring {}: {e:#}", bare.display()));
        bare.join(PUSH_OPTIONS_LOG)
    }

    /// The daemon's log tail (connections, errors), for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }
}

/// Where [`PROTECT_MAIN_HOOK`] records push options, in the bare repository.
const PUSH_OPTIONS_LOG: &str = "push-options.log";

/// The `pre-receive` hook of [`GitDaemon::protect_main`]. Hooks of a bare repository run in
/// it, so the log path is relative.
const PROTECT_MAIN_HOOK: &str = r#"#!/bin/sh
{
  echo push
  i=0
  while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
    eval "echo \"\$GIT_PUSH_OPTION_$i\""
    i=$((i + 1))
  done
} >> push-options.log
while read -r old new ref; do
  if [ "$ref" = refs/heads/main ]; then
    echo "main is protected: push to a branch" >&2
    exit 1
  fi
done
"#;

/// Creates the bare repository `bare` whose `main` has one commit ("initial commit") holding
/// `files` (`(path, content)`, parent dirs created), for any server to serve.
pub fn init_bare_repo_with_files(bare: &Path, files: &[(&str, &str)]) {
    let work = tempfile::tempdir().expect("creating a temp dir");
    let setup = || -> Result<()> {
        run(git_command()
            .args(["init", "--bare", "--initial-branch=main"])
            .arg(bare))?;
        git(work.path(), &["init", "--initial-branch=main", "."])?;
        for (path, content) in files {
            write_file(work.path(), path, content)?;
        }
        git(work.path(), &["add", "-A"])?;
        git(
            work.path(),
            &["commit", "--allow-empty", "-m", "initial commit"],
        )?;
        git(work.path(), &["push", &bare.to_string_lossy(), "main"])?;
        Ok(())
    };
    setup().unwrap_or_else(|e| panic!("creating repository {}: {e:#}", bare.display()));
}

fn write_file(root: &Path, path: &str, content: &str) -> Result<()> {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&full, content).with_context(|| format!("writing {}", full.display()))
}

/// Commits `path` = `content` with `message` onto `main` of the bare repository `bare` as
/// [`USER_NAME`], bypassing its hooks (the commit is fetched into it, not pushed): a human
/// committing to a branch that refuses pushes, as forges let maintainers merge. Returns the
/// new commit's hash.
pub fn commit_file_to_main(
    bare: &Path,
    path: &str,
    content: &str,
    message: &str,
) -> Result<String> {
    let work = tempfile::tempdir()?;
    clone(&bare.to_string_lossy(), work.path())?;
    write_file(work.path(), path, content)?;
    git(work.path(), &["add", "-A"])?;
    git(work.path(), &["commit", "-m", message])?;
    let commit = git(work.path(), &["rev-parse", "HEAD"])?.trim().to_string();
    git(
        bare,
        &[
            "fetch",
            "--quiet",
            &work.path().to_string_lossy(),
            "HEAD:refs/heads/main",
        ],
    )?;
    Ok(commit)
}

/// `git clone URL DIR`.
pub fn clone(url: &str, dir: &Path) -> Result<()> {
    run(git_command().args(["clone", "--quiet", url]).arg(dir)).map(drop)
}

/// `git log` of HEAD in `dir`, newest first, one `"<full hash> <subject>"` per commit.
pub fn log(dir: &Path) -> Result<Vec<String>> {
    Ok(git(dir, &["log", "--format=%H %s"])?
        .lines()
        .map(String::from)
        .collect())
}

/// `git show REV` in `dir`; `REV` may be `HEAD:path/to/file` to read a file's content.
pub fn show(dir: &Path, rev: &str) -> Result<String> {
    git(dir, &["show", rev])
}

/// Clones `url`, writes `path` = `content`, commits with `message` as [`USER_NAME`] and
/// pushes to the checked-out branch, as a human racing the agent would. Returns the new
/// commit's hash.
pub fn commit_file_and_push(url: &str, path: &str, content: &str, message: &str) -> Result<String> {
    let work = tempfile::tempdir()?;
    clone(url, work.path())?;
    write_file(work.path(), path, content)?;
    git(work.path(), &["add", "-A"])?;
    git(work.path(), &["commit", "-m", message])?;
    git(work.path(), &["push", "--quiet", "origin", "HEAD"])?;
    Ok(git(work.path(), &["rev-parse", "HEAD"])?.trim().to_string())
}

/// Clones `url`, lets `change` edit the work tree (make a symlink, rename or delete files),
/// commits everything with `message` and pushes, as a human would. Returns the new commit.
pub fn commit_change_and_push(
    url: &str,
    message: &str,
    change: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<String> {
    let work = tempfile::tempdir()?;
    clone(url, work.path())?;
    change(work.path())?;
    git(work.path(), &["add", "-A"])?;
    git(work.path(), &["commit", "-m", message])?;
    git(work.path(), &["push", "--quiet", "origin", "HEAD"])?;
    Ok(git(work.path(), &["rev-parse", "HEAD"])?.trim().to_string())
}

/// A `hook` (pre-receive or post-receive) in the bare repository that holds a push until the
/// test lets it go, so the agent can be killed or stopped while its push is in flight.
pub struct HeldHook {
    path: PathBuf,
    /// Created by the hook once a push reached it.
    reached: PathBuf,
    /// Created by the test to let the hook go on.
    release: PathBuf,
    /// Created by the hook just before it exits.
    done: PathBuf,
}

impl HeldHook {
    /// Installs `hook`; once released it exits with `exit_code` (non-zero in `pre-receive`
    /// refuses the push: the refs do not move). It gives up waiting after 60 s, so a failed
    /// test does not leave it behind.
    /// `bare` is the repository, `dir` where the hook's marker files go.
    pub fn install(bare: &Path, dir: &Path, hook: &str, name: &str, exit_code: u8) -> HeldHook {
        use std::os::unix::fs::PermissionsExt;
        let h = HeldHook {
            path: bare.join("hooks").join(hook),
            reached: dir.join(format!("{name}-reached")),
            release: dir.join(format!("{name}-release")),
            done: dir.join(format!("{name}-done")),
        };
        std::fs::write(
            &h.path,
            format!(
                "#!/bin/sh\ncat >/dev/null\ntouch '{reached}'\ni=0\nwhile [ ! -e '{release}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\ntouch '{done}'\nexit {exit_code}\n",
                reached = h.reached.display(),
                release = h.release.display(),
                done = h.done.display(),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        h
    }

    /// Whether a push reached the hook.
    pub fn reached(&self) -> bool {
        self.reached.exists()
    }

    /// Lets the held push go on.
    pub fn release(&self) {
        std::fs::write(&self.release, "").unwrap();
    }

    /// Whether the hook has exited.
    pub fn done(&self) -> bool {
        self.done.exists()
    }

    /// Uninstalls the hook.
    pub fn remove(&self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}
