//! The admin API, `/admin/plugins`: upload, list, inspect, activate and
//! disable plugin versions. Every route needs `Authorization: Bearer <token>`
//! with the server's `--admin-token`; without a configured token the admin API
//! is off (403 `ERR_ADMIN_DISABLED`).

mod body;
mod plugins;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};

use super::error::ApiError;
use crate::plugins::PluginChanges;

/// What the admin routes need besides the engine.
#[derive(Debug)]
pub struct AdminSettings {
    pub token: Option<String>,
    pub max_plugin_bytes: usize,
    pub changes: PluginChanges,
}

impl AdminSettings {
    /// 403 when the admin API is off, 401 without the right bearer token.
    fn authorize(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ERR_ADMIN_DISABLED",
                "the admin API is off: start the server with --admin-token (or XINGQIAO_ADMIN_TOKEN)",
            ));
        };
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(given) if same_secret(given, expected) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "ERR_ADMIN_UNAUTHORIZED", "wrong admin token")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "ERR_ADMIN_UNAUTHORIZED",
                "send the admin token as `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// Compares two secrets in time that depends on neither: both are hashed to
/// 32 bytes first (hiding the length), then every byte is compared.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(given.as_bytes()), sha2::Sha256::digest(expected.as_bytes()));
    let difference = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        web::resource("/admin/plugins").route(web::get().to(plugins::list)).route(web::post().to(plugins::upload)),
    );
    cfg.service(
        web::resource("/admin/plugins/{job_type}")
            .route(web::get().to(plugins::detail))
            .route(web::delete().to(plugins::disable)),
    );
    cfg.route("/admin/plugins/{job_type}/activate", web::post().to(plugins::activate));
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeF", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef0", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }
}
