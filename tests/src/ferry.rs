//! The ferry binaries under test: `ferry-server` on free ports, and `ferry publish`.
//!
//! The binaries come from the workspace's target directory (`cargo build --workspace --bins`
//! first; `scripts/test.sh` does that).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{spawn_logged, ChildGuard};

/// `target/<profile>/NAME`: beside the running executable, or above it when that is a test in
/// `target/<profile>/deps/`. `FERRY_BIN_DIR` overrides the directory.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("FERRY_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().expect("executable path");
            let dir = exe.parent().expect("executable directory").to_path_buf();
            if dir.ends_with("deps") {
                dir.parent()
                    .expect("target/<profile> directory")
                    .to_path_buf()
            } else {
                dir
            }
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first with `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A running `ferry-server` with its own data directory and ports.
pub struct FerryServer {
    /// Registry address, "127.0.0.1:PORT".
    pub http_addr: String,
    /// gRPC address, "127.0.0.1:PORT".
    pub grpc_addr: String,
    data_dir: PathBuf,
    log_dir: tempfile::TempDir,
    extra_args: Vec<String>,
    child: Option<ChildGuard>,
    _data: Option<tempfile::TempDir>,
}

impl FerryServer {
    /// Starts a server on a fresh data directory.
    pub fn start() -> FerryServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(extra_args: &[&str]) -> FerryServer {
        let data = tempfile::tempdir().expect("data dir");
        let mut s = FerryServer {
            http_addr: format!("127.0.0.1:{}", free_port()),
            grpc_addr: format!("127.0.0.1:{}", free_port()),
            data_dir: data.path().to_path_buf(),
            log_dir: tempfile::tempdir().expect("log dir"),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            _data: Some(data),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary("ferry-server"));
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--http-addr",
                &self.http_addr,
                "--grpc-addr",
                &self.grpc_addr,
            ])
            .args(&self.extra_args)
            .env("RUST_LOG", "info");
        let mut child = spawn_logged(cmd, "ferry-server", self.log_dir.path());
        for addr in [&self.http_addr, &self.grpc_addr] {
            child.wait_for_tcp(addr, Duration::from_secs(20));
        }
        self.child = Some(child);
    }

    /// The server's process id (for reading its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// The file holding the bootstrap token (roles publisher and agent) the server wrote on its
    /// first start.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("bootstrap-token")
    }

    /// The bootstrap token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.token_file())
            .expect("ferry-server writes DIR/bootstrap-token on first start")
            .trim()
            .to_string()
    }

    /// A gRPC client holding the bootstrap token.
    pub async fn client(&self) -> ferry_proto::client::Client {
        ferry_proto::client::connect(&self.grpc_url(), Some(&self.token()))
            .await
            .expect("connecting to ferry-server")
    }

    /// A token with role promoter named `name`, and a client presenting it. The CLI makes the
    /// token, so call this outside the runtime; `rt` runs the connect.
    pub fn promoter(
        &self,
        rt: &tokio::runtime::Runtime,
        name: &str,
    ) -> (String, ferry_proto::client::Client) {
        let token = self
            .token_command(&["create", "--role", "promoter", "--name", name])
            .trim()
            .to_string();
        let client = rt
            .block_on(ferry_proto::client::connect(&self.grpc_url(), Some(&token)))
            .expect("connecting as the promoter");
        (token, client)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `docker://127.0.0.1:PORT/REPO` for skopeo.
    pub fn docker_ref(&self, repo_and_ref: &str) -> String {
        format!("docker://{}/{repo_and_ref}", self.http_addr)
    }

    /// SIGKILLs the server (no shutdown, no flush).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the server to exit; returns its exit status,
    /// or None if it was still running (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child.take()?.terminate(timeout)
    }

    /// Sends SIGTERM and returns at once, so a test can watch the drain;
    /// [`FerryServer::wait_exit`] waits for the exit.
    pub fn send_sigterm(&self) {
        self.child.as_ref().expect("server running").send_sigterm();
    }

    /// Waits up to `timeout` for the server to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .expect("server started")
            .wait_exit(timeout)
    }

    /// The seq of the newest event in the server's log (`ListTags`' `head_seq`), asked over
    /// gRPC on a runtime of its own; for synchronous tests (an async test uses
    /// [`FerryServer::client`]).
    pub fn head_seq(&self) -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        runtime.block_on(async {
            self.client()
                .await
                .list_tags(ferry_proto::pb::ListTagsRequest { images: vec![] })
                .await
                .expect("ListTags")
                .into_inner()
                .head_seq
        })
    }

    /// Starts the server again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.child.as_ref().map(|c| c.log()).unwrap_or_default()
    }

    /// Runs `ferry publish ARGS… --server <this server>` with the bootstrap token.
    pub fn publish(&self, args: &[&str]) -> Output {
        self.publish_as(args, Some(&self.token()))
    }

    /// Runs `ferry publish ARGS… --server <this server>` with `token` (none: no token at all).
    pub fn publish_as(&self, args: &[&str], token: Option<&str>) -> Output {
        let args: Vec<&str> = std::iter::once("publish")
            .chain(args.iter().copied())
            .collect();
        self.cli_as(&args, token)
    }

    /// Runs `ferry ARGS… --server <this server>` (any subcommand that talks to the server) with
    /// `token` in `FERRY_TOKEN` (none: no token at all).
    pub fn cli_as(&self, args: &[&str], token: Option<&str>) -> Output {
        let mut cmd = Command::new(binary("ferry"));
        cmd.args(args).args(["--server", &self.grpc_url()]);
        cmd.env_remove("FERRY_TOKEN")
            .env_remove("FERRY_TOKEN_FILE")
            .env("NO_COLOR", "1");
        if let Some(t) = token {
            cmd.env("FERRY_TOKEN", t);
        }
        cmd.output().expect("running ferry")
    }

    /// Like [`FerryServer::cli_as`] but panics unless it succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str], token: &str) -> String {
        let out = self.cli_as(args, Some(token));
        assert!(
            out.status.success(),
            "ferry {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs `ferry-server token ARGS…` on this server's data directory; returns stdout, or
    /// panics with stderr when it fails.
    pub fn token_command(&self, args: &[&str]) -> String {
        let out = Command::new(binary("ferry-server"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("token")
            .args(args)
            .output()
            .expect("running ferry-server token");
        assert!(
            out.status.success(),
            "ferry-server token {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Like [`FerryServer::publish`] but panics unless it succeeds; returns the digest it printed.
    pub fn publish_ok(&self, args: &[&str]) -> String {
        let out = self.publish(args);
        assert!(
            out.status.success(),
            "ferry publish {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
        let digest = stdout.trim().to_string();
        assert!(
            digest.starts_with("sha256:") && !digest.contains('\n'),
            "stdout must be only the digest: {stdout:?}"
        );
        digest
    }
}

/// The agent flags and log level the tests use: a 2 s resync, and debug logs to read.
const TEST_AGENT_ARGS: &[&str] = &["--resync-secs", "2"];
const TEST_AGENT_LOG: &str = "info,ferry_agent=debug";

/// A running `ferry-agent` with its own state directory.
pub struct FerryAgent {
    config: PathBuf,
    state_dir: PathBuf,
    log_dir: tempfile::TempDir,
    child: Option<ChildGuard>,
    _dirs: tempfile::TempDir,
}

impl FerryAgent {
    /// Writes `config_yaml` to a file (with `key_files` beside it) and starts the agent on it.
    /// The tests run the agent with a 2 s resync and debug logs.
    pub fn start(config_yaml: &str, key_files: &[(&str, &str)]) -> FerryAgent {
        Self::start_with(config_yaml, key_files, TEST_AGENT_ARGS, TEST_AGENT_LOG)
    }

    fn spawn(&mut self) {
        self.spawn_with(TEST_AGENT_ARGS, TEST_AGENT_LOG);
    }

    /// SIGKILLs the agent.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the agent to exit; returns its exit status,
    /// or None if it was still running (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child.take()?.terminate(timeout)
    }

    /// Sends SIGTERM and returns at once; [`FerryAgent::wait_exit`] waits for the exit.
    pub fn send_sigterm(&self) {
        self.child.as_ref().expect("agent running").send_sigterm();
    }

    /// Waits up to `timeout` for the agent to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .expect("agent started")
            .wait_exit(timeout)
    }

    /// The seq in the agent's cursor file for the provider `ferry` (the one [`agent_config`]
    /// names): the last event it has fully applied. 0 before the file exists, as the agent
    /// reads it.
    pub fn cursor(&self) -> u64 {
        let path = self.state_dir.join("cursor-ferry");
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{} holds {text:?}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("reading {}: {e}", path.display()),
        }
    }

    /// Waits until the agent's cursor has reached the server's head: every event so far is
    /// applied (the cursor only moves once its commit is pushed, or nothing was to change).
    pub fn wait_caught_up(&self, server: &FerryServer, timeout: Duration) -> bool {
        let head = server.head_seq();
        wait_until(timeout, || self.cursor() >= head)
    }

    /// Starts it again on the same state directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        self.child.as_ref().map(|c| c.log()).unwrap_or_default()
    }

    /// Waits until the log contains `needle` `times` times.
    pub fn wait_for_log(&self, needle: &str, times: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().matches(needle).count() >= times)
    }
}

/// A piped-style agent config: one repository (`config`, branch `main`) at `remote`, one FERRY
/// provider at `server` with its bootstrap token file, the ImageWatcher files `includes` (empty:
/// every one under `.pipe/`). `signing_key_file` is a path relative to the config file (see
/// [`FerryAgent::start`]).
pub fn agent_config(
    server: &FerryServer,
    remote: &str,
    signing_key_file: Option<&str>,
    includes: &[&str],
) -> String {
    let signing = signing_key_file
        .map(|f| format!("    signingKeyFile: {f}\n"))
        .unwrap_or_default();
    let includes = if includes.is_empty() {
        String::new()
    } else {
        format!("      includes: [{}]\n", includes.join(", "))
    };
    format!(
        "apiVersion: pipecd.dev/v1beta1\nkind: Piped\nspec:\n  git:\n    username: ferry-bot\n    email: ferry-bot@example.com\n{signing}  repositories:\n    - repoId: config\n      remote: {remote}\n      branch: main\n  imageProviders:\n    - name: ferry\n      type: FERRY\n      config:\n        address: {}\n        tokenFile: {}\n  imageWatcher:\n    - repoId: config\n{includes}",
        server.grpc_url(),
        server.token_file().display()
    )
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes; returns the last answer.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl FerryAgent {
    /// Like [`FerryAgent::start`], but with the agent's flags `args` after `--config` and
    /// `--state-dir` (none: its own defaults, e.g. `--resync-secs 30`) and `RUST_LOG=rust_log`.
    /// Benchmarks run the agent this way, as deployed, without the tests' 2 s resync and debug
    /// logs.
    pub fn start_with(
        config_yaml: &str,
        key_files: &[(&str, &str)],
        args: &[&str],
        rust_log: &str,
    ) -> FerryAgent {
        let dirs = tempfile::tempdir().expect("agent dir");
        for (name, content) in key_files {
            std::fs::write(dirs.path().join(name), content).expect("writing a key file");
        }
        let config = dirs.path().join("agent.yaml");
        std::fs::write(&config, config_yaml).expect("writing the agent config");
        let mut a = FerryAgent {
            config,
            state_dir: dirs.path().join("state"),
            log_dir: tempfile::tempdir().expect("log dir"),
            child: None,
            _dirs: dirs,
        };
        a.spawn_with(args, rust_log);
        a
    }

    /// Like [`FerryAgent::restart`], with `args` and `rust_log` as [`FerryAgent::start_with`]
    /// takes them. The log starts afresh.
    pub fn restart_with(&mut self, args: &[&str], rust_log: &str) {
        self.kill9();
        self.spawn_with(args, rust_log);
    }

    /// The agent's process id (for `/proc` and profilers).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// The agent's `--state-dir` (its clones and `cursor-<provider>` files).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn spawn_with(&mut self, args: &[&str], rust_log: &str) {
        let mut cmd = Command::new(binary("ferry-agent"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(args);
        cmd.env("RUST_LOG", rust_log);
        self.child = Some(spawn_logged(cmd, "ferry-agent", self.log_dir.path()));
    }
}

/// `Subscribe` in one call, as every stream test opens it: events after `after_seq` for
/// `images` (normalised or short names; empty: every image).
#[allow(async_fn_in_trait)] // test code on one runtime: no Send bound is needed
pub trait SubscribeFrom {
    /// Opens the stream, or returns the server's refusal.
    async fn subscribe_from(
        &mut self,
        after_seq: u64,
        images: &[&str],
    ) -> Result<tonic::Response<tonic::Streaming<ferry_proto::pb::SubscribeResponse>>, tonic::Status>;
}

impl SubscribeFrom for ferry_proto::client::Client {
    async fn subscribe_from(
        &mut self,
        after_seq: u64,
        images: &[&str],
    ) -> Result<tonic::Response<tonic::Streaming<ferry_proto::pb::SubscribeResponse>>, tonic::Status>
    {
        self.subscribe(ferry_proto::pb::SubscribeRequest {
            after_seq,
            images: images.iter().map(|i| i.to_string()).collect(),
            ..Default::default()
        })
        .await
    }
}
