//! The dashboard in-process (actix_web::test): escaping of hostile input, the security headers,
//! token mode, and the checks on state-changing POSTs. The browser test (tests/dashboard.rs)
//! covers the same pages in a real Chromium.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{test, web, App};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::registry::auth::RegistryAuthMode;
use crate::service::pipelines::{normalise, PipelineSpec};
use crate::service::{Content, Limits, PublishInput, Service};
use crate::store::Store;

const IMAGE: &str = "registry.example.com/shop/api";
const HOST: &str = "ferry.test";
const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";

struct Fixture {
    service: Arc<Service>,
    auth: web::Data<super::UiAuth>,
    _dir: tempfile::TempDir,
}

fn fixture(mode: RegistryAuthMode) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let service = Arc::new(Service::load(Arc::new(store), Limits::default()).unwrap());
    let spec = normalise(PipelineSpec {
        name: "shop".into(),
        rings: vec!["dev".into()],
        images: vec![IMAGE.into()],
        ..Default::default()
    })
    .unwrap();
    service.apply_pipeline(spec, "", "test").unwrap();
    let mut req = ferry_tests::releases::release(IMAGE, 1, vec!["1.0.0".into()]);
    req.labels.insert("note".into(), HOSTILE.into());
    let content = |c: ferry_proto::pb::Content| Content {
        digest: c.digest,
        media_type: c.media_type,
        data: c.data,
    };
    service
        .publish(PublishInput {
            image: req.image,
            manifest: content(req.manifest.unwrap()),
            blobs: req.blobs.into_iter().map(content).collect(),
            tags: req.tags,
            labels: req.labels.into_iter().collect(),
            ..Default::default()
        })
        .unwrap();
    let (_tx, closing) = tokio::sync::watch::channel(false);
    Fixture {
        service,
        auth: super::state(mode, closing),
        _dir: dir,
    }
}

impl Fixture {
    async fn send(&self, req: test::TestRequest) -> (u16, Vec<(String, String)>, String) {
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(self.service.clone()))
                .app_data(self.auth.clone())
                .configure(super::configure),
        )
        .await;
        let resp =
            test::call_service(&app, req.insert_header((header::HOST, HOST)).to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        (status, headers, body)
    }

    fn token(&self, role: crate::service::auth::Role) -> String {
        self.service
            .create_token(role.as_str(), &[role], &[])
            .unwrap()
            .1
    }

    /// Logs in with `token`; the session cookie ("name=value") and the page's CSRF token.
    async fn login(&self, token: &str) -> (String, String) {
        let (status, headers, _) = self
            .send(
                test::TestRequest::post()
                    .uri("/ui/login")
                    .insert_header((header::ORIGIN, format!("http://{HOST}")))
                    .set_form([("token", token)]),
            )
            .await;
        assert_eq!(status, 303);
        let set = headers
            .iter()
            .find(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .expect("a session cookie");
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
            assert!(set.contains(flag), "{flag} missing from {set}");
        }
        let cookie = set.split(';').next().unwrap().to_string();
        let (status, _, page) = self
            .send(
                test::TestRequest::get()
                    .uri("/ui/pipelines")
                    .insert_header((header::COOKIE, cookie.clone())),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF field in the logout form")
            .to_string();
        (cookie, csrf)
    }
}

#[actix_web::test]
async fn a_label_holding_markup_is_shown_as_text_on_every_page() {
    let f = fixture(RegistryAuthMode::Anonymous);
    let repo = f.service.catalog(None, None).0.remove(0);
    let (status, _, body) = f
        .send(test::TestRequest::get().uri(&format!("/ui/images/{repo}")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("note=&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{body}"
    );
    assert_eq!(
        body.matches("<script").count(),
        1,
        "only the page's own script: {body}"
    );
    assert!(!body.contains("<img"), "{body}");
    for page in ["/ui/images", "/ui/events", "/ui/pipelines/shop"] {
        let (status, _, body) = f.send(test::TestRequest::get().uri(page)).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(body.matches("<script").count(), 1, "{page}: {body}");
    }
}

#[actix_web::test]
async fn every_page_allows_only_its_own_style_sheet_and_script() {
    let f = fixture(RegistryAuthMode::Anonymous);
    let (_, headers, body) = f.send(test::TestRequest::get().uri("/ui/images")).await;
    let csp = &headers
        .iter()
        .find(|(k, _)| k == "content-security-policy")
        .expect("a CSP header")
        .1;
    assert_eq!(csp, super::layout::csp());
    assert!(
        csp.starts_with("default-src 'none';") && !csp.contains("unsafe"),
        "{csp}"
    );
    // The inline blocks are exactly what the policy hashes, or the browser would refuse them.
    for (open, close) in [("<style>", "</style>"), ("<script>", "</script>")] {
        let inner = body
            .split(open)
            .nth(1)
            .unwrap()
            .split(close)
            .next()
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(inner));
        assert!(
            csp.contains(&format!("'sha256-{hash}'")),
            "{open} not allowed by {csp}"
        );
    }
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        assert!(
            headers.iter().any(|(k, v)| k == name && v == value),
            "{name}"
        );
    }
}

#[actix_web::test]
async fn token_mode_shows_nothing_without_a_session_and_everything_after_login() {
    let f = fixture(RegistryAuthMode::Token);
    for page in [
        "/ui/",
        "/ui/images",
        "/ui/pipelines/shop",
        "/ui/clusters",
        "/ui/events",
        "/ui/live",
    ] {
        let (status, _, body) = f.send(test::TestRequest::get().uri(page)).await;
        assert_eq!(status, 401, "{page}");
        assert!(!body.contains("shop/api"), "{page}: {body}");
    }
    let (status, _, body) = f
        .send(
            test::TestRequest::post()
                .uri("/ui/login")
                .insert_header((header::ORIGIN, format!("http://{HOST}")))
                .set_form([("token", "ferry_wrong")]),
        )
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("not known"), "{body}");
    let reader = f.token(crate::service::auth::Role::Reader);
    let (cookie, _) = f.login(&reader).await;
    let (status, _, body) = f
        .send(
            test::TestRequest::get()
                .uri("/ui/images")
                .insert_header((header::COOKIE, cookie)),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.contains(IMAGE), "{body}");
}

#[actix_web::test]
async fn ring_moves_need_this_origin_the_session_csrf_token_and_a_promoter() {
    use crate::service::auth::Role;
    let f = fixture(RegistryAuthMode::Anonymous);
    let promoter = f.token(Role::Promoter);
    let (cookie, csrf) = f.login(&promoter).await;
    let post = |path: &str, origin: Option<&str>, cookie: &str, csrf: &str| {
        let mut req = test::TestRequest::post()
            .uri(path)
            .insert_header((header::COOKIE, cookie.to_string()))
            .set_form([
                ("csrf", csrf),
                ("action", "promote"),
                ("ring", "dev"),
                ("image", IMAGE),
            ]);
        if let Some(o) = origin {
            req = req.insert_header((header::ORIGIN, o.to_string()));
        }
        req
    };
    let here = format!("http://{HOST}");
    let cases = [
        (None, csrf.as_str(), "neither Origin nor Referer"),
        (
            Some("http://evil.example"),
            csrf.as_str(),
            "not from this dashboard",
        ),
        (Some(here.as_str()), "0000", "CSRF token does not match"),
    ];
    for (origin, token, why) in cases {
        let (status, _, body) = f
            .send(post("/ui/pipelines/shop/move", origin, &cookie, token))
            .await;
        assert_eq!(status, 403, "{why}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    let reader = f.token(Role::Reader);
    let (reader_cookie, reader_csrf) = f.login(&reader).await;
    let (status, _, body) = f
        .send(post(
            "/ui/pipelines/shop/move",
            Some(&here),
            &reader_cookie,
            &reader_csrf,
        ))
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("role promoter"), "{body}");
    assert!(
        f.service
            .ring_pointers(|_| true)
            .1
            .iter()
            .all(|p| p.ring != "dev"),
        "nothing moved yet"
    );

    let (status, _, body) = f
        .send(post(
            "/ui/pipelines/shop/confirm",
            Some(&here),
            &cookie,
            &csrf,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("class=\"confirm\""), "{body}");
    assert!(
        f.service
            .ring_pointers(|_| true)
            .1
            .iter()
            .all(|p| p.ring != "dev"),
        "confirming moves nothing"
    );
    let (status, headers, _) = f
        .send(post("/ui/pipelines/shop/move", Some(&here), &cookie, &csrf))
        .await;
    assert_eq!(status, 303);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "location" && v == "/ui/pipelines/shop"));
    let moved = f.service.ring_pointers(|_| true).1;
    let dev = moved.iter().find(|p| p.ring == "dev").expect("dev moved");
    assert_eq!(dev.image, IMAGE);
}
