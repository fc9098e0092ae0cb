//! Registry authentication (`--registry-auth token`): who may read the registry, in the two
//! ways registry clients log in.
//!
//! - **Basic**: any user name, a ferry token as the password, on every request.
//! - **Bearer token flow** (what docker, skopeo and crane do when `/v2/` answers with a Bearer
//!   challenge): the client asks `GET /token?service=ferry&scope=repository:NAME:pull` on this
//!   host, with Basic credentials as above, and gets a short-lived registry token for exactly
//!   those repositories, which it then sends as `Authorization: Bearer …`.
//!
//! Registry tokens are `base64url(grant).base64url(HMAC-SHA256(grant))` under a key drawn at
//! start-up, so checking one needs no lookup of the grant. The ferry token behind either kind
//! is checked in [`TokenChecks`]: in memory while the store's last answer about it is younger
//! than [`TOKEN_CHECK_INTERVAL`] (250 ms), on the blocking pool otherwise, so a revocation by
//! `ferry-server token revoke` applies within that interval. A restart invalidates issued
//! registry tokens; clients answer the 401 by asking for a new one. Every valid ferry token may
//! read, whatever its roles: reading is the least any role does.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{OciError, State};
use crate::service::auth::{AuthError, Principal, Role, TokenChecks, TOKEN_CHECK_INTERVAL};

/// How registry reads are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryAuthMode {
    /// Anyone who can reach the port may read (the default; image metadata is usually no
    /// secret, and the layers stay behind the origin registry's own auth).
    Anonymous,
    /// Reads need a ferry token, by Basic auth or the Bearer token flow.
    Token,
}

/// The registry's authentication settings, token-signing key and recent token checks.
pub struct RegistryAuth {
    mode: RegistryAuthMode,
    /// HMAC-SHA256 keyed with the signing key. Keying hashes the key twice; done once here, each
    /// token costs only a clone and its own bytes.
    mac: Hmac<Sha256>,
    ttl: Duration,
    /// Shared with the blocking pool, where misses read the store.
    checks: Arc<TokenChecks>,
}

/// What a registry token grants.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Grant {
    /// The ferry token it was issued against.
    tid: i64,
    /// Repositories it may pull.
    repos: Vec<String>,
    /// Expiry, seconds since the epoch.
    exp: u64,
}

/// The ferry service name in challenges and token requests.
const SERVICE: &str = "ferry";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RegistryAuth {
    /// Settings for `mode`, with a fresh signing key; issued tokens live `ttl`.
    pub fn new(mode: RegistryAuthMode, ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the OS random number generator");
        RegistryAuth {
            mode,
            mac: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"),
            ttl,
            checks: Arc::new(TokenChecks::new(TOKEN_CHECK_INTERVAL)),
        }
    }

    /// The mode.
    pub fn mode(&self) -> RegistryAuthMode {
        self.mode
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    fn issue(&self, grant: &Grant) -> String {
        let payload = serde_json::to_vec(grant).expect("grant serialises");
        let mut mac = self.mac();
        mac.update(&payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The grant of a registry token this server issued and that has not expired.
    fn verify(&self, token: &str) -> Option<Grant> {
        let (payload, sig) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&sig).ok()?;
        let grant: Grant = serde_json::from_slice(&payload).ok()?;
        (grant.exp > now_secs()).then_some(grant)
    }
}

/// `Bearer realm="<scheme>://<host>/token",service="ferry"[,scope=…][,error=…]`: the realm is
/// on the host the client used, so it works behind any name the registry is reached by.
fn challenge(req: &HttpRequest, scope: Option<&str>, error: Option<&str>) -> String {
    let info = req.connection_info();
    let mut c = format!(
        "Bearer realm=\"{}://{}/token\",service=\"{SERVICE}\"",
        info.scheme(),
        info.host()
    );
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

fn pull_scope(repository: Option<&str>) -> Option<String> {
    repository.map(|r| format!("repository:{r}:pull"))
}

/// The ferry token in `Authorization: Basic base64(user:token)`, if that is what was sent.
fn basic_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_string())
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// Checks a ferry token: in memory when it was checked recently (re-reading it in the
/// background when due), else on the blocking pool.
async fn principal(
    state: &State,
    auth: &RegistryAuth,
    token: String,
) -> Result<Arc<Principal>, OciError> {
    let found = match auth.checks.recent(&token) {
        Some((found, refresh)) => {
            if refresh {
                let (state, checks) = (state.clone(), auth.checks.clone());
                background(move || {
                    checks
                        .authenticate(&state, &token, "read the registry", Role::Reader)
                        .map(drop)
                });
            }
            found
        }
        None => {
            let (state, checks) = (state.clone(), auth.checks.clone());
            web::block(move || {
                checks.authenticate(&state, &token, "read the registry", Role::Reader)
            })
            .await
            .map_err(|_| {
                OciError::new(
                    actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "token check was cancelled",
                )
            })??
        }
    };
    found.map_err(|e: AuthError| {
        OciError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            e.to_string(),
        )
    })
}

/// Lets a read of `repository` (None: `/v2/` or the catalog) through, or answers 401 with the
/// challenge that tells the client how to log in.
pub(super) async fn check(
    state: &State,
    auth: &RegistryAuth,
    req: &HttpRequest,
    repository: Option<&str>,
) -> Result<(), OciError> {
    if auth.mode == RegistryAuthMode::Anonymous {
        return Ok(());
    }
    let scope = pull_scope(repository);
    let refuse = |message: String, error: Option<&str>| {
        OciError::unauthorized(message, challenge(req, scope.as_deref(), error))
    };
    if let Some(token) = bearer_token(req) {
        let Some(grant) = auth.verify(token) else {
            return Err(refuse(
                "the registry token is not valid or has expired; ask /token for a new one".into(),
                Some("invalid_token"),
            ));
        };
        if let Some(repo) = repository {
            if !grant.repos.iter().any(|r| r == repo) {
                return Err(refuse(
                    format!("the registry token does not grant pull on {repo}"),
                    Some("insufficient_scope"),
                ));
            }
        }
        // The ferry token behind it may have been revoked since.
        return principal_by_id(state, auth, grant.tid)
            .await
            .map_err(|e| refuse(e, Some("invalid_token")));
    }
    match basic_token(req) {
        Some(token) => principal(state, auth, token)
            .await
            .map(|_| ())
            .map_err(|e| refuse(e.to_string(), None)),
        None => Err(refuse(
            "this registry needs a ferry token: log in with any user name and the token as the password".into(),
            None,
        )),
    }
}

/// Re-reads a token check on the blocking pool without holding up the request that noticed it
/// was due (`spawn_blocking` runs it whether or not its handle is awaited). A failure leaves the
/// old answer to lapse, and the next request after that reads the store itself.
fn background(refresh: impl FnOnce() -> Result<(), crate::service::ServiceError> + Send + 'static) {
    drop(actix_web::rt::task::spawn_blocking(move || {
        if let Err(e) = refresh() {
            tracing::warn!(error = %e, "re-reading a token check failed");
        }
    }));
}

/// Whether the ferry token with this id is still active: in memory when it was checked
/// recently, else on the blocking pool.
async fn principal_by_id(state: &State, auth: &RegistryAuth, id: i64) -> Result<(), String> {
    let active = match auth.checks.recent_active(id) {
        Some((active, refresh)) => {
            if refresh {
                let (state, checks) = (state.clone(), auth.checks.clone());
                background(move || checks.token_active(&state, id).map(drop));
            }
            active
        }
        None => {
            let (state, checks) = (state.clone(), auth.checks.clone());
            web::block(move || checks.token_active(&state, id))
                .await
                .map_err(|_| "token check was cancelled".to_string())?
                .map_err(|e| e.to_string())?
        }
    };
    if active {
        Ok(())
    } else {
        Err("the ferry token behind this registry token has been revoked".into())
    }
}

#[derive(Serialize)]
struct TokenAnswer {
    token: String,
    access_token: String,
    expires_in: u64,
    issued_at: String,
}

/// The repositories a `/token` request asks to pull: every `repository:NAME:ACTIONS` scope
/// whose actions include pull (push is never granted: this registry is read-only). Clients send
/// one `scope` parameter per repository, or several scopes separated by spaces.
fn requested_repos(query: &str) -> Vec<String> {
    let mut repos = Vec::new();
    for (key, value) in url_pairs(query) {
        if key != "scope" {
            continue;
        }
        for scope in value.split(' ') {
            let mut parts = scope.splitn(3, ':');
            if let (Some("repository"), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            {
                if actions.split(',').any(|a| a == "pull" || a == "*") {
                    repos.push(name.to_string());
                }
            }
        }
    }
    repos.sort();
    repos.dedup();
    repos
}

/// The decoded `key=value` pairs of a query string, repeated keys kept.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// `GET /token`: trades a ferry token (Basic auth) for a registry token scoped to the
/// repositories asked for.
pub(super) async fn token_endpoint(
    state: State,
    auth: web::Data<RegistryAuth>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let Some(token) = basic_token(&req) else {
        return Err(OciError::unauthorized(
            "GET /token needs Basic credentials: any user name, a ferry token as the password",
            format!("Basic realm=\"{SERVICE}\""),
        ));
    };
    let p = principal(&state, &auth, token)
        .await
        .map_err(|e| OciError::unauthorized(e.to_string(), format!("Basic realm=\"{SERVICE}\"")))?;
    let grant = Grant {
        tid: p.id,
        repos: requested_repos(req.query_string()),
        exp: now_secs() + auth.ttl.as_secs(),
    };
    let token = auth.issue(&grant);
    tracing::debug!(token = %p.name, repos = ?grant.repos, "issued a registry token");
    Ok(HttpResponse::Ok().json(TokenAnswer {
        access_token: token.clone(),
        token,
        expires_in: auth.ttl.as_secs(),
        issued_at: httpdate_now(),
    }))
}

/// RFC 3339 time of now (docker reads `issued_at` with `expires_in`).
fn httpdate_now() -> String {
    ferry_proto::time::rfc3339(now_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_tokens_verify_only_untampered_and_unexpired() {
        let auth = RegistryAuth::new(RegistryAuthMode::Token, Duration::from_secs(60));
        let grant = Grant {
            tid: 7,
            repos: vec!["a/b".into()],
            exp: now_secs() + 60,
        };
        let token = auth.issue(&grant);
        assert_eq!(auth.verify(&token), Some(grant));
        let other = RegistryAuth::new(RegistryAuthMode::Token, Duration::from_secs(60));
        assert_eq!(other.verify(&token), None, "another key");
        let (payload, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"tid":7,"repos":["x"],"exp":99999999999}"#);
        assert_eq!(
            auth.verify(&format!("{forged}.{sig}")),
            None,
            "forged grant"
        );
        assert_eq!(auth.verify(payload), None);
        let expired = auth.issue(&Grant {
            tid: 7,
            repos: vec![],
            exp: now_secs() - 1,
        });
        assert_eq!(auth.verify(&expired), None, "expired");
    }

    #[test]
    fn token_requests_grant_pull_only() {
        assert_eq!(
            requested_repos("service=ferry&scope=repository:a/b:pull&scope=repository:c:push,pull&scope=repository:d:push"),
            ["a/b", "c"]
        );
        assert_eq!(
            requested_repos("scope=repository%3Ax%3Apull%20repository%3Ay%3Apull"),
            ["x", "y"]
        );
        assert!(requested_repos("service=ferry").is_empty());
    }

    #[test]
    fn issued_at_is_rfc3339_of_now() {
        let before = ferry_proto::time::rfc3339(now_secs() as i64);
        let issued = httpdate_now();
        let after = ferry_proto::time::rfc3339(now_secs() as i64);
        assert!(
            before <= issued && issued <= after,
            "{before} <= {issued} <= {after}"
        );
        assert_eq!(issued.len(), "2026-12-01T11:46:16Z".len());
    }
}
