//! `ferry version next` and `ferry needs-build`: pure decisions over what two rings run, each
//! with the human "why" the command prints (docs/rings.md, "Versioning").
//!
//! Pure so that the table in the docs is tested row by row, and so that the server could answer
//! the same question the same way.

use std::collections::HashMap;
use std::fmt;

use semver::{BuildMetadata, Prerelease, Version};

use crate::names::Shown;

/// The label holding an image's version.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";
/// The label holding the source revision an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";
/// `dependency.<name>=<version>` labels pin what a (root) image was built with.
pub const DEPENDENCY_LABEL_PREFIX: &str = "dependency.";

/// The shortest hex prefix of a revision that stands for the whole (git's own default).
pub const MIN_REVISION_PREFIX: usize = 7;

/// What one ring runs of one image, as far as versioning cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// The digest the ring points at.
    pub digest: String,
    /// The digest's labels as recorded at publish.
    pub labels: HashMap<String, String>,
}

impl Running {
    /// The digest's `org.opencontainers.image.version`, if it has a non-empty one.
    pub fn version(&self) -> Option<&str> {
        self.label(VERSION_LABEL)
    }

    /// The digest's `org.opencontainers.image.revision`, if it has a non-empty one.
    pub fn revision(&self) -> Option<&str> {
        self.label(REVISION_LABEL)
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl From<&crate::pb::RingPointer> for Running {
    fn from(p: &crate::pb::RingPointer) -> Running {
        let mut labels: HashMap<String, String> = p.labels.clone().into_iter().collect();
        // The pointer carries version and revision as fields too; a server that sends only the
        // fields must not look unlabelled.
        for (key, value) in [(VERSION_LABEL, &p.version), (REVISION_LABEL, &p.revision)] {
            if !value.is_empty() {
                labels
                    .entry(key.to_string())
                    .or_insert_with(|| value.clone());
            }
        }
        Running {
            digest: p.digest.clone(),
            labels,
        }
    }
}

/// One side of the comparison: a ring's name and what it runs of the image (`None`: nothing).
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The ring's name (for the "why").
    pub ring: &'a str,
    /// What it runs, if anything.
    pub running: Option<&'a Running>,
}

/// A decision and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextVersion {
    /// The version to build, with the `v` prefix kept when the version it derives from had one.
    pub version: String,
    /// Why that version.
    pub why: String,
}

/// Why no version could be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// A ring runs a digest whose version label is not semantic versioning.
    NotSemver {
        /// The ring.
        ring: String,
        /// The digest it runs.
        digest: String,
        /// The label's value.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// A ring runs a digest without a version label: comparing it is guessing.
    Unversioned {
        /// The ring.
        ring: String,
        /// The digest it runs.
        digest: String,
    },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::NotSemver {
                ring,
                digest,
                value,
                reason,
            } => write!(
                f,
                "ring {ring} runs {digest} whose {VERSION_LABEL} label {} is not semantic \
                 versioning (MAJOR.MINOR.PATCH[-PRE][+BUILD], optionally with a leading v): {reason}",
                Shown(value)
            ),
            VersionError::Unversioned { ring, digest } => write!(
                f,
                "ring {ring} runs {digest}, which has no {VERSION_LABEL} label: publish it with \
                 --label {VERSION_LABEL}=X.Y.Z (or build the image with that label)"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// A parsed version label: the `v` prefix and the semantic version without build metadata.
#[derive(Debug, Clone)]
struct Label {
    v: bool,
    version: Version,
}

impl Label {
    fn render(&self, version: &Version) -> String {
        format!("{}{version}", if self.v { "v" } else { "" })
    }
}

fn label_of(side: Side<'_>) -> Result<Option<Label>, VersionError> {
    let Some(running) = side.running else {
        return Ok(None);
    };
    let Some(value) = running.version() else {
        return Err(VersionError::Unversioned {
            ring: side.ring.to_string(),
            digest: running.digest.clone(),
        });
    };
    let (v, bare) = match value.strip_prefix('v') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let mut version = Version::parse(bare).map_err(|e| VersionError::NotSemver {
        ring: side.ring.to_string(),
        digest: running.digest.clone(),
        value: value.to_string(),
        reason: e.to_string(),
    })?;
    version.build = BuildMetadata::EMPTY;
    Ok(Some(Label { v, version }))
}

/// The version for a build made against `this` ring, from what it and the ring after it run
/// (docs/rings.md, "Versioning"). `major`: the user asked for a new major.
pub fn next_version(
    this: Side<'_>,
    next: Side<'_>,
    major: bool,
) -> Result<NextVersion, VersionError> {
    let this_label = label_of(this)?;
    let next_label = label_of(next)?;
    let done = |label: &Label, version: Version, why: String| NextVersion {
        version: label.render(&version),
        why,
    };
    let plain = Label {
        v: false,
        version: Version::new(0, 0, 0),
    };
    let (t, n) = (this.ring, next.ring);
    if major {
        let Some(base) = this_label.as_ref().or(next_label.as_ref()) else {
            return Ok(done(
                &plain,
                Version::new(1, 0, 0),
                format!("--major, and neither {t} nor {n} runs anything: the first major"),
            ));
        };
        let from = if this_label.is_some() { t } else { n };
        let v = &base.version;
        return Ok(done(
            base,
            Version::new(v.major + 1, 0, 0),
            format!(
                "--major: the major after {} ({from})",
                base.render(&base.version)
            ),
        ));
    }
    match (&this_label, &next_label) {
        (Some(this_l), _) if !this_l.version.pre.is_empty() => {
            let mut v = this_l.version.clone();
            v.pre = bump_prerelease(&v.pre);
            Ok(done(
                this_l,
                v,
                format!(
                    "{t} runs the pre-release {}, which is not released: the next pre-release",
                    this_l.render(&this_l.version)
                ),
            ))
        }
        (Some(this_l), None) => {
            let v = &this_l.version;
            Ok(done(
                this_l,
                Version::new(v.major, v.minor, v.patch + 1),
                format!(
                    "{t} runs {}, {n} runs nothing to compare with: a fix",
                    this_l.render(v)
                ),
            ))
        }
        (Some(this_l), Some(next_l)) => {
            let (tv, nv) = (&this_l.version, &next_l.version);
            let shown = |l: &Label| l.render(&l.version);
            if (tv.major, tv.minor) == (nv.major, nv.minor) {
                Ok(done(
                    this_l,
                    Version::new(tv.major, tv.minor + 1, 0),
                    format!(
                        "{t} runs {} and {n} runs {}, the same minor: the next build is a new minor",
                        shown(this_l),
                        shown(next_l)
                    ),
                ))
            } else if (nv.major, nv.minor) < (tv.major, tv.minor) {
                Ok(done(
                    this_l,
                    Version::new(tv.major, tv.minor, tv.patch + 1),
                    format!(
                        "{t} runs {} and {n} is on the older minor {}: a fix for {t}",
                        shown(this_l),
                        shown(next_l)
                    ),
                ))
            } else {
                Ok(done(
                    this_l,
                    Version::new(tv.major, tv.minor, tv.patch + 1),
                    format!(
                        "{t} runs {} and {n} is ahead on {} (after a rollback?): a fix for {t}",
                        shown(this_l),
                        shown(next_l)
                    ),
                ))
            }
        }
        (None, Some(next_l)) => {
            let v = &next_l.version;
            Ok(done(
                next_l,
                Version::new(v.major, v.minor + 1, 0),
                format!(
                    "{t} runs nothing: the minor after {n}'s {}",
                    next_l.render(v)
                ),
            ))
        }
        (None, None) => Ok(done(
            &plain,
            Version::new(0, 1, 0),
            format!("neither {t} nor {n} runs anything: the first build"),
        )),
    }
}

/// `rc.1` → `rc.2`, `beta` → `beta.1`, `alpha.1.x` → `alpha.2.x`: the last numeric identifier
/// goes up by one; with none, `.1` is appended. Either way the result sorts after the input.
fn bump_prerelease(pre: &Prerelease) -> Prerelease {
    let mut parts: Vec<String> = pre.as_str().split('.').map(str::to_string).collect();
    let last_numeric = parts
        .iter()
        .rposition(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match last_numeric {
        Some(i) => {
            // Numeric identifiers have no leading zeros, so they parse; a u64 overflow is not
            // a version anyone publishes, but saturating keeps this total.
            let n: u64 = parts[i].parse().unwrap_or(u64::MAX - 1);
            parts[i] = (n.saturating_add(1)).to_string();
        }
        None => parts.push("1".to_string()),
    }
    Prerelease::new(&parts.join(".")).unwrap_or_else(|_| pre.clone())
}

/// Whether CI must build, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDecision {
    /// `true`: build.
    pub needed: bool,
    /// Every reason a build is needed, or why it is not.
    pub why: String,
}

/// What a build would be made of: the source revision and the dependency versions it pins.
#[derive(Debug, Clone, Default)]
pub struct BuildInputs {
    /// The source revision (a git hash, or any revision string).
    pub revision: String,
    /// `NAME=VERSION` pairs, compared to the digest's `dependency.NAME` labels.
    pub dependencies: Vec<(String, String)>,
}

/// Whether two revisions name the same source: equal, or (both hex) one a prefix of the other of
/// at least [`MIN_REVISION_PREFIX`] digits, compared without case.
pub fn same_revision(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !hex(a) || !hex(b) {
        return false;
    }
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= MIN_REVISION_PREFIX && long.starts_with(&short)
}

/// Whether a build made of `inputs` is needed for `ring` (docs/rings.md, "Versioning"): the ring
/// is empty, runs another revision, or another version of a dependency.
pub fn needs_build(ring: Side<'_>, inputs: &BuildInputs) -> BuildDecision {
    let r = ring.ring;
    let Some(running) = ring.running else {
        return BuildDecision {
            needed: true,
            why: format!("ring {r} runs nothing of this image"),
        };
    };
    let short = short_digest(&running.digest);
    let mut reasons = Vec::new();
    let mut same = Vec::new();
    match running.revision() {
        None => reasons.push(format!(
            "{short} has no {REVISION_LABEL} label to compare {} with",
            Shown(&inputs.revision)
        )),
        Some(rev) if same_revision(rev, &inputs.revision) => {
            same.push(format!("revision {}", Shown(rev)))
        }
        Some(rev) => reasons.push(format!(
            "{short} was built from revision {}, not {}",
            Shown(rev),
            Shown(&inputs.revision)
        )),
    }
    for (name, wanted) in &inputs.dependencies {
        let key = format!("{DEPENDENCY_LABEL_PREFIX}{name}");
        match running.label(&key) {
            None => reasons.push(format!(
                "{short} has no {} label (wanted {})",
                Shown(&key),
                Shown(wanted)
            )),
            Some(have) if have == wanted => same.push(format!("{key}={have}")),
            Some(have) => reasons.push(format!(
                "{short} has {key}={}, not {}",
                Shown(have),
                Shown(wanted)
            )),
        }
    }
    if reasons.is_empty() {
        BuildDecision {
            needed: false,
            why: format!(
                "ring {r} runs {short} with the same {}: no build needed",
                same.join(", ")
            ),
        }
    } else {
        BuildDecision {
            needed: true,
            why: format!("ring {r}: {}", reasons.join("; ")),
        }
    }
}

/// `sha256:0123456789ab`: the algorithm and 12 hex digits, as `ferry` prints digests in tables.
pub fn short_digest(digest: &str) -> &str {
    match digest.split_once(':') {
        // By characters: a digest echoed from a bad request need not be ASCII.
        Some((alg, hex)) => match hex.char_indices().nth(12) {
            Some((cut, _)) => &digest[..alg.len() + 1 + cut],
            None => digest,
        },
        None => digest,
    }
}

#[cfg(test)]
#[path = "versioning_tests.rs"]
mod tests;
