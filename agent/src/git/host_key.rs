//! SSH host keys. libgit2 (its libssh2 transport) checks the key an `ssh://` server shows
//! against `$HOME/.ssh/known_hosts` (plain, `[host]:port` and hashed `|1|…` entries), and
//! refuses an unknown or changed key before offering any credential. Its error says only
//! "invalid or unknown remote ssh hostkey", so the key shown is recorded here, to name the
//! host, the fingerprint and the file in a [`GitError::HostKeyRejected`].

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use git2::{CertificateCheckStatus, ErrorClass, ErrorCode, RemoteCallbacks};

use super::error::GitError;

/// The host key an `ssh://` server showed during one fetch or push.
#[derive(Debug, Default)]
pub(crate) struct SeenHostKey(RefCell<Option<Seen>>);

#[derive(Debug)]
struct Seen {
    host: String,
    /// `ssh-ed25519 SHA256:…`
    key: String,
}

impl SeenHostKey {
    /// Makes `callbacks` record the host key a server shows, leaving the verdict to libgit2
    /// (known_hosts for `ssh://`, the CA store for `https://`).
    pub(crate) fn watch<'a>(&'a self, callbacks: &mut RemoteCallbacks<'a>) {
        callbacks.certificate_check(move |cert, host| {
            if let Some(key) = cert.as_hostkey() {
                let kind = key.hostkey_type().map_or("unknown", |kind| kind.name());
                let fingerprint = key.hash_sha256().map_or_else(
                    || "(no SHA256 fingerprint)".to_string(),
                    |hash| ssh_key::Fingerprint::Sha256(*hash).to_string(),
                );
                *self.0.borrow_mut() = Some(Seen {
                    host: host.to_string(),
                    key: format!("{kind} {fingerprint}"),
                });
            }
            Ok(CertificateCheckStatus::CertificatePassthrough)
        });
    }

    /// `error` as [`GitError::HostKeyRejected`] if it is libgit2 refusing the host key seen
    /// here, otherwise `otherwise(error)`.
    pub(crate) fn explain(
        &self,
        url: &str,
        remote: &str,
        error: git2::Error,
        otherwise: impl FnOnce(git2::Error) -> GitError,
    ) -> GitError {
        let refused = error.code() == ErrorCode::Certificate && error.class() == ErrorClass::Ssh;
        match self.0.borrow().as_ref() {
            Some(seen) if refused => GitError::HostKeyRejected {
                remote: remote.to_string(),
                host: known_hosts_name(url, &seen.host),
                key: seen.key.clone(),
                known_hosts: known_hosts_file(),
            },
            _ => otherwise(error),
        }
    }
}

/// `host` as known_hosts (and `ssh-keyscan`) spell it for `url`: `[host]:port` off port 22.
fn known_hosts_name(url: &str, host: &str) -> String {
    let port = url
        .split_once("://")
        .and_then(|(_, rest)| {
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            host_port.rsplit_once(':')
        })
        .and_then(|(_, port)| port.parse::<u16>().ok());
    match port {
        Some(port) if port != 22 => format!("[{host}]:{port}"),
        _ => host.to_string(),
    }
}

/// The file libgit2 read: it takes `$HOME` once, when it initialises, and the agent never
/// changes `HOME`.
fn known_hosts_file() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".ssh/known_hosts"),
        // libssh2 then trusts no host at all.
        None => PathBuf::from("$HOME/.ssh/known_hosts ($HOME is not set)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_names_carry_the_port_off_22() {
        let name = known_hosts_name;
        assert_eq!(
            name("ssh://git@127.0.0.1:2222/srv/config.git", "127.0.0.1"),
            "[127.0.0.1]:2222"
        );
        assert_eq!(name("ssh://git@[::1]:2222/config.git", "::1"), "[::1]:2222");
        assert_eq!(
            name("ssh://git@git.example.com:22/config.git", "git.example.com"),
            "git.example.com"
        );
        assert_eq!(name("ssh://[::1]/config.git", "::1"), "::1");
        assert_eq!(
            name("git@github.com:org/config.git", "github.com"),
            "github.com"
        );
    }

    #[test]
    fn only_a_refused_seen_host_key_is_explained() {
        let url = "ssh://git@127.0.0.1:2222/config.git";
        let refusal = || {
            git2::Error::new(
                ErrorCode::Certificate,
                ErrorClass::Ssh,
                "invalid or unknown remote ssh hostkey",
            )
        };
        let fallback = |source| GitError::Fetch {
            remote: url.into(),
            branch: "main".into(),
            source,
        };
        let seen = SeenHostKey::default();
        // No host key seen (an https:// certificate, say): libgit2's error stands.
        assert!(matches!(
            seen.explain(url, url, refusal(), fallback),
            GitError::Fetch { .. }
        ));
        *seen.0.borrow_mut() = Some(Seen {
            host: "127.0.0.1".into(),
            key: "ssh-ed25519 SHA256:abc".into(),
        });
        let auth_failed = git2::Error::new(ErrorCode::Auth, ErrorClass::Ssh, "denied");
        assert!(matches!(
            seen.explain(url, url, auth_failed, fallback),
            GitError::Fetch { .. }
        ));
        match seen.explain(url, url, refusal(), fallback) {
            GitError::HostKeyRejected { host, key, .. } => {
                assert_eq!(host, "[127.0.0.1]:2222");
                assert_eq!(key, "ssh-ed25519 SHA256:abc");
            }
            other => panic!("expected HostKeyRejected, got {other:?}"),
        }
    }
}
