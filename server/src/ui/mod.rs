//! The web dashboard at `/ui/` on the registry listener: server-rendered HTML (maud, which
//! escapes every interpolated value), usable without JavaScript, refreshed live over
//! Server-Sent Events by a small inline script.
//!
//! Direction: `ui` → `service`, like the registry: handlers read through [`Service`] and never
//! touch SQL. One module per page (`images`, `pipelines`, `clusters`, `events`), plus `layout`
//! (the page frame, style sheet, script and security headers), `auth` (login, sessions, CSRF),
//! `sse` (the live stream) and `format` (times, digests).
//!
//! Nothing changes state on a GET. The only state-changing requests are the login, the logout
//! and the ring moves, all POSTs checked for the Origin and (but the login) a per-session CSRF
//! token; ring moves also need a promoter token.

mod auth;
mod clusters;
mod events;
mod format;
mod images;
mod layout;
mod pipelines;
mod sse;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::registry::auth::RegistryAuthMode;
use crate::service::{Service, ServiceError};
pub use auth::UiAuth;

/// Shared handler state (the same `Arc<Service>` the registry uses).
type State = web::Data<Arc<Service>>;

/// Registers `/ui` and everything under it. Expects `web::Data<Arc<Service>>` and
/// `web::Data<UiAuth>` among the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(|| async { layout::redirect("/ui/") }));
    cfg.service(
        web::scope("/ui")
            .wrap(layout::security_headers())
            .route("/", web::get().to(images::list))
            .route("/images", web::get().to(images::list))
            .route("/images/{repository:.+}", web::get().to(images::detail))
            .route("/pipelines", web::get().to(pipelines::list))
            .route("/pipelines/{name}", web::get().to(pipelines::detail))
            .route(
                "/pipelines/{name}/confirm",
                web::post().to(pipelines::confirm),
            )
            .route(
                "/pipelines/{name}/move",
                web::post().to(pipelines::apply_move),
            )
            .route("/clusters", web::get().to(clusters::list))
            .route("/events", web::get().to(events::list))
            .route("/live", web::get().to(sse::live))
            .route("/login", web::get().to(auth::login_form))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .default_service(web::to(|| async {
                layout::plain(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "no such dashboard page; start at /ui/",
                )
            })),
    );
}

/// Builds the dashboard's state for `mode` (the registry's: `--registry-auth token` makes the
/// dashboard ask for a token too). `closing` turns true on shutdown and ends live streams.
pub fn state(
    mode: RegistryAuthMode,
    closing: tokio::sync::watch::Receiver<bool>,
) -> web::Data<UiAuth> {
    web::Data::new(UiAuth::new(mode, closing))
}

/// A service error as a page: the message is the service's own (it names the value and the
/// rule); store failures are logged and shown generically, as the registry does.
fn error_page(viewer: &auth::Viewer, e: ServiceError) -> HttpResponse {
    use actix_web::http::StatusCode;
    let (status, message) = match &e {
        ServiceError::NameUnknown(name) => (
            StatusCode::NOT_FOUND,
            format!("no image named {name:?} is published here"),
        ),
        ServiceError::RingUnknown(m) => (StatusCode::NOT_FOUND, m.clone()),
        ServiceError::RingInvalid(m) | ServiceError::RingRefused(m) => {
            (StatusCode::CONFLICT, m.clone())
        }
        other => {
            tracing::error!(error = %other, "dashboard read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log".to_string(),
            )
        }
    };
    layout::page_with_status(
        status,
        viewer,
        "Error",
        "",
        maud::html! {
            h1 { "Error" }
            p.error { (message) }
        },
    )
}

/// Runs a blocking service call (SQLite) on the blocking pool; its error as a page.
async fn blocking<T: Send + 'static>(
    viewer: &auth::Viewer,
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error_page(viewer, e)),
        Err(_) => Err(layout::page_with_status(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            viewer,
            "Error",
            "",
            maud::html! { p.error { "the read was cancelled (the server may be stopping); reload the page" } },
        )),
    }
}
