//! The git layer's error type. Every message names the remote, branch, directory, path or key
//! file it is about, and where the fix is on the operator's side, says what to do.

use std::fmt;
use std::path::PathBuf;

/// Boxed error returned by the edit callback of
/// [`Workspace::commit_and_push`](super::Workspace::commit_and_push).
pub type ApplyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the git layer failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The clone directory exists and is not empty, but holds no git repository; the agent will
    /// not clone over someone else's files.
    #[error(
        "{}: the directory exists, is not empty and is not a git clone; \
         give the agent an empty or missing directory",
        dir.display()
    )]
    NotAClone {
        /// The configured clone directory.
        dir: PathBuf,
    },

    /// A filesystem operation on the clone directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a phrase: "resolving the work tree".
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },

    /// The CA file for `https://` remotes cannot be read or holds no certificate.
    #[error(
        "CA file {}: {reason}; give a PEM file with the certificate of the CA that signs \
         the git server's certificate (caFile)",
        path.display()
    )]
    CaFile {
        /// The configured `caFile`.
        path: PathBuf,
        /// Why it is unusable: the read error, or that it holds no PEM certificate.
        reason: String,
    },

    /// The configured branch is not a valid git branch name.
    #[error("branch {branch:?} of {remote} is not a valid git branch name")]
    InvalidBranch {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
    },

    /// Branch mode was asked to push to the base branch, which it never does: the repository
    /// is in branch mode because the base refuses pushes.
    #[error(
        "refusing to push to {branch:?} of {remote}: it is the base branch, which branch mode \
         never pushes; give push.branch or push.branchTemplate a name other than the base"
    )]
    PushToBase {
        /// The remote URL, password redacted.
        remote: String,
        /// The base branch.
        branch: String,
    },

    /// `pushOptions` are configured but the server does not take push options; libgit2
    /// refuses before sending anything.
    #[error(
        "remote {remote} does not accept push options (pushOptions {options:?}): remove them \
         from the repository's push settings, or enable them on the server (for git itself: \
         `git config receive.advertisePushOptions true` in the served repository)"
    )]
    PushOptionsUnsupported {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured push options.
        options: Vec<String>,
    },

    /// A change named a branch where the push settings give it (or did not name one where
    /// they expect it to): a bug in the caller, not in the config.
    #[error(
        "the change for {remote} names push branch {named:?}, which the workspace's push \
         settings do not expect"
    )]
    PushBranchMismatch {
        /// The remote URL, password redacted.
        remote: String,
        /// The branch the change named, if any.
        named: Option<String>,
    },

    /// A local repository operation (init, index, tree, commit, reset, refs) failed.
    #[error("{action} in {}: {source}", dir.display())]
    Local {
        /// What was being done, as a phrase: "adding origin".
        action: &'static str,
        /// The clone directory.
        dir: PathBuf,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },

    /// Fetching the branch failed: network, authentication, or no repository at the URL.
    #[error("fetching branch {branch:?} from {remote}: {source}")]
    Fetch {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },

    /// libgit2 refused the `ssh://` server's host key: `known_hosts` has no key for `host`, or
    /// a different one. Nothing was sent to the server, not even the client's public key.
    #[error(
        "refusing {remote}: the SSH host key of {host} ({key}) is not in {} (no entry for \
         {host}, or a different key); if that is the server's key (ask its operator), add \
         the host's key to the file, e.g. the output of `ssh-keyscan`",
        known_hosts.display()
    )]
    HostKeyRejected {
        /// The remote URL, password redacted.
        remote: String,
        /// As known_hosts names it: `host`, or `[host]:port` off port 22.
        host: String,
        /// The key the server showed: `ssh-ed25519 SHA256:…`.
        key: String,
        /// The `known_hosts` file the key was checked against.
        known_hosts: PathBuf,
    },

    /// The TLS connection to an `https://` remote failed; most often its certificate is not
    /// trusted: signed by a CA that neither the system nor `caFile` holds, expired, or not
    /// naming the URL's host.
    #[error(
        "the TLS connection to {remote} failed: {source}; the server's certificate must name \
         the URL's host and be signed by a system CA or by the CA in caFile"
    )]
    Tls {
        /// The remote URL, password redacted.
        remote: String,
        /// What libgit2 reported about the failed handshake.
        #[source]
        source: git2::Error,
    },

    /// The fetch worked but the remote has no such branch.
    #[error(
        "remote {remote} has no branch {branch:?}: \
         create it there, or fix `branch` in the repository config"
    )]
    BranchMissing {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
    },

    /// Pushing failed for a reason other than a concurrent update (network, authentication…).
    #[error("pushing to branch {branch:?} of {remote}: {source}")]
    Push {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },

    /// The remote refused the update for a reason other than a concurrent update: a hook, a
    /// protected branch, a full disk. `reason` is the server's message.
    #[error("remote {remote} rejected the push to branch {branch:?}: {reason}")]
    PushRejected {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
        /// The server's message for the refused ref.
        reason: String,
    },

    /// Every attempt lost the race against other pushers to the branch.
    #[error(
        "gave up pushing to branch {branch:?} of {remote} after {attempts} attempts: \
         the branch kept moving under concurrent pushes"
    )]
    Contended {
        /// The remote URL, password redacted.
        remote: String,
        /// The configured branch name.
        branch: String,
        /// How many pushes were tried, each after syncing to the new tip.
        attempts: u32,
    },

    /// A path from a config file would leave the repository's own files: `..`, absolute, into
    /// `.git`, through a symlink or a submodule.
    #[error("refusing path {path:?}: {rule}")]
    Confinement {
        /// The path as written in the config.
        path: String,
        /// Which rule it broke.
        rule: ConfinementRule,
    },

    /// A path names nothing at the branch tip.
    #[error("{path:?} does not exist at commit {commit} of the branch; fix the path, or restore the file")]
    NotInTree {
        /// The path as written in the config.
        path: String,
        /// The commit read.
        commit: String,
    },

    /// A path names a directory where a file is needed.
    #[error("{path:?} is a directory at commit {commit} of the branch, not a file")]
    NotAFile {
        /// The path as written in the config.
        path: String,
        /// The commit read.
        commit: String,
    },

    /// An object of the tip's tree could not be read from the clone.
    #[error("reading {path:?} at commit {commit}: {source}")]
    TreeRead {
        /// The path being read.
        path: String,
        /// The commit read.
        commit: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },

    /// The edit callback failed; nothing was committed.
    #[error("editing the branch tip: {0}")]
    Apply(#[source] ApplyError),

    /// The signing key file could not be read.
    #[error("reading signing key {}: {source}", path.display())]
    KeyRead {
        /// The configured signing key file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },

    /// The signing key file is not a usable key: unknown format, passphrase-protected, a public
    /// key, no signing-capable key inside.
    #[error("signing key {}: {reason}", path.display())]
    KeyInvalid {
        /// The configured signing key file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },

    /// Producing a signature failed.
    #[error("signing a commit with {key}: {reason}")]
    Sign {
        /// The key, as [`SigningKey::describe`](super::SigningKey::describe) names it.
        key: String,
        /// Why signing failed.
        reason: String,
    },
}

/// `source` as a [`GitError::Tls`] when libgit2 says TLS failed (error class `Ssl`: an
/// untrusted or mismatched certificate, a failed handshake), else `otherwise(source)`.
pub(crate) fn unless_tls(
    remote: &str,
    source: git2::Error,
    otherwise: impl FnOnce(git2::Error) -> GitError,
) -> GitError {
    if source.class() == git2::ErrorClass::Ssl {
        return GitError::Tls {
            remote: remote.to_string(),
            source,
        };
    }
    otherwise(source)
}

/// The confinement rule a path broke ([`GitError::Confinement`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfinementRule {
    /// The path is empty (or only `.` components).
    Empty,
    /// The path is absolute.
    Absolute,
    /// The path has a `..` component.
    ParentDir,
    /// The path goes through the repository's `.git` directory.
    GitDir,
    /// The path is not UTF-8, so no tree entry can match it.
    NotUtf8,
    /// An entry on the path (named, repo-relative) is a symlink (mode 120000). The agent reads
    /// and edits only regular files of the tree, so a link is refused wherever it is and
    /// whatever it points at: the target must name the file itself.
    Symlink {
        /// The symlink, repo-relative.
        link: String,
    },
    /// An entry on the path (named, repo-relative) is a submodule: another repository, which
    /// the agent does not edit.
    Submodule {
        /// The submodule, repo-relative.
        link: String,
    },
}

impl fmt::Display for ConfinementRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfinementRule::Empty => f.write_str("the path is empty"),
            ConfinementRule::Absolute => f.write_str(
                "absolute paths are not allowed; write it relative to the repository root",
            ),
            ConfinementRule::ParentDir => f.write_str(
                "`..` components are not allowed; the path must stay inside the repository",
            ),
            ConfinementRule::GitDir => {
                f.write_str("paths inside the repository's .git directory are not allowed")
            }
            ConfinementRule::NotUtf8 => f.write_str("the path is not valid UTF-8"),
            ConfinementRule::Symlink { link } => write!(
                f,
                "{link:?} is a symlink in the repository; ferry edits only regular files, so \
                 write the path of the file the link points to"
            ),
            ConfinementRule::Submodule { link } => write!(
                f,
                "{link:?} is a submodule; ferry edits only files of this repository"
            ),
        }
    }
}
