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
