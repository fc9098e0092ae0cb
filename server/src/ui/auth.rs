//! Who is looking at the dashboard: the login form, sessions, and the CSRF and Origin checks.
//!
//! Logging in trades a ferry token for a session: the server keeps the token's principal and a
//! per-session CSRF token under a random session id, and the browser keeps only that id, in a
//! cookie that is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends
//! it) and `Secure` (only over HTTPS; browsers treat `http://localhost` and `127.0.0.1` as
//! secure, so it works on plain-HTTP loopback too). The token itself is never sent again, and
//! each request re-checks that it has not been revoked (through [`TokenChecks`], as registry
//! reads do). Sessions live in memory: a restart logs everyone out.
//!
//! With `--registry-auth token` every page needs a session; in anonymous mode pages are open
//! and read-only, and logging in only unlocks the ring buttons, which need a promoter token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::{layout, State};
use crate::registry::auth::RegistryAuthMode;
use crate::service::auth::{Principal, Role, TokenChecks, TOKEN_CHECK_INTERVAL};

/// The session cookie's name.
pub(super) const COOKIE: &str = "ferry_session";
/// How long a session lasts after login.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once; past that the oldest is dropped, so logins cannot grow memory.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    principal: Arc<Principal>,
    csrf: String,
    created: Instant,
}

/// The dashboard's authentication settings and sessions.
pub struct UiAuth {
    mode: RegistryAuthMode,
    sessions: Mutex<HashMap<String, Session>>,
    checks: Arc<TokenChecks>,
    /// Turns true on shutdown: live streams end so the listener can stop.
    pub(super) closing: tokio::sync::watch::Receiver<bool>,
}

/// The person looking at a page.
#[derive(Debug, Clone, Default)]
pub(super) struct Viewer {
    /// The session's principal; None when anonymous.
    pub principal: Option<Arc<Principal>>,
    /// The session's CSRF token (empty when anonymous).
    pub csrf: String,
}

impl Viewer {
    /// Whether ring buttons are shown: the token holds role promoter.
    pub fn may_move_rings(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.roles.contains(&Role::Promoter))
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator");
    hex::encode(bytes)
}

impl UiAuth {
    /// Settings for `mode`, with no sessions.
    pub fn new(mode: RegistryAuthMode, closing: tokio::sync::watch::Receiver<bool>) -> Self {
        UiAuth {
            mode,
            sessions: Mutex::new(HashMap::new()),
            checks: Arc::new(TokenChecks::new(TOKEN_CHECK_INTERVAL)),
            closing,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().expect("sessions poisoned")
    }

    fn open(&self, principal: Arc<Principal>) -> String {
        let id = random_hex();
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                principal,
                csrf: random_hex(),
                created: Instant::now(),
            },
        );
        id
    }

    /// The viewer of `req`, or the answer to send instead: the login page when token mode needs
    /// a session this request lacks.
    pub(super) async fn viewer(
        &self,
        state: &State,
        req: &HttpRequest,
    ) -> Result<Viewer, HttpResponse> {
        let found = req.cookie(COOKIE).and_then(|c| {
            let sessions = self.sessions();
            sessions
                .get(c.value())
                .filter(|s| s.created.elapsed() < SESSION_TTL)
                .map(|s| (s.principal.clone(), s.csrf.clone()))
        });
        if let Some((principal, csrf)) = found {
            if self.still_active(state, principal.id).await {
                return Ok(Viewer {
                    principal: Some(principal),
                    csrf,
                });
            }
            if let Some(c) = req.cookie(COOKIE) {
                self.sessions().remove(c.value());
            }
        }
        match self.mode {
            RegistryAuthMode::Anonymous => Ok(Viewer::default()),
            RegistryAuthMode::Token => Err(login_page(
                StatusCode::UNAUTHORIZED,
                "This server needs a token to show the dashboard. Any valid ferry token will do (role reader is enough).",
            )),
        }
    }

    async fn still_active(&self, state: &State, id: i64) -> bool {
        if let Some((active, _)) = self.checks.recent_active(id) {
            return active;
        }
        let (state, checks) = (state.clone(), self.checks.clone());
        match web::block(move || checks.token_active(&state, id)).await {
            Ok(Ok(active)) => active,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "dashboard: checking a session's token failed");
                false
            }
            Err(_) => false,
        }
    }
}

/// Refuses a POST that did not come from a dashboard page of this origin: its `Origin` (or,
/// when a browser sends none, its `Referer`) must be this server's scheme and host.
/// Refusals are boxed: an `HttpResponse` is large, and the happy path should not carry it.
pub(super) fn check_origin(req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
    let info = req.connection_info();
    let expected = format!("{}://{}", info.scheme(), info.host());
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let sent = header(actix_web::http::header::ORIGIN).or_else(|| {
        header(actix_web::http::header::REFERER).map(|r| {
            // scheme://host[:port] of the referring page.
            let rest = r.split_once("://").map_or("", |(_, rest)| rest);
            let host = rest.split('/').next().unwrap_or("");
            format!("{}://{host}", r.split("://").next().unwrap_or(""))
        })
    });
    match sent {
        Some(origin) if origin == expected => Ok(()),
        Some(origin) => Err(forbidden(&format!(
            "refused: this form was sent from {origin:?}, not from this dashboard ({expected}); open the page on {expected} and try again"
        ))),
        None => Err(forbidden(
            "refused: the request carries neither Origin nor Referer, so it cannot be told from a cross-site request; send it from the dashboard page",
        )),
    }
}

/// Checks the hidden CSRF field of a POST against the session's token.
pub(super) fn check_csrf(viewer: &Viewer, sent: &str) -> Result<(), Box<HttpResponse>> {
    let expected = viewer.csrf.as_bytes();
    let ok = !expected.is_empty()
        && expected.len() == sent.len()
        // Constant time: how much of the token matched must not show in the answer's timing.
        && expected
            .iter()
            .zip(sent.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        Ok(())
    } else {
        Err(forbidden(
            "refused: the form's CSRF token does not match this session (it expired, or the form came from elsewhere); reload the page and try again",
        ))
    }
}

fn forbidden(message: &str) -> Box<HttpResponse> {
    Box::new(layout::bare(
        StatusCode::FORBIDDEN,
        "Refused",
        html! { h1 { "Refused" } p.error { (message) } },
    ))
}

fn login_page(status: StatusCode, message: &str) -> HttpResponse {
    layout::bare(
        status,
        "Log in",
        html! {
            h1 { "Log in" }
            div.card {
                p { (message) }
                form method="post" action="/ui/login" {
                    label for="token" { "Token " }
                    input #token type="password" name="token" autocomplete="off" size="60" required;
                    " "
                    button.act type="submit" { "Log in" }
                }
                p.muted { "Create one with " code { "ferry-server token create --data-dir DIR --role reader --name NAME" } ". A promoter token also allows promote and rollback." }
            }
        },
    )
}

/// `GET /ui/login`.
pub(super) async fn login_form() -> HttpResponse {
    login_page(
        StatusCode::OK,
        "Log in with a ferry token. Role reader shows every page; role promoter also allows promote and rollback.",
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

/// `POST /ui/login`: checks the token, opens a session, sets the cookie.
pub(super) async fn login(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    if let Err(refused) = check_origin(&req) {
        return *refused;
    }
    let (service, checks) = (state.clone(), auth.checks.clone());
    let token = form.into_inner().token;
    let answer = web::block(move || {
        checks.authenticate(&service, &token, "view the dashboard", Role::Reader)
    })
    .await;
    let principal = match answer {
        Ok(Ok(Ok(p))) => p,
        Ok(Ok(Err(e))) => {
            return login_page(StatusCode::UNAUTHORIZED, &format!("Not logged in: {e}."));
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "dashboard login: the token check failed");
            return login_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The token could not be checked; see the server log.",
            );
        }
        Err(_) => {
            return login_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The token check was cancelled; try again.",
            )
        }
    };
    tracing::info!(token = %principal.name, "dashboard login");
    let id = auth.open(principal);
    let cookie = Cookie::build(COOKIE, id)
        .path("/ui")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(
            SESSION_TTL.as_secs() as i64,
        ))
        .finish();
    let mut resp = layout::redirect("/ui/");
    resp.add_cookie(&cookie).expect("a valid cookie");
    resp
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub(super) async fn logout(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    if let Err(refused) = check_origin(&req).and_then(|()| check_csrf(&viewer, &form.csrf)) {
        return *refused;
    }
    if let Some(c) = req.cookie(COOKIE) {
        auth.sessions().remove(c.value());
    }
    let mut resp = layout::redirect("/ui/");
    let mut gone = Cookie::build(COOKIE, "").path("/ui").finish();
    gone.make_removal();
    resp.add_cookie(&gone).expect("a valid cookie");
    resp
}
