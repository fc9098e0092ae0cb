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

/// The standard gRPC health service (`grpc.health.v1.Health`) on the gRPC listener, for
/// orchestrators that probe gRPC: the server as a whole (`""`) and `ferry.v1.Ferry` answer
/// SERVING while the store answers a read (checked every [`STORE_CHECK_EVERY`], as `/readyz`
/// checks it) and until draining starts, NOT_SERVING otherwise; any other name is NOT_FOUND.
#[derive(Debug, Clone)]
pub struct GrpcHealth {
    reporter: tonic_health::server::HealthReporter,
}

/// The gRPC service name of ferry's API, as the health service knows it.
pub const FERRY_SERVICE: &str = <ferry_proto::pb::ferry_server::FerryServer<crate::grpc::FerryGrpc> as tonic::server::NamedService>::NAME;

impl GrpcHealth {
    /// The reporter, with every name SERVING, and the service to add to the gRPC server.
    pub async fn serving() -> (
        GrpcHealth,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(FERRY_SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        (GrpcHealth { reporter }, service)
    }

    /// Every name answers NOT_SERVING from now on (watchers are told at once).
    pub async fn draining(&self) {
        self.set(tonic_health::ServingStatus::NotServing).await;
    }

    async fn set(&self, status: tonic_health::ServingStatus) {
        for name in ["", FERRY_SERVICE] {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Follows the store: NOT_SERVING while its probe fails (the database file gone, replaced
    /// or unreadable), SERVING again once it answers, never SERVING once draining started.
    /// Ends when `draining` starts.
    pub fn spawn_store_watch(&self, service: Arc<Service>, draining: Draining) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut serving = true;
            loop {
                tokio::time::sleep(STORE_CHECK_EVERY).await;
                if draining.is_draining() {
                    return;
                }
                let probe = probe_store(&service).await;
                let ok = probe.is_ok();
                // Draining may have started during the probe: it already set NOT_SERVING.
                if ok != serving && !draining.is_draining() {
                    serving = ok;
                    let status = if ok {
                        tonic_health::ServingStatus::Serving
                    } else {
                        tonic_health::ServingStatus::NotServing
                    };
                    match probe {
                        Ok(()) => tracing::info!("gRPC health: the store answers again; SERVING"),
                        Err(error) => {
                            tracing::error!(%error, "gRPC health: the store did not answer a read; NOT_SERVING")
                        }
                    }
                    health.set(status).await;
                    if draining.is_draining() {
                        // The drain began between the check and the set: it wins.
                        health.set(tonic_health::ServingStatus::NotServing).await;
                        return;
                    }
                }
            }
        });
    }
}

/// How often gRPC health asks the store (one read on a fresh read-only connection).
pub const STORE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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
    match probe_store(&service).await {
        Ok(()) => HttpResponse::Ok().json(Readiness {
            ready: true,
            reason: None,
            head_seq,
        }),
        Err(error) => {
            // The cause may name paths on the server; it goes to the log, not to the client.
            tracing::error!(%error, "readiness: the store did not answer a read");
            let reason = match error {
                ProbeError::Store(_) => {
                    "store: the database did not answer a read; see the server log"
                }
                ProbeError::NotRun(_) => {
                    "store: the read could not be scheduled; see the server log"
                }
            };
            not_ready(reason, head_seq)
        }
    }
}

/// Why [`probe_store`] failed.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the blocking pool did not run the store read: {0}")]
    NotRun(#[from] tokio::task::JoinError),
}

/// The store's readiness read (`Store::probe`), on the blocking pool: SQLite calls block, and
/// a probe must never stall an HTTP worker or the runtime. What `/readyz` and gRPC health ask.
async fn probe_store(service: &Service) -> Result<(), ProbeError> {
    let store = service.store().clone();
    tokio::task::spawn_blocking(move || store.probe()).await??;
    Ok(())
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
    async fn readyz_is_not_ready_while_the_database_file_is_removed_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let app = test::init_service(
            App::new()
                .app_data(service(dir.path()))
                .app_data(web::Data::new(Draining::default()))
                .configure(configure),
        )
        .await;
        let db = dir.path().join("ferry.db");
        let aside = dir.path().join("ferry.db.aside");
        macro_rules! ready {
            () => {{
                let req = test::TestRequest::get().uri("/readyz").to_request();
                let resp = test::call_service(&app, req).await;
                let status = resp.status().as_u16();
                let body: serde_json::Value = test::read_body_json(resp).await;
                (status, body)
            }};
        }
        assert_eq!(ready!().0, 200);

        // Removed: the server's open connections would still read the unlinked file.
        std::fs::rename(&db, &aside).unwrap();
        let (status, body) = ready!();
        assert_eq!(status, 503, "{body}");
        assert!(
            body["reason"].as_str().unwrap().starts_with("store:"),
            "{body}"
        );

        // Replaced by something that is not a database.
        std::fs::write(&db, b"not a database").unwrap();
        assert_eq!(ready!().0, 503);

        std::fs::rename(&aside, &db).unwrap();
        assert_eq!(ready!().0, 200);
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
