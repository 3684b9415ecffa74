//! The JSON API under the pages: runs, their steps and logs, the served
//! pipelines, and the actions. Every error is a JSON body
//! `{"error": {"code": .., "message": .., "problems": [..]}}` with a status
//! that says its kind (400 bad input, 401 no token, 403 refused, 404 not
//! found, 409 not now, 422 parameters that do not fit, 500 the store).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow::{FlowId, FlowQuery, storage};
use flow_pipeline::{ParamType, Params, Pipeline};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ApiError;
pub(crate) use super::error::ApiResult;
use super::layout::layout;
use super::state::AppState;
use crate::ops::{self, Cancel, GraphFormat, OpsError, RunStatus, Stream, render_graph};

/// How many last lines of each output a run's JSON shows.
pub(crate) const TAIL: usize = 10;
/// The most a log request returns at once.
const MAX_PAGE: u64 = 1024 * 1024;
/// What a log request returns when it does not say.
const PAGE: u64 = 64 * 1024;

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "there is nothing here: the runs are at /, the API at /api/runs and /api/pipelines",
    )
}

/// `POST /api/session`: answers 200 when the token is right (the guard
/// checked it), so that the page can tell whoever signs in.
pub(crate) async fn session() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// The filters of `GET /api/runs` (and of the runs page).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) state: Option<String>,
    pub(crate) flow: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: Option<usize>,
}

impl ListQuery {
    pub(crate) fn filter(&self) -> ApiResult<FlowQuery> {
        let mut filter = FlowQuery::new()
            .limit(self.limit.unwrap_or(50).clamp(1, 1000))
            .offset(self.offset.unwrap_or(0));
        for word in self.state.iter().flat_map(|s| s.split(',')) {
            let word = word.trim();
            if word.is_empty() {
                continue;
            }
            let state = RunStatus::parse(word).ok_or_else(|| {
                ApiError::bad(
                    "bad_state",
                    format!(
                        "`{word}` is not a state: give pending, running, suspended, succeeded, \
                         reverted or failed"
                    ),
                )
            })?;
            filter = state.select(filter);
        }
        if let Some(flow) = self
            .flow
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            filter = filter.name(flow);
        }
        if let Some(since) = self
            .since
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let t = ops::parse_time(since, storage::now_unix())
                .map_err(|e| ApiError::bad("bad_time", e.to_string()))?;
            filter = filter.created_after(t);
        }
        Ok(filter)
    }
}

/// `GET /api/runs?state=&flow=&since=&limit=&offset=`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<ops::RunSummary>>> {
    let filter = query.filter()?;
    Ok(Json(ops::list_runs(&state.store, filter).await?))
}

/// The run a path names, by its id or the start of it.
pub(crate) async fn resolve(state: &AppState, text: &str) -> ApiResult<FlowId> {
    // A whole id is read once, by what is asked of the run (an unknown one
    // is said so then); the start of one is looked up.
    match text.trim().parse::<FlowId>() {
        Ok(id) => Ok(id),
        Err(_) => Ok(state.store.resolve_run(text).await?),
    }
}

/// `GET /api/runs/{run}`.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Json<ops::RunView>> {
    let id = resolve(&state, &run).await?;
    Ok(Json(ops::show_run(&state.store, id, TAIL).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GraphQuery {
    format: Option<String>,
}

/// `GET /api/runs/{run}/graph?format=json|dot|mermaid`.
pub(crate) async fn graph(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    Query(query): Query<GraphQuery>,
) -> ApiResult<Response> {
    let id = resolve(&state, &run).await?;
    let graph = ops::run_graph(&state.store, id).await?;
    let text = |format| {
        let mut r = render_graph(&graph, format).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    Ok(match query.format.as_deref().unwrap_or("json") {
        "dot" => text(GraphFormat::Dot),
        "mermaid" => text(GraphFormat::Mermaid),
        "json" => {
            let l = layout(graph.nodes().len(), graph.edges());
            let nodes: Vec<Value> = graph
                .nodes()
                .iter()
                .zip(&l.at)
                .map(|(n, (x, y))| json!({"name": n.name, "x": x, "y": y}))
                .collect();
            Json(json!({"width": l.width, "height": l.height, "nodes": nodes,
                        "edges": graph.edges()}))
            .into_response()
        }
        other => {
            return Err(ApiError::bad(
                "bad_format",
                format!("`{other}` is not a graph format: give json, dot or mermaid"),
            ));
        }
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    stream: Option<String>,
    #[serde(default)]
    undo: bool,
    offset: Option<u64>,
    tail: Option<u64>,
    limit: Option<u64>,
    #[serde(default)]
    follow: bool,
}

/// `GET /api/runs/{run}/steps/{step}/log?stream=stdout|stderr&undo=&offset=&tail=&limit=&follow=`:
/// a piece of a step's log (`offset`, or the last `tail` bytes; at most
/// `limit`, 64 KiB unless said, 1 MiB at most), or, with `follow`, the log
/// from `offset` on, streamed as the step writes it, until it ends.
pub(crate) async fn log(
    State(state): State<Arc<AppState>>,
    Path((run, step)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    let stream = match query.stream.as_deref().unwrap_or("stdout") {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        other => {
            return Err(ApiError::bad(
                "bad_stream",
                format!("`{other}` is not an output: give stdout or stderr"),
            ));
        }
    };
    let id = resolve(&state, &run).await?;
    // Only a step of the run names a file: `../../etc/passwd` is no step.
    let logs = ops::step_logs(&state.store, id, &step, query.undo).await?;
    let path = logs.path(stream).clone();
    inside_its_directory(&path)?;
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(_) if query.follow => 0,
        Err(_) => return Err(logs.missing().into()),
    };
    let start = match (query.offset, query.tail) {
        (Some(offset), _) => offset.min(size),
        (None, Some(tail)) => size.saturating_sub(tail),
        (None, None) => 0,
    };
    let headers = |r: &mut Response, end: Option<u64>| {
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert("x-log-size", HeaderValue::from(size));
        h.insert("x-log-start", HeaderValue::from(start));
        if let Some(end) = end {
            h.insert("x-log-end", HeaderValue::from(end));
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    };
    if query.follow {
        let follower = logs.follow().only(stream).starting_at(stream, start);
        let store = state.store.clone();
        let body = futures::stream::unfold(Some((follower, store)), |s| async move {
            let (mut follower, store) = s?;
            match follower.next(&store).await {
                Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk.bytes)), Some((follower, store)))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        });
        let body = futures::StreamExt::take_until(body, state.stopping());
        let mut r = Body::from_stream(body).into_response();
        headers(&mut r, None);
        return Ok(r);
    }
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.take(limit).read_to_end(&mut buf)?;
        Ok(buf)
    };
    let bytes = read().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "log_unreadable",
            format!("cannot read the log of step `{step}`: {e}"),
        )
    })?;
    let end = start + bytes.len() as u64;
    let mut r = bytes.into_response();
    headers(&mut r, Some(end));
    Ok(r)
}

/// Refuses a log file that, through a link, leads out of the directory it
/// is in (the run's directory of logs).
fn inside_its_directory(path: &std::path::Path) -> ApiResult<()> {
    let (Some(dir), Ok(real)) = (path.parent(), std::fs::canonicalize(path)) else {
        return Ok(()); // Not there (yet): nothing is read.
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if real.parent() == Some(dir.as_path()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "outside_logs",
            "this log file leads out of the run's directory of logs: it is not served",
        ))
    }
}

/// A served pipeline, as `GET /api/pipelines` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct PipelineJson {
    name: String,
    description: Option<String>,
    file: String,
    definition: String,
    parameters: Vec<ParamJson>,
    steps: Vec<String>,
}

/// A parameter: its type (`string`, `int`, `float`, `bool`, `one-of` with
/// `choices`), whether it is required, its default and description.
#[derive(Debug, Serialize)]
pub(crate) struct ParamJson {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) choices: Option<Vec<String>>,
    pub(crate) required: bool,
    pub(crate) default: Value,
    pub(crate) description: Option<String>,
}

pub(crate) fn params_json(p: &Pipeline) -> Vec<ParamJson> {
    p.parameters()
        .iter()
        .map(|param| {
            let (ty, choices) = match param.ty() {
                ParamType::String => ("string", None),
                ParamType::Int => ("int", None),
                ParamType::Float => ("float", None),
                ParamType::Bool => ("bool", None),
                ParamType::OneOf(list) => ("one-of", Some(list.clone())),
                _ => ("string", None),
            };
            let default = match param.default() {
                None => Value::Null,
                Some(flow_pipeline::ParamValue::Int(i)) => json!(i),
                Some(flow_pipeline::ParamValue::Float(x)) => json!(x),
                Some(flow_pipeline::ParamValue::Bool(b)) => json!(b),
                Some(v) => json!(v.to_string()),
            };
            ParamJson {
                name: param.name().to_string(),
                ty,
                choices,
                required: param.is_required(),
                default,
                description: param.description().map(str::to_string),
            }
        })
        .collect()
}

fn pipeline_json(p: &Pipeline) -> PipelineJson {
    PipelineJson {
        name: p.name().to_string(),
        description: p.description().map(str::to_string),
        file: p.file().to_string(),
        definition: p.hash().to_string(),
        parameters: params_json(p),
        steps: p.steps().iter().map(|s| s.name().to_string()).collect(),
    }
}

/// `GET /api/pipelines`: the pipelines that may be started here.
pub(crate) async fn pipelines(State(state): State<Arc<AppState>>) -> Json<Vec<PipelineJson>> {
    Json(state.pipelines.iter().map(pipeline_json).collect())
}

pub(crate) fn unknown_pipeline(state: &AppState, name: &str) -> ApiError {
    let known: Vec<&str> = state.pipelines.iter().map(Pipeline::name).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_pipeline",
        if known.is_empty() {
            format!(
                "there is no pipeline `{name}` here: this server serves none (start it with \
                 --pipelines DIR|FILE)"
            )
        } else {
            format!(
                "there is no pipeline `{name}` here: the pipelines are {}",
                known.join(", ")
            )
        },
    )
}

/// `GET /api/pipelines/{name}`.
pub(crate) async fn pipeline(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineJson>> {
    let p = state
        .pipeline(&name)
        .ok_or_else(|| unknown_pipeline(&state, &name))?;
    Ok(Json(pipeline_json(p)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    #[serde(default)]
    params: serde_json::Map<String, Value>,
}

/// The values of a request, for the pipeline's check: JSON numbers and
/// booleans are typed values; strings are read as the parameter's type
/// (what a form sends); `null` is no value.
fn to_params(p: &Pipeline, given: &serde_json::Map<String, Value>) -> Params {
    let mut params = Params::new();
    for (name, value) in given {
        let ty = p
            .parameters()
            .iter()
            .find(|x| x.name() == name)
            .map(|x| x.ty());
        params = match (ty, value) {
            (_, Value::Null) => params,
            (_, Value::String(s)) => params.text(name, s),
            (_, Value::Bool(b)) => params.set(name, *b),
            (Some(ParamType::Float), Value::Number(n)) => {
                params.set(name, n.as_f64().unwrap_or(f64::NAN))
            }
            (_, Value::Number(n)) => match n.as_i64() {
                Some(i) => params.set(name, i),
                None => params.set(name, n.as_f64().unwrap_or(f64::NAN)),
            },
            // A list or an object: the check says it is no value of the type.
            (_, other) => params.set(name, other.to_string()),
        };
    }
    params
}

fn started(id: FlowId, status: StatusCode) -> Response {
    (
        status,
        Json(json!({"run": id, "url": format!("/runs/{id}")})),
    )
        .into_response()
}

/// `POST /api/pipelines/{name}/runs` with `{"params": {..}}`: starts a run.
pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let p = state
        .pipeline(&name)
        .ok_or_else(|| unknown_pipeline(&state, &name))?
        .clone();
    let request: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest {
            params: serde_json::Map::new(),
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad(
                "bad_json",
                format!("the body is not what a start takes ({e}): send {{\"params\": {{\"NAME\": VALUE}}}}"),
            )
        })?
    };
    let params = to_params(&p, &request.params);
    p.check(&params).map_err(OpsError::from)?;
    let active = ops::start_run(&state.store, &p, &params, &state.run_options).await?;
    let id = state.spawn(active).await;
    Ok(started(id, StatusCode::CREATED))
}

/// `POST /api/runs/{run}/cancel`.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let id = resolve(&state, &run).await?;
    let body = match ops::cancel_run(&state.store, id, &state.run_options).await? {
        Cancel::Requested { owner } => json!({"run": id, "cancel": "requested", "owner": owner}),
        Cancel::JobCancelled { job } => json!({"run": id, "cancel": "job_cancelled", "job": job}),
        Cancel::TakenUp(active) => {
            state.spawn(*active).await;
            json!({"run": id, "cancel": "reverting"})
        }
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `POST /api/runs/{run}/resume`.
pub(crate) async fn resume(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let id = resolve(&state, &run).await?;
    let active = ops::resume_run(&state.store, id, &state.run_options).await?;
    let id = state.spawn(active).await;
    Ok(started(id, StatusCode::ACCEPTED))
}

/// `POST /api/runs/{run}/rerun`: a new run of the same definition with the
/// same values.
pub(crate) async fn rerun(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let id = resolve(&state, &run).await?;
    let active = ops::rerun(&state.store, id, &state.run_options).await?;
    let id = state.spawn(active).await;
    Ok(started(id, StatusCode::CREATED))
}
