//! Cluster reports and pipeline status over gRPC: Report, GetPipeline.

use ferry_proto::pb;
use tonic::{Request, Response, Status};

use super::{bearer, convert, run_blocking, status, FerryGrpc};

/// Any valid token: a pipeline's status by name, or of every pipeline listing an image (the
/// first, the others in `also`).
pub(super) async fn get_pipeline(
    grpc: &FerryGrpc,
    req: Request<pb::GetPipelineRequest>,
) -> Result<Response<pb::PipelineStatus>, Status> {
    let token = bearer(&req);
    let req = req.into_inner();
    if req.name_or_image.is_empty() {
        return Err(Status::invalid_argument(
            "get pipeline: name_or_image is required (a pipeline name or an image)",
        ));
    }
    let service = grpc.service.clone();
    let views = run_blocking(move || {
        super::rings::anyone(&service, token.as_deref(), "show a pipeline")?;
        service
            .pipeline_status(&req.name_or_image, req.history)
            .map_err(status)
    })
    .await?;
    let mut all = views.into_iter().map(convert::pipeline_status);
    let mut first = all.next().expect("pipeline_status returns at least one");
    first.also = all.collect();
    Ok(Response::new(first))
}

pub(super) async fn report(
    _grpc: &FerryGrpc,
    _req: Request<pb::ReportRequest>,
) -> Result<Response<pb::ReportResponse>, Status> {
    Err(Status::unimplemented("report: not built yet"))
}
