//! The pages, written on the server with maud, whose templates escape
//! every value they are given: a step named `<script>` is shown as that
//! text. What changes afterwards is filled in by `app.js` from the JSON
//! API, as text too. No page has an inline script (the policy forbids
//! them): data for the script rides on `data-` attributes.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_pipeline::{ParamType, Pipeline};
use maud::{DOCTYPE, Markup, html};

use super::api::{ListQuery, TAIL, params_json, resolve, unknown_pipeline};
use super::error::ApiError;
use super::layout::{NODE_H, NODE_W, layout};
use super::state::AppState;
use crate::ops::{self, RunStatus, RunView, StepView};

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

pub(crate) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub(crate) async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    let mut r = text.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The frame of every page; `page` names it for the script.
fn frame(title: &str, page: &str, data: &[(&str, &str)], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · flow" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body data-page=(page) data-run=[data.iter().find(|d| d.0 == "run").map(|d| d.1)]
                data-pipeline=[data.iter().find(|d| d.0 == "pipeline").map(|d| d.1)] {
                header.top {
                    a.brand href="/" { "flow" }
                    nav { a href="/" { "Runs" } a href="/login" { "Sign in" } }
                    span #auth .muted { "signed out: actions need the token" }
                }
                main { (body) }
            }
        }
    }
}

fn error_page(e: &ApiError) -> Response {
    let body = frame(
        "Not here",
        "error",
        &[],
        html! { h1 { "Not here" } p.error #page-error { (e.message()) } p { a href="/" { "All runs" } } },
    );
    html_page(e.status(), body)
}

fn html_page(status: StatusCode, markup: Markup) -> Response {
    (status, axum::response::Html(markup.into_string())).into_response()
}

fn badge(state: &str) -> Markup {
    html! { span class={ "badge st-" (state) } data-field="state" { (state) } }
}

/// The colour of a step on the graph: a step that failed stays red once
/// reverted (its state says `reverted`, its error why).
fn colour(state: &str, failed: bool) -> &str {
    if failed && (state == "reverted" || state == "reverting") {
        "failed"
    } else {
        state
    }
}

fn ms(d: Option<u64>) -> String {
    match d {
        None => String::new(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// `GET /`: the runs, with filters; the list follows the runs live.
pub(crate) async fn runs_page(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let runs = match query.filter() {
        Ok(filter) => ops::list_runs(&state.store, filter)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let runs = match runs {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let states = [
        "pending",
        "running",
        "suspended",
        "succeeded",
        "reverted",
        "failed",
    ];
    let chosen = query.state.clone().unwrap_or_default();
    let body = html! {
        h1 { "Runs" }
        form.filters #filters method="get" action="/" {
            label { "State " select name="state" {
                option value="" { "any" }
                @for s in states { option value=(s) selected[chosen == s] { (s) } }
            } }
            label { "Pipeline " input name="flow" list="flows" value=[query.flow.as_deref()]; }
            datalist #flows { @for p in &state.pipelines { option value=(p.name()) {} } }
            label { "Since " input name="since" placeholder="2h, 2026-05-01" value=[query.since.as_deref()]; }
            button type="submit" { "Filter" }
        }
        table.runs {
            thead { tr { th { "Run" } th { "Pipeline" } th { "State" } th { "Started" } th { "Took" } th { "Owner" } } }
            tbody #runs {
                @for r in &runs {
                    tr data-run=(r.id) {
                        td { a href={ "/runs/" (r.id) } { (r.id.to_string()[..8]) } }
                        td { (r.flow) }
                        td { (badge(r.state.as_str())) }
                        td { (r.created_at) }
                        td { (ms(Some(r.duration_ms))) }
                        td { (r.owner.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if runs.is_empty() { p.muted #no-runs { "No run matches." } }
        h2 { "Start a pipeline" }
        @if state.pipelines.is_empty() {
            p.muted { "This server serves no pipeline: start it with --pipelines DIR|FILE." }
        }
        ul.pipelines {
            @for p in &state.pipelines {
                li {
                    a href={ "/pipelines/" (p.name()) } { (p.name()) }
                    @if let Some(d) = p.description() { " — " span.muted { (d) } }
                }
            }
        }
    };
    html_page(StatusCode::OK, frame("Runs", "runs", &[], body))
}

/// `GET /runs/{run}`: a run, its graph and steps, followed live.
pub(crate) async fn run_page(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> Response {
    let id = match resolve(&state, &run).await {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    let (view, graph) = match ops::show_run_graph(&state.store, id, TAIL).await {
        Ok(both) => both,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let names: Vec<&str> = graph.nodes().iter().map(|n| n.name.as_str()).collect();
    let id_text = id.to_string();
    let body = html! {
        h1 { span #run-flow { (view.run.flow) } " " span #run-state { (badge(view.run.state.as_str())) } }
        p.muted { "run " code { (id_text) } }
        div.actions {
            button #cancel data-action="cancel" disabled[view.run.state.ended()] { "Cancel" }
            button #resume data-action="resume" disabled[view.run.state.ended() || view.run.state == RunStatus::Running && view.run.held] { "Resume" }
            button #rerun data-action="rerun" disabled[view.run.definition.is_none()] { "Re-run" }
            span #action-result .muted {}
        }
        dl.facts {
            dt { "Started" } dd #run-created { (view.run.created_at) }
            dt { "Took" } dd #run-duration { (ms(Some(view.run.duration_ms))) }
            dt { "Owner" } dd #run-owner { (view.run.owner.as_deref().unwrap_or("")) }
            @if let Some(d) = &view.log_dir { dt { "Logs" } dd { code { (d) } } }
        }
        @if !view.params.is_empty() {
            h2 { "Parameters" }
            table.params { tbody {
                @for (k, v) in &view.params {
                    tr { th { (k) } td { code { (v.as_str().map_or_else(|| v.to_string(), str::to_string)) } } }
                }
            } }
        }
        h2 { "Graph" }
        div.graph { (svg(&names, graph.edges(), &view)) }
        h2 { "Steps" }
        table.steps {
            thead { tr { th { "Step" } th { "State" } th { "Attempts" } th { "Started" } th { "Took" } th { "Exit" } th { "Error" } th { "Undo" } } }
            tbody #steps {
                @for s in &view.steps { (step_rows(s)) }
            }
        }
        section #log hidden {
            h2 { "Log of " span #log-step {} " " select #log-stream { option value="stdout" { "stdout" } option value="stderr" { "stderr" } } }
            p.muted { span #log-range {} " " button #log-earlier { "Earlier" } }
            pre #log-text {}
        }
    };
    html_page(
        StatusCode::OK,
        frame(
            &format!("{} {}", view.run.flow, &id_text[..8]),
            "run",
            &[("run", &id_text)],
            body,
        ),
    )
}

fn step_rows(s: &StepView) -> Markup {
    html! {
        tr.step data-step=(s.name) {
            td { (s.name) }
            td { (badge(&s.state)) }
            td data-field="attempts" { (s.attempts) }
            td data-field="started" { (s.started_at.as_deref().unwrap_or("")) }
            td data-field="duration" { (ms(s.duration_ms)) }
            td data-field="exit" { (s.exit_code.map(|c| c.to_string()).or(s.signal.map(|g| format!("signal {g}"))).unwrap_or_default()) }
            td data-field="error" { (s.error.as_deref().unwrap_or("")) }
            td data-field="undo" { (s.undo.as_ref().map(|u| format!("exit {} in {}", u.exit_code.map_or("?".into(), |c| c.to_string()), ms(u.duration_ms))).unwrap_or_default()) }
        }
        tr.tail data-tail=(s.name) {
            td colspan="8" {
                pre data-field="stdout" { (s.stdout_tail.as_deref().unwrap_or("")) }
                pre.err data-field="stderr" { (s.stderr_tail.as_deref().unwrap_or("")) }
                button.log-open data-log=(s.name) { "Full log" }
            }
        }
    }
}

/// The graph as SVG: a box per step, coloured by its state (a class the
/// script changes), an arrow per dependency.
fn svg(names: &[&str], edges: &[(usize, usize)], view: &RunView) -> Markup {
    let l = layout(names.len(), edges);
    let step = |name: &str| view.steps.iter().find(|s| s.name == name);
    let state_of = |name: &str| step(name).map_or("none", |s| colour(&s.state, s.error.is_some()));
    let sub = |name: &str| {
        step(name).map_or(String::new(), |s| {
            let state = colour(&s.state, s.error.is_some());
            match (state == s.state, ms(s.duration_ms)) {
                (true, d) if d.is_empty() => state.to_string(),
                (true, d) => format!("{state} · {d}"),
                (false, _) => format!("{state}, {}", s.state),
            }
        })
    };
    let label = |name: &str| {
        if name.chars().count() > 22 {
            format!("{}…", name.chars().take(21).collect::<String>())
        } else {
            name.to_string()
        }
    };
    html! {
        svg #graph xmlns="http://www.w3.org/2000/svg" width=(l.width) height=(l.height)
            viewBox={ "0 0 " (l.width) " " (l.height) } role="img" aria-label="the run's graph" {
            defs { marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                path d="M 0 0 L 10 5 L 0 10 z" {}
            } }
            @for &(a, b) in edges {
                @if let (Some(&(x1, y1)), Some(&(x2, y2))) = (l.at.get(a), l.at.get(b)) {
                    @let (sx, sy, ex, ey) = (x1 + NODE_W, y1 + NODE_H / 2.0, x2, y2 + NODE_H / 2.0);
                    @let mid = (sx + ex) / 2.0;
                    path.edge d=(format!("M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}")) marker-end="url(#arrow)" {}
                }
            }
            @for (i, name) in names.iter().enumerate() {
                @let (x, y) = l.at[i];
                g class={ "node st-" (state_of(name)) } data-step=(name) transform=(format!("translate({x} {y})")) {
                    title { (name) }
                    rect width=(NODE_W) height=(NODE_H) rx="6" {}
                    text.name x="10" y="18" { (label(name)) }
                    text.sub x="10" y="35" { (sub(name)) }
                }
            }
        }
    }
}

/// `GET /pipelines/{name}`: the form that starts a run, made from the
/// pipeline's typed parameters.
pub(crate) async fn pipeline_page(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let Some(p) = state.pipeline(&name) else {
        return error_page(&unknown_pipeline(&state, &name));
    };
    let body = html! {
        h1 { "Start " (p.name()) }
        @if let Some(d) = p.description() { p.muted { (d) } }
        form #start novalidate {
            @for param in p.parameters() { (field(p, param)) }
            div #form-error .error role="alert" {}
            button type="submit" #start-button { "Start" }
        }
        h2 { "Steps" }
        ol { @for s in p.steps() { li { code { (s.name()) } @if let Some(d) = s.description() { " — " (d) } } } }
    };
    html_page(
        StatusCode::OK,
        frame(
            &format!("Start {}", p.name()),
            "start",
            &[("pipeline", p.name())],
            body,
        ),
    )
}

fn field(p: &Pipeline, param: &flow_pipeline::Param) -> Markup {
    let json = params_json(p).into_iter().find(|j| j.name == param.name());
    let default = json.as_ref().map(|j| match &j.default {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    });
    let ty = json.as_ref().map_or("string", |j| j.ty);
    let required = param.is_required();
    let id = format!("param-{}", param.name());
    html! {
        div.field data-param=(param.name()) data-type=(ty) data-required=(required) {
            label for=(id) { code { (param.name()) } " " span.muted { (ty) } @if required { " " span.req { "required" } } }
            @match param.ty() {
                ParamType::OneOf(list) => {
                    select #(id) name=(param.name()) required[required] {
                        @if required { option value="" { "choose…" } }
                        @for c in list { option value=(c) selected[default.as_deref() == Some(c.as_str())] { (c) } }
                    }
                }
                ParamType::Bool => {
                    select #(id) name=(param.name()) required[required] {
                        @if required { option value="" { "choose…" } }
                        @for c in ["true", "false"] { option value=(c) selected[default.as_deref() == Some(c)] { (c) } }
                    }
                }
                ParamType::Int => input #(id) name=(param.name()) type="text" inputmode="numeric" required[required] value=[default.as_deref()];
                ParamType::Float => input #(id) name=(param.name()) type="text" inputmode="decimal" required[required] value=[default.as_deref()];
                _ => input #(id) name=(param.name()) type="text" required[required] value=[default.as_deref()];
            }
            @if let Some(d) = param.description() { small.muted { (d) } }
            span.field-error {}
        }
    }
}

/// `GET /login`: where the token is given, kept by the browser for the
/// actions (sent as a header, never as a cookie).
pub(crate) async fn login_page() -> Response {
    let body = html! {
        h1 { "Sign in" }
        p { "Actions (start, cancel, resume, re-run) need the token " code { "flow serve" } " printed when it started. It stays in this browser until you sign out." }
        form #login novalidate {
            label for="token" { "Token" }
            input #token type="password" autocomplete="off" required;
            button type="submit" { "Sign in" }
            button #logout type="button" { "Sign out" }
        }
        p #login-result role="status" {}
    };
    html_page(StatusCode::OK, frame("Sign in", "login", &[], body))
}
