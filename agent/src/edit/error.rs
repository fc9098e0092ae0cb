//! Why an edit was refused. Every message names the path or value at fault and the rule it broke,
//! because the reader is someone fixing an ImageWatcher target or a manifest by hand.

use thiserror::Error;

/// An edit that could not be made. The file is never partially written: on any error the caller
/// keeps the original bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// The file is not UTF-8, so it cannot be YAML.
    #[error(
        "the file is not UTF-8 text (invalid byte at offset {offset}); YAML files must be UTF-8"
    )]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The file does not parse as YAML.
    #[error("invalid YAML at line {line}, column {column}: {message}; fix the file before ferry can edit it")]
    Yaml {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The file nests collections deeper than the editor walks.
    #[error("the YAML nests deeper than {limit} levels at line {line}; ferry refuses to edit it")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// 1-based line where the limit was crossed.
        line: usize,
    },
    /// A configured path is not written in the path syntax.
    #[error(
        "invalid path {path:?}: {reason}; paths look like spec.template.spec.containers[0].image"
    )]
    InvalidPath {
        /// The path as configured.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configured path does not exist in any document of the file.
    #[error("path {path:?} not found: {detail}")]
    PathNotFound {
        /// The whole path as configured.
        path: String,
        /// Which prefix is missing and why, e.g. `"spec.containers[0]" does not exist: spec.containers has 0 items`.
        detail: String,
    },
    /// A key on the path appears twice in its mapping, so which one to edit is ambiguous.
    #[error("key {path} appears more than once in its mapping; YAML forbids duplicate keys and readers disagree on which wins, so remove one")]
    DuplicateKey {
        /// The path of the duplicated key.
        path: String,
    },
    /// The value at a path is a collection, alias or block scalar where a one-line scalar is needed.
    #[error("value at {path} is {found}; expected {expected}")]
    WrongType {
        /// The path of the value.
        path: String,
        /// What was found, e.g. "a mapping" or "an alias (*app)".
        found: String,
        /// What the edit needs there.
        expected: &'static str,
    },
    /// The scalar at a path is read by YAML as something other than a string.
    #[error("value at {path} is {value:?}, which YAML reads as {reading}, not a string; quote it or point the target at another field")]
    NotAString {
        /// The path of the value.
        path: String,
        /// The scalar as written.
        value: String,
        /// How YAML reads it, e.g. "a boolean".
        reading: String,
    },
    /// The value at a path names a different image than the target's.
    #[error("{path} holds image {found:?}, not {image:?}; point the target at the field that holds {image}")]
    ImageMismatch {
        /// The path that was checked.
        path: String,
        /// The image name found there.
        found: String,
        /// The target's image.
        image: String,
    },
    /// A kustomize file has no `images` entry for the target's image.
    #[error("no images[] entry has name (or newName) {image:?}; entries: [{names}]; add `- name: {image}` to the kustomization")]
    KustomizeEntryMissing {
        /// The target's image.
        image: String,
        /// The names that are there, comma-separated.
        names: String,
    },
    /// The format needs a Helm value path that the target does not configure.
    #[error("format {format} needs helm.{option} to be set in the target")]
    MissingHelmPath {
        /// The format asked for.
        format: &'static str,
        /// The missing option: "tag" or "digest".
        option: &'static str,
    },
    /// A format name that is not one of the three.
    #[error("unknown format {0:?}: expected tag, digest or tag+digest")]
    UnknownFormat(String),
    /// The release's tag or digest is not valid, so writing it could corrupt the file.
    #[error("release {what} is invalid: {reason}")]
    InvalidRelease {
        /// "tag" or "digest".
        what: &'static str,
        /// The rule it broke, with the value.
        reason: String,
    },
    /// The release is for another image than the target's.
    #[error("release for image {release:?} cannot be applied to a target for image {target:?}")]
    ReleaseImageMismatch {
        /// The release's image.
        release: String,
        /// The target's image.
        target: String,
    },
    /// The editor could not prove its splice is exact (an unusual layout it does not handle), so it
    /// wrote nothing rather than risk changing anything else in the file.
    #[error("refusing to edit: {0}; the file was left unchanged")]
    Unsafe(String),
}
