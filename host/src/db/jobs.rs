//! Queries on `workflow_job`, and the job transitions that do not come from
//! a task's result (`crate::state::job`): the end of a job from outside its
//! tasks (timeout, cancel), the soft delete, and the reset of retry_job.
//!
//! On SQLite every transaction here begins with a write to the job row: a
//! transaction that reads first and writes later cannot wait for the write
//! lock (it fails with "database is locked"); beginning with the write makes
//! it queue behind the current writer instead.

use std::collections::HashMap;

use chrono::{Duration as ChronoDuration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::attempts::{self, NewAttempt};
use super::mariadb_returning;
use super::models::{JobRow, NewJob, NewTask, TaskRow, split_list};
use super::prepared::{prepared, prepared_if};
use super::schema::{
    workflow_job as job, workflow_lock as lock, workflow_task as task, workflow_task_attempt as attempt,
};
use super::tasks::Started;
use super::{Conn, DbError};
use crate::state::{self, AttemptOutcome, JobStatus, TaskStatus};
use crate::{in_transaction, on_conn};

/// Rows per INSERT: keeps a 10,000-task job under every backend's limit of
/// bound parameters per statement.
pub(super) const INSERT_CHUNK: usize = 400;

/// Writing new jobs' rows, per backend, for several jobs at once.
/// PostgreSQL, SQLite and MariaDB 10.5+ give the new ids back in the INSERT
/// (`RETURNING`); MySQL has none, so there the ids are read back in the
/// same transaction (a job's name is unique). SQLite (through the sync
/// wrapper) has no multi-row INSERT in diesel, and needs none in-process;
/// the network backends get one statement per chunk of rows, whatever the
/// number of jobs.
pub trait CreateRows {
    /// Inserts the jobs; returns their ids, in the order of `jobs`.
    fn insert_jobs(&mut self, jobs: &[NewJob]) -> impl std::future::Future<Output = QueryResult<Vec<i64>>> + Send;
    /// Inserts the tasks of new jobs; returns those that do not wait
    /// (`pending`, or `started` by create_job's worker), ascending by id.
    fn insert_tasks(
        &mut self,
        rows: &[NewTask],
    ) -> impl std::future::Future<Output = QueryResult<Vec<NotWaiting>>> + Send;
}

/// A new task that does not wait: `(task_id, job_id, status)`.
pub type NotWaiting = (i64, i64, TaskStatus);

/// The statuses a new task may have that do not wait for a dependency.
const NOT_WAITING: [TaskStatus; 2] = [TaskStatus::Pending, TaskStatus::Started];

/// The rows among those inserted that do not wait, ascending by id.
fn not_waiting(mut inserted: Vec<NotWaiting>) -> Vec<NotWaiting> {
    inserted.retain(|(_, _, status)| NOT_WAITING.contains(status));
    inserted.sort_unstable_by_key(|(id, _, _)| *id);
    inserted
}

/// The ids of `jobs`, in their order, from `(job_id, job_name)` pairs in
/// any order (a multi-row INSERT's `RETURNING` promises none).
fn ids_in_order(jobs: &[NewJob], named: Vec<(i64, String)>) -> QueryResult<Vec<i64>> {
    let by_name: HashMap<String, i64> = named.into_iter().map(|(id, name)| (name, id)).collect();
    jobs.iter().map(|new_job| by_name.get(&new_job.job_name).copied().ok_or(diesel::result::Error::NotFound)).collect()
}

impl CreateRows for super::SqliteAsync {
    async fn insert_jobs(&mut self, jobs: &[NewJob]) -> QueryResult<Vec<i64>> {
        let mut ids = Vec::with_capacity(jobs.len());
        for new_job in jobs {
            ids.push(
                prepared(diesel::insert_into(job::table).values(new_job).returning(job::job_id))
                    .get_result(self)
                    .await?,
            );
        }
        Ok(ids)
    }

    async fn insert_tasks(&mut self, rows: &[NewTask]) -> QueryResult<Vec<NotWaiting>> {
        let mut inserted = Vec::with_capacity(rows.len());
        for row in rows {
            let insert = diesel::insert_into(task::table).values(row.clone());
            let returning = insert.returning((task::task_id, task::job_id, task::task_status));
            inserted.push(prepared(returning).get_result(self).await?);
        }
        Ok(not_waiting(inserted))
    }
}

impl CreateRows for diesel_async::AsyncPgConnection {
    async fn insert_jobs(&mut self, jobs: &[NewJob]) -> QueryResult<Vec<i64>> {
        let mut named = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(INSERT_CHUNK) {
            let insert = diesel::insert_into(job::table).values(chunk.to_vec());
            let returning = insert.returning((job::job_id, job::job_name));
            named.extend(prepared_if(chunk.len(), returning).get_results::<(i64, String)>(self).await?);
        }
        ids_in_order(jobs, named)
    }

    async fn insert_tasks(&mut self, rows: &[NewTask]) -> QueryResult<Vec<NotWaiting>> {
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(INSERT_CHUNK) {
            let insert = diesel::insert_into(task::table).values(chunk.to_vec());
            let returning = insert.returning((task::task_id, task::job_id, task::task_status));
            inserted.extend(prepared_if(chunk.len(), returning).get_results::<NotWaiting>(self).await?);
        }
        Ok(not_waiting(inserted))
    }
}

impl CreateRows for diesel_async::AsyncMysqlConnection {
    async fn insert_jobs(&mut self, jobs: &[NewJob]) -> QueryResult<Vec<i64>> {
        if mariadb_returning::available() {
            let mut named = Vec::with_capacity(jobs.len());
            for chunk in jobs.chunks(INSERT_CHUNK) {
                let insert = diesel::insert_into(job::table).values(chunk.to_vec());
                let returning = mariadb_returning::returning(insert, (job::job_id, job::job_name));
                named.extend(prepared_if(chunk.len(), returning).get_results::<(i64, String)>(self).await?);
            }
            return ids_in_order(jobs, named);
        }
        for chunk in jobs.chunks(INSERT_CHUNK) {
            prepared_if(chunk.len(), diesel::insert_into(job::table).values(chunk.to_vec())).execute(self).await?;
        }
        let names: Vec<&str> = jobs.iter().map(|new_job| new_job.job_name.as_str()).collect();
        let read_back = job::table.filter(job::job_name.eq_any(&names)).select((job::job_id, job::job_name));
        let named = prepared_if(names.len(), read_back).load(self).await?;
        ids_in_order(jobs, named)
    }

    async fn insert_tasks(&mut self, rows: &[NewTask]) -> QueryResult<Vec<NotWaiting>> {
        if mariadb_returning::available() {
            let mut inserted = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(INSERT_CHUNK) {
                let insert = diesel::insert_into(task::table).values(chunk.to_vec());
                let returning = mariadb_returning::returning(insert, (task::task_id, task::job_id, task::task_status));
                inserted.extend(prepared_if(chunk.len(), returning).get_results::<NotWaiting>(self).await?);
            }
            return Ok(not_waiting(inserted));
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let insert = diesel::insert_into(task::table).values(chunk.to_vec());
            prepared_if(chunk.len(), insert).execute(self).await?;
        }
        let mut job_ids: Vec<i64> = rows.iter().map(|row| row.job_id).collect();
        job_ids.dedup();
        let read_back = task::table
            .filter(task::job_id.eq_any(&job_ids))
            .filter(task::task_status.eq_any(NOT_WAITING))
            .select((task::task_id, task::job_id, task::task_status));
        Ok(not_waiting(prepared_if(job_ids.len(), read_back).load(self).await?))
    }
}

/// Inserts a job and its tasks in one transaction; returns the job id and the
/// ids of the tasks that are ready at once (`pending`).
pub async fn create(conn: &mut Conn, new_job: NewJob, tasks: Vec<NewTask>) -> Result<(i64, Vec<i64>), DbError> {
    let creation = Creation { job: new_job, tasks, start_first: None };
    let created = create_many(conn, "", std::slice::from_ref(&creation)).await?;
    let created = created.into_iter().next().ok_or(DbError::Query(diesel::result::Error::NotFound))?;
    Ok((created.job_id, created.ready))
}

/// One job for [`create_many`] to create.
#[derive(Debug, Clone)]
pub struct Creation {
    pub job: NewJob,
    pub tasks: Vec<NewTask>,
    /// Until when the worker of create_job's process is trusted with the
    /// job's first ready task, if it runs that task at once (`None`: every
    /// ready task goes to the queue).
    pub start_first: Option<NaiveDateTime>,
}

/// A job [`create_many`] created.
#[derive(Debug)]
pub struct Created {
    pub job_id: i64,
    /// Its tasks ready at once (`pending`), ascending, for the queue.
    pub ready: Vec<i64>,
    /// Its first ready task, started for the caller's worker (with
    /// `start_first`).
    pub started: Option<Started>,
}

/// Creates several jobs in one transaction: all of them, or none (an error).
/// Their rows go in a few multi-row INSERTs, however many jobs there are. A
/// job with `start_first` gets its first ready task started for `instance`
/// (as a finishing task starts the dependent it carries on to), so that its
/// worker runs it at once, without a queue hop or a transaction of its own.
/// That task is inserted `started` (the `start` transition, made at
/// creation): neither an UPDATE nor a read of its row or its job's is
/// needed, both being the rows just inserted.
pub async fn create_many(conn: &mut Conn, instance: &str, creations: &[Creation]) -> Result<Vec<Created>, DbError> {
    let start = state::task::START;
    let jobs: Vec<NewJob> = creations.iter().map(|creation| creation.job.clone()).collect();
    let mut tasks: Vec<Vec<NewTask>> = creations.iter().map(|creation| creation.tasks.clone()).collect();
    let firsts: Vec<Option<NewTask>> = creations
        .iter()
        .zip(&mut tasks)
        .map(|(creation, rows)| {
            let lease_until = creation.start_first?;
            let first = rows.iter_mut().find(|row| start.from.contains(&row.task_status))?;
            let now = creation.job.c_time;
            (first.task_status, first.s_time, first.u_time) = (start.to, now, now);
            first.task_lease_until = Some(lease_until);
            Some(first.clone())
        })
        .collect();
    in_transaction!(conn => {
        let (job_ids, not_waiting) = on_conn!(conn, c => {
            let job_ids = c.insert_jobs(&jobs).await?;
            let mut rows = Vec::with_capacity(tasks.iter().map(Vec::len).sum());
            for (job_rows, &job_id) in tasks.iter().zip(&job_ids) {
                rows.extend(job_rows.iter().map(|row| NewTask { job_id, ..row.clone() }));
            }
            Ok((job_ids, c.insert_tasks(&rows).await?))
        })?;
        let mut by_job: HashMap<i64, Created> = HashMap::with_capacity(job_ids.len());
        let mut started_ids: HashMap<i64, i64> = HashMap::new();
        for (task_id, job_id, status) in not_waiting {
            if status == start.to {
                started_ids.insert(job_id, task_id);
            } else {
                by_job.entry(job_id).or_insert_with(|| Created { job_id, ready: Vec::new(), started: None }).ready.push(task_id);
            }
        }
        // The first tasks started, with their jobs, in creation order.
        let mut firsts_started = Vec::new();
        let mut created = Vec::with_capacity(job_ids.len());
        for ((creation, first), job_id) in creations.iter().zip(firsts).zip(job_ids) {
            created.push(by_job.remove(&job_id).unwrap_or(Created { job_id, ready: Vec::new(), started: None }));
            if let Some(mut task) = first {
                // The INSERT gives every row back; a row missing there is a row not found.
                let task_id = started_ids.get(&job_id).copied().ok_or(DbError::Query(diesel::result::Error::NotFound))?;
                task.job_id = job_id;
                let job = JobRow { job_id, job: creation.job.clone() };
                firsts_started.push((created.len() - 1, TaskRow { task_id, task }, job));
            }
        }
        // Their attempts, opened together: one statement for the batch.
        let news: Vec<_> = firsts_started
            .iter()
            .map(|(_, task, job)| (NewAttempt::of(task, job, instance), job.job.c_time))
            .collect();
        let attempt_ids = attempts::open_many(conn, &news).await?;
        for ((index, task, job), attempt_id) in firsts_started.into_iter().zip(attempt_ids) {
            if let Some(one) = created.get_mut(index) {
                one.started = Some(Started { task, job, dependencies: Vec::new(), attempt_id });
            }
        }
        Ok(created)
    })
}

/// A job by id or by name; deleted jobs (`is_valid = 0`) are not found, and
/// neither is any job when neither key is given.
pub async fn find(conn: &mut Conn, id: Option<i64>, name: Option<&str>) -> Result<Option<JobRow>, DbError> {
    if id.is_none() && name.is_none() {
        return Ok(None);
    }
    on_conn!(conn, c => {
        let mut query = job::table.select(JobRow::as_select()).filter(job::is_valid.eq(true)).into_boxed();
        if let Some(id) = id {
            query = query.filter(job::job_id.eq(id));
        }
        if let Some(name) = name {
            query = query.filter(job::job_name.eq(name.to_owned()));
        }
        Ok(query.get_result(c).await.optional()?)
    })
}

/// A job by id, deleted or not (for notifications).
pub async fn find_any(conn: &mut Conn, id: i64) -> Result<Option<JobRow>, DbError> {
    on_conn!(conn, c => {
        Ok(job::table.find(id).select(JobRow::as_select()).get_result(c).await.optional()?)
    })
}

/// Filters of `list_jobs`; every field is an exact match.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub job_client: Option<String>,
    pub job_reqid: Option<String>,
    pub job_status: Option<JobStatus>,
    pub job_namespace: Option<String>,
    pub job_type: Option<String>,
    pub job_name: Option<String>,
    pub ret_stat: Option<String>,
    pub operator: Option<String>,
    /// `key=value`: jobs whose `job_tags` list holds this tag.
    pub job_tag: Option<String>,
    /// Created at or after this time.
    pub created_from: Option<NaiveDateTime>,
    /// Created before this time.
    pub created_before: Option<NaiveDateTime>,
}

/// Columns `list_jobs` may order by.
pub const ORDERABLE: &[&str] = &[
    "job_id",
    "job_name",
    "job_status",
    "job_type",
    "job_namespace",
    "job_client",
    "ret_stat",
    "job_cost",
    "operator",
    "c_time",
    "s_time",
    "e_time",
    "u_time",
];

macro_rules! order_by {
    ($query:expr, $column:expr, $desc:expr, [$($name:ident),*]) => {
        match $column {
            $(stringify!($name) => if $desc { $query.order(job::$name.desc()) } else { $query.order(job::$name.asc()) },)*
            _ => if $desc { $query.order(job::job_id.desc()) } else { $query.order(job::job_id.asc()) },
        }
    };
}

macro_rules! filtered {
    ($filter:expr) => {{
        let f = $filter;
        let mut query = job::table.filter(job::is_valid.eq(true)).into_boxed();
        if let Some(v) = f.job_client.clone() {
            query = query.filter(job::job_client.eq(v));
        }
        if let Some(v) = f.job_reqid.clone() {
            query = query.filter(job::job_reqid.eq(v));
        }
        if let Some(v) = f.job_status {
            query = query.filter(job::job_status.eq(v));
        }
        if let Some(v) = f.job_namespace.clone() {
            query = query.filter(job::job_namespace.eq(v));
        }
        if let Some(v) = f.job_type.clone() {
            query = query.filter(job::job_type.eq(v));
        }
        if let Some(v) = f.job_name.clone() {
            query = query.filter(job::job_name.eq(v));
        }
        if let Some(v) = f.ret_stat.clone() {
            query = query.filter(job::ret_stat.eq(v));
        }
        if let Some(v) = f.operator.clone() {
            query = query.filter(job::operator.eq(v));
        }
        if let Some(v) = f.created_from {
            query = query.filter(job::c_time.ge(v));
        }
        if let Some(v) = f.created_before {
            query = query.filter(job::c_time.lt(v));
        }
        if let Some(tag) = f.job_tag.as_deref() {
            let (exact, first, last, middle) = super::stats::tag_patterns(tag);
            query = query.filter(
                job::job_tags
                    .eq(exact)
                    .or(job::job_tags.like(first).escape('!'))
                    .or(job::job_tags.like(last).escape('!'))
                    .or(job::job_tags.like(middle).escape('!')),
            );
        }
        query
    }};
}

/// The jobs matching the filter, in a column's order (job_id for any other).
macro_rules! page {
    ($filter:expr, $order_column:expr, $descending:expr) => {{
        let query = filtered!($filter).select(JobRow::as_select());
        order_by!(
            query,
            $order_column,
            $descending,
            [
                job_id,
                job_name,
                job_status,
                job_type,
                job_namespace,
                job_client,
                ret_stat,
                job_cost,
                operator,
                c_time,
                s_time,
                e_time,
                u_time
            ]
        )
    }};
}

/// One page of jobs and the total count matching the filter.
pub async fn list(
    conn: &mut Conn,
    filter: &JobFilter,
    order_column: &str,
    descending: bool,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<JobRow>), DbError> {
    on_conn!(conn, c => {
        let total: i64 = filtered!(filter).count().get_result(c).await?;
        let rows = page!(filter, order_column, descending).offset(offset).limit(limit).load(c).await?;
        Ok((total, rows))
    })
}

/// The SQL of `list`'s page on SQLite, newest first: its tests read the plan
/// SQLite makes for it.
pub fn list_page_sqlite_sql(filter: &JobFilter) -> String {
    let query = page!(filter, "job_id", true).limit(20);
    diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string()
}

/// How many jobs match the filter in each status (the filter's own status
/// aside), in one GROUP BY.
pub async fn count_by_status(conn: &mut Conn, filter: &JobFilter) -> Result<Vec<(JobStatus, i64)>, DbError> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    let any_status = JobFilter { job_status: None, ..filter.clone() };
    // COUNT(CASE …) is a BIGINT on every backend; the statuses are the enum's
    // own names, never input.
    let count_of = |status: JobStatus| sql::<BigInt>(&format!("COUNT(CASE WHEN job_status = '{status}' THEN 1 END)"));
    let [waiting, started, finished, failed] =
        [JobStatus::Waiting, JobStatus::Started, JobStatus::Finished, JobStatus::Failed];
    let counts: (i64, i64, i64, i64) = on_conn!(conn, c => {
        Ok::<_, DbError>(filtered!(&any_status)
            .select((count_of(waiting), count_of(started), count_of(finished), count_of(failed)))
            .get_result(c)
            .await?)
    })?;
    Ok(vec![(waiting, counts.0), (started, counts.1), (finished, counts.2), (failed, counts.3)])
}

/// Jobs still running, for recovery at start.
pub async fn started_ids(conn: &mut Conn) -> Result<Vec<i64>, DbError> {
    on_conn!(conn, c => {
        Ok(job::table.filter(job::job_status.eq(JobStatus::Started)).select(job::job_id).load(c).await?)
    })
}

/// Where a running job times out.
pub fn deadline_of(start: NaiveDateTime, timeout_secs: i32) -> NaiveDateTime {
    start + ChronoDuration::seconds(i64::from(timeout_secs.max(1)))
}

/// Running jobs whose deadline has passed.
pub async fn expired(conn: &mut Conn, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    on_conn!(conn, c => {
        Ok(job::table
            .filter(job::job_status.eq(JobStatus::Started))
            .filter(job::deadline.lt(now))
            .select(job::job_id)
            .load(c)
            .await?)
    })
}

/// Ends a running (or waiting) job from outside its tasks — timeout or
/// cancel: the job fails with `stat`, its pending and started tasks are
/// aborted with it (so no further task starts and late results are ignored),
/// its locks are released. `true` if this call ended it.
pub async fn end(conn: &mut Conn, job_id: i64, stat: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    in_transaction!(conn => {
        let (end, abort) = (state::job::END, state::task::ABORT);
        on_conn!(conn, c => Ok(c.lock_running_parts(job_id).await?))?;
        let aborted = on_conn!(conn, c => {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row
            // (after its running parts, see `LockRunningParts`).
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let row: Option<JobRow> = job::table.find(job_id).select(JobRow::as_select()).get_result(c).await.optional()?;
            let Some(row) = row else { return Ok(None) };
            let ended = diesel::update(job::table.find(job_id).filter(job::job_status.eq_any(end.from)))
                .set((
                    job::job_status.eq(end.to),
                    job::ret_stat.eq(stat),
                    job::e_time.eq(now),
                    job::u_time.eq(now),
                    job::job_cost.eq(cost_seconds(row.s_time, now)),
                ))
                .execute(c)
                .await?;
            if ended == 0 {
                return Ok(None);
            }
            let running = task::table.filter(task::job_id.eq(job_id)).filter(task::task_status.eq_any(abort.from));
            let aborted: Vec<i64> = running.clone().select(task::task_id).load(c).await?;
            diesel::update(running)
                .set((task::task_status.eq(abort.to), task::ret_stat.eq(stat), task::u_time.eq(now)))
                .execute(c)
                .await?;
            diesel::delete(lock::table.filter(lock::job_id.eq(job_id))).execute(c).await?;
            Ok(Some(aborted))
        })?;
        let Some(aborted) = aborted else { return Ok(false) };
        attempts::close_open(conn, &aborted, AttemptOutcome::Aborted, stat, now).await?;
        Ok(true)
    })
}

/// The first step of ending a job from outside ([`end`]) on the backends
/// with row locks: its open attempts, then its started tasks, each in the
/// order of their tasks, locked before the job's row.
///
/// That is the order a finish takes them in (its attempt, its task, then the
/// job's row to count down; `db::tasks`), and a group commit in task order
/// too. An end that took the job's row first would wait for a finishing task
/// whose transaction waits for that row: a deadlock, which PostgreSQL only
/// breaks after a second (`deadlock_timeout`), and which under a fan-out of
/// finishing tasks met the end again on every try. Taken in this order, the
/// end waits for the finishes under way instead. (Waiting tasks come after
/// the job's row, as in a finish's countdown, so they are left to the
/// UPDATE that aborts them.)
///
/// SQLite's transactions take turns on one writer: it has no row locks, and
/// its transaction must begin with the write to the job row (module docs).
trait LockRunningParts {
    fn lock_running_parts(&mut self, job_id: i64) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

macro_rules! lock_running_parts_for_update {
    ($($connection:ty),*) => {$(
        impl LockRunningParts for $connection {
            async fn lock_running_parts(&mut self, job_id: i64) -> QueryResult<()> {
                attempt::table
                    .filter(attempt::job_id.eq(job_id))
                    .filter(attempt::outcome.is_null())
                    .order(attempt::task_id.asc())
                    .select(attempt::attempt_id)
                    .for_update()
                    .load::<i64>(self)
                    .await?;
                task::table
                    .filter(task::job_id.eq(job_id))
                    .filter(task::task_status.eq(TaskStatus::Started))
                    .order(task::task_id.asc())
                    .select(task::task_id)
                    .for_update()
                    .load::<i64>(self)
                    .await?;
                Ok(())
            }
        }
    )*};
}

lock_running_parts_for_update!(diesel_async::AsyncPgConnection, diesel_async::AsyncMysqlConnection);

impl LockRunningParts for super::SqliteAsync {
    async fn lock_running_parts(&mut self, _job_id: i64) -> QueryResult<()> {
        Ok(())
    }
}

/// Soft delete: the job stays in the database with `is_valid = 0`.
pub async fn invalidate(conn: &mut Conn, job_id: i64, now: NaiveDateTime) -> Result<bool, DbError> {
    on_conn!(conn, c => {
        let moved = diesel::update(job::table.find(job_id).filter(job::is_valid.eq(true)))
            .set((job::is_valid.eq(false), job::u_time.eq(now)))
            .execute(c)
            .await?;
        Ok(moved == 1)
    })
}

/// Makes a failed job resumable: finished tasks keep their results; failed
/// and never-started ones go back to `waiting`, each waiting on its
/// unfinished dependencies; the job waits (to take its locks again) with
/// `exe_id + 1`. `false` if the job is not failed.
pub async fn reset_failed(conn: &mut Conn, job_id: i64, now: NaiveDateTime) -> Result<bool, DbError> {
    in_transaction!(conn => {
        let (job_reset, task_reset) = (state::job::RESET, state::task::RESET);
        on_conn!(conn, c => {
            // A write first: SQLite takes its write lock now instead of failing
            // to upgrade a read lock later; elsewhere it locks the job row.
            diesel::update(job::table.find(job_id)).set(job::u_time.eq(now)).execute(c).await?;
            let rows: Vec<(i64, String, TaskStatus, String)> = task::table
                .filter(task::job_id.eq(job_id))
                .select((task::task_id, task::task_label, task::task_status, task::task_dependencies))
                .load(c)
                .await?;
            let finished: std::collections::HashSet<&str> =
                rows.iter().filter(|r| r.2 == TaskStatus::Finished).map(|r| r.1.as_str()).collect();
            let unfinished = rows.len() - finished.len();
            let reset = diesel::update(
                job::table.find(job_id).filter(job::job_status.eq_any(job_reset.from)).filter(job::is_valid.eq(true)),
            )
            .set((
                job::job_status.eq(job_reset.to),
                job::ret_stat.eq(""),
                job::exe_id.eq(job::exe_id + 1),
                job::u_time.eq(now),
                job::deadline.eq(None::<NaiveDateTime>),
                job::tasks_unfinished.eq(i32::try_from(unfinished).unwrap_or(i32::MAX)),
            ))
            .execute(c)
            .await?;
            if reset == 0 {
                return Ok(false);
            }
            for (task_id, _, _, deps) in rows.iter().filter(|r| task_reset.from.contains(&r.2)) {
                let waiting_on = split_list(deps).iter().filter(|d| !finished.contains(d.as_str())).count();
                diesel::update(task::table.find(*task_id))
                    .set((
                        task::task_status.eq(task_reset.to),
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
    })
}

pub(crate) fn cost_seconds(start: NaiveDateTime, end: NaiveDateTime) -> f64 {
    (end - start).num_microseconds().map_or(0.0, |us| us as f64 / 1e6)
}
