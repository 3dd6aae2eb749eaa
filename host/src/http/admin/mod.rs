//! The admin API, `/admin/plugins`: upload, list, inspect, activate and
//! disable plugin versions. Every route needs an `admin` token (checked by
//! `super::guard`); without one configured the admin API is off (403
//! `ERR_ADMIN_DISABLED`).

mod body;
pub(super) mod plugins;

use actix_web::web::{self, ServiceConfig};

use crate::plugins::PluginChanges;

/// What the admin routes need besides the engine. Who may call them is
/// decided by the guard (`super::guard`): an `admin` token.
#[derive(Debug)]
pub struct AdminSettings {
    pub max_plugin_bytes: usize,
    pub changes: PluginChanges,
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
