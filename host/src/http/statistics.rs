//! `/xingqiao/statistics_success_rate`, `statistics_jobtag_ratio` and
//! `statistics_retstat_ratio` (seed 4.4): ECharts options inside
//! `{"stat": "OK", "data": …}`.

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::Params;
use super::render::ok_data;
use super::state::AppState;
use crate::db::stats::{self, StatsFilter};
use crate::engine::now;
use crate::stats::{DEFAULT_DAYS, MAX_DAYS, jobtag_ratio, retstat_ratio, success_rate};

/// `job_type` (required) and `job_tag` (`key=value`, optional).
fn filter(params: &Params) -> Result<StatsFilter, ApiError> {
    let job_type = params.required_string("job_type")?;
    Ok(StatsFilter { job_type, job_tag: params.job_tag()?, since: None })
}

/// A comma-separated list parameter, without empty items.
fn list(params: &Params, key: &str) -> Result<Vec<String>, ApiError> {
    Ok(params
        .string(key)?
        .map(|text| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default())
}

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/statistics_success_rate",
    tag = "statistics",
    params(crate::http::openapi::schemas::SuccessRateParams),
    request_body(content((Option<crate::http::openapi::schemas::SuccessRateParams> = "application/json"), (Option<crate::http::openapi::schemas::SuccessRateParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Success rate per day.", body = crate::http::openapi::schemas::Chart),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn success_rate_report(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let mut filter = filter(&params)?;
    let days = match params.integer("days")? {
        None => DEFAULT_DAYS,
        Some(days) => u32::try_from(days)
            .ok()
            .filter(|days| (1..=MAX_DAYS).contains(days))
            .ok_or_else(|| ApiError::bad_params(format!("days must be 1 to {MAX_DAYS}")))?,
    };
    let exclude = list(&params, "exclude_retstat")?;
    let today = now().date();
    filter.since = (today - chrono::Duration::days(i64::from(days) - 1)).and_hms_opt(0, 0, 0);
    let counts = stats::ended_by_day(&mut app.conn().await?, &filter).await?;
    Ok(HttpResponse::Ok().json(ok_data(success_rate(&counts, today, days, &exclude))))
}

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/statistics_jobtag_ratio",
    tag = "statistics",
    params(crate::http::openapi::schemas::JobtagRatioParams),
    request_body(content((Option<crate::http::openapi::schemas::JobtagRatioParams> = "application/json"), (Option<crate::http::openapi::schemas::JobtagRatioParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Jobs per tag value.", body = crate::http::openapi::schemas::Chart),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn jobtag_ratio_report(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let filter = filter(&params)?;
    let name = params.required_string("jobtag_name")?;
    let values = list(&params, "jobtag_values")?;
    if values.is_empty() {
        return Err(ApiError::bad_params("jobtag_values is required: a comma list such as bj,nj,gz"));
    }
    let counts = stats::by_tags(&mut app.conn().await?, &filter).await?;
    Ok(HttpResponse::Ok().json(ok_data(jobtag_ratio(&counts, &name, &values))))
}

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/statistics_retstat_ratio",
    tag = "statistics",
    params(crate::http::openapi::schemas::RetstatRatioParams),
    request_body(content((Option<crate::http::openapi::schemas::RetstatRatioParams> = "application/json"), (Option<crate::http::openapi::schemas::RetstatRatioParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Ended jobs per ret_stat.", body = crate::http::openapi::schemas::Chart),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn retstat_ratio_report(
    app: Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let counts = stats::by_ret_stat(&mut app.conn().await?, &filter(&params)?).await?;
    Ok(HttpResponse::Ok().json(ok_data(retstat_ratio(&counts))))
}
