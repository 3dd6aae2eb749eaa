//! The HTTP API: the seed's `/xingqiao/*` routes (one file per resource), the
//! demo task handlers and `/healthz`. Every `/xingqiao/*` route answers GET
//! (query string) and POST (JSON or form body) alike.

pub(crate) mod admin;
mod console;
mod demo;
pub mod error;
mod events;
mod graph;
pub mod guard;
mod jobs;
pub mod openapi;
pub mod params;
pub mod render;
mod state;
mod statistics;
mod tasks;

use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{HttpResponse, Route};
use serde_json::json;

pub use admin::AdminSettings;
pub use demo::FlakyCounts;
pub use jobs::REQID_HEADER;
pub use state::AppState;

fn get_and_post(path: &str, cfg: &mut ServiceConfig, route: impl Fn() -> Route) {
    cfg.service(
        web::resource(path)
            .route(route().method(actix_web::http::Method::GET))
            .route(route().method(actix_web::http::Method::POST)),
    );
}

/// The routes; the demo task handlers only with the demo plugins that call them.
pub fn configure(cfg: &mut ServiceConfig, demo_handlers: bool) {
    get_and_post("/xingqiao/create_job", cfg, || web::route().to(jobs::create_job));
    get_and_post("/xingqiao/get_job_detail", cfg, || web::route().to(jobs::get_job_detail));
    get_and_post("/xingqiao/list_jobs", cfg, || web::route().to(jobs::list_jobs));
    get_and_post("/xingqiao/retry_job", cfg, || web::route().to(jobs::retry_job));
    get_and_post("/xingqiao/delete_job", cfg, || web::route().to(jobs::delete_job));
    get_and_post("/xingqiao/cancel_job", cfg, || web::route().to(jobs::cancel_job));
    cfg.route("/xingqiao/events", web::get().to(events::events));
    get_and_post("/xingqiao/list_tasks", cfg, || web::route().to(tasks::list_tasks));
    get_and_post("/xingqiao/get_task", cfg, || web::route().to(tasks::get_task));
    get_and_post("/xingqiao/get_graph", cfg, || web::route().to(graph::get_graph));
    get_and_post("/xingqiao/statistics_success_rate", cfg, || web::route().to(statistics::success_rate_report));
    get_and_post("/xingqiao/statistics_jobtag_ratio", cfg, || web::route().to(statistics::jobtag_ratio_report));
    get_and_post("/xingqiao/statistics_retstat_ratio", cfg, || web::route().to(statistics::retstat_ratio_report));
    if demo_handlers {
        configure_demo_handlers(cfg);
    }
    admin::configure(cfg);
    cfg.route("/healthz", web::get().to(healthz));
    cfg.route("/openapi.json", web::get().to(openapi::openapi_json));
    cfg.route("/metrics", web::get().to(metrics));
    get_and_post("/xingqiao/whoami", cfg, || web::route().to(whoami));
    get_and_post("/xingqiao/list_job_types", cfg, || web::route().to(list_job_types));
    console::configure(cfg);
}

/// The demo task handlers, `/demo_api/*` (also served by `plugin run --execute`).
/// They need a `Data<FlakyCounts>`.
pub fn configure_demo_handlers(cfg: &mut ServiceConfig) {
    get_and_post("/demo_api/ping", cfg, || web::route().to(demo::ping));
    get_and_post("/demo_api/hello", cfg, || web::route().to(demo::hello));
    get_and_post("/demo_api/collect", cfg, || web::route().to(demo::collect));
    get_and_post("/demo_api/sleep", cfg, || web::route().to(demo::sleep));
    get_and_post("/demo_api/echo", cfg, || web::route().to(demo::echo));
    get_and_post("/demo_api/flaky", cfg, || web::route().to(demo::flaky));
}

/// Who the caller is, as the console shows it: the token's name and role,
/// or, on a server without tokens, everyone is `admin`.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/whoami",
    tag = "jobs",
    responses(
        (status = 200, description = "The caller.", body = openapi::schemas::WhoAmI),
        openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
async fn whoami(app: Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::HttpMessage;
    let caller = req.extensions().get::<guard::Caller>().cloned();
    let (name, role) = caller.map_or((String::new(), String::from("admin")), |c| (c.name, c.role.to_string()));
    HttpResponse::Ok()
        .json(json!({"stat": "OK", "data": {"tokens": app.access.tokens_required(), "name": name, "role": role}}))
}

/// The job types create_job takes now, with each one's job_extra JSON Schema.
#[utoipa::path(
    method(get, post),
    path = "/xingqiao/list_job_types",
    tag = "jobs",
    responses(
        (status = 200, description = "Every job type, sorted.", body = openapi::schemas::JobTypes),
        openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
async fn list_job_types(app: Data<AppState>) -> HttpResponse {
    let list: Vec<serde_json::Value> = app
        .plugins
        .job_types()
        .into_iter()
        .filter_map(|job_type| {
            let entry = app.plugins.entry(&job_type)?;
            let metadata = entry.plugin.metadata();
            Some(json!({
                "job_type": job_type,
                "version": metadata.version,
                "description": metadata.description,
                "job_extra_schema": metadata.job_extra_schema,
            }))
        })
        .collect();
    HttpResponse::Ok().json(json!({"stat": "OK", "data": list}))
}

/// The Prometheus scrape: the counters, then the queue and the pool as they are now.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The metrics in the Prometheus text format 0.0.4.", content_type = "text/plain", body = String),
        openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
async fn metrics(app: Data<AppState>) -> Result<HttpResponse, error::ApiError> {
    let (pending, oldest) = crate::db::tasks::pending_summary(&mut app.conn().await?).await?;
    let age = oldest.and_then(|since| (crate::engine::now() - since).to_std().ok());
    let text = app.engine.metrics().render(pending, age, app.db.pool_use());
    Ok(HttpResponse::Ok().content_type(crate::metrics::CONTENT_TYPE).body(text))
}

/// 200 while the server takes work; 503 while it drains or its database is away.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "Serving.", body = openapi::schemas::Done),
        (status = 403, description = "ERR_FORBIDDEN_ORIGIN, ERR_FORBIDDEN_HOST", body = openapi::schemas::ErrorBody),
        (status = 431, description = "ERR_HEADERS_TOO_LARGE", body = openapi::schemas::ErrorBody),
        (status = 503, description = "ERR_DRAINING (shutting down), ERR_STORE_UNAVAILABLE", body = openapi::schemas::ErrorBody),
    ),
)]
async fn healthz(app: Data<AppState>) -> Result<HttpResponse, error::ApiError> {
    if app.is_draining() {
        return Err(error::ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "ERR_DRAINING",
            "the server is shutting down",
        ));
    }
    app.db.ping().await?;
    Ok(HttpResponse::Ok().json(json!({"stat": "OK"})))
}
