//! The `Ferry` gRPC service (tonic): Publish, Subscribe, ListTags, and the ring verbs
//! ([`rings`]) and cluster reports ([`reports`]).
//!
//! Direction: `grpc` → `service`. This layer validates proto fields, maps domain errors to
//! `tonic::Status` (internal causes are logged, never sent) and runs blocking work off the executor.

mod convert;
mod reports;
mod rings;
mod streams;
mod subscribe;

pub use streams::StreamCounts;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::pb::{self, ferry_server::Ferry};
use ferry_proto::reference::ImageName;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::service::auth::{AuthError, Principal, Role};
use crate::service::{Service, ServiceError};

/// The gRPC service.
pub struct FerryGrpc {
    service: Arc<Service>,
    heartbeat: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
    streams: StreamCounts,
}

impl FerryGrpc {
    /// Wraps the service; `heartbeat` is how often idle streams get the head seq. When
    /// `shutdown` turns true, every open stream ends with `UNAVAILABLE`: graceful shutdown waits
    /// for open streams, and a Subscribe stream would otherwise never end. `streams` caps open
    /// streams per token.
    pub fn new(
        service: Arc<Service>,
        heartbeat: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
        streams: StreamCounts,
    ) -> Self {
        FerryGrpc {
            service,
            heartbeat,
            shutdown,
            streams,
        }
    }

    /// The tonic server for this service, with message limits sized for multi-arch publishes.
    pub fn into_server(self) -> pb::ferry_server::FerryServer<Self> {
        pb::ferry_server::FerryServer::new(self)
            .max_decoding_message_size(ferry_proto::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(ferry_proto::MAX_GRPC_MESSAGE_BYTES)
    }
}

/// Maps a domain error to a gRPC status.
pub(crate) fn status(e: ServiceError) -> Status {
    match e {
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "store failure");
            Status::internal("internal error; see the ferry-server log")
        }
        ServiceError::TooLarge { .. } => Status::resource_exhausted(capped(e.to_string())),
        ServiceError::NameUnknown(_)
        | ServiceError::ManifestUnknown { .. }
        | ServiceError::BlobUnknown { .. }
        | ServiceError::RingUnknown(_) => Status::not_found(capped(e.to_string())),
        ServiceError::RingRefused(_) => Status::failed_precondition(capped(e.to_string())),
        _ => Status::invalid_argument(capped(e.to_string())),
    }
}

/// The most bytes of a status message: messages quote request values cut short
/// ([`ferry_proto::names::Shown`]), and this backstop keeps any other message well inside the
/// 16 KiB of metadata gRPC allows a trailer, past which the client learns only "Stream removed".
const MAX_STATUS_MESSAGE: usize = 2048;

fn capped(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut cut = MAX_STATUS_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("… (message cut short)");
    }
    message
}

/// A gRPC code as a metrics label value (`invalid_argument`), from a closed set.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// Maps a refused token to UNAUTHENTICATED (no valid token) or PERMISSION_DENIED (valid, but
/// not for this).
fn auth_status(e: AuthError) -> Status {
    if e.is_unauthenticated() {
        Status::unauthenticated(capped(e.to_string()))
    } else {
        Status::permission_denied(capped(e.to_string()))
    }
}

/// The token a request carries in `authorization: Bearer <token>`.
fn bearer<T>(req: &Request<T>) -> Option<String> {
    let value = req.metadata().get("authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string())
}

/// Identifies the caller of `action` and checks `allowed` on it; refusals are logged. `role`
/// words the error for a request without a token. Blocking: it reads the store, on every call,
/// so a revocation applies at once.
fn authorize(
    service: &Service,
    token: Option<&str>,
    action: &'static str,
    role: Role,
    allowed: impl FnOnce(&Principal) -> Result<(), AuthError>,
) -> Result<Principal, Status> {
    let refused = |e: AuthError| {
        tracing::info!(%action, reason = %e, "refused");
        auth_status(e)
    };
    let principal = service
        .authenticate(token, action, role)
        .map_err(status)?
        .map_err(refused)?;
    allowed(&principal).map_err(refused)?;
    Ok(principal)
}

impl FerryGrpc {
    /// A caller allowed to watch (Subscribe, ListTags).
    async fn watcher(
        &self,
        token: Option<String>,
        action: &'static str,
    ) -> Result<Principal, Status> {
        let service = self.service.clone();
        run_blocking(move || {
            authorize(
                &service,
                token.as_deref(),
                action,
                Role::Agent,
                Principal::may_watch,
            )
        })
        .await
    }
}

/// The images a request asks about, normalised; empty means every image.
#[derive(Debug)]
pub(crate) struct ImageFilter(Vec<String>);

impl ImageFilter {
    /// Normalises the image names of a request.
    pub(crate) fn parse(images: &[String]) -> Result<Self, Status> {
        images
            .iter()
            .map(|i| {
                ImageName::parse(i)
                    .map(|n| n.to_string())
                    .map_err(|e| Status::invalid_argument(format!("image filter: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(ImageFilter)
    }

    /// Whether events and tags of `image` (normalised) pass the filter.
    pub(crate) fn accepts(&self, image: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|f| f == image)
    }
}

/// Runs `f` on the blocking pool (SQLite, fsync), off the async executor.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ferry for FerryGrpc {
    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let token = bearer(&req);
        let raw = req.into_inner();
        let service = self.service.clone();
        // One trip to the blocking pool: the token check and the publish both read the store.
        let out = run_blocking(move || {
            let principal = authorize(
                &service,
                token.as_deref(),
                "publish",
                Role::Publisher,
                |_| Ok(()),
            )?;
            let input = convert::publish_input(raw)?;
            // An image that does not parse is refused by the publish itself; scope it as written.
            let image = ImageName::parse(&input.image)
                .map_or_else(|_| input.image.clone(), |n| n.to_string());
            principal.may_publish(&image).map_err(|e| {
                tracing::info!(token = %principal.name, %image, "publish refused: out of scope");
                auth_status(e)
            })?;
            // Past ante, a publish promotes: that needs the promoter role too.
            if !matches!(input.to_ring.trim(), "" | "ante" | "none") {
                principal.may_promote(&image).map_err(|e| {
                    tracing::info!(token = %principal.name, %image, ring = %input.to_ring, "publish refused: not a promoter");
                    auth_status(e)
                })?;
            }
            let mut input = input;
            input.actor.clone_from(&principal.name);
            service.publish(input).map_err(status)
        })
        .await;
        self.service.metrics().publish(match &out {
            Ok(_) => "ok",
            Err(s) => code_name(s.code()),
        });
        let out = out?;
        Ok(Response::new(pb::PublishResponse {
            digest: out.digest,
            repository: out.repository,
            moved: out.events.iter().filter_map(convert::tag_move).collect(),
            head_seq: out.head_seq,
            ring_moves: out.events.iter().filter_map(convert::ring_move).collect(),
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let token = bearer(&req);
        let principal = self.watcher(token.clone(), "subscribe").await?;
        let req = req.into_inner();
        let filter = ImageFilter::parse(&req.images)?;
        // The cluster shows connected while this stream is open. An empty name is the token's
        // (held to the token-name rule, not the cluster-name rule: see validate_cluster_name).
        let cluster = if req.cluster.is_empty() {
            principal.name.clone()
        } else {
            crate::service::reports::validate_cluster_name(&req.cluster).map_err(status)?;
            req.cluster.clone()
        };
        let slot = self.streams.open(principal.id, &principal.name)?;
        let connection =
            (!req.observer).then(|| self.service.cluster_connected(&cluster, &principal.name));
        let service = self.service.clone();
        let still_allowed: subscribe::StillAllowed = Arc::new(move || {
            authorize(
                &service,
                token.as_deref(),
                "subscribe",
                Role::Agent,
                Principal::may_watch,
            )
            .map(|_| ())
        });
        let token = subscribe::StreamToken {
            name: principal.name,
            still_allowed,
            slot,
            connection,
        };
        let stream = subscribe::start(
            self.service.clone(),
            token,
            req.after_seq,
            filter,
            self.heartbeat,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_tags(
        &self,
        req: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        self.watcher(bearer(&req), "list tags").await?;
        let filter = ImageFilter::parse(&req.into_inner().images)?;
        let (head_seq, tags) = self.service.current_tags(|image| filter.accepts(image));
        Ok(Response::new(pb::ListTagsResponse {
            head_seq,
            tags: tags.into_iter().map(convert::tag_state).collect(),
        }))
    }

    async fn apply_pipeline(
        &self,
        req: Request<pb::ApplyPipelineRequest>,
    ) -> Result<Response<pb::ApplyPipelineResponse>, Status> {
        rings::apply_pipeline(self, req).await
    }

    async fn list_pipelines(
        &self,
        req: Request<pb::ListPipelinesRequest>,
    ) -> Result<Response<pb::ListPipelinesResponse>, Status> {
        rings::list_pipelines(self, req).await
    }

    async fn get_pipeline(
        &self,
        req: Request<pb::GetPipelineRequest>,
    ) -> Result<Response<pb::PipelineStatus>, Status> {
        reports::get_pipeline(self, req).await
    }

    async fn promote(
        &self,
        req: Request<pb::PromoteRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        rings::promote(self, req).await
    }

    async fn shift(
        &self,
        req: Request<pb::ShiftRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        rings::shift(self, req).await
    }

    async fn unshift(
        &self,
        req: Request<pb::ShiftRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        rings::unshift(self, req).await
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        rings::rollback(self, req).await
    }

    async fn reject(
        &self,
        req: Request<pb::RejectRequest>,
    ) -> Result<Response<pb::RejectResponse>, Status> {
        rings::reject(self, req).await
    }

    async fn list_rings(
        &self,
        req: Request<pb::ListRingsRequest>,
    ) -> Result<Response<pb::ListRingsResponse>, Status> {
        rings::list_rings(self, req).await
    }

    async fn report(
        &self,
        req: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        reports::report(self, req).await
    }
}
