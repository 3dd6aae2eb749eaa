//! The console (`/ui/`) in a real browser: headless Chromium through
//! chromedriver (`scripts/test` installs both). Each test saves a screenshot
//! of its page in `docs/images/console-*.png`, shown in the README.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;
use xingqiao_tests::{Browser, TestServer, fixture_wasm, plugins_dir_with};

const WAIT: Duration = Duration::from_secs(30);

/// A script answering the fill colour of the graph node of `label`, as Graphviz drew it.
fn node_fill(label: &str) -> String {
    format!(
        "return [...document.querySelectorAll('#graph g.node')]\
         .filter(n => n.querySelector('title').textContent === '{label}')\
         .map(n => n.querySelector('polygon').getAttribute('fill'))[0] || null;"
    )
}

/// A script answering whether that node has the fill `fill`.
fn node_fill_is(label: &str, fill: &str) -> String {
    node_fill(label).replace(" || null;", &format!(" === '{fill}';"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_shows_created_jobs_with_counts_and_filters() {
    let server = TestServer::start("sqlite").await;
    for name in ["nightly-report", "weekly-report", "ad-hoc"] {
        let job =
            json!({"job_namespace": "reports", "job_type": "hello", "job_name": name, "job_extra": {"str_info": name}});
        server.wait_job(server.create_job(job).await).await;
    }
    let failing =
        server.create_job(json!({"job_namespace": "reports", "job_type": "fanout", "job_extra": {"n": 3}})).await;
    server.wait_job(failing).await;
    let browser = Browser::start().await;
    browser.client.goto(&server.url("/ui/jobs")).await.unwrap();
    let rows = browser
        .wait_for("the job rows", "return document.querySelectorAll('#jobs tbody tr').length === 4 && [...document.querySelectorAll('#jobs tbody tr td:nth-child(2)')].map(td => td.textContent);", WAIT)
        .await;
    assert!(rows.to_string().contains("nightly-report"), "{rows}");
    let counts = browser.wait_for("the counts", "return document.querySelector('.counts')?.textContent;", WAIT).await;
    assert!(counts.as_str().unwrap().contains("finished 4"), "{counts}");
    browser.screenshot("jobs").await;
    // A filter is part of the URL, so the page can be shared as it is.
    browser.client.goto(&server.url("/ui/jobs?job_type=fanout")).await.unwrap();
    browser
        .wait_for("the filtered list", "return document.querySelectorAll('#jobs tbody tr').length === 1 && document.querySelector('#jobs tbody tr').dataset.jobId;", WAIT)
        .await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_graph_changes_colour_as_its_tasks_finish() {
    let plugins = plugins_dir_with(&["e2e"]);
    let server = TestServer::start_with("sqlite", &["--plugins-dir", plugins.to_str().unwrap()]).await;
    let browser = Browser::start().await;
    let job_id = server
        .create_job(
            json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "sleep", "seconds": 2}}),
        )
        .await;
    browser.client.goto(&server.url(&format!("/ui/jobs/{job_id}"))).await.unwrap();
    // Drawn in the browser from the server's DOT: the server's colours.
    let running = browser.wait_for("nap1 drawn", &node_fill("nap1"), WAIT).await;
    assert!(running == "palegreen" || running == "lightblue", "{running}");
    browser.screenshot("job-running").await;
    // Redrawn from the event stream, with no reload: nap2 runs, then finishes.
    browser.wait_for("nap2 started", &node_fill_is("nap2", "palegreen"), WAIT).await;
    browser.wait_for("nap2 finished", &node_fill_is("nap2", "lightblue"), WAIT).await;
    // A click on a task shows its details.
    browser
        .client
        .execute(
            "document.querySelector('#graph g.node').dispatchEvent(new MouseEvent('click', {bubbles: true}));",
            Vec::new(),
        )
        .await
        .unwrap();
    let detail =
        browser.wait_for("the task detail", "return document.querySelector('#task-detail')?.textContent;", WAIT).await;
    assert!(detail.as_str().unwrap().contains("attempts"), "{detail}");
    browser.screenshot("job").await;
    server.stop().await.unwrap();
    std::fs::remove_dir_all(plugins).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_retried_from_its_page_and_finishes() {
    let plugins = plugins_dir_with(&["e2e"]);
    let server = TestServer::start_with("sqlite", &["--plugins-dir", plugins.to_str().unwrap()]).await;
    // Its second task fails once, with no retries left: the job fails; a retry succeeds.
    let job_id = server
        .create_job(json!({"job_namespace": "n", "job_type": "fixture_e2e", "job_extra": {"case": "flaky", "fail_times": 1, "retries": 0}}))
        .await;
    assert_eq!(server.wait_job(job_id).await["job_status"], "failed");
    let browser = Browser::start().await;
    browser.client.goto(&server.url(&format!("/ui/jobs/{job_id}"))).await.unwrap();
    let retry = browser.client.wait().at_most(WAIT).for_element(Locator::Css("#action-retry")).await.unwrap();
    retry.click().await.unwrap();
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for(
            "the job finished",
            "return document.querySelector('#field-job_status')?.textContent === 'finished';",
            WAIT,
        )
        .await;
    assert_eq!(server.wait_job(job_id).await["exe_id"], 2);
    server.stop().await.unwrap();
    std::fs::remove_dir_all(plugins).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_created_from_its_schema_form_and_refused_inline_for_bad_input() {
    let server = TestServer::start("sqlite").await;
    let browser = Browser::start().await;
    browser.client.goto(&server.url("/ui/new")).await.unwrap();
    let select = browser.client.wait().at_most(WAIT).for_element(Locator::Css("#job_type")).await.unwrap();
    select.select_by_value("chain").await.unwrap();
    // chain's job_extra schema has `n`, an integer: the form has a number field for it.
    let n = browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name='extra.n'][type=number]"))
        .await
        .unwrap();
    n.send_keys("0").await.unwrap();
    browser.client.find(Locator::Css("#new-job button[type=submit]")).await.unwrap().click().await.unwrap();
    let refusal =
        browser.wait_for("the refusal", "return document.querySelector('#message')?.textContent;", WAIT).await;
    // chain's schema says n ≥ 1: the server's schema check answers, before the plugin runs.
    let refusal = refusal.as_str().unwrap();
    assert!(refusal.starts_with("ERR_JOB_EXTRA_INVALID") && refusal.contains("at /n:"), "{refusal}");
    browser.screenshot("new").await;
    n.clear().await.unwrap();
    n.send_keys("3").await.unwrap();
    browser.client.find(Locator::Css("#new-job button[type=submit]")).await.unwrap().click().await.unwrap();
    let url = browser
        .wait_for(
            "the new job's page",
            "return /\\/ui\\/jobs\\/\\d+$/.test(location.pathname) && location.pathname;",
            WAIT,
        )
        .await;
    let job_id: i64 = url.as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let job = server.wait_job(job_id).await;
    assert_eq!((&job["job_type"], &job["job_extra"]), (&json!("chain"), &json!("{\"n\":3}")), "{job}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_page_draws_its_three_charts() {
    let server = TestServer::start("sqlite").await;
    for region in ["bj", "bj", "nj"] {
        let job = json!({"job_namespace": "n", "job_type": "hello", "job_extra": {"str_info": region}});
        server.wait_job(server.create_job(job).await).await;
    }
    let browser = Browser::start().await;
    browser.client.goto(&server.url("/ui/stats?job_type=hello&days=7")).await.unwrap();
    browser
        .wait_for(
            "three charts drawn",
            "return document.querySelectorAll('.chart[data-drawn] canvas').length === 3;",
            WAIT,
        )
        .await;
    browser.screenshot("stats").await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_is_uploaded_and_activated_from_the_plugins_page() {
    const TOKEN: &str = "console-admin-token-0123";
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let browser = Browser::start().await;
    browser.client.goto(&server.url("/ui/plugins")).await.unwrap();
    // With tokens, the console asks for one and keeps it for the session.
    let token = browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#token-form:not([hidden]) #token"))
        .await
        .unwrap();
    token.send_keys(TOKEN).await.unwrap();
    browser.client.find(Locator::Css("#token-form button")).await.unwrap().click().await.unwrap();
    for version in ["greeter_v1", "greeter_v2"] {
        browser.act_on("#upload input[type=file]", Some(fixture_wasm(version).to_str().unwrap()), WAIT).await;
        browser.act_on("#upload button", None, WAIT).await;
        let shown = version.replace("greeter_v", "greeter@");
        browser
            .wait_for(version, &format!("return !!document.querySelector(\"[data-version^='{}']\");", shown), WAIT)
            .await;
    }
    // v2 is active after its upload; roll back to v1 from the page.
    let activate = browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("tr[data-version='greeter@1.0.0'] button.activate"))
        .await
        .unwrap();
    activate.click().await.unwrap();
    browser
        .wait_for("v1 active", "return document.querySelector(\"tr[data-version='greeter@1.0.0'] td:nth-child(3)\")?.textContent === 'active';", WAIT)
        .await;
    browser.screenshot("plugins").await;
    let (_, detail) = server.get("/admin/plugins/greeter").await;
    assert_eq!(detail["data"]["version"], "1.0.0", "{detail}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_task_job_opens_on_its_counts_and_draws_on_request() {
    let server = TestServer::start("sqlite").await;
    let job_id =
        server.create_job(json!({"job_namespace": "big", "job_type": "fanout", "job_extra": {"n": 9999}})).await;
    server.wait_job(job_id).await;
    let browser = Browser::start().await;
    let opened = std::time::Instant::now();
    browser.client.goto(&server.url(&format!("/ui/jobs/{job_id}"))).await.unwrap();
    let summary = browser
        .wait_for(
            "the summary",
            "return document.querySelector('#draw') && document.querySelector('#graph').textContent;",
            WAIT,
        )
        .await;
    // Printed, not asserted: timings belong to benches.
    eprintln!("a 10,000-task job's page showed its summary {:?} after the request", opened.elapsed());
    assert!(summary.as_str().unwrap().contains("10000 tasks"), "{summary}");
    assert!(summary.as_str().unwrap().contains("finished 10000"), "{summary}");
    browser.screenshot("job-10000").await;
    server.stop().await.unwrap();
}
