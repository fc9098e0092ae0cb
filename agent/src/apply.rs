//! Applying releases to one repository: pick each target's tag with its policy, edit the files,
//! and make one signed commit for everything that changed.
//!
//! The plan is computed from the work tree as it is, so the push loop can recompute it on a new
//! tip after losing a race: concurrent human commits are kept, and our edits land on top.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::config::{combined_message, CommitVars};
use crate::edit::{self, EditOutcome, Release};
use crate::git::{self, Change, GitIdentity, Outcome, SigningKey, Workspace};
use crate::policy::Candidate;
use crate::targets::Target;

/// One published tag as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// Manifest digest.
    pub digest: String,
    /// The event that last moved it (publication order).
    pub seq: u64,
    /// Labels recorded at publish.
    pub labels: BTreeMap<String, String>,
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

/// Plans the edits for `targets` against the files under `root`.
pub fn plan(root: &Path, targets: &[&Target], table: &TagTable) -> Plan {
    let mut plan = Plan::default();
    for target in targets {
        let image = target.spec.image.to_string();
        let Some(tags) = table.get(&image) else {
            tracing::debug!(target = %target.describe(), "no published tags yet");
            continue;
        };
        let candidates: Vec<Candidate> = tags
            .iter()
            .map(|(tag, t)| Candidate {
                tag,
                digest: &t.digest,
                seq: t.seq,
            })
            .collect();
        let Some(chosen) = target.policy.choose(None, &candidates) else {
            tracing::info!(target = %target.describe(), "no published tag satisfies the policy");
            continue;
        };
        let path = match git::confine_path(root, &target.spec.file_path) {
            Ok(p) => p,
            Err(e) => {
                plan.errors.push(format!("{}: {e}", target.describe()));
                continue;
            }
        };
        // Several targets may edit one file: each sees the previous target's result.
        let current = match plan.files.get(&target.spec.file_path) {
            Some(c) => c.clone(),
            None => match std::fs::read(&path) {
                Ok(c) => c,
                Err(e) => {
                    plan.errors.push(format!(
                        "{}: reading {}: {e}",
                        target.describe(),
                        target.spec.file_path
                    ));
                    continue;
                }
            },
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
                let previous_tag = previous.as_deref().and_then(tag_of).map(str::to_string);
                if !target
                    .policy
                    .should_move(previous_tag.as_deref(), chosen.tag)
                {
                    tracing::info!(target = %target.describe(), current = ?previous_tag, candidate = chosen.tag, "not moving: the policy never moves a target to a lower version");
                    continue;
                }
                let labels = &tags[chosen.tag].labels;
                plan.files.insert(target.spec.file_path.clone(), content);
                plan.updates.push(CommitVars {
                    image: target.spec.image_raw.clone(),
                    tag: chosen.tag.to_string(),
                    digest: chosen.digest.to_string(),
                    previous_tag,
                    revision: labels.get("org.opencontainers.image.revision").cloned(),
                    file_path: target.spec.file_path.clone(),
                });
            }
            Err(e) => plan.errors.push(format!("{}: {e}", target.describe())),
        }
    }
    plan
}

/// Commits and pushes whatever `targets` need in `ws`, planned on the fresh tip the push loop
/// syncs to. Returns the push outcome and the errors of targets that could not be applied (they
/// do not stop the others).
pub fn apply_repo(
    ws: &mut Workspace,
    targets: &[&Target],
    table: &TagTable,
    identity: &GitIdentity,
    signing: Option<&SigningKey>,
) -> Result<(Outcome, Vec<String>), git::GitError> {
    let template = targets.iter().find_map(|t| t.commit_message.clone());
    let mut errors = Vec::new();
    let outcome = ws.commit_and_push_with(identity, signing, |root: &Path| {
        let p = plan(root, targets, table);
        errors = p.errors;
        if p.files.is_empty() {
            return Ok(None);
        }
        for (rel, content) in &p.files {
            std::fs::write(git::confine_path(root, rel)?, content)?;
        }
        Ok::<_, git::ApplyError>(Some(Change {
            paths: p.files.into_keys().collect(),
            message: combined_message(&p.updates, template.as_deref()),
        }))
    })?;
    Ok((outcome, errors))
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn tag_of_reads_the_tag_part() {
        assert_eq!(tag_of("gcr.io/acme/app:1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("127.0.0.1:5001/app:v1@sha256:abc"), Some("v1"));
        assert_eq!(tag_of("127.0.0.1:5001/app@sha256:abc"), None);
        assert_eq!(tag_of("1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("sha256:abc"), None);
    }
}
