//! Finding the ImageWatcher files of a config repository.
//!
//! Without `includes`, every `*.yaml`/`*.yml` under `.pipe/` (recursively) whose `kind` is
//! `ImageWatcher`. `includes` and `excludes` are repo-relative paths; the file-name part may use
//! `*` (any run of characters but `/`). A literal include is taken whatever its kind (its parse
//! then says what is wrong); glob matches are filtered by kind like the default. An include that
//! matches nothing is an error: a typo there would otherwise silently watch nothing.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;

/// Where ImageWatcher files live by default, relative to the repository root.
pub const DEFAULT_WATCHER_DIR: &str = ".pipe";

/// Checks a repo-relative include/exclude path and returns it normalised (`./` parts dropped).
/// The error text states the rule and the offending value.
pub(crate) fn check_pattern(pattern: &str) -> Result<String, String> {
    if pattern.trim().is_empty() {
        return Err("empty path: write a path relative to the repository root, such as .pipe/imagewatcher.yaml".into());
    }
    if pattern.starts_with('/') || pattern.contains('\\') || is_drive_path(pattern) {
        return Err(format!(
            "{pattern:?} is absolute: write a path relative to the repository root with / separators, such as .pipe/imagewatcher.yaml"
        ));
    }
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        match part {
            "." => {}
            "" => {
                return Err(format!(
                    "{pattern:?} has an empty path component (a doubled or trailing /)"
                ))
            }
            ".." => {
                return Err(format!(
                    "{pattern:?} leaves the repository: `..` is not allowed"
                ))
            }
            _ => parts.push(part),
        }
    }
    let Some((_, dirs)) = parts.split_last() else {
        return Err(format!("{pattern:?} names no file"));
    };
    if dirs.iter().any(|d| d.contains('*')) {
        return Err(format!(
            "{pattern:?}: `*` is only supported in the file-name part"
        ));
    }
    Ok(parts.join("/"))
}

/// `C:...`: absolute on Windows, never a sensible repo-relative path.
fn is_drive_path(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let mut pieces: Vec<&str> = rest.split('*').collect();
    let last = pieces.pop().unwrap_or("");
    for piece in pieces {
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

/// Whether the normalised repo-relative `path` matches the normalised `pattern`.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (pdir, pname) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    pdir == dir && glob_match(pname, name)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Whether the file declares `kind: ImageWatcher`. A file that is not readable YAML but mentions
/// ImageWatcher is taken too, so that its parse error is reported rather than the file skipped.
fn is_image_watcher(path: &Path) -> Result<bool, ConfigError> {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(match serde_saphyr::from_str::<Kind>(&text) {
        Ok(k) => k.kind.as_deref() == Some(super::watcher::WATCHER_KIND),
        Err(_) => text.contains(super::watcher::WATCHER_KIND),
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        file: dir.to_path_buf(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Collects ImageWatcher YAML files under `dir` (repo-relative `rel`). Symlinks are skipped: a
/// link could lead out of the repository or loop.
fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), ConfigError> {
    for entry in read_dir_sorted(&root.join(rel))? {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let file_type = entry.file_type().map_err(|source| ConfigError::Read {
            file: entry.path(),
            source,
        })?;
        let child = format!("{rel}/{name}");
        if file_type.is_dir() {
            walk(root, &child, out)?;
        } else if file_type.is_file() && is_yaml(&name) && is_image_watcher(&entry.path())? {
            out.push(child);
        }
    }
    Ok(())
}

/// The ImageWatcher files of the repository checked out at `repo_root`, as paths under
/// `repo_root`, sorted and without duplicates. See the module documentation for the rules.
pub fn watcher_files(
    repo_root: &Path,
    includes: &[String],
    excludes: &[String],
) -> Result<Vec<PathBuf>, ConfigError> {
    let repo = repo_root.display().to_string();
    let checked = |list: &[String], name: &str| -> Result<Vec<String>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, p)| {
                check_pattern(p)
                    .map_err(|m| ConfigError::invalid(&repo, format!("{name}[{i}]"), None, m))
            })
            .collect()
    };
    let includes = checked(includes, "includes")?;
    let excludes = checked(excludes, "excludes")?;

    let mut found = Vec::new();
    if includes.is_empty() {
        let dir = repo_root.join(DEFAULT_WATCHER_DIR);
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            walk(repo_root, DEFAULT_WATCHER_DIR, &mut found)?;
        }
    }
    for (i, pattern) in includes.iter().enumerate() {
        let field = format!("includes[{i}]");
        let before = found.len();
        let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern.as_str()));
        if name.contains('*') {
            let abs_dir = repo_root.join(dir);
            if fs::symlink_metadata(&abs_dir).is_ok_and(|m| m.is_dir()) {
                for entry in read_dir_sorted(&abs_dir)? {
                    let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                    if is_file && glob_match(name, &file) && is_image_watcher(&entry.path())? {
                        found.push(if dir.is_empty() {
                            file
                        } else {
                            format!("{dir}/{file}")
                        });
                    }
                }
            }
        } else {
            let abs = repo_root.join(pattern);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.is_file() => found.push(pattern.clone()),
                Ok(m) if m.file_type().is_symlink() => {
                    let inside = match (abs.canonicalize(), repo_root.canonicalize()) {
                        (Ok(target), Ok(root)) => target.starts_with(root) && target.is_file(),
                        _ => false,
                    };
                    if !inside {
                        return Err(ConfigError::invalid(
                            &repo,
                            field,
                            None,
                            format!("{pattern:?} is a symlink that does not lead to a file inside the repository"),
                        ));
                    }
                    found.push(pattern.clone());
                }
                Ok(_) => {
                    return Err(ConfigError::invalid(
                        &repo,
                        field,
                        None,
                        format!("{pattern:?} is not a file"),
                    ));
                }
                Err(_) => {}
            }
        }
        if found.len() == before {
            let what = if name.contains('*') {
                "no ImageWatcher file"
            } else {
                "no file"
            };
            return Err(ConfigError::invalid(
                &repo,
                field,
                None,
                format!("{pattern:?} matches {what} in the repository"),
            ));
        }
    }
    found.retain(|path| !excludes.iter().any(|x| path_matches(x, path)));
    found.sort();
    found.dedup();
    Ok(found.into_iter().map(|rel| repo_root.join(rel)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WATCHER: &str =
        "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets: []\n";
    const APP: &str = "apiVersion: pipecd.dev/v1beta1\nkind: KubernetesApp\nspec: {}\n";

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    fn rel(root: &Path, paths: Vec<PathBuf>) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace('\\', "/")
            })
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_must_stay_in_the_repository() {
        assert_eq!(check_pattern("./.pipe/a.yaml").unwrap(), ".pipe/a.yaml");
        assert_eq!(
            check_pattern(".pipe/*-prod.yaml").unwrap(),
            ".pipe/*-prod.yaml"
        );
        assert!(check_pattern("../other/.pipe/a.yaml")
            .unwrap_err()
            .contains("`..` is not allowed"));
        assert!(check_pattern(".pipe/../../a.yaml")
            .unwrap_err()
            .contains("leaves the repository"));
        assert!(check_pattern("/etc/passwd")
            .unwrap_err()
            .contains("is absolute"));
        assert!(check_pattern("C:\\x.yaml")
            .unwrap_err()
            .contains("is absolute"));
        assert!(check_pattern("").unwrap_err().contains("empty"));
        assert!(check_pattern(".pipe//a.yaml")
            .unwrap_err()
            .contains("empty path component"));
        assert!(check_pattern("*/a.yaml")
            .unwrap_err()
            .contains("only supported in the file-name part"));
        assert!(check_pattern(".").unwrap_err().contains("names no file"));
    }

    #[test]
    fn globs_match_the_file_name() {
        assert!(glob_match("*.yaml", "a.yaml"));
        assert!(glob_match("imagewatcher-*.yaml", "imagewatcher-prod.yaml"));
        assert!(!glob_match("imagewatcher-*.yaml", "imagewatcher-prod.yml"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("*", "x"));
        assert!(path_matches(".pipe/*-dev.yaml", ".pipe/w-dev.yaml"));
        assert!(!path_matches(".pipe/*-dev.yaml", ".pipe/sub/w-dev.yaml"));
    }

    #[test]
    fn default_is_every_image_watcher_under_pipe() {
        let dir = repo(&[
            (".pipe/imagewatcher.yaml", WATCHER),
            (".pipe/prod/imagewatcher.yml", WATCHER),
            (".pipe/app.yaml", APP),
            (".pipe/notes.txt", WATCHER),
            (".pipe/broken.yaml", "kind: ImageWatcher\nspec: [\n"),
            ("elsewhere/imagewatcher.yaml", WATCHER),
        ]);
        let got = rel(dir.path(), watcher_files(dir.path(), &[], &[]).unwrap());
        assert_eq!(
            got,
            [
                ".pipe/broken.yaml",
                ".pipe/imagewatcher.yaml",
                ".pipe/prod/imagewatcher.yml"
            ]
        );
    }

    #[test]
    fn no_pipe_directory_means_no_files() {
        let dir = repo(&[("a.yaml", WATCHER)]);
        assert!(watcher_files(dir.path(), &[], &[]).unwrap().is_empty());
    }

    #[test]
    fn includes_and_excludes() {
        let dir = repo(&[
            (".pipe/imagewatcher-prod.yaml", WATCHER),
            (".pipe/imagewatcher-dev.yaml", WATCHER),
            (".pipe/imagewatcher-app.yaml", APP),
            ("team/watch.yaml", WATCHER),
        ]);
        let got = watcher_files(
            dir.path(),
            &strings(&[".pipe/imagewatcher-*.yaml", "./team/watch.yaml"]),
            &strings(&[".pipe/*-dev.yaml"]),
        )
        .unwrap();
        assert_eq!(
            rel(dir.path(), got),
            [".pipe/imagewatcher-prod.yaml", "team/watch.yaml"]
        );

        // A literal include is taken whatever its kind, so its parse can say what is wrong.
        let got =
            watcher_files(dir.path(), &strings(&[".pipe/imagewatcher-app.yaml"]), &[]).unwrap();
        assert_eq!(rel(dir.path(), got), [".pipe/imagewatcher-app.yaml"]);

        let got =
            watcher_files(dir.path(), &[], &strings(&[".pipe/imagewatcher-prod.yaml"])).unwrap();
        assert_eq!(rel(dir.path(), got), [".pipe/imagewatcher-dev.yaml"]);
    }

    #[test]
    fn include_that_matches_nothing_is_an_error() {
        let dir = repo(&[
            (".pipe/imagewatcher.yaml", WATCHER),
            (".pipe/app.yaml", APP),
        ]);
        let err = watcher_files(dir.path(), &strings(&[".pipe/imagewatcher-prdo.yaml"]), &[])
            .unwrap_err();
        assert_eq!(err.field(), "includes[0]");
        assert!(
            err.to_string()
                .contains("\".pipe/imagewatcher-prdo.yaml\" matches no file"),
            "{err}"
        );
        let err = watcher_files(
            dir.path(),
            &strings(&[".pipe/imagewatcher.yaml", ".pipe/app*.yaml"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field(), "includes[1]");
        assert!(
            err.to_string().contains("matches no ImageWatcher file"),
            "{err}"
        );
        let err = watcher_files(dir.path(), &strings(&[".pipe"]), &[]).unwrap_err();
        assert!(err.to_string().contains("is not a file"), "{err}");
    }

    #[test]
    fn include_outside_the_repository_is_refused() {
        let dir = repo(&[(".pipe/imagewatcher.yaml", WATCHER)]);
        for bad in ["../x.yaml", "/etc/passwd"] {
            let err = watcher_files(dir.path(), &strings(&[bad]), &[]).unwrap_err();
            assert_eq!(err.field(), "includes[0]");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = watcher_files(dir.path(), &[], &strings(&["../x.yaml"])).unwrap_err();
        assert_eq!(err.field(), "excludes[0]");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_do_not_lead_out_of_the_repository() {
        let outside = repo(&[("w.yaml", WATCHER)]);
        let dir = repo(&[(".pipe/imagewatcher.yaml", WATCHER)]);
        std::os::unix::fs::symlink(
            outside.path().join("w.yaml"),
            dir.path().join(".pipe/link.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".pipe/linkdir")).unwrap();
        let got = watcher_files(dir.path(), &[], &[]).unwrap();
        assert_eq!(rel(dir.path(), got), [".pipe/imagewatcher.yaml"]);
        let err = watcher_files(dir.path(), &strings(&[".pipe/link.yaml"]), &[]).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
