//! The invariant that makes retries, several workers and crash recovery safe:
//! every transition is a conditional update, so a task is advanced once, and
//! a job ends once — checked on every backend, with racing callers.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use xingqiao::db::models::{NewJob, NewTask};
use xingqiao::db::tasks::{Recorded, Started};
use xingqiao::db::{Database, DbError, attempts, jobs, tasks};
use xingqiao::engine::now;
use xingqiao::state::{AttemptOutcome, JobStatus, TaskStatus};
use xingqiao_tests::rows::{database, later, new_job, new_task};
use xingqiao_tests::{TestDb, per_backend};

async fn create(db: &Database, job: NewJob, rows: Vec<NewTask>) -> (i64, Vec<i64>) {
    jobs::create(&mut db.conn().await.unwrap(), job, rows).await.unwrap()
}

/// A database of `backend` with one job of two pending tasks, a and b: the
/// database (kept while it lives), its pool, the job and the tasks' ids.
async fn two_independent_tasks(backend: &str, name: &str) -> (TestDb, Arc<Database>, i64, Vec<i64>) {
    let test_db = TestDb::create(backend).await;
    let db = database(&test_db).await;
    let rows = vec![new_task("a", &[], &[]), new_task("b", &[], &[])];
    let (job_id, ready) = create(&db, new_job(name, 2), rows).await;
    (test_db, db, job_id, ready)
}

/// pending → started by a worker of instance "test".
async fn start(db: &Database, task_id: i64, lease_until: NaiveDateTime) -> Option<Started> {
    tasks::start(&mut db.conn().await.unwrap(), task_id, "test", lease_until, now()).await.unwrap()
}

async fn finish(db: &Database, started: &Started) -> Option<Recorded> {
    tasks::finish(&mut db.conn().await.unwrap(), &started.task, started.attempt_id, Some("{}".into()), now(), None)
        .await
        .unwrap()
}

/// Finishes, asking to start the first released dependent for instance "test".
async fn finish_and_carry_on(db: &Database, started: &Started, result: &str) -> Option<Recorded> {
    let carry_on = tasks::CarryOn { instance: "test", lease_until: later() };
    let data = Some(result.to_owned());
    tasks::finish(&mut db.conn().await.unwrap(), &started.task, started.attempt_id, data, now(), Some(carry_on))
        .await
        .unwrap()
}

async fn expired_leases(db: &Database) -> Vec<i64> {
    tasks::expired_leases(&mut db.conn().await.unwrap(), now()).await.unwrap()
}

per_backend! {
    async fn a_pending_task_is_started_by_exactly_one_of_many_racing_workers(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let (_, ready) = create(&db, new_job("race", 1), vec![new_task("a", &[], &[])]).await;
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let db = db.clone();
                let task_id = ready[0];
                tokio::spawn(async move { start(&db, task_id, later()).await.is_some() })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            winners += usize::from(racer.await.unwrap());
        }
        assert_eq!(winners, 1, "{backend}");
        let attempts = attempts::of_tasks(&mut db.conn().await.unwrap(), &ready).await.unwrap();
        assert_eq!(attempts.len(), 1, "{backend}: one attempt for the one start");
    }
}

per_backend! {
    /// A task taken from the queue starts with its context as stored: its
    /// row as the start left it, its job, its dependencies' results and the
    /// attempt just opened (PostgreSQL reads them in the round trip of the
    /// start's UPDATE and the next one, so the reads must follow it).
    async fn a_task_started_from_the_queue_gets_its_context_as_stored(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let rows = vec![new_task("root", &[], &["child"]), new_task("child", &["root"], &[])];
        let (job_id, ready) = create(&db, new_job("context", 2), rows).await;
        let root = start(&db, ready[0], later()).await.unwrap();
        let released = finish(&db, &root).await.unwrap().ready;
        let child = start(&db, released[0], later()).await.unwrap();
        let mut conn = db.conn().await.unwrap();
        let listed = tasks::list(&mut conn, job_id, None).await.unwrap();
        assert_eq!(child.task, listed[1], "{backend}: the started task as stored");
        assert_eq!(child.task.task_status, TaskStatus::Started, "{backend}");
        assert_eq!(child.dependencies, vec![listed[0].clone()], "{backend}: its dependency, finished");
        let stored_job = jobs::find(&mut conn, Some(job_id), None).await.unwrap().unwrap();
        assert_eq!(child.job, stored_job, "{backend}: its job as stored");
        let opened = attempts::of_tasks(&mut conn, &released).await.unwrap();
        assert_eq!(opened.iter().map(|a| a.attempt_id).collect::<Vec<_>>(), vec![child.attempt_id], "{backend}");
        assert_eq!(start(&db, released[0], later()).await, None, "{backend}: started once");
    }
}

per_backend! {
    async fn a_result_is_recorded_once_and_parallel_sinks_end_the_job_once(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        // root -> (left, right): two sinks that finish at the same time.
        let rows = vec![
            new_task("root", &[], &["left", "right"]),
            new_task("left", &["root"], &[]),
            new_task("right", &["root"], &[]),
        ];
        let (job_id, ready) = create(&db, new_job("sinks", 3), rows).await;
        let root = start(&db, ready[0], later()).await.unwrap();
        let recorded = finish(&db, &root).await.unwrap();
        assert_eq!(recorded.ready.len(), 2, "{backend}: both sinks released");
        assert_eq!(finish(&db, &root).await, None, "{backend}: twice is a no-op");

        let mut sinks = Vec::new();
        for id in &recorded.ready {
            sinks.push(start(&db, *id, later()).await.unwrap());
        }
        let finishes: Vec<_> = sinks
            .into_iter()
            .map(|started| {
                let db = db.clone();
                tokio::spawn(async move { finish(&db, &started).await })
            })
            .collect();
        let mut ends = 0;
        for finish in finishes {
            ends += usize::from(finish.await.unwrap().unwrap().job_end.is_some());
        }
        assert_eq!(ends, 1, "{backend}: the job ends exactly once");
        let job = jobs::find(&mut db.conn().await.unwrap(), Some(job_id), None).await.unwrap().unwrap();
        assert_eq!((job.job_status, job.tasks_unfinished), (JobStatus::Finished, 0), "{backend}");
        let outcomes: Vec<Option<AttemptOutcome>> = attempts::of_tasks(&mut db.conn().await.unwrap(), &[root.task.task_id])
            .await
            .unwrap()
            .iter()
            .map(|attempt| attempt.outcome)
            .collect();
        assert_eq!(outcomes, [Some(AttemptOutcome::Finished)], "{backend}: the attempt closed once");
    }
}

per_backend! {
    async fn a_finishing_worker_starts_the_first_released_dependent_for_itself_in_the_same_transaction(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        // root -> (left, right) -> sink
        let rows = vec![
            new_task("root", &[], &["left", "right"]),
            new_task("left", &["root"], &["sink"]),
            new_task("right", &["root"], &["sink"]),
            new_task("sink", &["left", "right"], &[]),
        ];
        let (job_id, ready) = create(&db, new_job("carry", 4), rows).await;
        let root = start(&db, ready[0], later()).await.unwrap();
        let recorded = finish_and_carry_on(&db, &root, r#"{"from": "root"}"#).await.unwrap();
        let left = recorded.next.expect("the first released dependent is started for the finisher");
        assert_eq!(left.task.task_label, "left", "{backend}");
        assert_eq!(left.task.task_status, TaskStatus::Started, "{backend}");
        assert_eq!(left.job.job_id, job_id, "{backend}");
        // Its context is read after the result was written, in the same transaction.
        let deps: Vec<_> = left.dependencies.iter().map(|d| (d.task_label.as_str(), d.ret_data.as_deref())).collect();
        assert_eq!(deps, [("root", Some(r#"{"from": "root"}"#))], "{backend}");
        // The other one goes through the queue as before.
        assert_eq!(recorded.ready.len(), 1, "{backend}");
        let right_id = recorded.ready[0];
        let right = tasks::get(&mut db.conn().await.unwrap(), right_id).await.unwrap().unwrap();
        assert_eq!((right.task_label.as_str(), right.task_status), ("right", TaskStatus::Pending), "{backend}");
        // The carried task is owned like any started one: one open attempt, for
        // this instance; a message for it that arrives anyway starts nothing.
        let attempts = attempts::of_tasks(&mut db.conn().await.unwrap(), &[left.task.task_id]).await.unwrap();
        let seen: Vec<_> = attempts.iter().map(|a| (a.attempt_id, a.instance.as_str(), a.outcome)).collect();
        assert_eq!(seen, [(left.attempt_id, "test", None)], "{backend}");
        let stored = tasks::get(&mut db.conn().await.unwrap(), left.task.task_id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&left.task), "{backend}: the carried task as stored");
        assert!(start(&db, left.task.task_id, later()).await.is_none(), "{backend}: started once");

        // The sink waits for both: the first finish releases nothing.
        let right = start(&db, right_id, later()).await.unwrap();
        let first = finish_and_carry_on(&db, &left, "{}").await.unwrap();
        assert!(first.next.is_none() && first.ready.is_empty(), "{backend}");
        let last = finish_and_carry_on(&db, &right, "{}").await.unwrap();
        let sink = last.next.expect("the sink is carried by the worker of its last dependency");
        assert_eq!(sink.dependencies.len(), 2, "{backend}");
        assert!(last.job_end.is_none(), "{backend}");
        let end = finish_and_carry_on(&db, &sink, "{}").await.unwrap();
        assert!(end.next.is_none(), "{backend}");
        assert_eq!(end.job_end.map(|e| e.job_status), Some(JobStatus::Finished), "{backend}");
    }
}

per_backend! {
    async fn a_carried_task_whose_worker_died_is_handed_back_when_its_lease_expires(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let rows = vec![new_task("a", &[], &["b"]), new_task("b", &["a"], &[])];
        let (_, ready) = create(&db, new_job("carry-died", 2), rows).await;
        let a = start(&db, ready[0], later()).await.unwrap();
        let carry_on = tasks::CarryOn { instance: "test", lease_until: now() - chrono::Duration::seconds(1) };
        let recorded = tasks::finish(&mut db.conn().await.unwrap(), &a.task, a.attempt_id, None, now(), Some(carry_on))
            .await
            .unwrap()
            .unwrap();
        let b = recorded.next.unwrap();
        // Nobody runs it (the worker was killed): the sweep takes it over.
        assert_eq!(expired_leases(&db).await, [b.task.task_id], "{backend}");
        let row = tasks::get(&mut db.conn().await.unwrap(), b.task.task_id).await.unwrap().unwrap();
        assert_eq!(row.task_status, TaskStatus::Pending, "{backend}");
        assert_eq!(finish(&db, &b).await, None, "{backend}: the dead worker's attempt records nothing");
    }
}

per_backend! {
    /// Only the close of its own attempt lets a result move its task: an
    /// attempt someone else closed records nothing, even while its task is
    /// still `started` (PostgreSQL sends the close, the task's move and the
    /// countdowns together, so the move and the countdowns must check the
    /// close themselves).
    async fn a_result_whose_attempt_someone_else_closed_records_nothing(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let rows = vec![new_task("a", &[], &["b"]), new_task("b", &["a"], &[])];
        let (job_id, ready) = create(&db, new_job("closed", 2), rows).await;
        let a = start(&db, ready[0], later()).await.unwrap();
        let mut conn = db.conn().await.unwrap();
        attempts::close_open(&mut conn, &ready, AttemptOutcome::Aborted, "", now()).await.unwrap();
        drop(conn);
        assert_eq!(finish_and_carry_on(&db, &a, "{}").await, None, "{backend}: the closed attempt records nothing");
        let mut conn = db.conn().await.unwrap();
        let row = tasks::get(&mut conn, a.task.task_id).await.unwrap().unwrap();
        assert_eq!((row.task_status, row.ret_data.as_deref()), (TaskStatus::Started, None), "{backend}: the task did not move");
        let job = jobs::find(&mut conn, Some(job_id), None).await.unwrap().unwrap();
        assert_eq!((job.job_status, job.tasks_unfinished), (JobStatus::Started, 2), "{backend}: nor did its job");
        let dependent = tasks::list(&mut conn, job_id, Some(TaskStatus::Waiting)).await.unwrap();
        let waiting: Vec<_> = dependent.iter().map(|row| (row.task_label.as_str(), row.task_waiting_on)).collect();
        assert_eq!(waiting, [("b", 1)], "{backend}: nor was its dependent counted down");
    }
}

per_backend! {
    /// A finish counts its job down once and each `waiting` dependent once,
    /// however many dependents it has (MariaDB does both in one joined
    /// UPDATE), copies its result to the job when it is saved, and releases
    /// only the dependents it leaves waiting on nothing, in creation order.
    async fn a_finish_counts_its_job_down_once_and_each_waiting_dependent_once(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        // root -> (a, b, c), other -> b; root's result is the job's.
        let root = NewTask { task_is_save: true, ..new_task("root", &[], &["a", "b", "c"]) };
        let rows = vec![
            root,
            new_task("other", &[], &["b"]),
            new_task("a", &["root"], &[]),
            new_task("b", &["root", "other"], &[]),
            new_task("c", &["root"], &[]),
        ];
        let (job_id, ready) = create(&db, new_job("countdown", 5), rows).await;
        let root = start(&db, ready[0], later()).await.unwrap();
        let result = Some(r#"{"saved": true}"#.to_owned());
        let mut conn = db.conn().await.unwrap();
        let recorded = tasks::finish(&mut conn, &root.task, root.attempt_id, result.clone(), now(), None)
            .await
            .unwrap()
            .unwrap();
        let all = tasks::list(&mut conn, job_id, None).await.unwrap();
        let id_of = |label: &str| all.iter().find(|row| row.task_label == label).unwrap().task_id;
        assert_eq!(recorded.ready, [id_of("a"), id_of("c")], "{backend}: a and c released, in creation order");
        let seen: Vec<_> = all.iter().map(|row| (row.task_label.as_str(), row.task_status, row.task_waiting_on)).collect();
        let expected = [
            ("root", TaskStatus::Finished, 0),
            ("other", TaskStatus::Pending, 0),
            ("a", TaskStatus::Pending, 0),
            ("b", TaskStatus::Waiting, 1),
            ("c", TaskStatus::Pending, 0),
        ];
        assert_eq!(seen, expected, "{backend}");
        let job = jobs::find(&mut conn, Some(job_id), None).await.unwrap().unwrap();
        assert_eq!((job.tasks_unfinished, job.ret_data.as_deref()), (4, result.as_deref()), "{backend}: one countdown, the result saved");
    }
}

per_backend! { networked
    /// Ending a job from outside (cancel) takes the rows of a finish in a
    /// finish's order: a task's attempt before the job's row. Here another
    /// transaction holds a closed attempt, as a finish does before it counts
    /// its job down, and then writes the job's row: the end must be waiting
    /// on the attempt, not holding the job row (which would be a deadlock,
    /// one of the two failing).
    async fn ending_a_job_waits_for_a_finish_under_way_without_a_deadlock(backend: &str) {
        let (_test_db, db, job_id, ready) = two_independent_tasks(backend, "ending").await;
        let a = start(&db, ready[0], later()).await.unwrap();
        let mut finisher = db.conn().await.unwrap();
        finisher.begin().await.unwrap();
        assert!(attempts::close(&mut finisher, a.attempt_id, AttemptOutcome::Finished, "OK", now()).await.unwrap());
        let ending = {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                jobs::end(&mut db.conn().await.unwrap(), job_id, "ERR_JOB_CANCELLED", now()).await
            })
        };
        // Long enough for the end to reach the lock it waits for.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!ending.is_finished(), "{backend}: the end did not wait for the attempt being closed");
        let job_written = jobs::invalidate(&mut finisher, job_id, now()).await;
        let committed = finisher.finish(job_written).await;
        assert!(committed.is_ok(), "{backend}: the finish could not write its job's row: {committed:?}");
        let ended = ending.await.unwrap();
        assert!(ended.as_ref().is_ok_and(|ended| *ended), "{backend}: the end failed: {ended:?}");
    }
}

per_backend! { networked
    /// Lease renewal never waits for a task row another transaction holds
    /// (a group commit finishing it): waiting while holding the rows it
    /// renewed already could close a cycle with that transaction. It renews
    /// the others and leaves that one to the next tick.
    async fn renewing_leases_skips_a_task_whose_row_another_transaction_holds(backend: &str) {
        let (_test_db, db, _, ready) = two_independent_tasks(backend, "renewals").await;
        let first_lease = later();
        for &task_id in &ready {
            start(&db, task_id, first_lease).await.unwrap();
        }
        let mut holder = db.conn().await.unwrap();
        holder.begin().await.unwrap();
        tasks::renew_leases(&mut holder, &ready[..1], first_lease).await.unwrap();
        let renewed_until = first_lease + chrono::Duration::minutes(5);
        let mut renewer = db.conn().await.unwrap();
        let renewing = tasks::renew_leases(&mut renewer, &ready, renewed_until);
        let renewed = tokio::time::timeout(std::time::Duration::from_secs(5), renewing).await;
        assert!(renewed.is_ok_and(|renewed| renewed.is_ok()), "{backend}: the renewal waited for the held row");
        holder.finish(Ok(())).await.unwrap();
        let mut conn = db.conn().await.unwrap();
        let [a, b] = [ready[0], ready[1]];
        let lease = |task: Option<xingqiao::db::models::TaskRow>| task.unwrap().task_lease_until;
        assert_eq!(lease(tasks::get(&mut conn, a).await.unwrap()), Some(first_lease), "{backend}: a was held, left");
        assert_eq!(lease(tasks::get(&mut conn, b).await.unwrap()), Some(renewed_until), "{backend}: b renewed");
    }
}

/// Whether another connection sees job `id` as valid (committed state only).
async fn seen_valid(db: &Database, id: i64) -> bool {
    jobs::find(&mut db.conn().await.unwrap(), Some(id), None).await.unwrap().is_some()
}

per_backend! {
    /// A transaction's first statement is inside it: no other connection sees
    /// it before the commit, and a rollback undoes it. (On PostgreSQL `BEGIN`
    /// goes out without waiting for its answer, ahead of that statement.) A
    /// savepoint inside rolls back alone, and the rest commits.
    async fn a_transaction_keeps_its_first_statement_until_it_commits(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let (first, _) = create(&db, new_job("first", 1), vec![new_task("a", &[], &[])]).await;
        let (second, _) = create(&db, new_job("second", 1), vec![new_task("a", &[], &[])]).await;
        let mut conn = db.conn().await.unwrap();
        conn.begin().await.unwrap();
        assert!(jobs::invalidate(&mut conn, first, now()).await.unwrap());
        assert!(seen_valid(&db, first).await, "{backend}: another connection saw the write before the commit");
        let rolled_back = conn.finish(Err::<(), _>(DbError::Unavailable(String::from("the test gives up")))).await;
        assert!(rolled_back.is_err());
        assert!(seen_valid(&db, first).await, "{backend}: the rollback did not undo the first statement");

        conn.begin().await.unwrap();
        assert!(jobs::invalidate(&mut conn, first, now()).await.unwrap());
        conn.begin().await.unwrap();
        assert!(jobs::invalidate(&mut conn, second, now()).await.unwrap());
        assert!(conn.finish(Err::<(), _>(DbError::Unavailable(String::from("a savepoint gives up")))).await.is_err());
        conn.finish(Ok(())).await.unwrap();
        assert!(!seen_valid(&db, first).await, "{backend}: the commit did not keep the first statement");
        assert!(seen_valid(&db, second).await, "{backend}: the savepoint's rollback did not undo its statement");
    }
}

per_backend! {
    async fn a_task_whose_lease_expired_goes_back_to_pending_once(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let (_, ready) = create(&db, new_job("lease", 1), vec![new_task("a", &[], &[])]).await;
        let expired = now() - chrono::Duration::seconds(1);
        let first = start(&db, ready[0], expired).await.unwrap();
        assert_eq!(expired_leases(&db).await, ready, "{backend}");
        assert_eq!(expired_leases(&db).await, Vec::<i64>::new(), "{backend}: once");
        // A renewed lease is not taken over.
        let second = start(&db, ready[0], expired).await.unwrap();
        tasks::renew_leases(&mut db.conn().await.unwrap(), &ready, later()).await.unwrap();
        assert_eq!(expired_leases(&db).await, Vec::<i64>::new(), "{backend}: renewed");
        // The first attempt's late result is not recorded: its task is the second's now.
        assert_eq!(finish(&db, &first).await, None, "{backend}: a taken-over attempt records nothing");
        assert!(finish(&db, &second).await.is_some(), "{backend}: the live attempt records its result");
        let attempts = attempts::of_tasks(&mut db.conn().await.unwrap(), &ready).await.unwrap();
        let seen: Vec<(i32, Option<AttemptOutcome>)> = attempts.iter().map(|a| (a.attempt_no, a.outcome)).collect();
        assert_eq!(
            seen,
            [(0, Some(AttemptOutcome::LeaseExpired)), (0, Some(AttemptOutcome::Finished))],
            "{backend}: the same attempt number ran twice, and it shows"
        );
    }
}

#[derive(Debug, diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The prepared statements the database has seen on `db`'s one connection:
/// on MariaDB how many were prepared in this session (this query's own
/// included), on PostgreSQL how many UPDATEs of attempts it keeps prepared
/// (closing an attempt is one).
async fn prepared_statements(db: &Database) -> i64 {
    use diesel_async::RunQueryDsl;
    let sql = match db.backend() {
        "mysql" => {
            "SELECT CAST(variable_value AS SIGNED) AS n FROM information_schema.session_status \
             WHERE variable_name = 'COM_STMT_PREPARE'"
        }
        _ => {
            "SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'UPDATE \"workflow_task_attempt\"%'"
        }
    };
    let mut conn = db.conn().await.unwrap();
    xingqiao::on_conn!(&mut conn, c => Ok(diesel::sql_query(sql).get_result::<Count>(c).await?)).unwrap().n
}

per_backend! { networked
    async fn a_task_run_prepares_its_statements_once_per_connection(backend: &str) {
        let test_db = TestDb::create(backend).await;
        // One connection: every statement of the task path goes through it.
        let db = Arc::new(Database::connect(&test_db.url, 1).unwrap());
        db.migrate(&test_db.url).await.unwrap();
        let run = |name: &'static str| {
            let db = db.clone();
            async move {
                let rows = vec![new_task("a", &[], &["b"]), new_task("b", &["a"], &[])];
                let (_, ready) = create(&db, new_job(name, 2), rows).await;
                let a = start(&db, ready[0], later()).await.unwrap();
                let b = finish_and_carry_on(&db, &a, "{}").await.unwrap().next.unwrap();
                assert!(finish_and_carry_on(&db, &b, "{}").await.unwrap().job_end.is_some());
            }
        };
        run("first").await;
        let before = prepared_statements(&db).await;
        run("second").await;
        run("third").await;
        let after = prepared_statements(&db).await;
        if backend == "mysql" {
            assert_eq!(after - before, 1, "{backend}: only the counting query was prepared again");
        } else {
            assert_eq!(before, 1, "{backend}: closing an attempt is kept prepared");
            assert_eq!(after, before, "{backend}: and not prepared again");
        }
    }
}

/// One column as the database describes it after the migrations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, diesel::QueryableByName)]
struct DbColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    is_nullable: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    is_pk: i64,
}

/// Every column of every table the migrations made (diesel's own table left out).
async fn migrated_columns(db: &Database) -> Vec<DbColumn> {
    use diesel_async::RunQueryDsl;
    let sql = match db.backend() {
        "sqlite" => {
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
             CASE WHEN p.\"notnull\" = 0 AND p.pk = 0 THEN 'YES' ELSE 'NO' END AS is_nullable, \
             CAST(p.pk > 0 AS BIGINT) AS is_pk \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite!_%' ESCAPE '!' \
             AND m.name <> '__diesel_schema_migrations'"
        }
        "mysql" => {
            "SELECT CAST(table_name AS CHAR) AS table_name, CAST(column_name AS CHAR) AS column_name, \
             CAST(column_type AS CHAR) AS data_type, CAST(is_nullable AS CHAR) AS is_nullable, \
             CAST(column_key = 'PRI' AS SIGNED) AS is_pk \
             FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name <> '__diesel_schema_migrations'"
        }
        _ => {
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
             c.data_type::text AS data_type, c.is_nullable::text AS is_nullable, \
             (SELECT COUNT(*) FROM information_schema.table_constraints t \
              JOIN information_schema.key_column_usage k \
              ON k.constraint_name = t.constraint_name AND k.table_name = t.table_name \
              WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_name = c.table_name \
              AND k.column_name = c.column_name)::bigint AS is_pk \
             FROM information_schema.columns c WHERE c.table_schema = 'public' \
             AND c.table_name <> '__diesel_schema_migrations'"
        }
    };
    let mut conn = db.conn().await.unwrap();
    let mut columns: Vec<DbColumn> = xingqiao::on_conn!(&mut conn, c => {
        Ok(diesel::sql_query(sql).load::<DbColumn>(c).await?)
    })
    .unwrap();
    columns.sort();
    columns
}

/// What `host/src/db/schema.rs` declares: (table, column, diesel type, primary key).
fn declared_columns() -> Vec<(String, String, String, bool)> {
    let schema = include_str!("../host/src/db/schema.rs");
    let mut declared = Vec::new();
    let mut table = None;
    let mut keys: Vec<String> = Vec::new();
    for line in schema.lines().map(str::trim) {
        if let Some((name, rest)) = line.split_once(" (")
            && let Some(key_list) = rest.strip_suffix(") {")
        {
            table = Some(name.to_owned());
            keys = key_list.split(',').map(|k| k.trim().to_owned()).collect();
        } else if let (Some(table), Some((column, kind))) = (&table, line.split_once(" -> ")) {
            let kind = kind.trim_end_matches(',').to_owned();
            declared.push((table.clone(), column.to_owned(), kind, keys.iter().any(|k| k == column)));
        } else if line == "}" {
            table = None;
        }
    }
    declared.sort();
    declared
}

/// Whether a database type is what diesel's SQL type maps to on `backend`.
fn type_matches(backend: &str, diesel_type: &str, db_type: &str) -> bool {
    let db_type = db_type.to_ascii_lowercase();
    let base = diesel_type.strip_prefix("Nullable<").and_then(|t| t.strip_suffix('>')).unwrap_or(diesel_type);
    let accepted: &[&str] = match (backend, base) {
        ("sqlite", "BigInt") => &["bigint", "integer"],
        ("sqlite", "Integer") => &["integer"],
        ("sqlite", "Text") => &["varchar", "char", "text"],
        ("sqlite", "Double") => &["double"],
        ("sqlite", "Bool") => &["boolean"],
        ("sqlite", "Timestamp") => &["timestamp"],
        ("sqlite", "Binary") => &["blob"],
        ("mysql", "BigInt") => &["bigint"],
        ("mysql", "Integer") => &["int"],
        ("mysql", "Text") => &["varchar", "char", "text", "mediumtext", "longtext"],
        ("mysql", "Double") => &["double"],
        ("mysql", "Bool") => &["tinyint(1)"],
        ("mysql", "Timestamp") => &["datetime"],
        ("mysql", "Binary") => &["blob", "mediumblob", "longblob"],
        ("postgres", "BigInt") => &["bigint"],
        ("postgres", "Integer") => &["integer"],
        ("postgres", "Text") => &["character varying", "character", "text"],
        ("postgres", "Double") => &["double precision"],
        ("postgres", "Bool") => &["boolean"],
        ("postgres", "Timestamp") => &["timestamp without time zone"],
        ("postgres", "Binary") => &["bytea"],
        _ => &[],
    };
    // `varchar(64)` is a varchar; `int(11)` an int; `tinyint(1)` must match whole.
    accepted.iter().any(|t| db_type == *t || (!t.contains('(') && db_type.split('(').next() == Some(*t)))
}

per_backend! {
    async fn the_migrations_create_what_schema_rs_declares(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let migrated = migrated_columns(&db).await;
        let declared = declared_columns();
        let migrated_names: Vec<(&str, &str)> =
            migrated.iter().map(|c| (c.table_name.as_str(), c.column_name.as_str())).collect();
        let declared_names: Vec<(&str, &str)> = declared.iter().map(|d| (d.0.as_str(), d.1.as_str())).collect();
        assert_eq!(migrated_names, declared_names, "{backend}: tables and columns differ from schema.rs");
        for (column, (table, name, kind, primary)) in migrated.iter().zip(&declared) {
            assert!(
                type_matches(backend, kind, &column.data_type),
                "{backend}: {table}.{name} is {} in the database, {kind} in schema.rs",
                column.data_type
            );
            let nullable = column.is_nullable == "YES";
            assert_eq!(nullable, kind.starts_with("Nullable<"), "{backend}: {table}.{name} nullability");
            assert_eq!(column.is_pk > 0, *primary, "{backend}: {table}.{name} primary key");
        }
    }
}

per_backend! {
    async fn creating_a_job_gives_its_id_and_its_ready_tasks_in_order_across_insert_chunks(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        // 901 tasks, over two INSERT chunks of 400: roots (ready at once) and
        // their dependents (waiting) interleaved.
        let rows: Vec<NewTask> = (0..901)
            .map(|i| {
                if i % 2 == 0 {
                    new_task(&format!("r{i}"), &[], &[&format!("w{}", i + 1)])
                } else {
                    new_task(&format!("w{i}"), &[&format!("r{}", i - 1)], &[])
                }
            })
            .collect();
        create(&db, new_job("before", 1), vec![new_task("a", &[], &[])]).await;
        let (job_id, ready) = create(&db, new_job("chunks", 901), rows).await;

        let mut conn = db.conn().await.unwrap();
        let found = jobs::find(&mut conn, None, Some("chunks")).await.unwrap().unwrap();
        assert_eq!(found.job_id, job_id, "{backend}: the id given is the new job's");
        let pending = tasks::list(&mut conn, job_id, Some(TaskStatus::Pending)).await.unwrap();
        let mut expected: Vec<i64> = pending.iter().map(|task| task.task_id).collect();
        expected.sort_unstable();
        assert_eq!(expected.len(), 451, "{backend}");
        assert_eq!(ready, expected, "{backend}: every ready task, ascending, and no waiting one");
    }
}

/// So the MariaDB runs of this suite take `INSERT … RETURNING`; the path
/// MySQL takes (ids read back) is `mysql_read_back.rs`'s.
#[tokio::test]
async fn mariadb_is_found_to_give_new_ids_back_in_the_insert() {
    let test_db = TestDb::create("mysql").await;
    let db = database(&test_db).await;
    drop(db.conn().await.unwrap());
    assert!(xingqiao::db::mariadb_returning::available());
}

per_backend! {
    async fn creating_and_starting_a_job_starts_its_first_ready_task_with_an_attempt_and_leaves_the_rest_pending(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        // a and b ready at once, c waits for both.
        let rows = vec![new_task("a", &[], &["c"]), new_task("b", &[], &["c"]), new_task("c", &["a", "b"], &[])];
        let creation = jobs::Creation { job: new_job("first", 3), tasks: rows, start_first: Some(later()) };
        let mut conn = db.conn().await.unwrap();
        let created = jobs::create_many(&mut conn, "creator", &[creation]).await.unwrap().pop().unwrap();
        drop(conn);
        let (job_id, ready) = (created.job_id, created.ready);
        let started = created.started.unwrap_or_else(|| panic!("{backend}: the first ready task is started"));
        assert_eq!(started.task.task_label, "a", "{backend}");
        assert_eq!(started.task.task_status, TaskStatus::Started, "{backend}");
        assert_eq!(started.job.job_id, job_id, "{backend}: the job as parameter resolution needs it");
        assert!(started.dependencies.is_empty(), "{backend}");

        let mut conn = db.conn().await.unwrap();
        let listed = tasks::list(&mut conn, job_id, None).await.unwrap();
        // Its rows are the ones inserted, not read back: they must be what is stored.
        assert_eq!(started.task, listed[0], "{backend}: the started task as stored");
        let stored_job = jobs::find(&mut conn, Some(job_id), None).await.unwrap().unwrap();
        assert_eq!(started.job, stored_job, "{backend}: its job as stored");
        let statuses: Vec<(&str, TaskStatus)> = listed.iter().map(|t| (t.task_label.as_str(), t.task_status)).collect();
        assert_eq!(
            statuses,
            [("a", TaskStatus::Started), ("b", TaskStatus::Pending), ("c", TaskStatus::Waiting)],
            "{backend}"
        );
        assert_eq!(ready, [listed[1].task_id], "{backend}: only b is left for the queue");
        assert!(listed[0].task_lease_until.is_some(), "{backend}: a started task has a lease, so a crash hands it back");
        let attempts = attempts::of_tasks(&mut conn, &[started.task.task_id]).await.unwrap();
        assert_eq!(attempts.len(), 1, "{backend}: one open attempt");
        assert_eq!(attempts[0].attempt_id, started.attempt_id, "{backend}");
        assert_eq!(attempts[0].instance, "creator", "{backend}");
        drop(conn);

        // It records as any started task: the job goes on.
        let recorded = finish(&db, &started).await.unwrap();
        assert!(recorded.ready.is_empty() && recorded.job_end.is_none(), "{backend}: c still waits for b");
    }
}

per_backend! {
    async fn several_jobs_created_in_one_transaction_each_get_their_own_ids_and_ready_tasks(backend: &str) {
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let creations = [
            jobs::Creation {
                job: new_job("one", 2),
                tasks: vec![new_task("a", &[], &["b"]), new_task("b", &["a"], &[])],
                start_first: None,
            },
            jobs::Creation { job: new_job("two", 1), tasks: vec![new_task("a", &[], &[])], start_first: Some(later()) },
            jobs::Creation {
                job: new_job("three", 2),
                tasks: vec![new_task("a", &[], &[]), new_task("b", &[], &[])],
                start_first: Some(later()),
            },
        ];
        let mut conn = db.conn().await.unwrap();
        let created = jobs::create_many(&mut conn, "creator", &creations).await.unwrap();
        assert_eq!(created.len(), 3, "{backend}");
        for (creation, created) in creations.iter().zip(&created) {
            let name = &creation.job.job_name;
            let found = jobs::find(&mut conn, None, Some(name)).await.unwrap().unwrap();
            assert_eq!(found.job_id, created.job_id, "{backend}: {name}'s id");
            let pending = tasks::list(&mut conn, created.job_id, Some(TaskStatus::Pending)).await.unwrap();
            let pending: Vec<i64> = pending.iter().map(|task| task.task_id).collect();
            assert_eq!(created.ready, pending, "{backend}: {name}'s ready tasks");
            let started = tasks::list(&mut conn, created.job_id, Some(TaskStatus::Started)).await.unwrap();
            assert_eq!(
                created.started.as_ref().map(|started| &started.task),
                started.first(),
                "{backend}: {name}'s started task"
            );
            // The attempts of the started tasks are opened together: each
            // must come back to its own task.
            if let Some(started) = &created.started {
                let opened = attempts::of_tasks(&mut conn, &[started.task.task_id]).await.unwrap();
                let opened: Vec<(i64, &str)> = opened.iter().map(|a| (a.attempt_id, a.instance.as_str())).collect();
                assert_eq!(opened, [(started.attempt_id, "creator")], "{backend}: {name}'s attempt");
            }
        }
        assert!(created[0].started.is_none(), "{backend}: one is not started here");
        assert!(created[1].ready.is_empty(), "{backend}: two's only task is started, not queued");
        assert_eq!(created[2].ready.len(), 1, "{backend}: three's second task is queued");
        assert!(created[2].started.is_some(), "{backend}: three's first task is started");
    }
}

per_backend! { current_thread
    /// create_job's group commit: calls that come while a transaction is being
    /// written share the next one; a name taken fails only its own call.
    async fn concurrent_creations_share_a_transaction_and_a_taken_name_fails_alone(backend: &str) {
        use xingqiao::engine::create_batch::CreateBatches;
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let metrics = Arc::new(xingqiao::metrics::Metrics::default());
        let batches = CreateBatches::new((*db).clone(), String::from("creator"), metrics.clone());
        let creation =
            |name: &str| jobs::Creation { job: new_job(name, 1), tasks: vec![new_task("a", &[], &[])], start_first: None };
        // On one thread, every call below is queued before the writer first runs.
        let eight = (0..8).map(|i| batches.create(creation(&format!("batch-{i}"))));
        let created = futures_util::future::join_all(eight).await;
        assert!(created.iter().all(Result::is_ok), "{backend}: {created:?}");
        assert_eq!(transactions(&metrics), (1, 8), "{backend}: eight jobs, one transaction");

        let names = ["alone-0", "alone-1", "batch-3", "alone-2"];
        let created = futures_util::future::join_all(names.map(|name| batches.create(creation(name)))).await;
        let refused: Vec<&str> = names.iter().zip(&created).filter(|(_, c)| c.is_err()).map(|(name, _)| *name).collect();
        assert_eq!(refused, ["batch-3"], "{backend}: {created:?}");
        assert!(created[2].as_ref().is_err_and(xingqiao::db::DbError::is_unique_violation), "{backend}");
        assert_eq!(transactions(&metrics), (4, 11), "{backend}: the batch failed, the three others were written alone");
        let mut conn = db.conn().await.unwrap();
        for name in ["alone-0", "alone-1", "alone-2"] {
            assert!(jobs::find(&mut conn, None, Some(name)).await.unwrap().is_some(), "{backend}: {name} exists");
        }
    }
}

/// `(transactions, jobs)` create_job has committed, from `/metrics`.
fn transactions(metrics: &xingqiao::metrics::Metrics) -> (u64, u64) {
    histogram(metrics, "xingqiao_jobs_per_create_transaction")
}

/// `(count, sum)` of a histogram of `/metrics`.
fn histogram(metrics: &xingqiao::metrics::Metrics, name: &str) -> (u64, u64) {
    let text = metrics.render(0, None, (0, 0, 0));
    let value = |name: &str| {
        let line = text.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    (value(&format!("{name}_count ")), value(&format!("{name}_sum ")))
}

per_backend! { current_thread
    /// The group commit of task results: results that come while a transaction
    /// is being written share the next one, and each is recorded as if alone:
    /// a join is released once by the two finishing into it together, a chain
    /// carries on, a job ends with its last task, and an attempt that no
    /// longer owns its task changes nothing.
    async fn tasks_finishing_together_share_a_transaction_and_each_is_recorded_as_alone(backend: &str) {
        use xingqiao::engine::finish_batch::FinishBatches;
        let test_db = TestDb::create(backend).await;
        let db = database(&test_db).await;
        let metrics = Arc::new(xingqiao::metrics::Metrics::default());
        let batches = FinishBatches::new((*db).clone(), String::from("finisher"), metrics.clone());
        let fan_in = vec![new_task("a", &[], &["join"]), new_task("b", &[], &["join"]), new_task("join", &["a", "b"], &[])];
        let (fan_in_job, fan_in) = create(&db, new_job("fan-in", 3), fan_in).await;
        let (chain_job, chain) =
            create(&db, new_job("chain", 2), vec![new_task("x", &[], &["y"]), new_task("y", &["x"], &[])]).await;
        let (_, single) = create(&db, new_job("single", 1), vec![new_task("s", &[], &[])]).await;
        let (last_job, last) = create(&db, new_job("last", 1), vec![new_task("t", &[], &[])]).await;
        let all_tasks = |job_id| {
            let db = db.clone();
            async move {
                let rows = tasks::list(&mut db.conn().await.unwrap(), job_id, None).await.unwrap();
                rows.iter().map(|row| row.task_id).collect::<Vec<i64>>()
            }
        };
        let (join_id, y_id) = (all_tasks(fan_in_job).await[2], all_tasks(chain_job).await[1]);
        let (a, b, x, s, t) = (
            start(&db, fan_in[0], later()).await.unwrap(),
            start(&db, fan_in[1], later()).await.unwrap(),
            start(&db, chain[0], later()).await.unwrap(),
            start(&db, single[0], later()).await.unwrap(),
            start(&db, last[0], later()).await.unwrap(),
        );
        // s is recorded already: its attempt no longer owns it.
        assert!(finish(&db, &s).await.is_some(), "{backend}");
        let finishing = |started: &Started| tasks::Finishing {
            row: started.task.clone(),
            attempt_id: started.attempt_id,
            ret_data: Some(format!(r#"{{"from":"{}"}}"#, started.task.task_label)),
            now: now(),
            carry_on_until: Some(later()),
        };
        // On one thread, every result below is queued before the writer first
        // runs; the jobs come out of id order, as finishes do.
        let recorded =
            futures_util::future::join_all([&x, &s, &t, &b, &a].map(|started| batches.finish(finishing(started)))).await;
        assert_eq!(histogram(&metrics, "xingqiao_results_per_finish_transaction"), (1, 5), "{backend}: one transaction");
        let [x_done, s_done, t_done, b_done, a_done]: [_; 5] =
            recorded.into_iter().map(Result::unwrap).collect::<Vec<_>>().try_into().unwrap();
        assert_eq!(s_done, None, "{backend}: a stale attempt records nothing");

        // t was its job's last task: the job ends in the same transaction.
        let t_done = t_done.expect("t is recorded");
        assert!(t_done.job_end.is_some() && t_done.next.is_none() && t_done.ready.is_empty(), "{backend}: {t_done:?}");

        let x_done = x_done.expect("x is recorded");
        let carried = x_done.next.expect("x carries on with y");
        assert_eq!((carried.task.task_id, carried.task.task_status), (y_id, TaskStatus::Started), "{backend}");
        assert!(carried.task.task_lease_until.is_some(), "{backend}: a carried task has a lease, so a crash hands it back");
        assert_eq!(carried.dependencies[0].ret_data.as_deref(), Some(r#"{"from":"x"}"#), "{backend}: y sees x's result");
        assert!(x_done.ready.is_empty() && x_done.job_end.is_none(), "{backend}: y is carried, not queued");

        // a and b are recorded in task order: a counts the join down, b releases it.
        let (a_done, b_done) = (a_done.expect("a is recorded"), b_done.expect("b is recorded"));
        assert!(a_done.next.is_none() && a_done.ready.is_empty(), "{backend}: the join still waits for b after a");
        let join = b_done.next.expect("b carries on with the join");
        assert_eq!(join.task.task_id, join_id, "{backend}");
        let results: Vec<_> = join.dependencies.iter().map(|dep| dep.ret_data.as_deref()).collect();
        assert_eq!(results, [Some(r#"{"from":"a"}"#), Some(r#"{"from":"b"}"#)], "{backend}: the join sees both results");

        let mut conn = db.conn().await.unwrap();
        for (job_id, unfinished) in [(fan_in_job, 1), (chain_job, 1), (last_job, 0)] {
            let job = jobs::find(&mut conn, Some(job_id), None).await.unwrap().unwrap();
            assert_eq!(job.tasks_unfinished, unfinished, "{backend}: job {job_id}");
        }
        let ended = jobs::find(&mut conn, Some(last_job), None).await.unwrap().unwrap();
        assert_eq!(ended.job_status, JobStatus::Finished, "{backend}: the last task's job ended with it");
        let attempts = attempts::of_tasks(&mut conn, &[join_id, y_id]).await.unwrap();
        assert_eq!(attempts.len(), 2, "{backend}: one attempt each for the two carried tasks");
        assert!(attempts.iter().all(|attempt| attempt.instance == "finisher"), "{backend}");
    }
}

/// On SQLite, a transaction that waits for another of its process to commit
/// yields to the runtime instead of sleeping its thread in SQLite's busy
/// handler. On a runtime with one thread, the one that holds the write lock
/// across an await can then finish first. Without the turns, the waiting
/// transaction would block that thread until the busy timeout and fail with
/// "database is locked".
#[tokio::test(flavor = "current_thread")]
async fn sqlite_transactions_of_one_process_take_turns_without_blocking_their_thread() {
    let test_db = TestDb::create("sqlite").await;
    let db = database(&test_db).await;
    let (_, ids) = create(&db, new_job("turns", 1), vec![new_task("task1", &[], &[])]).await;
    let committed = std::sync::atomic::AtomicBool::new(false);
    let (holding, held) = tokio::sync::oneshot::channel::<()>();
    let holder = async {
        let mut conn = db.conn().await.unwrap();
        conn.begin().await.unwrap();
        // A write: the transaction now holds SQLite's write lock.
        tasks::renew_leases(&mut conn, &ids, later()).await.unwrap();
        holding.send(()).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        conn.finish(Ok(())).await.unwrap();
        committed.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let waiter = async {
        held.await.unwrap();
        let started = start(&db, ids[0], later()).await;
        (started, committed.load(std::sync::atomic::Ordering::SeqCst))
    };
    let ((), (started, after_commit)) = tokio::join!(holder, waiter);
    assert!(after_commit, "the waiting transaction ran before the other committed");
    assert_eq!(started.map(|s| s.task.task_status), Some(TaskStatus::Started));
}

/// One step of SQLite's `EXPLAIN QUERY PLAN`.
#[derive(Debug, diesel::QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// SQLite's plan for a query, one step per line. SQLite plans a statement
/// when it prepares it, before any value is bound, so the values bound to
/// its `?`s (diesel 2.4 wants one for each) do not change the plan.
async fn sqlite_plan(db: &Database, sql: &str) -> Vec<String> {
    use diesel_async::RunQueryDsl;
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let binds = sql.matches('?').count();
    let mut conn = db.conn().await.unwrap();
    let plan: Vec<PlanStep> = xingqiao::on_conn!(&mut conn, c => {
        let mut query = diesel::sql_query(sql.clone()).into_boxed();
        for _ in 0..binds {
            query = query.bind::<diesel::sql_types::Text, _>("x");
        }
        Ok(query.load(c).await?)
    })
    .unwrap();
    plan.into_iter().map(|step| step.detail).collect()
}

/// The sweeper looks for jobs waiting for a lock at every tick. SQLite, which
/// keeps no statistics here, used to walk the `is_valid` index for it (every
/// job); the query must be a search of the waiting jobs only.
#[tokio::test]
async fn sqlite_finds_waiting_jobs_without_walking_every_job() {
    let test_db = TestDb::create("sqlite").await;
    let db = database(&test_db).await;
    let sql = xingqiao::db::locks::waiting_jobs_sqlite_sql();
    let plan = sqlite_plan(&db, &sql).await;
    assert!(
        plan.iter().any(|step| step.starts_with("SEARCH workflow_job USING COVERING INDEX job_status_valid")),
        "{sql}\n{plan:#?}"
    );
    assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{sql}\n{plan:#?}");
}

/// list_jobs filtered by a column with its own index searches that index, in
/// job order, not every valid job. SQLite keeps no statistics here, and with an
/// index on `is_valid` (dropped in migration 000008) it walked that one.
#[tokio::test]
async fn sqlite_lists_a_namespace_or_type_through_its_own_index() {
    let test_db = TestDb::create("sqlite").await;
    let db = database(&test_db).await;
    let by_namespace = jobs::JobFilter { job_namespace: Some("ops".into()), ..Default::default() };
    let by_type = jobs::JobFilter { job_type: Some("hello".into()), ..Default::default() };
    for (filter, search) in [
        (by_namespace, "SEARCH workflow_job USING INDEX job_job_namespace (job_namespace=?)"),
        (by_type, "SEARCH workflow_job USING INDEX job_job_type (job_type=?)"),
    ] {
        let sql = jobs::list_page_sqlite_sql(&filter);
        assert_eq!(sqlite_plan(&db, &sql).await, [search], "{sql}");
    }
}

/// An index of a table, as PostgreSQL's catalog describes it.
#[derive(Debug, diesel::QueryableByName)]
struct IndexOf {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    first_column: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    partial: bool,
}

/// Rows of `sql` on a connection of `db` (PostgreSQL), after the `SET`
/// statements `settings` on the same connection.
async fn postgres_rows<R>(db: &Database, settings: &[&str], sql: &str) -> Vec<R>
where
    R: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    use diesel_async::RunQueryDsl;
    let mut conn = db.conn().await.unwrap();
    let Ok(xingqiao::db::Pooled::Postgres(object)) = conn.pooled_mut() else { panic!("not PostgreSQL") };
    let c: &mut diesel_async::AsyncPgConnection = object;
    for setting in settings {
        diesel::sql_query(*setting).execute(c).await.unwrap();
    }
    diesel::sql_query(sql).load(c).await.unwrap()
}

/// Before a table has statistics (a new database, or autovacuum off),
/// PostgreSQL's planner took an index on `task_status` alone for the finish's
/// dependents countdown: a walk over every task that was ever waiting, which
/// slowed each step as the table grew (migration 000009). No index may lead
/// with the status but partial ones, and the sweeper's two looks by status
/// search those even with a plan made without their parameters' values (as
/// a prepared statement's kept plan is), never walking every task.
#[tokio::test]
async fn postgresql_looks_up_tasks_by_status_only_through_partial_indexes() {
    let test_db = TestDb::create("postgres").await;
    let db = database(&test_db).await;
    let indexes: Vec<IndexOf> = postgres_rows(
        &db,
        &[],
        "SELECT i.indexrelid::regclass::text AS name, a.attname::text AS first_column, \
                i.indpred IS NOT NULL AS partial \
         FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
         WHERE i.indrelid = 'workflow_task'::regclass",
    )
    .await;
    assert!(indexes.iter().any(|index| index.name == "task_job_label"), "{indexes:#?}");
    let by_status: Vec<&IndexOf> =
        indexes.iter().filter(|index| index.first_column == "task_status" && !index.partial).collect();
    assert!(by_status.is_empty(), "an index leads with task_status: {by_status:#?}");
    let [expired_leases, stale_pending] = tasks::sweeper_postgres_sql();
    let looks = [(expired_leases, "task_started_lease"), (stale_pending, "task_pending_since")];
    for (look, (sql, index)) in looks.into_iter().enumerate() {
        let (sql, _binds) = sql.split_once(" -- binds:").unwrap();
        // The table is empty, so a walk would cost nothing: walks are ruled
        // out, and a plan that cannot use the index has to walk all the same.
        let settings = ["SET enable_seqscan = off", "SET plan_cache_mode = force_generic_plan"];
        // A name of its own: the next look may get the same connection.
        let prepare = format!("PREPARE sweep{look} AS {sql}");
        // A generic plan does not depend on the values: NULL for each.
        let parameters = (1..).take_while(|n| sql.contains(&format!("${n}"))).map(|_| "NULL").collect::<Vec<_>>();
        let explain = format!("EXPLAIN EXECUTE sweep{look}({})", parameters.join(", "));
        let plan: Vec<PostgresPlanLine> =
            postgres_rows(&db, &[&settings[..], &[prepare.as_str()]].concat(), &explain).await;
        let plan: Vec<&str> = plan.iter().map(|line| line.plan.as_str()).collect();
        assert!(plan.iter().any(|line| line.contains(index)), "{sql}\n{plan:#?}");
        assert!(!plan.iter().any(|line| line.contains("Seq Scan")), "{sql}\n{plan:#?}");
    }
}

/// One line of PostgreSQL's `EXPLAIN`.
#[derive(Debug, diesel::QueryableByName)]
struct PostgresPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[diesel(column_name = "QUERY PLAN")]
    plan: String,
}

/// A fresh PostgreSQL database (dropped with the `TestDb`) that keeps at
/// most two connections open.
async fn postgres_with_two_connections() -> (TestDb, Arc<Database>) {
    let test_db = TestDb::create("postgres").await;
    let db = Arc::new(Database::connect(&test_db.url, 2).unwrap());
    db.migrate(&test_db.url).await.unwrap();
    (test_db, db)
}

/// A statement of this thread's, run in the background.
fn ping_in_background(db: &Arc<Database>) -> tokio::task::JoinHandle<Result<(), DbError>> {
    let db = db.clone();
    tokio::spawn(async move { db.ping().await })
}

/// A thread with a runtime of its own (as each HTTP worker of the server
/// has one) that takes a connection and holds it (`in_use`) or gives it
/// back (idle), then blocks, its runtime with it, until told to go on.
fn blocked_thread(db: Arc<Database>, in_use: bool) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (go_on, told) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let conn = db.conn().await.unwrap();
            let held = in_use.then_some(conn);
            ready.send(()).unwrap();
            told.recv().unwrap();
            drop(held);
        });
    });
    is_ready.recv().unwrap();
    (go_on, thread)
}

/// PostgreSQL: a thread's connections are its own, opened on it, since
/// their I/O runs on the runtime that opened them. Here the other thread's
/// runtime is blocked: its idle connection could not answer this thread.
#[tokio::test(flavor = "current_thread")]
async fn a_thread_uses_the_postgresql_connections_it_opened() {
    let (_test_db, db) = postgres_with_two_connections().await;
    let (go_on, other) = blocked_thread(db.clone(), false);
    assert_eq!(db.pool_use(), (1, 0, 2), "the other thread's connection is open, idle");
    let pinged = tokio::time::timeout(Duration::from_secs(10), db.ping()).await;
    assert!(matches!(pinged, Ok(Ok(()))), "this thread's statement waited for the other's runtime: {pinged:?}");
    assert_eq!(db.pool_use(), (2, 0, 2), "this thread opened one of its own");
    go_on.send(()).unwrap();
    other.join().unwrap();
}

/// PostgreSQL: the maximum holds over all threads. A thread that needs one
/// more waits until another thread's is idle, then closes it and opens its
/// own in its place.
#[tokio::test(flavor = "current_thread")]
async fn postgresql_connections_stay_within_the_maximum_over_all_threads() {
    let (_test_db, db) = postgres_with_two_connections().await;
    let holders = [blocked_thread(db.clone(), true), blocked_thread(db.clone(), true)];
    assert_eq!(db.pool_use(), (2, 2, 2));
    let third = ping_in_background(&db);
    // Time to open a third connection, which it must not.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!third.is_finished(), "a third connection waits while two are open and in use");
    for (go_on, thread) in holders {
        go_on.send(()).unwrap();
        thread.join().unwrap();
    }
    third.await.unwrap().expect("an idle connection of another thread made room");
    assert_eq!(db.pool_use(), (2, 0, 2), "still two open: one of them closed for the third");
}

/// PostgreSQL: a thread that waits for room, all connections being open,
/// takes its own connection back when it comes free, rather than closing it
/// to open another.
#[tokio::test(flavor = "current_thread")]
async fn a_thread_waiting_for_room_takes_its_own_postgresql_connection_back() {
    use diesel_async::RunQueryDsl;
    async fn backend_pid(db: &Database, conn: &mut xingqiao::db::Conn) -> i64 {
        let query = diesel::sql_query("SELECT pg_backend_pid()::bigint AS n");
        assert_eq!(db.backend(), "postgres");
        xingqiao::on_conn!(conn, c => Ok(query.get_result::<Count>(c).await?)).unwrap().n
    }
    let (_test_db, db) = postgres_with_two_connections().await;
    let (go_on, other) = blocked_thread(db.clone(), true);
    let mut first = db.conn().await.unwrap();
    let first_pid = backend_pid(&db, &mut first).await;
    let second = tokio::spawn({
        let db = db.clone();
        async move { backend_pid(&db, &mut db.conn().await.unwrap()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished(), "a third connection waits while two are open and in use");
    drop(first);
    assert_eq!(second.await.unwrap(), first_pid, "the same connection, not one opened in its place");
    go_on.send(()).unwrap();
    other.join().unwrap();
}

/// PostgreSQL: a thread with a connection of its own in use does not close
/// another thread's connection that was used a moment ago (in a burst, two
/// threads doing so reopened dozens); it waits, and closes that one only
/// once it has gone untaken for a while: then it is spare.
#[tokio::test(flavor = "current_thread")]
async fn a_busy_thread_closes_only_a_spare_postgresql_connection_of_another_thread() {
    let (_test_db, db) = postgres_with_two_connections().await;
    let (go_on, other) = blocked_thread(db.clone(), false);
    let first = db.conn().await.unwrap();
    assert_eq!(db.pool_use(), (2, 1, 2), "the other thread's connection idle, this thread's in use");
    let second = ping_in_background(&db);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!second.is_finished(), "the other thread's connection, used a moment ago, stays open");
    assert_eq!(db.pool_use(), (2, 1, 2));
    // Left untaken, it becomes spare (a quarter of a second), and goes.
    let pinged = tokio::time::timeout(Duration::from_secs(10), second).await;
    assert!(matches!(pinged, Ok(Ok(Ok(())))), "a spare connection made room: {pinged:?}");
    assert_eq!(db.pool_use(), (2, 1, 2), "two open: the other thread's closed for this thread's second");
    drop(first);
    go_on.send(()).unwrap();
    other.join().unwrap();
}
