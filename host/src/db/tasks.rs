//! Queries on `workflow_task`, and the task transitions of the state machine
//! (`crate::state::task`: each UPDATE's WHERE is its transition's `from`).
//!
//! A finish moves its task first, then counts the job's unfinished tasks down
//! in the job row: that row lock serialises the completions of one job, and
//! the countdown (read back in the same transaction) tells the last one, on
//! every backend and isolation level. Lock order is always attempt, task,
//! then job, and a finishing task only ever touches `waiting` dependents, so
//! two finishes cannot wait on each other in a cycle; an end from outside
//! (`jobs::end`) takes the job's running attempts and tasks before its row
//! too. A transaction that records several finishes (`finish_many`, a group
//! commit) takes them job by job in the order of the jobs' ids, so two such
//! transactions cannot either.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::attempts::{self, InsertAttempt, NewAttempt};
use super::jobs::cost_seconds;
use super::models::{JobRow, TaskRow, split_list};
use super::prepared::{prepared, prepared_if};
use super::schema::{
    workflow_job as job, workflow_lock as lock, workflow_task as task, workflow_task_attempt as attempt,
};
use super::{Conn, DbError};
use crate::state::{self, AttemptOutcome, JobStatus, TaskStatus, Transition, stat};
use crate::{in_transaction, on_conn};

/// How a job ended, when a task's completion ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    pub job_id: i64,
    pub job_status: JobStatus,
    pub ret_stat: String,
    /// Whether it held locks, now released: only then may a waiting job
    /// start.
    pub released_locks: bool,
    /// The job's row as it ended, when the transaction had read it already
    /// (a finish reads it with its countdown): the job_notifier then needs
    /// no read of its own.
    pub row: Option<JobRow>,
}

/// What recording a task's result changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Dependents whose last dependency this was: now `pending`, to dispatch.
    pub ready: Vec<i64>,
    /// The released dependent the finishing worker runs next, already
    /// started in the finishing transaction (see [`CarryOn`]).
    pub next: Option<Started>,
    pub job_end: Option<JobEnd>,
}

/// A task this worker now owns, with its context and its open attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub task: TaskRow,
    pub job: JobRow,
    pub dependencies: Vec<TaskRow>,
    pub attempt_id: i64,
}

/// Asks [`finish`] to start the first dependent it releases for the
/// finishing worker (`continue`: waiting → started, with an attempt opened
/// for `instance`), in the same transaction: the next step of a job then
/// costs no queue round trip and no transaction of its own. Its lease covers
/// it as any started task's: if the worker dies, it is handed back.
#[derive(Debug, Clone, Copy)]
pub struct CarryOn<'a> {
    pub instance: &'a str,
    pub lease_until: NaiveDateTime,
}

/// pending → started (only if the task is still pending, else someone else
/// has it and the caller drops the message), with an attempt opened for
/// `instance`; returns what parameter resolution needs: the task, its job,
/// and its dependencies — one transaction for all.
pub async fn start(
    conn: &mut Conn,
    task_id: i64,
    instance: &str,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Option<Started>, DbError> {
    let start = QueueStart { task_id, instance, lease_until, now };
    in_transaction!(conn => on_conn!(conn, c => Ok(c.start_task(&start).await?)))
}

/// The tasks of job `job_id` labelled `labels`, in any order (a macro: its
/// type is diesel's to spell). No `ORDER BY`: MariaDB would rather walk the
/// primary key in `task_id` order than sort a few rows, and did so, reading
/// the whole table, while its statistics still counted a small one
/// (`docs/scale-out.md`). [`in_creation_order`] sorts them instead.
macro_rules! dependencies_query {
    ($job_id:expr, $labels:expr) => {
        task::table
            .filter(task::job_id.eq($job_id))
            .filter(task::task_label.eq_any($labels))
            .select(TaskRow::as_select())
    };
}

/// Task rows read in any order, in creation order.
fn in_creation_order(mut rows: Vec<TaskRow>) -> Vec<TaskRow> {
    rows.sort_unstable_by_key(|row| row.task_id);
    rows
}

/// What [`StartStatements`] writes.
struct QueueStart<'a> {
    task_id: i64,
    instance: &'a str,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
}

/// The statements of [`start`], per backend: the `start` UPDATE, the read of
/// the task with its job, the read of its dependencies and the attempt's
/// INSERT. `None` when the UPDATE found the task no longer pending: nothing
/// is opened then.
trait StartStatements {
    fn start_task(
        &mut self,
        start: &QueueStart<'_>,
    ) -> impl std::future::Future<Output = QueryResult<Option<Started>>> + Send;
}

/// The `start` UPDATE of a task taken from the queue (a macro, as the others).
macro_rules! start_update {
    ($start:expr) => {
        diesel::update(task::table.find($start.task_id).filter(task::task_status.eq_any(state::task::START.from))).set(
            (
                task::task_status.eq(state::task::START.to),
                task::s_time.eq($start.now),
                task::u_time.eq($start.now),
                task::task_lease_until.eq(Some($start.lease_until)),
            ),
        )
    };
}

/// A task with its job (a macro, as the others).
macro_rules! task_with_job {
    ($task_id:expr) => {
        task::table
            .inner_join(job::table)
            .filter(task::task_id.eq($task_id))
            .select((TaskRow::as_select(), JobRow::as_select()))
    };
}

macro_rules! start_in_turn {
    ($($connection:ty),*) => {$(
        impl StartStatements for $connection {
            async fn start_task(&mut self, start: &QueueStart<'_>) -> QueryResult<Option<Started>> {
                if prepared(start_update!(start)).execute(self).await? == 0 {
                    return Ok(None);
                }
                let (task, job): (TaskRow, JobRow) = task_with_job!(start.task_id).get_result(self).await?;
                let attempt = NewAttempt::of(&task, &job, start.instance);
                let labels = split_list(&task.task_dependencies);
                let (dependencies, attempt_id) = self.dependencies_and_attempt(&labels, &attempt, start.now).await?;
                Ok(Some(Started { task, job, dependencies, attempt_id }))
            }
        }
    )*};
}

start_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL pipelines them in two round trips instead of four: the UPDATE
/// with the read of the task and its job (which, sent after it, sees it
/// moved), then the dependencies' read with the attempt's INSERT (which need
/// the row read), and with the `COMMIT` ([`super::commit_behind`]: nothing
/// is checked after them). They run in the order sent (see [`EndAndCountDown`]
/// for PostgreSQL).
impl StartStatements for diesel_async::AsyncPgConnection {
    async fn start_task(&mut self, start: &QueueStart<'_>) -> QueryResult<Option<Started>> {
        let (mut first, mut second) = (&*self, &*self);
        let moved = prepared(start_update!(start)).execute(&mut first);
        let read =
            async { task_with_job!(start.task_id).get_result::<(TaskRow, JobRow)>(&mut second).await.optional() };
        let (moved, read) = futures_util::try_join!(moved, read)?;
        let (task, job) = match (moved, read) {
            (0, _) => return Ok(None),
            (_, Some(read)) => read,
            // Moved but not found: impossible, and rolled back all the same.
            (_, None) => return Err(diesel::result::Error::NotFound),
        };
        let attempt = NewAttempt::of(&task, &job, start.instance);
        let labels = split_list(&task.task_dependencies);
        let (dependencies, attempt_id) = super::commit_behind(self, async |shared| {
            let mut shared = shared;
            shared.dependencies_and_attempt(&labels, &attempt, start.now).await
        })
        .await?;
        Ok(Some(Started { task, job, dependencies, attempt_id }))
    }
}

/// The `continue` UPDATE of a carried task (a macro, as the others).
macro_rules! continue_update {
    ($task_id:expr, $lease_until:expr, $now:expr) => {
        diesel::update(task::table.find($task_id).filter(task::task_status.eq_any(state::task::CONTINUE.from))).set((
            task::task_status.eq(state::task::CONTINUE.to),
            task::s_time.eq($now),
            task::u_time.eq($now),
            task::task_lease_until.eq(Some($lease_until)),
        ))
    };
}

/// The statements that start the dependent [`finish`] carries on with, per
/// backend: the `continue` UPDATE,
/// the read of the dependencies not known yet (`labels`, maybe none) and
/// the attempt's INSERT; gives the dependencies and the attempt's id.
///
/// The UPDATE cannot miss: the countdown that released the task, earlier in
/// this transaction, found it `waiting` and still holds it (its row lock on
/// PostgreSQL and MariaDB, the one writer on SQLite). That is what lets
/// PostgreSQL send all three without waiting for the UPDATE's answer. A miss
/// all the same is an error, and the transaction rolls back.
trait CarryOnStatements {
    fn carry_on(
        &mut self,
        start: &CarriedStart<'_>,
    ) -> impl std::future::Future<Output = QueryResult<(Vec<TaskRow>, i64)>> + Send;
}

/// What [`CarryOnStatements`] writes and reads.
struct CarriedStart<'a> {
    attempt: NewAttempt<'a>,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
    /// The dependencies to read (none when all are known).
    labels: &'a [String],
}

macro_rules! carry_on_in_turn {
    ($($connection:ty),*) => {$(
        impl CarryOnStatements for $connection {
            async fn carry_on(&mut self, start: &CarriedStart<'_>) -> QueryResult<(Vec<TaskRow>, i64)> {
                let CarriedStart { ref attempt, lease_until, now, labels } = *start;
                carried_one(prepared(continue_update!(attempt.task_id, lease_until, now)).execute(self).await?)?;
                self.dependencies_and_attempt(labels, attempt, now).await
            }
        }
    )*};
}

carry_on_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL pipelines the three: one round trip instead of up to three.
/// They run in the order sent (see [`EndAndCountDown`] for PostgreSQL).
impl CarryOnStatements for diesel_async::AsyncPgConnection {
    async fn carry_on(&mut self, start: &CarriedStart<'_>) -> QueryResult<(Vec<TaskRow>, i64)> {
        carry_on_pipelined(self, start).await
    }
}

/// PostgreSQL's [`CarryOnStatements`] on its shared connection, to be sent
/// behind other statements.
async fn carry_on_pipelined(
    conn: &diesel_async::AsyncPgConnection,
    start: &CarriedStart<'_>,
) -> QueryResult<(Vec<TaskRow>, i64)> {
    let CarriedStart { ref attempt, lease_until, now, labels } = *start;
    let (mut first, mut rest) = (conn, conn);
    let moved = prepared(continue_update!(attempt.task_id, lease_until, now)).execute(&mut first);
    let read_and_opened = rest.dependencies_and_attempt(labels, attempt, now);
    let (moved, read_and_opened) = futures_util::try_join!(moved, read_and_opened)?;
    carried_one(moved)?;
    Ok(read_and_opened)
}

/// The two statements every start ends with, per backend: the read of the
/// started task's dependencies (`labels`: those not known yet, maybe none)
/// and the INSERT of its attempt; gives both. They come after the start's
/// UPDATE, which holds the task for this transaction.
trait DependenciesAndAttempt {
    fn dependencies_and_attempt(
        &mut self,
        labels: &[String],
        attempt: &NewAttempt<'_>,
        now: NaiveDateTime,
    ) -> impl std::future::Future<Output = QueryResult<(Vec<TaskRow>, i64)>> + Send;
}

macro_rules! dependencies_and_attempt_in_turn {
    ($($connection:ty),*) => {$(
        impl DependenciesAndAttempt for $connection {
            async fn dependencies_and_attempt(
                &mut self,
                labels: &[String],
                attempt: &NewAttempt<'_>,
                now: NaiveDateTime,
            ) -> QueryResult<(Vec<TaskRow>, i64)> {
                let dependencies = if labels.is_empty() {
                    Vec::new()
                } else {
                    in_creation_order(
                        prepared_if(labels.len(), dependencies_query!(attempt.job_id, labels)).load(self).await?,
                    )
                };
                Ok((dependencies, self.insert_attempt(attempt, now).await?))
            }
        }
    )*};
}

dependencies_and_attempt_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL's shared connection sends the two pipelined, in one round trip
/// (behind whatever was sent before on it).
impl DependenciesAndAttempt for &diesel_async::AsyncPgConnection {
    async fn dependencies_and_attempt(
        &mut self,
        labels: &[String],
        attempt: &NewAttempt<'_>,
        now: NaiveDateTime,
    ) -> QueryResult<(Vec<TaskRow>, i64)> {
        let (mut first, mut second) = (*self, *self);
        let dependencies = async {
            if labels.is_empty() {
                return Ok(Vec::new());
            }
            let read = prepared_if(labels.len(), dependencies_query!(attempt.job_id, labels)).load(&mut first).await;
            read.map(in_creation_order)
        };
        futures_util::try_join!(dependencies, second.insert_attempt(attempt, now))
    }
}

/// The carried task's UPDATE moved it (see [`CarryOnStatements`]).
fn carried_one(moved: usize) -> QueryResult<()> {
    if moved == 1 { Ok(()) } else { Err(diesel::result::Error::NotFound) }
}

/// started → finished; releases the dependents whose last dependency this
/// was (with `carry_on`, the first of them is started for the caller, the
/// others are `pending`); copies `ret_data` to the job when `is_save`;
/// finishes the job when no task is left. `None` when the attempt no longer
/// owns its task (it was handed back, its lease expired or its job ended:
/// only the live attempt of a task records a result) or the task was not
/// `started`.
pub async fn finish(
    conn: &mut Conn,
    row: &TaskRow,
    attempt_id: i64,
    ret_data: Option<String>,
    now: NaiveDateTime,
    carry_on: Option<CarryOn<'_>>,
) -> Result<Option<Recorded>, DbError> {
    let instance = carry_on.map_or("", |carry_on| carry_on.instance);
    let carry_on_until = carry_on.map(|carry_on| carry_on.lease_until);
    let finishing = Finishing { row: row.clone(), attempt_id, ret_data, now, carry_on_until };
    in_transaction!(conn => Ok(finish_in(conn, &[&finishing], instance).await?.pop().flatten()))
}

/// A task's result, as [`finish_many`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finishing {
    pub row: TaskRow,
    pub attempt_id: i64,
    pub ret_data: Option<String>,
    pub now: NaiveDateTime,
    /// The lease of the dependent to carry on with (see [`CarryOn`]), if
    /// the worker wants one.
    pub carry_on_until: Option<NaiveDateTime>,
}

/// [`finish`] for several tasks, in one transaction (one commit for all):
/// one answer per task, in order; carried dependents are started for
/// `instance`. The finishes run job by job, in the order of the jobs' ids,
/// so that every transaction takes the job rows' locks in the same order and
/// two of them never wait on each other in a cycle. If one fails, none is
/// recorded.
pub async fn finish_many(
    conn: &mut Conn,
    instance: &str,
    finishing: &[Finishing],
) -> Result<Vec<Option<Recorded>>, DbError> {
    let mut order: Vec<usize> = (0..finishing.len()).collect();
    order.sort_by_key(|&i| (finishing[i].row.job_id, finishing[i].row.task_id));
    let in_order: Vec<&Finishing> = order.iter().map(|&i| &finishing[i]).collect();
    in_transaction!(conn => {
        let mut recorded = vec![None; finishing.len()];
        for (i, one) in order.iter().zip(finish_in(conn, &in_order, instance).await?) {
            recorded[*i] = one;
        }
        Ok(recorded)
    })
}

/// A job's end by one of its tasks: the values of its UPDATE.
struct JobEnding<'a> {
    job_id: i64,
    transition: Transition<JobStatus>,
    ret_stat: &'a str,
    now: NaiveDateTime,
    cost: f64,
}

/// The UPDATE that ends a job still running (a macro, as the others).
macro_rules! ending_update {
    ($ending:expr) => {
        diesel::update(job::table.find($ending.job_id).filter(job::job_status.eq_any($ending.transition.from))).set((
            job::job_status.eq($ending.transition.to),
            job::ret_stat.eq($ending.ret_stat),
            job::e_time.eq($ending.now),
            job::job_cost.eq($ending.cost),
        ))
    };
}

/// The body of [`finish_many`], inside the caller's transaction, for tasks
/// in lock order; carried dependents are started for `instance`. Three
/// steps, each taken for every task before the next: the attempts' ends with
/// their countdowns (which lock every row the later steps write), the jobs
/// that ended, then the dependents released. A job ends only when none of
/// its tasks is left, so never in a finish that releases a dependent: for
/// one task, at most one of the last two steps writes anything, and both
/// write only rows the first step locked: PostgreSQL sends the first step's
/// statements for all the tasks, then the last two steps' together, without
/// waiting for each answer. A transaction of many results costs a few round
/// trips, not a few per result. (A job's locks, when it declared any, are
/// released after that, in turn.)
async fn finish_in(
    conn: &mut Conn,
    finishing: &[&Finishing],
    instance: &str,
) -> Result<Vec<Option<Recorded>>, DbError> {
    let (finish, job_finish) = (state::task::FINISH, state::job::FINISH);
    let ends: Vec<Ending<'_>> = finishing
        .iter()
        .map(|f| Ending { attempt_id: f.attempt_id, ret_stat: stat::OK, ret_data: f.ret_data.clone(), now: f.now })
        .collect();
    let dependents: Vec<Vec<String>> = finishing.iter().map(|f| split_list(&f.row.task_dependents)).collect();
    // Ends the attempts, then locks each job row (the finishes of one job are
    // serialised from there) and counts its unfinished tasks down, which
    // tells the last one; the dependents come back as whole rows: the one
    // carried on needs no second read.
    let countdowns: Vec<Countdown<'_>> = finishing
        .iter()
        .zip(&ends)
        .zip(&dependents)
        .map(|((f, end), labels)| Countdown {
            ended: AttemptEnd::of(&f.row, finish, AttemptOutcome::Finished, end),
            job_id: f.row.job_id,
            saved: f.row.task_is_save.then(|| f.ret_data.clone()),
            labels,
        })
        .collect();
    let counted = on_conn!(conn, c => Ok(c.end_and_count_down_all(&countdowns).await?))?;
    let mut recorded: Vec<Option<Recorded>> = Vec::with_capacity(finishing.len());
    // The jobs that ended: the finish's place, the job's end, its row.
    let mut endings = Vec::new();
    let mut releases = Vec::new();
    for (index, (f, counted)) in finishing.iter().zip(counted).enumerate() {
        // The attempt no longer owned its task: nothing changed.
        let Some((job_row, released)) = counted else {
            recorded.push(None);
            continue;
        };
        recorded.push(Some(Recorded::default()));
        if job_row.tasks_unfinished <= 0 {
            let cost = cost_seconds(job_row.s_time, f.now);
            let ending =
                JobEnding { job_id: f.row.job_id, transition: job_finish, ret_stat: stat::OK, now: f.now, cost };
            endings.push((index, ending, job_row.clone()));
        }
        // The first dependent released is carried on (started for this
        // worker); the others wait in the queue.
        let mut released = released.into_iter();
        // (Not `zip`: without a carry-on, the first released stays pending.)
        let carried = match f.carry_on_until {
            Some(lease_until) => released.next().map(|task| (task, lease_until)),
            None => None,
        };
        let pending: Vec<i64> = released.map(|released_row| released_row.task_id).collect();
        if pending.is_empty() && carried.is_none() {
            continue;
        }
        releases.push(Release::of(index, f, pending, carried, job_row));
    }
    let starts: Vec<Option<CarriedStart<'_>>> = releases.iter().map(|r| r.start(instance)).collect();
    let asked: Vec<ReleaseAsk<'_>> =
        releases.iter().zip(&starts).map(|(r, start)| (r.pending.as_slice(), r.now, start.as_ref())).collect();
    let ending_updates: Vec<&JobEnding<'_>> = endings.iter().map(|(_, ending, _)| ending).collect();
    let (ended, answers) = on_conn!(conn, c => Ok(c.end_and_release_all(&ending_updates, &asked).await?))?;
    for ((index, ending, job_row), ended) in endings.iter().zip(ended) {
        // Not running any more: another end came first.
        if !ended {
            continue;
        }
        let job_end = ended_job(conn, ending, !job_row.job_lock.is_empty(), Some(job_row)).await?;
        if let Some(one) = recorded.get_mut(*index).and_then(Option::as_mut) {
            one.job_end = Some(job_end);
        }
    }
    for (release, (ready, carried)) in releases.into_iter().zip(answers) {
        let index = release.index;
        let next = release.started(carried)?;
        if let Some(one) = recorded.get_mut(index).and_then(Option::as_mut) {
            (one.ready, one.next) = (ready, next);
        }
    }
    Ok(recorded)
}

/// One task's countdowns in [`finish_in`]: its attempt's end, its job, the
/// ret_data to copy to the job, and its dependents' labels.
struct Countdown<'a> {
    ended: AttemptEnd<'a>,
    job_id: i64,
    saved: Option<SavedRetData>,
    labels: &'a [String],
}

/// What one finish releases ([`finish_in`]'s last step): `pending` go to the
/// queue (`release`), and `carried`, if any, is started for the finishing
/// worker (`continue`) with its attempt opened. Its row and its job's are
/// read already, and when the finished task is the carried one's only
/// dependency, so is that.
struct Release {
    /// The finish's place in the batch.
    index: usize,
    pending: Vec<i64>,
    carried: Option<Carried>,
    now: NaiveDateTime,
}

struct Carried {
    task: TaskRow,
    job: JobRow,
    lease_until: NaiveDateTime,
    /// The finished task as the carried one sees it (what this transaction
    /// wrote), when it is the carried one's only dependency.
    known: Option<Vec<TaskRow>>,
    /// The dependencies to read (none when `known`).
    to_read: Vec<String>,
}

impl Release {
    fn of(
        index: usize,
        finishing: &Finishing,
        pending: Vec<i64>,
        carried: Option<(TaskRow, NaiveDateTime)>,
        job: JobRow,
    ) -> Self {
        let now = finishing.now;
        let carried = carried.map(|(task, lease_until)| {
            let labels = split_list(&task.task_dependencies);
            let mut finished = finishing.row.clone();
            let done = &mut finished.task;
            (done.task_status, done.ret_stat, done.ret_data, done.u_time) =
                (state::task::FINISH.to, stat::OK.to_owned(), finishing.ret_data.clone(), now);
            let known = (labels == [finished.task_label.as_str()]).then(|| vec![finished]);
            let to_read = if known.is_some() { Vec::new() } else { labels };
            Carried { task, job, lease_until, known, to_read }
        });
        Release { index, pending, carried, now }
    }

    fn start<'a>(&'a self, instance: &'a str) -> Option<CarriedStart<'a>> {
        self.carried.as_ref().map(|c| CarriedStart {
            attempt: NewAttempt::of(&c.task, &c.job, instance),
            lease_until: c.lease_until,
            now: self.now,
            labels: &c.to_read,
        })
    }

    /// The carried dependent as started, from what its statements read.
    fn started(self, answer: Option<(Vec<TaskRow>, i64)>) -> Result<Option<Started>, DbError> {
        let Some(Carried { mut task, job, lease_until, known, .. }) = self.carried else {
            return Ok(None);
        };
        // Present whenever a start was asked for (see `ReleaseStatements`).
        let (read, attempt_id) = answer.ok_or(DbError::Query(diesel::result::Error::NotFound))?;
        let moved = &mut task.task;
        (moved.task_status, moved.s_time, moved.u_time) = (state::task::CONTINUE.to, self.now, self.now);
        moved.task_lease_until = Some(lease_until);
        Ok(Some(Started { task, job, dependencies: known.unwrap_or(read), attempt_id }))
    }
}

/// The `release` UPDATE of a dependent that goes to the queue (a macro, as
/// the others).
macro_rules! release_update {
    ($task_id:expr, $now:expr) => {
        diesel::update(task::table.find($task_id).filter(task::task_status.eq_any(state::task::RELEASE.from)))
            .set((task::task_status.eq(state::task::RELEASE.to), task::u_time.eq($now)))
    };
}

/// What [`ReleaseStatements`] gives: the ids moved to `pending`, and the
/// carried task's dependencies and attempt id.
type Released = (Vec<i64>, Option<(Vec<TaskRow>, i64)>);

/// The statements of a [`Release`], per backend: the `release` UPDATE of each
/// of `pending`, then, with `carried`, the carried task's statements
/// ([`CarryOnStatements`]); gives the ids the UPDATEs moved, and the carried
/// task's dependencies and attempt id (present exactly when `carried` is).
/// Every row they touch is locked already by the countdown that released
/// it, so their order among themselves cannot deadlock.
///
/// The jobs' ends of the same finishes go with them (their UPDATEs, whether
/// each took): they touch only job rows the countdowns locked, and a job
/// that ends releases nothing.
trait ReleaseStatements {
    /// For several finishes, in order: whether each job end took, and one
    /// answer per release.
    fn end_and_release_all(
        &mut self,
        endings: &[&JobEnding<'_>],
        asked: &[ReleaseAsk<'_>],
    ) -> impl std::future::Future<Output = QueryResult<(Vec<bool>, Vec<Released>)>> + Send;
}

/// What one finish asks of [`ReleaseStatements`]: the ids to move to
/// `pending`, the time, and the dependent to carry on with, if any.
type ReleaseAsk<'a> = (&'a [i64], NaiveDateTime, Option<&'a CarriedStart<'a>>);

macro_rules! release_in_turn {
    ($($connection:ty),*) => {$(
        impl ReleaseStatements for $connection {
            async fn end_and_release_all(
                &mut self,
                endings: &[&JobEnding<'_>],
                asked: &[ReleaseAsk<'_>],
            ) -> QueryResult<(Vec<bool>, Vec<Released>)> {
                let mut ended = Vec::with_capacity(endings.len());
                for ending in endings {
                    ended.push(prepared(ending_update!(ending)).execute(self).await? == 1);
                }
                let mut answers = Vec::with_capacity(asked.len());
                for &(pending, now, carried) in asked {
                    let mut ready = Vec::new();
                    for &id in pending {
                        if prepared(release_update!(id, now)).execute(self).await? == 1 {
                            ready.push(id);
                        }
                    }
                    let started = match carried {
                        Some(start) => Some(self.carry_on(start).await?),
                        None => None,
                    };
                    answers.push((ready, started));
                }
                Ok((ended, answers))
            }
        }
    )*};
}

release_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL sends them all without waiting for an answer: one round trip
/// instead of one per statement. They run in the order sent (see
/// [`EndAndCountDown`] for PostgreSQL).
impl ReleaseStatements for diesel_async::AsyncPgConnection {
    /// Every finish's statements are sent before any answer is awaited, in
    /// the order asked (futures polled in order send in order).
    async fn end_and_release_all(
        &mut self,
        endings: &[&JobEnding<'_>],
        asked: &[ReleaseAsk<'_>],
    ) -> QueryResult<(Vec<bool>, Vec<Released>)> {
        let shared = &*self;
        let mut connections = vec![shared; endings.len()];
        let ends = futures_util::future::try_join_all(
            connections.iter_mut().zip(endings).map(|(c, ending)| prepared(ending_update!(ending)).execute(c)),
        );
        let releases = futures_util::future::try_join_all(
            asked.iter().map(|&(pending, now, carried)| release_pipelined(shared, pending, now, carried)),
        );
        let (ended, answers) = futures_util::try_join!(ends, releases)?;
        Ok((ended.into_iter().map(|rows| rows == 1).collect(), answers))
    }
}

/// PostgreSQL's [`ReleaseStatements`] on its shared connection, to be sent
/// behind other statements.
async fn release_pipelined(
    shared: &diesel_async::AsyncPgConnection,
    pending: &[i64],
    now: NaiveDateTime,
    carried: Option<&CarriedStart<'_>>,
) -> QueryResult<Released> {
    let mut connections = vec![shared; pending.len()];
    let moves = connections.iter_mut().zip(pending).map(|(c, &id)| prepared(release_update!(id, now)).execute(c));
    let moved = futures_util::future::try_join_all(moves);
    let started = async {
        let Some(start) = carried else { return Ok(None) };
        carry_on_pipelined(shared, start).await.map(Some)
    };
    let (moved, started) = futures_util::try_join!(moved, started)?;
    let ready = pending.iter().zip(moved).filter(|&(_, moved)| moved == 1).map(|(&id, _)| id).collect();
    Ok((ready, started))
}

/// The two countdowns of [`finish`] on the backends that send them in turn
/// (PostgreSQL pipelines them: [`EndAndCountDown`]): the job's, then its
/// dependents' (when it has any), in that order on every backend, since
/// every finish of a job takes the job row's lock before its dependents'
/// (the module comment). SQLite reads the rows back in the UPDATEs
/// (`RETURNING`); MariaDB has no `UPDATE … RETURNING`, so it reads them in a
/// SELECT after them, inside the same transaction and behind the same row
/// locks.
trait CountDowns: Send {
    /// One task of job `job_id` less to finish (and, with `saved`, its
    /// ret_data copied to the job); gives the job row as it is now.
    fn count_down_job(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
    ) -> impl std::future::Future<Output = QueryResult<JobRow>> + Send;

    /// That, then one dependency less for the `waiting` dependents labelled
    /// `labels` (at least one); gives the job row and the dependents now
    /// waiting on none, in creation order.
    fn count_down_with_dependents(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
        labels: &[String],
    ) -> impl std::future::Future<Output = QueryResult<(JobRow, Vec<TaskRow>)>> + Send;

    /// Both countdowns, the dependents' only when there are any.
    fn count_down(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
        labels: &[String],
    ) -> impl std::future::Future<Output = QueryResult<(JobRow, Vec<TaskRow>)>> + Send {
        async move {
            if labels.is_empty() {
                return Ok((self.count_down_job(job_id, saved, now).await?, Vec::new()));
            }
            self.count_down_with_dependents(job_id, saved, now, labels).await
        }
    }
}

/// `ret_data` copied to the job by a task with `is_save`.
type SavedRetData = Option<String>;

/// The UPDATEs of the countdowns (macros: their types are diesel's to spell).
macro_rules! job_countdown {
    ($job_id:expr, $saved:expr, $now:expr) => {
        diesel::update(job::table.find($job_id)).set((
            job::u_time.eq($now),
            job::tasks_unfinished.eq(job::tasks_unfinished - 1),
            $saved.map(|data| job::ret_data.eq(data)),
        ))
    };
}

macro_rules! dependents_countdown {
    ($job_id:expr, $labels:expr) => {
        diesel::update(
            task::table
                .filter(task::job_id.eq($job_id))
                .filter(task::task_label.eq_any($labels))
                .filter(task::task_status.eq_any(state::task::RELEASE.from)),
        )
        .set(task::task_waiting_on.eq(task::task_waiting_on - 1))
    };
}

impl CountDowns for super::SqliteAsync {
    async fn count_down_job(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
    ) -> QueryResult<JobRow> {
        prepared(job_countdown!(job_id, saved, now).returning(JobRow::as_select())).get_result(self).await
    }

    async fn count_down_with_dependents(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
        labels: &[String],
    ) -> QueryResult<(JobRow, Vec<TaskRow>)> {
        let job_row = self.count_down_job(job_id, saved, now).await?;
        let countdown = dependents_countdown!(job_id, labels).returning(TaskRow::as_select());
        Ok((job_row, released_of(prepared_if(labels.len(), countdown).get_results(self).await?)))
    }
}

/// MariaDB counts the job and its dependents down in one multi-table UPDATE
/// and reads both back in one SELECT: two statements, each a round trip and
/// a command of the database's CPU, instead of four. The UPDATE reads the
/// job row by its key before it joins the dependents, so it locks them in
/// the order of every finish: the job row, then its dependents. The job row
/// is updated once however many dependents it joins (a multi-table UPDATE
/// changes a row once), and a dependent that is not `waiting` joins as
/// NULLs, which nothing updates.
impl CountDowns for diesel_async::AsyncMysqlConnection {
    async fn count_down_job(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
    ) -> QueryResult<JobRow> {
        prepared(job_countdown!(job_id, saved, now)).execute(self).await?;
        job::table.find(job_id).select(JobRow::as_select()).get_result(self).await
    }

    async fn count_down_with_dependents(
        &mut self,
        job_id: i64,
        saved: Option<SavedRetData>,
        now: NaiveDateTime,
        labels: &[String],
    ) -> QueryResult<(JobRow, Vec<TaskRow>)> {
        let waiting = state::task::RELEASE.from;
        prepared_if(labels.len(), both_countdowns_mysql(job_id, saved, now, labels, waiting)).execute(self).await?;
        let released_on = task::job_id
            .eq(job::job_id)
            .and(task::task_label.eq_any(labels))
            .and(task::task_status.eq_any(waiting))
            .and(task::task_waiting_on.le(0));
        let read = job::table
            .left_join(task::table.on(released_on))
            .filter(job::job_id.eq(job_id))
            .select((JobRow::as_select(), Option::<TaskRow>::as_select()));
        let rows: Vec<(JobRow, Option<TaskRow>)> = prepared_if(labels.len(), read).load(self).await?;
        // Every row repeats the job: the first gives it, all give the released.
        let mut rows = rows.into_iter();
        let (job_row, first) = rows.next().ok_or(diesel::result::Error::NotFound)?;
        let released = first.into_iter().chain(rows.filter_map(|(_, released)| released)).collect();
        Ok((job_row, in_creation_order(released)))
    }
}

/// The UPDATE of MariaDB's [`CountDowns`]: the job's countdown (with
/// `saved`, its ret_data) and its `waiting` dependents labelled `labels`,
/// joined. diesel has no multi-table UPDATE, so its SQL is written here,
/// with every value bound.
fn both_countdowns_mysql(
    job_id: i64,
    saved: Option<SavedRetData>,
    now: NaiveDateTime,
    labels: &[String],
    waiting: &[TaskStatus],
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::mysql::Mysql, diesel::query_builder::SqlQuery> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
    let list = |n: usize| vec!["?"; n].join(", ");
    let save = if saved.is_some() { ", j.ret_data = ?" } else { "" };
    let sql = format!(
        "UPDATE workflow_job AS j LEFT JOIN workflow_task AS t \
         ON t.job_id = j.job_id AND t.task_label IN ({labels}) AND t.task_status IN ({statuses}) \
         SET j.u_time = ?, j.tasks_unfinished = j.tasks_unfinished - 1{save}, \
         t.task_waiting_on = t.task_waiting_on - 1 \
         WHERE j.job_id = ?",
        labels = list(labels.len()),
        statuses = list(waiting.len()),
    );
    let mut query = diesel::sql_query(sql).into_boxed();
    for label in labels {
        query = query.bind::<Text, _>(label.clone());
    }
    for status in waiting {
        query = query.bind::<Text, _>(*status);
    }
    query = query.bind::<Timestamp, _>(now);
    if let Some(data) = saved {
        query = query.bind::<Nullable<Text>, _>(data);
    }
    query.bind::<BigInt, _>(job_id)
}

/// The dependents a countdown left waiting on nothing, in creation order.
fn released_of(mut counted: Vec<TaskRow>) -> Vec<TaskRow> {
    counted.retain(|row| row.task_waiting_on <= 0);
    in_creation_order(counted)
}

/// started → failed with `ret_stat`; the job fails with it if it is still
/// running (so a job's ret_stat is its first failing task's). `None`, as for
/// [`finish`], when the attempt no longer owns its task.
pub async fn fail(conn: &mut Conn, row: &TaskRow, end: Ending<'_>) -> Result<Option<Recorded>, DbError> {
    in_transaction!(conn => {
        let (fail, job_fail) = (state::task::FAIL, state::job::FAIL);
        if !end_attempt(conn, row, fail, AttemptOutcome::Failed, &end).await? {
            return Ok(None);
        }
        let job_end = end_job(conn, row.job_id, job_fail, end.ret_stat, end.now, None).await?;
        Ok(Some(Recorded { ready: Vec::new(), next: None, job_end }))
    })
}

/// The job's transition when one of its tasks ended it: `transition` with
/// `ret_stat` and its cost; its locks are released. `None` when it was not
/// running any more. `known` is its row as this transaction left it, if read
/// already.
async fn end_job(
    conn: &mut Conn,
    job_id: i64,
    transition: Transition<JobStatus>,
    ret_stat: &str,
    now: NaiveDateTime,
    known: Option<&JobRow>,
) -> Result<Option<JobEnd>, DbError> {
    let (started, declared_locks) = match known {
        Some(row) => (row.s_time, !row.job_lock.is_empty()),
        None => {
            let (started, job_lock): (NaiveDateTime, String) = on_conn!(conn, c => {
                Ok(job::table.find(job_id).select((job::s_time, job::job_lock)).get_result(c).await?)
            })?;
            (started, !job_lock.is_empty())
        }
    };
    let ending = JobEnding { job_id, transition, ret_stat, now, cost: cost_seconds(started, now) };
    if on_conn!(conn, c => Ok(prepared(ending_update!(ending)).execute(c).await?))? == 0 {
        return Ok(None);
    }
    Ok(Some(ended_job(conn, &ending, declared_locks, known).await?))
}

/// What follows a job's end once its UPDATE took: its locks released, if it
/// declared any, and its [`JobEnd`]. `known` is its row as this transaction
/// read it before the end.
async fn ended_job(
    conn: &mut Conn,
    ending: &JobEnding<'_>,
    declared_locks: bool,
    known: Option<&JobRow>,
) -> Result<JobEnd, DbError> {
    let job_id = ending.job_id;
    // A job holds only the locks it declared (`locks::try_start` takes
    // them from its `job_lock`, set once at creation): one that declared
    // none has no row to delete.
    let released = if declared_locks {
        on_conn!(conn, c => Ok(prepared(diesel::delete(lock::table.filter(lock::job_id.eq(job_id)))).execute(c).await?))?
    } else {
        0
    };
    // The row as the UPDATE left it: the same four columns changed.
    let row = known.map(|row| {
        let mut row = row.clone();
        (row.job.job_status, row.job.ret_stat, row.job.e_time, row.job.job_cost) =
            (ending.transition.to, ending.ret_stat.to_owned(), ending.now, ending.cost);
        row
    });
    Ok(JobEnd {
        job_id,
        job_status: ending.transition.to,
        ret_stat: ending.ret_stat.to_owned(),
        released_locks: released > 0,
        row,
    })
}

/// How an attempt ended: what [`fail`] and [`retry`] record.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending<'a> {
    pub attempt_id: i64,
    pub ret_stat: &'a str,
    pub ret_data: Option<String>,
    pub now: NaiveDateTime,
}

/// The first step of [`finish`] and [`fail`]: the attempt ends with
/// `outcome`, and its task moves by `transition` with its stat, data and
/// cost. `false` when the attempt no longer owns its task (or the task is not
/// started): nothing changed then.
async fn end_attempt(
    conn: &mut Conn,
    row: &TaskRow,
    transition: Transition<TaskStatus>,
    outcome: AttemptOutcome,
    end: &Ending<'_>,
) -> Result<bool, DbError> {
    let ended = AttemptEnd::of(row, transition, outcome, end);
    on_conn!(conn, c => Ok(c.end_attempt(&ended).await?))
}

/// What [`end_attempt`] writes.
struct AttemptEnd<'a> {
    task_id: i64,
    transition: Transition<TaskStatus>,
    outcome: AttemptOutcome,
    cost: f64,
    end: &'a Ending<'a>,
}

impl<'a> AttemptEnd<'a> {
    /// `row`'s attempt ends with `outcome`, and `row` moves by `transition`.
    fn of(row: &TaskRow, transition: Transition<TaskStatus>, outcome: AttemptOutcome, end: &'a Ending<'a>) -> Self {
        AttemptEnd { task_id: row.task_id, transition, outcome, cost: cost_seconds(row.s_time, end.now), end }
    }
}

/// The attempt as this transaction's close of [`end_attempt`] left it: closed
/// with this outcome at this very time (a macro, as the others). An attempt
/// closed by anyone else has another outcome (handed back, expired, aborted,
/// retried) or another end time.
macro_rules! closed_by_this {
    ($ended:expr) => {{
        let (ended, end) = ($ended, $ended.end);
        attempt::table
            .find(end.attempt_id)
            .select(attempt::attempt_id)
            .filter(attempt::outcome.eq(Some(ended.outcome)))
            .filter(attempt::e_time.eq(Some(end.now)))
    }};
}

/// The task's UPDATE of [`end_attempt`] (a macro, as the others).
macro_rules! task_end {
    ($ended:expr) => {{
        let (ended, end) = ($ended, $ended.end);
        diesel::update(task::table.find(ended.task_id).filter(task::task_status.eq_any(ended.transition.from))).set((
            task::task_status.eq(ended.transition.to),
            task::ret_stat.eq(end.ret_stat),
            task::ret_data.eq(end.ret_data.clone()),
            task::task_cost.eq(ended.cost),
            task::u_time.eq(end.now),
        ))
    }};
}

/// The two UPDATEs of [`end_attempt`], per backend: the attempt's close,
/// then its task's move, only if the close did end it.
trait EndAttempt {
    fn end_attempt(&mut self, ended: &AttemptEnd<'_>) -> impl std::future::Future<Output = QueryResult<bool>> + Send;
}

macro_rules! end_attempt_in_turn {
    ($($connection:ty),*) => {$(
        impl EndAttempt for $connection {
            async fn end_attempt(&mut self, ended: &AttemptEnd<'_>) -> QueryResult<bool> {
                let end = ended.end;
                let closing = attempts::closing!(end.attempt_id, ended.outcome, end.ret_stat, end.now);
                if prepared(closing).execute(self).await? != 1 {
                    return Ok(false);
                }
                Ok(prepared(task_end!(ended)).execute(self).await? == 1)
            }
        }
    )*};
}

// MariaDB keeps the two UPDATEs too: one joined UPDATE of the attempt and
// its task took 350-580 µs in MariaDB's slow log, against 100-120 µs for
// each of the two, which costs more than the round trip it saves
// (`docs/scale-out.md`).
end_attempt_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL sends both without waiting for the close's answer. The task's
/// UPDATE then checks for itself what the others check of the close's
/// answer: it moves the task only if the attempt is closed with this
/// outcome at this very time, which (run after the close, in the same
/// transaction) means this close ended it ([`closed_by_this`]).
impl EndAttempt for diesel_async::AsyncPgConnection {
    async fn end_attempt(&mut self, ended: &AttemptEnd<'_>) -> QueryResult<bool> {
        let end = ended.end;
        let (mut first, mut second) = (&*self, &*self);
        let closing = attempts::closing!(end.attempt_id, ended.outcome, end.ret_stat, end.now);
        let task_end = task_end!(ended).filter(diesel::dsl::exists(closed_by_this!(ended)));
        let closed = prepared(closing).execute(&mut first);
        let moved = prepared(task_end).execute(&mut second);
        match futures_util::try_join!(closed, moved)? {
            (1, moved) => Ok(moved == 1),
            (_, 0) => Ok(false),
            // A task moved for a close that ended nothing: impossible by the
            // check above, and rolled back if it happens all the same.
            _ => Err(diesel::result::Error::NotFound),
        }
    }
}

/// What [`EndAndCountDown`] gives for one finish: the job row and the
/// dependents released, or `None` when the attempt no longer owned its task.
type Counted = Option<(JobRow, Vec<TaskRow>)>;

/// The first two steps of a finish, per backend: the attempt's end
/// ([`EndAttempt`]), then, only if that moved the task, both countdowns
/// ([`CountDowns`]); gives what the countdowns read. `None` when the attempt
/// no longer owned its task: nothing is counted down then.
trait EndAndCountDown {
    /// For several finishes, in order: one answer each.
    fn end_and_count_down_all(
        &mut self,
        countdowns: &[Countdown<'_>],
    ) -> impl std::future::Future<Output = QueryResult<Vec<Counted>>> + Send;
}

macro_rules! end_and_count_down_in_turn {
    ($($connection:ty),*) => {$(
        impl EndAndCountDown for $connection {
            async fn end_and_count_down_all(
                &mut self,
                countdowns: &[Countdown<'_>],
            ) -> QueryResult<Vec<Counted>> {
                let mut answers = Vec::with_capacity(countdowns.len());
                for c in countdowns {
                    let counted = if self.end_attempt(&c.ended).await? {
                        Some(self.count_down(c.job_id, c.saved.clone(), c.ended.end.now, c.labels).await?)
                    } else {
                        None
                    };
                    answers.push(counted);
                }
                Ok(answers)
            }
        }
    )*};
}

end_and_count_down_in_turn!(super::SqliteAsync, diesel_async::AsyncMysqlConnection);

/// PostgreSQL sends all four without waiting for an answer: the attempt's
/// close and its task's move (as [`EndAttempt`] for PostgreSQL), then both
/// countdowns, one round trip instead of two. Each countdown checks for
/// itself what the others check of the move's answer: it counts only if the
/// task is now finished at this very time by this attempt's close at this
/// very time, which (run after them, in the same transaction) means this
/// transaction moved it. The lock order (attempt, task, job row, dependents)
/// is the order sent, and the order holds: futures polled in order send in
/// order (diesel-async keeps its statement cache behind a fair lock, held
/// while a statement is prepared).
impl EndAndCountDown for diesel_async::AsyncPgConnection {
    /// Every finish's four statements are sent before any answer is
    /// awaited, in the order given, which is the lock order (futures polled
    /// in order send in order).
    async fn end_and_count_down_all(&mut self, countdowns: &[Countdown<'_>]) -> QueryResult<Vec<Counted>> {
        let shared = &*self;
        futures_util::future::try_join_all(
            countdowns
                .iter()
                .map(|c| end_and_count_down_pipelined(shared, &c.ended, c.job_id, c.saved.clone(), c.labels)),
        )
        .await
    }
}

/// PostgreSQL's [`EndAndCountDown`] on its shared connection, to be sent
/// behind other statements.
async fn end_and_count_down_pipelined(
    shared: &diesel_async::AsyncPgConnection,
    ended: &AttemptEnd<'_>,
    job_id: i64,
    saved: Option<SavedRetData>,
    labels: &[String],
) -> QueryResult<Counted> {
    let end = ended.end;
    let (mut first, mut second, mut third, mut fourth) = (shared, shared, shared, shared);
    let closing = attempts::closing!(end.attempt_id, ended.outcome, end.ret_stat, end.now);
    let task_end = task_end!(ended).filter(diesel::dsl::exists(closed_by_this!(ended)));
    // An alias: the dependents' countdown reads the finished task's row
    // from the table it updates.
    let finished = diesel::alias!(task as finished_task);
    let finished_by_this = finished
        .select(finished.field(task::task_id))
        .filter(finished.field(task::task_id).eq(ended.task_id))
        .filter(finished.field(task::task_status).eq(ended.transition.to))
        .filter(finished.field(task::u_time).eq(end.now))
        .filter(diesel::dsl::exists(closed_by_this!(ended)));
    let job_countdown = job_countdown!(job_id, saved, end.now)
        .filter(diesel::dsl::exists(finished_by_this))
        .returning(JobRow::as_select());
    let closed = prepared(closing).execute(&mut first);
    let moved = prepared(task_end).execute(&mut second);
    let job_row = async { prepared(job_countdown).get_result::<JobRow>(&mut third).await.optional() };
    let counted = async {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let countdown = dependents_countdown!(job_id, labels)
            .filter(diesel::dsl::exists(finished_by_this))
            .returning(TaskRow::as_select());
        prepared_if(labels.len(), countdown).get_results::<TaskRow>(&mut fourth).await
    };
    match futures_util::try_join!(closed, moved, job_row, counted)? {
        (1, 1, Some(job_row), counted) => Ok(Some((job_row, released_of(counted)))),
        (_, 0, None, counted) if counted.is_empty() => Ok(None),
        // A countdown without a move, or a move without one: impossible
        // by the checks above, and rolled back if it happens all the same.
        _ => Err(diesel::result::Error::NotFound),
    }
}

/// started → pending for another attempt (retry-max not reached): keeps the
/// failed attempt's stat and data visible until the next one ends. `true` if
/// this call moved it (`false` when the attempt no longer owns its task).
pub async fn retry(conn: &mut Conn, row: &TaskRow, end: Ending<'_>) -> Result<bool, DbError> {
    let Ending { attempt_id, ret_stat, ret_data, now } = end;
    let (task_id, count) = (row.task_id, row.task_retrycount);
    let transition = state::task::RETRY;
    in_transaction!(conn => {
        if !attempts::close(conn, attempt_id, AttemptOutcome::Retried, ret_stat, now).await? {
            return Ok(false);
        }
        on_conn!(conn, c => {
            let retried = diesel::update(
                task::table
                    .find(task_id)
                    .filter(task::task_status.eq_any(transition.from))
                    .filter(task::task_retrycount.eq(count)),
            )
            .set((
                task::task_status.eq(transition.to),
                task::task_retrycount.eq(count + 1),
                task::ret_stat.eq(ret_stat),
                task::ret_data.eq(ret_data),
                task::u_time.eq(now),
            ));
            let moved = prepared(retried).execute(c).await?;
            Ok(moved == 1)
        })
    })
}

/// Tasks of a job in creation order, optionally of one status.
pub async fn list(conn: &mut Conn, job_id: i64, status: Option<TaskStatus>) -> Result<Vec<TaskRow>, DbError> {
    on_conn!(conn, c => {
        let mut query = task::table.filter(task::job_id.eq(job_id)).select(TaskRow::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(task::task_status.eq(status));
        }
        Ok(query.order(task::task_id.asc()).load(c).await?)
    })
}

pub async fn get(conn: &mut Conn, task_id: i64) -> Result<Option<TaskRow>, DbError> {
    on_conn!(conn, c => {
        Ok(task::table.find(task_id).select(TaskRow::as_select()).get_result(c).await.optional()?)
    })
}

/// How many tasks are `pending` (queued, not started), and since when the
/// oldest one waits.
pub async fn pending_summary(conn: &mut Conn) -> Result<(i64, Option<NaiveDateTime>), DbError> {
    on_conn!(conn, c => {
        let pending = task::table.filter(status_is(TaskStatus::Pending));
        let count: i64 = pending.clone().count().get_result(c).await?;
        let oldest: Option<NaiveDateTime> = pending.select(diesel::dsl::min(task::u_time)).get_result(c).await?;
        Ok((count, oldest))
    })
}

/// A task as the API shows it: one of a deleted job is not found.
pub async fn get_of_valid_job(conn: &mut Conn, task_id: i64) -> Result<Option<TaskRow>, DbError> {
    on_conn!(conn, c => {
        let job_is_valid = job::table.filter(job::job_id.eq(task::job_id)).filter(job::is_valid.eq(true));
        Ok(task::table
            .find(task_id)
            .filter(diesel::dsl::exists(job_is_valid))
            .select(TaskRow::as_select())
            .get_result(c)
            .await
            .optional()?)
    })
}

/// At start: re-dispatch the pending tasks of running jobs. With
/// `take_over_started` (one instance, in-process queue) a task left `started`
/// by a previous run of this instance is handed back to `pending` first.
pub async fn recover_pending(
    conn: &mut Conn,
    job_ids: &[i64],
    take_over_started: bool,
    now: NaiveDateTime,
) -> Result<Vec<i64>, DbError> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    if take_over_started {
        let left: Vec<i64> = on_conn!(conn, c => {
            Ok(task::table
                .filter(task::job_id.eq_any(job_ids))
                .filter(task::task_status.eq_any(state::task::HAND_BACK.from))
                .select(task::task_id)
                .load(c)
                .await?)
        })?;
        hand_back(conn, &left, AttemptOutcome::HandedBack, now).await?;
    }
    on_conn!(conn, c => {
        Ok(task::table
            .filter(task::job_id.eq_any(job_ids))
            .filter(task::task_status.eq(TaskStatus::Pending))
            .select(task::task_id)
            .order(task::task_id.asc())
            .load(c)
            .await?)
    })
}

/// This worker is alive: the leases of the tasks it runs are extended. A
/// task whose row another transaction holds is left for the next tick: it
/// is being finished (often by this very process's group commit), and
/// waiting for it while holding the others' locks could close a cycle with
/// that commit, which takes its tasks' rows in its own order.
pub async fn renew_leases(conn: &mut Conn, task_ids: &[i64], until: NaiveDateTime) -> Result<(), DbError> {
    if task_ids.is_empty() {
        return Ok(());
    }
    in_transaction!(conn => on_conn!(conn, c => Ok(c.renew_leases(task_ids, until).await?)))
}

/// [`renew_leases`] per backend: PostgreSQL and MariaDB lock the rows that
/// are free (`FOR UPDATE SKIP LOCKED`) and extend those; SQLite, whose
/// transactions take turns on one writer, has no row locks to wait for.
trait RenewLeases {
    fn renew_leases(
        &mut self,
        task_ids: &[i64],
        until: NaiveDateTime,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

macro_rules! renew_leases_skip_locked {
    ($($connection:ty),*) => {$(
        impl RenewLeases for $connection {
            async fn renew_leases(&mut self, task_ids: &[i64], until: NaiveDateTime) -> QueryResult<()> {
                let free: Vec<i64> = task::table
                    .filter(task::task_id.eq_any(task_ids))
                    .filter(task::task_status.eq(TaskStatus::Started))
                    .select(task::task_id)
                    .for_update()
                    .skip_locked()
                    .load(self)
                    .await?;
                if !free.is_empty() {
                    diesel::update(task::table.filter(task::task_id.eq_any(&free)))
                        .set(task::task_lease_until.eq(Some(until)))
                        .execute(self)
                        .await?;
                }
                Ok(())
            }
        }
    )*};
}

renew_leases_skip_locked!(diesel_async::AsyncPgConnection, diesel_async::AsyncMysqlConnection);

impl RenewLeases for super::SqliteAsync {
    async fn renew_leases(&mut self, task_ids: &[i64], until: NaiveDateTime) -> QueryResult<()> {
        diesel::update(
            task::table.filter(task::task_id.eq_any(task_ids)).filter(task::task_status.eq(TaskStatus::Started)),
        )
        .set(task::task_lease_until.eq(Some(until)))
        .execute(self)
        .await?;
        Ok(())
    }
}

/// `task_status = '<status>'` with the status written into the SQL rather
/// than bound. PostgreSQL's partial indexes of the pending and the started
/// tasks (migration 000009) serve only a query whose SQL names the status:
/// a prepared statement's plan is kept per connection, made without its
/// parameters' values. The statuses are this enum's fixed words.
fn status_is(
    status: TaskStatus,
) -> diesel::dsl::Eq<task::task_status, diesel::expression::SqlLiteral<diesel::sql_types::Text>> {
    task::task_status.eq(diesel::dsl::sql::<diesel::sql_types::Text>(&format!("'{}'", status.as_str())))
}

/// One of the sweeper's looks: up to 1,000 tasks in `status` whose
/// `since` column is before `before` (a macro, as the others): started
/// tasks by their lease ([`expired_leases`]; [`state::task::HAND_BACK`]
/// leaves `started` only), pending ones by their last touch
/// ([`stale_pending`]).
macro_rules! sweeper_look {
    ($status:expr, $since:expr, $before:expr) => {
        task::table.filter(status_is($status)).filter($since.lt($before)).select(task::task_id).limit(1000)
    };
}

/// The SQL of the sweeper's two looks, as PostgreSQL is sent them, each with
/// its binds after it in a comment: for a test that asks PostgreSQL how it
/// would run them with a kept plan (the sweeper runs them every tick, so they
/// must not walk every task).
pub fn sweeper_postgres_sql() -> [String; 2] {
    let now = chrono::DateTime::UNIX_EPOCH.naive_utc();
    [
        diesel::debug_query::<diesel::pg::Pg, _>(&sweeper_look!(TaskStatus::Started, task::task_lease_until, now))
            .to_string(),
        diesel::debug_query::<diesel::pg::Pg, _>(&sweeper_look!(TaskStatus::Pending, task::u_time, now)).to_string(),
    ]
}

/// Started tasks whose worker stopped renewing their lease (it died) are
/// handed back to pending, each by a conditional update; returns those this
/// call moved.
pub async fn expired_leases(conn: &mut Conn, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    let transition = state::task::HAND_BACK;
    let moved = on_conn!(conn, c => {
        let expired: Vec<i64> = sweeper_look!(TaskStatus::Started, task::task_lease_until, now).load(c).await?;
        let mut moved = Vec::new();
        for id in expired {
            let updated = diesel::update(
                task::table
                    .find(id)
                    .filter(task::task_status.eq_any(transition.from))
                    .filter(task::task_lease_until.lt(now)),
            )
            .set((task::task_status.eq(transition.to), task::u_time.eq(now)))
            .execute(c)
            .await?;
            if updated == 1 {
                moved.push(id);
            }
        }
        Ok(moved)
    })?;
    attempts::close_open(conn, &moved, AttemptOutcome::LeaseExpired, "", now).await?;
    Ok(moved)
}

/// Pending tasks untouched since `before` (their message was lost): touched
/// now, so the next sweep does not dispatch them again at once.
pub async fn stale_pending(conn: &mut Conn, before: NaiveDateTime, now: NaiveDateTime) -> Result<Vec<i64>, DbError> {
    on_conn!(conn, c => {
        let stale: Vec<i64> = sweeper_look!(TaskStatus::Pending, task::u_time, before).load(c).await?;
        if !stale.is_empty() {
            diesel::update(task::table.filter(task::task_id.eq_any(&stale)).filter(task::task_status.eq(TaskStatus::Pending)))
                .set(task::u_time.eq(now))
                .execute(c)
                .await?;
        }
        Ok(stale)
    })
}

/// started → pending for tasks whose worker stopped (this process was asked
/// to stop, or a previous run of it left them): another run or instance picks
/// them up. Their open attempts end with `outcome`.
pub async fn hand_back(
    conn: &mut Conn,
    task_ids: &[i64],
    outcome: AttemptOutcome,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    let transition = state::task::HAND_BACK;
    in_transaction!(conn => {
        let handed = on_conn!(conn, c => {
            Ok(diesel::update(task::table.filter(task::task_id.eq_any(task_ids)).filter(task::task_status.eq_any(transition.from)))
                .set((task::task_status.eq(transition.to), task::u_time.eq(now)))
                .execute(c)
                .await?)
        })?;
        attempts::close_open(conn, task_ids, outcome, "", now).await?;
        Ok(handed)
    })
}
