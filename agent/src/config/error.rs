//! The one error type of the config module: every message names the file, the field path and the
//! rule that was broken, with the line and column when the YAML parser knows them.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

// Shared with `ferry pipeline apply` (ferry_proto::yaml), so both point at file:line:col alike.
pub use ferry_proto::yaml::{Diagnostic, Pos};

/// A config or ImageWatcher file that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file (or a directory searched for ImageWatcher files) could not be read.
    #[error("reading {}: {source}", file.display())]
    Read {
        /// The path that failed.
        file: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file or directory of the config repository's tree could not be read (the message
    /// names the path and the commit).
    #[error("{source}")]
    Tree {
        /// The repo-relative path that failed.
        file: String,
        /// What the git layer reported.
        source: crate::git::GitError,
    },
    /// The text is not YAML, or does not have the expected shape: an unknown field (a typo would
    /// otherwise silently do nothing), a missing field, or a value of the wrong type.
    #[error("{0}")]
    Yaml(Diagnostic),
    /// The YAML has the right shape but a value breaks a rule.
    #[error("{0}")]
    Invalid(Diagnostic),
}

impl ConfigError {
    /// The file, field path, position and message, for every variant but [`ConfigError::Read`]
    /// and [`ConfigError::Tree`].
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Read { .. } | ConfigError::Tree { .. } => None,
            ConfigError::Yaml(d) | ConfigError::Invalid(d) => Some(d),
        }
    }

    /// The YAML field path the error is about (`spec.targets[2].format`); empty when the error is
    /// about the whole file.
    pub fn field(&self) -> &str {
        self.diagnostic().map_or("", |d| d.field.as_str())
    }

    pub(crate) fn invalid(
        file: &str,
        field: impl Into<String>,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid(Diagnostic {
            file: file.to_string(),
            field: field.into(),
            pos,
            message: message.into(),
        })
    }
}
