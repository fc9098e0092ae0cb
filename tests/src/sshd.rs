//! A real SSH git server: OpenSSH's `sshd` on a free loopback port, running as the current user
//! with its own host key, letting in one generated client key, so `ssh://` remotes are tested
//! against the real protocol (the server side runs `git-upload-pack` / `git-receive-pack`).
//!
//! Clients must trust the host key like any other: [`SshServer::known_hosts_line`] is the
//! `[127.0.0.1]:PORT ssh-ed25519 …` line to put in a `known_hosts` file
//! ([`SshServer::trust_in`] appends it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{require_sbin_tool, require_tool, run, spawn_logged, ChildGuard};

/// An `sshd -D` serving git over SSH; killed on drop.
pub struct SshServer {
    // Declared before `dir` so sshd is killed before its config and keys are deleted.
    child: ChildGuard,
    port: u16,
    user: String,
    repo_base: PathBuf,
    host_key_fingerprint: String,
    known_hosts_line: String,
    dir: TempDir,
}

impl SshServer {
    /// Starts `sshd` on a free 127.0.0.1 port as the current user, for repositories under
    /// `repo_base` (created if missing), and returns once it listens. Only public-key logins
    /// with [`SshServer::client_key_path`] are accepted.
    ///
    /// As root this creates `/run/sshd` if missing: sshd refuses to start without its
    /// privilege separation directory, which only the system service normally creates.
    pub fn start(repo_base: &Path) -> SshServer {
        let sshd = require_sbin_tool("sshd");
        let keygen = require_tool("ssh-keygen");
        std::fs::create_dir_all(repo_base)
            .unwrap_or_else(|e| panic!("creating {}: {e}", repo_base.display()));
        let dir = tempfile::Builder::new()
            .prefix("ferry-sshd-")
            .tempdir()
            .expect("creating a temp dir");
        let path = |name: &str| dir.path().join(name);
        for key in ["host_ed25519", "client_ed25519"] {
            run(Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(path(key)))
            .unwrap_or_else(|e| panic!("ssh-keygen: {e:#}"));
        }
        std::fs::copy(path("client_ed25519.pub"), path("authorized_keys"))
            .expect("writing authorized_keys");
        let user = run(Command::new(require_tool("id")).arg("-un"))
            .unwrap_or_else(|e| panic!("finding the current user: {e:#}"))
            .trim()
            .to_string();
        let root = user == "root";
        if root && !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd")
                .unwrap_or_else(|e| panic!("creating sshd's /run/sshd: {e}"));
        }

        let port = crate::ports::free_port();
        let path_env = std::env::var("PATH").unwrap_or_default();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\n\
             HostKey {host_key}\n\
             PidFile none\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             AuthorizedKeysFile {authorized_keys}\n\
             StrictModes no\n\
             AllowUsers {user}\n\
             LogLevel VERBOSE\n\
             SetEnv \"PATH={path_env}\" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null\n",
            host_key = path("host_ed25519").display(),
            authorized_keys = path("authorized_keys").display(),
        );
        // The sessions get the tests' PATH (sshd's default may miss the git under test) and
        // git without system or global config, like every other git in the tests.
        std::fs::write(path("sshd_config"), config).expect("writing sshd_config");
        // `-t` reports a bad option in one line; the daemon would only log it and exit.
        run(Command::new(&sshd)
            .arg("-t")
            .arg("-f")
            .arg(path("sshd_config")))
        .unwrap_or_else(|e| panic!("sshd rejects the test configuration: {e:#}"));

        let mut cmd = Command::new(&sshd);
        cmd.args(["-D", "-e", "-f"]).arg(path("sshd_config"));
        let mut child = spawn_logged(cmd, "sshd", dir.path());
        // Readiness from sshd's own log, not a probe connection: newer sshd versions penalise
        // a source address whose connections close before authenticating (PerSourcePenalties).
        let listening = format!("Server listening on 127.0.0.1 port {port}.");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !child.log().contains(&listening) {
            child.assert_running();
            if Instant::now() > deadline {
                panic!("sshd did not listen within 10 s\n{}", child.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        let host_public =
            std::fs::read_to_string(path("host_ed25519.pub")).expect("reading the host public key");
        let mut fields = host_public.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            panic!("unexpected host public key {host_public:?}");
        };
        let known_hosts_line = format!("[127.0.0.1]:{port} {kind} {blob}");
        let fingerprint = run(Command::new(&keygen)
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path("host_ed25519.pub")))
        .unwrap_or_else(|e| panic!("ssh-keygen -l: {e:#}"));
        // "256 SHA256:… host_ed25519 (ED25519)"
        let host_key_fingerprint = fingerprint
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("unexpected ssh-keygen -l output {fingerprint:?}"))
            .to_string();
        SshServer {
            child,
            port,
            user,
            repo_base: repo_base.to_path_buf(),
            host_key_fingerprint,
            known_hosts_line,
            dir,
        }
    }

    /// The 127.0.0.1 port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that logs in (the one running the tests, and sshd).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The unencrypted OpenSSH-format Ed25519 private key the server lets in.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// Where the bare repository `name` lives on disk: `REPO_BASE/{name}.git`.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.repo_base.join(format!("{name}.git"))
    }

    /// `ssh://USER@127.0.0.1:PORT/abs/path/repo.git` for the repository at `repo_path`
    /// (absolute, as sshd runs git on the path as given).
    pub fn url(&self, repo_path: &Path) -> String {
        assert!(
            repo_path.is_absolute(),
            "ssh:// paths are absolute: {}",
            repo_path.display()
        );
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo_path.display()
        )
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…`: the `known_hosts` line trusting this server.
    pub fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }

    /// `SHA256:…`, the host key's fingerprint as OpenSSH prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key_fingerprint
    }

    /// Appends [`SshServer::known_hosts_line`] to the `known_hosts` file (and its directory)
    /// at `known_hosts`, creating them if missing. One `write` to an append-mode file, so
    /// servers in parallel tests can share a file.
    pub fn trust_in(&self, known_hosts: &Path) {
        if let Some(parent) = known_hosts.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(known_hosts)
            .and_then(|mut file| file.write_all(format!("{}\n", self.known_hosts_line).as_bytes()))
            .unwrap_or_else(|e| panic!("appending to {}: {e}", known_hosts.display()));
    }

    /// Everything sshd logged so far (connections, accepted keys, errors).
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// The last `lines` lines of sshd's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server lets in its client key (and only over public keys), proving the config is
    /// one this sshd accepts; the OpenSSH client checks the host key against our line.
    #[test]
    fn ssh_client_logs_in_with_the_client_key_and_trusts_the_host_key() {
        let base = tempfile::tempdir().unwrap();
        let server = SshServer::start(base.path());
        let known_hosts = base.path().join("known_hosts");
        server.trust_in(&known_hosts);
        let ssh = |key: &Path| {
            let mut cmd = Command::new(require_tool("ssh"));
            cmd.args(["-F", "/dev/null", "-o", "BatchMode=yes"])
                .args(["-o", "StrictHostKeyChecking=yes"])
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
                .arg("-i")
                .arg(key)
                .args(["-p", &server.port().to_string()])
                .arg(format!("{}@127.0.0.1", server.user()))
                .arg("echo hello from $(git --version | cut -d' ' -f1)");
            run(&mut cmd)
        };
        let out = ssh(&server.client_key_path())
            .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail(20)));
        assert_eq!(out.trim(), "hello from git");
        assert!(
            server.log().contains("Accepted publickey"),
            "{}",
            server.log()
        );

        let stranger = crate::ssh_signing::SshKey::generate();
        let err = ssh(&stranger.private_key_path).unwrap_err();
        assert!(format!("{err:#}").contains("Permission denied"), "{err:#}");
    }
}
