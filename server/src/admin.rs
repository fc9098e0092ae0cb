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
        /// Role(s): publisher, agent, reader, promoter. Repeat or separate with commas.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<Role>,
        /// Limit a publisher or promoter to repositories under this prefix of normalised image names
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
        format!(
            ", publishing and promoting only under {}",
            rec.scopes.join(", ")
        )
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

/// What [`ensure_bootstrap_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// A first start: a new token was generated and written to this file in the data directory.
    Generated(PathBuf),
    /// A first start: the token in this file (`--bootstrap-token-file`) was stored; nothing was
    /// written to the data directory.
    FromFile(PathBuf),
    /// The store already holds tokens; nothing was done. Holds the `--bootstrap-token-file`
    /// that was therefore not read, if one was given.
    AlreadyHasTokens(Option<PathBuf>),
}

impl Bootstrap {
    /// Logs what was done, for the operator who wonders where the first token is.
    pub fn log(&self) {
        match self {
            Bootstrap::Generated(path) => tracing::info!(
                path = %path.display(),
                "first start: wrote a token with roles publisher and agent (readable only by this user); \
                 pass it to `ferry publish --token-file` or an agent's tokenFile, and create others with `ferry-server token create`"
            ),
            Bootstrap::FromFile(path) => tracing::info!(
                path = %path.display(),
                "first start: stored the token in --bootstrap-token-file as token \"bootstrap\" (roles publisher and agent); \
                 create others with `ferry-server token create`"
            ),
            Bootstrap::AlreadyHasTokens(Some(path)) => tracing::info!(
                path = %path.display(),
                "--bootstrap-token-file ignored: the database already holds tokens, and the file is read only on a first start; \
                 manage tokens with `ferry-server token`"
            ),
            Bootstrap::AlreadyHasTokens(None) => {}
        }
    }
}

/// On a store with no tokens at all (a first start), stores a `bootstrap` token with roles
/// publisher and agent: the one in `token_file` when given (a Kubernetes Secret, say), else a
/// new one written to `DIR/bootstrap-token`, readable by the owner only. A store that already
/// holds tokens is left alone, and `token_file` is not read.
pub fn ensure_bootstrap_token(
    store: &Store,
    data_dir: &Path,
    token_file: Option<&Path>,
) -> anyhow::Result<Bootstrap> {
    if store.token_count()? > 0 {
        return Ok(Bootstrap::AlreadyHasTokens(
            token_file.map(Path::to_path_buf),
        ));
    }
    let (secret, outcome) = match token_file {
        Some(file) => (
            read_token_file(file)?,
            Bootstrap::FromFile(file.to_path_buf()),
        ),
        None => {
            let path = bootstrap_token_path(data_dir);
            // Write the file before storing the hash, so a failure leaves no token nobody can
            // read.
            let secret = auth::new_token();
            write_private(&path, &format!("{secret}\n"))?;
            (secret, Bootstrap::Generated(path))
        }
    };
    store
        .create_token(
            "bootstrap",
            &[Role::Agent.to_string(), Role::Publisher.to_string()],
            &[],
            &auth::token_hash(&secret),
        )
        .context("storing the bootstrap token")?;
    Ok(outcome)
}

/// The token in a `--bootstrap-token-file`, surrounding whitespace trimmed. It must look like
/// the tokens ferry makes, so that a file holding a placeholder, a path or a token of another
/// system is refused at start instead of becoming a credential nobody can use.
fn read_token_file(file: &Path) -> anyhow::Result<String> {
    let content = std::fs::read_to_string(file)
        .with_context(|| format!("reading --bootstrap-token-file {}", file.display()))?;
    let token = content.trim();
    if !is_ferry_token(token) {
        // The content is not echoed: it may be a real secret of something else.
        anyhow::bail!(
            "--bootstrap-token-file {}: does not hold a ferry token (`ferry_` and 64 lowercase hex \
             digits, {} characters, found {}); make one with `printf 'ferry_%s\\n' \"$(openssl rand -hex 32)\"`",
            file.display(),
            FERRY_TOKEN_LEN,
            token.chars().count()
        );
    }
    Ok(token.to_string())
}

/// `ferry_` and 64 hex digits.
const FERRY_TOKEN_LEN: usize = "ferry_".len() + 64;

/// Whether `token` has the shape of the tokens [`auth::new_token`] makes.
fn is_ferry_token(token: &str) -> bool {
    token.len() == FERRY_TOKEN_LEN
        && token.strip_prefix("ferry_").is_some_and(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
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
        ensure_bootstrap_token(&store, dir.path(), None).unwrap();
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
        let Bootstrap::Generated(path) = ensure_bootstrap_token(&store, dir.path(), None).unwrap()
        else {
            panic!("a first start writes the token");
        };
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
        assert_eq!(
            ensure_bootstrap_token(&store, dir.path(), None).unwrap(),
            Bootstrap::AlreadyHasTokens(None)
        );
    }

    #[test]
    fn bootstrap_token_comes_from_the_file_on_a_first_start_only() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let file = secrets.path().join("token");
        let token = format!("ferry_{}", "0123456789abcdef".repeat(4));
        // As `kubectl create secret` or `printf … > file` leave it: with a newline.
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let store = Store::open(dir.path()).unwrap();

        assert_eq!(
            ensure_bootstrap_token(&store, dir.path(), Some(&file)).unwrap(),
            Bootstrap::FromFile(file.clone())
        );
        let rec = store.token_by_hash(&auth::token_hash(&token)).unwrap();
        let rec = rec.expect("the file's token is stored");
        assert_eq!(rec.name, "bootstrap");
        assert_eq!(rec.roles, ["agent", "publisher"]);
        assert!(
            !bootstrap_token_path(dir.path()).exists(),
            "no token file is written into the data directory"
        );

        // A later start ignores the file, even one that changed or went bad.
        std::fs::write(&file, "not a token").unwrap();
        assert_eq!(
            ensure_bootstrap_token(&store, dir.path(), Some(&file)).unwrap(),
            Bootstrap::AlreadyHasTokens(Some(file.clone()))
        );
        assert_eq!(store.token_count().unwrap(), 1);
    }

    #[test]
    fn bootstrap_token_file_without_a_ferry_token_is_refused_and_nothing_stored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let store = Store::open(dir.path()).unwrap();
        let short = format!("ferry_{}", "a".repeat(63));
        let upper = format!("ferry_{}", "A".repeat(64));
        let other = format!("ghp_{}", "a".repeat(66));
        for bad in [
            "",
            "REPLACE-me",
            short.as_str(),
            upper.as_str(),
            other.as_str(),
        ] {
            std::fs::write(&file, bad).unwrap();
            let err = ensure_bootstrap_token(&store, dir.path(), Some(&file)).unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains(&file.display().to_string()), "{err}");
            assert!(err.contains("64 lowercase hex"), "{err}");
            assert!(err.contains("openssl rand -hex 32"), "{err}");
            if !bad.is_empty() {
                assert!(!err.contains(bad), "the content is not echoed: {err}");
            }
        }
        let missing = dir.path().join("missing");
        let err = ensure_bootstrap_token(&store, dir.path(), Some(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains(&missing.display().to_string()));
        assert_eq!(store.token_count().unwrap(), 0);
        assert!(!bootstrap_token_path(dir.path()).exists());
    }
}
