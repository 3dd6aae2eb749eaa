//! The seed's job API end to end (seed sections 4.1, 4.2): the five-minute
//! tour's curl lines, parameter passing, failures — on every backend.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use serde_json::{Value, json};
use xingqiao_tests::{TestServer, per_backend, plugins_dir_with};

/// A server that also knows the `fixture_e2e` plugin.
async fn server_with_fixture(backend: &str) -> TestServer {
    let dir = plugins_dir_with(&["e2e"]);
    TestServer::start_with(backend, &["--plugins-dir", &dir.display().to_string()]).await
}

fn without_times(mut value: Value, keys: &[&str]) -> Value {
    if let Some(map) = value.as_object_mut() {
        for key in keys {
            map.remove(*key);
        }
    }
    value
}

per_backend! {
    async fn the_seed_curl_lines_give_the_seed_answers(backend: &str) {
        let server = TestServer::start(backend).await;
        // curl -d '{"job_namespace":"ceshi_namespace", "job_type":"ping"}' .../xingqiao/create_job
        let response = server
            .client
            .post(server.url("/xingqiao/create_job"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x_username", "wangbin34")
            .body(r#"{"job_namespace":"ceshi_namespace", "job_type":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{backend}");
        let reqid = response.headers().get("x-reqid").unwrap().to_str().unwrap().to_owned();
        let reply: Value = response.json().await.unwrap();
        let job_id = reply["job_id"].as_i64().unwrap();
        assert_eq!(reply, json!({"stat": "OK", "job_id": job_id}), "{backend}");

        let detail = server.wait_job(job_id).await;
        let expected = json!({
            "job_id": job_id, "job_client": "127.0.0.1", "job_namespace": "ceshi_namespace",
            "job_reqid": reqid, "job_name": reqid, "job_status": "finished", "job_type": "ping",
            "job_tags": "", "ret_stat": "OK", "ret_data": null, "job_extra": "{}", "job_timeout": 3600,
            "job_lock": "", "exe_id": 1, "operator": "wangbin34", "is_valid": true, "plugin_version": "0.1.0",
            "plugin_sha256": xingqiao::plugins::sha256_hex(xingqiao::plugins::demo_bytes("ping").unwrap()),
        });
        let times = ["c_time", "s_time", "e_time", "u_time", "job_cost"];
        assert_eq!(without_times(detail.clone(), &times), expected, "{backend}");
        assert!(detail["job_cost"].as_f64().unwrap() >= 0.0);

        // curl ".../xingqiao/list_tasks?job_id=2"
        let tasks = server.tasks(job_id).await;
        let shape: Vec<Value> = tasks
            .iter()
            .map(|t| {
                json!([
                    t["task_label"],
                    t["task_cmd"],
                    t["task_status"],
                    t["ret_stat"],
                    t["task_dependencies"],
                    t["ret_data"]
                ])
            })
            .collect();
        assert_eq!(
            shape,
            [
                json!(["task1", "/demo_api/ping", "finished", "OK", "", {"ping": "pong"}]),
                json!(["task2", "/demo_api/ping", "finished", "OK", "task1", {"ping": "pong"}]),
            ],
            "{backend}"
        );
        // task2 ran after task1 finished.
        assert!(tasks[1]["s_time"].as_str().unwrap() >= tasks[0]["u_time"].as_str().unwrap());

        // curl ".../xingqiao/get_task?task_id=N"
        let task_id = tasks[1]["task_id"].as_i64().unwrap();
        let (status, reply) = server.get(&format!("/xingqiao/get_task?task_id={task_id}")).await;
        assert_eq!(status, 200);
        assert_eq!(reply["stat"], "OK");
        assert_eq!(reply["data"]["task_is_save"], false);
        assert_eq!(reply["data"]["task_params"], Value::Null);
        assert_eq!(reply["data"]["task_extra"], "{}");

        // curl -d '{"job_namespace":..., "job_type":"hello", "job_extra":{"str_info": "ceshi"}}'
        let job_id = server
            .create_job(
                json!({"job_namespace": "ceshi_namespace", "job_type": "hello", "job_extra": {"str_info": "ceshi"}}),
            )
            .await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        assert_eq!(detail["job_extra"], r#"{"str_info":"ceshi"}"#);
        assert_eq!(
            detail["ret_data"],
            json!({"count": 2, "all_taskdata": [{"hello": "hello ceshi"}, {"ping": "pong"}]}),
            "{backend}: task3 collects task1 and task2 and is saved"
        );

        // hello_params: task1's str_info is preset.
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "hello_params", "job_extra": {"str_info": "x"}}))
            .await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(detail["ret_data"]["all_taskdata"][0], json!({"hello": "hello hello world"}), "{backend}");

        // curl ".../xingqiao/list_jobs"
        let (status, reply) = server.get("/xingqiao/list_jobs").await;
        assert_eq!(status, 200);
        assert_eq!(reply["stat"], "OK");
        assert_eq!(reply["data"]["total"], 3);
        let types: Vec<&Value> = reply["data"]["list"].as_array().unwrap().iter().map(|j| &j["job_type"]).collect();
        assert_eq!(types, [&json!("hello_params"), &json!("hello"), &json!("ping")], "newest first");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn bad_input_gets_a_stat_and_a_status_never_a_500(backend: &str) {
        let server = TestServer::start(backend).await;
        let cases = [
            (json!({"job_namespace": "n", "job_type": "nope"}), 400, "ERR_JOB_TYPE_NOT_EXISTS"),
            (json!({"job_namespace": "n", "job_type": "ping", "job_extra": [1]}), 400, "ERR_JOB_EXTRA_INVALID"),
            (json!({"job_namespace": "n", "job_type": "ping", "job_extra": "text"}), 400, "ERR_JOB_EXTRA_INVALID"),
            (json!({"job_namespace": "n", "job_type": "hello"}), 400, "ERR_JOB_PARAMS_CHECK"),
            (json!({"job_type": "ping"}), 400, "ERR_PARAMS_INVALID"),
            (json!({"job_namespace": "n", "job_type": "ping", "job_timeout": -1}), 400, "ERR_PARAMS_INVALID"),
        ];
        for (body, status, stat) in cases {
            let (got, reply) = server.post("/xingqiao/create_job", body.clone()).await;
            assert_eq!((got, reply["stat"].as_str().unwrap()), (status, stat), "{backend} {body}: {reply}");
        }
        let (_, reply) = server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "hello"})).await;
        assert_eq!(reply["message"], "job_extra not have str_info");

        server.create_job(json!({"job_namespace": "n", "job_type": "ping", "job_name": "only-once"})).await;
        let (status, reply) = server
            .post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "ping", "job_name": "only-once"}))
            .await;
        assert_eq!((status, reply["stat"].clone()), (409, json!("ERR_JOB_EXIST")), "{backend}");

        for query in [
            "/xingqiao/get_job_detail?job_id=999999",
            "/xingqiao/get_job_detail?job_name=nobody",
            "/xingqiao/list_tasks?job_id=999999",
        ] {
            let (status, reply) = server.get(query).await;
            assert_eq!((status, reply), (404, json!({"data": {}, "stat": "ERR_JOB_NOT_EXIST"})), "{backend} {query}");
        }
        let (status, reply) = server.get("/xingqiao/get_task?task_id=999999").await;
        assert_eq!((status, reply), (404, json!({"data": {}, "stat": "ERR_TASK_NOT_EXIST"})));
        for query in [
            "/xingqiao/get_job_detail",
            "/xingqiao/get_job_detail?job_id=abc",
            "/xingqiao/list_jobs?orderBy=password",
            "/xingqiao/list_jobs?orderDir=sideways",
            "/xingqiao/list_jobs?page=0",
            "/xingqiao/list_jobs?job_status=sleeping",
            "/xingqiao/list_tasks?job_id=1&task_status=sleeping",
        ] {
            let (status, reply) = server.get(query).await;
            assert_eq!((status, reply["stat"].as_str().unwrap()), (400, "ERR_PARAMS_INVALID"), "{backend} {query}");
        }
        let response = server.client.post(server.url("/xingqiao/create_job")).body("{not json").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn list_jobs_filters_orders_and_pages(backend: &str) {
        let server = TestServer::start(backend).await;
        let mut ids = Vec::new();
        for (i, namespace) in ["a", "b", "a", "a", "b"].iter().enumerate() {
            let id = server
                .create_job(json!({"job_namespace": namespace, "job_type": "ping", "job_name": format!("job-{i}")}))
                .await;
            ids.push(id);
        }
        for id in &ids {
            server.wait_job(*id).await;
        }
        let (_, reply) = server.get("/xingqiao/list_jobs?job_namespace=a&orderBy=job_id&orderDir=asc").await;
        let names: Vec<&str> =
            reply["data"]["list"].as_array().unwrap().iter().map(|j| j["job_name"].as_str().unwrap()).collect();
        assert_eq!((reply["data"]["total"].clone(), names), (json!(3), vec!["job-0", "job-2", "job-3"]), "{backend}");
        // amis paging and the seed's alternative names.
        for query in [
            "/xingqiao/list_jobs?orderBy=job_name&orderDir=desc&page=2&perPage=2",
            "/xingqiao/list_jobs?orderBy=job_name&orderDir=desc&page_index=2&page_size=2",
        ] {
            let (_, reply) = server.get(query).await;
            let names: Vec<&str> =
                reply["data"]["list"].as_array().unwrap().iter().map(|j| j["job_name"].as_str().unwrap()).collect();
            assert_eq!(
                (reply["data"]["total"].clone(), names),
                (json!(5), vec!["job-2", "job-1"]),
                "{backend} {query}"
            );
        }
        let (_, reply) = server
            .post(
                "/xingqiao/list_jobs",
                json!({"job_status": "finished", "ret_stat": "OK", "job_type": "ping", "perPage": 1}),
            )
            .await;
        assert_eq!(reply["data"]["total"], 5);
        assert_eq!(reply["data"]["list"].as_array().unwrap().len(), 1);
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn parameters_flow_from_job_extra_task_extra_and_dependencies(backend: &str) {
        let server = server_with_fixture(backend).await;
        let job_id = server.create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "passing", "from_job": 7, "str_info": "from job"}})).await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        assert_eq!(
            detail["ret_data"],
            json!({"echo": {"ping": "pong", "str_info": "from task extra", "from_job": 7}}),
            "{backend}: the dependency's result and the task extra win over job_extra"
        );
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn failures_fail_the_task_and_the_job_with_a_clear_stat(backend: &str) {
        let server = server_with_fixture(backend).await;
        let cases = [
            ("missing_param", "ERR_TASK_PARAM_MISSING:nowhere"),
            ("provides", "ERR_TASK_PROVIDES_MISSING:absent"),
            ("failing_handler", "ERR_PARAMS_MISSING"),
            ("unreachable", "ERR_TASK_HTTP_TRANSPORT"),
        ];
        for (case, stat) in cases {
            let job_id = server
                .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": case}}))
                .await;
            let detail = server.wait_job(job_id).await;
            assert_eq!(
                (detail["job_status"].as_str(), detail["ret_stat"].as_str()),
                (Some("failed"), Some(stat)),
                "{backend} {case}"
            );
            let tasks = server.tasks(job_id).await;
            assert_eq!(tasks[0]["task_status"], "failed", "{backend} {case}");
            assert_eq!(tasks[0]["ret_stat"], stat, "{backend} {case}");
            if case == "failing_handler" {
                assert_eq!(tasks[1]["task_status"], "waiting", "a failed dependency never releases its dependents");
            }
        }
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn shutdown_finishes_running_work_and_a_restart_picks_up_the_rest(backend: &str) {
        let server = server_with_fixture(backend).await;
        let job_id = server
            .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "slow"}}))
            .await;
        server
            .wait_until(std::time::Duration::from_secs(20), || async {
                server.tasks(job_id).await.first().is_some_and(|t| t["task_status"] == "started")
            })
            .await;
        let (stopped, db) = server.stop_keeping_db().await;
        stopped.unwrap();
        // Restarted over the same database: the rest of the job runs.
        let dir = plugins_dir_with(&["e2e"]);
        let server = TestServer::start_on(db, &["--plugins-dir", &dir.display().to_string()]).await;
        let detail = server.wait_job(job_id).await;
        assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        let statuses: Vec<Value> = server.tasks(job_id).await.iter().map(|t| t["task_status"].clone()).collect();
        assert_eq!(statuses, [json!("finished"), json!("finished")], "{backend}");
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_once_ready_and_unknown_routes_get_a_stat() {
    let server = TestServer::start("sqlite").await;
    assert_eq!(server.get("/healthz").await, (200, json!({"stat": "OK"})));
    assert_eq!(server.get("/nope").await, (404, json!({"stat": "ERR_NOT_FOUND", "message": "no such route"})));
    server.stop().await.unwrap();
}

/// Every task is an HTTP call to a handler: the demo handlers must let the
/// executor keep its connection (a handler that leaves the request body
/// unread makes actix answer `connection: close`, a new TCP connection per
/// task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_handlers_keep_the_connection_alive() {
    let server = TestServer::start("sqlite").await;
    let client = reqwest::Client::new();
    let body = json!({"str_info": "x", "all_taskdata": [], "seconds": 0});
    for path in ["/demo_api/ping", "/demo_api/hello", "/demo_api/collect", "/demo_api/echo", "/demo_api/sleep"] {
        let reply = client.post(server.url(path)).json(&body).send().await.unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
        let connection = reply.headers().get("connection").map(|v| v.to_str().unwrap().to_owned());
        assert_ne!(connection.as_deref(), Some("close"), "{path} closes its connection");
    }
    server.stop().await.unwrap();
}

per_backend! {
    async fn a_ten_thousand_task_dag_fits_every_backend(backend: &str) {
        let server = TestServer::start(backend).await;
        // 9,999 branches and a collect task listing them all as dependencies.
        let job_id =
            server.create_job(json!({"job_namespace": "n", "job_type": "fanout", "job_extra": {"n": 9999}})).await;
        let (status, reply) = server.get(&format!("/xingqiao/list_tasks?job_id={job_id}&task_status=waiting")).await;
        assert_eq!(status, 200, "{backend}");
        let waiting = reply["data"]["list"].as_array().unwrap();
        assert_eq!(waiting.len(), 1, "{backend}: only collect waits");
        let deps = waiting[0]["task_dependencies"].as_str().unwrap();
        assert_eq!(deps.split(',').count(), 9999, "{backend}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn list_jobs_filters_by_creation_day(backend: &str) {
        let server = TestServer::start(backend).await;
        for _ in 0..2 {
            server.create_job(json!({"job_namespace": "days", "job_type": "ping"})).await;
        }
        let today = chrono::Utc::now().date_naive();
        let yesterday = today - chrono::Duration::days(1);
        let total = |query: String| {
            let server = &server;
            async move {
                let (status, body) = server.get(&format!("/xingqiao/list_jobs?job_namespace=days&{query}")).await;
                assert_eq!(status, 200, "{query}: {body}");
                body["data"]["total"].as_i64().unwrap()
            }
        };
        assert_eq!(total(format!("created_from={today}")).await, 2);
        assert_eq!(total(format!("created_to={today}")).await, 2);
        assert_eq!(total(format!("created_from={yesterday}&created_to={yesterday}")).await, 0);
        assert_eq!(total(format!("created_from={}", today + chrono::Duration::days(1))).await, 0);
        // The counts by status of what the other filters match, in one answer.
        let (_, body) = server.get("/xingqiao/list_jobs?job_namespace=days&job_status=failed&with_counts=1").await;
        let counts = &body["data"]["counts"];
        let sum: i64 = ["waiting", "started", "finished", "failed"].iter().map(|s| counts[*s].as_i64().unwrap()).sum();
        assert_eq!((sum, counts["failed"].as_i64(), &body["data"]["total"]), (2, Some(0), &json!(0)), "{body}");
        let (status, body) = server.get("/xingqiao/list_jobs?created_from=28/11/2026").await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn job_extra_is_checked_against_the_plugins_schema_before_params_check(backend: &str) {
        let server = TestServer::start(backend).await;
        // hello_lock's schema requires str_info, and so does its params_check:
        // the schema answers first, pointing at the missing property.
        let (status, body) = server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "hello_lock"})).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_EXTRA_INVALID")), "{body}");
        assert_eq!(body["data"]["errors"][0]["pointer"], "/str_info", "{body}");
        assert!(body["message"].as_str().unwrap().contains("at /str_info: \"str_info\" is a required property"), "{body}");
        // hello's schema does not require str_info, so its params_check gives the seed's answer.
        let (status, body) = server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "hello"})).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_PARAMS_CHECK")), "{body}");
        // What params_check would let through, the schema refuses: str_info must be a string.
        let wrong = json!({"job_namespace": "n", "job_type": "hello", "job_name": "typed", "job_extra": {"str_info": 5}});
        let (status, body) = server.post("/xingqiao/create_job", wrong).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_EXTRA_INVALID")), "{body}");
        assert_eq!(body["data"]["errors"][0]["pointer"], "/str_info", "{body}");
        assert!(body["data"]["errors"][0]["reason"].as_str().unwrap().contains("string"), "{body}");
        let (_, detail) = server.get("/xingqiao/get_job_detail?job_name=typed").await;
        assert_eq!(detail["stat"], "ERR_JOB_NOT_EXIST", "nothing is stored: {detail}");
        server.stop().await.unwrap();
    }
}
