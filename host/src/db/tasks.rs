//! Queries on `workflow_task`, and the task transitions of the state machine
//! (the rules themselves are in `engine::state`).
//!
//! A finish moves its task first, then counts the job's unfinished tasks down
//! in the job row: that row lock serialises the completions of one job, and
//! the countdown (read back in the same transaction) tells the last one, on
//! every backend and isolation level. Lock order is always task, then job, and
//! a finishing task only ever touches `waiting` dependents, so two finishes
//! cannot wait on each other in a cycle.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::jobs::cost_seconds;
use super::models::{JobRow, TaskRow, split_list};
use super::schema::{workflow_job as job, workflow_lock as lock, workflow_task as task};
use super::{Database, DbError};
use crate::with_conn;

/// How a job ended, when a task's completion ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    pub job_id: i64,
    pub job_status: &'static str,
    pub ret_stat: String,
}

/// What recording a task's result changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Dependents whose last dependency this was: now `pending`, to dispatch.
    pub ready: Vec<i64>,
    pub job_end: Option<JobEnd>,
}

/// pending → started, only if the task is still pending (else someone else
/// has it, and the caller drops the message); with what parameter resolution
/// needs: the task, its job, and its dependencies — one connection for all.
pub async fn start(
    db: &Database,
    task_id: i64,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Option<Started>, DbError> {
    with_conn!(db, conn => {
        let moved = diesel::update(task::table.find(task_id).filter(task::task_status.eq("pending")))
            .set((
                task::task_status.eq("started"),
                task::s_time.eq(now),
                task::u_time.eq(now),
                task::task_lease_until.eq(Some(lease_until)),
            ))
            .execute(conn)
            .await?;
        if moved == 0 {
            return Ok(None);
        }
        let row: TaskRow = task::table.find(task_id).select(TaskRow::as_select()).first(conn).await?;
        let job_row: JobRow = job::table.find(row.job_id).select(JobRow::as_select()).first(conn).await?;
        let labels = split_list(&row.task_dependencies);
        let dependencies = if labels.is_empty() {
            Vec::new()
        } else {
            task::table
                .filter(task::job_id.eq(row.job_id))
                .filter(task::task_label.eq_any(labels))
                .select(TaskRow::as_select())
                .order(task::task_id.asc())
                .load(conn)
                .await?
        };
        Ok(Some(Started { task: row, job: job_row, dependencies }))
    })
}

/// A task this worker now owns, with its context.
#[derive(Debug, Clone)]
pub struct Started {
    pub task: TaskRow,
    pub job: JobRow,
    pub dependencies: Vec<TaskRow>,
}

/// started → finished; releases the dependents whose last dependency this
/// was; copies `ret_data` to the job when `is_save`; finishes the job when no
/// task is left. `None` when the task was not `started` (already recorded).
pub async fn finish(
    db: &Database,
    row: &TaskRow,
    ret_data: Option<String>,
    now: NaiveDateTime,
) -> Result<Option<Recorded>, DbError> {
    let dependents = split_list(&row.task_dependents);
    let cost = cost_seconds(row.s_time, now);
    let (task_id, job_id, is_save) = (row.task_id, row.job_id, row.task_is_save);
    with_conn!(db, conn => {
        conn.transaction(async |c| {
            let moved = diesel::update(task::table.find(task_id).filter(task::task_status.eq("started")))
                .set((
                    task::task_status.eq("finished"),
                    task::ret_stat.eq("OK"),
                    task::ret_data.eq(ret_data.clone()),
                    task::task_cost.eq(cost),
                    task::u_time.eq(now),
                ))
                .execute(c)
                .await?;
            if moved == 0 {
                return Ok::<_, DbError>(None);
            }
            // Locks the job row: the finishes of one job are serialised from here.
            let countdown = (job::u_time.eq(now), job::tasks_unfinished.eq(job::tasks_unfinished - 1));
            if is_save {
                diesel::update(job::table.find(job_id)).set((countdown, job::ret_data.eq(ret_data.clone()))).execute(c).await?;
            } else {
                diesel::update(job::table.find(job_id)).set(countdown).execute(c).await?;
            }
            let mut recorded = Recorded::default();
            if !dependents.is_empty() {
                let waiting = task::table
                    .filter(task::job_id.eq(job_id))
                    .filter(task::task_label.eq_any(dependents.clone()))
                    .filter(task::task_status.eq("waiting"));
                diesel::update(waiting)
                    .set(task::task_waiting_on.eq(task::task_waiting_on - 1))
                    .execute(c)
                    .await?;
                let released: Vec<i64> = task::table
                    .filter(task::job_id.eq(job_id))
                    .filter(task::task_label.eq_any(dependents.clone()))
                    .filter(task::task_status.eq("waiting"))
                    .filter(task::task_waiting_on.le(0))
                    .select(task::task_id)
                    .load(c)
                    .await?;
                for id in released {
                    let moved = diesel::update(task::table.find(id).filter(task::task_status.eq("waiting")))
                        .set((task::task_status.eq("pending"), task::u_time.eq(now)))
                        .execute(c)
                        .await?;
                    if moved == 1 {
                        recorded.ready.push(id);
                    }
                }
            }
            let (unfinished, started): (i32, NaiveDateTime) =
                job::table.find(job_id).select((job::tasks_unfinished, job::s_time)).first(c).await?;
            if unfinished <= 0 {
                let ended = diesel::update(job::table.find(job_id).filter(job::job_status.eq("started")))
                    .set((
                        job::job_status.eq("finished"),
                        job::ret_stat.eq("OK"),
                        job::e_time.eq(now),
                        job::job_cost.eq(cost_seconds(started, now)),
                    ))
                    .execute(c)
                    .await?;
                if ended == 1 {
                    diesel::delete(lock::table.filter(lock::job_id.eq(job_id))).execute(c).await?;
                    recorded.job_end = Some(JobEnd { job_id, job_status: "finished", ret_stat: "OK".into() });
                }
            }
            Ok(Some(recorded))
        })
        .await
    })
}

/// started → failed with `ret_stat`; the job fails with it if it is still
/// running (so a job's ret_stat is its first failing task's).
pub async fn fail(
    db: &Database,
    row: &TaskRow,
    ret_stat: &str,
    ret_data: Option<String>,
    now: NaiveDateTime,
) -> Result<Option<Recorded>, DbError> {
    let cost = cost_seconds(row.s_time, now);
    let (task_id, job_id) = (row.task_id, row.job_id);
    let stat = ret_stat.to_owned();
    with_conn!(db, conn => {
        conn.transaction(async |c| {
            let moved = diesel::update(task::table.find(task_id).filter(task::task_status.eq("started")))
                .set((
                    task::task_status.eq("failed"),
                    task::ret_stat.eq(stat.clone()),
                    task::ret_data.eq(ret_data.clone()),
                    task::task_cost.eq(cost),
                    task::u_time.eq(now),
                ))
                .execute(c)
                .await?;
            if moved == 0 {
                return Ok::<_, DbError>(None);
            }
            let started: NaiveDateTime = job::table.find(job_id).select(job::s_time).first(c).await?;
            let ended = diesel::update(job::table.find(job_id).filter(job::job_status.eq("started")))
                .set((
                    job::job_status.eq("failed"),
                    job::ret_stat.eq(stat.clone()),
                    job::e_time.eq(now),
                    job::job_cost.eq(cost_seconds(started, now)),
                ))
                .execute(c)
                .await?;
            if ended == 1 {
                diesel::delete(lock::table.filter(lock::job_id.eq(job_id))).execute(c).await?;
            }
            let job_end = (ended == 1).then(|| JobEnd { job_id, job_status: "failed", ret_stat: stat.clone() });
            Ok(Some(Recorded { ready: Vec::new(), job_end }))
        })
        .await
    })
}

/// started → pending for another attempt (retry-max not reached): keeps the
/// failed attempt's stat and data visible until the next one ends. `true` if
/// this call moved it.
pub async fn retry(
    db: &Database,
    row: &TaskRow,
    stat: &str,
    ret_data: Option<String>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let (task_id, count) = (row.task_id, row.task_retrycount);
    let stat = stat.to_owned();
    with_conn!(db, conn => {
        let moved = diesel::update(
            task::table.find(task_id).filter(task::task_status.eq("started")).filter(task::task_retrycount.eq(count)),
        )
        .set((
            task::task_status.eq("pending"),
            task::task_retrycount.eq(count + 1),
            task::ret_stat.eq(stat),
            task::ret_data.eq(ret_data),
            task::u_time.eq(now),
        ))
        .execute(conn)
        .await?;
        Ok(moved == 1)
    })
}

/// Tasks of a job in creation order, optionally of one status.
pub async fn list(db: &Database, job_id: i64, status: Option<&str>) -> Result<Vec<TaskRow>, DbError> {
    with_conn!(db, conn => {
        let mut query = task::table.filter(task::job_id.eq(job_id)).select(TaskRow::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(task::task_status.eq(status.to_owned()));
        }
        Ok(query.order(task::task_id.asc()).load(conn).await?)
    })
}

pub async fn get(db: &Database, task_id: i64) -> Result<Option<TaskRow>, DbError> {
    with_conn!(db, conn => {
        Ok(task::table.find(task_id).select(TaskRow::as_select()).first(conn).await.optional()?)
    })
}

/// At start: re-dispatch the pending tasks of running jobs. With
/// `take_over_started` (one instance, in-process queue) a task left `started`
/// by a previous run of this instance goes back to `pending` first.
pub async fn recover_pending(
    db: &Database,
    job_ids: &[i64],
    take_over_started: bool,
    now: NaiveDateTime,
) -> Result<Vec<i64>, DbError> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let job_ids = job_ids.to_vec();
    with_conn!(db, conn => {
        if take_over_started {
            diesel::update(task::table.filter(task::job_id.eq_any(job_ids.clone())).filter(task::task_status.eq("started")))
                .set((task::task_status.eq("pending"), task::u_time.eq(now)))
                .execute(conn)
                .await?;
        }
        Ok(task::table
            .filter(task::job_id.eq_any(job_ids))
            .filter(task::task_status.eq("pending"))
            .select(task::task_id)
            .order(task::task_id.asc())
            .load(conn)
            .await?)
    })
}

/// This worker is alive: the leases of the tasks it runs are extended.
pub async fn renew_leases(db: &Database, task_ids: &[i64], until: NaiveDateTime) -> Result<(), DbError> {
    if task_ids.is_empty() {
        return Ok(());
    }
    let task_ids = task_ids.to_vec();
    with_conn!(db, conn => {
        diesel::update(task::table.filter(task::task_id.eq_any(task_ids)).filter(task::task_status.eq("started")))
            .set(task::task_lease_until.eq(Some(until)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Started tasks whose worker stopped renewing their lease (it died) go back
/// to pending, each by a conditional update; returns those this call moved.
pub async fn expired_leases(db: &Database, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    with_conn!(db, conn => {
        let expired: Vec<i64> = task::table
            .filter(task::task_status.eq("started"))
            .filter(task::task_lease_until.lt(now))
            .select(task::task_id)
            .limit(1000)
            .load(conn)
            .await?;
        let mut moved = Vec::new();
        for id in expired {
            let updated = diesel::update(
                task::table.find(id).filter(task::task_status.eq("started")).filter(task::task_lease_until.lt(now)),
            )
            .set((task::task_status.eq("pending"), task::u_time.eq(now)))
            .execute(conn)
            .await?;
            if updated == 1 {
                moved.push(id);
            }
        }
        Ok(moved)
    })
}

/// Pending tasks untouched since `before` (their message was lost): touched
/// now, so the next sweep does not dispatch them again at once.
pub async fn stale_pending(db: &Database, before: NaiveDateTime, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    with_conn!(db, conn => {
        let stale: Vec<i64> = task::table
            .filter(task::task_status.eq("pending"))
            .filter(task::u_time.lt(before))
            .select(task::task_id)
            .limit(1000)
            .load(conn)
            .await?;
        if !stale.is_empty() {
            diesel::update(task::table.filter(task::task_id.eq_any(stale.clone())).filter(task::task_status.eq("pending")))
                .set(task::u_time.eq(now))
                .execute(conn)
                .await?;
        }
        Ok(stale)
    })
}

/// started → pending for tasks this process was running when it was asked
/// to stop: another run (or instance) will pick them up.
pub async fn hand_back(db: &Database, task_ids: &[i64], now: NaiveDateTime) -> Result<usize, DbError> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    let task_ids = task_ids.to_vec();
    with_conn!(db, conn => {
        Ok(diesel::update(task::table.filter(task::task_id.eq_any(task_ids)).filter(task::task_status.eq("started")))
            .set((task::task_status.eq("pending"), task::u_time.eq(now)))
            .execute(conn)
            .await?)
    })
}
