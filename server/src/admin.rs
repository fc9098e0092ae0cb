//! `ferry-server token …`: creating, listing and revoking API tokens in a data directory, and
//! the bootstrap token written on first start.
//!
//! These work on the database directly, also while a server runs on it (SQLite WAL allows a
//! second writer process to wait its turn). The server reads tokens on every gRPC call and trusts a
//! registry read's token check for at most 250 ms, so a revocation applies to the next gRPC call
//! and to registry reads within 250 ms.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use crate::service::auth::{self, Role};
use crate::store::{Store, TokenRecord};

/// `ferry-server token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// Role(s): publisher, agent, reader. Repeat or separate with commas.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<Role>,
        /// Limit a publisher to repositories under this prefix of normalised image names
        /// (e.g. ghcr.io/acme). Repeatable; none means any repository.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A unique name to list and revoke it by (default: the roles and a random suffix).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name: refused from the next gRPC call on, and by registry reads
    /// within 250 ms (they trust a token check that long).
    Revoke {
        /// The token's id or name, as `token list` shows.
        token: String,
    },
}

/// What a `token` subcommand did, for `main` to print: the secret (if any) on stdout, so it can
/// be piped into a file, and the notes for people on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOutput {
    /// For standard output: the new secret, or the token table.
    pub stdout: String,
    /// For standard error: what was done.
    pub stderr: String,
}

/// Runs a `token` subcommand against the store in `data_dir`, which must already hold the
/// server's database: in any other directory the tokens would be ones the server never reads.
pub fn run_token(data_dir: &Path, cmd: TokenCommand) -> anyhow::Result<TokenOutput> {
    let store = open_existing(data_dir)?;
    let out = match cmd {
        TokenCommand::Create {
            roles,
            scopes,
            name,
        } => {
            let name = name.unwrap_or_else(|| default_name(&roles));
            let (rec, secret) = auth::create_token(&store, &name, &roles, &scopes)?;
            TokenOutput {
                stdout: format!("{secret}\n"),
                stderr: format!(
                    "created token {:?} (id {}, roles {}{}); it is shown only now:\n",
                    rec.name,
                    rec.id,
                    rec.roles.join(", "),
                    scope_note(&rec)
                ),
            }
        }
        TokenCommand::List => TokenOutput {
            stdout: token_table(&store.list_tokens()?),
            stderr: String::new(),
        },
        TokenCommand::Revoke { token } => match store.revoke_token(&token)? {
            Some(rec) => TokenOutput {
                stdout: String::new(),
                stderr: format!("revoked token {:?} (id {})\n", rec.name, rec.id),
            },
            None => anyhow::bail!(
                "no token with id or name {token:?} in {}; `ferry-server token list` shows them",
                data_dir.display()
            ),
        },
    };
    Ok(out)
}

/// The store of an admin command; refuses a directory without a ferry database.
fn open_existing(data_dir: &Path) -> anyhow::Result<Store> {
    Store::open_existing(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))
}

/// `token list`'s table: one line per token, never a secret.
fn token_table(tokens: &[TokenRecord]) -> String {
    let mut out = format!(
        "{:<4} {:<24} {:<24} {:<28} STATUS\n",
        "ID", "NAME", "ROLES", "SCOPES"
    );
    for t in tokens {
        let scopes = if t.scopes.is_empty() {
            "*".to_string()
        } else {
            t.scopes.join(",")
        };
        let status = if t.revoked_at_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        out.push_str(&format!(
            "{:<4} {:<24} {:<24} {:<28} {status}\n",
            t.id,
            t.name,
            t.roles.join(","),
            scopes
        ));
    }
    out
}

fn scope_note(rec: &TokenRecord) -> String {
    if rec.scopes.is_empty() {
        String::new()
    } else {
        format!(", publishing only under {}", rec.scopes.join(", "))
    }
}

fn default_name(roles: &[Role]) -> String {
    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    // The suffix comes from a fresh random token, not the one being created.
    let suffix = &auth::new_token()["ferry_".len().."ferry_".len() + 8];
    format!("{}-{suffix}", roles.join("+"))
}

/// What `ferry-server check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The database file checked.
    pub path: PathBuf,
    /// SQLite's `PRAGMA integrity_check` answer ("ok" when sound).
    pub integrity: String,
    /// Events in the log.
    pub events: u64,
    /// Lowest seq in the log (0 when empty).
    pub first_seq: u64,
    /// Highest seq in the log (0 when empty).
    pub last_seq: u64,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "integrity_check: {}", self.integrity)?;
        writeln!(
            f,
            "events: {} (seq {}..={})",
            self.events, self.first_seq, self.last_seq
        )
    }
}

impl CheckReport {
    /// Ok when the file is sound and the event log gapless; else what is wrong.
    pub fn verdict(&self) -> anyhow::Result<()> {
        if self.integrity != "ok" {
            anyhow::bail!("{} failed SQLite's integrity check", self.path.display());
        }
        let (events, first, last) = (self.events, self.first_seq, self.last_seq);
        if events > 0 && events != last - first + 1 {
            anyhow::bail!("the event log has gaps: {events} events between seq {first} and {last}");
        }
        Ok(())
    }
}

/// `ferry-server check`: SQLite's integrity check and a gapless event log, on the database that
/// `data_dir` already holds.
pub fn check(data_dir: &Path) -> anyhow::Result<CheckReport> {
    let store = open_existing(data_dir)?;
    let integrity = store.integrity_check()?;
    let (events, first_seq, last_seq) = store.event_log_extent()?;
    Ok(CheckReport {
        path: store.path().to_path_buf(),
        integrity,
        events,
        first_seq,
        last_seq,
    })
}

/// The file the bootstrap token is written to.
pub fn bootstrap_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("bootstrap-token")
}

/// On a store with no tokens at all (a first start), creates a `bootstrap` token with roles
/// publisher and agent and writes it to `DIR/bootstrap-token`, readable by the owner only.
/// Returns the file written, if any.
pub fn ensure_bootstrap_token(store: &Store, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if store.token_count()? > 0 {
        return Ok(None);
    }
    let path = bootstrap_token_path(data_dir);
    // Write the file before storing the hash, so a failure leaves no token nobody can read.
    let secret = auth::new_token();
    write_private(&path, &format!("{secret}\n"))?;
    store
        .create_token(
            "bootstrap",
            &[Role::Agent.to_string(), Role::Publisher.to_string()],
            &[],
            &auth::token_hash(&secret),
        )
        .context("storing the bootstrap token")?;
    Ok(Some(path))
}

/// Writes `content` to `path` with mode 0600, replacing any older file.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode through open(): tighten it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_commands_refuse_a_directory_without_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-the-data-dir");
        for result in [
            run_token(&missing, TokenCommand::List).map(|_| ()),
            check(&missing).map(|_| ()),
        ] {
            let err = format!("{:#}", result.unwrap_err());
            assert!(err.contains("--data-dir"), "{err}");
            assert!(err.contains(&missing.display().to_string()), "{err}");
        }
        assert!(!missing.exists(), "no directory is created");
    }

    #[test]
    fn token_list_is_a_table_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        ensure_bootstrap_token(&store, dir.path()).unwrap();
        let secret = std::fs::read_to_string(bootstrap_token_path(dir.path())).unwrap();
        let out = run_token(dir.path(), TokenCommand::List).unwrap();
        assert!(out.stdout.starts_with("ID "), "{}", out.stdout);
        assert!(out.stdout.contains("bootstrap"), "{}", out.stdout);
        assert!(out.stdout.contains("active"), "{}", out.stdout);
        assert!(!out.stdout.contains(secret.trim()));
        let report = check(dir.path()).unwrap();
        assert_eq!(report.integrity, "ok");
        report.verdict().unwrap();
    }

    #[test]
    fn bootstrap_token_is_private_and_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = ensure_bootstrap_token(&store, dir.path())
            .unwrap()
            .expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let secret = std::fs::read_to_string(&path).unwrap();
        let rec = store
            .token_by_hash(&auth::token_hash(&secret))
            .unwrap()
            .unwrap();
        assert_eq!(rec.roles, ["agent", "publisher"]);
        assert_eq!(ensure_bootstrap_token(&store, dir.path()).unwrap(), None);
    }
}
