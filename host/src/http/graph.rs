//! `/xingqiao/get_graph` (seed 4.3): the job's DAG coloured by task state, as
//! SVG (default), PNG or DOT.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::jobs::find_job;
use super::params::Params;
use super::state::AppState;
use crate::db::tasks;
use crate::graph::{GraphFormat, RenderError, job_dot};

#[utoipa::path(
    method(get, post),
    path = "/xingqiao/get_graph",
    tag = "tasks",
    params(crate::http::openapi::schemas::GraphParams),
    request_body(content((Option<crate::http::openapi::schemas::GraphParams> = "application/json"), (Option<crate::http::openapi::schemas::GraphParams> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The DAG coloured by task state.", content((String = "image/svg+xml"), (Vec<u8> = "image/png"), (String = "text/vnd.graphviz"))),
        (status = 400, description = "ERR_PARAMS_INVALID", body = crate::http::openapi::schemas::ErrorBody),
        (status = 404, description = "ERR_JOB_NOT_EXIST: no such job (or it was deleted)", body = crate::http::openapi::schemas::ErrorBody),
        (status = 500, description = "ERR_SERVER_EXCEPTION: the graph could not be rendered", body = crate::http::openapi::schemas::ErrorBody),
        (status = 503, description = "ERR_GRAPHVIZ_NOT_INSTALLED (PNG without Graphviz), ERR_GRAPH_TOO_LARGE (too many tasks to draw without Graphviz), ERR_GRAPH_TIMEOUT (past --graph-timeout-ms, waiting included), ERR_STORE_UNAVAILABLE", body = crate::http::openapi::schemas::ErrorBody),
        crate::http::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn get_graph(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let format = match params.string("format")? {
        None => GraphFormat::Svg,
        Some(text) => {
            GraphFormat::parse(&text).ok_or_else(|| ApiError::bad_params("format must be svg, png or dot"))?
        }
    };
    let mut conn = app.conn().await?;
    let job = find_job(&mut conn, &params).await?;
    let rows = tasks::list(&mut conn, job.job_id, None).await?;
    drop(conn);
    let nodes = rows.len();
    // Building the text of a 10,000-task job takes milliseconds: off the async threads all the same.
    let dot = tokio::task::spawn_blocking(move || job_dot(&job, &rows)).await.map_err(|err| {
        tracing::error!(%err, "building the DOT text failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_SERVER_EXCEPTION", "the graph could not be built")
    })?;
    let image = app.renderer.render(dot, format, nodes).await.map_err(|err| match err {
        RenderError::NoGraphviz => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_GRAPHVIZ_NOT_INSTALLED", err.to_string())
        }
        RenderError::TimedOut(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_GRAPH_TIMEOUT", err.to_string())
        }
        RenderError::TooLarge(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_GRAPH_TOO_LARGE", err.to_string())
        }
        RenderError::Failed(why) => {
            tracing::error!(%why, "graph rendering failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_SERVER_EXCEPTION", "the graph could not be rendered")
        }
    })?;
    Ok(HttpResponse::Ok().content_type(format.content_type()).body(image))
}
