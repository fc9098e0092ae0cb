//! What the agent's git tests (`git_workspace`, `git_https`, `git_ssh`) share: the file the
//! remote starts with, the edit that changes it, the identity the agent commits as, and reading
//! a push out of an [`Outcome`]. Helpers that need no agent type live in `ferry-tests`.

use std::path::Path;

use ferry_agent::git::{GitIdentity, Oid, Outcome};
use ferry_tests::ssh_signing::PRINCIPAL;

/// The file every remote starts with, holding [`V1`].
pub const FILE: &str = "apps/foo/deployment.yaml";
pub const V1: &str = "image: gcr.io/pipecd/foo:v1\n";
pub const V2: &str = "image: gcr.io/pipecd/foo:v2\n";

/// The agent's commit identity; its email is the SSH signing key's principal, so SSH-signed
/// commits verify against the allowed-signers file.
pub fn identity() -> GitIdentity {
    GitIdentity {
        name: "Ferry Agent".into(),
        email: PRINCIPAL.into(),
    }
}

/// An edit that sets `rel` to `content` and reports it only when the bytes changed.
pub fn set_file(
    rel: &'static str,
    content: &'static str,
) -> impl FnMut(&Path) -> std::io::Result<Vec<String>> {
    move |root| {
        let path = root.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content) {
            return Ok(vec![]);
        }
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, content)?;
        Ok(vec![rel.to_string()])
    }
}

/// The commit and the attempts of a push; panics on `NoChange`.
pub fn pushed(outcome: Outcome) -> (Oid, u32) {
    match outcome {
        Outcome::Pushed { commit, attempts } => (commit, attempts),
        Outcome::NoChange => panic!("expected a push, got NoChange"),
    }
}
