//! Shared helpers for ferry's end-to-end tests (the tests live in `tests/tests/*.rs`).
//!
//! Every helper drives a real peer on loopback, never a mock (README, "Testing"):
//!
//! - [`agent_stack`]: server + git daemon + one config repo, for the agent's end-to-end tests.
//! - [`ferry`]: the ferry binaries under test (server on free ports, `ferry publish`).
//! - [`ports`]: free loopback ports and waiting for a listener.
//! - [`http`]: a tiny HTTP/1.1 GET over `std::net`, enough for readiness probes.
//! - [`process`]: child processes that are killed on drop, with their output in a log file, and
//!   waiting for one to listen.
//! - [`origin`]: a `docker-registry` origin with its access log, to publish images from.
//! - [`oci`]: OCI image layouts written by hand (images, multi-arch indexes, artifacts).
//! - [`prometheus`]: a real Prometheus scraping given targets every second, queried through its
//!   HTTP API.
//! - [`releases`]: distinct releases made in memory (images, multi-arch indexes, artifacts with a
//!   subject), to publish over gRPC or hand to a `Service` in-process.
//! - [`receiver`]: an HTTP receiver that records requests and answers (or hangs) as told, for
//!   webhooks and Argo CD's API.
//! - [`skopeo`]: `skopeo copy` / `inspect` / `list-tags` wrappers.
//! - [`git`]: a `git daemon` serving bare repositories, and git CLI helpers.
//! - [`browser`]: headless Chromium over the DevTools Protocol, for the dashboard tests.
//! - [`certs`]: a throwaway CA and a server certificate for 127.0.0.1 (openssl).
//! - [`https_git`]: `git http-backend` behind lighttpd with TLS (a throwaway CA) and Basic auth.
//! - [`gpg`]: a throwaway OpenPGP signing key and `git verify-commit` against it.
//! - [`ssh_signing`]: a throwaway SSH signing key and `git verify-commit` against it.
//! - [`sshd`]: an OpenSSH `sshd` serving git over `ssh://`, with its own host key.
//!
//! Conventions: fixtures that a test cannot go on without (`start`, `generate`, building a
//! layout) panic with a message naming what failed; operations a test may expect to fail
//! (copies, pushes, verification) return `anyhow::Result` with the tool's stderr in the error.
//! A missing tool is a failure with install instructions, never a skip
//! ([`process::require_tool`]).

pub mod agent_stack;
pub mod browser;
pub mod certs;
pub mod ferry;
pub mod git;
pub mod gpg;
pub mod http;
pub mod https_git;
pub mod oci;
pub mod origin;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod receiver;
pub mod releases;
pub mod skopeo;
pub mod ssh_signing;
pub mod sshd;
