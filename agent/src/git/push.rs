//! The commit → sign → push loop. A push that loses a race (someone else moved the branch) is
//! answered by syncing to the new tip and running the edits again, never by rebasing or forcing.
//! In branch mode (see `branch`) the edits are still made on the base tip, and the commit goes
//! onto the push branch instead.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use git2::{ErrorCode, Oid, PushOptions};
use rand::Rng;

use super::error::{unless_tls, ApplyError, GitError};
use super::host_key::SeenHostKey;
use super::{GitIdentity, PushTo, SigningKey, TreeFiles, Workspace};

/// Repo-relative path → the file's new bytes, or `None` to delete it.
pub type Files = BTreeMap<String, Option<Vec<u8>>>;

/// What [`Workspace::commit_and_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The edits changed nothing: no commit, nothing pushed.
    NoChange,
    /// The edits were committed and pushed.
    Pushed {
        /// The new commit, now the remote branch tip.
        commit: Oid,
        /// How many pushes were tried: 1 when no other pusher raced us.
        attempts: u32,
    },
}

/// Attempts before giving up on a branch that keeps moving.
const MAX_ATTEMPTS: u32 = 8;
/// First wait after a lost race; doubles on each further loss (50 ms … 3.2 s, ~6 s in all).
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// What one push achieved.
enum Pushed {
    Yes,
    /// The branch moved on the remote since our fetch: sync and try again.
    LostRace,
}

/// What one run of an edit callback changed, and the commit message that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The files written (new bytes) or deleted (`None`), by repo-relative path.
    pub files: Files,
    /// The commit message for exactly these edits.
    pub message: String,
    /// The branch to push to, for [`PushTo::PerChange`] (one branch per release batch); must be
    /// `None` otherwise, where the workspace's [`PushSettings`](super::PushSettings) decide.
    pub branch: Option<String>,
}

impl Workspace {
    /// Syncs to the remote tip, lets `apply` plan edits on the tip's files, and if it changed
    /// anything, commits exactly the files it returns as `identity` (author and committer) with
    /// `message`,
    /// signed with `signing` if given, and pushes to the remote branch without forcing. In
    /// branch mode ([`PushTo::Branch`]) the edits are made on the base tip all the same and the
    /// commit goes to the push branch (see [`Workspace::set_push`]); the base is never pushed.
    ///
    /// `apply` gets the tip's files and returns the files to write or delete (empty: nothing
    /// changed). See [`Workspace::commit_and_push_with`] for the retry rules.
    pub fn commit_and_push<F, E>(
        &mut self,
        identity: &GitIdentity,
        signing: Option<&SigningKey>,
        message: &str,
        mut apply: F,
    ) -> Result<Outcome, GitError>
    where
        F: FnMut(&TreeFiles<'_>) -> Result<Files, E>,
        E: Into<ApplyError>,
    {
        self.commit_and_push_with(identity, signing, |tip| {
            let files = apply(tip)?;
            Ok::<_, E>((!files.is_empty()).then(|| Change {
                files,
                message: message.to_string(),
                branch: None,
            }))
        })
    }

    /// Like [`Workspace::commit_and_push`], but `apply` also writes the commit message, because
    /// what it changes (and so what the message should say) is only known on the tip it runs on.
    ///
    /// `apply` returns `None` when nothing changed. When the push loses a race, the clone is
    /// synced to the new tip and `apply` runs again on its files, so it must compute its edits
    /// from them, not replay stale bytes. Up to 8 attempts, with jittered exponential backoff from
    /// 50 ms. A race lost on a push branch is answered the same way: the base and the push
    /// branch are fetched again and the edits planned again on the base tip.
    ///
    /// With [`PushTo::PerChange`] every [`Change`] names its branch; a branch that exists with
    /// the tree we would commit already is [`Outcome::NoChange`].
    pub fn commit_and_push_with<F, E>(
        &mut self,
        identity: &GitIdentity,
        signing: Option<&SigningKey>,
        mut apply: F,
    ) -> Result<Outcome, GitError>
    where
        F: FnMut(&TreeFiles<'_>) -> Result<Option<Change>, E>,
        E: Into<ApplyError>,
    {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                // Jitter so agents that lost the same race do not retry in lockstep.
                let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
                std::thread::sleep(backoff + Duration::from_millis(jitter));
                backoff *= 2;
            }
            let base = self.sync()?;
            let tip = TreeFiles::at(&self.repo, base)
                .map_err(self.local_error("reading the tip's tree"))?;
            let Some(change) = apply(&tip).map_err(|e| GitError::Apply(e.into()))? else {
                return Ok(Outcome::NoChange);
            };
            drop(tip);
            if change.files.is_empty() {
                return Ok(Outcome::NoChange);
            }
            let branch = self.push_branch(&change)?;
            let committed = self.commit(
                base,
                &branch,
                &change.files,
                &change.message,
                identity,
                signing,
            )?;
            let Some(commit) = committed else {
                return Ok(Outcome::NoChange);
            };
            match self.push(&branch)? {
                Pushed::Yes => {
                    tracing::debug!(%commit, branch, attempts = attempt, "pushed");
                    return Ok(Outcome::Pushed {
                        commit,
                        attempts: attempt,
                    });
                }
                Pushed::LostRace => continue,
            }
        }
        Err(GitError::Contended {
            remote: self.remote.clone(),
            branch: self.branch_pushed_to(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The branch `change` is pushed to. Branch mode never pushes the base: a branch name equal
    /// to it (a template that renders to it) is refused rather than pushed to a branch the
    /// repository forbids pushes to.
    fn push_branch(&self, change: &Change) -> Result<String, GitError> {
        let branch = match (&self.push.to, &change.branch) {
            (PushTo::Base, None) => return Ok(self.branch.clone()),
            (PushTo::Branch(b), None) | (PushTo::PerChange, Some(b)) => b.clone(),
            (_, named) => {
                return Err(GitError::PushBranchMismatch {
                    remote: self.remote.clone(),
                    named: named.clone(),
                })
            }
        };
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(GitError::InvalidBranch {
                remote: self.remote.clone(),
                branch,
            });
        }
        if branch == self.branch {
            return Err(GitError::PushToBase {
                remote: self.remote.clone(),
                branch,
            });
        }
        Ok(branch)
    }

    /// For messages about a failed push: the configured push branch, or the base.
    fn branch_pushed_to(&self) -> String {
        match &self.push.to {
            PushTo::Branch(b) => b.clone(),
            PushTo::Base | PushTo::PerChange => self.branch.clone(),
        }
    }

    /// Pushes the branch (never forced) and tells a lost race from a real failure.
    ///
    /// libgit2 reports a lost race two ways: before sending, as `ErrorCode::NotFastForward`
    /// when the advertised tip is not an ancestor of ours (or not even present locally); after
    /// sending, as a per-ref status in `push_update_reference` (`Ok` from `push` itself) when
    /// the branch moved between the advertisement and the update.
    ///
    /// The push options of the workspace's [`PushSettings`](super::PushSettings) go with it.
    fn push(&self, branch: &str) -> Result<Pushed, GitError> {
        let push_error = |source| {
            unless_tls(&self.remote, source, |source| GitError::Push {
                remote: self.remote.clone(),
                branch: branch.to_string(),
                source,
            })
        };
        let rejection: RefCell<Option<String>> = RefCell::new(None);
        let local_ref = format!("refs/heads/{branch}");
        let mut remote = self.repo.remote_anonymous(&self.url).map_err(push_error)?;
        let host_key = SeenHostKey::default();
        let mut callbacks = self.auth.callbacks(&self.url);
        host_key.watch(&mut callbacks);
        callbacks.push_update_reference(|refname, status| {
            if let Some(status) = status {
                *rejection.borrow_mut() = Some(format!("{refname}: {status}"));
            }
            Ok(())
        });
        let push_options: Vec<&str> = self.push.options.iter().map(String::as_str).collect();
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        if !push_options.is_empty() {
            options.remote_push_options(&push_options);
        }
        // No leading '+': the remote must fast-forward or refuse.
        let refspec = format!("{local_ref}:{local_ref}");
        match remote.push(&[refspec], Some(&mut options)) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::NotFastForward => return Ok(Pushed::LostRace),
            // libgit2 checks the server's capabilities before sending (push.c).
            Err(e) if e.message().contains("push-options not supported") => {
                return Err(GitError::PushOptionsUnsupported {
                    remote: self.remote.clone(),
                    options: self.push.options.clone(),
                })
            }
            Err(e) => return Err(host_key.explain(&self.url, &self.remote, e, push_error)),
        }
        drop(options);
        match rejection.into_inner() {
            None => Ok(Pushed::Yes),
            Some(status) if lost_race(&status) => Ok(Pushed::LostRace),
            Some(reason) => Err(GitError::PushRejected {
                remote: self.remote.clone(),
                branch: branch.to_string(),
                reason,
            }),
        }
    }
}

/// Whether a receive-pack ref status means "the branch moved under you" rather than a refusal
/// that retrying cannot fix (a hook, a protected branch).
fn lost_race(status: &str) -> bool {
    const RACE: [&str; 6] = [
        "non-fast-forward",
        "fetch first",
        "failed to update ref",
        "failed to lock",
        "cannot lock ref",
        "stale info",
    ];
    let status = status.to_ascii_lowercase();
    RACE.iter().any(|s| status.contains(s))
}

#[cfg(test)]
mod tests {
    use super::lost_race;

    #[test]
    fn race_statuses_are_told_from_refusals() {
        assert!(lost_race("refs/heads/main: non-fast-forward"));
        assert!(lost_race("refs/heads/main: failed to update ref"));
        assert!(lost_race(
            "refs/heads/main: cannot lock ref 'refs/heads/main': is at 1 but expected 2"
        ));
        assert!(!lost_race("refs/heads/main: pre-receive hook declined"));
        assert!(!lost_race(
            "refs/heads/main: protected branch hook declined"
        ));
    }
}
