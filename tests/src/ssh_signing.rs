//! A throwaway SSH signing key (`ssh-keygen -t ed25519`) and `git verify-commit` against it
//! through an allowed-signers file. Git reports success as
//! `Good "git" signature for PRINCIPAL with ED25519 key SHA256:…`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use tempfile::TempDir;

use crate::process::{require_tool, run, run_combined};

/// The principal written in the allowed-signers file.
pub const PRINCIPAL: &str = "agent@ferry-tests.invalid";

/// A generated key pair, deleted on drop.
pub struct SshKey {
    dir: TempDir,
    /// The private key file (mode 0600, OpenSSH format, no passphrase).
    pub private_key_path: PathBuf,
    /// The private key file's content.
    pub private_key: String,
    /// `ssh-ed25519 AAAA… COMMENT`, one line, no newline.
    pub public_key: String,
}

impl SshKey {
    /// Generates an Ed25519 key with no passphrase and an allowed-signers file trusting it
    /// as [`PRINCIPAL`] for git.
    pub fn generate() -> SshKey {
        let keygen = require_tool("ssh-keygen");
        let dir = tempfile::Builder::new()
            .prefix("ferry-ssh-")
            .tempdir()
            .expect("creating a temp dir");
        let private_key_path = dir.path().join("id_ed25519");
        run(Command::new(keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", PRINCIPAL, "-f"])
            .arg(&private_key_path))
        .unwrap_or_else(|e| panic!("ssh-keygen: {e:#}"));
        let read = |p: &Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        };
        let private_key = read(&private_key_path);
        let public_key = read(&private_key_path.with_extension("pub"))
            .trim()
            .to_string();
        std::fs::write(
            dir.path().join("allowed_signers"),
            format!("{PRINCIPAL} namespaces=\"git\" {public_key}\n"),
        )
        .expect("writing allowed_signers");
        SshKey {
            dir,
            private_key_path,
            private_key,
            public_key,
        }
    }

    /// The allowed-signers file trusting this key.
    pub fn allowed_signers_path(&self) -> PathBuf {
        self.dir.path().join("allowed_signers")
    }

    /// [`crate::git::git_command`] set up to sign (`commit -S`) and verify with this key.
    pub fn git_command(&self) -> Command {
        let mut cmd = crate::git::git_command();
        cmd.args(["-c", "gpg.format=ssh"])
            .arg("-c")
            .arg(format!(
                "user.signingkey={}",
                self.private_key_path.display()
            ))
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                self.allowed_signers_path().display()
            ));
        cmd
    }

    /// `git verify-commit REV` in `repo_dir` trusting only this key; returns stdout and
    /// stderr together (`Good "git" signature for …` on success).
    pub fn verify_commit(&self, repo_dir: &Path, rev: &str) -> Result<String> {
        run_combined(
            self.git_command()
                .current_dir(repo_dir)
                .args(["verify-commit", rev]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::git;

    #[test]
    fn ssh_signed_commit_verifies_and_other_key_does_not() {
        let key = SshKey::generate();
        assert!(
            key.public_key.starts_with("ssh-ed25519 "),
            "{}",
            key.public_key
        );
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "--quiet", "."]).unwrap();
        run(key.git_command().current_dir(repo.path()).args([
            "commit",
            "--allow-empty",
            "-S",
            "-m",
            "signed",
        ]))
        .unwrap();
        let out = key.verify_commit(repo.path(), "HEAD").unwrap();
        assert!(
            out.contains("Good \"git\" signature for agent@ferry-tests.invalid"),
            "{out}"
        );
        let stranger = SshKey::generate();
        assert!(stranger.verify_commit(repo.path(), "HEAD").is_err());
    }
}
