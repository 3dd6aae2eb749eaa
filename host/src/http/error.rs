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
            EngineError::ExtraInvalid(invalid) => {
                let mut refusal = Self::new(StatusCode::BAD_REQUEST, "ERR_JOB_EXTRA_INVALID", invalid.to_string());
                refusal.fields.insert("data".into(), json!({"errors": invalid.0}));
                refusal
            }
            EngineError::Workflow(message) => Self::new(StatusCode::BAD_REQUEST, "ERR_JOB_WORKFLOW_INVALID", message),
            // The same stat for every kind: the caller did nothing wrong and
            // can only report it; the kind is in the message.
            EngineError::PluginFault { kind, message } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PLUGIN_FAULT",
                format!("the job type's plugin failed ({kind}): {}", without_paths(&message)),
            ),
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

/// Replaces each absolute file path in a plugin's message (a panic location
/// in a dependency, say) by its file name: no host folder reaches a client.
pub fn without_paths(message: &str) -> String {
    message
        .split(' ')
        .map(|word| {
            let start = word.find('/').filter(|&at| at == 0 || word[..at].ends_with(['(', '"', '\'', '`']));
            match start {
                Some(at) if word[at + 1..].contains('/') => {
                    let file = word.rsplit('/').next().unwrap_or_default();
                    format!("{}…/{file}", &word[..at])
                }
                _ => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `stat` of an answer actix made itself (no route, wrong method, a body
/// over the limit, an undecodable body).
fn stat_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "ERR_NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "ERR_METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "ERR_PAYLOAD_TOO_LARGE",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "ERR_HEADERS_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "ERR_UNSUPPORTED_MEDIA_TYPE",
        status if status.is_server_error() => "ERR_SERVER_EXCEPTION",
        _ => "ERR_PARAMS_INVALID",
    }
}

/// Gives every error answer that is not already JSON a JSON body with its
/// `stat`. actix's own error texts (which may quote Rust debug output) are
/// replaced by the status's reason, never passed on.
pub fn json_error_bodies<B: actix_web::body::MessageBody + 'static>() -> actix_web::middleware::ErrorHandlers<B> {
    use actix_web::dev::ServiceResponse;
    use actix_web::http::header;
    use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let status = response.status();
        let (request, old) = response.into_parts();
        let message = match status {
            StatusCode::NOT_FOUND => String::from("no such route"),
            StatusCode::METHOD_NOT_ALLOWED => format!("{} is not allowed on {}", request.method(), request.path()),
            _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
        };
        let mut answer = HttpResponse::build(status).json(json!({"stat": stat_of_status(status), "message": message}));
        for (name, value) in old.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                answer.headers_mut().insert(name.clone(), value.clone());
            }
        }
        Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, answer).map_into_right_body()))
    })
}

#[cfg(test)]
mod tests {
    use super::without_paths;

    #[test]
    fn absolute_paths_lose_their_folders() {
        let message = "workflow crashed (trap): unreachable; stderr: panicked at /root/.cargo/registry/src/x-1.0/src/de.rs:12:5: boom (see \"/work/main/plugins/a.rs\")";
        let cleaned = without_paths(message);
        assert!(!cleaned.contains("/root") && !cleaned.contains("/work"), "{cleaned}");
        assert!(cleaned.contains("…/de.rs:12:5:") && cleaned.contains("boom"), "{cleaned}");
        assert_eq!(without_paths("params-check refused: a/b is fine"), "params-check refused: a/b is fine");
    }
}
