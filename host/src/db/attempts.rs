//! Queries on `workflow_task_attempt`: one row per execution attempt of a
//! task. Execution is at-least-once (a SIGTERM past the grace period, a
//! kill -9, a lease that expired while its worker was only slow), so one
//! attempt number may run twice; its rows show who ran it and how it ended.
//!
//! An attempt is opened in the transaction that starts its task and closed in
//! the one that records its result (`db::tasks`), or by whoever takes the
//! task away from it (hand-back, an expired lease, the job's end). A close
//! only touches an attempt still open, and a result is recorded only if its
//! attempt could be closed: the late result of an attempt whose task was
//! taken away changes nothing.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::jobs::INSERT_CHUNK;
use super::mariadb_returning;
use super::models::{AttemptRow, JobRow, TaskRow};
use super::prepared::{prepared, prepared_if};
use super::schema::workflow_task_attempt as attempt;
use super::{Conn, DbError};
use crate::on_conn;
use crate::state::AttemptOutcome;

/// Who runs an attempt, and which: what `open` records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt<'a> {
    pub task_id: i64,
    pub job_id: i64,
    pub exe_id: i32,
    pub attempt_no: i32,
    pub instance: &'a str,
}

impl<'a> NewAttempt<'a> {
    /// The attempt of `task`, just started for `instance`: its job's
    /// execution, the task's try.
    pub fn of(task: &TaskRow, job: &JobRow, instance: &'a str) -> Self {
        Self {
            task_id: task.task_id,
            job_id: task.job_id,
            exe_id: job.exe_id,
            attempt_no: task.task_retrycount,
            instance,
        }
    }
}

/// Records attempts that start now, one per task (each at its own time);
/// returns their ids, in the order of `news`. Call it in the transaction
/// that started the tasks: where an id is read back (MySQL), the task row's
/// lock keeps that read this attempt's. Where the backend has a
/// multi-row INSERT with `RETURNING` (PostgreSQL, MariaDB 10.5+), that is
/// one statement however many: create_job's group commit opens the first
/// task of each of its jobs in one round trip, not one per job.
pub async fn open_many(conn: &mut Conn, news: &[(NewAttempt<'_>, NaiveDateTime)]) -> Result<Vec<i64>, DbError> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    on_conn!(conn, c => Ok(c.insert_attempts(news).await?))
}

/// Inserting an attempt row, per backend: PostgreSQL, SQLite and MariaDB
/// 10.5+ give its id back in the INSERT (`RETURNING`); MySQL has no
/// `RETURNING`, so it reads the id back in a second statement.
/// PostgreSQL's shared connection (`&AsyncPgConnection`) has it too, to
/// pipeline the INSERT behind other statements (`db::tasks`).
pub(super) trait InsertAttempt {
    fn insert_attempt(
        &mut self,
        new: &NewAttempt<'_>,
        now: NaiveDateTime,
    ) -> impl std::future::Future<Output = QueryResult<i64>> + Send;
}

/// The values of an attempt row that starts at `now` (a macro: its tuple
/// type is diesel's to spell).
macro_rules! attempt_row {
    ($new:expr, $now:expr) => {
        (
            attempt::task_id.eq($new.task_id),
            attempt::job_id.eq($new.job_id),
            attempt::exe_id.eq($new.exe_id),
            attempt::attempt_no.eq($new.attempt_no),
            attempt::instance.eq($new.instance),
            attempt::s_time.eq($now),
            attempt::ret_stat.eq(""),
        )
    };
}

macro_rules! insert_returning_id {
    ($($connection:ty),*) => {$(
        impl InsertAttempt for $connection {
            async fn insert_attempt(&mut self, new: &NewAttempt<'_>, now: NaiveDateTime) -> QueryResult<i64> {
                let insert = diesel::insert_into(attempt::table).values(attempt_row!(new, now));
                prepared(insert.returning(attempt::attempt_id)).get_result(self).await
            }
        }
    )*};
}

insert_returning_id!(super::SqliteAsync, diesel_async::AsyncPgConnection, &diesel_async::AsyncPgConnection);

impl InsertAttempt for diesel_async::AsyncMysqlConnection {
    async fn insert_attempt(&mut self, new: &NewAttempt<'_>, now: NaiveDateTime) -> QueryResult<i64> {
        let insert = diesel::insert_into(attempt::table).values(attempt_row!(new, now));
        if mariadb_returning::available() {
            return prepared(mariadb_returning::returning(insert, attempt::attempt_id)).get_result(self).await;
        }
        prepared(insert).execute(self).await?;
        let id: Option<i64> = attempt::table
            .filter(attempt::task_id.eq(new.task_id))
            .select(diesel::dsl::max(attempt::attempt_id))
            .get_result(self)
            .await?;
        id.ok_or(diesel::result::Error::NotFound)
    }
}

/// Inserting several attempt rows: one multi-row INSERT where the backend
/// gives new rows back from it, else [`InsertAttempt`] row after row (SQLite,
/// in-process, needs no fewer statements; MySQL has no `RETURNING`).
pub(super) trait InsertAttempts {
    fn insert_attempts(
        &mut self,
        news: &[(NewAttempt<'_>, NaiveDateTime)],
    ) -> impl std::future::Future<Output = QueryResult<Vec<i64>>> + Send;
}

async fn one_by_one<C: InsertAttempt + Send>(
    c: &mut C,
    news: &[(NewAttempt<'_>, NaiveDateTime)],
) -> QueryResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(news.len());
    for (new, now) in news {
        ids.push(c.insert_attempt(new, *now).await?);
    }
    Ok(ids)
}

/// The ids of `news`' attempts, in their order, from `(attempt_id, task_id)`
/// pairs in any order (a multi-row INSERT's `RETURNING` promises none). A
/// task has one attempt in such an INSERT.
fn ids_by_task(news: &[(NewAttempt<'_>, NaiveDateTime)], inserted: Vec<(i64, i64)>) -> QueryResult<Vec<i64>> {
    let by_task: HashMap<i64, i64> = inserted.into_iter().map(|(attempt_id, task_id)| (task_id, attempt_id)).collect();
    news.iter().map(|(new, _)| by_task.get(&new.task_id).copied().ok_or(diesel::result::Error::NotFound)).collect()
}

impl InsertAttempts for super::SqliteAsync {
    async fn insert_attempts(&mut self, news: &[(NewAttempt<'_>, NaiveDateTime)]) -> QueryResult<Vec<i64>> {
        one_by_one(self, news).await
    }
}

impl InsertAttempts for diesel_async::AsyncPgConnection {
    async fn insert_attempts(&mut self, news: &[(NewAttempt<'_>, NaiveDateTime)]) -> QueryResult<Vec<i64>> {
        let mut inserted = Vec::with_capacity(news.len());
        for chunk in news.chunks(INSERT_CHUNK) {
            let rows: Vec<_> = chunk.iter().map(|(new, now)| attempt_row!(new, *now)).collect();
            let insert = diesel::insert_into(attempt::table).values(rows);
            let returning = insert.returning((attempt::attempt_id, attempt::task_id));
            inserted.extend(prepared_if(chunk.len(), returning).get_results::<(i64, i64)>(self).await?);
        }
        ids_by_task(news, inserted)
    }
}

impl InsertAttempts for diesel_async::AsyncMysqlConnection {
    async fn insert_attempts(&mut self, news: &[(NewAttempt<'_>, NaiveDateTime)]) -> QueryResult<Vec<i64>> {
        if !mariadb_returning::available() {
            return one_by_one(self, news).await;
        }
        let mut inserted = Vec::with_capacity(news.len());
        for chunk in news.chunks(INSERT_CHUNK) {
            let rows: Vec<_> = chunk.iter().map(|(new, now)| attempt_row!(new, *now)).collect();
            let insert = diesel::insert_into(attempt::table).values(rows);
            let returning = mariadb_returning::returning(insert, (attempt::attempt_id, attempt::task_id));
            inserted.extend(prepared_if(chunk.len(), returning).get_results::<(i64, i64)>(self).await?);
        }
        ids_by_task(news, inserted)
    }
}

/// Ends an attempt still open with its outcome; `false` if it was closed
/// already (someone took its task away first).
pub async fn close(
    conn: &mut Conn,
    attempt_id: i64,
    outcome: AttemptOutcome,
    ret_stat: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    on_conn!(conn, c => Ok(prepared(closing!(attempt_id, outcome, ret_stat, now)).execute(c).await? == 1))
}

/// The UPDATE of [`close`] (a macro: its type is diesel's to spell). The end
/// of a task's attempt in `db::tasks` sends it too.
macro_rules! closing {
    ($attempt_id:expr, $outcome:expr, $ret_stat:expr, $now:expr) => {{
        use $crate::db::schema::workflow_task_attempt as attempt;
        diesel::update(attempt::table.find($attempt_id).filter(attempt::outcome.is_null())).set((
            attempt::outcome.eq(Some($outcome)),
            attempt::ret_stat.eq($ret_stat),
            attempt::e_time.eq(Some($now)),
        ))
    }};
}
pub(super) use closing;

/// Ends the open attempts of these tasks (their worker stopped, or their job
/// ended from outside).
pub async fn close_open(
    conn: &mut Conn,
    task_ids: &[i64],
    outcome: AttemptOutcome,
    ret_stat: &str,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    on_conn!(conn, c => {
        Ok(diesel::update(attempt::table.filter(attempt::task_id.eq_any(task_ids)).filter(attempt::outcome.is_null()))
            .set((attempt::outcome.eq(Some(outcome)), attempt::ret_stat.eq(ret_stat), attempt::e_time.eq(Some(now))))
            .execute(c)
            .await?)
    })
}

/// The attempts of every task of a job, oldest first (one bound parameter,
/// however many tasks the job has).
pub async fn of_job(conn: &mut Conn, job_id: i64) -> Result<Vec<AttemptRow>, DbError> {
    on_conn!(conn, c => {
        Ok(attempt::table
            .filter(attempt::job_id.eq(job_id))
            .select(AttemptRow::as_select())
            .order(attempt::attempt_id.asc())
            .load(c)
            .await?)
    })
}

/// The attempts of these tasks, oldest first.
pub async fn of_tasks(conn: &mut Conn, task_ids: &[i64]) -> Result<Vec<AttemptRow>, DbError> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    on_conn!(conn, c => {
        Ok(attempt::table
            .filter(attempt::task_id.eq_any(task_ids))
            .select(AttemptRow::as_select())
            .order(attempt::attempt_id.asc())
            .load(c)
            .await?)
    })
}
