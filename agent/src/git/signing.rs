//! Commit signing in pure Rust: OpenPGP detached signatures with rPGP, SSH signatures
//! (`sshsig`, namespace `git`) with ssh-key. Both produce the armored text git stores in a
//! commit's `gpgsig` header, so `git verify-commit` checks them with gpg or ssh-keygen.

use std::fmt;
use std::path::Path;

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::types::{KeyDetails, Password, SigningKey as _};

use super::error::GitError;

const PGP_PRIVATE: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";
const PGP_PUBLIC: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const OPENSSH_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
/// Older PEM encodings ssh-keygen can convert from (`ssh-keygen -p -f KEY` rewrites them).
const PEM_PRIVATE: [&str; 4] = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN EC PRIVATE KEY-----",
    "-----BEGIN DSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----",
];
/// The namespace git signs and verifies commits in (`ssh-keygen -Y sign -n git`).
const SSH_NAMESPACE: &str = "git";

/// A commit-signing key, loaded from the agent's `signingKeyFile`. Keys must be unencrypted:
/// the agent runs unattended and has nobody to ask for a passphrase.
///
/// `Debug` shows only the key's fingerprint, never secret material.
pub enum SigningKey {
    /// An OpenPGP transferable secret key. Signs with its newest signing-capable subkey, or
    /// with the primary key when there is none (what gpg does).
    OpenPgp(Box<SignedSecretKey>),
    /// An OpenSSH private key; signatures use SHA-512 in the `git` namespace.
    Ssh(Box<ssh_key::PrivateKey>),
}

impl SigningKey {
    /// Reads the key file at `path`, telling the format from its armor line: an armored OpenPGP
    /// secret key (`gpg --armor --export-secret-keys`) or an OpenSSH private key. Makes one
    /// signature to prove the key is usable, so a bad key fails here and not at the first push.
    pub fn load(path: &Path) -> Result<SigningKey, GitError> {
        let bytes = std::fs::read(path).map_err(|source| GitError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| GitError::KeyInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            invalid(
                "not a text file; give an armored OpenPGP secret key \
                 (gpg --armor --export-secret-keys) or an OpenSSH private key"
                    .into(),
            )
        })?;
        let key = if text.contains(PGP_PRIVATE) {
            load_openpgp(text).map_err(invalid)?
        } else if text.contains(OPENSSH_PRIVATE) {
            load_ssh(text).map_err(invalid)?
        } else if text.contains(PGP_PUBLIC) {
            return Err(invalid(
                "this is an OpenPGP public key; the agent needs the secret key \
                 (gpg --armor --export-secret-keys KEYID)"
                    .into(),
            ));
        } else if PEM_PRIVATE.iter().any(|armor| text.contains(armor)) {
            return Err(invalid(
                "PEM-encoded private keys are not supported; rewrite it in OpenSSH format \
                 with `ssh-keygen -p -f FILE`"
                    .into(),
            ));
        } else {
            return Err(invalid(format!(
                "unrecognised key format: expected a {PGP_PRIVATE:?} or {OPENSSH_PRIVATE:?} block"
            )));
        };
        key.sign(b"ferry signing key check")
            .map_err(|e| invalid(format!("cannot sign with it: {e}")))?;
        Ok(key)
    }

    /// Signs `commit_buffer` (a commit object without its `gpgsig` header, as made by
    /// `Repository::commit_create_buffer`). Returns the armored signature without a trailing
    /// newline, ready for `Repository::commit_signed`.
    pub fn sign(&self, commit_buffer: &[u8]) -> Result<String, GitError> {
        let fail = |reason: String| GitError::Sign {
            key: self.describe(),
            reason,
        };
        let armored = match self {
            SigningKey::OpenPgp(key) => {
                let signature = match signing_subkey(key) {
                    Some(subkey) => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &subkey.key,
                        &Password::empty(),
                        subkey.key.hash_alg(),
                        commit_buffer,
                    ),
                    None => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &key.primary_key,
                        &Password::empty(),
                        key.primary_key.hash_alg(),
                        commit_buffer,
                    ),
                }
                .map_err(|e| fail(e.to_string()))?;
                signature
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| fail(e.to_string()))?
            }
            SigningKey::Ssh(key) => {
                let signature = match key.key_data() {
                    ssh_key::private::KeypairData::Rsa(rsa) => {
                        sign_ssh_rsa(key, rsa, commit_buffer).map_err(fail)?
                    }
                    _ => key
                        .sign(SSH_NAMESPACE, ssh_key::HashAlg::Sha512, commit_buffer)
                        .map_err(|e| fail(e.to_string()))?,
                };
                signature
                    .to_pem(ssh_key::LineEnding::LF)
                    .map_err(|e| fail(e.to_string()))?
            }
        };
        // libgit2 indents every line after a '\n' into the header: a trailing newline would
        // leave a stray " " line inside the signature.
        Ok(armored.trim_end().to_string())
    }

    /// A one-line description for logs and errors: kind and fingerprint.
    pub fn describe(&self) -> String {
        match self {
            SigningKey::OpenPgp(key) => {
                format!("OpenPGP key {:X}", key.primary_key.fingerprint())
            }
            SigningKey::Ssh(key) => format!(
                "SSH {} key {}",
                key.algorithm(),
                key.fingerprint(ssh_key::HashAlg::Sha256)
            ),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SigningKey").field(&self.describe()).finish()
    }
}

fn load_openpgp(text: &str) -> Result<SigningKey, String> {
    let (key, _headers) = SignedSecretKey::from_string(text)
        .map_err(|e| format!("not a valid armored OpenPGP secret key: {e}"))?;
    let encrypted = match signing_subkey(&key) {
        Some(subkey) => subkey.key.secret_params().is_encrypted(),
        None if key.primary_key.algorithm().can_sign() => {
            key.primary_key.secret_params().is_encrypted()
        }
        None => {
            return Err(format!(
                "OpenPGP key {:X} has no signing-capable key",
                key.primary_key.fingerprint()
            ))
        }
    };
    if encrypted {
        return Err(format!(
            "OpenPGP key {:X} is passphrase-protected; the agent needs it without a passphrase \
             (remove it in a scratch GNUPGHOME with `gpg --passwd`, then export again)",
            key.primary_key.fingerprint()
        ));
    }
    Ok(SigningKey::OpenPgp(Box::new(key)))
}

/// The newest secret subkey bound with the "sign" flag, if any.
fn signing_subkey(key: &SignedSecretKey) -> Option<&pgp::composed::SignedSecretSubKey> {
    key.secret_subkeys
        .iter()
        .filter(|subkey| {
            subkey.key.algorithm().can_sign()
                && subkey.signatures.iter().any(|sig| sig.key_flags().sign())
        })
        .max_by_key(|subkey| subkey.key.created_at())
}

fn load_ssh(text: &str) -> Result<SigningKey, String> {
    let key = ssh_key::PrivateKey::from_openssh(text)
        .map_err(|e| format!("not a valid OpenSSH private key: {e}"))?;
    if key.is_encrypted() {
        return Err(
            "the OpenSSH key is passphrase-protected; the agent needs it without a passphrase \
             (`ssh-keygen -p -N '' -f FILE` on a copy)"
                .into(),
        );
    }
    Ok(SigningKey::Ssh(Box::new(key)))
}

/// An `rsa-sha2-512` SSH signature made with the rsa crate. ssh-key 0.6.7 builds the RSA
/// private key from the primes (p, p) instead of (p, q), so every RSA signature it makes fails
/// with "cryptographic error" (RustCrypto/SSH#217, fixed only in 0.7 pre-releases).
fn sign_ssh_rsa(
    key: &ssh_key::PrivateKey,
    keypair: &ssh_key::private::RsaKeypair,
    msg: &[u8],
) -> Result<ssh_key::SshSig, String> {
    use rsa::signature::{SignatureEncoding, Signer};
    use ssh_key::{Algorithm, HashAlg, SshSig};

    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(|| "the RSA key has a negative component".to_string())
    };
    let private = rsa::RsaPrivateKey::from_components(
        int(&keypair.public.n)?,
        int(&keypair.public.e)?,
        int(&keypair.private.d)?,
        vec![int(&keypair.private.p)?, int(&keypair.private.q)?],
    )
    .map_err(|e| format!("invalid RSA key: {e}"))?;
    let signed_data =
        SshSig::signed_data(SSH_NAMESPACE, HashAlg::Sha512, msg).map_err(|e| e.to_string())?;
    let raw = rsa::pkcs1v15::SigningKey::<ssh_key::sha2::Sha512>::new(private)
        .try_sign(&signed_data)
        .map_err(|e| format!("RSA signing failed: {e}"))?;
    let signature = ssh_key::Signature::new(
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        raw.to_vec(),
    )
    .map_err(|e| e.to_string())?;
    SshSig::new(
        key.public_key().key_data().clone(),
        SSH_NAMESPACE,
        HashAlg::Sha512,
        signature,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<SigningKey, GitError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, text).unwrap();
        SigningKey::load(&path)
    }

    fn invalid_reason(text: &str) -> String {
        match load_text(text) {
            Err(GitError::KeyInvalid { reason, .. }) => reason,
            other => panic!("expected KeyInvalid, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = SigningKey::load(Path::new("/nonexistent/ferry-key")).unwrap_err();
        assert!(matches!(err, GitError::KeyRead { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ferry-key"), "{err}");
    }

    #[test]
    fn garbage_is_an_unrecognised_format() {
        let reason = invalid_reason("hello, I am not a key\n");
        assert!(reason.contains("unrecognised key format"), "{reason}");
    }

    #[test]
    fn binary_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.gpg");
        std::fs::write(&path, [0x95, 0x01, 0xff, 0xfe, 0x00]).unwrap();
        let err = SigningKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a text file"), "{err}");
        assert!(err.to_string().contains("key.gpg"), "{err}");
    }

    #[test]
    fn corrupt_armor_is_a_parse_error() {
        let reason = invalid_reason(&format!(
            "{PGP_PRIVATE}\n\nbm90IGEga2V5\n-----END PGP PRIVATE KEY BLOCK-----\n"
        ));
        assert!(
            reason.contains("not a valid armored OpenPGP secret key"),
            "{reason}"
        );
        let reason = invalid_reason(&format!(
            "{OPENSSH_PRIVATE}\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n"
        ));
        assert!(
            reason.contains("not a valid OpenSSH private key"),
            "{reason}"
        );
    }

    #[test]
    fn public_and_pem_keys_say_what_to_do() {
        let reason = invalid_reason(&format!(
            "{PGP_PUBLIC}\n\n-----END PGP PUBLIC KEY BLOCK-----\n"
        ));
        assert!(reason.contains("--export-secret-keys"), "{reason}");
        let reason = invalid_reason(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        assert!(reason.contains("ssh-keygen -p"), "{reason}");
    }

    #[test]
    fn encrypted_ssh_key_is_refused_and_plain_one_signs() {
        use ferry_tests::process::{require_tool, run};
        let dir = tempfile::tempdir().unwrap();
        let keygen = |name: &str, passphrase: &str| {
            let path = dir.path().join(name);
            run(std::process::Command::new(require_tool("ssh-keygen"))
                .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "t", "-f"])
                .arg(&path))
            .unwrap();
            path
        };
        let err = SigningKey::load(&keygen("locked", "secret")).unwrap_err();
        assert!(err.to_string().contains("passphrase-protected"), "{err}");
        assert!(err.to_string().contains("locked"), "{err}");

        let key = SigningKey::load(&keygen("plain", "")).unwrap();
        assert!(
            key.describe().starts_with("SSH ssh-ed25519 key SHA256:"),
            "{key:?}"
        );
        let sig = key.sign(b"tree 0\n\nmsg\n").unwrap();
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"), "{sig}");
        assert!(sig.ends_with("-----END SSH SIGNATURE-----"), "{sig}");
    }

    #[test]
    fn ssh_signatures_verify_with_ssh_keygen_for_every_key_type() {
        use ferry_tests::process::{require_tool, run};
        let keygen = require_tool("ssh-keygen");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("commit");
        std::fs::write(
            &data,
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmsg\n",
        )
        .unwrap();
        for (kind, bits) in [
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("rsa", Some("2048")),
        ] {
            let path = dir.path().join(format!("id_{kind}"));
            let mut cmd = std::process::Command::new(&keygen);
            cmd.args(["-q", "-t", kind, "-N", "", "-C", "k", "-f"])
                .arg(&path);
            if let Some(bits) = bits {
                cmd.args(["-b", bits]);
            }
            run(&mut cmd).unwrap();
            let key = SigningKey::load(&path).unwrap();
            let sig_path = dir.path().join(format!("{kind}.sig"));
            let signature = key.sign(&std::fs::read(&data).unwrap()).unwrap();
            std::fs::write(&sig_path, format!("{signature}\n")).unwrap();
            let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
            let allowed = dir.path().join("allowed_signers");
            std::fs::write(&allowed, format!("k@test namespaces=\"git\" {public}")).unwrap();
            // `run` gives the child a null stdin; the message goes in through the shell.
            let out = run(std::process::Command::new("sh")
                .arg("-c")
                .arg(r#"exec "$0" -Y verify -n git -I k@test -f "$1" -s "$2" < "$3""#)
                .args([&keygen, &allowed, &sig_path, &data]))
            .unwrap_or_else(|e| panic!("{kind}: {e:#}"));
            assert!(out.contains("Good \"git\" signature"), "{kind}: {out}");
        }
    }

    #[test]
    fn encrypted_openpgp_key_is_refused() {
        use ferry_tests::process::{require_tool, run};
        let home = tempfile::tempdir().unwrap();
        let gpg = |args: &[&str]| {
            run(std::process::Command::new(require_tool("gpg"))
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--quiet", "--pinentry-mode", "loopback"])
                .args(["--passphrase", "secret"])
                .args(args))
            .unwrap()
        };
        gpg(&[
            "--quick-generate-key",
            "Locked <locked@ferry-tests.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        let armored = gpg(&[
            "--armor",
            "--export-secret-keys",
            "locked@ferry-tests.invalid",
        ]);
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", home.path())
            .args(["--kill", "all"])
            .output();
        let reason = invalid_reason(&armored);
        assert!(reason.contains("passphrase-protected"), "{reason}");
    }
}
