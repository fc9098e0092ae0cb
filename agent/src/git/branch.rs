//! Branch mode: for repositories that refuse pushes to the branch the agent reads (the *base*),
//! commits go to a push branch that a human (or a merge request) brings into the base.
//!
//! The base stays the truth: targets are read and edits planned on the base tip, because the
//! base is what runs. The push branch is only ever fast-forwarded, never forced: its new commit
//! has the base tip's tree with the edits, merged with what the push branch already carries
//! (earlier releases nobody merged yet), and the push-branch tip and the base tip as parents.
//! So the branch always contains the base's latest commits (a human commit on the base between
//! two releases is in it), and a merge request from it shows only ferry's edits.

use git2::{FileFavor, MergeOptions, Oid, Repository};

use super::error::GitError;
use super::Workspace;

/// Where the agent's commits go, and what the push tells the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSettings {
    /// The branch pushed to.
    pub to: PushTo,
    /// Git push options (`git push -o`), e.g. GitLab's `merge_request.create`. The server must
    /// advertise them (`receive.advertisePushOptions`); its hooks see `GIT_PUSH_OPTION_<n>`.
    pub options: Vec<String>,
}

/// The branch commits are pushed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PushTo {
    /// The base branch itself: commit on its tip and push it.
    #[default]
    Base,
    /// One push branch, kept up to date with the base at each release.
    Branch(String),
    /// A branch per release batch, named by each [`Change::branch`](super::Change::branch).
    PerChange,
}

impl PushTo {
    /// Whether commits go somewhere other than the base.
    pub fn is_branch_mode(&self) -> bool {
        !matches!(self, PushTo::Base)
    }
}

impl Workspace {
    /// Sets where commits go and the push options sent with each push.
    pub fn set_push(&mut self, push: PushSettings) {
        self.push = push;
    }

    /// Where commits go and the push options sent with each push.
    pub fn push_settings(&self) -> &PushSettings {
        &self.push
    }

    /// The tree for the push branch: `edited` (the base tip's tree with the edits) merged with
    /// what the push branch `tip` carries beyond the base, so that an earlier release still
    /// waiting on the branch is not undone by the next one. Where both touched a file, the
    /// edited base wins: it is the newer truth. A push branch the base already contains (or
    /// whose history the merge cannot reconcile) adds nothing, and `edited` is the tree.
    /// `repo` is the handle the commit is being built in (it holds `edited`).
    pub(super) fn push_branch_tree(
        &self,
        repo: &Repository,
        edited: Oid,
        base: Oid,
        tip: Oid,
    ) -> Result<Oid, GitError> {
        let local = |action| self.local_error(action);
        if tip == base || self.contains(base, tip)? {
            return Ok(edited);
        }
        let ancestor = match repo.merge_base(tip, base) {
            Ok(a) => a,
            // Unrelated histories: nothing on the push branch can be told from the base.
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(edited),
            Err(e) => return Err(local("finding the merge base")(e)),
        };
        let tree_of = |commit: Oid| {
            repo.find_commit(commit)
                .and_then(|c| c.tree())
                .map_err(local("reading a tree"))
        };
        let theirs = repo
            .find_tree(edited)
            .map_err(local("reading the edited tree"))?;
        let mut options = MergeOptions::new();
        options.file_favor(FileFavor::Theirs);
        let mut index = repo
            .merge_trees(&tree_of(ancestor)?, &tree_of(tip)?, &theirs, Some(&options))
            .map_err(local("merging the push branch"))?;
        if index.has_conflicts() {
            tracing::warn!(
                remote = %self.remote,
                "the push branch and the base changed the same paths in ways that do not merge; \
                 the push branch gets the base with the new edits"
            );
            return Ok(edited);
        }
        index
            .write_tree_to(repo)
            .map_err(local("writing the merged tree"))
    }

    /// The parents of a push-branch commit: the base tip alone when the push branch is missing
    /// or the base contains it (a fast-forward either way), the push-branch tip alone when it
    /// already contains the base, both otherwise (a merge, which makes the push a
    /// fast-forward of the push branch and brings the base's new commits into it).
    pub(super) fn push_branch_parents(
        &self,
        base: Oid,
        tip: Option<Oid>,
    ) -> Result<Vec<Oid>, GitError> {
        let Some(tip) = tip else {
            return Ok(vec![base]);
        };
        if tip == base || self.contains(base, tip)? {
            Ok(vec![base])
        } else if self.contains(tip, base)? {
            Ok(vec![tip])
        } else {
            Ok(vec![tip, base])
        }
    }

    /// Whether `commit` has `ancestor` in its history.
    fn contains(&self, commit: Oid, ancestor: Oid) -> Result<bool, GitError> {
        self.repo
            .graph_descendant_of(commit, ancestor)
            .map_err(self.local_error("walking the history"))
    }
}
