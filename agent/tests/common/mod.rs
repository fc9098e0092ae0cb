//! What the agent's git tests (`git_workspace`, `git_https`, `git_ssh`) share: the file the
//! remote starts with, the edit that changes it, the identity the agent commits as, and reading
//! a push out of an [`Outcome`]. Helpers that need no agent type live in `ferry-tests`.

use ferry_agent::git::{Files, GitIdentity, Oid, Outcome, TreeFiles};
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
) -> impl FnMut(&TreeFiles<'_>) -> std::io::Result<Files> {
    move |tip| {
        if tip.read(rel).ok().as_deref() == Some(content.as_bytes()) {
            return Ok(Files::new());
        }
        Ok(Files::from([(
            rel.to_string(),
            Some(content.as_bytes().to_vec()),
        )]))
    }
}

/// `rel` at the workspace's tip, as text.
// Not every test file reads the tip directly.
#[allow(dead_code)]
pub fn tip_file(ws: &ferry_agent::git::Workspace, rel: &str) -> String {
    String::from_utf8(ws.files().unwrap().read(rel).unwrap()).unwrap()
}

/// The commit and the attempts of a push; panics on `NoChange`.
pub fn pushed(outcome: Outcome) -> (Oid, u32) {
    match outcome {
        Outcome::Pushed { commit, attempts } => (commit, attempts),
        Outcome::NoChange => panic!("expected a push, got NoChange"),
    }
}
