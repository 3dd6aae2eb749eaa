//! Browser protection: the `Host` check (DNS rebinding), the `Origin` check
//! (cross-site requests, the seed's state-changing GET routes included) and
//! CORS for the origins given by `--cors-origins`.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::http::error::ApiError;

/// Methods and request headers an allowed cross-origin caller may use.
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, x-reqid, x_username, x-username";
const EXPOSE_HEADERS: &str = "x-reqid";

/// The host name of the `Host` header (or the URI's authority), lower case,
/// without its port; IPv6 literals keep their brackets.
fn request_host(req: &HttpRequest) -> Option<String> {
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|authority| authority.as_str().to_owned()))?;
    let authority = authority.trim().to_ascii_lowercase();
    let host = if authority.starts_with('[') {
        authority.split_once(']').map_or(authority.clone(), |(literal, _)| format!("{literal}]"))
    } else {
        authority.split(':').next().unwrap_or_default().to_owned()
    };
    Some(host)
}

/// While no token is configured, only local names (and `--allowed-hosts`)
/// are served. A request without any host (HTTP/1.0) is let through: a
/// browser always sends one.
pub fn check_host(req: &HttpRequest, local_hosts: &[String]) -> Result<(), ApiError> {
    match request_host(req) {
        Some(host) if !local_hosts.contains(&host) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ERR_FORBIDDEN_HOST",
            format!(
                "this server does not answer to the host name {host:?}; add it to --allowed-hosts \
                 (XINGQIAO_ALLOWED_HOSTS) or configure API tokens"
            ),
        )),
        _ => Ok(()),
    }
}

/// `Ok(None)` for a same-origin or non-browser request, `Ok(Some(origin))`
/// for an allowed cross-origin one, `Err` for a foreign web page.
pub fn check_origin(req: &HttpRequest, cors_origins: &[String]) -> Result<Option<String>, ApiError> {
    let refuse = |what: String| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ERR_FORBIDDEN_ORIGIN",
            format!("{what}; allow an origin with --cors-origins (XINGQIAO_CORS_ORIGINS)"),
        ))
    };
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        // A cross-site <img> or link sends no Origin on GET, but a current
        // browser says where the request comes from.
        let site = req.headers().get("sec-fetch-site").and_then(|value| value.to_str().ok()).unwrap_or("none");
        return match site {
            "cross-site" | "same-site" => refuse(format!("requests from other sites ({site}) are refused")),
            _ => Ok(None),
        };
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/').to_ascii_lowercase();
    if cors_origins.contains(&origin) {
        return Ok(Some(origin));
    }
    let own = req.headers().get(header::HOST).and_then(|value| value.to_str().ok()).map(str::to_ascii_lowercase);
    let same_origin = own.is_some_and(|host| {
        origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|rest| rest == host)
    });
    if same_origin { Ok(None) } else { refuse(format!("the web origin {origin:?} may not call this server")) }
}

pub fn is_preflight(req: &HttpRequest) -> bool {
    req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight of an allowed origin.
pub fn preflight_answer(origin: &str) -> HttpResponse {
    let mut response = HttpResponse::NoContent().finish();
    let headers = response.headers_mut();
    add_cors_headers(headers, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// Lets the allowed origin read the answer (errors included).
pub fn add_cors_headers(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn local() -> Vec<String> {
        ["localhost", "127.0.0.1", "[::1]"].iter().map(|h| (*h).to_owned()).collect()
    }

    #[test]
    fn hosts_are_matched_without_their_port() {
        let ok = TestRequest::default().insert_header(("host", "LOCALHOST:8585")).to_http_request();
        assert!(check_host(&ok, &local()).is_ok());
        let v6 = TestRequest::default().insert_header(("host", "[::1]:8585")).to_http_request();
        assert!(check_host(&v6, &local()).is_ok());
        let foreign = TestRequest::default().insert_header(("host", "attacker.example:8585")).to_http_request();
        assert_eq!(check_host(&foreign, &local()).unwrap_err().stat, "ERR_FORBIDDEN_HOST");
    }

    #[test]
    fn origins_are_own_listed_or_refused() {
        let listed = vec![String::from("https://console.example")];
        let request = |origin: &str| {
            TestRequest::default()
                .insert_header(("host", "127.0.0.1:8585"))
                .insert_header(("origin", origin))
                .to_http_request()
        };
        assert_eq!(check_origin(&request("http://127.0.0.1:8585"), &listed).unwrap(), None);
        assert_eq!(
            check_origin(&request("https://console.example/"), &listed).unwrap().as_deref(),
            Some("https://console.example")
        );
        for foreign in ["http://evil.example", "null", "http://127.0.0.1:9999"] {
            assert_eq!(check_origin(&request(foreign), &listed).unwrap_err().stat, "ERR_FORBIDDEN_ORIGIN", "{foreign}");
        }
        let img = TestRequest::default().insert_header(("sec-fetch-site", "cross-site")).to_http_request();
        assert!(check_origin(&img, &listed).is_err());
        let curl = TestRequest::default().to_http_request();
        assert_eq!(check_origin(&curl, &listed).unwrap(), None);
    }
}
