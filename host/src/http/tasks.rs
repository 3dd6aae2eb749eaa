//! `/xingqiao/list_tasks` and `get_task` (seed 4.2).

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::error::ApiError;
use super::jobs::find_job;
use super::params::Params;
use super::render;
use crate::db::tasks;
use crate::engine::Engine;
use crate::engine::state::TaskStatus;

pub async fn list_tasks(engine: Data<Engine>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let status = params.string("task_status")?;
    if let Some(status) = &status
        && TaskStatus::parse(status).is_none()
    {
        return Err(ApiError::bad_params("task_status must be waiting, pending, started, finished or failed"));
    }
    let job = find_job(&engine, &params).await?;
    let rows = tasks::list(engine.db(), job.job_id, status.as_deref()).await?;
    let list: Vec<Value> = rows.iter().map(render::task).collect();
    Ok(HttpResponse::Ok().json(render::ok_data(json!({"list": list}))))
}

pub async fn get_task(engine: Data<Engine>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let task_id = params.integer("task_id")?.ok_or_else(|| ApiError::bad_params("task_id is required"))?;
    let row = tasks::get(engine.db(), task_id).await?.ok_or_else(ApiError::task_not_exist)?;
    Ok(HttpResponse::Ok().json(render::ok_data(render::task(&row))))
}
