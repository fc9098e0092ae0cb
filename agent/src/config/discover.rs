//! Finding the ImageWatcher files of a config repository.
//!
//! Without `includes`, every `*.yaml`/`*.yml` under `.pipe/` (recursively) whose `kind` is
//! `ImageWatcher`. `includes` and `excludes` are repo-relative paths; the file-name part may use
//! `*` (any run of characters but `/`). A literal include is taken whatever its kind (its parse
//! then says what is wrong); glob matches are filtered by kind like the default. An include that
//! matches nothing is an error: a typo there would otherwise silently watch nothing.
//!
//! A YAML file left out for its kind is reported back ([`SkippedFile`]) unless its kind is one
//! PipeCD keeps under `.pipe/` ([`PIPECD_KINDS`]): `kind: ImageWatch` or a missing `kind` is a
//! mistake the user should hear about, while `kind: KubernetesApp` is simply not ours.
//!
//! Files are read from the branch tip's tree ([`TreeFiles`]): only the directories the patterns
//! name are listed, so discovery costs what `.pipe/` (or the included directories) hold, not
//! the size of the repository. Symlink entries are never followed.

use std::fmt;

use serde::Deserialize;

use super::error::ConfigError;
use super::rules::{check_pattern, PIPECD_KINDS, WATCHER_KIND};
use crate::git::{EntryKind, TreeFiles};

/// Where ImageWatcher files live by default, relative to the repository root.
pub const DEFAULT_WATCHER_DIR: &str = ".pipe";

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

/// A YAML file that was looked at and left out because its `kind` is not ImageWatcher (and not
/// a kind PipeCD keeps beside ImageWatcher files).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkippedFile {
    /// Repo-relative path.
    pub path: String,
    /// The kind it declares; `None` when it has none.
    pub kind: Option<String>,
}

impl fmt::Display for SkippedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(kind) => write!(
                f,
                "{}: skipped: kind is {kind:?}, not {WATCHER_KIND}",
                self.path
            )?,
            None => write!(
                f,
                "{}: skipped: it has no kind, so it is not an {WATCHER_KIND} file",
                self.path
            )?,
        }
        write!(
            f,
            " (if it is meant to be one, write `kind: {WATCHER_KIND}`)"
        )
    }
}

/// What [`find_watcher_files`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatcherFiles {
    /// The ImageWatcher files, repo-relative, sorted, without duplicates.
    pub files: Vec<String>,
    /// The YAML files left out for a kind that looks like a mistake, sorted.
    pub skipped: Vec<SkippedFile>,
}

/// What the `kind` of a YAML file says about it.
enum FileKind {
    /// `kind: ImageWatcher`, or unreadable YAML that mentions it (so its parse error is reported
    /// rather than the file skipped).
    Watcher,
    /// A kind PipeCD keeps under `.pipe/`, or text that is neither YAML we can read nor about
    /// ImageWatcher: not ours, and nothing to warn about.
    NotOurs,
    /// Anything else, or no kind at all: skipped, and worth a warning.
    Other(Option<String>),
}

fn file_kind(tip: &TreeFiles<'_>, rel: &str) -> Result<FileKind, ConfigError> {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    let bytes = tip.read(rel).map_err(|source| ConfigError::Tree {
        file: rel.to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(match serde_saphyr::from_str::<Kind>(&text) {
        Ok(Kind { kind: Some(k) }) if k == WATCHER_KIND => FileKind::Watcher,
        Ok(Kind { kind: Some(k) }) if PIPECD_KINDS.contains(&k.as_str()) => FileKind::NotOurs,
        Ok(Kind { kind }) => FileKind::Other(kind),
        Err(_) if text.contains(WATCHER_KIND) => FileKind::Watcher,
        Err(_) => FileKind::NotOurs,
    })
}

/// Repo-relative paths found so far (sorted as strings at the end, as they are shown).
#[derive(Default)]
struct Found {
    files: Vec<String>,
    skipped: Vec<SkippedFile>,
}

/// Sorts `rel` into `found` or `skipped` by the kind of the file.
fn classify(tip: &TreeFiles<'_>, rel: String, found: &mut Found) -> Result<(), ConfigError> {
    match file_kind(tip, &rel)? {
        FileKind::Watcher => found.files.push(rel),
        FileKind::NotOurs => {}
        FileKind::Other(kind) => found.skipped.push(SkippedFile { path: rel, kind }),
    }
    Ok(())
}

/// The entries of directory `rel` of the tip, sorted by name.
fn list(tip: &TreeFiles<'_>, rel: &str) -> Result<Vec<(String, EntryKind)>, ConfigError> {
    tip.list(rel).map_err(|source| ConfigError::Tree {
        file: rel.to_string(),
        source,
    })
}

/// Collects ImageWatcher YAML files under directory `rel`. Symlinks are skipped: a link could
/// lead out of the repository or loop.
fn walk(tip: &TreeFiles<'_>, rel: &str, out: &mut Found) -> Result<(), ConfigError> {
    for (name, kind) in list(tip, rel)? {
        let child = format!("{rel}/{name}");
        match kind {
            EntryKind::Dir => walk(tip, &child, out)?,
            EntryKind::File if is_yaml(&name) => classify(tip, child, out)?,
            _ => {}
        }
    }
    Ok(())
}

/// The ImageWatcher files of the tree `tip`, repo-relative, sorted and without duplicates.
/// See the module documentation for the rules.
pub fn watcher_files(
    tip: &TreeFiles<'_>,
    includes: &[String],
    excludes: &[String],
) -> Result<Vec<String>, ConfigError> {
    find_watcher_files(tip, includes, excludes).map(|found| found.files)
}

/// Like [`watcher_files`], and also the files left out for a kind that looks like a mistake.
pub fn find_watcher_files(
    tip: &TreeFiles<'_>,
    includes: &[String],
    excludes: &[String],
) -> Result<WatcherFiles, ConfigError> {
    let repo = format!("the config repository at {}", tip.commit());
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

    let mut found = Found::default();
    if includes.is_empty() {
        walk(tip, DEFAULT_WATCHER_DIR, &mut found)?;
    }
    for (i, pattern) in includes.iter().enumerate() {
        let invalid =
            |message: String| ConfigError::invalid(&repo, format!("includes[{i}]"), None, message);
        let before = found.files.len();
        let is_glob = pattern.rsplit('/').next().is_some_and(|n| n.contains('*'));
        if is_glob {
            include_glob(tip, pattern, &mut found)?;
        } else {
            include_literal(tip, pattern, &mut found).map_err(invalid)?;
        }
        if found.files.len() == before {
            let what = if is_glob {
                "no ImageWatcher file"
            } else {
                "no file"
            };
            return Err(invalid(format!(
                "{pattern:?} matches {what} in the repository"
            )));
        }
    }
    let excluded = |path: &str| excludes.iter().any(|x| path_matches(x, path));
    found.files.retain(|path| !excluded(path));
    found.files.sort();
    found.files.dedup();
    found.skipped.retain(|s| !excluded(&s.path));
    found.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    found.skipped.dedup();
    Ok(WatcherFiles {
        files: found.files,
        skipped: found.skipped,
    })
}

/// The files of one directory that a `dir/name-*.yaml` include matches, filtered by kind.
fn include_glob(tip: &TreeFiles<'_>, pattern: &str, found: &mut Found) -> Result<(), ConfigError> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    for (file, kind) in list(tip, dir)? {
        if kind == EntryKind::File && glob_match(name, &file) {
            let rel = if dir.is_empty() {
                file
            } else {
                format!("{dir}/{file}")
            };
            classify(tip, rel, found)?;
        }
    }
    Ok(())
}

/// A literal include, taken whatever its kind; a missing file adds nothing (the caller says
/// so). The error is the message for the include's field.
fn include_literal(tip: &TreeFiles<'_>, pattern: &str, found: &mut Found) -> Result<(), String> {
    match tip.entry(pattern).map_err(|e| e.to_string())? {
        Some((EntryKind::File, _)) => found.files.push(pattern.to_string()),
        Some((EntryKind::Symlink, _)) => {
            return Err(format!(
                "{pattern:?} is a symlink; ferry reads only regular files of the repository, \
                 so include the file it points to"
            ))
        }
        Some(_) => return Err(format!("{pattern:?} is not a file")),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::testing::TestTree;

    const WATCHER: &str =
        "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets: []\n";
    const APP: &str = "apiVersion: pipecd.dev/v1beta1\nkind: KubernetesApp\nspec: {}\n";

    /// A real git tree with `files` (a content `->x` is a symlink to `x`).
    fn repo(files: &[(&str, &str)]) -> TestTree {
        TestTree::new(files)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
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
        let got = watcher_files(&dir.files(), &[], &[]).unwrap();
        assert_eq!(
            got,
            [
                ".pipe/broken.yaml",
                ".pipe/imagewatcher.yaml",
                ".pipe/prod/imagewatcher.yml"
            ]
        );
    }

    // Regression (issue 9): an ImageWatcher file with a misspelt kind was skipped silently, so
    // its targets never moved and nothing said why.
    #[test]
    fn a_wrong_kind_under_pipe_is_reported_naming_file_and_kind() {
        let dir = repo(&[
            (".pipe/imagewatcher.yaml", WATCHER),
            (
                ".pipe/typo.yaml",
                &WATCHER.replace("ImageWatcher", "ImageWatch"),
            ),
            (
                ".pipe/nokind.yaml",
                "apiVersion: pipecd.dev/v1beta1\nspec: {}\n",
            ),
            (".pipe/app.yaml", APP),
            (".pipe/analysis.yaml", "kind: AnalysisTemplate\nspec: {}\n"),
            (".pipe/excluded.yaml", "kind: Imagewatcher\n"),
        ]);
        let found =
            find_watcher_files(&dir.files(), &[], &strings(&[".pipe/excluded.yaml"])).unwrap();
        assert_eq!(found.files, [".pipe/imagewatcher.yaml"]);
        assert_eq!(
            found.skipped,
            [
                SkippedFile {
                    path: ".pipe/nokind.yaml".into(),
                    kind: None
                },
                SkippedFile {
                    path: ".pipe/typo.yaml".into(),
                    kind: Some("ImageWatch".into())
                },
            ]
        );
        let shown = found.skipped[1].to_string();
        assert!(
            shown.contains(".pipe/typo.yaml")
                && shown.contains("\"ImageWatch\"")
                && shown.contains("kind: ImageWatcher"),
            "{shown}"
        );
        assert!(found.skipped[0].to_string().contains("has no kind"));

        // A glob include filters by kind the same way, and says so.
        let found = find_watcher_files(&dir.files(), &strings(&[".pipe/*.yaml"]), &[]).unwrap();
        let skipped: Vec<&str> = found.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            skipped,
            [
                ".pipe/excluded.yaml",
                ".pipe/nokind.yaml",
                ".pipe/typo.yaml"
            ]
        );
    }

    #[test]
    fn no_pipe_directory_means_no_files() {
        let dir = repo(&[("a.yaml", WATCHER)]);
        assert!(watcher_files(&dir.files(), &[], &[]).unwrap().is_empty());
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
            &dir.files(),
            &strings(&[".pipe/imagewatcher-*.yaml", "./team/watch.yaml"]),
            &strings(&[".pipe/*-dev.yaml"]),
        )
        .unwrap();
        assert_eq!(got, [".pipe/imagewatcher-prod.yaml", "team/watch.yaml"]);

        // A literal include is taken whatever its kind, so its parse can say what is wrong.
        let got = watcher_files(
            &dir.files(),
            &strings(&[".pipe/imagewatcher-app.yaml"]),
            &[],
        )
        .unwrap();
        assert_eq!(got, [".pipe/imagewatcher-app.yaml"]);

        let got = watcher_files(
            &dir.files(),
            &[],
            &strings(&[".pipe/imagewatcher-prod.yaml"]),
        )
        .unwrap();
        assert_eq!(got, [".pipe/imagewatcher-dev.yaml"]);
    }

    #[test]
    fn include_that_matches_nothing_is_an_error() {
        let dir = repo(&[
            (".pipe/imagewatcher.yaml", WATCHER),
            (".pipe/app.yaml", APP),
        ]);
        let err = watcher_files(
            &dir.files(),
            &strings(&[".pipe/imagewatcher-prdo.yaml"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field(), "includes[0]");
        assert!(
            err.to_string()
                .contains("\".pipe/imagewatcher-prdo.yaml\" matches no file"),
            "{err}"
        );
        let err = watcher_files(
            &dir.files(),
            &strings(&[".pipe/imagewatcher.yaml", ".pipe/app*.yaml"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field(), "includes[1]");
        assert!(
            err.to_string().contains("matches no ImageWatcher file"),
            "{err}"
        );
        let err = watcher_files(&dir.files(), &strings(&[".pipe"]), &[]).unwrap_err();
        assert!(err.to_string().contains("is not a file"), "{err}");
    }

    #[test]
    fn include_outside_the_repository_is_refused() {
        let dir = repo(&[(".pipe/imagewatcher.yaml", WATCHER)]);
        for bad in ["../x.yaml", "/etc/passwd"] {
            let err = watcher_files(&dir.files(), &strings(&[bad]), &[]).unwrap_err();
            assert_eq!(err.field(), "includes[0]");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = watcher_files(&dir.files(), &[], &strings(&["../x.yaml"])).unwrap_err();
        assert_eq!(err.field(), "excludes[0]");
    }

    #[test]
    fn symlinks_do_not_lead_out_of_the_repository() {
        let dir = repo(&[
            (".pipe/imagewatcher.yaml", WATCHER),
            (".pipe/link.yaml", "->/tmp/outside/w.yaml"),
            (".pipe/linkdir", "->/tmp/outside"),
            (".pipe/inside.yaml", "->imagewatcher.yaml"),
        ]);
        let got = watcher_files(&dir.files(), &[], &[]).unwrap();
        assert_eq!(got, [".pipe/imagewatcher.yaml"]);
        let err = watcher_files(&dir.files(), &strings(&[".pipe/link.yaml"]), &[]).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
