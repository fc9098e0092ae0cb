//! Cluster reports and pipeline status over gRPC: Report, GetPipeline.

use ferry_proto::pb;
use tonic::{Request, Response, Status};

use super::{authorize, bearer, convert, run_blocking, status, FerryGrpc};
use crate::service::auth::{Principal, Role};
use crate::service::{ReportInput, TargetInput};

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
            .pipeline_status(&req.name_or_image, req.history, req.targets)
            .map_err(status)
    })
    .await?;
    let mut all = views.into_iter().map(convert::pipeline_status);
    let mut first = all.next().expect("pipeline_status returns at least one");
    first.also = all.collect();
    Ok(Response::new(first))
}

/// Report: role agent; the cluster is the request's or the token's name.
pub(super) async fn report(
    grpc: &FerryGrpc,
    req: Request<pb::ReportRequest>,
) -> Result<Response<pb::ReportResponse>, Status> {
    let token = bearer(&req);
    let raw = req.into_inner();
    let service = grpc.service.clone();
    // One trip to the blocking pool: the token check reads the store, the report writes it.
    let out = run_blocking(move || {
        let principal = authorize(
            &service,
            token.as_deref(),
            "report",
            Role::Agent,
            Principal::may_report,
        )?;
        service
            .record_report(&principal.name, report_input(raw))
            .map_err(status)
    })
    .await?;
    Ok(Response::new(pb::ReportResponse {
        cluster: out.cluster,
        changed: out.changed,
    }))
}

fn report_input(r: pb::ReportRequest) -> ReportInput {
    ReportInput {
        cluster: r.cluster,
        cursor: r.cursor,
        targets: r
            .targets
            .into_iter()
            .map(|t| TargetInput {
                target: t.target,
                image: t.image,
                digest: t.digest,
                ring: t.ring,
                pipeline: t.pipeline,
                file: t.file,
                commit: t.commit,
                pushed_at_ms: t.pushed_at_ms,
                error: t.error,
            })
            .collect(),
    }
}
