//! Reading an uploaded component: a raw body (`application/wasm`, any
//! binary type, or curl's default form type) or the first file of a `multipart/form-data` form — never
//! more than the size cap, counted while the bytes arrive.

use actix_multipart::Multipart;
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{BytesMut, Payload};
use futures_util::{Stream, StreamExt};

use crate::http::error::ApiError;

fn too_large(cap: usize) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "ERR_PLUGIN_TOO_LARGE",
        format!("the component is larger than the server's cap of {cap} bytes (--max-plugin-bytes)"),
    )
}

fn unreadable(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_params(format!("cannot read the upload: {why}"))
}

/// The component's bytes, refused as soon as they pass `cap`.
pub async fn read_component(req: &HttpRequest, payload: Payload, cap: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(cap).unwrap_or(u64::MAX)) {
        return Err(too_large(cap));
    }
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "multipart/form-data" => first_file(Multipart::new(req.headers(), payload), cap).await,
        // curl's `--data-binary @file` without `-H Content-Type` says
        // x-www-form-urlencoded but sends the file as it is: taken as raw.
        "application/json" | "text/plain" => Err(ApiError::bad_params(format!(
            "send the component itself as the body (Content-Type: application/wasm, e.g. \
             `curl --data-binary @plugin.wasm`) or as a multipart file (`curl -F plugin=@plugin.wasm`), not {essence}"
        ))),
        _ => capped(payload.map(|chunk| chunk.map_err(unreadable)), cap).await,
    }
}

async fn first_file(mut form: Multipart, cap: usize) -> Result<Vec<u8>, ApiError> {
    while let Some(field) = form.next().await {
        let field = field.map_err(unreadable)?;
        let is_file = field.content_disposition().is_some_and(|disposition| disposition.get_filename().is_some());
        if is_file || field.name() == Some("plugin") {
            return capped(field.map(|chunk| chunk.map_err(unreadable)), cap).await;
        }
    }
    Err(ApiError::bad_params("the form has no file: send the component as `plugin=@plugin.wasm`"))
}

async fn capped(
    mut chunks: impl Stream<Item = Result<actix_web::web::Bytes, ApiError>> + Unpin,
    cap: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = BytesMut::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if bytes.len().saturating_add(chunk.len()) > cap {
            return Err(too_large(cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.to_vec())
}
