//! `ferry-server token …`: creating, listing and revoking API tokens in a data directory, and
//! the bootstrap token written on first start.
//!
//! These work on the database directly, also while a server runs on it (SQLite WAL allows a
//! second writer process to wait its turn), and the server reads tokens on every check, so a
//! revocation applies to the next call.

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
    /// Revoke a token by id or name; it is refused from the next call on.
    Revoke {
        /// The token's id or name, as `token list` shows.
        token: String,
    },
}

/// Runs a `token` subcommand against the store in `data_dir`.
pub fn run_token(data_dir: &Path, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = Store::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    match cmd {
        TokenCommand::Create {
            roles,
            scopes,
            name,
        } => {
            let name = name.unwrap_or_else(|| default_name(&roles));
            let (rec, secret) = auth::create_token(&store, &name, &roles, &scopes)?;
            eprintln!(
                "created token {:?} (id {}, roles {}{}); it is shown only now:",
                rec.name,
                rec.id,
                rec.roles.join(", "),
                scope_note(&rec)
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            println!(
                "{:<4} {:<24} {:<24} {:<28} STATUS",
                "ID", "NAME", "ROLES", "SCOPES"
            );
            for t in store.list_tokens()? {
                println!(
                    "{:<4} {:<24} {:<24} {:<28} {}",
                    t.id,
                    t.name,
                    t.roles.join(","),
                    if t.scopes.is_empty() {
                        "*".to_string()
                    } else {
                        t.scopes.join(",")
                    },
                    if t.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        TokenCommand::Revoke { token } => match store.revoke_token(&token)? {
            Some(rec) => eprintln!("revoked token {:?} (id {})", rec.name, rec.id),
            None => anyhow::bail!(
                "no token with id or name {token:?} in {}; `ferry-server token list` shows them",
                data_dir.display()
            ),
        },
    }
    Ok(())
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

/// `ferry-server check`: SQLite's integrity check and a gapless event log.
pub fn check(data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let integrity = store.integrity_check()?;
    let (events, first, last) = store.event_log_extent()?;
    println!("integrity_check: {integrity}");
    println!("events: {events} (seq {first}..={last})");
    if integrity != "ok" {
        anyhow::bail!("{} failed SQLite's integrity check", store.path().display());
    }
    if events > 0 && events != last - first + 1 {
        anyhow::bail!("the event log has gaps: {events} events between seq {first} and {last}");
    }
    Ok(())
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
