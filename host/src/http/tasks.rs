//! `/xingqiao/list_tasks` and `get_task` (seed 4.2).

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::error::ApiError;
use super::jobs::find_job;
use super::params::Params;
use super::render;
use super::state::AppState;
use crate::db::models::AttemptRow;
use crate::db::{attempts, tasks};
use crate::state::TaskStatus;

/// The tasks of a job; `with_attempts=1` adds each task's execution attempts.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/list_tasks",
    tag = "tasks",
    params(crate::http::openapi::schemas::ListTasksParams),
    request_body(content((Option<crate::http::openapi::schemas::ListTasksParams> = "application/json"), (Option<crate::http::openapi::schemas::ListTasksParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The job's tasks.", body = crate::http::openapi::schemas::TaskList),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn list_tasks(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let status = match params.string("task_status")? {
        None => None,
        Some(text) => Some(TaskStatus::parse(&text).ok_or_else(|| {
            ApiError::bad_params("task_status must be waiting, pending, started, finished or failed")
        })?),
    };
    let with_attempts = params.flag("with_attempts")?;
    let mut conn = app.conn().await?;
    let job = find_job(&mut conn, &params).await?;
    let rows = tasks::list(&mut conn, job.job_id, status).await?;
    let list: Vec<Value> = if with_attempts {
        let attempts = attempts::of_job(&mut conn, job.job_id).await?;
        rows.iter().map(|row| render::task_with_attempts(row, attempts_of(&attempts, row.task_id))).collect()
    } else {
        rows.iter().map(render::task).collect()
    };
    Ok(HttpResponse::Ok().json(render::ok_data(json!({"list": list}))))
}

/// One task, with its execution attempts.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/get_task",
    tag = "tasks",
    params(crate::http::openapi::schemas::GetTaskParams),
    request_body(content((Option<crate::http::openapi::schemas::GetTaskParams> = "application/json"), (Option<crate::http::openapi::schemas::GetTaskParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The task, with its attempts.", body = crate::http::openapi::schemas::TaskDetail),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_TASK_NOT_EXIST: no such task (or its job was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn get_task(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let task_id = params.integer("task_id")?.ok_or_else(|| ApiError::bad_params("task_id is required"))?;
    let mut conn = app.conn().await?;
    let row = tasks::get_of_valid_job(&mut conn, task_id).await?.ok_or_else(ApiError::task_not_exist)?;
    let attempts = attempts::of_tasks(&mut conn, &[task_id]).await?;
    Ok(HttpResponse::Ok().json(render::ok_data(render::task_with_attempts(&row, attempts.iter()))))
}

fn attempts_of(attempts: &[AttemptRow], task_id: i64) -> impl Iterator<Item = &AttemptRow> {
    attempts.iter().filter(move |attempt| attempt.task_id == task_id)
}
