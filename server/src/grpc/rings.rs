//! Pipelines and ring moves over gRPC: ApplyPipeline, ListPipelines, Promote, Shift, Unshift,
//! Rollback, Reject, ListRings.
//!
//! Roles: applying a pipeline needs promoter with every image in scope; a move needs promoter
//! with the image in scope (shift and unshift: every image of the pipeline); ListRings needs
//! agent; ListPipelines any valid token.

use ferry_proto::pb;
use tonic::{Request, Response, Status};

use super::{authorize, bearer, convert, run_blocking, status, FerryGrpc, ImageFilter};
use crate::service::auth::{Principal, Role};
use crate::service::pipelines;
use crate::service::rings::normalise_image;
use crate::service::{Event, PromoteInput, Service, ServiceError};

/// The token's caller if it may move rings of every image in `images`.
pub(super) fn promoter(
    service: &Service,
    token: Option<&str>,
    action: &'static str,
    images: &[String],
) -> Result<Principal, Status> {
    authorize(service, token, action, Role::Promoter, |p| {
        images.iter().try_for_each(|i| p.may_promote(i))
    })
}

/// Any caller with a valid token.
pub(super) fn anyone(
    service: &Service,
    token: Option<&str>,
    action: &'static str,
) -> Result<Principal, Status> {
    authorize(service, token, action, Role::Reader, |_| Ok(()))
}

/// The images of pipeline `name` (empty when unknown: the verb then answers NOT_FOUND).
fn images_of(service: &Service, name: &str) -> Vec<String> {
    service
        .pipelines()
        .into_iter()
        .find(|p| p.spec.name == name)
        .map(|p| p.spec.images)
        .unwrap_or_default()
}

/// The image as the service will see it, for the scope check (as written when it does not
/// parse: the verb refuses it).
fn scoped_image(image: &str) -> String {
    normalise_image(image).unwrap_or_else(|_| image.to_string())
}

fn moved(events: Vec<Event>, service: &Service) -> pb::MoveResponse {
    pb::MoveResponse {
        moved: events.iter().filter_map(convert::ring_move).collect(),
        head_seq: service.head_seq(),
    }
}

pub(super) async fn apply_pipeline(
    grpc: &FerryGrpc,
    req: Request<pb::ApplyPipelineRequest>,
) -> Result<Response<pb::ApplyPipelineResponse>, Status> {
    let token = bearer(&req);
    let req = req.into_inner();
    let spec = req
        .spec
        .ok_or_else(|| Status::invalid_argument("apply pipeline: the spec field is required"))?;
    let service = grpc.service.clone();
    let out = run_blocking(move || {
        // Authenticated before the spec is judged, so a caller without a token learns nothing.
        anyone(&service, token.as_deref(), "apply a pipeline")?;
        let spec = pipelines::normalise(convert::pipeline_spec(spec)).map_err(status)?;
        let p = promoter(&service, token.as_deref(), "apply a pipeline", &spec.images)?;
        service
            .apply_pipeline(spec, &req.source, &p.name)
            .map_err(status)
    })
    .await?;
    Ok(Response::new(pb::ApplyPipelineResponse {
        spec: Some(convert::pb_pipeline_spec(&out.spec)),
        generation: out.generation,
        changed: out.changed,
        seq: out.seq,
    }))
}

pub(super) async fn list_pipelines(
    grpc: &FerryGrpc,
    req: Request<pb::ListPipelinesRequest>,
) -> Result<Response<pb::ListPipelinesResponse>, Status> {
    let token = bearer(&req);
    let service = grpc.service.clone();
    run_blocking(move || anyone(&service, token.as_deref(), "list pipelines")).await?;
    let pipelines = grpc
        .service
        .pipelines()
        .into_iter()
        .map(|p| pb::PipelineSummary {
            name: p.spec.name,
            generation: p.generation,
            rings: p.spec.rings,
            images: p.spec.images,
            updated_at_ms: p.updated_at_ms,
        })
        .collect();
    Ok(Response::new(pb::ListPipelinesResponse { pipelines }))
}

/// A ring move: checks the caller is a promoter with every image of `images` in scope, runs
/// `verb` as that caller off the async runtime (it writes SQLite), and answers what moved.
async fn move_verb<F>(
    grpc: &FerryGrpc,
    token: Option<String>,
    action: &'static str,
    images: impl FnOnce(&Service) -> Vec<String> + Send + 'static,
    verb: F,
) -> Result<Response<pb::MoveResponse>, Status>
where
    F: FnOnce(&Service, String) -> Result<Vec<Event>, ServiceError> + Send + 'static,
{
    let service = grpc.service.clone();
    let out = run_blocking(move || {
        let images = images(&service);
        let p = promoter(&service, token.as_deref(), action, &images)?;
        let events = verb(&service, p.name).map_err(status)?;
        Ok(moved(events, &service))
    })
    .await?;
    Ok(Response::new(out))
}

pub(super) async fn promote(
    grpc: &FerryGrpc,
    req: Request<pb::PromoteRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    let token = bearer(&req);
    let req = req.into_inner();
    let image = scoped_image(&req.image);
    move_verb(
        grpc,
        token,
        "promote",
        move |_| vec![image],
        move |service, actor| {
            service.promote(PromoteInput {
                image: req.image,
                reference: req.reference,
                to_ring: req.to_ring,
                pipeline: req.pipeline,
                force: req.force,
                reason: req.reason,
                actor,
            })
        },
    )
    .await
}

async fn shift_or_unshift(
    grpc: &FerryGrpc,
    req: Request<pb::ShiftRequest>,
    undo: bool,
) -> Result<Response<pb::MoveResponse>, Status> {
    let token = bearer(&req);
    let pb::ShiftRequest {
        pipeline,
        force,
        reason,
    } = req.into_inner();
    if pipeline.is_empty() {
        return Err(Status::invalid_argument(
            "shift: the pipeline field is required",
        ));
    }
    let action = if undo { "unshift" } else { "shift" };
    let of = pipeline.clone();
    move_verb(
        grpc,
        token,
        action,
        move |service| images_of(service, &of),
        move |service, actor| {
            if undo {
                service.unshift(&pipeline, &actor)
            } else {
                service.shift(&pipeline, force, &reason, &actor)
            }
        },
    )
    .await
}

pub(super) async fn shift(
    grpc: &FerryGrpc,
    req: Request<pb::ShiftRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    shift_or_unshift(grpc, req, false).await
}

pub(super) async fn unshift(
    grpc: &FerryGrpc,
    req: Request<pb::ShiftRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    shift_or_unshift(grpc, req, true).await
}

pub(super) async fn rollback(
    grpc: &FerryGrpc,
    req: Request<pb::RollbackRequest>,
) -> Result<Response<pb::MoveResponse>, Status> {
    let token = bearer(&req);
    let req = req.into_inner();
    let image = scoped_image(&req.image);
    move_verb(
        grpc,
        token,
        "roll back",
        move |_| vec![image],
        move |service, actor| {
            service.rollback(&req.image, &req.ring, &req.pipeline, &req.reason, &actor)
        },
    )
    .await
}

pub(super) async fn reject(
    grpc: &FerryGrpc,
    req: Request<pb::RejectRequest>,
) -> Result<Response<pb::RejectResponse>, Status> {
    let token = bearer(&req);
    let req = req.into_inner();
    let service = grpc.service.clone();
    let (rejection, running) = run_blocking(move || {
        let image = scoped_image(&req.image);
        let p = promoter(&service, token.as_deref(), "reject", &[image])?;
        service
            .reject(&req.image, &req.digest, &req.reason, &p.name)
            .map_err(status)
    })
    .await?;
    Ok(Response::new(pb::RejectResponse {
        rejection: Some(convert::rejection(rejection)),
        running: running.into_iter().map(convert::ring_pointer).collect(),
    }))
}

pub(super) async fn list_rings(
    grpc: &FerryGrpc,
    req: Request<pb::ListRingsRequest>,
) -> Result<Response<pb::ListRingsResponse>, Status> {
    grpc.watcher(bearer(&req), "list rings").await?;
    let filter = ImageFilter::parse(&req.into_inner().images)?;
    let (head_seq, pointers) = grpc.service.ring_pointers(|image| filter.accepts(image));
    Ok(Response::new(pb::ListRingsResponse {
        head_seq,
        pointers: pointers.into_iter().map(convert::ring_pointer).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use prost::Message;

    use super::*;
    use crate::service::{Limits, ReportInput, TargetInput};

    /// The benchmark's load (1,000 clusters × 100 targets): GetPipeline's work in this process.
    /// `cargo test --release -p ferry-server --lib get_pipeline_load -- --ignored --nocapture`;
    /// `CLUSTERS` (1000) and `ROUNDS` (20) set the load and the calls timed, and `TARGETS=0`
    /// skips the answer with every target (for a run under callgrind).
    #[test]
    #[ignore = "a timing, not a check: run by hand"]
    fn get_pipeline_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let s = Service::load(store, Limits::default()).unwrap();
        // A pipeline lists at most 64 images: 50 images, two targets (files) each per cluster.
        let images: Vec<String> = (0..50)
            .map(|i| format!("bench.example.com/shop/app-{i:03}"))
            .collect();
        let rings = ["developers", "testers", "users"];
        let spec = pipelines::normalise(crate::service::pipelines::PipelineSpec {
            name: "shop".into(),
            rings: rings.iter().map(|r| r.to_string()).collect(),
            images: images.clone(),
            ..Default::default()
        })
        .unwrap();
        s.apply_pipeline(spec, "", "a").unwrap();
        let mut digests = Vec::new();
        for image in &images {
            let req = ferry_tests::releases::release(image, 1, vec!["1".into()]);
            let mut input = convert::publish_input(req).unwrap();
            input.actor = "ci".into();
            digests.push(s.publish(input).unwrap().digest);
        }
        for ring in rings {
            for image in &images {
                s.promote(PromoteInput {
                    image: image.clone(),
                    to_ring: ring.into(),
                    actor: "a".into(),
                    ..Default::default()
                })
                .unwrap();
            }
        }
        for c in 0..std::env::var("CLUSTERS").map_or(1000, |v| v.parse().unwrap()) {
            let targets = images
                .iter()
                .chain(&images)
                .zip(digests.iter().chain(&digests))
                .enumerate()
                .map(|(i, (image, d))| TargetInput {
                    target: format!("repo#w.yaml#targets[{i}]"),
                    image: image.clone(),
                    digest: d.clone(),
                    ring: rings[c % 3].into(),
                    pipeline: "shop".into(),
                    file: format!("environments/c{c}/f{i}.yaml"),
                    commit: "0123456789abcdef0123456789abcdef01234567".into(),
                    ..Default::default()
                })
                .collect();
            s.record_report(
                "agent",
                ReportInput {
                    cluster: format!("cluster-{c:04}"),
                    cursor: 1,
                    targets,
                },
            )
            .unwrap();
        }
        // Every target is in the index, under its ring.
        let clusters: usize = std::env::var("CLUSTERS").map_or(1000, |v| v.parse().unwrap());
        let n: usize = ["ante", "developers", "testers", "users", "post"]
            .iter()
            .map(|r| s.ring_reports("shop", r).len())
            .sum();
        assert_eq!(n, 100 * clusters);
        let rounds: usize = std::env::var("ROUNDS").map_or(20, |v| v.parse().unwrap());
        // Build (service: read the report tallies) and encode (convert + prost) timed apart, the default answer and the one with every target.
        let every_target = std::env::var("TARGETS").map_or(true, |v| v != "0");
        for targets in [false, true] {
            if targets && !every_target {
                continue;
            }
            let (mut build, mut total) = (Vec::new(), Vec::new());
            let mut bytes = 0;
            for _ in 0..rounds {
                let t = Instant::now();
                let views = s.pipeline_status("shop", false, targets).unwrap();
                build.push(t.elapsed());
                let st = convert::pipeline_status(views.into_iter().next().unwrap());
                bytes = st.encode_to_vec().len();
                total.push(t.elapsed());
            }
            build.sort();
            total.sort();
            eprintln!(
                "GetPipeline (targets: {targets}): build median {:?}; build+encode median {:?}, max {:?}; {bytes} bytes",
                build[build.len() / 2],
                total[total.len() / 2],
                total.last().unwrap()
            );
        }
    }
}
