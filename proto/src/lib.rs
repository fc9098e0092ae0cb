//! ferry's shared contract.
//!
//! - [`pb`]: the generated gRPC service and messages (`proto/ferry.proto`).
//! - [`names`]: validation of OCI repository names, tags and digests, with errors that name the rule.
//! - [`reference`]: image-reference parsing and Docker-style normalisation, and the mapping between
//!   image names and ferry repository names.
//! - [`client`]: connecting to ferry-server (bearer token, message limits), for the CLI and agent.
//! - [`digest`]: computing and checking content digests.
//! - [`manifest`]: reading the fields of image manifests and indexes that ferry needs (never re-serialising them).
//! - [`release`]: which tags are releases agents may deploy, and why artifacts are passed over.
//! - [`yaml`]: YAML deserializing whose errors name `file:line:col` and the field path.
//! - [`pipeline`]: the rules of a pipeline spec (names, rings, images, gates, soak durations).
//! - [`versioning`]: `ferry version next` and `ferry needs-build`, decided from what rings run.
//! - [`status`]: reading a pipeline status (cluster names from their indexes).
//! - [`time`]: UTC timestamps as RFC 3339 (seconds, or milliseconds for notifications) and as
//!   tables print them.

pub mod client;
pub mod digest;
pub mod manifest;
pub mod names;
pub mod pipeline;
pub mod reference;
pub mod release;
pub mod status;
pub mod time;
pub mod versioning;
pub mod yaml;

/// Generated protobuf types and the `Ferry` service client and server.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("ferry.v1");
}

/// gRPC messages can carry a manifest (4 MiB) plus children and configs; tonic's 4 MiB default is
/// too small for a multi-arch publish.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
