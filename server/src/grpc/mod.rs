//! The `Ferry` gRPC service (tonic): Publish, Subscribe, ListTags.
//!
//! Direction: `grpc` → `service`. This layer validates proto fields, maps domain errors to
//! `tonic::Status` (internal causes are logged, never sent) and runs blocking work off the executor.

mod convert;
mod subscribe;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::pb::{self, ferry_server::Ferry};
use ferry_proto::reference::ImageName;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::service::{Service, ServiceError};

/// The gRPC service.
pub struct FerryGrpc {
    service: Arc<Service>,
    heartbeat: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl FerryGrpc {
    /// Wraps the service; `heartbeat` is how often idle streams get the head seq. When
    /// `shutdown` turns true, every open stream ends with `UNAVAILABLE`: graceful shutdown waits
    /// for open streams, and a Subscribe stream would otherwise never end.
    pub fn new(
        service: Arc<Service>,
        heartbeat: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        FerryGrpc {
            service,
            heartbeat,
            shutdown,
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
        ServiceError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
        ServiceError::NameUnknown(_)
        | ServiceError::ManifestUnknown { .. }
        | ServiceError::BlobUnknown { .. } => Status::not_found(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
        .map_err(status)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ferry for FerryGrpc {
    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let input = convert::publish_input(req.into_inner())?;
        let service = self.service.clone();
        let out = blocking(move || service.publish(input)).await?;
        Ok(Response::new(pb::PublishResponse {
            digest: out.digest,
            repository: out.repository,
            moved: out
                .events
                .iter()
                .map(|e| pb::TagMove {
                    tag: e.tag.clone(),
                    digest: e.digest.clone(),
                    previous_digest: e.previous_digest.clone(),
                    seq: e.seq,
                })
                .collect(),
            head_seq: out.head_seq,
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = req.into_inner();
        let filter = ImageFilter::parse(&req.images)?;
        let stream = subscribe::start(
            self.service.clone(),
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
        let filter = ImageFilter::parse(&req.into_inner().images)?;
        let (head_seq, tags) = self.service.current_tags(|image| filter.accepts(image));
        Ok(Response::new(pb::ListTagsResponse {
            head_seq,
            tags: tags.into_iter().map(convert::tag_state).collect(),
        }))
    }
}
