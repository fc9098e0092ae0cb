//! The pipelines page, one pipeline's rings (what each runs, gates and why they are closed,
//! holds, clusters, rejected digests, history), and the promote and rollback buttons.
//!
//! Everything shown comes from `Service::pipeline_status`, the same view `GetPipeline` sends.
//! A ring move takes two POSTs: the button asks for a confirmation page, whose form makes the
//! move. Both check the Origin, the session's CSRF token and the promoter role; the service then
//! applies its own rules (order, gates, rejections) as it does for `ferry promote`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{check_csrf, check_origin, Viewer};
use super::format::{digest, time, when};
use super::{blocking, layout, State, UiAuth};
use crate::service::gates::duration_text;
use crate::service::rings::{normalise_image, ANTE};
use crate::service::{PipelineView, PromoteInput, RingView};
use crate::store::StoredHistory;

/// `GET /ui/pipelines`.
pub(super) async fn list(state: State, auth: web::Data<UiAuth>, req: HttpRequest) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let pipelines = state.pipelines();
    let body = html! {
        h1 { "Pipelines" }
        table #pipelines {
            thead { tr { th { "Pipeline" } th { "Rings" } th { "Images" } th { "Generation" } th { "Applied" } } }
            tbody {
                @for p in &pipelines {
                    tr {
                        td { a href={ "/ui/pipelines/" (p.spec.name) } { (p.spec.name) } }
                        td { @for r in &p.spec.rings { span.pill { (r) } " " } }
                        td { @for i in &p.spec.images { (i) @if *i == p.spec.root { " " span.muted { "(root)" } } br; } }
                        td { (p.generation) }
                        td title=(time(p.updated_at_ms)) { (when(p.updated_at_ms)) }
                    }
                }
                @if pipelines.is_empty() {
                    tr { td colspan="5" .muted { "No pipeline yet: " code { "ferry pipeline apply -f pipeline.yaml" } } }
                }
            }
        }
    };
    layout::page(&viewer, "Pipelines", "pipelines", body)
}

/// `GET /ui/pipelines/{name}`.
pub(super) async fn detail(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let viewer = match auth.viewer(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let (service, wanted) = (state.clone(), name.into_inner());
    let views = match blocking(&viewer, move || {
        service.pipeline_status(&wanted, true, false)
    })
    .await
    {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let Some(view) = views.into_iter().next() else {
        return layout::plain(StatusCode::NOT_FOUND, "no such pipeline");
    };
    let title = view.spec.name.clone();
    layout::page(&viewer, &title, "pipelines", pipeline(&viewer, &view))
}

/// The images a ring button moves: the root alone (it carries the bundle), else each image.
fn movable(view: &PipelineView) -> Vec<String> {
    if view.spec.root.is_empty() {
        view.spec.images.clone()
    } else {
        vec![view.spec.root.clone()]
    }
}

fn pipeline(viewer: &Viewer, view: &PipelineView) -> Markup {
    let images = movable(view);
    html! {
        h1 { "Pipeline " (view.spec.name) " " span.muted { "generation " (view.generation) ", head seq " (view.head_seq) } }
        table #rings {
            thead { tr {
                th { "Ring" } th { "Runs" } th { "Gate" } th { "Clusters" }
                @if viewer.may_move_rings() { th { "Actions" } }
            } }
            tbody {
                @for ring in &view.rings {
                    tr data-ring=(ring.name) {
                        td { strong { (ring.name) } }
                        td { (runs(ring)) }
                        td.gate { (gate(ring)) }
                        td { (clusters(ring)) }
                        @if viewer.may_move_rings() { td { (actions(viewer, view, ring, &images)) } }
                    }
                }
            }
        }
        @if !view.rejected.is_empty() {
            h2 { "Rejected digests" }
            table #rejected {
                thead { tr { th { "Image" } th { "Digest" } th { "Reason" } th { "By" } th { "When" } } }
                tbody {
                    @for r in &view.rejected {
                        tr {
                            td { (r.image) } td { (digest(&r.digest)) } td { (r.reason) } td { (r.actor) }
                            td title=(time(r.at_ms)) { (when(r.at_ms)) }
                        }
                    }
                }
            }
        }
        @let failing: Vec<_> = view.rings.iter().flat_map(|r| r.clusters.iter().map(move |t| (r.name.as_str(), t))).filter(|(_, t)| !t.error.is_empty()).collect();
        h2 { "Failing targets (" (failing.len()) ")" }
        table #failing {
            thead { tr { th { "Ring" } th { "Cluster" } th { "Target" } th { "Error" } } }
            tbody {
                @for (ring, t) in &failing {
                    tr { td { (ring) } td { (t.cluster) } td { code { (t.target) } } td.error { (t.error) } }
                }
                @if failing.is_empty() { tr { td colspan="4" .muted { "none" } } }
            }
        }
        h2 { "History" }
        table #history {
            thead { tr { th { "When" } th { "Ring" } th { "Image" } th { "Digest" } th { "Tag" } th { "By" } th { "Why" } } }
            tbody {
                @let rows = history(view);
                @for h in rows.iter().take(200) {
                    tr {
                        td title=(time(h.at_ms)) { (when(h.at_ms)) }
                        td { (h.ring) } td { (h.image) } td { (digest(&h.digest)) } td { code { (h.tag) } }
                        td { (h.actor) } td { (h.reason) @if h.forced { " " span.pill.bad { "forced" } } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="7" .muted { "no moves yet" } } }
            }
        }
    }
}

/// Every ring's moves, newest first.
fn history(view: &PipelineView) -> Vec<&StoredHistory> {
    let mut rows: Vec<_> = view
        .rings
        .iter()
        .flat_map(|r| r.history.values().flatten())
        .collect();
    rows.sort_by_key(|h| std::cmp::Reverse(h.seq));
    rows
}

fn runs(ring: &RingView) -> Markup {
    html! {
        @for p in &ring.pointers {
            div {
                (p.image) " "
                @if !p.tag.is_empty() { code.tag { (p.tag) } " " }
                @if let Some(v) = p.labels.get(crate::service::rings::VERSION_LABEL) { span.pill { (v) } " " }
                (digest(&p.digest))
                @if ring.rejected_running.contains(&p.digest) { " " span.pill.bad { "rejected" } }
                br; span.muted { "since " (when(p.since_ms)) }
            }
        }
        @if ring.pointers.is_empty() { span.muted { "nothing" } }
    }
}

fn gate(ring: &RingView) -> Markup {
    html! {
        @if let Some(g) = &ring.gate {
            @if g.guards() || g.auto_promote {
                div.muted {
                    @if g.require_applied { "requireApplied " }
                    @if g.soak_seconds > 0 { "soak " (duration_text(g.soak_seconds)) " " }
                    @if g.auto_promote { "autoPromote" }
                }
            }
        }
        @if let Some(s) = &ring.gate_status {
            @if s.open { span.pill.ok { "open" } }
            @else { span.pill.bad { "closed" } " " span.why { (s.why_closed) } }
        }
        @if !ring.hold.is_empty() { div { span.pill.warn { "held" } " " (ring.hold) } }
    }
}

fn clusters(ring: &RingView) -> Markup {
    html! {
        @for c in &ring.cluster_summaries {
            div {
                (c.cluster) " "
                @if c.connected { span.ok { "●" } } @else { span.bad { "○" } }
                " lag " (c.lag)
                @if c.failing > 0 { " " span.bad { (c.failing) "/" (c.targets) " failing" } }
            }
        }
        @if ring.cluster_summaries.is_empty() { span.muted { "no cluster follows it" } }
    }
}

fn actions(viewer: &Viewer, view: &PipelineView, ring: &RingView, images: &[String]) -> Markup {
    html! {
        @if ring.name != ANTE {
            @for image in images {
                (button(viewer, &view.spec.name, "promote", &ring.name, image, "Promote"))
                @if ring.pointers.iter().any(|p| &p.image == image) {
                    " " (button(viewer, &view.spec.name, "rollback", &ring.name, image, "Roll back"))
                }
                br;
            }
        }
    }
}

fn button(
    viewer: &Viewer,
    pipeline: &str,
    action: &str,
    ring: &str,
    image: &str,
    label: &str,
) -> Markup {
    html! {
        form.inline method="post" action={ "/ui/pipelines/" (pipeline) "/confirm" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="action" value=(action);
            input type="hidden" name="ring" value=(ring);
            input type="hidden" name="image" value=(image);
            button.act.danger[action == "rollback"] type="submit" title={ (label) " " (image) " in " (ring) } { (label) "…" }
        }
    }
}

/// A ring move as the forms send it.
#[derive(Deserialize)]
pub(super) struct MoveForm {
    csrf: String,
    action: String,
    ring: String,
    image: String,
    #[serde(default)]
    reason: String,
}

/// The checks both POSTs share: same origin, the session's CSRF token, role promoter with the
/// image in scope, a known action.
async fn authorised(
    state: &State,
    auth: &UiAuth,
    req: &HttpRequest,
    form: &MoveForm,
) -> Result<Viewer, HttpResponse> {
    check_origin(req).map_err(|r| *r)?;
    let viewer = auth.viewer(state, req).await?;
    check_csrf(&viewer, &form.csrf).map_err(|r| *r)?;
    let Some(p) = viewer
        .principal
        .as_ref()
        .filter(|_| viewer.may_move_rings())
    else {
        return Err(layout::page_with_status(
            StatusCode::FORBIDDEN,
            &viewer,
            "Refused",
            "pipelines",
            html! {
                h1 { "Refused" }
                p.error { "Moving rings needs a token with role promoter; log in with one." }
            },
        ));
    };
    let image = normalise_image(&form.image).unwrap_or_else(|_| form.image.clone());
    if let Err(e) = p.may_promote(&image) {
        return Err(layout::page_with_status(
            StatusCode::FORBIDDEN,
            &viewer,
            "Refused",
            "pipelines",
            html! {
                h1 { "Refused" } p.error { (e.to_string()) }
            },
        ));
    }
    if form.action != "promote" && form.action != "rollback" {
        return Err(layout::page_with_status(
            StatusCode::BAD_REQUEST,
            &viewer,
            "Refused",
            "pipelines",
            html! {
                h1 { "Refused" } p.error { "unknown action " (format!("{:?}", form.action)) ": the dashboard offers promote and rollback" }
            },
        ));
    }
    Ok(viewer)
}

/// `POST /ui/pipelines/{name}/confirm`: the confirmation step.
pub(super) async fn confirm(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    name: web::Path<String>,
    form: web::Form<MoveForm>,
) -> HttpResponse {
    let viewer = match authorised(&state, &auth, &req, &form).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let verb = if form.action == "promote" {
        "Promote"
    } else {
        "Roll back"
    };
    let body = html! {
        h1 { "Confirm: " (verb) }
        div.card {
            @if form.action == "promote" {
                p { "Promote " strong { (form.image) } " into ring " strong { (form.ring) } " of pipeline " strong { (name) } ", with what the ring before it runs. Gates apply as for " code { "ferry promote" } "." }
            } @else {
                p { "Roll ring " strong { (form.ring) } " of pipeline " strong { (name) } " back to its previous digest of " strong { (form.image) } ". autoPromote is held on that ring until it is promoted again." }
            }
            form.confirm method="post" action={ "/ui/pipelines/" (name) "/move" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="action" value=(form.action);
                input type="hidden" name="ring" value=(form.ring);
                input type="hidden" name="image" value=(form.image);
                @if form.action == "rollback" {
                    p { label for="reason" { "Reason " } input #reason type="text" name="reason" size="50" required; }
                }
                button.act.danger[form.action == "rollback"] type="submit" { "Yes, " (verb.to_lowercase()) }
                " " a href={ "/ui/pipelines/" (name) } { "Cancel" }
            }
        }
    };
    layout::page(&viewer, "Confirm", "pipelines", body)
}

/// `POST /ui/pipelines/{name}/move`: makes the move, then back to the pipeline page.
pub(super) async fn apply_move(
    state: State,
    auth: web::Data<UiAuth>,
    req: HttpRequest,
    name: web::Path<String>,
    form: web::Form<MoveForm>,
) -> HttpResponse {
    let viewer = match authorised(&state, &auth, &req, &form).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let actor = viewer
        .principal
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let (service, pipeline, form) = (state.clone(), name.into_inner(), form.into_inner());
    let back = format!("/ui/pipelines/{pipeline}");
    let done = blocking(&viewer, move || {
        if form.action == "promote" {
            service.promote(PromoteInput {
                image: form.image,
                to_ring: form.ring,
                pipeline,
                actor,
                ..Default::default()
            })
        } else {
            service.rollback(&form.image, &form.ring, &pipeline, &form.reason, &actor)
        }
    })
    .await;
    match done {
        Ok(_) => layout::redirect(&back),
        Err(answer) => answer,
    }
}
