//! `/xingqiao/create_job`, `get_job_detail`, `list_jobs` (seed 4.1).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::error::ApiError;
use super::guard::{Caller, client_ip};
use super::params::Params;
use super::render;
use super::state::AppState;
use crate::db::jobs::{self, JobFilter, ORDERABLE};
use crate::db::models::JobRow;
use crate::db::{Conn, locks};
use crate::engine::{CreateJob, MAX_JOB_EXTRA_BYTES};
use crate::state::JobStatus;

/// Longest `wait_ms` of get_job_detail.
const MAX_WAIT_MS: i64 = 60_000;

/// Header carrying the request id (also stored as `job_reqid`).
pub const REQID_HEADER: &str = "x-reqid";
const MAX_NAME_LEN: usize = 64;

fn new_reqid() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("XQ_{}", &hex[..16])
}

fn short_string(params: &Params, key: &str) -> Result<Option<String>, ApiError> {
    let value = params.string(key)?;
    if value.as_ref().is_some_and(|v| v.chars().count() > MAX_NAME_LEN) {
        return Err(ApiError::bad_params(format!("{key} is longer than {MAX_NAME_LEN} characters")));
    }
    Ok(value)
}

fn job_extra(params: &Params) -> Result<serde_json::Map<String, Value>, ApiError> {
    let invalid = |why: &str| ApiError::new(StatusCode::BAD_REQUEST, "ERR_JOB_EXTRA_INVALID", why);
    let extra = match params.get("job_extra") {
        None | Some(Value::Null) => return Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => map.clone(),
        // From a query string or a form, job_extra arrives as JSON text.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(invalid("job_extra must be a JSON object (a dict)")),
        },
        Some(_) => return Err(invalid("job_extra must be a JSON object (a dict)")),
    };
    if Value::Object(extra.clone()).to_string().len() > MAX_JOB_EXTRA_BYTES {
        return Err(invalid("job_extra is longer than 10240 bytes"));
    }
    Ok(extra)
}

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/create_job",
    tag = "jobs",
    params(crate::http::openapi::schemas::CreateJobParams),
    request_body(content((Option<crate::http::openapi::schemas::CreateJobParams> = "application/json"), (Option<crate::http::openapi::schemas::CreateJobParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The job was created and started (or waits for its locks); its request id is in `x-reqid`.", body = crate::http::openapi::schemas::Created),
        (status = 400, description = "ERR_PARAMS_INVALID (a missing or bad parameter), ERR_JOB_EXTRA_INVALID, ERR_JOB_TYPE_NOT_EXISTS, ERR_JOB_PARAMS_CHECK (the plugin's params_check refused), ERR_JOB_WORKFLOW_INVALID (its workflow refused)", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_JOB_EXIST: a job of this name exists", body = crate::http::openapi::schemas::ErrorBody),
        (status = 500, description = "ERR_PLUGIN_FAULT: the job type's plugin failed (trap, deadline, memory, too_large or unusable_answer, in the message); ERR_SERVER_EXCEPTION", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn create_job(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let job_timeout = match params.integer("job_timeout")? {
        None => None,
        // Stored as a 32-bit signed column on every backend.
        Some(t) if t > 0 && t <= i64::from(i32::MAX) => Some(u32::try_from(t).unwrap_or(u32::MAX)),
        Some(t) if t > 0 => {
            return Err(ApiError::bad_params(format!("job_timeout must be at most {} seconds", i32::MAX)));
        }
        Some(_) => {
            return Err(ApiError::bad_params("job_timeout must be a positive number of seconds"));
        }
    };
    // With tokens, the token's name; on an open server, the seed's header.
    let operator = match req.extensions().get::<Caller>() {
        Some(caller) => caller.name.clone(),
        None => req
            .headers()
            .get("x_username")
            .or_else(|| req.headers().get("x-username"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(MAX_NAME_LEN)
            .collect(),
    };
    let reqid = new_reqid();
    let request = CreateJob {
        job_namespace: short_string(&params, "job_namespace")?
            .ok_or_else(|| ApiError::bad_params("job_namespace is required"))?,
        job_type: short_string(&params, "job_type")?.ok_or_else(|| ApiError::bad_params("job_type is required"))?,
        job_name: short_string(&params, "job_name")?,
        job_extra: job_extra(&params)?,
        job_timeout,
        operator,
        job_client: client_ip(&req, &app.access.trusted_proxies),
        job_reqid: reqid.clone(),
    };
    let job_id = app.engine.create_job(request).await?;
    Ok(HttpResponse::Ok().insert_header((REQID_HEADER, reqid)).json(json!({"stat": "OK", "job_id": job_id})))
}

/// The job named by `job_id` or `job_name`.
pub async fn find_job(conn: &mut Conn, params: &Params) -> Result<JobRow, ApiError> {
    let id = params.integer("job_id")?;
    let name = params.string("job_name")?;
    if id.is_none() && name.is_none() {
        return Err(ApiError::bad_params("job_id or job_name is required"));
    }
    jobs::find(conn, id, name.as_deref()).await?.ok_or_else(ApiError::job_not_exist)
}

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/get_job_detail",
    tag = "jobs",
    params(crate::http::openapi::schemas::JobRef),
    request_body(content((Option<crate::http::openapi::schemas::JobRef> = "application/json"), (Option<crate::http::openapi::schemas::JobRef> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The job.", body = crate::http::openapi::schemas::JobDetail),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn get_job_detail(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let wait = match params.integer("wait_ms")? {
        None | Some(0) => None,
        Some(ms) if (1..=MAX_WAIT_MS).contains(&ms) => Some(Duration::from_millis(ms.unsigned_abs())),
        Some(_) => return Err(ApiError::bad_params(format!("wait_ms must be 0 to {MAX_WAIT_MS}"))),
    };
    // Listening starts before the job is read: an end in between is heard.
    let listening = wait.map(|_| app.engine.events().subscribe_ends());
    let mut first = app.conn().await?;
    let mut job = find_job(&mut first, &params).await?;
    let mut conn = Some(first);
    if let (Some(wait), Some(listening)) = (wait, listening)
        && !matches!(job.job_status, JobStatus::Finished | JobStatus::Failed)
    {
        // The connection goes back to the pool while we wait.
        conn = None;
        job = match super::events::wait_for_end(listening, job.job_id, wait).await {
            // The row as the job's end committed it: reading it again would
            // give the same, a round trip later.
            Some(ended) if ended.is_valid => JobRow::clone(&ended),
            // Deleted as it ended, or told without its row: read it.
            Some(_) | None => find_job(conn.insert(app.conn().await?), &params).await?,
        };
    }
    let mut data = render::job(&job);
    // A job waiting for its locks says which lock and which job holds it.
    if job.job_status == JobStatus::Waiting {
        let names = crate::db::models::split_list(&job.job_lock);
        let conn = match &mut conn {
            Some(conn) => conn,
            None => conn.insert(app.conn().await?),
        };
        let holder = locks::holder(conn, &names).await?;
        data["lock_wait"] = json!({
            "locks": names,
            "lock": holder.as_ref().map(|(lock, _)| lock.clone()),
            "held_by": holder.map(|(_, job_id)| job_id),
        });
    }
    Ok(HttpResponse::Ok().json(render::ok_data(data)))
}

fn status_conflict(stat: &'static str, job_id: i64, message: &str) -> ApiError {
    let mut err = ApiError::new(StatusCode::CONFLICT, stat, message);
    err.fields.insert("job_id".into(), json!(job_id));
    err
}

/// Seed 4.1.3: resumes a failed job from its failed tasks.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/retry_job",
    tag = "jobs",
    params(crate::http::openapi::schemas::JobRef),
    request_body(content((Option<crate::http::openapi::schemas::JobRef> = "application/json"), (Option<crate::http::openapi::schemas::JobRef> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The failed job runs again from its failed tasks.", body = crate::http::openapi::schemas::JobDone),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_JOB_STATUS_NOT_FAILED", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn retry_job(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let job = find_job(&mut app.conn().await?, &params).await?;
    if !app.engine.retry_job(job.job_id).await? {
        return Err(status_conflict("ERR_JOB_STATUS_NOT_FAILED", job.job_id, "only a failed job can be retried"));
    }
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "job_id": job.job_id})))
}

/// Seed 4.1.2: soft delete; a running job is cancelled first.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/delete_job",
    tag = "jobs",
    params(crate::http::openapi::schemas::JobRef),
    request_body(content((Option<crate::http::openapi::schemas::JobRef> = "application/json"), (Option<crate::http::openapi::schemas::JobRef> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Deleted (kept in the database, hidden); a running job is cancelled first.", body = crate::http::openapi::schemas::Done),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn delete_job(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let job = find_job(&mut app.conn().await?, &params).await?;
    if !app.engine.delete_job(job.job_id).await? {
        return Err(ApiError::job_not_exist());
    }
    Ok(HttpResponse::Ok().json(json!({"stat": "OK"})))
}

/// Stops a running job that should stay listed (ret_stat ERR_JOB_CANCELLED).
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/cancel_job",
    tag = "jobs",
    params(crate::http::openapi::schemas::JobRef),
    request_body(content((Option<crate::http::openapi::schemas::JobRef> = "application/json"), (Option<crate::http::openapi::schemas::JobRef> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Cancelled: the job fails with ERR_JOB_CANCELLED.", body = crate::http::openapi::schemas::JobDone),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_JOB_STATUS_NOT_RUNNING", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn cancel_job(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let job = find_job(&mut app.conn().await?, &params).await?;
    if !app.engine.cancel_job(job.job_id).await? {
        return Err(status_conflict(
            "ERR_JOB_STATUS_NOT_RUNNING",
            job.job_id,
            "only a waiting or started job can be cancelled",
        ));
    }
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "job_id": job.job_id})))
}

/// A `YYYY-MM-DD` parameter as that day's midnight (UTC) plus `days_after`.
fn day_param(params: &Params, key: &str, days_after: i64) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    let Some(text) = params.string(key)? else { return Ok(None) };
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_params(format!("{key} must be a day, YYYY-MM-DD")))?;
    let midnight = day.and_hms_opt(0, 0, 0).and_then(|t| t.checked_add_signed(chrono::Duration::days(days_after)));
    midnight.map(Some).ok_or_else(|| ApiError::bad_params(format!("{key} is out of range")))
}

const DEFAULT_PAGE_SIZE: i64 = 10;
const MAX_PAGE_SIZE: i64 = 1000;
/// Far beyond any real listing, and within every backend's OFFSET.
const MAX_OFFSET: i64 = 1 << 40;

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/list_jobs",
    tag = "jobs",
    params(crate::http::openapi::schemas::ListJobsParams),
    request_body(content((Option<crate::http::openapi::schemas::ListJobsParams> = "application/json"), (Option<crate::http::openapi::schemas::ListJobsParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "One page of jobs.", body = crate::http::openapi::schemas::JobPage),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn list_jobs(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let job_status = match params.string("job_status")? {
        None => None,
        Some(text) => Some(
            JobStatus::parse(&text)
                .ok_or_else(|| ApiError::bad_params("job_status must be waiting, started, finished or failed"))?,
        ),
    };
    let filter = JobFilter {
        job_client: params.string("job_client")?,
        job_reqid: params.string("job_reqid")?,
        job_status,
        job_namespace: params.string("job_namespace")?,
        job_type: params.string("job_type")?,
        job_name: params.string("job_name")?,
        ret_stat: params.string("ret_stat")?,
        operator: params.string("operator")?,
        job_tag: params.job_tag()?,
        created_from: day_param(&params, "created_from", 0)?,
        // The whole last day counts: before the next one's midnight.
        created_before: day_param(&params, "created_to", 1)?,
    };
    let order_by = params.string("orderBy")?.unwrap_or_else(|| "job_id".into());
    if !ORDERABLE.contains(&order_by.as_str()) {
        return Err(ApiError::bad_params(format!("orderBy must be one of {}", ORDERABLE.join(", "))));
    }
    let descending = match params.string("orderDir")?.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::bad_params("orderDir must be asc or desc")),
    };
    // amis sends page/perPage; page_index/page_size are accepted too. Pages start at 1.
    let page = params.integer("page")?.or(params.integer("page_index")?).unwrap_or(1);
    let size = params.integer("perPage")?.or(params.integer("page_size")?).unwrap_or(DEFAULT_PAGE_SIZE);
    let offset = Some(page)
        .filter(|page| *page >= 1 && (1..=MAX_PAGE_SIZE).contains(&size))
        .and_then(|page| (page - 1).checked_mul(size));
    let Some(offset) = offset.filter(|offset| *offset <= MAX_OFFSET) else {
        return Err(ApiError::bad_params(format!(
            "page must be ≥ 1, the page size 1 to {MAX_PAGE_SIZE}, and the page may start at most {MAX_OFFSET} jobs in"
        )));
    };
    let with_counts = params.flag("with_counts")?;
    let mut conn = app.conn().await?;
    let (total, rows) = jobs::list(&mut conn, &filter, &order_by, descending, offset, size).await?;
    let list: Vec<Value> = rows.iter().map(render::job).collect();
    let mut data = json!({"total": total, "list": list});
    if with_counts {
        // Every status, zeros included, in one query: the console's counts.
        let mut counts: serde_json::Map<String, Value> =
            JobStatus::ALL.iter().map(|status| (status.to_string(), json!(0))).collect();
        for (status, count) in jobs::count_by_status(&mut conn, &filter).await? {
            counts.insert(status.to_string(), json!(count));
        }
        data["counts"] = Value::Object(counts);
    }
    Ok(HttpResponse::Ok().json(render::ok_data(data)))
}
