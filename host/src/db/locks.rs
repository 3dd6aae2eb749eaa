//! Job locks: taken all or none, in creation order, by the job transition
//! `start` (waiting → started).
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

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::jobs::deadline_of;
use super::models::split_list;
use super::schema::{workflow_job as job, workflow_lock as lock, workflow_task as task};
use super::{Conn, DbError};
use crate::state::{self, JobStatus};
use crate::{in_transaction, on_conn};

/// Starts a waiting job if it can take all its locks now and no earlier
/// waiting job wants one of them. Returns the tasks it made pending, or
/// `None` when the job keeps waiting (or is not waiting at all).
pub async fn try_start(conn: &mut Conn, job_id: i64, now: NaiveDateTime) -> Result<Option<Vec<i64>>, DbError> {
    let outcome = in_transaction!(conn => {
        let (start, release) = (state::job::START, state::task::RELEASE);
        on_conn!(conn, c => {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row.
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let Some((status, job_lock, timeout)) = job::table
                .find(job_id)
                .select((job::job_status, job::job_lock, job::job_timeout))
                .first::<(JobStatus, String, i32)>(c)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            if !start.from.contains(&status) {
                return Ok(None);
            }
            let locks = split_list(&job_lock);
            if !locks.is_empty() {
                let earlier: Vec<String> = job::table
                    .filter(job::job_status.eq(JobStatus::Waiting))
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
            diesel::update(job::table.find(job_id).filter(job::job_status.eq_any(start.from)))
                .set((
                    job::job_status.eq(start.to),
                    job::s_time.eq(now),
                    job::u_time.eq(now),
                    job::deadline.eq(Some(deadline_of(now, timeout))),
                ))
                .execute(c)
                .await?;
            // Tasks with no unfinished dependency become pending.
            let ready: Vec<i64> = task::table
                .filter(task::job_id.eq(job_id))
                .filter(task::task_status.eq_any(release.from))
                .filter(task::task_waiting_on.le(0))
                .select(task::task_id)
                .order(task::task_id.asc())
                .load(c)
                .await?;
            if !ready.is_empty() {
                diesel::update(task::table.filter(task::task_id.eq_any(&ready)).filter(task::task_status.eq_any(release.from)))
                    .set((task::task_status.eq(release.to), task::u_time.eq(now)))
                    .execute(c)
                    .await?;
            }
            Ok(Some(ready))
        })
    });
    match outcome {
        // Another instance took one of the locks first: the job keeps waiting.
        Err(err) if err.is_unique_violation() => Ok(None),
        other => other,
    }
}

/// Waiting jobs, oldest first: candidates to start when a lock is released.
pub async fn waiting_jobs(conn: &mut Conn, limit: i64) -> Result<Vec<i64>, DbError> {
    on_conn!(conn, c => Ok(waiting_jobs_query(limit).load(c).await?))
}

/// [`waiting_jobs`]' query, written once for it and for its plan's test.
#[diesel::dsl::auto_type(no_type_alias)]
fn waiting_jobs_query(limit: i64) -> _ {
    // auto_type reads the types of its expressions from their syntax: a
    // typed binding tells it what the enum value is.
    let waiting: JobStatus = JobStatus::Waiting;
    job::table
        .filter(job::job_status.eq(waiting))
        .filter(job::is_valid.eq(true))
        .select(job::job_id)
        .order(job::job_id.asc())
        .limit(limit)
}

/// The SQL of [`waiting_jobs`] as SQLite is sent it, with its binds after it
/// in a comment: for a test that asks SQLite how it would run it (the sweeper
/// runs it every tick, so it must not walk every job).
pub fn waiting_jobs_sqlite_sql() -> String {
    diesel::debug_query::<diesel::sqlite::Sqlite, _>(&waiting_jobs_query(1)).to_string()
}

/// Who holds the first of these locks that is held: `(lock, job_id)`.
pub async fn holder(conn: &mut Conn, locks: &[String]) -> Result<Option<(String, i64)>, DbError> {
    on_conn!(conn, c => {
        Ok(lock::table
            .filter(lock::lock_name.eq_any(locks))
            .select((lock::lock_name, lock::job_id))
            .order(lock::lock_name.asc())
            .first(c)
            .await
            .optional()?)
    })
}
