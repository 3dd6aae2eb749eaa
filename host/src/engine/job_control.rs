//! Job control on the engine: starting jobs that wait for locks, the
//! timer-driven sweep (timeouts, leases, re-dispatch), cancel, delete,
//! retry_job, recovery at start and shutdown hand-back.

use std::future::Future;
use std::time::Duration;

use crate::db::{DbError, jobs, locks, tasks};
use crate::state::{AttemptOutcome, stat};

use super::{Engine, WAKE_BATCH, now};

/// Tries of a job transition that keeps meeting deadlocks.
const CONFLICT_TRIES: u32 = 5;

impl Engine {
    /// Runs a job transition (or a lease renewal) again when the database
    /// resolved a deadlock by aborting it. Ending a job takes its rows in a
    /// finish's order (see `db::jobs::end`), but a task that started after
    /// the end locked its running parts can still finish into it the other
    /// way round; on MariaDB and PostgreSQL the loser of that race is told to
    /// try again.
    async fn again_on_conflict<T, F, Fut>(&self, mut transition: F) -> Result<T, DbError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let mut tries = 1;
        loop {
            match transition().await {
                Err(err) if err.is_conflict() && tries < CONFLICT_TRIES => {
                    tracing::debug!(error = %err, tries, "a transition met a deadlock; trying again");
                    tokio::time::sleep(Duration::from_millis(5 << tries)).await;
                    tries += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Starts a waiting job if it can take its locks now.
    pub(super) async fn try_start(&self, job_id: i64) -> Result<bool, DbError> {
        match locks::try_start(&mut self.db.conn().await?, job_id, now()).await? {
            Some(ready) => {
                tracing::info!(job_id, "job started: locks taken");
                self.notify(job_id);
                match self.publish_job(job_id).await? {
                    Some(job) => self.dispatch(&ready, &job),
                    None => self.redispatch(&ready),
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Gives waiting jobs, oldest first, their chance at the locks just freed.
    pub async fn wake_waiting(&self) -> Result<(), DbError> {
        for job_id in locks::waiting_jobs(&mut self.db.conn().await?, WAKE_BATCH).await? {
            self.try_start(job_id).await?;
        }
        Ok(())
    }

    /// The timer-driven part, idempotent and safe on every instance: running
    /// jobs past their deadline fail with ERR_JOB_EXE_TIMEOUT, and waiting
    /// jobs get another look at the locks.
    pub async fn sweep(&self) -> Result<(), DbError> {
        if !self.recovered.load(std::sync::atomic::Ordering::Acquire) {
            self.recover().await?;
        }
        match self.queue.reclaim(self.config.visibility_timeout).await {
            Ok(0) => {}
            Ok(reclaimed) => tracing::warn!(reclaimed, "took over messages a dead worker left"),
            Err(err) => tracing::warn!(error = %err, "reclaiming messages failed"),
        }
        // A worker that died (kill -9) stopped renewing its leases.
        let orphans = tasks::expired_leases(&mut self.db.conn().await?, now()).await?;
        if !orphans.is_empty() {
            tracing::warn!(tasks = orphans.len(), "tasks of a dead worker taken over");
            self.redispatch(&orphans);
        }
        // A message lost with the queue leaves its task pending: dispatch it
        // again. Not while the queue still holds messages: under a backlog
        // longer than the visibility timeout, the waiting tasks are not lost,
        // and dispatching them twice would only lengthen the backlog.
        match self.queue.undelivered().await.unwrap_or(0) {
            0 => self.redispatch_stale_pending().await?,
            backlog => tracing::debug!(backlog, "the queue still holds messages: no pending task counts as lost yet"),
        }
        for job_id in jobs::expired(&mut self.db.conn().await?, now()).await? {
            let ended = self.again_on_conflict(|| async {
                jobs::end(&mut self.db.conn().await?, job_id, stat::JOB_TIMEOUT, now()).await
            });
            if ended.await? {
                tracing::warn!(job_id, "job timed out");
                self.notify(job_id);
                self.publish_job(job_id).await?;
            }
        }
        self.wake_waiting().await
    }

    async fn redispatch_stale_pending(&self) -> Result<(), DbError> {
        let stale = tasks::stale_pending(
            &mut self.db.conn().await?,
            now() - chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default(),
            now(),
        )
        .await?;
        if !stale.is_empty() {
            tracing::warn!(tasks = stale.len(), "pending tasks with no message in sight dispatched again");
            self.redispatch(&stale);
        }
        Ok(())
    }

    /// Stops a running or waiting job (it stays listed, failed with
    /// ERR_JOB_CANCELLED); `false` if it was not running.
    pub async fn cancel_job(&self, job_id: i64) -> Result<bool, DbError> {
        let ended = self
            .again_on_conflict(|| async {
                jobs::end(&mut self.db.conn().await?, job_id, stat::JOB_CANCELLED, now()).await
            })
            .await?;
        if ended {
            tracing::warn!(job_id, "job cancelled");
            self.notify(job_id);
            self.publish_job(job_id).await?;
            self.wake_waiting().await?;
        }
        Ok(ended)
    }

    /// Soft delete (`is_valid = 0`), cancelling the job first if it runs.
    pub async fn delete_job(&self, job_id: i64) -> Result<bool, DbError> {
        self.cancel_job(job_id).await?;
        let deleted = jobs::invalidate(&mut self.db.conn().await?, job_id, now()).await?;
        if deleted {
            tracing::info!(job_id, "job deleted");
        }
        Ok(deleted)
    }

    /// Resumes a failed job from its failed tasks; `false` if it is not failed.
    pub async fn retry_job(&self, job_id: i64) -> Result<bool, DbError> {
        let reset =
            self.again_on_conflict(|| async { jobs::reset_failed(&mut self.db.conn().await?, job_id, now()).await });
        if !reset.await? {
            return Ok(false);
        }
        tracing::info!(job_id, "job retried from its failed tasks");
        self.publish_job(job_id).await?;
        self.try_start(job_id).await?;
        Ok(true)
    }

    /// Dispatches again what a previous run left pending or started. Done
    /// once per process; until it succeeds, every sweep tries it again.
    pub async fn recover(&self) -> Result<usize, DbError> {
        let running = jobs::started_ids(&mut self.db.conn().await?).await?;
        // With a shared queue, other instances may be running the started
        // tasks: only the pending ones are dispatched again.
        let take_over_started = !self.queue.is_shared();
        let pending = tasks::recover_pending(&mut self.db.conn().await?, &running, take_over_started, now()).await?;
        self.redispatch(&pending);
        self.recovered.store(true, std::sync::atomic::Ordering::Release);
        self.wake_waiting().await?;
        Ok(pending.len())
    }

    /// Extends the leases of the tasks this process runs (it is alive).
    ///
    /// The renewal takes only rows no one holds, yet on MariaDB it was seen
    /// to meet this process's own group commit in a deadlock all the same
    /// (InnoDB showed it holding entries of the status index that the commit,
    /// moving those tasks, needed, while it waited for a row the commit had
    /// finished). Losing one is harmless, and it is tried again.
    pub async fn renew_leases(&self, task_ids: &[i64]) -> Result<(), DbError> {
        let until = now() + chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default();
        self.again_on_conflict(|| async { tasks::renew_leases(&mut self.db.conn().await?, task_ids, until).await })
            .await
    }

    /// Tasks this process was running when told to stop go back to pending.
    pub async fn hand_back(&self, task_ids: &[i64]) -> Result<usize, DbError> {
        tasks::hand_back(&mut self.db.conn().await?, task_ids, AttemptOutcome::HandedBack, now()).await
    }
}
