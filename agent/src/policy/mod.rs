//! Tag selection: which published tag a target should move to (docs/architecture.md §4, `policy:` of an
//! ImageWatcher target).
//!
//! - `semver`: a Masterminds-style range ([`semver_range`]); the highest satisfying version wins
//!   and a target never moves to a lower version than the one it is on.
//! - `tagPattern`: a regular expression the **whole** tag must match.
//! - Neither: the most recently published tag wins.
//!
//! Pure functions only: no I/O, so the reconcile path (all current tags) and the live-event path
//! (one new tag) share one set of rules.

pub mod semver_range;

#[cfg(test)]
mod tests;

use regex::Regex;
use semver::Version;

pub use semver_range::{parse_version, Range, RangeError, RangeProblem};

/// One published tag of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate<'a> {
    /// The tag, e.g. `v1.2.3`.
    pub tag: &'a str,
    /// The manifest digest the tag points at.
    pub digest: &'a str,
    /// Order of publication (the event seq): higher is more recent.
    pub seq: u64,
}

/// A target's validated tag policy. The default accepts every tag and follows the newest.
/// Two policies are equal when they were written the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    semver: Option<Range>,
    tag_pattern: Option<TagPattern>,
}

/// Why a policy was refused. Messages name the offending value; the config layer adds the file
/// and target.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `policy.semver` is not a valid range.
    #[error(transparent)]
    Semver(#[from] RangeError),
    /// `policy.tagPattern` is not a valid regular expression.
    #[error("invalid tagPattern {pattern:?}: {error}")]
    TagPattern {
        /// The pattern as written.
        pattern: String,
        /// What the regex parser said.
        error: regex::Error,
    },
    /// `policy.tagPattern` is empty, which would match no tag at all.
    #[error("tagPattern is empty: it would match no tag; leave it out to accept every tag")]
    EmptyTagPattern,
}

/// A user pattern and its anchored form.
#[derive(Debug, Clone)]
struct TagPattern {
    source: String,
    anchored: Regex,
}

/// The anchored form follows from the source.
impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TagPattern {}

impl Policy {
    /// Validates a policy as written in an ImageWatcher file (`semver`, `tagPattern`).
    ///
    /// `tag_pattern` must match the whole tag: `main-[0-9a-f]{7}` accepts `main-abc1234` but not
    /// `main-abc1234-debug`. Flux's `filterTags.pattern` and Argo CD's `regexp:` match anywhere in
    /// the tag instead; we anchor because a pattern that matches too little leaves a target where
    /// it is, while one that matches too much deploys something nobody asked for. Write
    /// `^main-.*` (or `.*-rc.*`) where a prefix or substring is meant. `^` and `$` are harmless.
    pub fn new(semver: Option<&str>, tag_pattern: Option<&str>) -> Result<Policy, PolicyError> {
        let semver = semver.map(Range::parse).transpose()?;
        let tag_pattern = tag_pattern.map(TagPattern::new).transpose()?;
        Ok(Policy {
            semver,
            tag_pattern,
        })
    }

    /// The semver range, if the policy has one.
    pub fn semver(&self) -> Option<&Range> {
        self.semver.as_ref()
    }

    /// The tag pattern as written, if the policy has one.
    pub fn tag_pattern(&self) -> Option<&str> {
        self.tag_pattern.as_ref().map(|p| p.source.as_str())
    }

    /// Whether a target may ever sit on `tag`: it matches the pattern (if any) and, with a semver
    /// range, is a version inside it (`latest` never is).
    pub fn accepts(&self, tag: &str) -> bool {
        match &self.semver {
            None => self.matches_pattern(tag),
            Some(range) => self.accepted_version(range, tag).is_some(),
        }
    }

    /// Picks the tag a target should be on, given its current tag (if it has one) and every
    /// published tag of its image. `None` means stay.
    ///
    /// - With a semver range: the highest version that the policy accepts. Among tags of equal
    ///   version (`1.4` and `1.4.0`) the current tag is kept, so a target does not flap between
    ///   spellings; otherwise the most recently published wins. When the current tag is itself a
    ///   version, the pick must be higher than it, or be the current tag itself; a lower version
    ///   is never chosen, even when the current one is outside the range.
    /// - Without: the most recently published (highest `seq`) accepted tag.
    ///
    /// The current tag may come back: a tag re-published at a new digest still needs its digest
    /// written for `format: digest`. Comparing with what the file holds is the caller's job.
    pub fn choose<'a>(
        &self,
        current_tag: Option<&str>,
        candidates: &[Candidate<'a>],
    ) -> Option<Candidate<'a>> {
        let Some(range) = &self.semver else {
            return candidates
                .iter()
                .filter(|c| self.matches_pattern(c.tag))
                .max_by_key(|c| c.seq)
                .copied();
        };
        let is_current = |c: &Candidate<'_>| Some(c.tag) == current_tag;
        let (version, best) = candidates
            .iter()
            .filter_map(|c| Some((self.accepted_version(range, c.tag)?, *c)))
            .max_by(|(v1, c1), (v2, c2)| {
                v1.cmp(v2)
                    .then_with(|| is_current(c1).cmp(&is_current(c2)))
                    .then_with(|| c1.seq.cmp(&c2.seq))
            })?;
        match current_tag.and_then(parse_version) {
            Some(current) if version <= current && !is_current(&best) => None,
            _ => Some(best),
        }
    }

    /// The live-event path: should a target on `current_tag` move to `new_tag`, which was just
    /// published (so it is the newest tag)? Agrees with [`Policy::choose`] when the target already
    /// sits where `choose` put it: with a semver range, only a strictly higher version (or the
    /// current tag itself, re-published) moves it; without one, any accepted tag does.
    pub fn should_move(&self, current_tag: Option<&str>, new_tag: &str) -> bool {
        let Some(range) = &self.semver else {
            return self.matches_pattern(new_tag);
        };
        let Some(new_version) = self.accepted_version(range, new_tag) else {
            return false;
        };
        match current_tag {
            None => true,
            Some(current) => {
                new_tag == current || parse_version(current).is_none_or(|c| new_version > c)
            }
        }
    }

    fn matches_pattern(&self, tag: &str) -> bool {
        self.tag_pattern
            .as_ref()
            .is_none_or(|pattern| pattern.anchored.is_match(tag))
    }

    /// The version `tag` stands for, if it is one that `range` and the pattern accept.
    fn accepted_version(&self, range: &Range, tag: &str) -> Option<Version> {
        let version = parse_version(tag).filter(|v| range.matches(v))?;
        self.matches_pattern(tag).then_some(version)
    }
}

impl TagPattern {
    fn new(pattern: &str) -> Result<TagPattern, PolicyError> {
        if pattern.is_empty() {
            return Err(PolicyError::EmptyTagPattern);
        }
        let invalid = |error| PolicyError::TagPattern {
            pattern: pattern.to_owned(),
            error,
        };
        // Compiled alone first: `a)|(b` is invalid, but wrapped it would compile into something
        // else. After this check the wrapper can only fail if the pattern ends inside a `(?x)`
        // comment, which swallows the closing `)$`; a newline ends the comment (and is ignored in
        // that mode).
        Regex::new(pattern).map_err(invalid)?;
        let anchored = Regex::new(&format!("^(?:{pattern})$"))
            .or_else(|_| Regex::new(&format!("^(?:{pattern}\n)$")))
            .map_err(invalid)?;
        Ok(TagPattern {
            source: pattern.to_owned(),
            anchored,
        })
    }
}
