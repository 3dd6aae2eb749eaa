//! Every execution attempt of a task is recorded (task, attempt number,
//! instance, start, end, outcome): a task that ran twice — here, because a
//! SIGTERM's grace period ended before its handler answered — shows both
//! runs in `get_task`, and in `list_tasks` with `with_attempts=1`.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::time::Duration;

use serde_json::{Value, json};
use xingqiao_tests::{TestServer, per_backend, plugins_dir_with};

fn fixture_args(dir: &str) -> [&str; 4] {
    // A grace far shorter than the task, so SIGTERM hands it back.
    ["--plugins-dir", dir, "--shutdown-grace-ms", "300"]
}

per_backend! {
    async fn a_task_handed_back_at_sigterm_shows_both_of_its_runs(backend: &str) {
        let dir = plugins_dir_with(&["e2e"]).display().to_string();
        let server = TestServer::start_with(backend, &fixture_args(&dir)).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e",
                "job_extra": {"case": "sleep", "seconds": 2, "locks": ""}}))
            .await;
        server
            .wait_until(Duration::from_secs(20), || async {
                server.tasks(job_id).await[0]["task_status"] == "started"
            })
            .await;
        let task_id = server.tasks(job_id).await[0]["task_id"].as_i64().unwrap();
        let (stopped, db) = server.stop_keeping_db().await;
        stopped.unwrap();

        let server = TestServer::start_on(db, &fixture_args(&dir)).await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");

        let (status, reply) = server.get(&format!("/xingqiao/get_task?task_id={task_id}")).await;
        assert_eq!(status, 200, "{backend}: {reply}");
        let attempts = reply["data"]["attempts"].as_array().unwrap().clone();
        let seen: Vec<(Value, Value, Value)> = attempts
            .iter()
            .map(|a| (a["attempt_no"].clone(), a["outcome"].clone(), a["exe_id"].clone()))
            .collect();
        assert_eq!(
            seen,
            [(json!(0), json!("handed_back"), json!(1)), (json!(0), json!("finished"), json!(1))],
            "{backend}: the same attempt number ran twice: {reply}"
        );
        assert_ne!(attempts[0]["instance"], attempts[1]["instance"], "{backend}: two processes ran it");
        for attempt in &attempts {
            let keys: Vec<&str> = attempt.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["attempt_id", "attempt_no", "e_time", "exe_id", "instance", "outcome", "ret_stat", "s_time"],
                "{backend}"
            );
            assert!(attempt["e_time"].is_string(), "{backend}: both attempts ended: {attempt}");
        }
        assert_eq!((&attempts[0]["ret_stat"], &attempts[1]["ret_stat"]), (&json!(""), &json!("OK")));

        // list_tasks shows them on request only (its seed shape stays the default).
        let (_, plain) = server.get(&format!("/xingqiao/list_tasks?job_id={job_id}")).await;
        assert!(plain["data"]["list"][0].get("attempts").is_none(), "{backend}");
        let (_, listed) = server.get(&format!("/xingqiao/list_tasks?job_id={job_id}&with_attempts=1")).await;
        let list = listed["data"]["list"].as_array().unwrap();
        assert_eq!(list[0]["attempts"], json!(attempts), "{backend}");
        assert_eq!(list[1]["attempts"].as_array().map(Vec::len), Some(1), "{backend}: nap2 ran once");
        let (status, bad) = server.get(&format!("/xingqiao/list_tasks?job_id={job_id}&with_attempts=maybe")).await;
        assert_eq!((status, &bad["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{backend}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn retries_are_attempts_with_rising_numbers(backend: &str) {
        let dir = plugins_dir_with(&["e2e"]).display().to_string();
        let server =
            TestServer::start_with(backend, &["--plugins-dir", &dir, "--retry-backoff-ms", "20"]).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e",
                "job_extra": {"case": "flaky", "retries": 2, "fail_times": 2}}))
            .await;
        assert_eq!(server.wait_job(job_id).await["job_status"], "finished", "{backend}");
        let (_, listed) = server.get(&format!("/xingqiao/list_tasks?job_id={job_id}&with_attempts=1")).await;
        let flaky = listed["data"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|task| task["task_retrymax"] == 2)
            .unwrap()
            .clone();
        let seen: Vec<(Value, Value)> = flaky["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["attempt_no"].clone(), a["outcome"].clone()))
            .collect();
        assert_eq!(
            seen,
            [(json!(0), json!("retried")), (json!(1), json!("retried")), (json!(2), json!("finished"))],
            "{backend}: {flaky}"
        );
        server.stop().await.unwrap();
    }
}
