//! Bearer tokens and roles for `/xingqiao/*` and `/admin/*`.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header;

use super::Access;
use crate::config::{ApiToken, Role};
use crate::http::error::ApiError;

/// Who made a request with a token: stored as the `operator` of the jobs it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The seed's routes that change a job; every other `/xingqiao/*` route reads.
const WRITE_ROUTES: &[&str] =
    &["/xingqiao/create_job", "/xingqiao/retry_job", "/xingqiao/cancel_job", "/xingqiao/delete_job"];

/// The role a path needs, or `None` for a route open to all.
fn required_role(path: &str) -> Option<Role> {
    if path == "/admin" || path.starts_with("/admin/") {
        Some(Role::Admin)
    } else if WRITE_ROUTES.contains(&path.trim_end_matches('/')) {
        Some(Role::Write)
    } else if path.starts_with("/xingqiao/") || path == "/metrics" {
        Some(Role::Read)
    } else {
        None
    }
}

/// `Ok(Some(caller))` with a valid token, `Ok(None)` where none is needed.
pub fn authorize(req: &HttpRequest, access: &Access) -> Result<Option<Caller>, ApiError> {
    let Some(needed) = required_role(req.path()) else { return Ok(None) };
    if access.tokens.is_empty() {
        if needed == Role::Admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ERR_ADMIN_DISABLED",
                "the admin API is off: configure an admin token (XINGQIAO_API_TOKENS name:admin:token, or \
                 XINGQIAO_ADMIN_TOKEN)",
            ));
        }
        return Ok(None);
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(given) = given else {
        return Err(unauthorized("send a token as `Authorization: Bearer <token>`"));
    };
    let Some(token) = find_token(&access.tokens, given) else {
        return Err(unauthorized("unknown token"));
    };
    if token.role < needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ERR_FORBIDDEN",
            format!("the token {:?} has the role {}; this route needs {needed}", token.name, token.role),
        ));
    }
    Ok(Some(Caller { name: token.name.clone(), role: token.role }))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "ERR_UNAUTHORIZED", message)
}

/// Compares the given secret with every token, each in time that depends on
/// neither secret (both are hashed to 32 bytes first, hiding the length), so
/// the answer time does not tell which token, or how much of one, matched.
fn find_token<'a>(tokens: &'a [ApiToken], given: &str) -> Option<&'a ApiToken> {
    let mut found = None;
    for token in tokens {
        if same_secret(given, &token.token) {
            found = Some(token);
        }
    }
    found
}

fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(given.as_bytes()), sha2::Sha256::digest(expected.as_bytes()));
    let difference = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeF", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef0", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }

    #[test]
    fn routes_need_the_role_of_what_they_do() {
        assert_eq!(required_role("/xingqiao/list_jobs"), Some(Role::Read));
        assert_eq!(required_role("/xingqiao/delete_job"), Some(Role::Write));
        assert_eq!(required_role("/xingqiao/create_job/"), Some(Role::Write));
        assert_eq!(required_role("/admin/plugins/hello/activate"), Some(Role::Admin));
        assert_eq!(required_role("/healthz"), None);
        assert_eq!(required_role("/metrics"), Some(Role::Read));
        assert_eq!(required_role("/demo_api/ping"), None);
    }
}
