//! Cluster reports and pipeline status over gRPC: Report, GetPipeline.

use ferry_proto::pb;
use tonic::{Request, Response, Status};

use super::FerryGrpc;

pub(super) async fn get_pipeline(
    _grpc: &FerryGrpc,
    _req: Request<pb::GetPipelineRequest>,
) -> Result<Response<pb::PipelineStatus>, Status> {
    Err(Status::unimplemented("get_pipeline: not built yet"))
}

pub(super) async fn report(
    _grpc: &FerryGrpc,
    _req: Request<pb::ReportRequest>,
) -> Result<Response<pb::ReportResponse>, Status> {
    Err(Status::unimplemented("report: not built yet"))
}
