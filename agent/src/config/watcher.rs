//! ImageWatcher files: which manifest field each image's releases are written to.
//!
//! A bad target must not stop the others (docs/architecture.md §4), so the document is read once without its
//! targets, then the targets in one pass; if that pass fails on a malformed target, each target
//! is read on its own. Either way every target yields its own `Result`.

use ferry_proto::reference::ImageName;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::error::{ConfigError, Pos};
use super::message::validate_template;
use super::piped::AgentConfig;
use super::rules::{check_api_version, check_ring_name, WATCHER_KIND};
use super::yaml::{element_from_yaml, from_yaml, sequence_from_yaml};
// A target's kind and format are the editor's own types, and its policy the policy module's:
// config validates (compiling each policy once), the editor and the planner apply.
pub use crate::edit::{EditKind as TargetKind, Format};
use crate::policy::{Policy, PolicyError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    spec: RawSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    commit_message: Option<Spanned<String>>,
    /// Only counted here; the targets are read afterwards (in one pass, or each alone when a
    /// malformed one fails the pass).
    targets: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTarget {
    image: Spanned<String>,
    provider: Spanned<String>,
    file_path: Spanned<String>,
    field: Option<Spanned<String>>,
    // `kustomize:` with no value still selects kustomize: Some(None).
    #[serde(default, deserialize_with = "present")]
    kustomize: Option<Option<RawKustomize>>,
    #[serde(default, deserialize_with = "present")]
    helm: Option<Option<RawHelm>>,
    format: Option<Spanned<String>>,
    policy: Option<RawPolicy>,
    ring: Option<Spanned<String>>,
    pipeline: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKustomize {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelm {
    repository: Option<Spanned<String>>,
    tag: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    semver: Option<Spanned<String>>,
    tag_pattern: Option<Spanned<String>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One valid target of an ImageWatcher file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Position in `spec.targets`, for messages (`spec.targets[2]`).
    pub index: usize,
    /// Where the target starts in the file.
    pub pos: Option<Pos>,
    /// The normalised image name (`pipecd/bar` → `docker.io/pipecd/bar`).
    pub image: ImageName,
    /// The image as written in the file.
    pub image_raw: String,
    /// The image provider's name (see [`ImageWatcherFile::check_providers`]).
    pub provider: String,
    /// The manifest to edit, repo-relative, as written (confinement is checked where it is opened).
    pub file_path: String,
    /// What in the manifest is edited.
    pub kind: TargetKind,
    /// How the reference is written.
    pub format: Format,
    /// Which tags may be deployed (`policy:`, compiled); `None`: the most recently published
    /// tag wins. Always `None` for a ring target.
    pub policy: Option<Policy>,
    /// `ring:` (and `pipeline:`): the target deploys what the ring points at instead of
    /// following tags (docs/rings.md, "Agents following rings").
    pub ring: Option<RingFollow>,
}

/// The ring a target follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RingFollow {
    /// A user ring's name (never the pseudo rings `ante` and `post`).
    pub ring: String,
    /// The pipeline, when the image is in several; `None`: the one pipeline that has a
    /// pointer for the image in this ring.
    pub pipeline: Option<String>,
}

impl TargetSpec {
    /// Whether the target follows a ring rather than tags.
    pub fn follows_ring(&self) -> bool {
        self.ring.is_some()
    }
}

/// A parsed ImageWatcher file: file-level settings, and each target's own outcome.
#[derive(Debug)]
pub struct ImageWatcherFile {
    /// The file name used in messages.
    pub file: String,
    /// `spec.commitMessage`, checked to use only known placeholders.
    pub commit_message: Option<String>,
    /// One entry per `spec.targets[]` item, in order: a bad target does not stop the others.
    pub targets: Vec<Result<TargetSpec, ConfigError>>,
}

impl ImageWatcherFile {
    /// Parses an ImageWatcher file. `Err` only for file-level problems (not YAML, wrong
    /// apiVersion or kind, unknown field outside the targets, bad commitMessage); target
    /// problems are in [`ImageWatcherFile::targets`].
    pub fn parse(text: &str, file: &str) -> Result<ImageWatcherFile, ConfigError> {
        let raw: RawFile = from_yaml(text, file)?;
        check_api_version(file, &raw.api_version)?;
        if raw.kind.value != WATCHER_KIND {
            return Err(ConfigError::invalid(
                file,
                "kind",
                Pos::of(&raw.kind),
                format!("kind is {:?}; expected {WATCHER_KIND}", raw.kind.value),
            ));
        }
        let commit_message = match &raw.spec.commit_message {
            None => None,
            Some(m) => {
                let fail =
                    |msg: String| ConfigError::invalid(file, "spec.commitMessage", Pos::of(m), msg);
                if m.value.trim().is_empty() {
                    return Err(fail(
                        "is empty: remove it to use the default message".into(),
                    ));
                }
                validate_template(&m.value).map_err(|e| fail(e.to_string()))?;
                Some(m.value.clone())
            }
        };
        let targets =
            match sequence_from_yaml::<Spanned<RawTarget>>(text, file, &["spec", "targets"]) {
                // The usual case, every target well-formed: one pass over the text.
                Ok(Some(all)) => all
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| validate_target(file, i, raw))
                    .collect(),
                // A malformed target fails the single pass. Each is then read alone (one pass per
                // target), so every other target still loads and each error names its own target.
                _ => (0..raw.spec.targets.len())
                    .map(|i| target_alone(text, file, i))
                    .collect(),
            };
        Ok(ImageWatcherFile {
            file: file.to_string(),
            commit_message,
            targets,
        })
    }

    /// The targets that are usable.
    pub fn valid_targets(&self) -> impl Iterator<Item = &TargetSpec> {
        self.targets.iter().filter_map(|t| t.as_ref().ok())
    }

    /// The problems of the targets that are not.
    pub fn target_errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.targets.iter().filter_map(|t| t.as_ref().err())
    }

    /// Turns every target whose `provider` is not an image provider of `config` into an error.
    pub fn check_providers(&mut self, config: &AgentConfig) {
        let known: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        for slot in &mut self.targets {
            let Ok(t) = slot else { continue };
            if !known.contains(&t.provider.as_str()) {
                let err = ConfigError::invalid(
                    &self.file,
                    format!("spec.targets[{}].provider", t.index),
                    t.pos,
                    format!(
                        "provider {:?} is not an image provider of the agent (known: {})",
                        t.provider,
                        known.join(", ")
                    ),
                );
                *slot = Err(err);
            }
        }
    }
}

/// Target `index` of the file, read without the others.
fn target_alone(text: &str, file: &str, index: usize) -> Result<TargetSpec, ConfigError> {
    match element_from_yaml::<Spanned<RawTarget>>(text, file, &["spec", "targets"], index)? {
        Some(raw) => validate_target(file, index, raw),
        // Unreachable: the first pass counted this many targets in the same text.
        None => Err(ConfigError::invalid(
            file,
            format!("spec.targets[{index}]"),
            None,
            "target not found",
        )),
    }
}

/// Checks one raw target, field by field, in the order they are usually written, so the first
/// error reported is the first one a reader meets.
fn validate_target(
    file: &str,
    index: usize,
    raw: Spanned<RawTarget>,
) -> Result<TargetSpec, ConfigError> {
    let pos = Pos::of(&raw);
    let t = raw.value;
    let check = TargetCheck { file, index, pos };
    let (image_raw, image) = check.image(&t.image)?;
    let provider = check.non_empty("provider", &t.provider)?;
    let file_path = check.non_empty("filePath", &t.file_path)?;
    let format = check.format(t.format.as_ref())?;
    let kind = check.kind(&t, format)?;
    let ring = check.ring(&t)?;
    let policy = t
        .policy
        .as_ref()
        .map(|p| check.policy(p))
        .transpose()?
        .flatten();
    Ok(TargetSpec {
        index,
        pos,
        image,
        image_raw,
        provider,
        file_path,
        kind,
        format,
        policy,
        ring,
    })
}

/// Where a target is, for its error messages (`FILE:LINE:COL: spec.targets[2].format: ...`).
struct TargetCheck<'a> {
    file: &'a str,
    index: usize,
    /// Where the target starts, for errors about the target as a whole.
    pos: Option<Pos>,
}

impl TargetCheck<'_> {
    /// An error about the target's field `name` (empty: the whole target).
    fn fail(&self, name: &str, at: Option<Pos>, msg: String) -> ConfigError {
        let index = self.index;
        let field = if name.is_empty() {
            format!("spec.targets[{index}]")
        } else {
            format!("spec.targets[{index}].{name}")
        };
        ConfigError::invalid(self.file, field, at, msg)
    }

    fn non_empty(&self, name: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
        if v.value.trim().is_empty() {
            Err(self.fail(name, Pos::of(v), "must not be empty".into()))
        } else {
            Ok(v.value.clone())
        }
    }

    /// The image as written and normalised.
    fn image(&self, v: &Spanned<String>) -> Result<(String, ImageName), ConfigError> {
        let raw = self.non_empty("image", v)?;
        let image = ImageName::parse(&raw)
            .map_err(|e| self.fail("image", Pos::of(v), format!("invalid image {raw:?}: {e}")))?;
        Ok((raw, image))
    }

    fn format(&self, v: Option<&Spanned<String>>) -> Result<Format, ConfigError> {
        match v {
            None => Ok(Format::Tag),
            Some(f) => f.value.parse().map_err(|e: crate::edit::EditError| {
                self.fail("format", Pos::of(f), e.to_string())
            }),
        }
    }

    /// Exactly one of `field`, `kustomize` and `helm` says what is edited.
    fn kind(&self, t: &RawTarget, format: Format) -> Result<TargetKind, ConfigError> {
        let given: Vec<&str> = [
            ("field", t.field.is_some()),
            ("kustomize", t.kustomize.is_some()),
            ("helm", t.helm.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if given.len() != 1 {
            let found = if given.is_empty() {
                "none".to_string()
            } else {
                given.join(" and ")
            };
            return Err(self.fail(
                "",
                self.pos,
                format!("give exactly one of field, kustomize or helm; found {found}"),
            ));
        }
        if let Some(f) = &t.field {
            Ok(TargetKind::Field {
                path: self.non_empty("field", f)?,
            })
        } else if t.kustomize.is_some() {
            Ok(TargetKind::Kustomize)
        } else {
            self.helm(t.helm.as_ref().and_then(Option::as_ref), format)
        }
    }

    /// `helm:` value paths; the one `format` writes must be there.
    fn helm(&self, helm: Option<&RawHelm>, format: Format) -> Result<TargetKind, ConfigError> {
        let key = |name: &str, v: Option<&Spanned<String>>| {
            v.map(|v| self.non_empty(&format!("helm.{name}"), v))
                .transpose()
        };
        let repository = key("repository", helm.and_then(|h| h.repository.as_ref()))?;
        let tag = key("tag", helm.and_then(|h| h.tag.as_ref()))?;
        let digest = key("digest", helm.and_then(|h| h.digest.as_ref()))?;
        if tag.is_none() && digest.is_none() {
            return Err(self.fail(
                "helm",
                self.pos,
                "give at least one of tag and digest (value paths such as image.tag)".into(),
            ));
        }
        let needs = match format {
            Format::Tag if tag.is_none() => Some(("tag", "format: digest")),
            Format::Digest if digest.is_none() => Some(("digest", "format: tag")),
            _ => None,
        };
        if let Some((missing, other)) = needs {
            return Err(self.fail(
                "helm",
                self.pos,
                format!("format is {format} but helm has no {missing} path: add helm.{missing} or set {other}"),
            ));
        }
        Ok(TargetKind::Helm {
            repository,
            tag,
            digest,
        })
    }

    /// `ring:` and `pipeline:`. A ring decides the version, so a tag policy beside it would be
    /// silently ignored: refused instead. `pipeline:` alone would do nothing: refused too.
    fn ring(&self, t: &RawTarget) -> Result<Option<RingFollow>, ConfigError> {
        let Some(ring) = &t.ring else {
            if let Some(p) = &t.pipeline {
                return Err(self.fail(
                    "pipeline",
                    Pos::of(p),
                    "pipeline is only for ring targets: add ring: RING, or remove pipeline".into(),
                ));
            }
            return Ok(None);
        };
        if t.policy.is_some() {
            return Err(self.fail(
                "ring",
                Pos::of(ring),
                "give ring or policy, not both: a ring target deploys whatever the ring points at, a policy picks among tags; remove one".into(),
            ));
        }
        let name = &ring.value;
        check_ring_name("ring", name).map_err(|m| self.fail("ring", Pos::of(ring), m))?;
        if name == "ante" || name == "post" {
            return Err(self.fail(
                "ring",
                Pos::of(ring),
                format!("{name:?} is a pseudo ring no cluster runs (ante: builds waiting, post: what shift moved off the last ring); follow one of the pipeline's rings"),
            ));
        }
        let pipeline = t
            .pipeline
            .as_ref()
            .map(|p| {
                check_ring_name("pipeline", &p.value)
                    .map(|()| p.value.clone())
                    .map_err(|m| self.fail("pipeline", Pos::of(p), m))
            })
            .transpose()?;
        Ok(Some(RingFollow {
            ring: name.clone(),
            pipeline,
        }))
    }

    /// `policy:` compiled once, here: the compiled policy is what the agent applies, so a range
    /// or pattern that is refused is refused at its field, and nothing compiles it twice.
    /// `None` when it sets nothing (`policy: {}`).
    fn policy(&self, p: &RawPolicy) -> Result<Option<Policy>, ConfigError> {
        let semver = p
            .semver
            .as_ref()
            .map(|v| self.non_empty("policy.semver", v))
            .transpose()?;
        let tag_pattern = p
            .tag_pattern
            .as_ref()
            .map(|v| self.non_empty("policy.tagPattern", v))
            .transpose()?;
        if semver.is_none() && tag_pattern.is_none() {
            return Ok(None);
        }
        Policy::new(semver.as_deref(), tag_pattern.as_deref())
            .map(Some)
            .map_err(|e| match e {
                PolicyError::Semver(e) => self.fail(
                    "policy.semver",
                    p.semver.as_ref().and_then(Pos::of),
                    e.to_string(),
                ),
                PolicyError::TagPattern { pattern, error } => self.fail(
                    "policy.tagPattern",
                    p.tag_pattern.as_ref().and_then(Pos::of),
                    format!(
                        "invalid regular expression {pattern:?}: {}",
                        regex_reason(&error)
                    ),
                ),
                PolicyError::EmptyTagPattern => self.fail(
                    "policy.tagPattern",
                    p.tag_pattern.as_ref().and_then(Pos::of),
                    e.to_string(),
                ),
            })
    }
}

/// regex errors draw a caret under the pattern over several lines; the last line says what is
/// wrong, and fits in a one-line message.
fn regex_reason(error: &regex::Error) -> String {
    let e = error.to_string();
    e.lines()
        .last()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
#[path = "watcher_tests.rs"]
mod tests;
