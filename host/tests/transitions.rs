//! The invariant that makes retries, several workers and crash recovery safe:
//! every transition is a conditional update, so a task is advanced once, and
//! a job ends once — checked on every backend, with racing callers.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;

use std::sync::Arc;

use common::{TestDb, backends};
use xingqiao::db::models::{NewJob, NewTask};
use xingqiao::db::{Database, jobs, tasks};
use xingqiao::engine::now;

fn new_job(name: &str, tasks: i32) -> NewJob {
    let t = now();
    NewJob {
        job_client: "test".into(),
        job_namespace: "n".into(),
        job_reqid: name.into(),
        job_name: name.into(),
        job_status: "started".into(),
        job_type: "test".into(),
        job_tags: String::new(),
        ret_stat: String::new(),
        ret_data: None,
        job_cost: 0.0,
        job_extra: "{}".into(),
        job_timeout: 3600,
        job_lock: String::new(),
        exe_id: 1,
        operator: String::new(),
        is_valid: true,
        c_time: t,
        s_time: t,
        e_time: t,
        u_time: t,
        plugin_version: "0".into(),
        tasks_unfinished: tasks,
        deadline: Some(t + chrono::Duration::hours(1)),
        plugin_sha256: String::new(),
    }
}

fn new_task(label: &str, deps: &[&str], dependents: &[&str]) -> NewTask {
    let t = now();
    NewTask {
        job_id: 0,
        task_label: label.into(),
        task_reqid: label.into(),
        task_cmd: "/demo_api/ping".into(),
        task_params: None,
        task_requires: String::new(),
        task_provides: String::new(),
        task_dependencies: deps.join(","),
        task_status: if deps.is_empty() { "pending" } else { "waiting" }.into(),
        task_cost: 0.0,
        task_extra: "{}".into(),
        task_is_save: false,
        ret_stat: String::new(),
        ret_data: None,
        task_retrymax: 0,
        task_retrycount: 0,
        task_timeout: 0,
        c_time: t,
        s_time: t,
        u_time: t,
        task_dependents: dependents.join(","),
        task_waiting_on: i32::try_from(deps.len()).unwrap(),
        task_lease_until: None,
    }
}

/// A lease that will not expire during the test.
fn later() -> chrono::NaiveDateTime {
    now() + chrono::Duration::hours(1)
}

async fn database(test_db: &TestDb) -> Arc<Database> {
    let db = Database::connect(&test_db.url, 8).unwrap();
    db.migrate(&test_db.url).await.unwrap();
    Arc::new(db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_task_is_started_by_exactly_one_of_many_racing_workers() {
    for backend in backends() {
        let test_db = TestDb::create(&backend).await;
        let db = database(&test_db).await;
        let (_, ready) = jobs::create(&db, new_job("race", 1), vec![new_task("a", &[], &[])]).await.unwrap();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let db = db.clone();
                let task_id = ready[0];
                tokio::spawn(async move { tasks::start(&db, task_id, later(), now()).await.unwrap().is_some() })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            winners += usize::from(racer.await.unwrap());
        }
        assert_eq!(winners, 1, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_is_recorded_once_and_parallel_sinks_end_the_job_once() {
    for backend in backends() {
        let test_db = TestDb::create(&backend).await;
        let db = database(&test_db).await;
        // root -> (left, right): two sinks that finish at the same time.
        let rows = vec![
            new_task("root", &[], &["left", "right"]),
            new_task("left", &["root"], &[]),
            new_task("right", &["root"], &[]),
        ];
        let (job_id, ready) = jobs::create(&db, new_job("sinks", 3), rows).await.unwrap();
        let root = tasks::start(&db, ready[0], later(), now()).await.unwrap().unwrap().task;
        let recorded = tasks::finish(&db, &root, Some("{}".into()), now()).await.unwrap().unwrap();
        assert_eq!(recorded.ready.len(), 2, "{backend}: both sinks released");
        assert_eq!(
            tasks::finish(&db, &root, Some("{}".into()), now()).await.unwrap(),
            None,
            "{backend}: twice is a no-op"
        );

        let mut sinks = Vec::new();
        for id in &recorded.ready {
            sinks.push(tasks::start(&db, *id, later(), now()).await.unwrap().unwrap().task);
        }
        let finishes: Vec<_> = sinks
            .into_iter()
            .map(|row| {
                let db = db.clone();
                tokio::spawn(async move { tasks::finish(&db, &row, Some("{}".into()), now()).await.unwrap() })
            })
            .collect();
        let mut ends = 0;
        for finish in finishes {
            ends += usize::from(finish.await.unwrap().unwrap().job_end.is_some());
        }
        assert_eq!(ends, 1, "{backend}: the job ends exactly once");
        let job = jobs::find(&db, Some(job_id), None).await.unwrap().unwrap();
        assert_eq!((job.job_status.as_str(), job.tasks_unfinished), ("finished", 0), "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_lease_expired_goes_back_to_pending_once() {
    for backend in backends() {
        let test_db = TestDb::create(&backend).await;
        let db = database(&test_db).await;
        let (_, ready) = jobs::create(&db, new_job("lease", 1), vec![new_task("a", &[], &[])]).await.unwrap();
        let expired = now() - chrono::Duration::seconds(1);
        tasks::start(&db, ready[0], expired, now()).await.unwrap().unwrap();
        assert_eq!(tasks::expired_leases(&db, now()).await.unwrap(), ready, "{backend}");
        assert_eq!(tasks::expired_leases(&db, now()).await.unwrap(), Vec::<i64>::new(), "{backend}: once");
        // A renewed lease is not taken over.
        tasks::start(&db, ready[0], expired, now()).await.unwrap().unwrap();
        tasks::renew_leases(&db, &ready, later()).await.unwrap();
        assert_eq!(tasks::expired_leases(&db, now()).await.unwrap(), Vec::<i64>::new(), "{backend}: renewed");
    }
}
