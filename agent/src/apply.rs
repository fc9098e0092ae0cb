//! Applying releases to one repository: pick each target's tag with its policy, edit the files,
//! and make one signed commit for everything that changed.
//!
//! The plan is computed from the work tree as it is, so the push loop can recompute it on a new
//! tip after losing a race: concurrent human commits are kept, and our edits land on top.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use ferry_proto::release::{self, NotARelease};

use crate::config::{branch_name, combined_message, digest_short, CommitVars};
use crate::edit::{self, EditOutcome, Release};
use crate::git::{self, Change, GitIdentity, Outcome, SigningKey, Workspace};
use crate::policy::Candidate;
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

/// Plans the edits for `targets` against the files under `root`.
pub fn plan(root: &Path, targets: &[&Target], table: &TagTable) -> Plan {
    let mut plan = Plan::default();
    for target in targets {
        plan_target(root, target, table, &mut plan);
    }
    plan
}

/// Adds what `target` needs to `plan`: an edit, an error, or a note saying why it stays.
fn plan_target(root: &Path, target: &Target, table: &TagTable, plan: &mut Plan) {
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
    let current = match current_content(root, target, plan) {
        Ok(c) => c,
        Err(e) => {
            plan.errors.push(format!("{}: {e}", target.describe()));
            return;
        }
    };
    let release = Release {
        image: &image,
        tag: chosen.tag,
        digest: chosen.digest,
    };
    match edit::apply(
        &current,
        &target.spec.kind,
        target.spec.format,
        &target.spec.image_raw,
        &release,
    ) {
        Ok(EditOutcome::Unchanged) => {
            tracing::debug!(target = %target.describe(), tag = chosen.tag, "already current");
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
            // `{{previous_tag}}` for a file that pinned only a digest: its short digest, so the
            // message still says what was replaced.
            let previous_for_message = previous_tag
                .or_else(|| previous.as_deref().and_then(short_digest_of))
                .map(str::to_string);
            let labels = &tags[chosen.tag].labels;
            plan.files.insert(target.spec.file_path.clone(), content);
            plan.updates.push(CommitVars {
                image: target.spec.image_raw.clone(),
                tag: chosen.tag.to_string(),
                digest: chosen.digest.to_string(),
                previous_tag: previous_for_message,
                revision: labels.get("org.opencontainers.image.revision").cloned(),
                file_path: target.spec.file_path.clone(),
            });
        }
        Err(e) => plan.errors.push(format!("{}: {e}", target.describe())),
    }
}

/// The file `target` edits: as an earlier target of this plan left it (several targets may edit
/// one file, each seeing the previous one's result), or as it is in the work tree.
fn current_content(root: &Path, target: &Target, plan: &Plan) -> Result<Vec<u8>, String> {
    if let Some(c) = plan.files.get(&target.spec.file_path) {
        return Ok(c.clone());
    }
    let path = git::confine_path(root, &target.spec.file_path).map_err(|e| e.to_string())?;
    std::fs::read(&path).map_err(|e| format!("reading {}: {e}", target.spec.file_path))
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
    table: &TagTable,
    identity: &GitIdentity,
    signing: Option<&SigningKey>,
    branch_template: Option<&str>,
) -> Result<Applied, git::GitError> {
    let template = targets.iter().find_map(|t| t.commit_message.clone());
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let outcome = ws.commit_and_push_with(identity, signing, |root: &Path| {
        let p = plan(root, targets, table);
        // Only the last plan counts: the push loop replans on a new tip after losing a race.
        errors = p.errors;
        notes = p.notes;
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
        for (rel, content) in &p.files {
            std::fs::write(git::confine_path(root, rel)?, content)?;
        }
        Ok::<_, git::ApplyError>(Some(Change {
            paths: p.files.into_keys().collect(),
            message: combined_message(&p.updates, template.as_deref()),
            branch,
        }))
    })?;
    Ok(Applied {
        outcome,
        errors,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageWatcherFile;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tag_of_reads_the_tag_part() {
        assert_eq!(tag_of("gcr.io/acme/app:1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("127.0.0.1:5001/app:v1@sha256:abc"), Some("v1"));
        assert_eq!(tag_of("127.0.0.1:5001/app@sha256:abc"), None);
        assert_eq!(tag_of("1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("sha256:abc"), None);
    }

    #[test]
    fn short_digest_of_reads_the_digest_part() {
        let pinned = format!("127.0.0.1:5001/app@sha256:{HEX}");
        assert_eq!(short_digest_of(&pinned), Some("0123456789ab"));
        assert_eq!(
            short_digest_of(&format!("sha256:{HEX}")),
            Some("0123456789ab")
        );
        assert_eq!(short_digest_of("app:1.2.3"), None);
    }

    /// A repository with `deployment.yaml` running `image`, and one target on it with `policy`
    /// (a YAML flow mapping, or empty for none).
    fn repo_with_target(image: &str, policy: &str) -> (tempfile::TempDir, Target) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("deployment.yaml"),
            format!("spec:\n  containers:\n    - name: app\n      image: {image}\n"),
        )
        .unwrap();
        let policy = if policy.is_empty() {
            String::new()
        } else {
            format!("      policy: {policy}\n")
        };
        let text = format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/app\n      provider: ferry\n      filePath: deployment.yaml\n      field: spec.containers[0].image\n{policy}");
        let file = ImageWatcherFile::parse(&text, ".pipe/w.yaml").unwrap();
        let spec = file.valid_targets().next().expect("a valid target").clone();
        let target = Target {
            repo_id: "config".into(),
            watcher_file: ".pipe/w.yaml".into(),
            policy: spec.policy.clone().unwrap_or_default(),
            spec,
            commit_message: None,
        };
        (dir, target)
    }

    fn table(tags: &[(&str, u64, &str, &str)]) -> TagTable {
        let mut image = BTreeMap::new();
        for (tag, seq, artifact_type, subject) in tags {
            image.insert(
                tag.to_string(),
                TagInfo {
                    digest: format!("sha256:{:064x}", seq),
                    seq: *seq,
                    artifact_type: artifact_type.to_string(),
                    subject: subject.to_string(),
                    ..TagInfo::default()
                },
            );
        }
        HashMap::from([("registry.example.com/app".to_string(), image)])
    }

    // Regression (issue 9): an SBOM or signature published with a tag after a release moved
    // targets without a policy ("latest published wins") onto the artifact.
    #[test]
    fn plan_picks_the_release_over_newer_artifact_tags() {
        let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "");
        let subject = format!("sha256:{HEX}");
        let cosign = format!("sha256-{HEX}.sig");
        let table = table(&[
            ("1.2.4", 1, "", ""),
            ("1.2.4-sbom", 2, "application/spdx+json", ""),
            ("1.2.4-sig", 3, "", &subject),
            (&cosign, 4, "", ""),
        ]);
        let plan = plan(dir.path(), &[&target], &table);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.updates.len(), 1, "{plan:?}");
        assert_eq!(plan.updates[0].tag, "1.2.4");
        let content = String::from_utf8(plan.files["deployment.yaml"].clone()).unwrap();
        assert!(
            content.contains("image: registry.example.com/app:1.2.4\n"),
            "{content}"
        );

        let passed: Vec<String> = plan.notes.iter().map(Note::to_string).collect();
        assert_eq!(passed.len(), 3, "{passed:?}");
        assert!(passed[0].contains("1.2.4-sbom") && passed[0].contains("application/spdx+json"));
        assert!(passed[1].contains("1.2.4-sig") && passed[1].contains(&subject));
        assert!(passed[2].contains(&cosign) && passed[2].contains("cosign"));
    }

    #[test]
    fn only_artifacts_move_nothing() {
        let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "");
        let table = table(&[("sbom", 5, "application/spdx+json", "")]);
        let plan = plan(dir.path(), &[&target], &table);
        assert!(plan.files.is_empty() && plan.updates.is_empty());
        assert!(matches!(&plan.notes[..], [Note::PassedOver { tag, .. }] if tag == "sbom"));
    }

    // Regression (issue 9): a target moving from a digest-only reference had an empty
    // {{previous_tag}}; it now names the short digest it left.
    #[test]
    fn previous_tag_falls_back_to_the_short_digest() {
        let (dir, target) = repo_with_target(&format!("registry.example.com/app@sha256:{HEX}"), "");
        let plan = plan(dir.path(), &[&target], &table(&[("1.2.4", 1, "", "")]));
        assert_eq!(plan.updates.len(), 1, "{plan:?}");
        assert_eq!(
            plan.updates[0].previous_tag.as_deref(),
            Some("0123456789ab")
        );
        let message = combined_message(&plan.updates, Some("from {{previous_tag}} to {{tag}}"));
        assert_eq!(message, "from 0123456789ab to 1.2.4");
    }

    #[test]
    fn a_target_kept_by_its_policy_says_why_once_per_release() {
        let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "{semver: '>=2'}");
        let first = plan(dir.path(), &[&target], &table(&[("1.2.4", 1, "", "")]));
        assert!(first.files.is_empty());
        let [note @ Note::Stays { .. }] = &first.notes[..] else {
            panic!("{:?}", first.notes)
        };
        let shown = note.to_string();
        assert!(
            shown.contains("deployment.yaml")
                && shown.contains("policy")
                && shown.contains("1.2.4"),
            "{shown}"
        );
        // Planned again (a resync) with nothing new: the same note, which the caller logs once.
        let again = plan(dir.path(), &[&target], &table(&[("1.2.4", 1, "", "")]));
        assert_eq!(again.notes, first.notes);
        // A new release is a new note.
        let newer = plan(
            dir.path(),
            &[&target],
            &table(&[("1.2.4", 1, "", ""), ("1.3.0", 2, "", "")]),
        );
        assert_ne!(newer.notes, first.notes);
    }

    #[test]
    fn a_target_never_moved_down_says_why() {
        let (dir, target) = repo_with_target("registry.example.com/app:1.5.0", "{semver: '<2'}");
        let plan = plan(dir.path(), &[&target], &table(&[("1.2.4", 1, "", "")]));
        assert!(plan.files.is_empty());
        let shown: Vec<String> = plan.notes.iter().map(Note::to_string).collect();
        assert!(
            matches!(&shown[..], [s] if s.contains("on 1.5.0") && s.contains("lower version")),
            "{shown:?}"
        );
    }
}
