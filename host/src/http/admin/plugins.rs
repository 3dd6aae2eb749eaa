//! The `/admin/plugins` handlers. Changes go to the database first, then this
//! instance's registry is refreshed at once and the others are told (they
//! also see the change at their next timed refresh).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path, Payload};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::body::read_component;
use crate::db::models::PluginRow;
use crate::db::plugins::{self as stored, Selector, Stored};
use crate::engine::now;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::guard::Caller;
use crate::http::params::Params;
use crate::http::render::time;
use crate::plugins::{LoadError, PluginEntry, Source, sha256_hex};
use crate::runtime::{PluginError, is_sha256};

const MAX_UPLOADER_LEN: usize = 64;

/// Why an upload was refused, as `400` with a stat per kind of problem.
fn refusal(err: LoadError) -> ApiError {
    let stat = match &err {
        LoadError::Plugin(PluginError::NotWasm) => "ERR_PLUGIN_NOT_WASM",
        LoadError::Plugin(PluginError::CoreModule) => "ERR_PLUGIN_NOT_COMPONENT",
        LoadError::Plugin(PluginError::Compile(_)) => "ERR_PLUGIN_COMPILE",
        LoadError::Plugin(PluginError::Imports(_)) => "ERR_PLUGIN_IMPORTS",
        LoadError::Plugin(PluginError::Exports(_)) => "ERR_PLUGIN_EXPORTS",
        LoadError::Plugin(PluginError::Sandbox(_)) => "ERR_PLUGIN_SANDBOX",
        LoadError::Plugin(PluginError::Busy) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_SERVER_BUSY", err.to_string());
        }
        LoadError::Plugin(_) => "ERR_PLUGIN_METADATA",
        LoadError::TimedOut(_) => "ERR_PLUGIN_COMPILE_TIMEOUT",
        LoadError::Internal(cause) => {
            tracing::error!(%cause, "plugin compile failed inside the host");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_SERVER_EXCEPTION", "internal error");
        }
    };
    ApiError::new(StatusCode::BAD_REQUEST, stat, err.to_string())
}

fn builtin_refusal(job_type: &str, source: Source) -> ApiError {
    let origin = match source {
        Source::File => "loaded from --plugins-dir",
        Source::Builtin | Source::Uploaded => "built into the server",
    };
    ApiError::new(
        StatusCode::CONFLICT,
        "ERR_PLUGIN_BUILTIN",
        format!(
            "job_type {job_type:?} is {origin}; an upload may not replace it. Choose another job_type in \
             metadata(), or run the servers with --no-demo-plugins"
        ),
    )
}

fn not_found(job_type: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ERR_PLUGIN_NOT_FOUND", format!("no plugin has job_type {job_type:?}"))
}

fn ok(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"stat": "OK", "data": data}))
}

fn version_json(row: &PluginRow) -> Value {
    json!({
        "version": row.plugin_version,
        "sha256": row.plugin_sha256,
        "size": row.plugin_size,
        "description": row.description,
        "uploader": row.uploader,
        "uploaded_at": time(&row.c_time),
        "active": row.is_active,
    })
}

/// A fixed job type's one version, in the shape of `version_json`.
fn fixed_version_json(entry: &PluginEntry) -> Value {
    let metadata = entry.plugin.metadata();
    json!({
        "version": metadata.version,
        "sha256": entry.sha256,
        "size": entry.plugin.size(),
        "description": metadata.description,
        "uploader": null,
        "uploaded_at": null,
        "active": true,
    })
}

fn fixed_json(job_type: &str, entry: &PluginEntry) -> Value {
    let mut data = fixed_version_json(entry);
    if let Some(fields) = data.as_object_mut() {
        fields.remove("active");
        fields.insert("job_type".into(), json!(job_type));
        fields.insert("source".into(), json!(entry.source));
        fields.insert("status".into(), json!("active"));
        fields.insert("versions".into(), json!(1));
    }
    data
}

/// One uploaded job type's summary from its versions (sorted by upload time).
fn uploaded_json(job_type: &str, versions: &[PluginRow]) -> Value {
    let active = versions.iter().find(|row| row.is_active);
    let shown = active.or(versions.last());
    json!({
        "job_type": job_type,
        "source": Source::Uploaded,
        "status": if active.is_some() { "active" } else { "disabled" },
        "version": active.map(|row| row.plugin_version.clone()),
        "sha256": active.map(|row| row.plugin_sha256.clone()),
        "size": active.map(|row| row.plugin_size),
        "description": shown.map(|row| row.description.clone()),
        "uploader": active.map(|row| row.uploader.clone()),
        "uploaded_at": active.map(|row| time(&row.c_time)),
        "versions": versions.len(),
    })
}

/// Activate and disable act on uploaded job types only.
fn refuse_fixed(app: &AppState, job_type: &str) -> Result<(), ApiError> {
    match app.plugins.fixed_source(job_type) {
        Some(source) => Err(builtin_refusal(job_type, source)),
        None => Ok(()),
    }
}

/// `POST /admin/plugins`: validate, store, activate.
#[utoipa::path(
    post,
    path = "/admin/plugins",
    tag = "admin",
    params(("operator" = Option<String>, Query, description = "Who uploads (default: the token's name)")),
    request_body(content((Vec<u8> = "application/wasm"), ("multipart/form-data")), description = "The component: the raw bytes, or a multipart form with one file"),
    responses(
        (status = 201, description = "Stored and made the active version of its job type.", body = crate::http::openapi::schemas::AdminAnswer),
        (status = 200, description = "These bytes were stored already; now active.", body = crate::http::openapi::schemas::AdminAnswer),
        (status = 400, description = "ERR_PLUGIN_NOT_WASM, ERR_PLUGIN_NOT_COMPONENT, ERR_PLUGIN_COMPILE, ERR_PLUGIN_COMPILE_TIMEOUT, ERR_PLUGIN_IMPORTS, ERR_PLUGIN_EXPORTS, ERR_PLUGIN_METADATA, ERR_PLUGIN_SANDBOX, ERR_PLUGIN_TOO_LARGE, ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_PLUGIN_BUILTIN (the job type is built in or from --plugins-dir), ERR_PLUGIN_VERSION_EXISTS (another build under a version already uploaded)", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security(("bearer_token" = [])),
)]
pub async fn upload(req: HttpRequest, payload: Payload, app: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &Bytes::new())?;
    // The guard let only an admin token through; `?operator=` may name a person behind it.
    let caller = req.extensions().get::<Caller>().map(|caller| caller.name.clone());
    let uploader = params.string("operator")?.or(caller).unwrap_or_else(|| String::from("admin"));
    if uploader.chars().count() > MAX_UPLOADER_LEN {
        return Err(ApiError::bad_params(format!("operator is longer than {MAX_UPLOADER_LEN} characters")));
    }
    let bytes = read_component(&req, payload, app.admin.max_plugin_bytes).await?;
    let sha256 = sha256_hex(&bytes);
    let bytes = Arc::new(bytes);
    let plugin = app.plugins.load_bytes(&sha256, bytes.clone()).await.map_err(refusal)?;
    let metadata = plugin.metadata().clone();
    if let Some(source) = app.plugins.fixed_source(&metadata.job_type) {
        return Err(builtin_refusal(&metadata.job_type, source));
    }
    if metadata.version.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_PLUGIN_METADATA",
            "metadata() gives no version; uploads are versioned (the SDK's Metadata::new uses the crate version)",
        ));
    }
    let now = now();
    let row = PluginRow {
        plugin_sha256: sha256.clone(),
        job_type: metadata.job_type.clone(),
        plugin_version: metadata.version.clone(),
        plugin_size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        description: metadata.description.clone(),
        job_extra_schema: metadata.job_extra_schema.as_ref().map(Value::to_string),
        uploader,
        is_active: true,
        c_time: now,
        u_time: now,
    };
    let (status, row) = match stored::store(&mut app.conn().await?, row, &bytes, now).await? {
        Stored::Created(row) => (StatusCode::CREATED, row),
        Stored::Existing(row) => (StatusCode::OK, row),
        Stored::VersionTaken { sha256: other } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ERR_PLUGIN_VERSION_EXISTS",
                format!(
                    "{} version {} was uploaded before with other bytes (sha256 {other}); bump the version in \
                     metadata() (the crate version) and upload again",
                    metadata.job_type, metadata.version
                ),
            ));
        }
    };
    publish(&app, &row.job_type).await;
    tracing::info!(
        job_type = row.job_type,
        version = row.plugin_version,
        sha256,
        uploader = row.uploader,
        "plugin uploaded"
    );
    let mut data = version_json(&row);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("job_type".into(), Value::String(row.job_type.clone()));
        fields.insert("created".into(), Value::Bool(status == StatusCode::CREATED));
        fields.insert("job_extra_schema".into(), metadata.job_extra_schema.unwrap_or(Value::Null));
    }
    Ok(HttpResponse::build(status).json(json!({"stat": "OK", "data": data})))
}

/// This instance uses the change at once; the others are told.
async fn publish(app: &AppState, job_type: &str) {
    if let Err(err) = app.plugins.refresh(&app.db).await {
        tracing::warn!(error = %err, "plugin refresh after an admin change failed; the refresher retries");
    }
    app.admin.changes.announce(job_type).await;
}

/// `GET /admin/plugins`: every job type, fixed and uploaded.
#[utoipa::path(
    get,
    path = "/admin/plugins",
    tag = "admin",
    responses(
        (status = 200, description = "Every job type: built in, from --plugins-dir or uploaded, with its active version.", body = crate::http::openapi::schemas::AdminAnswer),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security(("bearer_token" = [])),
)]
pub async fn list(app: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let registry = &app.plugins;
    let mut data: Vec<Value> = registry.fixed_entries().map(|(job_type, entry)| fixed_json(job_type, entry)).collect();
    let rows = stored::list(&mut app.conn().await?, None).await?;
    for versions in rows.chunk_by(|a, b| a.job_type == b.job_type) {
        let job_type = &versions[0].job_type;
        if registry.fixed_source(job_type).is_none() {
            data.push(uploaded_json(job_type, versions));
        }
    }
    data.sort_by(|a, b| a["job_type"].as_str().cmp(&b["job_type"].as_str()));
    Ok(ok(Value::Array(data)))
}

/// `GET /admin/plugins/{job_type}`: its versions, metadata and job_extra schema.
#[utoipa::path(
    get,
    path = "/admin/plugins/{job_type}",
    tag = "admin",
    params(("job_type" = String, Path, description = "The job type")),
    responses(
        (status = 200, description = "The job type and all its versions.", body = crate::http::openapi::schemas::AdminAnswer),
        (status = 404, description = "ERR_PLUGIN_NOT_FOUND", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security(("bearer_token" = [])),
)]
pub async fn detail(path: Path<String>, app: Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(ok(describe(&app, &path.into_inner()).await?))
}

async fn describe(app: &AppState, job_type: &str) -> Result<Value, ApiError> {
    let registry = &app.plugins;
    if registry.fixed_source(job_type).is_some()
        && let Some(entry) = registry.entry(job_type)
    {
        let mut data = fixed_json(job_type, &entry);
        if let Some(fields) = data.as_object_mut() {
            let schema = entry.plugin.metadata().job_extra_schema.clone().unwrap_or(Value::Null);
            fields.insert("job_extra_schema".into(), schema);
            fields.insert("versions".into(), json!([fixed_version_json(&entry)]));
        }
        return Ok(data);
    }
    let rows = stored::list(&mut app.conn().await?, Some(job_type)).await?;
    if rows.is_empty() {
        return Err(not_found(job_type));
    }
    let mut data = uploaded_json(job_type, &rows);
    let shown = rows.iter().find(|row| row.is_active).or(rows.last());
    let schema = shown
        .and_then(|row| row.job_extra_schema.as_deref())
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or(Value::Null);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("job_extra_schema".into(), schema);
        fields.insert("versions".into(), Value::Array(rows.iter().map(version_json).collect()));
    }
    Ok(data)
}

/// `POST /admin/plugins/{job_type}/activate` with `version` or `sha256`:
/// roll forward or back; also re-enables a disabled job type.
#[utoipa::path(
    post,
    path = "/admin/plugins/{job_type}/activate",
    tag = "admin",
    params(("job_type" = String, Path, description = "The job type")),
    request_body(content((Option<crate::http::openapi::schemas::ActivateBody> = "application/json"), (Option<crate::http::openapi::schemas::ActivateBody> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "That version is now active.", body = crate::http::openapi::schemas::AdminAnswer),
        (status = 400, description = "ERR_PARAMS_INVALID (neither or both of version and sha256; a bad sha256)", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_PLUGIN_NOT_FOUND, ERR_PLUGIN_VERSION_NOT_FOUND", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_PLUGIN_BUILTIN", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security(("bearer_token" = [])),
)]
pub async fn activate(
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
    app: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let job_type = path.into_inner();
    refuse_fixed(&app, &job_type)?;
    let params = Params::from_request(&req, &body)?;
    let selector = match (params.string("version")?, params.string("sha256")?) {
        (Some(version), None) => Selector::Version(version),
        (None, Some(sha256)) if is_sha256(&sha256) => Selector::Sha256(sha256),
        (None, Some(_)) => return Err(ApiError::bad_params("sha256 must be 64 lowercase hex digits")),
        _ => return Err(ApiError::bad_params("give exactly one of version or sha256")),
    };
    let Some(row) = stored::activate(&mut app.conn().await?, &job_type, &selector, now()).await? else {
        if stored::list(&mut app.conn().await?, Some(&job_type)).await?.is_empty() {
            return Err(not_found(&job_type));
        }
        let wanted = match &selector {
            Selector::Version(version) => format!("version {version}"),
            Selector::Sha256(sha256) => format!("sha256 {sha256}"),
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_PLUGIN_VERSION_NOT_FOUND",
            format!("{job_type} has no {wanted}; GET /admin/plugins/{job_type} lists its versions"),
        ));
    };
    publish(&app, &job_type).await;
    tracing::info!(job_type, version = row.plugin_version, sha256 = row.plugin_sha256, "plugin version activated");
    Ok(ok(describe(&app, &job_type).await?))
}

/// `DELETE /admin/plugins/{job_type}`: no version is active any more; new
/// create_job calls answer ERR_JOB_TYPE_NOT_EXISTS, running jobs finish, and
/// every version stays stored (activate brings one back).
#[utoipa::path(
    delete,
    path = "/admin/plugins/{job_type}",
    tag = "admin",
    params(("job_type" = String, Path, description = "The job type")),
    responses(
        (status = 200, description = "Disabled: new jobs are refused; running ones finish.", body = crate::http::openapi::schemas::AdminAnswer),
        (status = 404, description = "ERR_PLUGIN_NOT_FOUND", body = crate::http::openapi::schemas::ErrorBody),
        (status = 409, description = "ERR_PLUGIN_BUILTIN", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security(("bearer_token" = [])),
)]
pub async fn disable(path: Path<String>, app: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let job_type = path.into_inner();
    refuse_fixed(&app, &job_type)?;
    if stored::disable(&mut app.conn().await?, &job_type, now()).await? == 0 {
        return Err(not_found(&job_type));
    }
    publish(&app, &job_type).await;
    tracing::info!(job_type, "plugin disabled");
    Ok(ok(describe(&app, &job_type).await?))
}
