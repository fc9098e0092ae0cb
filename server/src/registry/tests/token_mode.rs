//! `--registry-auth token`: requests without valid credentials are answered 401 with the
//! challenge that tells docker, skopeo and crane where to get a token.

use actix_web::http::{header, StatusCode};
use base64::Engine;

use super::{assert_error, Registry, REPO};
use crate::registry::auth::RegistryAuthMode;

fn token_registry() -> Registry {
    Registry::with_mode(RegistryAuthMode::Token)
}

#[actix_web::test]
async fn base_without_credentials_gets_a_bearer_challenge_on_the_request_host() {
    let registry = token_registry();
    for host in ["ferry.internal:5443", "10.0.0.7:5000"] {
        let reply = registry.get_with("/v2/", (header::HOST, host)).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(format!("Bearer realm=\"http://{host}/token\",service=\"ferry\"").as_str())
        );
    }
}

#[actix_web::test]
async fn a_repository_read_without_credentials_is_challenged_with_its_pull_scope() {
    let registry = token_registry();
    let reply = registry
        .get_with(
            &format!("/v2/{REPO}/manifests/v1"),
            (header::HOST, "ferry.internal"),
        )
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"http://ferry.internal/token\",service=\"ferry\",scope=\"repository:{REPO}:pull\""
            )
            .as_str()
        )
    );
}

#[actix_web::test]
async fn an_unknown_basic_token_or_a_forged_bearer_token_is_refused() {
    let registry = token_registry();
    let basic = base64::engine::general_purpose::STANDARD.encode("user:not-a-ferry-token");
    let reply = registry
        .get_with("/v2/", (header::AUTHORIZATION, format!("Basic {basic}")))
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Bearer ")));

    let reply = registry
        .get_with("/v2/", (header::AUTHORIZATION, "Bearer e30.AAAA"))
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.ends_with(",error=\"invalid_token\""),
        "{challenge}"
    );
}

#[actix_web::test]
async fn the_token_endpoint_asks_for_basic_credentials() {
    let registry = token_registry();
    let reply = registry
        .get("/token?service=ferry&scope=repository:a/b:pull")
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"ferry\"")
    );
}
