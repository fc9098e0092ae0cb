//! The one error type of the config module: every message names the file, the field path and the
//! rule that was broken, with the line and column when the YAML parser knows them.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A position in a YAML file, 1-based, as the parser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, counting from 1.
    pub line: u64,
    /// Column, counting from 1.
    pub column: u64,
}

impl Pos {
    /// `None` for the parser's "unknown location" (line 0).
    pub(crate) fn from_saphyr(loc: serde_saphyr::Location) -> Option<Pos> {
        (loc.line() > 0).then(|| Pos {
            line: loc.line(),
            column: loc.column(),
        })
    }

    /// Where a `Spanned` value was written (the alias site for `*alias` values).
    pub(crate) fn of<T>(spanned: &serde_saphyr::Spanned<T>) -> Option<Pos> {
        Pos::from_saphyr(spanned.referenced)
    }
}

/// What went wrong, where: `file:line:col: field.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as named to the parser (the path given to `load`, or the repo-relative path of an
    /// ImageWatcher file).
    pub file: String,
    /// The YAML field path, `spec.imageProviders[1].type`; empty for the whole document.
    pub field: String,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// The rule that was broken, with the offending value.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

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
    /// The text is not YAML, or does not have the expected shape: an unknown field (a typo would
    /// otherwise silently do nothing), a missing field, or a value of the wrong type.
    #[error("{0}")]
    Yaml(Diagnostic),
    /// The YAML has the right shape but a value breaks a rule.
    #[error("{0}")]
    Invalid(Diagnostic),
}

impl ConfigError {
    /// The file, field path, position and message, for every variant but [`ConfigError::Read`].
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Read { .. } => None,
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
