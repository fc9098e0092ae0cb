//! The agent's git layer: a bare clone of one branch of the config repo, the files of its tip
//! read by path, and the commit → sign → push loop that re-applies edits when it loses a race.
//!
//! - `auth`: credentials for the remote (SSH key file, URL user/token), the CA file that
//!   `https://` remotes may need, and URL redaction.
//! - `host_key`: the SSH host key a server showed, to explain libgit2 refusing it.
//! - `confine`: the lexical rules for repo-relative paths from untrusted config.
//! - `tree`: [`TreeFiles`], a commit's files read by path (symlinks and submodules refused).
//! - `commit`: the new tree (the tip's with only the changed paths replaced), the commit, its
//!   objects written as one pack.
//! - `signing`: OpenPGP (rPGP) and SSH (ssh-key) commit signatures.
//! - `push`: [`Workspace::commit_and_push`], the commit/push/retry loop.
//! - `branch`: branch mode ([`PushSettings`]): commits for a push branch, never the base.
//! - `error`: [`GitError`].
//!
//! Everything here blocks (libgit2 is synchronous): call it from `spawn_blocking`.
//!
//! The remote is the single source of truth. The clone is bare: no work tree and no index, so
//! a sync is a fetch and a ref update, and what a release costs follows what it changes, not
//! the size of the repository. A push that loses a race is never rebased (`Rebase::commit`
//! drops signatures) nor forced: the edits are planned again on the new tip, signed again,
//! pushed again.

mod auth;
mod branch;
mod commit;
mod confine;
mod error;
mod host_key;
mod push;
mod signing;
mod tree;

use std::path::{Path, PathBuf};

use git2::{AutotagOption, FetchOptions, Repository};

use host_key::SeenHostKey;

pub use auth::{HttpsCredentials, RemoteAuth};
pub use branch::{PushSettings, PushTo};
pub use error::{ApplyError, ConfinementRule, GitError};
/// Commit ids, as git2 spells them.
pub use git2::Oid;
pub use push::{Change, Files, Outcome};
pub use signing::SigningKey;
#[cfg(test)]
pub(crate) use tree::testing;
pub use tree::{EntryKind, FileEntry, TreeFiles};

/// Who the agent's commits are by (author and committer alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitIdentity {
    /// The name on commits (`spec.git.username` of the agent config).
    pub name: String,
    /// The email on commits (`spec.git.email`).
    pub email: String,
}

/// A bare clone of one branch of a remote, owned by the agent: every sync moves the local
/// branch to the remote tip, whatever it held.
pub struct Workspace {
    repo: Repository,
    /// The clone directory (a bare repository).
    dir: PathBuf,
    /// The remote URL as configured (may carry a token).
    url: String,
    /// The remote URL safe to print.
    remote: String,
    /// The base branch: read from, and pushed to unless `push` says otherwise.
    branch: String,
    auth: RemoteAuth,
    /// Where commits go (see [`Workspace::set_push`]).
    push: PushSettings,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.dir)
            .field("remote", &self.remote)
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Clones `remote` (https://, ssh://, git://, file:// or a local path) branch `branch` into
    /// `dir` as a bare repository, or opens and fetches it if `dir` already holds one; either
    /// way the local branch ends at the remote branch tip. `dir` must be missing, empty, or a
    /// clone made here (a work-tree clone made by an older agent is replaced by a bare one).
    pub fn open(
        dir: &Path,
        remote: &str,
        branch: &str,
        auth: RemoteAuth,
    ) -> Result<Workspace, GitError> {
        let shown = auth::redact(remote);
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(GitError::InvalidBranch {
                remote: shown,
                branch: branch.to_string(),
            });
        }
        if let Some(ca_file) = &auth.ca_file {
            auth::trust_ca_file(ca_file)?;
        }
        let local = |action: &'static str| {
            move |source| GitError::Local {
                action,
                dir: dir.to_path_buf(),
                source,
            }
        };
        let started = std::time::Instant::now();
        let repo = open_or_init(dir)?;
        // A clone with no branch yet is a first start: the sync below is the full fetch.
        let fresh = repo.is_empty().unwrap_or(false);
        // An "origin" is not needed (fetch and push name the URL) but makes the clone look
        // normal to a human debugging it; a changed URL in the config replaces the old one.
        match repo.find_remote("origin") {
            Ok(origin) if origin.url().ok() == Some(remote) => {}
            Ok(_) => repo
                .remote_set_url("origin", remote)
                .map_err(local("setting the origin URL"))?,
            Err(_) => drop(
                repo.remote("origin", remote)
                    .map_err(local("adding origin"))?,
            ),
        }
        let mut workspace = Workspace {
            repo,
            dir: dir.to_path_buf(),
            url: remote.to_string(),
            remote: shown,
            branch: branch.to_string(),
            auth,
            push: PushSettings::default(),
        };
        let tip = workspace.sync()?;
        tracing::info!(
            remote = %workspace.remote,
            branch,
            %tip,
            fresh,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "clone ready"
        );
        Ok(workspace)
    }

    /// Fetches the remote branch and moves the local branch (and HEAD) to its tip, discarding
    /// local commits. Returns the tip commit id. Nothing else is touched: there is no work tree.
    pub fn sync(&mut self) -> Result<Oid, GitError> {
        let tip = self.fetch()?;
        let local_ref = self.local_ref();
        let local = |action| self.local_error(action);
        self.repo
            .reference(&local_ref, tip, true, "ferry: sync to the remote tip")
            .map_err(local("moving the branch"))?;
        self.repo
            .set_head(&local_ref)
            .map_err(local("pointing HEAD at the branch"))?;
        Ok(tip)
    }

    /// The files of the commit HEAD points at (the tip of the last sync).
    pub fn files(&self) -> Result<TreeFiles<'_>, GitError> {
        let head = self.head()?;
        TreeFiles::at(&self.repo, head).map_err(self.local_error("reading the tip's tree"))
    }

    /// The clone directory (a bare repository).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The remote URL, with any password replaced by `***`.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// The branch this workspace tracks and reads from (the base, in branch mode).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Result<Oid, GitError> {
        self.repo
            .refname_to_id("HEAD")
            .map_err(self.local_error("reading HEAD"))
    }

    /// When commit `id` was made (its committer time), in ms since the epoch.
    pub fn commit_time_ms(&self, id: Oid) -> Result<i64, GitError> {
        let commit = self
            .repo
            .find_commit(id)
            .map_err(self.local_error("reading a commit"))?;
        Ok(commit.time().seconds() * 1000)
    }

    /// The full message of the commit HEAD points at.
    pub fn head_message(&self) -> Result<String, GitError> {
        let local = |action| self.local_error(action);
        let commit = self
            .repo
            .head()
            .and_then(|head| head.peel_to_commit())
            .map_err(local("reading HEAD"))?;
        Ok(String::from_utf8_lossy(commit.message_bytes()).into_owned())
    }

    /// Fetches the base branch; returns its tip as the remote advertised it.
    fn fetch(&self) -> Result<Oid, GitError> {
        self.fetch_branch(&self.branch)?
            .ok_or_else(|| GitError::BranchMissing {
                remote: self.remote.clone(),
                branch: self.branch.clone(),
            })
    }

    /// Fetches `branch` into `refs/remotes/origin/BRANCH`; returns its tip as the remote
    /// advertised it, or `None` when the remote has no such branch.
    pub(crate) fn fetch_branch(&self, branch: &str) -> Result<Option<Oid>, GitError> {
        let fetch_error = |source| {
            error::unless_tls(&self.remote, source, |source| GitError::Fetch {
                remote: self.remote.clone(),
                branch: branch.to_string(),
                source,
            })
        };
        let mut remote = self.repo.remote_anonymous(&self.url).map_err(fetch_error)?;
        let host_key = SeenHostKey::default();
        let mut callbacks = self.auth.callbacks(&self.url);
        host_key.watch(&mut callbacks);
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(AutotagOption::None);
        let remote_ref = format!("refs/heads/{branch}");
        let refspec = format!("+{remote_ref}:refs/remotes/origin/{branch}");
        remote
            .fetch(&[refspec], Some(&mut options), Some("ferry: fetch"))
            .map_err(|e| host_key.explain(&self.url, &self.remote, e, fetch_error))?;
        // The advertisement, not the tracking ref: a branch deleted on the remote leaves a stale
        // tracking ref behind, and pushing on top of it would quietly recreate the branch.
        let advertised = remote.list().map_err(fetch_error)?;
        Ok(advertised
            .iter()
            .find(|head| head.name() == remote_ref)
            .map(|head| head.oid()))
    }

    fn local_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    fn local_error(&self, action: &'static str) -> impl Fn(git2::Error) -> GitError + '_ {
        move |source| GitError::Local {
            action,
            dir: self.dir.clone(),
            source,
        }
    }
}

/// Removes the lock files (`HEAD.lock`, `packed-refs.lock`, `config.lock`, `refs/**/*.lock`,
/// and `index.lock` in a clone an older agent made) that a process killed in the middle of a
/// git operation leaves behind; libgit2 refuses to touch a ref while its lock exists, so an
/// agent restarted after a SIGKILL would otherwise fail on its first sync. Safe because the
/// clone belongs to this agent alone: it is opened once, at start, before anything of this
/// process can hold a lock in it.
fn remove_stale_locks(git_dir: &Path) -> Result<(), GitError> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&path, found),
                Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "lock") => {
                    found.push(path)
                }
                _ => {}
            }
        }
    }
    let mut stale: Vec<PathBuf> = ["index.lock", "HEAD.lock", "packed-refs.lock", "config.lock"]
        .iter()
        .map(|name| git_dir.join(name))
        .filter(|p| p.exists())
        .collect();
    walk(&git_dir.join("refs"), &mut stale);
    for lock in stale {
        tracing::warn!(lock = %lock.display(), "removing a lock file left by an agent that was stopped mid-operation");
        std::fs::remove_file(&lock).map_err(|source| GitError::Io {
            action: "removing a stale lock file",
            path: lock.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Opens the bare repository `dir`, or initialises one in a missing or empty `dir`.
///
/// A work-tree clone made by an agent before the clone became bare (`dir/.git`) is removed
/// and cloned again, bare: one full fetch on the first start after the upgrade, after which
/// the directory holds no work tree nobody reads. Opening it as it is would also work, but
/// would keep a stale checkout of the whole repository on disk for ever.
fn open_or_init(dir: &Path) -> Result<Repository, GitError> {
    let local = |action: &'static str| {
        move |source| GitError::Local {
            action,
            dir: dir.to_path_buf(),
            source,
        }
    };
    let io = |action: &'static str| {
        move |source| GitError::Io {
            action,
            path: dir.to_path_buf(),
            source,
        }
    };
    if dir.join(".git").is_dir() && Repository::open(dir).is_ok_and(|r| !r.is_bare()) {
        tracing::warn!(dir = %dir.display(), "replacing the work-tree clone an older agent made with a bare clone (fetched again once)");
        std::fs::remove_dir_all(dir).map_err(io("removing the old work-tree clone"))?;
    }
    if let Ok(repo) = Repository::open_bare(dir) {
        remove_stale_locks(repo.path())?;
        return Ok(repo);
    }
    std::fs::create_dir_all(dir).map_err(io("creating the clone directory"))?;
    let empty = std::fs::read_dir(dir)
        .map_err(io("listing the clone directory"))?
        .next()
        .is_none();
    if !empty {
        return Err(GitError::NotAClone {
            dir: dir.to_path_buf(),
        });
    }
    Repository::init_bare(dir).map_err(local("initialising the clone"))
}

#[cfg(test)]
mod tests {
    /// The agent moves workspaces into `spawn_blocking`.
    #[test]
    fn workspace_and_keys_are_send() {
        fn send<T: Send>() {}
        send::<super::Workspace>();
        send::<super::SigningKey>();
        send::<super::GitError>();
    }
}
