//! A throwaway OpenPGP signing key (Ed25519, no passphrase) in its own `GNUPGHOME`, and
//! `git verify-commit` against it. Ed25519 generation is instant; RSA would cost seconds.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::process::{require_tool, run, run_combined};

/// A generated key. Its `GNUPGHOME` (and the gpg-agent started in it) go away on drop.
pub struct GpgKey {
    home: TempDir,
    /// 40 upper-case hex digits.
    pub fingerprint: String,
    /// `gpg --export-secret-keys --armor`: what the agent is configured with.
    pub armored_secret_key: String,
    /// `gpg --export --armor`.
    pub armored_public_key: String,
    /// The user ID's name.
    pub name: String,
    /// The user ID's email.
    pub email: String,
}

impl GpgKey {
    /// Generates an Ed25519 signing key for `name <email>` in batch mode with
    /// `%no-protection`. Panics with gpg's output on failure.
    pub fn generate(name: &str, email: &str) -> GpgKey {
        require_tool("gpg");
        let home = tempfile::Builder::new()
            .prefix("ferry-gnupg-")
            .tempdir()
            .expect("creating a temp dir");
        let params = home.path().join("key-params");
        std::fs::write(
            &params,
            format!(
                "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n\
                 Name-Real: {name}\nName-Email: {email}\nExpire-Date: 0\n%commit\n"
            ),
        )
        .expect("writing gpg key parameters");
        let gpg = |args: &[&str]| -> Result<String> {
            run(Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--quiet"])
                .args(args))
        };
        let exported = (|| -> Result<(String, String, String)> {
            gpg(&["--gen-key", &params.to_string_lossy()])?;
            let listing = gpg(&["--with-colons", "--list-secret-keys", email])?;
            // The first `fpr` record follows `sec`: the primary key's fingerprint (field 10).
            let fingerprint = listing
                .lines()
                .find(|l| l.starts_with("fpr:"))
                .and_then(|l| l.split(':').nth(9))
                .filter(|f| f.len() == 40)
                .with_context(|| format!("no fingerprint in gpg listing:\n{listing}"))?
                .to_string();
            let secret = gpg(&["--armor", "--export-secret-keys", &fingerprint])?;
            let public = gpg(&["--armor", "--export", &fingerprint])?;
            Ok((fingerprint, secret, public))
        })();
        let (fingerprint, armored_secret_key, armored_public_key) =
            exported.unwrap_or_else(|e| panic!("generating a gpg key for {email}: {e:#}"));
        GpgKey {
            home,
            fingerprint,
            armored_secret_key,
            armored_public_key,
            name: name.into(),
            email: email.into(),
        }
    }

    /// The key's `GNUPGHOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `gpg --batch` with this key's `GNUPGHOME`.
    pub fn gpg_command(&self) -> Command {
        let mut cmd = Command::new(require_tool("gpg"));
        cmd.env("GNUPGHOME", self.home.path()).arg("--batch");
        cmd
    }

    /// [`crate::git::git_command`] set up to sign with this key: use `commit -S`.
    pub fn git_command(&self) -> Command {
        let mut cmd = crate::git::git_command();
        cmd.env("GNUPGHOME", self.home.path()).args([
            "-c",
            "gpg.program=gpg",
            "-c",
            &format!("user.signingkey={}", self.fingerprint),
        ]);
        cmd
    }

    /// `git verify-commit -v REV` in `repo_dir` trusting only this key; returns stdout and
    /// stderr together, which contain `Good signature from "NAME <EMAIL>"` on success.
    pub fn verify_commit(&self, repo_dir: &Path, rev: &str) -> Result<String> {
        run_combined(
            self.git_command()
                .current_dir(repo_dir)
                .args(["verify-commit", "-v", rev]),
        )
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        // gpg starts a gpg-agent per GNUPGHOME; stop it rather than leave it running on a
        // deleted directory. Best effort: gpgconf may be missing.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::git;

    #[test]
    fn signed_commit_verifies_and_unsigned_does_not() {
        let key = GpgKey::generate("Ferry Agent", "agent@ferry-tests.invalid");
        assert!(key
            .armored_secret_key
            .starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        assert!(
            key.fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            key.fingerprint
        );

        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "--quiet", "."]).unwrap();
        std::fs::write(repo.path().join("a.txt"), "a").unwrap();
        git(repo.path(), &["add", "a.txt"]).unwrap();
        run(key
            .git_command()
            .current_dir(repo.path())
            .args(["commit", "-S", "-m", "signed"]))
        .unwrap();
        let out = key.verify_commit(repo.path(), "HEAD").unwrap();
        assert!(
            out.contains("Good signature") && out.contains("agent@ferry-tests.invalid"),
            "{out}"
        );

        git(repo.path(), &["commit", "--allow-empty", "-m", "unsigned"]).unwrap();
        assert!(key.verify_commit(repo.path(), "HEAD").is_err());
    }
}
