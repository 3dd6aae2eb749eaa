//! What every route handler may use: the explicit application state, built
//! once by `server::run` and shared by all HTTP workers.
//!
//! Reads go to the database directly (`db`); everything that changes a job
//! goes through the engine (`engine`), which owns the state machine and the
//! dispatch. The handlers never reach the queue or the worker runner.

use std::sync::Arc;

use super::admin::AdminSettings;
use super::guard::Access;
use crate::db::{Conn, Database};
use crate::engine::Engine;
use crate::graph::Renderer;
use crate::plugins::Registry;

#[derive(Debug)]
pub struct AppState {
    pub db: Database,
    pub engine: Arc<Engine>,
    pub plugins: Arc<Registry>,
    pub renderer: Renderer,
    pub admin: AdminSettings,
    pub access: Access,
    /// Turns true when the server starts to stop: `/healthz` answers 503
    /// from then on, so a load balancer sends new requests elsewhere, and
    /// event streams end.
    pub draining: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// A pooled connection for the read queries of one request.
    pub async fn conn(&self) -> Result<Conn, super::error::ApiError> {
        Ok(self.db.conn().await?)
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }
}
