//! A real HTTPS git server: `git http-backend` (smart HTTP) as a CGI behind lighttpd, with TLS
//! from a throwaway CA and HTTP Basic auth, on loopback; killed on drop.
//!
//! Clients authenticate as GitHub and GitLab tokens are used: `https://USER:TOKEN@host/…`. The
//! server's certificate (for `IP:127.0.0.1` only) is signed by a CA made for this server alone,
//! so nothing trusts it unless given [`HttpsGitServer::ca_file`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::git::{git, git_command, init_bare_repo_with_files};
use crate::ports::free_port;
use crate::process::{require_sbin_tool, run, run_combined, spawn_logged, ChildGuard};

/// The user every server accepts.
pub const USER: &str = "ferry-bot";
/// The user's password, shaped like an access token.
pub const TOKEN: &str = "glpat-ferry-tests-0123456789";

/// lighttpd serving `git http-backend` over TLS with Basic auth for [`USER`]:[`TOKEN`].
pub struct HttpsGitServer {
    child: ChildGuard,
    port: u16,
    base: PathBuf,
    /// Certificates, keys, the lighttpd config and its user file.
    dir: TempDir,
}

impl HttpsGitServer {
    /// Makes a CA and a certificate for 127.0.0.1, starts lighttpd on a free 127.0.0.1 port
    /// serving every repository under `repo_base` (created if missing), and returns once the
    /// port accepts connections. Pushing needs `http.receivepack` in the repository's config
    /// ([`HttpsGitServer::init_bare_repo_with_files`] sets it).
    pub fn start(repo_base: &Path) -> HttpsGitServer {
        let lighttpd = require_sbin_tool("lighttpd");
        std::fs::create_dir_all(repo_base)
            .unwrap_or_else(|e| panic!("creating {}: {e}", repo_base.display()));
        let base = std::fs::canonicalize(repo_base)
            .unwrap_or_else(|e| panic!("resolving {}: {e}", repo_base.display()));
        let dir = tempfile::Builder::new()
            .prefix("ferry-https-git-")
            .tempdir()
            .expect("creating a temp dir");
        crate::certs::make_certificates(dir.path());
        write_users(dir.path(), TOKEN);
        let port = free_port();
        let config = dir.path().join("lighttpd.conf");
        std::fs::write(&config, lighttpd_config(dir.path(), &base, port))
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        // `-tt` loads the modules too: a missing mod_openssl is reported here, not as a child
        // that died before listening.
        let mut check = Command::new(&lighttpd);
        check.arg("-tt").arg("-f").arg(&config);
        if let Err(e) = run_combined(&mut check) {
            panic!(
                "lighttpd cannot load its config (is lighttpd-mod-openssl installed? run \
                 scripts/test.sh or `apt-get install lighttpd lighttpd-mod-openssl`): {e:#}"
            );
        }
        let mut cmd = Command::new(&lighttpd);
        cmd.arg("-D").arg("-f").arg(&config);
        let mut child = spawn_logged(cmd, "lighttpd", dir.path());
        child.wait_for_tcp(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        HttpsGitServer {
            child,
            port,
            base,
            dir,
        }
    }

    /// The 127.0.0.1 port lighttpd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://USER:TOKEN@127.0.0.1:PORT/{repo}.git`.
    pub fn url(&self, repo: &str) -> String {
        self.url_with_password(repo, TOKEN)
    }

    /// `https://USER:{password}@127.0.0.1:PORT/{repo}.git` (`password` as written, so
    /// percent-encode what needs it).
    pub fn url_with_password(&self, repo: &str, password: &str) -> String {
        format!(
            "https://{USER}:{password}@127.0.0.1:{}/{repo}.git",
            self.port
        )
    }

    /// `https://127.0.0.1:PORT/{repo}.git`, without credentials.
    pub fn plain_url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{repo}.git", self.port)
    }

    /// PEM certificate of the CA that signed this server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where the bare repository `repo` lives on disk: `BASE/{repo}.git`.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.base.join(format!("{repo}.git"))
    }

    /// Creates the bare repository `name` whose `main` has one commit ("initial commit")
    /// holding `files`, with pushing over HTTP enabled; returns its URL with credentials.
    pub fn init_bare_repo_with_files(&self, name: &str, files: &[(&str, &str)]) -> String {
        let bare = self.repo_path(name);
        init_bare_repo_with_files(&bare, files);
        git(&bare, &["config", "http.receivepack", "true"])
            .unwrap_or_else(|e| panic!("enabling pushes to {}: {e:#}", bare.display()));
        self.url(name)
    }

    /// Makes `password` the only one accepted from now on, as when a token is rotated or
    /// revoked (lighttpd reads its user file on every request).
    pub fn set_password(&self, password: &str) {
        write_users(self.dir.path(), password);
    }

    /// `git` (see [`git_command`]) trusting this server's CA, for checking it with the CLI.
    pub fn git_command(&self) -> Command {
        let mut cmd = git_command();
        cmd.env("GIT_SSL_CAINFO", self.ca_file());
        cmd
    }

    /// lighttpd's log tail (its errors and `git http-backend`'s stderr), for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }
}

fn write_users(dir: &Path, password: &str) {
    let users = dir.join("users");
    // Written whole and renamed, so lighttpd never reads a half-written file.
    let partial = dir.join("users.partial");
    std::fs::write(&partial, format!("{USER}:{password}\n"))
        .and_then(|()| std::fs::rename(&partial, &users))
        .unwrap_or_else(|e| panic!("writing {}: {e}", users.display()));
}

fn lighttpd_config(dir: &Path, base: &Path, port: u16) -> String {
    let exec_path = run(git_command().arg("--exec-path"))
        .unwrap_or_else(|e| panic!("finding git's exec path: {e:#}"));
    let backend = Path::new(exec_path.trim()).join("git-http-backend");
    if !backend.is_file() {
        panic!(
            "{} not found: run scripts/test.sh or `apt-get install git`",
            backend.display()
        );
    }
    let file = |name: &str| quote(&dir.join(name).to_string_lossy());
    let base = quote(&base.to_string_lossy());
    // Every URL is the CGI's PATH_INFO (`/config.git/info/refs`): lighttpd runs the longest
    // existing prefix of the aliased path, git-http-backend, as the script.
    format!(
        r#"server.modules = (
    "mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi", "mod_openssl",
)
server.document-root = {base}
server.bind = "127.0.0.1"
server.port = {port}
ssl.engine = "enable"
ssl.pemfile = {cert}
ssl.privkey = {key}
auth.backend = "plain"
auth.backend.plain.userfile = {users}
auth.require = (
    "/" => ( "method" => "basic", "realm" => "ferry-tests", "require" => "valid-user" ),
)
alias.url = ( "/" => {backend_dir} )
cgi.assign = ( "" => "" )
setenv.add-environment = (
    "GIT_PROJECT_ROOT" => {base},
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_NOSYSTEM" => "1",
    "GIT_CONFIG_GLOBAL" => "/dev/null",
)
"#,
        cert = file("server.pem"),
        key = file("server.key"),
        users = file("users"),
        backend_dir = quote(&format!("{}/", backend.display())),
    )
}

/// `s` as a lighttpd string literal.
fn quote(s: &str) -> String {
    assert!(
        !s.contains(['"', '\\']),
        "{s:?}: lighttpd config strings cannot hold quotes or backslashes here"
    );
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_clones_and_pushes_over_https_with_basic_auth_only() {
        let tmp = tempfile::tempdir().unwrap();
        let server = HttpsGitServer::start(&tmp.path().join("srv"));
        let url = server.init_bare_repo_with_files("config", &[("a.txt", "one\n")]);
        assert_eq!(
            url,
            format!(
                "https://{USER}:{TOKEN}@127.0.0.1:{}/config.git",
                server.port()
            )
        );
        let work = tmp.path().join("work");
        run(server
            .git_command()
            .args(["clone", "--quiet", &url])
            .arg(&work))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail(20)));
        std::fs::write(work.join("a.txt"), "two\n").unwrap();
        git(&work, &["commit", "--quiet", "-am", "two"]).unwrap();
        run(server
            .git_command()
            .current_dir(&work)
            .args(["push", "--quiet", "origin", "main"]))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_tail(20)));
        let bare = server.repo_path("config");
        assert_eq!(git(&bare, &["show", "main:a.txt"]).unwrap(), "two\n");

        let no_ca = run(git_command().args(["ls-remote", &url])).unwrap_err();
        assert!(format!("{no_ca:#}").contains("certificate"), "{no_ca:#}");
        for unauthorised in [
            server.plain_url("config"),
            server.url_with_password("config", "x"),
        ] {
            let err = run(server.git_command().args(["ls-remote", &unauthorised])).unwrap_err();
            assert!(
                format!("{err:#}").contains("Authentication failed")
                    || format!("{err:#}").contains("could not read Username"),
                "{err:#}"
            );
        }
        server.set_password("rotated");
        let err = run(server.git_command().args(["ls-remote", &url])).unwrap_err();
        assert!(
            format!("{err:#}").contains("Authentication failed"),
            "{err:#}"
        );
        let rotated = server.url_with_password("config", "rotated");
        run(server.git_command().args(["ls-remote", &rotated])).unwrap();
    }
}
