//! Liveness and readiness for orchestrators (Kubernetes probes, Compose health checks):
//! `GET /healthz` and `GET /readyz` on the registry listener.
//!
//! Both are anonymous: a probe carries no token, and `--registry-auth token` guards only `/v2`.
//! Readiness asks the store one cheap read rather than `PRAGMA integrity_check`, which reads the
//! whole file and would make a probe cost as much as `ferry-server check`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::service::Service;

/// Whether the server is shutting down. `run` sets it as soon as the shutdown signal arrives, so
/// that a load balancer stops sending new work while streams and requests drain.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the server as draining; `/readyz` answers 503 from now on.
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once [`Draining::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Registers `/healthz` and `/readyz`. Expects `web::Data<Arc<Service>>` and
/// `web::Data<Draining>` among the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz));
    cfg.route("/readyz", web::get().to(readyz));
}

/// `GET /healthz`: the process is up and its HTTP workers answer.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// The `/readyz` body.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    /// Why the server is not ready; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// The newest event seq the service knows (what agents resume from).
    head_seq: u64,
}

/// `GET /readyz`: 200 when the store answers a read and the server is not draining, else 503
/// with a JSON body saying why.
async fn readyz(service: web::Data<Arc<Service>>, draining: web::Data<Draining>) -> HttpResponse {
    let head_seq = service.head_seq();
    if draining.is_draining() {
        return not_ready("draining: the server is shutting down", head_seq);
    }
    // The read runs on the blocking pool: SQLite calls block, and a probe must never stall an
    // HTTP worker that serves registry reads.
    let store = service.store().clone();
    match web::block(move || store.newest_seq()).await {
        Ok(Ok(_)) => HttpResponse::Ok().json(Readiness {
            ready: true,
            reason: None,
            head_seq,
        }),
        Ok(Err(error)) => {
            // The cause may name paths on the server; it goes to the log, not to the client.
            tracing::error!(%error, "readiness: the store did not answer a read");
            not_ready(
                "store: the database did not answer a read; see the server log",
                head_seq,
            )
        }
        Err(error) => {
            tracing::error!(%error, "readiness: the blocking pool did not run the store read");
            not_ready(
                "store: the read could not be scheduled; see the server log",
                head_seq,
            )
        }
    }
}

fn not_ready(reason: &'static str, head_seq: u64) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(Readiness {
        ready: false,
        reason: Some(reason),
        head_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Limits;
    use crate::store::Store;
    use actix_web::{test, App};

    fn service(dir: &std::path::Path) -> web::Data<Arc<Service>> {
        let store = Store::open(dir).expect("opening the store");
        let service = Service::load(Arc::new(store), Limits::default()).expect("loading");
        web::Data::new(Arc::new(service))
    }

    #[actix_web::test]
    async fn healthz_answers_ok() {
        let dir = tempfile::tempdir().unwrap();
        let app = test::init_service(
            App::new()
                .app_data(service(dir.path()))
                .app_data(web::Data::new(Draining::default()))
                .configure(configure),
        )
        .await;
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(test::read_body(resp).await, "ok");
    }

    #[actix_web::test]
    async fn readyz_is_ready_until_draining_starts() {
        let dir = tempfile::tempdir().unwrap();
        let draining = Draining::default();
        let app = test::init_service(
            App::new()
                .app_data(service(dir.path()))
                .app_data(web::Data::new(draining.clone()))
                .configure(configure),
        )
        .await;

        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["ready"], true, "{body}");
        assert_eq!(body["head_seq"], 0, "{body}");

        draining.start();
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status(), 503);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["ready"], false, "{body}");
        assert!(
            body["reason"].as_str().unwrap().starts_with("draining"),
            "{body}"
        );
    }

    #[actix_web::test]
    async fn probes_stay_anonymous_when_registry_reads_need_a_token() {
        use crate::registry::auth::{RegistryAuth, RegistryAuthMode};
        let dir = tempfile::tempdir().unwrap();
        let app = test::init_service(
            App::new()
                .app_data(service(dir.path()))
                .app_data(web::Data::new(Draining::default()))
                .app_data(web::Data::new(RegistryAuth::new(
                    RegistryAuthMode::Token,
                    std::time::Duration::from_secs(60),
                )))
                .configure(configure)
                .configure(crate::registry::configure),
        )
        .await;
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/v2/").to_request()).await;
        assert_eq!(resp.status(), 401, "the registry itself wants a token");
        for path in ["/healthz", "/readyz"] {
            let resp =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(resp.status(), 200, "{path} without a token");
        }
    }
}
