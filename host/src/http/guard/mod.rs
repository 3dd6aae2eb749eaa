//! The guard in front of every route: who may call, and from where.
//!
//! One middleware ([`guard`]) runs, in order:
//! 0. the size of the request head (431 with a JSON `stat`; actix-http
//!    answers a bodiless 431 itself beyond 96 headers or 128 KiB),
//! 1. the `Host` check while no token is configured (DNS rebinding: a foreign
//!    name that resolves to 127.0.0.1 must not reach an open server),
//! 2. the browser check, always on: a request from a web page of a foreign
//!    origin is refused before any route runs (`origin.rs`); preflights of
//!    the allowed `--cors-origins` are answered here,
//! 3. the token check of `/xingqiao/*` and `/admin/*` (`auth.rs`), which puts
//!    the [`Caller`] in the request for the routes that record who asked.
//!
//! `/healthz`, `/openapi.json` and the demo task handlers need no token.

mod auth;
mod client;
mod origin;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, ResponseError};

pub use auth::Caller;
pub use client::client_ip;

use super::state::AppState;
use crate::config::{AccessConfig, ApiToken};

/// The access settings, ready for matching.
#[derive(Debug, Clone)]
pub struct Access {
    tokens: Vec<ApiToken>,
    cors_origins: Vec<String>,
    /// Host names (no port) accepted while no token is configured.
    local_hosts: Vec<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Access {
    /// `bind_host`: the host part of the address the server listens on.
    pub fn new(config: &AccessConfig, bind_host: &str) -> Self {
        let mut local_hosts: Vec<String> =
            ["localhost", "127.0.0.1", "[::1]", "::1"].iter().map(|host| (*host).to_owned()).collect();
        local_hosts.push(bind_host.to_ascii_lowercase());
        local_hosts.extend(config.allowed_hosts.iter().cloned());
        Self {
            tokens: config.tokens.clone(),
            cors_origins: config.cors_origins.clone(),
            local_hosts,
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// Whether API routes need a token.
    pub fn tokens_required(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// The middleware; see the module documentation.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(app) = req.app_data::<Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let access = &app.access;
    if let Err(refusal) = check_head_size(req.request()) {
        return Ok(req.into_response(refusal.error_response()));
    }
    if !access.tokens_required()
        && let Err(refusal) = origin::check_host(req.request(), &access.local_hosts)
    {
        return Ok(req.into_response(refusal.error_response()));
    }
    let cross_origin = match origin::check_origin(req.request(), &access.cors_origins) {
        Ok(cross_origin) => cross_origin,
        Err(refusal) => return Ok(req.into_response(refusal.error_response())),
    };
    if let Some(allowed) = &cross_origin
        && origin::is_preflight(req.request())
    {
        return Ok(req.into_response(origin::preflight_answer(allowed)));
    }
    let mut response = match auth::authorize(req.request(), access) {
        Ok(caller) => {
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            next.call(req).await?.map_into_boxed_body()
        }
        Err(refusal) => req.into_response(refusal.error_response()),
    };
    if let Some(allowed) = &cross_origin {
        origin::add_cors_headers(response.headers_mut(), allowed);
    }
    Ok(response)
}

/// Below actix-http's own limits, so that a client sees the stat.
const MAX_HEADERS: usize = 64;
const MAX_HEAD_BYTES: usize = 32 << 10;

fn check_head_size(req: &actix_web::HttpRequest) -> Result<(), crate::http::error::ApiError> {
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>()
        + req.uri().path().len()
        + req.uri().query().map_or(0, str::len);
    if headers.len() > MAX_HEADERS || bytes > MAX_HEAD_BYTES {
        return Err(crate::http::error::ApiError::new(
            actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "ERR_HEADERS_TOO_LARGE",
            format!("the request head may have at most {MAX_HEADERS} headers and {MAX_HEAD_BYTES} bytes"),
        ));
    }
    Ok(())
}
