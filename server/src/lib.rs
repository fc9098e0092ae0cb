//! ferry-server: the control plane.
//!
//! - [`store`]: SQLite (WAL) — repositories, manifests, blobs, tags, the event log, pipelines,
//!   ring pointers and their history, cluster reports.
//! - [`service`]: the domain — publish validation, the in-memory read catalog, event fan-out,
//!   pipelines and ring moves, gates, autoPromote, cluster reports.
//! - [`registry`]: the OCI distribution read API (actix-web).
//! - [`grpc`]: the `Ferry` gRPC service (tonic): Publish, Subscribe, ListTags, the ring verbs,
//!   GetPipeline and Report.
//! - [`config`]: command-line configuration.
//! - [`admin`]: the `token` subcommands and the bootstrap token.
//! - [`health`]: `/healthz` and `/readyz` for orchestrators' probes.
//! - [`notify`]: outbound webhook notifications (`--notify-url`), fed by the event fan-out and
//!   the service's report, stream and gate state.
//! - [`health`]: `/healthz` and `/readyz` for orchestrators' probes, draining, the gRPC health
//!   service.
//! - [`metrics`]: Prometheus metrics (one registry, owned by the service) and `GET /metrics`.
//! - [`probe`]: `ferry-server probe`, a health check without curl for FROM-scratch images.
//! - [`tls`]: TLS for both listeners from certificate and key files.
//! - [`ui`]: the web dashboard at `/ui/` (server-rendered HTML, live updates over SSE).
//! - [`run`]: wiring both listeners to one service, with graceful shutdown.
//!
//! Direction: `registry`/`grpc`/`ui` → `service` → `store`.

pub mod admin;
pub mod config;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod registry;
pub mod run;
pub mod service;
pub mod store;
pub mod tls;
pub mod ui;
