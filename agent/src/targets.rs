//! Loading the watched targets: ImageWatcher files in a repository's work tree, validated, each
//! with its compiled policy. A bad target is reported and skipped; the others keep working.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::config::{self, AgentConfig, SkippedFile, TargetSpec, WatcherConfig};
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
#[derive(Debug, Default)]
pub struct LoadedTargets {
    /// Usable targets.
    pub targets: Vec<Target>,
    /// One message per refused file or target.
    pub errors: Vec<String>,
    /// YAML files left out for a kind that looks like a mistake.
    pub skipped: Vec<SkippedFile>,
    /// Hash of the watcher files' names and contents.
    pub fingerprint: u64,
}

/// Reads every ImageWatcher file `watcher` selects in the work tree at `root`.
pub fn load(root: &Path, watcher: &WatcherConfig, agent: &AgentConfig) -> LoadedTargets {
    let mut out = LoadedTargets::default();
    let mut hasher = DefaultHasher::new();
    let found = match config::find_watcher_files(root, &watcher.includes, &watcher.excludes) {
        Ok(f) => f,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    out.skipped = found.skipped;
    for path in found.files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(format!("{rel}: {e}"));
                continue;
            }
        };
        (&rel, &text).hash(&mut hasher);
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
