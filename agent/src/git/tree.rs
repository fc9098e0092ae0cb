//! Reading a commit's tree by path: the one way the agent reads files of the config repo
//! (ImageWatcher files, target files). The clone is bare, so there is no work tree to read;
//! each lookup walks only the trees on the path (a handful of objects), whatever the size of
//! the repository.
//!
//! Every path goes through the confinement rules (`confine`): lexical first, then the entries
//! on the way, where a symlink (mode 120000) or a submodule anywhere on the path is refused.

use git2::{ObjectType, Oid, Repository, Tree};

use super::confine;
use super::error::{ConfinementRule, GitError};

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (mode 100644 or 100755).
    File,
    /// A directory (a tree).
    Dir,
    /// A symbolic link (mode 120000): never followed, never edited.
    Symlink,
    /// A submodule (mode 160000), or anything else that is not part of this repository.
    Submodule,
}

impl EntryKind {
    fn of(mode: i32, kind: Option<ObjectType>) -> EntryKind {
        match (mode, kind) {
            (0o120000, _) => EntryKind::Symlink,
            (_, Some(ObjectType::Tree)) => EntryKind::Dir,
            (_, Some(ObjectType::Blob)) => EntryKind::File,
            _ => EntryKind::Submodule,
        }
    }
}

/// A file found in a tree: its blob id (equal ids mean equal bytes) and its git file mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    /// The blob.
    pub id: Oid,
    /// 0o100644 or 0o100755; an edit keeps it.
    pub mode: i32,
}

/// The files of one commit (the branch tip an apply or a load runs on), read by path.
pub struct TreeFiles<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    commit: Oid,
}

impl std::fmt::Debug for TreeFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeFiles")
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

impl<'r> TreeFiles<'r> {
    /// The tree of `commit` in `repo`.
    pub(crate) fn at(repo: &'r Repository, commit: Oid) -> Result<TreeFiles<'r>, git2::Error> {
        let tree = repo.find_commit(commit)?.tree()?;
        Ok(TreeFiles { repo, tree, commit })
    }

    /// The commit these files are from.
    pub fn commit(&self) -> Oid {
        self.commit
    }

    /// The id of the whole tree.
    pub fn root_id(&self) -> Oid {
        self.tree.id()
    }

    /// The tree itself (for building the next one from it).
    pub(crate) fn tree(&self) -> &Tree<'r> {
        &self.tree
    }

    /// What `rel` names, or `None` when nothing is there. The path must pass the confinement
    /// rules; a symlink or submodule before its last component is refused, and a file used as
    /// a directory means nothing is there.
    pub fn entry(&self, rel: &str) -> Result<Option<(EntryKind, FileEntry)>, GitError> {
        let parts = confine::lexical(rel).map_err(|rule| refuse(rel, rule))?;
        let mut tree = self.tree.clone();
        let mut walked = String::new();
        for (i, part) in parts.iter().enumerate() {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(part);
            let Some((kind, found)) = tree.get_name(part).map(|entry| {
                let found = FileEntry {
                    id: entry.id(),
                    mode: entry.filemode(),
                };
                (EntryKind::of(entry.filemode(), entry.kind()), found)
            }) else {
                return Ok(None);
            };
            if i + 1 == parts.len() {
                return Ok(Some((kind, found)));
            }
            match kind {
                EntryKind::Dir => {
                    tree = self
                        .repo
                        .find_tree(found.id)
                        .map_err(|source| self.read_error(rel, source))?;
                }
                EntryKind::File => return Ok(None),
                EntryKind::Symlink => {
                    return Err(refuse(rel, ConfinementRule::Symlink { link: walked }))
                }
                EntryKind::Submodule => {
                    return Err(refuse(rel, ConfinementRule::Submodule { link: walked }))
                }
            }
        }
        Ok(None)
    }

    /// The regular file at `rel`: its blob id and mode. A missing path, a directory, a symlink
    /// or a submodule is an error naming the path and the commit.
    pub fn file(&self, rel: &str) -> Result<FileEntry, GitError> {
        match self.entry(rel)? {
            Some((EntryKind::File, found)) => Ok(found),
            Some((EntryKind::Symlink, _)) => Err(refuse(
                rel,
                ConfinementRule::Symlink {
                    link: confine::lexical(rel)
                        .map(|p| p.join("/"))
                        .unwrap_or_default(),
                },
            )),
            Some((EntryKind::Submodule, _)) => Err(refuse(
                rel,
                ConfinementRule::Submodule {
                    link: rel.to_string(),
                },
            )),
            Some((EntryKind::Dir, _)) => Err(GitError::NotAFile {
                path: rel.to_string(),
                commit: self.commit.to_string(),
            }),
            None => Err(GitError::NotInTree {
                path: rel.to_string(),
                commit: self.commit.to_string(),
            }),
        }
    }

    /// The bytes of the regular file at `rel` (see [`TreeFiles::file`] for what is refused).
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, GitError> {
        let found = self.file(rel)?;
        let blob = self
            .repo
            .find_blob(found.id)
            .map_err(|source| self.read_error(rel, source))?;
        Ok(blob.content().to_vec())
    }

    /// The entries of directory `dir` (`""` is the root), sorted by name; empty when `dir` is
    /// missing or not a directory. Names that are not UTF-8 are left out: no config can name
    /// them.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, EntryKind)>, GitError> {
        let tree = if dir.is_empty() || dir == "." {
            self.tree.clone()
        } else {
            match self.entry(dir)? {
                Some((EntryKind::Dir, found)) => self
                    .repo
                    .find_tree(found.id)
                    .map_err(|source| self.read_error(dir, source))?,
                _ => return Ok(Vec::new()),
            }
        };
        let mut out: Vec<(String, EntryKind)> = tree
            .iter()
            .filter_map(|e| {
                let name = e.name().ok()?.to_string();
                Some((name, EntryKind::of(e.filemode(), e.kind())))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn read_error(&self, rel: &str, source: git2::Error) -> GitError {
        GitError::TreeRead {
            path: rel.to_string(),
            commit: self.commit.to_string(),
            source,
        }
    }
}

fn refuse(rel: &str, rule: ConfinementRule) -> GitError {
    GitError::Confinement {
        path: rel.to_string(),
        rule,
    }
}

/// Splits a confined path into its components (shared with the tree builder).
pub(crate) fn components(rel: &str) -> Result<Vec<String>, GitError> {
    confine::lexical(rel).map_err(|rule| refuse(rel, rule))
}

/// Test support: a real (bare) repository holding one commit with the given files, so the
/// readers of [`TreeFiles`] are tested against git trees, not a stand-in.
#[cfg(test)]
pub(crate) mod testing {
    use git2::{Oid, Repository};

    use super::TreeFiles;

    /// A bare repository with one commit.
    pub(crate) struct TestTree {
        _dir: tempfile::TempDir,
        repo: Repository,
        commit: Oid,
    }

    impl TestTree {
        /// `files`: repo-relative path → content; a content starting with `->` makes a symlink
        /// to the rest, one starting with `+x` an executable file holding the rest.
        pub(crate) fn new(files: &[(&str, &str)]) -> TestTree {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init_bare(dir.path()).unwrap();
            let empty = repo.treebuilder(None).unwrap().write().unwrap();
            let mut update = git2::build::TreeUpdateBuilder::new();
            for (path, content) in files {
                let (mode, bytes) = match (content.strip_prefix("->"), content.strip_prefix("+x")) {
                    (Some(link), _) => (git2::FileMode::Link, link.as_bytes()),
                    (_, Some(script)) => (git2::FileMode::BlobExecutable, script.as_bytes()),
                    _ => (git2::FileMode::Blob, content.as_bytes()),
                };
                let blob = repo.blob(bytes).unwrap();
                update.upsert(*path, blob, mode);
            }
            let tree_id = {
                let empty = repo.find_tree(empty).unwrap();
                update.create_updated(&repo, &empty).unwrap()
            };
            let commit = {
                let tree = repo.find_tree(tree_id).unwrap();
                let who = git2::Signature::now("t", "t@example.com").unwrap();
                repo.commit(Some("HEAD"), &who, &who, "files", &tree, &[])
                    .unwrap()
            };
            TestTree {
                _dir: dir,
                repo,
                commit,
            }
        }

        pub(crate) fn files(&self) -> TreeFiles<'_> {
            TreeFiles::at(&self.repo, self.commit).unwrap()
        }

        pub(crate) fn repo(&self) -> &Repository {
            &self.repo
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestTree;
    use super::*;

    fn rule(files: &TreeFiles<'_>, rel: &str) -> ConfinementRule {
        match files.read(rel) {
            Err(GitError::Confinement { path, rule }) => {
                assert_eq!(path, rel);
                rule
            }
            other => panic!("{rel:?}: expected a confinement error, got {other:?}"),
        }
    }

    #[test]
    fn reads_files_by_path_and_lists_directories() {
        let t = TestTree::new(&[
            ("apps/foo/deployment.yaml", "x: 1\n"),
            ("apps/bar.yaml", "y\n"),
            ("top.yaml", "t\n"),
        ]);
        let files = t.files();
        assert_eq!(files.read("apps/foo/deployment.yaml").unwrap(), b"x: 1\n");
        assert_eq!(
            files.read("./apps//foo/./deployment.yaml").unwrap(),
            b"x: 1\n"
        );
        assert_eq!(
            files.list("apps").unwrap(),
            [
                ("bar.yaml".to_string(), EntryKind::File),
                ("foo".to_string(), EntryKind::Dir)
            ]
        );
        assert!(files.list("missing").unwrap().is_empty());
        assert!(files.list("top.yaml").unwrap().is_empty());
        assert!(matches!(
            files.read("apps/missing.yaml"),
            Err(GitError::NotInTree { path, .. }) if path == "apps/missing.yaml"
        ));
        assert!(matches!(
            files.read("top.yaml/x"),
            Err(GitError::NotInTree { .. })
        ));
        assert!(matches!(files.read("apps"), Err(GitError::NotAFile { .. })));
    }

    #[test]
    fn lexical_rules_apply_to_tree_paths() {
        let t = TestTree::new(&[("a.yaml", "a")]);
        let files = t.files();
        assert_eq!(rule(&files, ""), ConfinementRule::Empty);
        assert_eq!(rule(&files, "/etc/passwd"), ConfinementRule::Absolute);
        assert_eq!(rule(&files, "a/../../x"), ConfinementRule::ParentDir);
        assert_eq!(rule(&files, ".git/config"), ConfinementRule::GitDir);
    }

    #[test]
    fn symlink_entries_anywhere_on_the_path_are_refused() {
        let t = TestTree::new(&[
            ("apps/foo/deployment.yaml", "x"),
            ("link", "->apps/foo"),
            ("apps/passwd.yaml", "->/etc/passwd"),
        ]);
        let files = t.files();
        let link = |l: &str| ConfinementRule::Symlink { link: l.into() };
        assert_eq!(rule(&files, "link/deployment.yaml"), link("link"));
        assert_eq!(rule(&files, "apps/passwd.yaml"), link("apps/passwd.yaml"));
        assert_eq!(rule(&files, "./apps/passwd.yaml"), link("apps/passwd.yaml"));
        assert_eq!(
            files.list("").unwrap()[1],
            ("link".to_string(), EntryKind::Symlink)
        );
    }
}
