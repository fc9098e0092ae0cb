//! Pipelines and ring moves over gRPC: ApplyPipeline, ListPipelines, Promote, Shift, Unshift,
//! Rollback, Reject, ListRings.

use ferry_proto::pb;
use tonic::{Request, Response, Status};

use super::FerryGrpc;

pub(super) async fn apply_pipeline(
    _grpc: &FerryGrpc,
    _req: Request<pb::ApplyPipelineRequest>,
) -> Result<Response<pb::ApplyPipelineResponse>, Status> {
    Err(Status::unimplemented("apply_pipeline: not built yet"))
}

pub(super) async fn list_pipelines(
    _grpc: &FerryGrpc,
    _req: Request<pb::ListPipelinesRequest>,
) -> Result<Response<pb::ListPipelinesResponse>, Status> {
    Err(Status::unimplemented("list_pipelines: not built yet"))
}

pub(super) async fn promote(
    _grpc: &FerryGrpc,
    _req: Request<pb::PromoteRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    Err(Status::unimplemented("promote: not built yet"))
}

pub(super) async fn shift(
    _grpc: &FerryGrpc,
    _req: Request<pb::ShiftRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    Err(Status::unimplemented("shift: not built yet"))
}

pub(super) async fn unshift(
    _grpc: &FerryGrpc,
    _req: Request<pb::ShiftRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    Err(Status::unimplemented("unshift: not built yet"))
}

pub(super) async fn rollback(
    _grpc: &FerryGrpc,
    _req: Request<pb::RollbackRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    Err(Status::unimplemented("rollback: not built yet"))
}

pub(super) async fn reject(
    _grpc: &FerryGrpc,
    _req: Request<pb::RejectRequest>,
) -> Result<Response<pb::RejectResponse>, Status> {
    Err(Status::unimplemented("reject: not built yet"))
}

pub(super) async fn list_rings(
    _grpc: &FerryGrpc,
    _req: Request<pb::ListRingsRequest>,
) -> Result<Response<pb::ListRingsResponse>, Status> {
    Err(Status::unimplemented("list_rings: not built yet"))
}
