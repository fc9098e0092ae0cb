//! Masterminds-style semver ranges (the Go library behind Helm, Flux and Argo CD Image Updater),
//! evaluated with the `semver` crate's version type.
//!
//! Why not `semver::VersionReq`: it speaks Cargo's dialect (no `||`, no hyphen ranges, no `v`
//! prefix, `1.2` means `^1.2`), and users paste ranges from their Flux and Argo CD configs. The
//! rules below follow Masterminds/semver v3.4 (`constraints.go`); the few places where we differ
//! on purpose are listed on [`Range`].
//!
//! | range               | means                                                  |
//! |---------------------|--------------------------------------------------------|
//! | `>=1.2, <2`         | `>=1.2.0` and `<2.0.0`; `,` or whitespace is AND       |
//! | `^1 \|\| ~3.1`      | either side; `\|\|` is OR                              |
//! | `1.2.3`, `=1.2.3`   | exactly 1.2.3                                          |
//! | `1.2`, `=1.2`       | `>=1.2.0 <1.3.0`: a short version is a wildcard        |
//! | `1`, `1.x`          | `>=1.0.0 <2.0.0`                                       |
//! | `1.2.x`, `1.2.*`    | `>=1.2.0 <1.3.0`                                       |
//! | `*`, `x`            | any version                                            |
//! | `!=1.2.3`, `!=1.2`  | not 1.2.3; no 1.2.x                                    |
//! | `>1.2`              | `>=1.3.0`: above every 1.2.x                           |
//! | `<1.2`              | `<1.2.0`                                               |
//! | `<=1.2`             | `<1.3.0`: every 1.2.x counts as equal to 1.2           |
//! | `~1.2.3`, `~1.2`    | `>=1.2.3 <1.3.0`; `>=1.2.0 <1.3.0`                     |
//! | `~1`                | `>=1.0.0 <2.0.0`                                       |
//! | `^1.2.3`, `^2`      | `>=1.2.3 <2.0.0`; `>=2.0.0 <3.0.0`                     |
//! | `^0.3`, `^0.0.3`    | `>=0.3.0 <0.4.0`; `>=0.0.3 <0.0.4`                     |
//! | `^0`, `^0.0`        | `>=0.0.0 <1.0.0`; `>=0.0.0 <0.1.0`                     |
//! | `1.2 - 1.4.5`       | `>=1.2.0, <=1.4.5`; spaces around `-` are required     |
//! | `1.2 - 1.4`         | `>=1.2.0, <1.5.0` (the short upper bound is `<=1.4`)   |
//!
//! Pre-releases: a version such as `1.3.0-rc.1` satisfies an AND group only when some
//! comparison in that group names a pre-release itself (`>=1.3.0-0, <2`); each `||` alternative
//! is judged on its own. Inside such a group pre-releases compare by plain semver precedence, so
//! `>=1.3.0-0, <2` also admits `2.0.0-rc.1` (below 2.0.0); `<2.0.0-0` is the bound that stops
//! before every 2.0.0 pre-release. This is Masterminds' rule; npm's is narrower (only
//! pre-releases of the named x.y.z).
//!
//! Versions (in ranges and in tags) may start with `v` and may be short (`v1.2` is 1.2.0); numeric
//! parts may carry leading zeros (`1.02` is 1.2.0), as Masterminds' `NewVersion` coerces them.
//! Build metadata (`+…`) is accepted and ignored in every comparison.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use semver::{BuildMetadata, Version};

mod parse;
#[cfg(test)]
mod tests;

use parse::{parse_group, parse_partial};

/// A parsed range: OR groups of AND-ed comparisons.
///
/// Where this differs from Masterminds v3.4, on purpose:
/// - A wildcard major (`*`, `x`) with `>`, `<`, `<=` or `!=` is refused: Masterminds gives those
///   accidental meanings (`<=*` accepts only 0.x.y); `*`, `=*`, `>=*`, `~*` and `^*` all mean "any
///   version" (Masterminds' `^*` accepts only 0.0.0, against its own documentation).
/// - A number after a wildcard (`1.x.3`) is refused rather than silently read as `1.x`.
/// - An empty range is refused rather than read as `*`: leave `semver` out to accept every tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    text: String,
    groups: Vec<Group>,
}

/// Why a range was refused; the message names the range and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid semver range {range:?}: {problem}")]
pub struct RangeError {
    /// The range as written.
    pub range: String,
    /// What is wrong with it.
    pub problem: RangeProblem,
}

/// What is wrong with a refused range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeProblem {
    /// Nothing but whitespace.
    #[error(
        "it is empty; write a range such as \">=1.2, <2\" or \"^1.4\", \
         or leave semver out to accept every tag"
    )]
    Empty,
    /// One side of a `||` is empty.
    #[error("one side of \"||\" is empty")]
    EmptyAlternative,
    /// A comma that does not sit between two comparisons (`>=1,`, `>=1,,<2`, `,>=1`).
    #[error("a \",\" does not sit between two comparisons")]
    DanglingComma,
    /// An operator with no version after it.
    #[error("operator \"{op}\" has no version after it")]
    MissingVersion {
        /// The operator as written.
        op: String,
    },
    /// Something that should be a version is not one.
    #[error(
        "{text:?} is not a version: {reason} \
         (versions look like 1.2.3, v1.2, 1.x or 1.2.3-rc.1)"
    )]
    BadVersion {
        /// The offending text.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A hyphen range that is incomplete or has operators on its bounds.
    #[error("hyphen range {text:?}: {reason} (write it as \"1.2 - 1.4.5\")")]
    BadHyphenRange {
        /// The range as far as it was read.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A wildcard major version with an operator that gives it no meaning.
    #[error(
        "\"{op}{version}\" means nothing useful: a wildcard major version works alone (\"*\") \
         or with =, >=, ~ or ^"
    )]
    MeaninglessWildcard {
        /// The operator as written.
        op: String,
        /// The version as written.
        version: String,
    },
}

/// One `||` alternative: every comparison must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    comparators: Vec<Comparator>,
    /// Whether some comparison names a pre-release, which lets pre-release versions in.
    admits_prerelease: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    /// The version as written, unwritten or wildcard parts as 0, build metadata dropped.
    version: Version,
    precision: Precision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Tilde,
    Caret,
}

/// How much of a comparison's version was written as numbers; the rest was left out or a
/// wildcard. Masterminds calls anything short of `Patch` "dirty" and widens the comparison to
/// the whole family (`<=1.2` covers every 1.2.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    /// `*`, `x`: no number at all.
    Any,
    /// `1`, `1.x`, `1.*.*`.
    Major,
    /// `1.2`, `1.2.x`.
    Minor,
    /// `1.2.3`.
    Patch,
}

impl Range {
    /// Parses a range such as `">=1.2, <2 || ^3.1"`.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let error = |problem| RangeError {
            range: text.to_owned(),
            problem,
        };
        if text.trim().is_empty() {
            return Err(error(RangeProblem::Empty));
        }
        let groups = text
            .split("||")
            .map(parse_group)
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(Range {
            text: text.to_owned(),
            groups,
        })
    }

    /// The range as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` satisfies the range. Build metadata is ignored.
    pub fn matches(&self, version: &Version) -> bool {
        let version = without_build(version);
        self.groups.iter().any(|group| group.matches(&version))
    }
}

impl FromStr for Range {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<Range, RangeError> {
        Range::parse(text)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reads a tag (or any text) as a version the way Masterminds' `NewVersion` does: an optional
/// `v`, one to three numeric parts (missing ones are 0), then `-pre-release` and `+build`.
/// `v1.2` is 1.2.0; `latest`, `main-abc1234` and `1.2.3.4` are not versions. Build metadata is
/// dropped, since it never takes part in a comparison.
pub fn parse_version(text: &str) -> Option<Version> {
    let partial = parse_partial(text).ok()?;
    // Wildcards belong to ranges; a tag `1.x` is not a version.
    (!partial.wildcard).then_some(partial.version)
}

impl Group {
    fn matches(&self, version: &Version) -> bool {
        if !version.pre.is_empty() && !self.admits_prerelease {
            return false;
        }
        self.comparators.iter().all(|c| c.matches(version))
    }
}

impl Comparator {
    /// `version` has no build metadata (see [`without_build`]), so `==` and `<` are semver
    /// precedence.
    fn matches(&self, version: &Version) -> bool {
        let (v, c) = (version, &self.version);
        match (self.op, self.precision) {
            (Op::Eq, Precision::Patch) => v == c,
            // A short or wildcard version with `=` (or none) is Masterminds' tilde.
            (Op::Eq, _) | (Op::Tilde, _) => self.tilde(v),
            (Op::Caret, _) => self.caret(v),
            (Op::Ge, _) => v >= c,
            (Op::Lt, _) => v < c,
            (Op::Gt, Precision::Major) => v.major > c.major,
            (Op::Gt, Precision::Minor) => (v.major, v.minor) > (c.major, c.minor),
            (Op::Gt, _) => v > c,
            (Op::Le, Precision::Major) => v.major <= c.major,
            (Op::Le, Precision::Minor) => (v.major, v.minor) <= (c.major, c.minor),
            (Op::Le, _) => v <= c,
            (Op::Ne, Precision::Major) => v.major != c.major,
            // Masterminds compares the pre-release parts too when either side has one, so
            // `!=4.1-alpha` excludes only 4.1.x-alpha.
            (Op::Ne, Precision::Minor) => {
                (v.major, v.minor) != (c.major, c.minor)
                    || ((!v.pre.is_empty() || !c.pre.is_empty()) && v.pre != c.pre)
            }
            (Op::Ne, _) => v != c,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        match self.precision {
            Precision::Any => true,
            Precision::Major => v.major == c.major,
            // Masterminds reads `~0.0.0` as "anything from 0.0.0 on" (npm would say <0.1.0).
            Precision::Patch if (c.major, c.minor, c.patch) == (0, 0, 0) => true,
            Precision::Minor | Precision::Patch => (v.major, v.minor) == (c.major, c.minor),
        }
    }

    /// `^` allows changes that do not touch the left-most non-zero part that was written.
    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        match self.precision {
            Precision::Any => true,
            Precision::Major => v.major == c.major,
            _ if c.major > 0 => v.major == c.major,
            _ if v.major > 0 => false,
            // `^0.3` and `^0.0` (which Masterminds reads as <0.1.0) keep the minor.
            Precision::Minor => v.minor == c.minor,
            _ if c.minor > 0 => v.minor == c.minor,
            _ if v.minor > 0 => false,
            _ => v.patch == c.patch,
        }
    }
}

/// semver's `Ord` looks at build metadata; ranges must not.
fn without_build(version: &Version) -> Cow<'_, Version> {
    if version.build.is_empty() {
        Cow::Borrowed(version)
    } else {
        Cow::Owned(Version {
            build: BuildMetadata::EMPTY,
            ..version.clone()
        })
    }
}
