//! Confinement of repo-relative paths taken from untrusted config files (docs/architecture.md §4, docs/security.md): a target's
//! `filePath` must name something inside the work tree, and outside `.git`.

use std::path::{Component, Path, PathBuf};

use super::error::{ConfinementRule, GitError};

/// Resolves `rel` against `root` (which must be canonical) or says which rule it breaks.
///
/// Lexical rules first (no absolute path, no `..`, no `.git`), then every existing prefix is
/// checked for symlinks: one that resolves outside `root`, into `.git`, or nowhere is refused.
/// Components that do not exist yet are accepted, so a new file in a new directory is fine.
/// The returned path is `root` joined with the cleaned `rel` (`.` components dropped).
pub(crate) fn confine(root: &Path, rel: &str) -> Result<PathBuf, GitError> {
    let refuse = |rule| GitError::Confinement {
        path: rel.to_string(),
        rule,
    };
    let clean = lexical(rel).map_err(refuse)?;

    let git_dir = root.join(".git");
    let mut current = root.to_path_buf();
    let mut shown = PathBuf::new();
    for component in clean.components() {
        current.push(component);
        shown.push(component);
        // Anything but an existing entry ends the walk: what does not exist yet cannot be a
        // symlink, and a file used as a directory fails on write with its own clear error.
        let Ok(meta) = std::fs::symlink_metadata(&current) else {
            break;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let link = shown.to_string_lossy().into_owned();
        // canonicalize follows the whole chain, including links earlier in the prefix.
        match std::fs::canonicalize(&current) {
            Ok(target) if target.starts_with(&git_dir) => {
                return Err(refuse(ConfinementRule::GitDir))
            }
            Ok(target) if target.starts_with(root) => {}
            Ok(_) => return Err(refuse(ConfinementRule::SymlinkEscapes { link })),
            Err(_) => return Err(refuse(ConfinementRule::DanglingSymlink { link })),
        }
    }
    Ok(root.join(clean))
}

/// The lexical rules alone: `rel` without `.` components, or the rule it breaks.
fn lexical(rel: &str) -> Result<PathBuf, ConfinementRule> {
    if rel.is_empty() {
        return Err(ConfinementRule::Empty);
    }
    let mut clean = PathBuf::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => {
                if part.eq_ignore_ascii_case(".git") {
                    return Err(ConfinementRule::GitDir);
                }
                clean.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(ConfinementRule::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(ConfinementRule::Absolute),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(ConfinementRule::Empty);
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(root: &Path, rel: &str) -> ConfinementRule {
        match confine(root, rel) {
            Err(GitError::Confinement { path, rule }) => {
                assert_eq!(path, rel);
                rule
            }
            other => panic!("{rel:?}: expected a confinement error, got {other:?}"),
        }
    }

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("apps/foo")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("apps/foo/deployment.yaml"), "x").unwrap();
        (dir, root)
    }

    #[test]
    fn lexical_rules() {
        let (_dir, root) = tree();
        assert_eq!(rule(&root, ""), ConfinementRule::Empty);
        assert_eq!(rule(&root, "./."), ConfinementRule::Empty);
        assert_eq!(rule(&root, "/etc/passwd"), ConfinementRule::Absolute);
        assert_eq!(rule(&root, "../x"), ConfinementRule::ParentDir);
        assert_eq!(rule(&root, "a/../../x"), ConfinementRule::ParentDir);
        // Even a `..` that would stay inside is refused: simpler to explain, never needed.
        assert_eq!(rule(&root, "apps/../apps/x"), ConfinementRule::ParentDir);
        assert_eq!(rule(&root, ".git/config"), ConfinementRule::GitDir);
        assert_eq!(rule(&root, "sub/.GIT/hooks/x"), ConfinementRule::GitDir);
    }

    #[test]
    fn accepts_nested_and_new_paths() {
        let (_dir, root) = tree();
        for (rel, want) in [
            ("apps/foo/deployment.yaml", "apps/foo/deployment.yaml"),
            ("./apps/foo/new.yaml", "apps/foo/new.yaml"),
            ("apps//foo/./x.yaml", "apps/foo/x.yaml"),
            ("brand/new/dir/file.yaml", "brand/new/dir/file.yaml"),
        ] {
            assert_eq!(confine(&root, rel).unwrap(), root.join(want), "{rel}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_checked() {
        use std::os::unix::fs::symlink;
        let (_dir, root) = tree();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.join("escape")).unwrap();
        symlink("../../..", root.join("apps/foo/up")).unwrap();
        symlink("apps/foo", root.join("inside")).unwrap();
        symlink(".git", root.join("gitlink")).unwrap();
        symlink("missing/target", root.join("dangling")).unwrap();
        symlink("/etc/passwd", root.join("apps/passwd.yaml")).unwrap();

        let escapes = |link: &str| ConfinementRule::SymlinkEscapes { link: link.into() };
        assert_eq!(rule(&root, "escape/x.yaml"), escapes("escape"));
        assert_eq!(rule(&root, "apps/foo/up/x"), escapes("apps/foo/up"));
        assert_eq!(rule(&root, "apps/passwd.yaml"), escapes("apps/passwd.yaml"));
        assert_eq!(rule(&root, "gitlink/config"), ConfinementRule::GitDir);
        assert_eq!(
            rule(&root, "dangling"),
            ConfinementRule::DanglingSymlink {
                link: "dangling".into()
            }
        );
        // A link that stays inside is fine; the path is returned as written, not resolved.
        assert_eq!(
            confine(&root, "inside/deployment.yaml").unwrap(),
            root.join("inside/deployment.yaml")
        );
    }
}
