//! The errors of the API: a JSON body
//! `{"error": {"code": .., "message": .., "problems": [..]}}` with a status
//! that says its kind.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flow_pipeline::ProblemKind;
use serde_json::{Value, json};

use crate::ops::OpsError;

/// An error, as the API answers it.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    problems: Vec<Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The status, for a page that shows the error its own way.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            body["problems"] = Value::Array(self.problems);
        }
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        let message = e.to_string();
        match e {
            OpsError::BadRunId { .. } | OpsError::AmbiguousRun { .. } => {
                ApiError::bad("bad_run_id", message)
            }
            OpsError::UnknownRun { text, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_run",
                format!("there is no run `{text}` in this store: GET /api/runs lists the runs"),
            ),
            OpsError::UnknownStep { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_step", message)
            }
            OpsError::NoLog { .. } => ApiError::new(StatusCode::NOT_FOUND, "no_log", message),
            OpsError::Problems { problems } => {
                let list: Vec<Value> = problems
                    .iter()
                    .flat_map(|p| p.iter())
                    .map(|p| {
                        let (code, param) = param_problem(p.kind());
                        json!({"code": code, "param": param, "message": p.message()})
                    })
                    .collect();
                let summary: Vec<String> = problems
                    .iter()
                    .flat_map(|p| p.iter())
                    .map(|p| p.message())
                    .collect();
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "bad_parameters",
                    message: summary.join("; "),
                    problems: list,
                }
            }
            OpsError::Ended { run, state, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "ended",
                format!(
                    "run {run} has already ended ({state}): re-run starts a new run with the \
                     same values"
                ),
            ),
            OpsError::Held { .. } => ApiError::new(StatusCode::CONFLICT, "held", message),
            OpsError::NotAPipeline { .. } => {
                ApiError::new(StatusCode::CONFLICT, "not_a_pipeline", message)
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message),
        }
    }
}

/// The code and the parameter of a problem with a parameter's value.
fn param_problem(kind: &ProblemKind) -> (&'static str, Option<&str>) {
    match kind {
        ProblemKind::MissingParameter { param } => ("missing_parameter", Some(param)),
        ProblemKind::ParameterType { param, .. } => ("parameter_type", Some(param)),
        ProblemKind::UnknownParameter { param, .. } => ("unknown_parameter", Some(param)),
        ProblemKind::NulInValue { param } => ("nul_in_value", Some(param)),
        ProblemKind::NotUtf8 { param } => ("not_utf8", Some(param)),
        _ => ("problem", None),
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
