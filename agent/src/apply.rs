//! Applying releases to one repository: pick each tag target's tag with its policy and each
//! ring target's ring pointer, edit the files, and make one signed commit for everything that
//! changed. Planning also says, per target, which digest its file holds (for reports).
//!
//! The plan is computed from the files of the branch tip ([`TreeFiles`]), so the push loop can
//! recompute it on a new tip after losing a race: concurrent human commits are kept, and our
//! edits land on top.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ferry_proto::release::{self, NotARelease};

use crate::config::{branch_name, combined_message, digest_short, CommitVars, Format, RingFollow};
use crate::edit::{self, EditOutcome, Release};
use crate::git::{self, Change, GitIdentity, Outcome, SigningKey, TreeFiles, Workspace};
use crate::policy::Candidate;
use crate::rings::{RingTable, VERSION_LABEL};

use crate::targets::Target;

/// One published tag as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagInfo {
    /// Manifest digest.
    pub digest: String,
    /// The event that last moved it (publication order).
    pub seq: u64,
    /// Labels recorded at publish.
    pub labels: BTreeMap<String, String>,
    /// OCI 1.1 `artifactType` of the manifest; empty for container images.
    pub artifact_type: String,
    /// OCI 1.1 `subject` digest of the manifest; empty when it refers to nothing.
    pub subject: String,
    /// When the tag moved to this digest, in ms since the epoch (the server's clock).
    pub published_at_ms: i64,
}

impl TagInfo {
    /// Whether `tag` (this tag's name) is a release a target may move to: signatures, SBOMs and
    /// other artifacts published with a tag never are, whatever the policy.
    pub fn release_check(&self, tag: &str) -> Result<(), NotARelease> {
        release::check(tag, Some(&self.artifact_type), Some(&self.subject))
    }
}

/// Normalised image name → tag → state.
pub type TagTable = HashMap<String, BTreeMap<String, TagInfo>>;

/// What the agent knows of the server: tags for tag targets, ring pointers for ring targets.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Current tags of the watched images.
    pub tags: TagTable,
    /// Current ring pointers of the images ring targets watch.
    pub rings: RingTable,
}

impl Known {
    /// When `digest` of `image` was last published under a tag the agent knows, in ms since
    /// the epoch: the start of the publish → pushed latency.
    pub fn published_at_ms(&self, image: &str, digest: &str) -> Option<i64> {
        self.tags
            .get(image)?
            .values()
            .filter(|t| t.digest == digest && t.published_at_ms > 0)
            .map(|t| t.published_at_ms)
            .max()
    }
}

/// What planning found a target's file to hold. A target planning says nothing about (no
/// release yet, an empty ring, kept by its policy) has no verdict: its last one stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file holds this digest, or will once the plan is committed (`edited`).
    Holds {
        /// The manifest digest written or found.
        digest: String,
        /// Whether this plan edits the file to hold it.
        edited: bool,
    },
    /// The target could not be applied: why.
    Failed(String),
}

/// What planning found: the new content of each edited file, the updates that produced it, and
/// why other targets did not move.
#[derive(Debug, Default)]
pub struct Plan {
    /// Repo-relative path → new bytes (after every target that edits the file).
    pub files: BTreeMap<String, Vec<u8>>,
    /// One entry per target that moved, for the commit message.
    pub updates: Vec<CommitVars>,
    /// Targets that could not be applied, with the reason (missing path, file outside the repo…).
    pub errors: Vec<String>,
    /// Why tags were passed over and targets stayed where they are. The same notes come back on
    /// every plan until a new release arrives, so the caller logs each one once.
    pub notes: Vec<Note>,
    /// Target key ([`Target::key`]) → what its file holds or why it failed.
    pub verdicts: BTreeMap<String, Verdict>,
}

impl Plan {
    /// Records that `target` failed, for the log and for its report.
    fn fail(&mut self, target: &Target, why: String) {
        self.errors.push(format!("{}: {why}", target.describe()));
        self.verdicts.insert(target.key(), Verdict::Failed(why));
    }

    fn holds(&mut self, target: &Target, digest: &str, edited: bool) {
        let digest = digest.to_string();
        self.verdicts
            .insert(target.key(), Verdict::Holds { digest, edited });
    }
}

/// Something the user may wonder about ("why did my target not move?"), logged once at info.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Note {
    /// A tag is not a release (a signature, attestation, SBOM…): no target moves to it.
    PassedOver {
        /// The image, normalised.
        image: String,
        /// The tag passed over.
        tag: String,
        /// Its digest: the same tag re-published is noted again.
        digest: String,
        /// Why, as [`NotARelease`] says it.
        reason: String,
    },
    /// A target's policy keeps it where it is although releases exist.
    Stays {
        /// The target, as [`Target::describe`] names it.
        target: String,
        /// The most recently published release, the one the user is likely waiting for.
        newest: String,
        /// Its seq: each new release is noted once.
        newest_seq: u64,
        /// Why it stays.
        reason: String,
    },
    /// A ring target's ring holds nothing for its image (yet, or any more): its file stays.
    RingEmpty {
        /// The target, as [`Target::describe`] names it.
        target: String,
        /// The ring it follows.
        ring: String,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::PassedOver {
                image, tag, reason, ..
            } => write!(f, "tag {tag} of {image} passed over: {reason}"),
            Note::Stays {
                target,
                newest,
                reason,
                ..
            } => write!(f, "{target} stays: {reason} (newest release: {newest})"),
            Note::RingEmpty { target, ring } => write!(
                f,
                "{target} stays: ring {ring} points at nothing for its image"
            ),
        }
    }
}

/// The tag part of an image reference as a file writes it (`app:1.2@sha256:…` → `1.2`), or the
/// value itself when it is a bare tag (Kustomize `newTag`, Helm `image.tag`).
fn tag_of(previous: &str) -> Option<&str> {
    let without_digest = previous.split('@').next().unwrap_or(previous);
    if without_digest.is_empty() || without_digest.starts_with("sha256:") {
        return None;
    }
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => Some(&without_digest[last_slash + i + 1..]),
        None if last_slash == 0 && !previous.contains('@') => Some(without_digest),
        None => None,
    }
}

/// The digest part of what a file held (`app@sha256:…`, or a bare `sha256:…`), shortened to 12
/// hex digits for `{{previous_tag}}` when the file pinned no tag.
fn short_digest_of(previous: &str) -> Option<&str> {
    let digest = previous.rsplit('@').next().unwrap_or(previous);
    digest
        .starts_with("sha256:")
        .then(|| digest_short(digest))
        .filter(|d| !d.is_empty())
}

/// The releases among `tags`; every other tag becomes a [`Note::PassedOver`] in `notes`.
fn releases<'a>(
    image: &str,
    tags: &'a BTreeMap<String, TagInfo>,
    notes: &mut Vec<Note>,
) -> Vec<Candidate<'a>> {
    let mut candidates = Vec::with_capacity(tags.len());
    for (tag, t) in tags {
        match t.release_check(tag) {
            Ok(()) => candidates.push(Candidate {
                tag,
                digest: &t.digest,
                seq: t.seq,
            }),
            Err(why) => notes.push(Note::PassedOver {
                image: image.to_string(),
                tag: tag.clone(),
                digest: t.digest.clone(),
                reason: why.to_string(),
            }),
        }
    }
    candidates
}

/// A [`Note::Stays`] for `target`, naming the newest of `candidates`.
fn stays(target: &Target, candidates: &[Candidate<'_>], reason: String) -> Option<Note> {
    let newest = candidates.iter().max_by_key(|c| c.seq)?;
    Some(Note::Stays {
        target: target.describe(),
        newest: newest.tag.to_string(),
        newest_seq: newest.seq,
        reason,
    })
}

/// Plans the edits for `targets` against the files of `tip`.
pub fn plan(tip: &TreeFiles<'_>, targets: &[&Target], known: &Known) -> Plan {
    let mut plan = Plan::default();
    for target in targets {
        match &target.spec.ring {
            Some(follow) => plan_ring_target(tip, target, follow, &known.rings, &mut plan),
            None => plan_tag_target(tip, target, &known.tags, &mut plan),
        }
    }
    plan
}

/// Adds what a ring target needs to `plan`: what its ring points at, moved back or forward
/// alike (the ring is the authority), or nothing when the ring is empty.
fn plan_ring_target(
    tip: &TreeFiles<'_>,
    target: &Target,
    follow: &RingFollow,
    rings: &RingTable,
    plan: &mut Plan,
) {
    let image = target.spec.image.to_string();
    let pointer = match rings.resolve(&image, follow) {
        Ok(Some(p)) => p,
        Ok(None) => {
            plan.notes.push(Note::RingEmpty {
                target: target.describe(),
                ring: follow.ring.clone(),
            });
            return;
        }
        Err(why) => return plan.fail(target, why),
    };
    let info = pointer.info;
    let format = target.spec.format;
    if format != Format::Digest && info.tag.is_empty() {
        let why = format!(
            "ring {} of pipeline {} points at {}, which has no tag, and format {format} writes one: publish the digest with a tag, or set format: digest",
            pointer.ring, pointer.pipeline, info.digest
        );
        return plan.fail(target, why);
    }
    let release = Release {
        image: &image,
        tag: &info.tag,
        digest: &info.digest,
    };
    match edit_target(tip, target, plan, &release) {
        Ok(EditOutcome::Unchanged) => plan.holds(target, &info.digest, false),
        Ok(EditOutcome::Changed { content, previous }) => {
            plan.files.insert(target.spec.file_path.clone(), content);
            plan.updates.push(CommitVars {
                image: target.spec.image_raw.clone(),
                tag: info.tag.clone(),
                digest: info.digest.clone(),
                previous_tag: previous_for_message(previous.as_deref()),
                revision: None,
                file_path: target.spec.file_path.clone(),
                ring: Some(pointer.ring.to_string()),
                version: Some(info.version.clone()).filter(|v| !v.is_empty()),
            });
            plan.holds(target, &info.digest, true);
        }
        Err(why) => plan.fail(target, why),
    }
}

/// `{{previous_tag}}`: the tag the file had, or for a file that pinned only a digest its short
/// digest, so the message still says what was replaced.
fn previous_for_message(previous: Option<&str>) -> Option<String> {
    previous
        .and_then(tag_of)
        .or_else(|| previous.and_then(short_digest_of))
        .map(str::to_string)
}

/// Writes `release` into the file `target` edits, as this plan has it so far.
fn edit_target(
    tip: &TreeFiles<'_>,
    target: &Target,
    plan: &Plan,
    release: &Release<'_>,
) -> Result<EditOutcome, String> {
    let current = current_content(tip, target, plan)?;
    edit::apply(
        &current,
        &target.spec.kind,
        target.spec.format,
        &target.spec.image_raw,
        release,
    )
    .map_err(|e| e.to_string())
}

/// Adds what a tag target needs to `plan`: an edit, an error, or a note saying why it stays.
fn plan_tag_target(tip: &TreeFiles<'_>, target: &Target, table: &TagTable, plan: &mut Plan) {
    let image = target.spec.image.to_string();
    let Some(tags) = table.get(&image) else {
        tracing::debug!(target = %target.describe(), "no published tags yet");
        return;
    };
    let candidates = releases(&image, tags, &mut plan.notes);
    let Some(chosen) = target.policy.choose(None, &candidates) else {
        plan.notes.extend(stays(
            target,
            &candidates,
            "no release satisfies its policy".into(),
        ));
        return;
    };
    let release = Release {
        image: &image,
        tag: chosen.tag,
        digest: chosen.digest,
    };
    match edit_target(tip, target, plan, &release) {
        Ok(EditOutcome::Unchanged) => {
            tracing::debug!(target = %target.describe(), tag = chosen.tag, "already current");
            plan.holds(target, chosen.digest, false);
        }
        Ok(EditOutcome::Changed { content, previous }) => {
            let previous_tag = previous.as_deref().and_then(tag_of);
            if !target.policy.should_move(previous_tag, chosen.tag) {
                let reason = format!(
                    "it is on {}, and its policy never moves a target to a lower version than {}",
                    previous_tag.unwrap_or("?"),
                    chosen.tag
                );
                plan.notes.extend(stays(target, &candidates, reason));
                return;
            }
            let labels = &tags[chosen.tag].labels;
            plan.files.insert(target.spec.file_path.clone(), content);
            plan.updates.push(CommitVars {
                image: target.spec.image_raw.clone(),
                tag: chosen.tag.to_string(),
                digest: chosen.digest.to_string(),
                previous_tag: previous_for_message(previous.as_deref()),
                revision: labels.get("org.opencontainers.image.revision").cloned(),
                file_path: target.spec.file_path.clone(),
                ring: None,
                version: labels.get(VERSION_LABEL).cloned(),
            });
            plan.holds(target, chosen.digest, true);
        }
        Err(why) => plan.fail(target, why),
    }
}

/// The file `target` edits: as an earlier target of this plan left it (several targets may edit
/// one file, each seeing the previous one's result), or as it is at the tip. A path that
/// breaks the confinement rules, a missing file and a symlink are errors naming the path.
fn current_content(tip: &TreeFiles<'_>, target: &Target, plan: &Plan) -> Result<Vec<u8>, String> {
    if let Some(c) = plan.files.get(&target.spec.file_path) {
        return Ok(c.clone());
    }
    tip.read(&target.spec.file_path).map_err(|e| e.to_string())
}

/// What [`apply_repo`] did for one repository.
#[derive(Debug)]
pub struct Applied {
    /// Whether a commit was pushed.
    pub outcome: Outcome,
    /// Targets that could not be applied, with the reason; they do not stop the others.
    pub errors: Vec<String>,
    /// Why tags were passed over and targets stayed (see [`Plan::notes`]).
    pub notes: Vec<Note>,
    /// Target key → what its file now holds on the base branch, or why it failed. Targets
    /// with nothing new to say are absent.
    pub facts: BTreeMap<String, Fact>,
}

/// What a target's file holds after an apply, or why it failed: what reports say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// This apply pushed `commit`, after which the file holds `digest`.
    Applied {
        /// The digest written.
        digest: String,
        /// The commit pushed.
        commit: String,
        /// When it was pushed, in ms since the epoch.
        at_ms: i64,
    },
    /// The file was found holding `digest` at `commit`, the tip checked.
    Verified {
        /// The digest found.
        digest: String,
        /// The base tip the file was read at.
        commit: String,
        /// The commit's time, in ms since the epoch.
        at_ms: i64,
    },
    /// The target could not be applied: why.
    Failed(String),
}

/// Turns the last plan's verdicts into facts about the base branch. In branch mode an edit only
/// reaches a push branch, so the base (what runs) still holds what it held: no fact.
fn facts(
    ws: &Workspace,
    verdicts: BTreeMap<String, Verdict>,
    outcome: Outcome,
) -> Result<BTreeMap<String, Fact>, git::GitError> {
    let branch_mode = ws.push_settings().to.is_branch_mode();
    let tip = ws.head()?;
    let tip_ms = ws.commit_time_ms(tip)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut out = BTreeMap::new();
    for (key, verdict) in verdicts {
        let fact = match (verdict, outcome) {
            (Verdict::Failed(why), _) => Fact::Failed(why),
            (Verdict::Holds { edited: true, .. }, _) if branch_mode => continue,
            (
                Verdict::Holds {
                    digest,
                    edited: true,
                },
                Outcome::Pushed { commit, .. },
            ) => Fact::Applied {
                digest,
                commit: commit.to_string(),
                at_ms: now_ms,
            },
            // Not edited, or the edit rewrote identical bytes (nothing to commit): the tip
            // holds it already.
            (Verdict::Holds { digest, .. }, _) => Fact::Verified {
                digest,
                commit: tip.to_string(),
                at_ms: tip_ms,
            },
        };
        out.insert(key, fact);
    }
    Ok(out)
}

/// Commits and pushes whatever `targets` need in `ws`, planned on the fresh tip the push loop
/// syncs to (the base branch tip, in branch mode too: the base is what runs).
///
/// `branch_template` (`push.branchTemplate`, with `ws` set to push per change) names the push
/// branch of this batch from its first update. A name it cannot give is a target error, like
/// a file that cannot be edited: nothing is pushed, and the other repositories carry on.
pub fn apply_repo(
    ws: &mut Workspace,
    targets: &[&Target],
    known: &Known,
    identity: &GitIdentity,
    signing: Option<&SigningKey>,
    branch_template: Option<&str>,
) -> Result<Applied, git::GitError> {
    let template = targets.iter().find_map(|t| t.commit_message.clone());
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut verdicts = BTreeMap::new();
    let outcome = ws.commit_and_push_with(identity, signing, |tip: &TreeFiles<'_>| {
        let p = plan(tip, targets, known);
        // Only the last plan counts: the push loop replans on a new tip after losing a race.
        errors = p.errors;
        notes = p.notes;
        verdicts = p.verdicts;
        if p.files.is_empty() {
            return Ok(None);
        }
        let branch = match branch_template {
            Some(template) => match branch_name(template, &p.updates[0]) {
                Ok(name) => Some(name),
                Err(e) => {
                    errors.push(e);
                    return Ok(None);
                }
            },
            None => None,
        };
        Ok::<_, git::ApplyError>(Some(Change {
            files: p.files.into_iter().map(|(rel, c)| (rel, Some(c))).collect(),
            message: combined_message(&p.updates, template.as_deref()),
            branch,
        }))
    })?;
    Ok(Applied {
        facts: facts(ws, verdicts, outcome)?,
        outcome,
        errors,
        notes,
    })
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
