//! Who may do what: tokens, their roles and their repository scopes.
//!
//! A token is `ferry_` and 64 hex digits of randomness, shown once when created; the store keeps
//! only its SHA-256. Every check reads the store, so `ferry-server token revoke` (run as another
//! process against the same data directory) takes effect on the next call.
//!
//! Roles:
//! - `publisher`: Publish, limited to repository prefixes when the token has scopes.
//! - `agent`: Subscribe and ListTags.
//! - `reader`: registry reads (every valid token may read the registry).

use std::fmt;
use std::str::FromStr;

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
}

impl Role {
    /// Every role, in the order `token list` shows them.
    pub const ALL: [Role; 3] = [Role::Publisher, Role::Agent, Role::Reader];

    /// The role's name on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Agent => "agent",
            Role::Reader => "reader",
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
            .ok_or_else(|| format!("role {s:?} is not one of publisher, agent, reader"))
    }
}

/// Why a caller was not let in.
#[derive(Debug, Error, PartialEq, Eq)]
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
    /// A publisher token scoped away from this repository.
    #[error("token {name:?} may publish only under {scopes}; {image} is outside them")]
    OutOfScope {
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
        Err(AuthError::OutOfScope {
            name: self.name.clone(),
            scopes: self.scopes.join(", "),
            image: image.to_string(),
        })
    }

    /// Subscribe and ListTags: role agent.
    pub fn may_watch(&self) -> Result<(), AuthError> {
        self.require(Role::Agent, "subscribe to events or list tags")
    }
}

/// Whether `image` is `scope` or below it, by whole path segments: scope `ghcr.io/acme` covers
/// `ghcr.io/acme/app`, not `ghcr.io/acme-evil/app`.
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

/// A new random token: `ferry_` and 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator");
    format!("ferry_{}", hex::encode(bytes))
}

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
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
        scopes: rec.scopes,
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
            return Ok(Err(AuthError::Missing { action, role }));
        };
        Ok(match self.store().token_by_hash(&token_hash(token))? {
            None => Err(AuthError::Unknown),
            Some(rec) => principal(rec),
        })
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
    if !scopes.is_empty() && !roles.contains(&Role::Publisher) {
        return Err(ServiceError::InvalidToken(
            "--scope limits publishing, so it needs --role publisher".into(),
        ));
    }
    let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    let secret = new_token();
    let rec = store.create_token(name, &names, scopes, &token_hash(&secret))?;
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

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("ferry_") && a.len() == 70, "{a}");
        assert_eq!(token_hash(&a), token_hash(&format!(" {a}\n")));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn roles_parse_with_a_clear_error() {
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        let err = "admin".parse::<Role>().unwrap_err();
        assert!(
            err.contains("\"admin\"") && err.contains("publisher, agent, reader"),
            "{err}"
        );
    }
}
