//! Job control end to end (issue 4): locks, job timeout, task retries,
//! retry_job, delete and cancel, the notifier — on every backend.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Value, json};
use xingqiao::db::models::TaskRow;
use xingqiao::db::{Database, tasks};
use xingqiao_tests::{TestServer, per_backend, plugins_dir_with};

/// A server with the fixture plugin, a quick sweeper and quick retries.
async fn server(backend: &str) -> TestServer {
    let dir = plugins_dir_with(&["e2e"]).display().to_string();
    TestServer::start_with(backend, &["--plugins-dir", &dir, "--sweep-interval-ms", "100", "--retry-backoff-ms", "20"])
        .await
}

/// A job's task rows as stored (times to the microsecond).
async fn task_rows(server: &TestServer, job_id: i64) -> Vec<TaskRow> {
    let db = Database::connect(&server.db.url, 1).unwrap();
    tasks::list(&mut db.conn().await.unwrap(), job_id, None).await.unwrap()
}

fn sleepy(locks: &str, seconds: f64) -> Value {
    json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "sleep", "locks": locks, "seconds": seconds}})
}

/// (first s_time, last u_time) of a job's tasks, to the microsecond.
async fn span(server: &TestServer, job_id: i64) -> (NaiveDateTime, NaiveDateTime) {
    let rows = task_rows(server, job_id).await;
    let start = rows.iter().map(|t| t.s_time).min().unwrap();
    let end = rows.iter().map(|t| t.u_time).max().unwrap();
    (start, end)
}

async fn status(server: &TestServer, job_id: i64) -> String {
    let (_, reply) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
    reply["data"]["job_status"].as_str().unwrap_or_default().to_owned()
}

per_backend! {
    async fn jobs_sharing_a_lock_never_overlap_and_the_waiting_one_says_who_holds_it(backend: &str) {
        let server = server(backend).await;
        let (first, second) =
            tokio::join!(server.create_job(sleepy("db1", 1.0)), server.create_job(sleepy("db1", 1.0)));
        let (holder, waiter) = (first.min(second), first.max(second));
        let (_, detail) = server.get(&format!("/xingqiao/get_job_detail?job_id={waiter}")).await;
        assert_eq!(detail["data"]["job_status"], "waiting", "{backend}");
        assert_eq!(
            detail["data"]["lock_wait"],
            json!({"locks": ["db1"], "lock": "db1", "held_by": holder}),
            "{backend}"
        );
        for job_id in [holder, waiter] {
            assert_eq!(server.wait_job(job_id).await["job_status"], "finished", "{backend}");
        }
        let (a, b) = (span(&server, holder).await, span(&server, waiter).await);
        assert!(a.1 <= b.0, "{backend}: {a:?} overlaps {b:?}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_job_ending_wakes_the_one_waiting_for_its_lock_without_the_sweeper(backend: &str) {
        // The sweeper ticks at start, then not for ten minutes: only the
        // holder's end can start the waiting job within wait_job's minute.
        let dir = plugins_dir_with(&["e2e"]).display().to_string();
        let server =
            TestServer::start_with(backend, &["--plugins-dir", &dir, "--sweep-interval-ms", "600000"]).await;
        let holder = server.create_job(sleepy("w1", 0.3)).await;
        let waiter = server.create_job(sleepy("w1", 0.0)).await;
        assert_eq!(status(&server, waiter).await, "waiting", "{backend}");
        assert_eq!(server.wait_job(holder).await["job_status"], "finished", "{backend}");
        assert_eq!(server.wait_job(waiter).await["job_status"], "finished", "{backend}: the released lock woke it");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_two_lock_job_against_two_one_lock_jobs_never_deadlocks_in_either_order(backend: &str) {
        let server = server(backend).await;
        for order in [["x,y", "x", "y"], ["x", "y", "x,y"]] {
            let mut ids = Vec::new();
            for locks in order {
                ids.push(server.create_job(sleepy(locks, 0.1)).await);
            }
            for id in &ids {
                assert_eq!(server.wait_job(*id).await["job_status"], "finished", "{backend} {order:?}");
            }
            let both = if order[0] == "x,y" { ids[0] } else { ids[2] };
            let span_both = span(&server, both).await;
            for single in ids.iter().filter(|id| **id != both) {
                let s = span(&server, *single).await;
                assert!(s.1 <= span_both.0 || span_both.1 <= s.0, "{backend} {order:?}: overlap");
            }
        }
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_job_past_its_timeout_fails_and_frees_its_lock_for_the_next(backend: &str) {
        let server = server(backend).await;
        let mut slow = sleepy("t", 2.0);
        slow["job_timeout"] = json!(1);
        let slow = server.create_job(slow).await;
        let next = server.create_job(sleepy("t", 0.0)).await;
        let detail = server.wait_job(slow).await;
        assert_eq!(
            (detail["job_status"].as_str(), detail["ret_stat"].as_str()),
            (Some("failed"), Some("ERR_JOB_EXE_TIMEOUT")),
            "{backend}"
        );
        let statuses: Vec<Value> =
            server.tasks(slow).await.iter().map(|t| json!([t["task_status"], t["ret_stat"]])).collect();
        assert_eq!(
            statuses,
            [json!(["failed", "ERR_JOB_EXE_TIMEOUT"]), json!(["waiting", ""])],
            "{backend}: nothing else starts"
        );
        assert_eq!(server.wait_job(next).await["job_status"], "finished", "{backend}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_task_failing_twice_then_succeeding_with_retry_max_2_finishes(backend: &str) {
        let server = server(backend).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "flaky", "fail_times": 2, "retries": 2}}))
            .await;
        assert_eq!(server.wait_job(job_id).await["job_status"], "finished", "{backend}");
        let shaky = &server.tasks(job_id).await[1];
        assert_eq!(
            (shaky["task_retrycount"].clone(), shaky["ret_data"].clone()),
            (json!(2), json!({"calls": 3})),
            "{backend}"
        );
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn retry_job_reruns_only_the_failed_part(backend: &str) {
        let server = server(backend).await;
        // Fails its first call and has no retries: the job fails.
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "flaky", "fail_times": 1}}))
            .await;
        let detail = server.wait_job(job_id).await;
        assert_eq!((detail["ret_stat"].as_str(), detail["exe_id"].as_i64()), (Some("ERR_FLAKY"), Some(1)), "{backend}");
        // The cause is gone (the handler succeeds from its second call on).
        let (status, reply) = server.post("/xingqiao/retry_job", json!({"job_id": job_id})).await;
        assert_eq!((status, reply), (200, json!({"stat": "OK", "job_id": job_id})), "{backend}");
        let detail = server.wait_job(job_id).await;
        assert_eq!(
            (detail["job_status"].as_str(), detail["exe_id"].as_i64()),
            (Some("finished"), Some(2)),
            "{backend}"
        );
        let calls: Vec<Value> = server.tasks(job_id).await.iter().map(|t| t["ret_data"]["calls"].clone()).collect();
        assert_eq!(calls, [json!(1), json!(2)], "{backend}: the finished task did not run again");
        let (status, reply) = server.post("/xingqiao/retry_job", json!({"job_id": job_id})).await;
        assert_eq!(
            (status, reply["stat"].clone(), reply["job_id"].clone()),
            (409, json!("ERR_JOB_STATUS_NOT_FAILED"), json!(job_id))
        );
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn delete_stops_a_running_job_and_frees_its_lock_cancel_keeps_it_listed(backend: &str) {
        let server = server(backend).await;
        let running = server.create_job(sleepy("d", 1.0)).await;
        let behind = server.create_job(sleepy("d", 0.0)).await;
        let (status, reply) = server.post("/xingqiao/delete_job", json!({"job_id": running})).await;
        assert_eq!((status, reply), (200, json!({"stat": "OK"})), "{backend}");
        let (status, _) = server.get(&format!("/xingqiao/get_job_detail?job_id={running}")).await;
        assert_eq!(status, 404, "{backend}");
        assert_eq!(server.wait_job(behind).await["job_status"], "finished", "{backend}: the lock was released");
        let kept = task_rows(&server, running).await;
        assert_eq!(
            kept.iter().map(|t| t.task_status.as_str()).collect::<Vec<_>>(),
            ["failed", "waiting"],
            "{backend}: nothing erased, nothing more started"
        );

        let cancelled = server.create_job(sleepy("", 1.0)).await;
        let (status, reply) = server.post("/xingqiao/cancel_job", json!({"job_id": cancelled})).await;
        assert_eq!((status, reply), (200, json!({"stat": "OK", "job_id": cancelled})));
        let detail = server.wait_job(cancelled).await;
        assert_eq!(
            (detail["job_status"].as_str(), detail["ret_stat"].as_str()),
            (Some("failed"), Some("ERR_JOB_CANCELLED"))
        );
        let (_, listed) = server.get("/xingqiao/list_jobs?ret_stat=ERR_JOB_CANCELLED").await;
        assert_eq!(listed["data"]["total"], 1, "{backend}: a cancelled job stays listed, a deleted one does not");
        let (status, reply) = server.post("/xingqiao/cancel_job", json!({"job_id": cancelled})).await;
        assert_eq!((status, reply["stat"].clone()), (409, json!("ERR_JOB_STATUS_NOT_RUNNING")));
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_trapping_notifier_does_not_fail_its_job(backend: &str) {
        let server = server(backend).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "passing", "from_job": 1, "trap_notifier": true}}))
            .await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(
            (detail["job_status"].as_str(), detail["ret_stat"].as_str()),
            (Some("finished"), Some("OK")),
            "{backend}"
        );
        assert_eq!(status(&server, job_id).await, "finished", "{backend}: still finished after the notifier ran");
        server.stop().await.unwrap();
    }
}

per_backend! {
    /// The notifier is told each change with the job as that change left it
    /// (the row its transaction wrote, not one read later, when a quick job
    /// may have ended already): `started` once, then `finished` once.
    async fn the_notifier_sees_the_job_as_each_change_left_it(backend: &str) {
        // ping_notifier's notifier logs each event at info, through the host.
        let server = TestServer::start_logging(backend, &[], "warn,xingqiao::runtime::host_api=info").await;
        let body = json!({"job_namespace": "n", "job_type": "ping_notifier", "job_name": "told"});
        let job_id = server.create_job(body).await;
        assert_eq!(server.wait_job(job_id).await["job_status"], "finished", "{backend}");
        let notice = |status: &str| format!("job_id={job_id} job_name=told job_status={status}");
        let told = |status: &str| server.log_text().matches(&notice(status)).count();
        server.wait_until(Duration::from_secs(10), || async { told("finished") == 1 }).await;
        assert_eq!((told("started"), told("finished")), (1, 1), "{backend}: {}", server.log_text());
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn a_task_timeout_bounds_each_attempt(backend: &str) {
        let server = server(backend).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "task_timeout"}}))
            .await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(
            (detail["job_status"].as_str(), detail["ret_stat"].as_str()),
            (Some("failed"), Some("ERR_TASK_TIMEOUT")),
            "{backend}"
        );
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn two_hello_lock_jobs_created_in_the_same_instant_run_one_after_the_other(backend: &str) {
        let server = server(backend).await;
        let body = json!({"job_namespace": "n", "job_type": "hello_lock", "job_extra": {"str_info": "ceshi", "job_locks": "same"}});
        let (a, b) = tokio::join!(server.create_job(body.clone()), server.create_job(body));
        for job_id in [a, b] {
            assert_eq!(server.wait_job(job_id).await["job_status"], "finished", "{backend}");
        }
        // Either may take the lock first (their create_job calls race); the
        // one that starts later starts after the other ended.
        let mut spans = [span(&server, a).await, span(&server, b).await];
        spans.sort();
        let [first, second] = spans;
        assert!(first.1 <= second.0, "{backend}: {first:?} overlaps {second:?}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    /// Sixty tasks finishing at once count down the same job row and the same
    /// dependent (on PostgreSQL in two pipelined statements): the join is
    /// released once its last dependency finishes, every job finishes, and no
    /// finish meets a deadlock (which the server would log as a retry).
    async fn concurrent_finishes_into_one_join_never_deadlock(backend: &str) {
        let server = server(backend).await;
        let mut jobs = Vec::new();
        for _ in 0..3 {
            let body = json!({"job_namespace": "n", "job_type": "fanout", "job_extra": {"n": 60}});
            jobs.push(server.create_job(body).await);
        }
        for job_id in jobs {
            let detail = server.wait_job(job_id).await;
            assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        }
        let log = server.log_text();
        assert!(!log.to_lowercase().contains("deadlock"), "{backend}: a finish met a deadlock:\n{log}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn cancelling_and_deleting_jobs_whose_tasks_are_finishing_never_fails(backend: &str) {
        // Ending a job and finishing one of its tasks lock the same rows in
        // opposite orders; the database's deadlock answer must be retried,
        // not passed on as a 500.
        let server = server(backend).await;
        for round in 0..6 {
            let job_id =
                server.create_job(json!({"job_namespace": "n", "job_type": "fanout", "job_extra": {"n": 60}})).await;
            let route = if round % 2 == 0 { "cancel_job" } else { "delete_job" };
            let (status, body) = server.post(&format!("/xingqiao/{route}"), json!({"job_id": job_id})).await;
            // A job that finished first cannot be cancelled (409); anything else is a failure.
            assert!(
                status == 200 || (status == 409 && route == "cancel_job"),
                "{backend} {route}: {status} {body}; the server logged:\n{}",
                server.log_text()
            );
        }
        server.stop().await.unwrap();
    }
}
