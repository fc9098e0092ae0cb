//! `GET /metrics` on the HTTP listener, and the middleware that counts and times its requests.
//!
//! Anonymous, like the probes: Prometheus scrapes without a token, and `--registry-auth token`
//! guards `/v2` only. `--metrics off` registers neither (see `run.rs`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::registry::endpoint_pattern;
use crate::service::Service;

/// Registers `GET /metrics`. Expects `web::Data<Arc<Service>>` among the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

async fn scrape(service: web::Data<Arc<Service>>) -> HttpResponse {
    service.refresh_metrics();
    HttpResponse::Ok()
        .content_type(super::CONTENT_TYPE)
        .body(service.metrics().encode())
}

/// Counts every request by endpoint pattern and status, and times it up to its response head
/// (for `actix_web::middleware::from_fn`). The endpoint is the route's pattern: `/v2` paths are
/// parsed by the registry's own router, other paths take actix-web's matched pattern, and a
/// path nothing matched is `unmatched`, so a client cannot mint label values.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let service = req.app_data::<web::Data<Arc<Service>>>().cloned();
    let endpoint: Cow<'static, str> = match endpoint_pattern(req.path()) {
        Some(pattern) => Cow::Borrowed(pattern),
        None => req
            .match_pattern()
            .map_or(Cow::Borrowed("unmatched"), Cow::Owned),
    };
    let res = next.call(req).await;
    if let Some(service) = service {
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        service
            .metrics()
            .http_request(endpoint, status, started.elapsed());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Limits;
    use crate::store::Store;
    use actix_web::{middleware::from_fn, test, App};

    #[actix_web::test]
    async fn requests_are_counted_by_pattern_never_by_raw_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let service = Arc::new(Service::load(Arc::new(store), Limits::default()).unwrap());
        let app = test::init_service(
            App::new()
                .wrap(from_fn(record))
                .app_data(web::Data::new(service.clone()))
                .app_data(web::Data::new(crate::registry::auth::RegistryAuth::new(
                    crate::registry::auth::RegistryAuthMode::Anonymous,
                    std::time::Duration::from_secs(60),
                )))
                .configure(configure)
                .configure(crate::registry::configure),
        )
        .await;
        for uri in [
            "/v2/",
            "/v2/evil%22name/manifests/latest",
            "/v2/team/app/tags/list",
            "/nowhere/%3Cscript%3E",
        ] {
            test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        }
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            super::super::CONTENT_TYPE
        );
        let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        for line in [
            r#"ferry_http_requests_total{endpoint="/v2/",status="200"} 1"#,
            r#"ferry_http_requests_total{endpoint="/v2/{name}/manifests/{reference}",status="400"} 1"#,
            r#"ferry_http_requests_total{endpoint="/v2/{name}/tags/list",status="404"} 1"#,
            r#"ferry_http_requests_total{endpoint="unmatched",status="404"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(!text.contains("evil") && !text.contains("script"), "{text}");
    }
}
