//! `ApiError`: every failure of a route, with its `stat` code and the HTTP
//! status that agrees with it. A 5xx logs its cause and answers a generic body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use crate::db::DbError;
use crate::engine::EngineError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub stat: &'static str,
    pub message: Option<String>,
    /// Extra top-level fields of the body (`"data": {}`, `"job_id"`).
    pub fields: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, stat: &'static str, message: impl Into<String>) -> Self {
        Self { status, stat, message: Some(message.into()), fields: Map::new() }
    }

    /// `400 ERR_PARAMS_INVALID` with what is wrong.
    pub fn bad_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ERR_PARAMS_INVALID", message)
    }

    /// The seed's `{"data": {}, "stat": "ERR_JOB_NOT_EXIST"}`, 404.
    pub fn job_not_exist() -> Self {
        let mut fields = Map::new();
        fields.insert("data".into(), json!({}));
        Self { status: StatusCode::NOT_FOUND, stat: "ERR_JOB_NOT_EXIST", message: None, fields }
    }

    pub fn task_not_exist() -> Self {
        let mut fields = Map::new();
        fields.insert("data".into(), json!({}));
        Self { status: StatusCode::NOT_FOUND, stat: "ERR_TASK_NOT_EXIST", message: None, fields }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.stat)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = self.fields.clone();
        body.insert("stat".into(), Value::String(self.stat.into()));
        if let Some(message) = &self.message {
            body.insert("message".into(), Value::String(message.clone()));
        }
        HttpResponse::build(self.status).json(Value::Object(body))
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ERR_STORE_UNAVAILABLE",
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "database error");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    stat: "ERR_SERVER_EXCEPTION",
                    message: None,
                    fields: Map::new(),
                }
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::JobTypeNotExists(job_type) => {
                Self::new(StatusCode::BAD_REQUEST, "ERR_JOB_TYPE_NOT_EXISTS", format!("no job_type {job_type:?}"))
            }
            EngineError::ParamsCheck(message) => Self::new(StatusCode::BAD_REQUEST, "ERR_JOB_PARAMS_CHECK", message),
            EngineError::Workflow(message) => Self::new(StatusCode::BAD_REQUEST, "ERR_JOB_WORKFLOW_INVALID", message),
            EngineError::JobExists(name) => {
                Self::new(StatusCode::CONFLICT, "ERR_JOB_EXIST", format!("a job named {name:?} already exists"))
            }
            EngineError::Busy => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_SERVER_BUSY", "too many jobs being created; retry")
            }
            EngineError::Db(err) => err.into(),
            EngineError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    stat: "ERR_SERVER_EXCEPTION",
                    message: None,
                    fields: Map::new(),
                }
            }
        }
    }
}
