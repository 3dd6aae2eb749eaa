//! Job control: locks (all or none, in creation order), the end of a job
//! from outside its tasks (timeout, cancel), and resuming a failed job.
//!
//! Locks are rows of `workflow_lock` keyed by the lock name: the primary key
//! is what makes two jobs unable to hold one lock, whatever the number of
//! server instances. A job waiting for its locks has `job_status = 'waiting'`
//! and all its tasks `waiting`; starting it takes every lock in one
//! transaction or none.
//!
//! Every transaction here begins with a write to the job row: on SQLite a
//! transaction that reads first and writes later cannot wait for the write
//! lock (it fails with "database is locked"); beginning with the write makes
//! it queue behind the current writer instead.

use chrono::{Duration as ChronoDuration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{JobRow, split_list};
use super::schema::{workflow_job as job, workflow_lock as lock, workflow_task as task};
use super::{Database, DbError};
use crate::with_conn;

pub const WAITING: &str = "waiting";
pub const STARTED: &str = "started";

/// Where a running job times out.
pub fn deadline_of(start: NaiveDateTime, timeout_secs: i32) -> NaiveDateTime {
    start + ChronoDuration::seconds(i64::from(timeout_secs.max(1)))
}

/// Starts a waiting job if it can take all its locks now and no earlier
/// waiting job wants one of them. Returns the tasks it made pending, or
/// `None` when the job keeps waiting (or is not waiting at all).
pub async fn try_start(db: &Database, job_id: i64, now: NaiveDateTime) -> Result<Option<Vec<i64>>, DbError> {
    let attempt = with_conn!(db, conn => {
        conn.transaction(async |c| {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row.
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let Some((status, job_lock, timeout)) = job::table
                .find(job_id)
                .select((job::job_status, job::job_lock, job::job_timeout))
                .first::<(String, String, i32)>(c)
                .await
                .optional()?
            else {
                return Ok::<_, DbError>(None);
            };
            if status != WAITING {
                return Ok(None);
            }
            let locks = split_list(&job_lock);
            if !locks.is_empty() {
                let earlier: Vec<String> = job::table
                    .filter(job::job_status.eq(WAITING))
                    .filter(job::is_valid.eq(true))
                    .filter(job::job_id.lt(job_id))
                    .select(job::job_lock)
                    .load(c)
                    .await?;
                if earlier.iter().any(|theirs| split_list(theirs).iter().any(|l| locks.contains(l))) {
                    return Ok(None);
                }
                let held: i64 = lock::table.filter(lock::lock_name.eq_any(locks.clone())).count().get_result(c).await?;
                if held > 0 {
                    return Ok(None);
                }
                for name in &locks {
                    // Another instance taking the same lock now makes this fail
                    // with a unique violation: the whole start rolls back.
                    diesel::insert_into(lock::table)
                        .values((lock::lock_name.eq(name.clone()), lock::job_id.eq(job_id), lock::c_time.eq(now)))
                        .execute(c)
                        .await?;
                }
            }
            diesel::update(job::table.find(job_id).filter(job::job_status.eq(WAITING)))
                .set((
                    job::job_status.eq(STARTED),
                    job::s_time.eq(now),
                    job::u_time.eq(now),
                    job::deadline.eq(Some(deadline_of(now, timeout))),
                ))
                .execute(c)
                .await?;
            // Tasks with no unfinished dependency become pending.
            let ready: Vec<i64> = task::table
                .filter(task::job_id.eq(job_id))
                .filter(task::task_status.eq(WAITING))
                .filter(task::task_waiting_on.le(0))
                .select(task::task_id)
                .order(task::task_id.asc())
                .load(c)
                .await?;
            if !ready.is_empty() {
                diesel::update(task::table.filter(task::task_id.eq_any(ready.clone())).filter(task::task_status.eq(WAITING)))
                    .set((task::task_status.eq("pending"), task::u_time.eq(now)))
                    .execute(c)
                    .await?;
            }
            Ok(Some(ready))
        })
        .await
    });
    match attempt {
        Err(err) if err.is_unique_violation() => Ok(None),
        other => other,
    }
}

/// Waiting jobs, oldest first: candidates to start when a lock is released.
pub async fn waiting_jobs(db: &Database, limit: i64) -> Result<Vec<i64>, DbError> {
    with_conn!(db, conn => {
        Ok(job::table
            .filter(job::job_status.eq(WAITING))
            .filter(job::is_valid.eq(true))
            .select(job::job_id)
            .order(job::job_id.asc())
            .limit(limit)
            .load(conn)
            .await?)
    })
}

/// Who holds the first of these locks that is held: `(lock, job_id)`.
pub async fn holder(db: &Database, locks: &[String]) -> Result<Option<(String, i64)>, DbError> {
    let locks = locks.to_vec();
    with_conn!(db, conn => {
        Ok(lock::table
            .filter(lock::lock_name.eq_any(locks))
            .select((lock::lock_name, lock::job_id))
            .order(lock::lock_name.asc())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Running jobs whose deadline has passed.
pub async fn expired(db: &Database, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    with_conn!(db, conn => {
        Ok(job::table
            .filter(job::job_status.eq(STARTED))
            .filter(job::deadline.lt(now))
            .select(job::job_id)
            .load(conn)
            .await?)
    })
}

/// Ends a running (or waiting) job from outside its tasks — timeout or
/// cancel: the job fails with `stat`, its pending and started tasks too (so no
/// further task starts and late results are ignored), its locks are released.
/// `true` if this call ended it.
pub async fn end(db: &Database, job_id: i64, stat: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let stat = stat.to_owned();
    with_conn!(db, conn => {
        conn.transaction(async |c| {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row.
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let row: Option<JobRow> = job::table.find(job_id).select(JobRow::as_select()).first(c).await.optional()?;
            let Some(row) = row else { return Ok::<_, DbError>(false) };
            let ended = diesel::update(job::table.find(job_id).filter(job::job_status.eq_any([STARTED, WAITING])))
                .set((
                    job::job_status.eq("failed"),
                    job::ret_stat.eq(stat.clone()),
                    job::e_time.eq(now),
                    job::u_time.eq(now),
                    job::job_cost.eq(super::jobs::cost_seconds(row.s_time, now)),
                ))
                .execute(c)
                .await?;
            if ended == 0 {
                return Ok(false);
            }
            diesel::update(task::table.filter(task::job_id.eq(job_id)).filter(task::task_status.eq_any(["pending", "started"])))
                .set((task::task_status.eq("failed"), task::ret_stat.eq(stat.clone()), task::u_time.eq(now)))
                .execute(c)
                .await?;
            diesel::delete(lock::table.filter(lock::job_id.eq(job_id))).execute(c).await?;
            Ok(true)
        })
        .await
    })
}

/// Soft delete: the job stays in the database with `is_valid = 0`.
pub async fn invalidate(db: &Database, job_id: i64, now: NaiveDateTime) -> Result<bool, DbError> {
    with_conn!(db, conn => {
        let moved = diesel::update(job::table.find(job_id).filter(job::is_valid.eq(true)))
            .set((job::is_valid.eq(false), job::u_time.eq(now)))
            .execute(conn)
            .await?;
        Ok(moved == 1)
    })
}

/// Makes a failed job resumable: finished tasks keep their results; failed
/// and never-started ones go back to `waiting`, each waiting on its
/// unfinished dependencies; the job waits (to take its locks again) with
/// `exe_id + 1`. `false` if the job is not failed.
pub async fn reset_failed(db: &Database, job_id: i64, now: NaiveDateTime) -> Result<bool, DbError> {
    with_conn!(db, conn => {
        conn.transaction(async |c| {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row.
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let rows: Vec<(i64, String, String, String)> = task::table
                .filter(task::job_id.eq(job_id))
                .select((task::task_id, task::task_label, task::task_status, task::task_dependencies))
                .load(c)
                .await?;
            let finished: std::collections::HashSet<&str> =
                rows.iter().filter(|r| r.2 == "finished").map(|r| r.1.as_str()).collect();
            let unfinished = rows.len() - finished.len();
            let reset = diesel::update(job::table.find(job_id).filter(job::job_status.eq("failed")).filter(job::is_valid.eq(true)))
                .set((
                    job::job_status.eq(WAITING),
                    job::ret_stat.eq(""),
                    job::exe_id.eq(job::exe_id + 1),
                    job::u_time.eq(now),
                    job::deadline.eq(None::<NaiveDateTime>),
                    job::tasks_unfinished.eq(i32::try_from(unfinished).unwrap_or(i32::MAX)),
                ))
                .execute(c)
                .await?;
            if reset == 0 {
                return Ok::<_, DbError>(false);
            }
            for (task_id, _, _, deps) in rows.iter().filter(|r| r.2 != "finished") {
                let waiting_on = split_list(deps).iter().filter(|d| !finished.contains(d.as_str())).count();
                diesel::update(task::table.find(*task_id))
                    .set((
                        task::task_status.eq(WAITING),
                        task::task_waiting_on.eq(i32::try_from(waiting_on).unwrap_or(i32::MAX)),
                        task::task_retrycount.eq(0),
                        task::ret_stat.eq(""),
                        task::ret_data.eq(None::<String>),
                        task::u_time.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok(true)
        })
        .await
    })
}
