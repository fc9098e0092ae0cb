//! Who may do what: tokens, their roles and their repository scopes.
//!
//! A token is `ferry_` and 64 hex digits of randomness, shown once when created; the store keeps
//! only its SHA-256. [`Service::authenticate`] reads the store on every call, so
//! `ferry-server token revoke` (run as another process against the same data directory) takes
//! effect on the next gRPC call. Registry reads go through [`TokenChecks`], which trusts an
//! answer of the store for [`TOKEN_CHECK_INTERVAL`], so a revocation reaches them within that.
//!
//! Roles:
//! - `publisher`: Publish, limited to repository prefixes when the token has scopes.
//! - `agent`: Subscribe and ListTags.
//! - `reader`: registry reads (every valid token may read the registry).
//! - `promoter`: ApplyPipeline and ring moves (Promote, Shift, Unshift, Rollback, Reject, a
//!   publish `--to` a ring past ante), limited to image prefixes when the token has scopes.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::reference::image_prefix_from_ferry_repository;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{Service, ServiceError};
use crate::store::TokenRecord;

/// A role a token can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// May publish releases (within its scopes).
    Publisher,
    /// May subscribe to events and list current tags.
    Agent,
    /// May read the registry.
    Reader,
    /// May apply pipelines and move rings (within its scopes).
    Promoter,
}

impl Role {
    /// Every role, in the order `token list` shows them.
    pub const ALL: [Role; 4] = [Role::Publisher, Role::Agent, Role::Reader, Role::Promoter];

    /// The role's name on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Agent => "agent",
            Role::Reader => "reader",
            Role::Promoter => "promoter",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role {s:?} is not one of publisher, agent, reader, promoter"))
    }
}

/// Why a caller was not let in.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AuthError {
    /// No token was sent.
    #[error("no token: {action} needs a token with role {role} (send `authorization: Bearer <token>`; `ferry` takes --token or FERRY_TOKEN)")]
    Missing {
        /// What was attempted.
        action: &'static str,
        /// The role it needs.
        role: Role,
    },
    /// The token is not one this server issued.
    #[error("the token is not known to this server")]
    Unknown,
    /// The token was revoked.
    #[error("token {0:?} has been revoked")]
    Revoked(String),
    /// The token lacks the role.
    #[error("token {name:?} (roles: {roles}) may not {action}: that needs role {role}")]
    MissingRole {
        /// Token name.
        name: String,
        /// Its roles.
        roles: String,
        /// What was attempted.
        action: &'static str,
        /// The role it needs.
        role: Role,
    },
    /// A publisher or promoter token scoped away from this repository.
    #[error("token {name:?} may {action} only under {scopes}; {image} is outside them")]
    OutOfScope {
        /// What was attempted (publish, move rings of).
        action: &'static str,
        /// Token name.
        name: String,
        /// Its scopes.
        scopes: String,
        /// The image refused.
        image: String,
    },
}

impl AuthError {
    /// Whether the caller is unidentified (as opposed to identified but not allowed).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::Missing { .. } | AuthError::Unknown | AuthError::Revoked(_)
        )
    }
}

/// A caller identified by a valid, unrevoked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id.
    pub id: i64,
    /// Token name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Repository prefixes it may publish under; empty means any.
    pub scopes: Vec<String>,
}

impl Principal {
    fn require(&self, role: Role, action: &'static str) -> Result<(), AuthError> {
        if self.roles.contains(&role) {
            return Ok(());
        }
        Err(AuthError::MissingRole {
            name: self.name.clone(),
            roles: self
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            action,
            role,
        })
    }

    /// Publish to `image` (normalised name): role publisher, and `image` inside a scope.
    pub fn may_publish(&self, image: &str) -> Result<(), AuthError> {
        self.require(Role::Publisher, "publish")?;
        if self.scopes.is_empty() || self.scopes.iter().any(|s| in_scope(image, s)) {
            return Ok(());
        }
        Err(self.out_of_scope("publish", image))
    }

    fn out_of_scope(&self, action: &'static str, image: &str) -> AuthError {
        AuthError::OutOfScope {
            action,
            name: self.name.clone(),
            scopes: self.scopes.join(", "),
            image: image.to_string(),
        }
    }

    /// Move rings of `image` (normalised name) or apply a pipeline listing it: role promoter,
    /// and `image` inside a scope.
    pub fn may_promote(&self, image: &str) -> Result<(), AuthError> {
        self.require(Role::Promoter, "move rings or apply pipelines")?;
        if self.scopes.is_empty() || self.scopes.iter().any(|s| in_scope(image, s)) {
            return Ok(());
        }
        Err(self.out_of_scope("move rings of", image))
    }

    /// Report what a cluster's targets run: role agent.
    pub fn may_report(&self) -> Result<(), AuthError> {
        self.require(Role::Agent, "report cluster state")
    }

    /// Subscribe and ListTags: role agent.
    pub fn may_watch(&self) -> Result<(), AuthError> {
        self.require(Role::Agent, "subscribe to events or list tags")
    }
}

/// Whether `image` (a normalised image name) is `scope` or below it, by whole path segments:
/// scope `ghcr.io/acme` covers `ghcr.io/acme/app`, not `ghcr.io/acme-evil/app`. `scope` must be
/// in the image form ([`normalise_scope`]).
pub fn in_scope(image: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    image == scope
        || image
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A scope is a prefix of normalised image names: segments of lowercase letters, digits and
/// `._-`, with `:` for a registry port (`127.0.0.1:5000/team`), joined by `/`.
fn valid_scope(scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    !scope.is_empty()
        && scope.len() <= 255
        && scope.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:".contains(&b))
        })
}

/// The one form a scope is stored and compared in: the image form (`127.0.0.1:5001/team`),
/// because that is what [`Principal::may_publish`] is given, without a trailing `/`. A scope may
/// also be written as ferry's repository name for the same prefix (`127.0.0.1_5001/team`, as the
/// registry API and `_catalog` show it); both mean the same repositories. Applied when a token is
/// created and again when one is loaded, so scopes stored in the `_` form before this rule match
/// too.
pub fn normalise_scope(scope: &str) -> String {
    image_prefix_from_ferry_repository(scope.trim_end_matches('/'))
}

/// A new random token: `ferry_` and 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator");
    format!("ferry_{}", hex::encode(bytes))
}

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest(token))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

fn principal(rec: TokenRecord) -> Result<Principal, AuthError> {
    if rec.revoked_at_ms.is_some() {
        return Err(AuthError::Revoked(rec.name));
    }
    Ok(Principal {
        id: rec.id,
        name: rec.name,
        // A role name this binary does not know (from a newer ferry) grants nothing.
        roles: rec.roles.iter().filter_map(|r| r.parse().ok()).collect(),
        scopes: rec.scopes.iter().map(|s| normalise_scope(s)).collect(),
    })
}

impl Service {
    /// Identifies the caller holding `token`. `action` and `role` only word the error when no
    /// token was sent.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        action: &'static str,
        role: Role,
    ) -> Result<Result<Principal, AuthError>, ServiceError> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            self.metrics().token_check("missing");
            return Ok(Err(AuthError::Missing { action, role }));
        };
        let answer = match self.store().token_by_hash(&token_hash(token))? {
            None => Err(AuthError::Unknown),
            Some(rec) => principal(rec),
        };
        self.metrics().token_check(match &answer {
            Ok(_) => "ok",
            Err(AuthError::Revoked(_)) => "revoked",
            Err(_) => "unknown",
        });
        Ok(answer)
    }

    /// Whether the token with this id exists and is not revoked.
    pub fn token_active(&self, id: i64) -> Result<bool, ServiceError> {
        Ok(self.store().token_active(id)?)
    }

    /// Creates a token; returns its record and the secret, which is not stored and cannot be
    /// shown again.
    pub fn create_token(
        &self,
        name: &str,
        roles: &[Role],
        scopes: &[String],
    ) -> Result<(TokenRecord, String), ServiceError> {
        create_token(self.store(), name, roles, scopes)
    }
}

/// How long [`TokenChecks`] trusts an answer of the store before reading it again.
///
/// `ferry-server token revoke` runs as another process and only writes the database, so this
/// process learns of a revocation only by reading it; the interval is the longest a revoked
/// token is still let in. ferry promises one second: 250 ms keeps it with room for a slow read
/// and for requests already past the check. Shorter would buy little: each token then costs the
/// store four indexed reads a second, against tens of thousands of registry requests a second
/// that it answers from memory.
pub const TOKEN_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// What the store said about a token: who holds it, or why it is refused.
pub type TokenAnswer = Result<Arc<Principal>, AuthError>;

/// An answer of the store, when it was asked, and whether a re-read has been handed out.
struct Checked<T> {
    asked_at: Instant,
    answer: T,
    refreshing: bool,
}

/// Recent answers of the store about tokens, for registry reads: a registry client sends its
/// credentials on every request, and reading the store for each (on the blocking pool) cost
/// two thirds of the throughput. Each answer is trusted for `interval` from the moment the store
/// was asked (not answered, so a slow read does not stretch it); after that the next request
/// reads the store again. Past half the interval, the first request to use an answer is told to
/// re-read it in the background, so under steady traffic answers are renewed before they lapse
/// and no request waits for the store: without that, every connection missed at the same moment
/// once per interval, and waited for the blocking pool together.
///
/// Only tokens the store knows are remembered, so the maps hold at most one entry per stored
/// token whatever clients send. Unknown tokens are read every time, as before.
pub struct TokenChecks {
    interval: Duration,
    /// Keyed by the token's SHA-256, as the store keeps it: no secret lingers in memory.
    by_hash: Mutex<HashMap<[u8; 32], Checked<TokenAnswer>>>,
    by_id: Mutex<HashMap<i64, Checked<bool>>>,
}

impl TokenChecks {
    /// No answers yet; each will be trusted for `interval`.
    pub fn new(interval: Duration) -> Self {
        TokenChecks {
            interval,
            by_hash: Mutex::default(),
            by_id: Mutex::default(),
        }
    }

    /// The answer in `entry` if it is younger than the interval, and whether this caller should
    /// re-read it in the background (once per answer, past half the interval).
    fn use_entry<T: Clone>(&self, entry: Option<&mut Checked<T>>) -> Option<(T, bool)> {
        let entry = entry?;
        let age = entry.asked_at.elapsed();
        if age >= self.interval {
            return None;
        }
        let refresh = age >= self.interval / 2 && !std::mem::replace(&mut entry.refreshing, true);
        Some((entry.answer.clone(), refresh))
    }

    /// The caller holding `token`, if the store was asked about it within the interval, and
    /// whether to re-read it now in the background ([`TokenChecks::authenticate`] off the
    /// request's path); `None` means ask the store before answering. Never blocks on the store.
    pub fn recent(&self, token: &str) -> Option<(TokenAnswer, bool)> {
        // Hashed before the lock: every registry request takes it.
        let key = digest(token);
        let mut map = self.by_hash.lock().expect("token checks poisoned");
        self.use_entry(map.get_mut(&key))
    }

    /// [`Service::authenticate`], remembering the answer. Blocking: it reads the store.
    pub fn authenticate(
        &self,
        service: &Service,
        token: &str,
        action: &'static str,
        role: Role,
    ) -> Result<TokenAnswer, ServiceError> {
        let asked_at = Instant::now();
        let answer = service
            .authenticate(Some(token), action, role)?
            .map(Arc::new);
        match &answer {
            // The same read answers for the id, which Bearer registry tokens carry.
            Ok(p) => self.remember_active(p.id, true, asked_at),
            Err(AuthError::Revoked(_)) => {}
            // Unknown (or no token): not remembered, see the type's comment.
            Err(_) => return Ok(answer),
        }
        self.by_hash.lock().expect("token checks poisoned").insert(
            digest(token),
            Checked {
                asked_at,
                answer: answer.clone(),
                refreshing: false,
            },
        );
        Ok(answer)
    }

    /// Whether the token with this id is active, if the store was asked within the interval,
    /// and whether to re-read it now in the background, as [`TokenChecks::recent`]; `None` means
    /// ask [`TokenChecks::token_active`] before answering. Never blocks on the store.
    pub fn recent_active(&self, id: i64) -> Option<(bool, bool)> {
        let mut map = self.by_id.lock().expect("token checks poisoned");
        self.use_entry(map.get_mut(&id))
    }

    /// [`Service::token_active`], remembering the answer. Blocking: it reads the store.
    pub fn token_active(&self, service: &Service, id: i64) -> Result<bool, ServiceError> {
        let asked_at = Instant::now();
        let active = service.token_active(id)?;
        self.remember_active(id, active, asked_at);
        Ok(active)
    }

    fn remember_active(&self, id: i64, active: bool, asked_at: Instant) {
        self.by_id.lock().expect("token checks poisoned").insert(
            id,
            Checked {
                asked_at,
                answer: active,
                refreshing: false,
            },
        );
    }
}

/// [`Service::create_token`] on a bare store (the `token` subcommands do not load the catalog).
pub fn create_token(
    store: &crate::store::Store,
    name: &str,
    roles: &[Role],
    scopes: &[String],
) -> Result<(TokenRecord, String), ServiceError> {
    if roles.is_empty() {
        return Err(ServiceError::InvalidToken(
            "a token needs at least one --role".into(),
        ));
    }
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == ',') {
        return Err(ServiceError::InvalidToken(format!(
            "token name {name:?} must be 1 to 64 characters without commas or control characters"
        )));
    }
    for scope in scopes {
        if !valid_scope(scope) {
            return Err(ServiceError::InvalidToken(format!(
                "scope {scope:?} must be a repository prefix such as ghcr.io/acme or team/app"
            )));
        }
    }
    if !scopes.is_empty() && !roles.contains(&Role::Publisher) && !roles.contains(&Role::Promoter) {
        return Err(ServiceError::InvalidToken(
            "--scope limits publishing and promoting, so it needs --role publisher or --role promoter"
                .into(),
        ));
    }
    let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    let mut scopes: Vec<String> = scopes.iter().map(|s| normalise_scope(s)).collect();
    scopes.sort();
    scopes.dedup();
    let secret = new_token();
    let rec = store.create_token(name, &names, &scopes, &token_hash(&secret))?;
    Ok((rec, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_whole_segments() {
        assert!(in_scope("ghcr.io/acme/app", "ghcr.io/acme"));
        assert!(in_scope("ghcr.io/acme/app", "ghcr.io/acme/"));
        assert!(in_scope("ghcr.io/acme", "ghcr.io/acme"));
        assert!(!in_scope("ghcr.io/acme-evil/app", "ghcr.io/acme"));
        assert!(!in_scope("ghcr.io/other/app", "ghcr.io/acme"));
    }

    #[test]
    fn scope_syntax() {
        for ok in [
            "ghcr.io/acme",
            "ghcr.io/acme/",
            "127.0.0.1:5000/team",
            "docker.io/library/nginx",
        ] {
            assert!(valid_scope(ok), "{ok}");
        }
        for bad in ["", "/", "Acme", "a//b", "a b", "ghcr.io/*"] {
            assert!(!valid_scope(bad), "{bad}");
        }
    }

    /// A service on a fresh store in `dir`.
    fn service(dir: &std::path::Path) -> Service {
        let store = std::sync::Arc::new(crate::store::Store::open(dir).unwrap());
        Service::load(store, super::super::Limits::default()).unwrap()
    }

    #[test]
    fn scopes_in_the_repository_form_match_the_images_they_name() {
        // Regression: `--scope 127.0.0.1_5001/team` (ferry's repository form) was accepted but
        // compared against normalised image names (`127.0.0.1:5001/team/app`), so it never
        // matched and the token could publish nothing.
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        let (rec, secret) = service
            .create_token(
                "ci",
                &[Role::Publisher],
                &["127.0.0.1_5001/team/".into(), "127.0.0.1:5001/team".into()],
            )
            .unwrap();
        assert_eq!(
            rec.scopes,
            ["127.0.0.1:5001/team"],
            "stored in the image form"
        );
        let p = service
            .authenticate(Some(&secret), "publish", Role::Publisher)
            .unwrap()
            .unwrap();
        assert_eq!(p.may_publish("127.0.0.1:5001/team/app"), Ok(()));
        assert!(p.may_publish("127.0.0.1:5001/other/app").is_err());
        assert!(p.may_publish("127.0.0.1:5002/team/app").is_err());

        // A scope stored in the `_` form before scopes were normalised matches too.
        let old = service
            .store()
            .create_token(
                "old",
                &["publisher".into()],
                &["127.0.0.1_5001/team".into()],
                &token_hash("ferry_old"),
            )
            .unwrap();
        assert_eq!(old.scopes, ["127.0.0.1_5001/team"]);
        let p = service
            .authenticate(Some("ferry_old"), "publish", Role::Publisher)
            .unwrap()
            .unwrap();
        assert_eq!(p.may_publish("127.0.0.1:5001/team/app"), Ok(()));
        assert!(p.may_publish("127.0.0.1:5001/teams/app").is_err());
    }

    #[test]
    fn token_checks_are_trusted_for_the_interval_only() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        let (rec, secret) = service
            .create_token("viewer", &[Role::Reader], &[])
            .unwrap();
        let checks = TokenChecks::new(Duration::from_millis(200));
        let recent = |token: &str| checks.recent(token).map(|(answer, _)| answer);
        let recent_active = |id| checks.recent_active(id).map(|(active, _)| active);
        assert_eq!(recent(&secret), None, "nothing asked yet");
        assert_eq!(recent_active(rec.id), None);
        let p = checks
            .authenticate(&service, &secret, "read", Role::Reader)
            .unwrap()
            .unwrap();
        assert_eq!(p.id, rec.id);
        assert_eq!(recent(&secret), Some(Ok(p.clone())));
        assert_eq!(
            recent(&format!(" {secret}\n")),
            Some(Ok(p.clone())),
            "the same token, as the store would read it"
        );
        assert_eq!(recent_active(rec.id), Some(true), "one read answers both");

        service.store().revoke_token("viewer").unwrap();
        // Within the interval the last answer stands; past half of it, one caller is told to
        // re-read it; after it, the store is read before answering.
        assert_eq!(checks.recent(&secret), Some((Ok(p.clone()), false)));
        std::thread::sleep(Duration::from_millis(110));
        assert_eq!(checks.recent(&secret), Some((Ok(p.clone()), true)));
        assert_eq!(checks.recent(&secret), Some((Ok(p), false)), "one re-read");
        std::thread::sleep(Duration::from_millis(140));
        assert_eq!(recent(&secret), None);
        assert_eq!(recent_active(rec.id), None);
        let revoked = AuthError::Revoked("viewer".into());
        assert_eq!(
            checks
                .authenticate(&service, &secret, "read", Role::Reader)
                .unwrap(),
            Err(revoked.clone())
        );
        assert_eq!(recent(&secret), Some(Err(revoked)));
        assert!(!checks.token_active(&service, rec.id).unwrap());
        assert_eq!(recent_active(rec.id), Some(false));

        // Unknown tokens are not remembered: clients cannot grow the maps.
        assert_eq!(
            checks
                .authenticate(&service, "ferry_unknown", "read", Role::Reader)
                .unwrap(),
            Err(AuthError::Unknown)
        );
        assert_eq!(recent("ferry_unknown"), None);
        assert_eq!(checks.by_hash.lock().unwrap().len(), 1);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("ferry_") && a.len() == 70, "{a}");
        assert_eq!(token_hash(&a), token_hash(&format!(" {a}\n")));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn promoters_may_be_scoped_and_stay_inside_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path());
        let (rec, secret) = service
            .create_token("bot", &[Role::Promoter], &["ghcr.io/acme".into()])
            .unwrap();
        assert_eq!(rec.roles, ["promoter"]);
        let p = service
            .authenticate(Some(&secret), "promote", Role::Promoter)
            .unwrap()
            .unwrap();
        assert_eq!(p.may_promote("ghcr.io/acme/app"), Ok(()));
        let err = p.may_promote("ghcr.io/other/app").unwrap_err();
        assert!(
            err.to_string()
                .contains("may move rings of only under ghcr.io/acme"),
            "{err}"
        );
        assert!(
            p.may_publish("ghcr.io/acme/app").is_err(),
            "promoter is not publisher"
        );
        let err = service
            .create_token("watch", &[Role::Agent], &["ghcr.io/acme".into()])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("--role publisher or --role promoter"),
            "{err}"
        );
    }

    #[test]
    fn roles_parse_with_a_clear_error() {
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        let err = "admin".parse::<Role>().unwrap_err();
        assert!(
            err.contains("\"admin\"") && err.contains("publisher, agent, reader, promoter"),
            "{err}"
        );
    }
}
