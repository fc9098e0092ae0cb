//! The agent's configuration: the Piped-style config file and the ImageWatcher files in the config
//! repository (docs/architecture.md §4), read in two stages: YAML → raw serde structs (unknown fields are errors,
//! since a typo in GitOps config would otherwise silently do nothing) → validated types. Every error
//! names the file, the line and column when known, the field path and the rule.
//!
//! - `piped`: `ferry-agent --config FILE` → [`AgentConfig`].
//! - `watcher`: one ImageWatcher file → [`ImageWatcherFile`], each target valid or not on its own.
//! - `discover`: which files of a repository are ImageWatcher files ([`watcher_files`]).
//! - `message`: commit message templates and the default and combined messages.
//! - `push`: branch mode (`spec.repositories[].push`) and branch names from templates.
//! - `sync_trigger`: `spec.syncTriggers` (Argo CD syncs and webhooks after a push).
//! - `rules`: what the files share (apiVersions, kinds, include paths); imports no sibling.
//! - `error`: [`ConfigError`].
//! - `yaml`: serde-saphyr with field paths.

mod discover;
mod error;
mod message;
mod piped;
mod push;
mod rules;
mod sync_trigger;
mod watcher;
mod yaml;

pub use discover::{
    find_watcher_files, watcher_files, SkippedFile, WatcherFiles, DEFAULT_WATCHER_DIR,
};
pub use error::{ConfigError, Diagnostic, Pos};
pub use message::{
    combined_message, digest_short, render_commit_message, validate_template, CommitVars,
    TemplateError, PLACEHOLDERS,
};
pub use piped::{
    AgentConfig, GitIdentity, ProviderConfig, RepositoryConfig, WatcherConfig, FERRY_PROVIDER_TYPE,
};
pub use push::{branch_name, check_branch_name, sanitize_branch, PushConfig, PushTarget};
pub use rules::{API_VERSIONS, PIPECD_KINDS, PIPED_KIND, WATCHER_KIND};
pub use sync_trigger::{ArgoApplication, SyncCall, SyncTriggerConfig};
pub use watcher::{Format, ImageWatcherFile, RingFollow, TargetKind, TargetSpec};
