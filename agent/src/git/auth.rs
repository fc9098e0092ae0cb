//! Credentials for talking to the remote, and URLs made safe to print.
//!
//! `ssh://` (and scp-like `user@host:path`) authenticates with the configured key file; host
//! keys are checked by libgit2 against `~/.ssh/known_hosts`. `https://` remotes send a user
//! name and a password or access token: from a file ([`HttpsCredentials`], the repository's
//! `passwordFile`/`tokenFile`), which keeps the secret out of the config and out of every URL
//! the agent logs, or else from the URL itself (`https://USER:TOKEN@host/…`). The server's
//! certificate must chain to a system CA or to the configured `caFile` ([`trust_ca_file`]).
//! `git://`, `file://` and plain paths need nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::error::GitError;

/// How the agent authenticates to a remote.
#[derive(Debug, Clone, Default)]
pub struct RemoteAuth {
    /// Private key for `ssh://` remotes (the agent config's `sshKeyFile`), unencrypted.
    pub ssh_key_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for `https://` remotes, besides the system ones
    /// (the agent config's `caFile`), for servers whose certificate a private CA signed.
    ///
    /// Process-wide: libgit2 keeps one TLS trust store per process, so once a workspace is
    /// opened with this file, its CAs are trusted for every `https://` remote this process
    /// talks to, until it exits. The agent config has one `caFile` for all its repositories,
    /// so this loses nothing there. Certificates are always verified (chain and host name);
    /// this only adds trust anchors.
    pub ca_file: Option<PathBuf>,
    /// User name and password file for `https://` remotes; without it, the URL's own.
    pub https: Option<HttpsCredentials>,
}

/// Basic credentials for an `https://` remote, the password (or access token) read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsCredentials {
    /// The user name sent with the password (GitHub ignores it for tokens; GitLab wants any).
    pub username: String,
    /// The file holding the password or token. Read at every authentication, so a rotated
    /// token is picked up without a restart; one trailing newline is ignored.
    pub password_file: PathBuf,
}

impl HttpsCredentials {
    /// The password, or an error naming the file.
    fn password(&self) -> Result<String, git2::Error> {
        let text = std::fs::read_to_string(&self.password_file).map_err(|e| {
            git2::Error::from_str(&format!(
                "reading the git password file {}: {e}",
                self.password_file.display()
            ))
        })?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(git2::Error::from_str(&format!(
                "the git password file {} is empty",
                self.password_file.display()
            )));
        }
        Ok(password.to_string())
    }
}

/// libgit2 asks again after a rejected credential; past this many asks the credentials are
/// wrong and asking forever would hang the agent.
const MAX_CREDENTIAL_ASKS: u32 = 4;

impl RemoteAuth {
    /// Callbacks answering libgit2's credential requests for `url`.
    pub(crate) fn callbacks<'a>(&'a self, url: &'a str) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let mut asks = 0;
        callbacks.credentials(move |_url, username_from_url, allowed| {
            asks += 1;
            if asks > MAX_CREDENTIAL_ASKS {
                // ErrorCode::Auth, so callers can tell refused credentials from other failures.
                return Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Callback,
                    "the remote refused every credential offered; check the key or token",
                ));
            }
            let user = username_from_url.unwrap_or("git");
            if allowed.contains(CredentialType::SSH_KEY) {
                return match &self.ssh_key_file {
                    Some(key) => Cred::ssh_key(user, None, key, None),
                    None => Err(git2::Error::from_str(
                        "the remote asks for an SSH key and none is configured (sshKeyFile)",
                    )),
                };
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(https) = &self.https {
                    return Cred::userpass_plaintext(&https.username, &https.password()?);
                }
                return match url_credentials(url) {
                    Some((user, password)) => Cred::userpass_plaintext(&user, &password),
                    None => Err(git2::Error::from_str(
                        "the remote asks for a username and password: set passwordFile (or \
                         tokenFile) on the repository in the agent config",
                    )),
                };
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            Err(git2::Error::from_str(&format!(
                "the remote asks for credentials the agent cannot give ({allowed:?})"
            )))
        });
        callbacks
    }
}

/// Serialises our changes to libgit2's global TLS options: git2 marks them `unsafe` because
/// libgit2 does not lock its option setters.
static TLS_OPTIONS: Mutex<()> = Mutex::new(());

/// Adds the CA certificates in the PEM file `path` to libgit2's process-wide TLS trust store,
/// next to the system CAs (see [`RemoteAuth::ca_file`]). Adding the same file again is
/// harmless, and picks up certificates added to it since.
pub(crate) fn trust_ca_file(path: &Path) -> Result<(), GitError> {
    let invalid = |reason: String| GitError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    // OpenSSL's own errors for these ("no certificate or crl found") do not say which file.
    let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    if !pem
        .windows(PEM_CERTIFICATE.len())
        .any(|w| w == PEM_CERTIFICATE)
    {
        return Err(invalid(format!(
            "no PEM certificate in it (a line {:?})",
            String::from_utf8_lossy(PEM_CERTIFICATE)
        )));
    }
    let _serialised = TLS_OPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: our own calls are serialised by the lock above. libgit2 (OpenSSL backend) turns
    // this into `SSL_CTX_load_verify_locations` on its shared context, which adds to the
    // context's certificate store; OpenSSL (1.1 and later) locks that store itself, so
    // handshakes running meanwhile on other threads are safe.
    // The workspace denies unsafe code; this one call is audited above and has no safe form.
    #[allow(unsafe_code)]
    let loaded = unsafe { git2::opts::set_ssl_cert_file(path) };
    loaded.map_err(|e| invalid(e.message().to_string()))
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The `user:password` of a URL's authority, percent-decoded.
fn url_credentials(url: &str) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some((percent_decode(user), percent_decode(password)))
}

/// `url` with any password in its authority replaced by `***`, for messages and logs. Over
/// http(s) a user name without a password is hidden too: `https://TOKEN@host/…` is how GitHub
/// and GitLab tokens are often written, and [`url_credentials`] reads it that way. Over ssh the
/// user (`git@`) is an account name, not a secret, and stays.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        Some((_, host))
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") =>
        {
            format!("{scheme}://***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_url() {
        assert_eq!(
            url_credentials("https://bot:t%40k%2Fen@git.example.com/org/config.git"),
            Some(("bot".into(), "t@k/en".into()))
        );
        assert_eq!(
            url_credentials("https://bot@git.example.com/config.git"),
            Some(("bot".into(), String::new()))
        );
        assert_eq!(url_credentials("https://git.example.com/a@b.git"), None);
        assert_eq!(url_credentials("/srv/git/config.git"), None);
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("https://bot:secret@git.example.com/config.git"),
            "https://bot:***@git.example.com/config.git"
        );
        // A token written as the user name, as GitHub accepts it, is a secret too.
        assert_eq!(
            redact("https://ghp_0123456789abcdef@github.com/team/config.git"),
            "https://***@github.com/team/config.git"
        );
        for url in [
            "https://git.example.com/config.git",
            "ssh://git@git.example.com/config.git",
            "git://127.0.0.1:9418/config.git",
            "/srv/git/config.git",
        ] {
            assert_eq!(redact(url), url);
        }
    }
}
