//! ferry-agent: applies image releases to a GitOps config repository.
//! - `apply`: planning and committing one repository's edits from the known tags.
//! - `batch`: folding stream items into the known tags and rings, and which targets they concern.
//! - `client`: the gRPC connection to a FERRY image provider.
//! - `config`: the Piped agent config and ImageWatcher files (raw YAML → validated), commit message templates.
//! - `cursor`: the durable last-applied event seq.
//! - `errors`: error chains on one line, each cause once.
//! - `edit`: format-preserving manifest edits (field, kustomize, Helm) that change only the edited scalar.
//! - `git`: the config repo's bare clone, its tip's files read by path, confined paths, signed
//!   commits built without a work tree, and the push/retry loop.
//! - `health`: `--metrics-addr`'s responder (`/healthz`, `/readyz`, `/metrics`), and the readiness the loop keeps.
//! - `metrics`: Prometheus metrics (events, pushes, apply and publish → pushed latency, failing targets).
//! - `notices`: saying a fact (a passed-over tag, a target kept by its policy) once.
//! - `policy`: tag selection (semver ranges, tag patterns, newest tag) for a target.
//! - `report`: cluster reports: what each target runs, sent when it changed.
//! - `rings`: ring pointers as the agent knows them, and which one a ring target follows.
//! - `run`: the main loop: list-then-watch, batching, reports, reconnect with backoff.
//! - `sync_trigger`: after a push, Argo CD application syncs or a webhook, off the push path.
//! - `targets`: loading ImageWatcher targets with their policies.

pub mod apply;
pub mod batch;
pub mod client;
pub mod config;
pub mod cursor;
pub mod edit;
pub mod errors;
pub mod git;
pub mod health;
pub mod metrics;
pub mod notices;
pub mod policy;
pub mod report;
pub mod rings;
pub mod run;
pub mod sync_trigger;
pub mod targets;
