//! `/ui/`: the operator's console, a single-page app in `host/console/`
//! embedded in the binary (rust-embed; a debug build reads the folder).
//! Every page URL answers the same `index.html`; the app routes in the
//! browser and speaks to the public API with the user's token. Its
//! third-party libraries are vendored in `host/console/vendor/`
//! (`VERSIONS.md`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Path, ServiceConfig};
use actix_web::{HttpResponse, Responder};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

/// Scripts and styles from this server only; `wasm-unsafe-eval` lets the
/// Graphviz module compile its WebAssembly, inline styles are ECharts'.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        web::scope("/ui")
            .wrap(actix_web::middleware::Compress::default())
            .route("", web::get().to(to_jobs))
            .route("/", web::get().to(to_jobs))
            .route("/assets/{file:.*}", web::get().to(asset))
            .route("/{page:.*}", web::get().to(page)),
    );
}

async fn to_jobs() -> impl Responder {
    HttpResponse::Found().insert_header((header::LOCATION, "/ui/jobs")).finish()
}

fn file(name: &str) -> Option<HttpResponse> {
    let file = Assets::get(name)?;
    let mut response = HttpResponse::Ok();
    response.content_type(file.metadata.mimetype());
    // Vendored libraries change only with the binary.
    if name.starts_with("vendor/") {
        response.insert_header((header::CACHE_CONTROL, "public, max-age=86400"));
    } else {
        response.insert_header((header::CACHE_CONTROL, "no-cache"));
    }
    let mut response = response.body(file.data.into_owned());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    Some(response)
}

async fn asset(path: Path<String>) -> HttpResponse {
    file(&path.into_inner()).unwrap_or_else(|| {
        HttpResponse::NotFound().json(serde_json::json!({"stat": "ERR_NOT_FOUND", "message": "no such file"}))
    })
}

/// Every page is the app's shell; it draws the page the URL names.
async fn page() -> HttpResponse {
    file("index.html").unwrap_or_else(|| HttpResponse::InternalServerError().finish())
}
