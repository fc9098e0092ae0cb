//! The registry handlers in-process (`actix_web::test`): a real [`Service`] on a SQLite store in
//! a temporary directory, filled through [`Service::publish`], and every endpoint called through
//! [`super::configure`] as the server wires it. No sockets and no skopeo, so
//! `cargo test -p ferry-server` answers in seconds; `tests/tests/registry.rs` drives the same
//! endpoints with real clients.
//!
//! - [`manifests`], [`blobs`], [`listings`] (tags, catalog, referrers): one module per resource.
//! - [`errors`]: the base endpoint, error bodies, writes, oversized headers.
//! - [`token_mode`]: challenges under `--registry-auth token`.
//!
//! Publishes use the in-memory releases of `ferry-tests` and only the public publish API
//! ([`PublishInput`], [`Content`]), so they do not depend on how the service stores things.

mod blobs;
mod errors;
mod listings;
mod manifests;
mod token_mode;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::header::{HeaderMap, TryIntoHeaderPair};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use bytes::Bytes;
use ferry_proto::pb;
use ferry_tests::oci::sha256_digest;
use ferry_tests::releases;

use super::auth::{RegistryAuth, RegistryAuthMode};
use crate::service::{Content, Limits, PublishInput, Service};
use crate::store::Store;

/// The image the fixtures publish, and the ferry repository it lands in.
const IMAGE: &str = "registry.example.com/team/app";
const REPO: &str = "registry.example.com/team/app";
/// The origin the single-platform release names, for layer redirects.
const ORIGIN_URL: &str = "http://origin.example.com:5000";
const ORIGIN_REPO: &str = "team/app";
const SBOM: &str = "application/vnd.example.sbom.v1+json";
const SIGNATURE: &str = "application/vnd.example.signature.v1+json";

/// A service on a fresh store, and the settings the registry reads it with.
struct Registry {
    service: Arc<Service>,
    auth: web::Data<RegistryAuth>,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    /// The size actix-web sends as Content-Length (the in-process service does not write the
    /// header itself; the HTTP/1 encoder does, from this).
    length: Option<u64>,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// What [`Registry::with_images`] published, as sent.
struct Published {
    /// `v1`: a linux/amd64 image with its config, from the origin [`ORIGIN_URL`].
    image: pb::PublishRequest,
    /// `v2`: an index of two platform images.
    index: pb::PublishRequest,
    /// `v1-sbom`: an artifact of type [`SBOM`] whose subject is `image`.
    sbom: pb::PublishRequest,
    /// `v1-sig`: an artifact of type [`SIGNATURE`] whose subject is `image`.
    signature: pb::PublishRequest,
}

impl Registry {
    /// Anonymous reads of an empty registry.
    fn new() -> Registry {
        Registry::with_mode(RegistryAuthMode::Anonymous)
    }

    fn with_mode(mode: RegistryAuthMode) -> Registry {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path()).expect("opening a store in a fresh directory");
        let service = Service::load(Arc::new(store), Limits::default()).expect("loading");
        Registry {
            service: Arc::new(service),
            auth: web::Data::new(RegistryAuth::new(mode, Duration::from_secs(60))),
            _dir: dir,
        }
    }

    /// A registry holding an image, an index and two artifacts in [`REPO`].
    fn with_images() -> (Registry, Published) {
        let registry = Registry::new();
        let tags = |t: &str| vec![t.to_string()];
        let mut image = releases::release(IMAGE, 1, tags("v1"));
        image.origin = Some(pb::Origin {
            registry_url: ORIGIN_URL.into(),
            repository: ORIGIN_REPO.into(),
        });
        let index = releases::multi_arch_release(IMAGE, 2, tags("v2"));
        let subject = image.manifest.clone().expect("a manifest");
        let sbom = releases::artifact(IMAGE, &subject, SBOM, tags("v1-sbom"));
        let signature = releases::artifact(IMAGE, &subject, SIGNATURE, tags("v1-sig"));
        for p in [&image, &index, &sbom, &signature] {
            assert_eq!(
                registry.publish(p.clone()),
                REPO,
                "the repository {IMAGE} lands in"
            );
        }
        let published = Published {
            image,
            index,
            sbom,
            signature,
        };
        (registry, published)
    }

    /// Publishes `req` as the gRPC layer would hand it to the service; returns the repository.
    fn publish(&self, req: pb::PublishRequest) -> String {
        let content = |c: pb::Content| Content {
            digest: c.digest,
            media_type: c.media_type,
            data: c.data,
        };
        let input = PublishInput {
            image: req.image,
            manifest: content(req.manifest.expect("a manifest")),
            children: req.children.into_iter().map(content).collect(),
            blobs: req.blobs.into_iter().map(content).collect(),
            tags: req.tags,
            labels: req.labels.into_iter().collect(),
            origin: req.origin.map(|o| (o.registry_url, o.repository)),
            ..Default::default()
        };
        let outcome = self.service.publish(input).expect("the fixture publishes");
        outcome.repository
    }

    /// Sends `req` through the registry as the server configures it.
    async fn send(&self, req: TestRequest) -> Reply {
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(self.service.clone()))
                .app_data(self.auth.clone())
                .configure(super::configure),
        )
        .await;
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let length = match resp.response().body().size() {
            actix_web::body::BodySize::Sized(n) => Some(n),
            _ => None,
        };
        let body = test::read_body(resp).await;
        Reply {
            status,
            headers,
            length,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(TestRequest::get().uri(uri)).await
    }

    /// A GET of `uri` carrying one extra header.
    async fn get_with(&self, uri: &str, header: impl TryIntoHeaderPair) -> Reply {
        self.send(TestRequest::get().uri(uri).insert_header(header))
            .await
    }
}

/// The manifest bytes of a publish, and their digest.
fn manifest_of(req: &pb::PublishRequest) -> (&[u8], String) {
    let data = &req.manifest.as_ref().expect("a manifest").data;
    (data, sha256_digest(data))
}

/// Asserts an OCI error answer: `status`, and a body of exactly one error with `code` and a
/// message. Returns the message.
fn assert_error(reply: &Reply, status: StatusCode, code: &str) -> String {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let errors = body["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 1, "{body}");
    let error = errors[0].as_object().expect("an error object");
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().expect("a message string");
    assert!(!message.is_empty(), "{body}");
    assert!(
        error.keys().all(|k| k == "code" || k == "message"),
        "only code and message: {body}"
    );
    message.to_string()
}
