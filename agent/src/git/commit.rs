//! Making the commit of one change without a work tree or an index: the edited blobs are
//! written, and the new tree is the base tip's tree with only the changed paths replaced
//! (`TreeUpdateBuilder`, which rewrites just the trees on those paths). So a commit costs what
//! it changes: one blob per edited file, one tree per directory on their paths, one commit.
//!
//! The new objects go to an in-memory object store (libgit2's mempack backend, on a second
//! handle of the clone opened for this commit) and then to the clone as one pack, rather than
//! as one loose file each: a release moving 200 targets writes a few hundred objects, and one
//! pack is one file written (and one directory entry) instead of hundreds.

use std::collections::BTreeMap;

use git2::build::TreeUpdateBuilder;
use git2::{ObjectType, Oid, Repository, Signature};

use super::error::{ConfinementRule, GitError};
use super::tree::{self, EntryKind, TreeFiles};
use super::{GitIdentity, SigningKey, Workspace};

/// Priority of the in-memory backend: above libgit2's loose (1) and pack (2) backends, so
/// every object written during the commit lands in memory.
const MEMPACK_PRIORITY: i32 = 1000;

/// Regular, non-executable file: the mode of a file the agent creates.
const BLOB_MODE: i32 = 0o100644;

impl Workspace {
    /// Commits `files` (path → new bytes, `None` to delete) on the base tip `base` for
    /// `branch`, moving the local `branch` to the commit. `None` when there is nothing to
    /// commit: the new tree equals the base's (the edits rewrote identical bytes) or, in
    /// branch mode, the push branch's tree already is the one we would commit.
    pub(super) fn commit(
        &self,
        base: Oid,
        branch: &str,
        files: &BTreeMap<String, Option<Vec<u8>>>,
        message: &str,
        identity: &GitIdentity,
        signing: Option<&SigningKey>,
    ) -> Result<Option<Oid>, GitError> {
        let local = |action| self.local_error(action);
        // A second handle whose object store writes to memory first; this one stays as it is
        // for fetches and pushes. Opening a clone reads a few small files.
        let scratch =
            Repository::open_bare(self.repo.path()).map_err(local("opening the clone"))?;
        let odb = scratch.odb().map_err(local("opening the object store"))?;
        let _mempack = odb
            .add_new_mempack_backend(MEMPACK_PRIORITY)
            .map_err(local("adding the in-memory object store"))?;

        let base_files = TreeFiles::at(&scratch, base).map_err(local("reading the base tree"))?;
        let edited = edited_tree(&scratch, &base_files, files)?;
        if edited == base_files.tree().id() {
            return Ok(None);
        }
        let (tree_id, parents) = if branch == self.branch {
            (edited, vec![base])
        } else {
            // Fetched after the edits, so a push branch that moved meanwhile is a lost race
            // at push time, answered like any other.
            let tip = self.fetch_branch(branch)?;
            let tree = match tip {
                Some(tip) => self.push_branch_tree(&scratch, edited, base, tip)?,
                None => edited,
            };
            if let Some(tip) = tip {
                let tip_tree = scratch
                    .find_commit(tip)
                    .map_err(local("reading the push branch tip"))?
                    .tree_id();
                if tip_tree == tree {
                    return Ok(None);
                }
            }
            (tree, self.push_branch_parents(base, tip)?)
        };
        let commit = write_commit(&scratch, tree_id, &parents, message, identity, signing)
            .map_err(|e| e.into_git(&self.dir))?;

        // The commit and what is new under it (only the trees and blobs that differ from the
        // parents' at the same path), as one pack in the clone. Not `Mempack::dump`: it packs
        // the commit's whole tree, every object of the repository.
        let mut pack = git2::Buf::new();
        let mut builder = scratch
            .packbuilder()
            .map_err(local("packing the new objects"))?;
        builder.set_threads(1);
        let old_trees = parents
            .iter()
            .map(|p| scratch.find_commit(*p).and_then(|c| c.tree()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(local("reading the parent trees"))?;
        builder
            .insert_object(commit, None)
            .map_err(local("packing the new objects"))?;
        let new_tree = scratch
            .find_tree(tree_id)
            .map_err(local("reading the new tree"))?;
        insert_changed(&scratch, &mut builder, &new_tree, &old_trees)
            .map_err(local("packing the new objects"))?;
        builder
            .write_buf(&mut pack)
            .map_err(local("packing the new objects"))?;
        drop(builder);
        let disk = self.repo.odb().map_err(local("opening the object store"))?;
        let mut writer = disk.packwriter().map_err(local("writing the pack"))?;
        std::io::Write::write_all(&mut writer, &pack).map_err(|source| GitError::Io {
            action: "writing the pack of the new objects",
            path: self.dir.clone(),
            source,
        })?;
        writer.commit().map_err(local("indexing the pack"))?;
        self.repo
            .reference(
                &format!("refs/heads/{branch}"),
                commit,
                true,
                "ferry: commit",
            )
            .map_err(local("moving the branch to the commit"))?;
        Ok(Some(commit))
    }
}

/// Adds `tree` and, recursively, every entry of it that differs from the entry at the same
/// path in all of `olds` (the parents' trees) to `builder`: the objects a commit adds. Equal
/// subtrees are not entered, so the walk follows the changed paths only.
fn insert_changed(
    repo: &Repository,
    builder: &mut git2::PackBuilder<'_>,
    tree: &git2::Tree<'_>,
    olds: &[git2::Tree<'_>],
) -> Result<(), git2::Error> {
    if olds.iter().any(|old| old.id() == tree.id()) {
        return Ok(());
    }
    builder.insert_object(tree.id(), None)?;
    for entry in tree.iter() {
        // Trees are sorted, so a lookup by name is a binary search.
        let olds_here: Vec<git2::TreeEntry<'_>> = match entry.name() {
            Ok(name) => olds.iter().filter_map(|old| old.get_name(name)).collect(),
            Err(_) => olds
                .iter()
                .filter_map(|old| old.iter().find(|e| e.name_bytes() == entry.name_bytes()))
                .collect(),
        };
        if olds_here.iter().any(|old| old.id() == entry.id()) {
            continue;
        }
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo.find_tree(entry.id())?;
                let old_subs = olds_here
                    .iter()
                    .filter(|e| e.kind() == Some(ObjectType::Tree))
                    .map(|e| repo.find_tree(e.id()))
                    .collect::<Result<Vec<_>, _>>()?;
                insert_changed(repo, builder, &sub, &old_subs)?;
            }
            Some(ObjectType::Blob) => builder.insert_object(entry.id(), None)?,
            // A submodule's commit is not an object of this repository.
            _ => {}
        }
    }
    Ok(())
}

/// The base tree with `files` written or removed, built in `repo` (whose object store takes
/// the new blobs and trees). Each path is confined on the base tree: no symlink or submodule
/// anywhere on it, and an existing entry must be a regular file, whose mode is kept.
fn edited_tree(
    repo: &Repository,
    base: &TreeFiles<'_>,
    files: &BTreeMap<String, Option<Vec<u8>>>,
) -> Result<Oid, GitError> {
    let local = |action: &'static str| {
        move |source| GitError::Local {
            action,
            dir: repo.path().to_path_buf(),
            source,
        }
    };
    let mut update = TreeUpdateBuilder::new();
    for (rel, content) in files {
        let clean = tree::components(rel)?.join("/");
        let existing = base.entry(rel)?;
        let mode = match existing {
            None => BLOB_MODE,
            Some((EntryKind::File, found)) => found.mode,
            Some((EntryKind::Symlink, _)) => {
                return Err(GitError::Confinement {
                    path: rel.clone(),
                    rule: ConfinementRule::Symlink { link: clean },
                })
            }
            Some((EntryKind::Submodule, _)) => {
                return Err(GitError::Confinement {
                    path: rel.clone(),
                    rule: ConfinementRule::Submodule { link: clean },
                })
            }
            Some((EntryKind::Dir, _)) => {
                return Err(GitError::NotAFile {
                    path: rel.clone(),
                    commit: base.commit().to_string(),
                })
            }
        };
        match content {
            Some(bytes) => {
                let blob = repo.blob(bytes).map_err(local("writing an edited file"))?;
                update.upsert(clean.as_str(), blob, file_mode(mode));
            }
            None if existing.is_some() => {
                update.remove(clean.as_str());
            }
            // Deleting what is not there changes nothing.
            None => {}
        }
    }
    update
        .create_updated(repo, base.tree())
        .map_err(local("building the new tree"))
}

fn file_mode(mode: i32) -> git2::FileMode {
    if mode == 0o100755 {
        git2::FileMode::BlobExecutable
    } else {
        git2::FileMode::Blob
    }
}

/// Why writing the commit object failed, before the clone directory is known.
enum CommitError {
    Local(&'static str, git2::Error),
    Git(GitError),
}

impl CommitError {
    fn into_git(self, dir: &std::path::Path) -> GitError {
        match self {
            CommitError::Local(action, source) => GitError::Local {
                action,
                dir: dir.to_path_buf(),
                source,
            },
            CommitError::Git(e) => e,
        }
    }
}

/// Writes the commit of `tree_id` on `parents` as `identity` (author and committer), signed
/// with `signing` if given; the branch is moved by the caller.
fn write_commit(
    repo: &Repository,
    tree_id: Oid,
    parents: &[Oid],
    message: &str,
    identity: &GitIdentity,
    signing: Option<&SigningKey>,
) -> Result<Oid, CommitError> {
    let local = |action| move |e| CommitError::Local(action, e);
    let tree = repo
        .find_tree(tree_id)
        .map_err(local("reading the new tree"))?;
    let parents = parents
        .iter()
        .map(|p| repo.find_commit(*p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(local("reading the parent commit"))?;
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let who = Signature::now(&identity.name, &identity.email)
        .map_err(local("making the commit identity"))?;
    let message = if message.ends_with('\n') {
        message.to_string()
    } else {
        format!("{message}\n")
    };
    let buffer = repo
        .commit_create_buffer(&who, &who, &message, &tree, &parents)
        .map_err(local("building the commit"))?;
    match signing {
        // commit_signed writes the object only.
        Some(key) => {
            let content = buffer.as_str().map_err(|_| {
                CommitError::Git(GitError::Sign {
                    key: key.describe(),
                    reason: "the commit is not valid UTF-8".into(),
                })
            })?;
            let signature = key.sign(content.as_bytes()).map_err(CommitError::Git)?;
            repo.commit_signed(content, &signature, Some("gpgsig"))
                .map_err(local("writing the signed commit"))
        }
        None => repo
            .odb()
            .and_then(|odb| odb.write(ObjectType::Commit, &buffer))
            .map_err(local("writing the commit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::testing::TestTree;

    fn files(edits: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<Vec<u8>>> {
        edits
            .iter()
            .map(|(p, c)| (p.to_string(), c.map(|c| c.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn only_the_trees_on_changed_paths_are_rewritten() {
        let t = TestTree::new(&[
            ("a/big/x.yaml", "x"),
            ("b/y.sh", "+xecho y"),
            ("b/z.yaml", "z"),
        ]);
        let base = t.files();
        let repo = t.repo();
        let new = edited_tree(
            repo,
            &base,
            &files(&[
                ("b/y.sh", Some("echo new")),
                ("./b/z.yaml", None),
                ("c/new.yaml", Some("n")),
                ("gone.yaml", None),
            ]),
        )
        .unwrap();
        let new = TreeFiles::at(repo, {
            let who = Signature::now("t", "t@example.com").unwrap();
            let tree = repo.find_tree(new).unwrap();
            repo.commit(None, &who, &who, "edit", &tree, &[]).unwrap()
        })
        .unwrap();
        // Untouched directories keep their tree ids: nothing under them was read or written.
        assert_eq!(new.entry("a").unwrap(), base.entry("a").unwrap());
        assert_ne!(new.entry("b").unwrap(), base.entry("b").unwrap());
        assert_eq!(new.read("b/y.sh").unwrap(), b"echo new");
        assert_eq!(
            new.file("b/y.sh").unwrap().mode,
            0o100755,
            "the mode is kept"
        );
        assert!(matches!(
            new.read("b/z.yaml"),
            Err(GitError::NotInTree { .. })
        ));
        assert_eq!(new.file("c/new.yaml").unwrap().mode, BLOB_MODE);
    }

    #[test]
    fn writing_through_a_symlink_entry_is_refused() {
        let t = TestTree::new(&[
            ("real/x.yaml", "x"),
            ("link", "->real"),
            ("l.yaml", "->real/x.yaml"),
        ]);
        let base = t.files();
        for (path, link) in [("link/x.yaml", "link"), ("l.yaml", "l.yaml")] {
            let err = edited_tree(t.repo(), &base, &files(&[(path, Some("y"))])).unwrap_err();
            match err {
                GitError::Confinement {
                    rule: ConfinementRule::Symlink { link: l },
                    ..
                } => assert_eq!(l, link),
                other => panic!("{path}: {other:?}"),
            }
        }
    }
}
