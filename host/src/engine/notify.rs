//! The job_notifier calls: in the background, in the sandbox, never able to
//! change the job.

use chrono::NaiveDateTime;

use crate::db::jobs;
use crate::db::models::JobRow;
use crate::runtime::JobEvent;

use super::Engine;

/// What the caller of a notification knows of the job already: each thing
/// known is a read the notification does not make.
enum Known {
    /// Only its id: its row is read, then its plugin looked up.
    Id,
    /// The plugin version that planned it: a plugin without a notifier then
    /// costs no read of the job row.
    Plugin { job_type: String, sha256: String },
    /// Its row as the change being told left it: no read at all.
    Row(Box<JobRow>),
}

impl Engine {
    /// Tells the job's plugin (job_notifier) about its current state, in the
    /// background: a failing or slow notifier is logged and changes nothing.
    pub(super) fn notify(&self, job_id: i64) {
        self.notify_plugin_of(job_id, Known::Id);
    }

    /// [`Engine::notify`] when the caller knows the job's type and the plugin
    /// version that planned it (`plugin_sha256`).
    pub(super) fn notify_known(&self, job_id: i64, job_type: &str, plugin_sha256: &str) {
        let known = Known::Plugin { job_type: job_type.to_owned(), sha256: plugin_sha256.to_owned() };
        self.notify_plugin_of(job_id, known);
    }

    /// [`Engine::notify`] with the job's row as the caller's transaction just
    /// wrote it (a new job, a job its last task ended).
    pub(super) fn notify_row(&self, row: JobRow) {
        self.notify_plugin_of(row.job_id, Known::Row(Box::new(row)));
    }

    fn notify_plugin_of(&self, job_id: i64, known: Known) {
        let (db, plugins, metrics) = (self.db.clone(), self.plugins.clone(), self.metrics.clone());
        tokio::spawn(async move {
            // The version that planned the job, even if another is active now.
            // Declared absent (its manifest): no instance for a call that does
            // nothing.
            let notifier_of = async |job_type: &str, sha256: &str| {
                plugins.for_job(&db, job_type, sha256).await.filter(|plugin| plugin.implements_notifier())
            };
            let read = async || match find_job(&db, job_id).await {
                Ok(row) => row,
                Err(err) => {
                    tracing::warn!(job_id, error = %err, "job_notifier skipped: job not readable");
                    None
                }
            };
            let (row, plugin) = match known {
                Known::Row(row) => {
                    let Some(plugin) = notifier_of(&row.job_type, &row.plugin_sha256).await else { return };
                    (*row, plugin)
                }
                Known::Plugin { job_type, sha256 } => {
                    let Some(plugin) = notifier_of(&job_type, &sha256).await else { return };
                    let Some(row) = read().await else { return };
                    (row, plugin)
                }
                Known::Id => {
                    let Some(row) = read().await else { return };
                    let Some(plugin) = notifier_of(&row.job_type, &row.plugin_sha256).await else { return };
                    (row, plugin)
                }
            };
            let event = job_event(&row);
            let calling = std::time::Instant::now();
            let called = tokio::task::spawn_blocking(move || plugin.job_notifier(&event)).await;
            metrics.plugin_called(&row.job_type, "job_notifier", calling.elapsed());
            match called {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(job_id, error = %err, "job_notifier failed; the job is unchanged"),
                Err(err) => tracing::warn!(job_id, error = %err, "job_notifier did not run"),
            }
        });
    }
}

async fn find_job(db: &crate::db::Database, job_id: i64) -> Result<Option<JobRow>, crate::db::DbError> {
    jobs::find_any(&mut db.conn().await?, job_id).await
}

/// The seed's `job_obj`, for job_notifier.
fn job_event(row: &JobRow) -> JobEvent {
    let time = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    JobEvent {
        job_id: row.job_id,
        job_client: row.job_client.clone(),
        job_namespace: row.job_namespace.clone(),
        job_reqid: row.job_reqid.clone(),
        job_name: row.job_name.clone(),
        job_status: row.job_status.to_string(),
        job_type: row.job_type.clone(),
        job_tags: row.job_tags.clone(),
        ret_stat: row.ret_stat.clone(),
        ret_data: row.ret_data.clone(),
        job_cost: row.job_cost,
        job_extra: row.job_extra.clone(),
        job_timeout: row.job_timeout.unsigned_abs(),
        job_lock: row.job_lock.clone(),
        exe_id: row.exe_id.unsigned_abs(),
        operator: row.operator.clone(),
        is_valid: row.is_valid,
        c_time: time(&row.c_time),
        s_time: time(&row.s_time),
        e_time: time(&row.e_time),
    }
}
