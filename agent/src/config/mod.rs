//! The agent's configuration: the Piped-style config file and the ImageWatcher files in the config
//! repository (DESIGN §5), read in two stages: YAML → raw serde structs (unknown fields are errors,
//! since a typo in GitOps config would otherwise silently do nothing) → validated types. Every error
//! names the file, the line and column when known, the field path and the rule.
//!
//! - `piped`: `ferry-agent --config FILE` → [`AgentConfig`].
//! - `watcher`: one ImageWatcher file → [`ImageWatcherFile`], each target valid or not on its own.
//! - `discover`: which files of a repository are ImageWatcher files ([`watcher_files`]).
//! - `message`: commit message templates and the default and combined messages.
//! - `error`: [`ConfigError`].
//! - `yaml`: serde-saphyr with field paths.

mod discover;
mod error;
mod message;
mod piped;
mod watcher;
mod yaml;

pub use discover::{watcher_files, DEFAULT_WATCHER_DIR};
pub use error::{ConfigError, Diagnostic, Pos};
pub use message::{
    combined_message, digest_short, render_commit_message, validate_template, CommitVars,
    TemplateError, PLACEHOLDERS,
};
pub use piped::{
    AgentConfig, GitIdentity, ProviderConfig, RepositoryConfig, WatcherConfig, FERRY_PROVIDER_TYPE,
    PIPED_KIND,
};
pub use watcher::{Format, ImageWatcherFile, PolicySpec, TargetKind, TargetSpec, WATCHER_KIND};

/// The `apiVersion`s ferry reads: PipeCD's, and ferry's own.
pub const API_VERSIONS: [&str; 2] = ["pipecd.dev/v1beta1", "ferry.dev/v1"];
