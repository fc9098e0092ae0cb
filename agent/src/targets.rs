//! Loading the watched targets: ImageWatcher files in the tree of a repository's branch tip,
//! validated, each with its compiled policy. A bad target is reported and skipped; the others
//! keep working.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::config::{self, AgentConfig, SkippedFile, TargetSpec, WatcherConfig};
use crate::git::TreeFiles;
use crate::policy::Policy;

/// One target ready to apply.
#[derive(Debug, Clone)]
pub struct Target {
    /// The repository it edits.
    pub repo_id: String,
    /// The ImageWatcher file that declared it (repo-relative), for messages.
    pub watcher_file: String,
    /// The validated spec.
    pub spec: TargetSpec,
    /// The tag policy (compiled once, when the file was validated; the default when it has
    /// none, and unused by a ring target).
    pub policy: Policy,
    /// `spec.commitMessage` of its file.
    pub commit_message: Option<String>,
}

impl Target {
    /// The stable key reports name it by: `repo_id#watcher_file#targets[i]`.
    pub fn key(&self) -> String {
        format!(
            "{}#{}#targets[{}]",
            self.repo_id, self.watcher_file, self.spec.index
        )
    }

    /// A short name for logs: `file.yaml#targets[2] (gcr.io/x/y)`.
    pub fn describe(&self) -> String {
        format!(
            "{}#targets[{}] ({} in {})",
            self.watcher_file, self.spec.index, self.spec.image, self.spec.file_path
        )
    }
}

/// The targets of one repository, the problems found, and a fingerprint of the files they came
/// from (to notice when ImageWatcher files change).
#[derive(Debug, Default, Clone)]
pub struct LoadedTargets {
    /// Usable targets.
    pub targets: Vec<Target>,
    /// One message per refused file or target.
    pub errors: Vec<String>,
    /// YAML files left out for a kind that looks like a mistake.
    pub skipped: Vec<SkippedFile>,
    /// Hash of the watcher files' names and blob ids (equal ids, equal contents).
    pub fingerprint: u64,
}

/// An id of everything [`load`] would read for `watcher` in `tip`: the tree ids of the
/// directories its patterns look in (`.pipe/` by default, else each include's directory).
/// Equal ids mean equal ImageWatcher files, so an idle resync compares this and reads nothing.
/// `None` when a directory cannot be looked up (then [`load`] says why).
pub fn scope_id(tip: &TreeFiles<'_>, watcher: &WatcherConfig) -> Option<u64> {
    let dirs: Vec<&str> = if watcher.includes.is_empty() {
        vec![config::DEFAULT_WATCHER_DIR]
    } else {
        watcher
            .includes
            .iter()
            .map(|p| p.rsplit_once('/').map_or("", |(dir, _)| dir))
            .collect()
    };
    let mut hasher = DefaultHasher::new();
    for dir in dirs {
        let id = if dir.is_empty() || dir == "." {
            tip.root_id()
        } else {
            match tip.entry(dir) {
                Ok(Some((_, found))) => found.id,
                Ok(None) => git2::Oid::ZERO_SHA1,
                Err(_) => return None,
            }
        };
        (dir, id.as_bytes()).hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// Reads every ImageWatcher file `watcher` selects in the tree `tip`.
pub fn load(tip: &TreeFiles<'_>, watcher: &WatcherConfig, agent: &AgentConfig) -> LoadedTargets {
    let mut out = LoadedTargets::default();
    let mut hasher = DefaultHasher::new();
    let found = match config::find_watcher_files(tip, &watcher.includes, &watcher.excludes) {
        Ok(f) => f,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    out.skipped = found.skipped;
    for rel in found.files {
        let read = tip
            .file(&rel)
            .and_then(|entry| Ok((entry.id, tip.read(&rel)?)));
        let (id, bytes) = match read {
            Ok(r) => r,
            Err(e) => {
                out.errors.push(format!("{rel}: {e}"));
                continue;
            }
        };
        (&rel, id.as_bytes()).hash(&mut hasher);
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                out.errors
                    .push(format!("{rel}: the file is not UTF-8 text"));
                continue;
            }
        };
        let mut file = match config::ImageWatcherFile::parse(&text, &rel) {
            Ok(f) => f,
            Err(e) => {
                out.errors.push(e.to_string());
                continue;
            }
        };
        file.check_providers(agent);
        out.errors
            .extend(file.target_errors().map(|e| e.to_string()));
        out.targets.extend(file.valid_targets().map(|spec| Target {
            repo_id: watcher.repo_id.clone(),
            watcher_file: rel.clone(),
            spec: spec.clone(),
            policy: spec.policy.clone().unwrap_or_default(),
            commit_message: file.commit_message.clone(),
        }));
    }
    out.fingerprint = hasher.finish();
    out
}
