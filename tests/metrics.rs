#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

//! `/metrics`: what the server did, in the Prometheus text format.

use serde_json::json;
use xingqiao_tests::{TestServer, per_backend, plugins_dir_with};

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

per_backend! {
    async fn metrics_count_jobs_attempts_plugin_calls_and_faults(backend: &str) {
        let plugins = plugins_dir_with(&["e2e", "trap"]);
        let server = TestServer::start_with(backend, &["--plugins-dir", plugins.to_str().unwrap()]).await;
        for _ in 0..2 {
            let id = server.create_job(json!({"job_namespace": "m", "job_type": "hello", "job_extra": {"str_info": "x"}})).await;
            server.wait_job(id).await;
        }
        let failing = json!({"job_namespace": "m", "job_type": "fixture_e2e", "job_extra": {"case": "failing_handler"}});
        let id = server.create_job(failing).await;
        server.wait_job(id).await;
        let (status, _) = server.post("/xingqiao/create_job", json!({"job_namespace": "m", "job_type": "fixture_trap"})).await;
        assert_eq!(status, 500);

        let response = server.client.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = response.text().await.unwrap();
        let expect = [
            ("xingqiao_jobs_created_total{job_type=\"hello\"}", 2.0),
            ("xingqiao_jobs_ended_total{job_type=\"hello\",status=\"finished\",ret_stat=\"OK\"}", 2.0),
            ("xingqiao_jobs_ended_total{job_type=\"fixture_e2e\",status=\"failed\",ret_stat=\"ERR_PARAMS_MISSING\"}", 1.0),
            ("xingqiao_task_attempts_total{cmd=\"/demo_api/ping\",outcome=\"finished\"}", 2.0),
            ("xingqiao_task_attempts_total{cmd=\"/demo_api/hello\",outcome=\"failed\"}", 1.0),
            ("xingqiao_task_attempt_seconds_count{cmd=\"/demo_api/collect\"}", 2.0),
            ("xingqiao_plugin_call_seconds_count{job_type=\"hello\",call=\"plan\"}", 2.0),
            ("xingqiao_plugin_faults_total{job_type=\"fixture_trap\",kind=\"trap\"}", 1.0),
            // Three jobs created one after another: three transactions of one.
            ("xingqiao_jobs_per_create_transaction_count", 3.0),
            ("xingqiao_jobs_per_create_transaction_sum", 3.0),
            // The six tasks of the two hello jobs, each finishing alone.
            ("xingqiao_results_per_finish_transaction_count", 6.0),
            ("xingqiao_results_per_finish_transaction_sum", 6.0),
            ("xingqiao_pending_tasks", 0.0),
        ];
        for (series, value) in expect {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
        assert!(sample(&text, "xingqiao_db_connections_max").is_some_and(|max| max >= 1.0), "{text}");
        assert!(text.contains("xingqiao_build_info{version=\""), "{text}");
        server.stop().await.unwrap();
        std::fs::remove_dir_all(plugins).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_metrics_need_a_read_token() {
    let server = TestServer::start_with("sqlite", &["--api-tokens", "prom:read:prometheus-token-0123"]).await;
    let bare = reqwest::Client::new().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    let scrape = reqwest::Client::new().get(server.url("/metrics")).bearer_auth("prometheus-token-0123");
    assert_eq!(scrape.send().await.unwrap().status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_queries_only_metrics_the_server_has() {
    // A job and a plugin fault, so that every family has a sample to show.
    let plugins = plugins_dir_with(&["trap"]);
    let server = TestServer::start_with("sqlite", &["--plugins-dir", plugins.to_str().unwrap()]).await;
    let id =
        server.create_job(json!({"job_namespace": "m", "job_type": "hello", "job_extra": {"str_info": "x"}})).await;
    server.wait_job(id).await;
    server.post("/xingqiao/create_job", json!({"job_namespace": "m", "job_type": "fixture_trap"})).await;
    let text = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    server.stop().await.unwrap();
    std::fs::remove_dir_all(plugins).unwrap();
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("xingqiao_"))
            {
                // A histogram's series are its name plus _bucket/_sum/_count.
                let family = name.trim_end_matches("_bucket").trim_end_matches("_total").trim_end_matches("_info");
                assert!(text.contains(&format!("# TYPE {family}")), "{name} (panel {}) is not served", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried >= 10, "{queried}");
}
