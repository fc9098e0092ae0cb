//! Confinement of repo-relative paths taken from untrusted config files (docs/architecture.md
//! §4, docs/security.md): a target's `filePath` must name a file of the repository's tree,
//! outside `.git`.
//!
//! The lexical rules live here; the rules about what is on the path (no symlink, no submodule,
//! at any level) are checked as the tree is walked (`tree::TreeFiles::entry`), because the
//! clone is bare and the tree is the only truth. There is no file system to escape through:
//! nothing is ever written to disk by path.

use std::path::{Component, Path};

use super::error::ConfinementRule;

/// The components of `rel` without `.` components, or the lexical rule it breaks: no empty
/// path, no absolute path, no `..` (even one that would stay inside: simpler to explain, never
/// needed), nothing under `.git` (in any letter case), and only UTF-8 names.
pub(crate) fn lexical(rel: &str) -> Result<Vec<String>, ConfinementRule> {
    if rel.is_empty() {
        return Err(ConfinementRule::Empty);
    }
    let mut clean = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => {
                if part.eq_ignore_ascii_case(".git") {
                    return Err(ConfinementRule::GitDir);
                }
                let Some(part) = part.to_str() else {
                    return Err(ConfinementRule::NotUtf8);
                };
                clean.push(part.to_string());
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(ConfinementRule::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(ConfinementRule::Absolute),
        }
    }
    if clean.is_empty() {
        return Err(ConfinementRule::Empty);
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rel: &str) -> ConfinementRule {
        lexical(rel).expect_err(rel)
    }

    #[test]
    fn lexical_rules() {
        assert_eq!(rule(""), ConfinementRule::Empty);
        assert_eq!(rule("./."), ConfinementRule::Empty);
        assert_eq!(rule("/etc/passwd"), ConfinementRule::Absolute);
        assert_eq!(rule("../x"), ConfinementRule::ParentDir);
        assert_eq!(rule("a/../../x"), ConfinementRule::ParentDir);
        // Even a `..` that would stay inside is refused: simpler to explain, never needed.
        assert_eq!(rule("apps/../apps/x"), ConfinementRule::ParentDir);
        assert_eq!(rule(".git/config"), ConfinementRule::GitDir);
        assert_eq!(rule("sub/.GIT/hooks/x"), ConfinementRule::GitDir);
    }

    #[test]
    fn accepts_nested_and_new_paths() {
        for (rel, want) in [
            ("apps/foo/deployment.yaml", "apps/foo/deployment.yaml"),
            ("./apps/foo/new.yaml", "apps/foo/new.yaml"),
            ("apps//foo/./x.yaml", "apps/foo/x.yaml"),
            ("brand/new/dir/file.yaml", "brand/new/dir/file.yaml"),
        ] {
            assert_eq!(lexical(rel).unwrap().join("/"), want, "{rel}");
        }
    }
}
