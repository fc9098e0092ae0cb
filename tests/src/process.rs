//! Child processes for tests: a guard that kills on drop, output captured in a log file whose
//! tail is printed when the test fails, and `require_tool` for peers the machine must have.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// How a developer gets the test peers; kept in one place so every message agrees.
const INSTALL_HINT: &str = "run scripts/test.sh or";

/// Debian package that provides each tool the tests use.
fn debian_package(tool: &str) -> &str {
    match tool {
        "gpg" | "gpgconf" => "gnupg",
        "ssh-keygen" => "openssh-client",
        "sshd" => "openssh-server",
        "ab" => "apache2-utils",
        "nginx" => "nginx-light",
        "docker-registry" => "docker-registry",
        "lighttpd" => "lighttpd lighttpd-mod-openssl",
        other => other,
    }
}

/// The full path of `tool` on `PATH`; panics with install instructions if it is missing, so a
/// test never passes by skipping its peer.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "{tool} not found on PATH: {INSTALL_HINT} `apt-get install {}`",
        debian_package(tool)
    );
}

/// Like [`require_tool`], for a tool Debian installs in `/usr/sbin` (sshd, lighttpd, nginx),
/// which is not on every user's PATH: that path when it exists, else the tool on PATH. Also
/// an absolute path, which sshd needs (it re-executes itself).
pub fn require_sbin_tool(tool: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(tool);
    if sbin.is_file() {
        sbin
    } else {
        require_tool(tool)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error carrying the
/// command line, stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {}", describe(cmd)))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{} failed ({}):\nstderr: {}\nstdout: {}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end(),
            stdout.trim_end()
        );
    }
    Ok(stdout)
}

/// Like [`run`], but returns stdout followed by stderr (tools such as `git verify-commit`
/// report on stderr).
pub fn run_combined(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {}", describe(cmd)))?;
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            describe(cmd),
            output.status,
            combined.trim_end()
        );
    }
    Ok(combined)
}

/// `program arg1 arg2 …`, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A running child that is killed (SIGKILL) and reaped when dropped. Its stdout and stderr go
/// to one log file; if the thread is panicking when the guard drops (a failed assertion), the
/// last lines of that log are printed, so the failing test's output shows what the child said.
pub struct ChildGuard {
    child: Child,
    name: String,
    log: PathBuf,
}

/// Spawns `cmd` with stdin closed and stdout+stderr appended to `log_dir/NAME.log`.
/// Panics if it cannot start (a fixture failure).
pub fn spawn_logged(mut cmd: Command, name: &str, log_dir: &Path) -> ChildGuard {
    let log = log_dir.join(format!("{name}.log"));
    let out = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    let err = out.try_clone().expect("cloning a log file handle");
    // Its own process group, so dropping the guard also kills what the child started
    // (`git daemon` is a `git` wrapper that runs `git-daemon` as a grandchild).
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", describe(&cmd)));
    ChildGuard {
        child,
        name: name.to_string(),
        log,
    }
}

impl ChildGuard {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log, headed by the child's name, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!(
            "--- last {} lines of {} ({}) ---\n{tail}",
            lines.min(all.len()),
            self.name,
            self.log.display()
        )
    }

    /// `Some(exit status)` if the child has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics with the log tail if the child has already exited (e.g. it failed to bind).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_wait() {
            panic!(
                "{} exited early ({status})\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }

    /// Waits until `addr` accepts TCP connections. Panics (a fixture failure) naming the child,
    /// with its log tail, if it exited or nothing listens within `timeout`.
    pub fn wait_for_tcp(&mut self, addr: &str, timeout: std::time::Duration) {
        if let Err(e) = crate::ports::wait_for_tcp(addr, timeout) {
            self.assert_running();
            panic!(
                "{} did not listen on {addr}: {e:#}\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its exit
    /// status, or None if it was still running (it is then killed).
    pub fn terminate(mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        self.send_sigterm();
        let status = self.wait_exit(timeout);
        if status.is_none() {
            self.kill();
        }
        status
    }

    /// Sends SIGTERM and returns at once, so a test can check what the process does while it
    /// shuts down; [`ChildGuard::wait_exit`] then waits for the end.
    pub fn send_sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the process to exit; returns its exit status, or None if it is
    /// still running (it is left running).
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kills the child and its process group now (SIGKILL) and reaps the child; dropping
    /// the guard does the same.
    pub fn kill(&mut self) {
        if self.try_wait().is_none() {
            // kill(1) takes a negative pid as a process group; saves a libc dependency.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(40));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    #[should_panic(expected = "apt-get install no-such-tool-xyz")]
    fn require_tool_fails_with_install_instructions() {
        require_tool("no-such-tool-xyz");
    }

    #[test]
    fn guard_logs_output_and_kills_its_process_group_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(require_tool("sh"));
        cmd.args([
            "-c",
            "sleep 60 & echo $! > grandchild; echo hello; echo oops >&2; exec sleep 60",
        ])
        .current_dir(dir.path());
        let mut guard = spawn_logged(cmd, "sleeper", dir.path());
        let pid = guard.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !guard.log().contains("oops") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            guard.log_tail(5).contains("hello\noops"),
            "{}",
            guard.log_tail(5)
        );
        guard.assert_running();
        let grandchild = std::fs::read_to_string(dir.path().join("grandchild")).unwrap();
        let grandchild = format!("/proc/{}", grandchild.trim());
        drop(guard);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} survived its guard"
        );
        // The killed grandchild is reaped by init, so it may take a moment to vanish.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !Path::new(&grandchild).exists()
        });
        assert!(gone, "grandchild {grandchild} survived the guard");
    }

    #[test]
    fn run_reports_stderr_on_failure() {
        let err = run(Command::new("sh").args(["-c", "echo bad thing >&2; exit 3"])).unwrap_err();
        assert!(format!("{err}").contains("bad thing"), "{err}");
    }
}
