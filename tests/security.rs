#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

//! The API guard (tokens and roles, browser protection, no open API off
//! loopback), safe task execution, JSON answers everywhere, plugin faults and
//! graph rendering that cannot be used to deny service.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xingqiao_tests::{TestServer, free_port, per_backend, plugins_dir_with, xingqiao_bin};

const READ: &str = "reader-token-0123456789";
const WRITE: &str = "writer-token-0123456789";
const ADMIN: &str = "boss-token-0123456789ab";

fn tokens() -> String {
    format!("reader:read:{READ},writer:write:{WRITE},boss:admin:{ADMIN}")
}

/// (status, body) of any request, with the body read as JSON (it must be).
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|err| panic!("HTTP {status}: not JSON ({err}): {text:?}"));
    (status, body)
}

fn hello_job(name: &str) -> Value {
    json!({"job_namespace": "sec", "job_type": "hello", "job_name": name, "job_extra": {"str_info": "x"}})
}

per_backend! {
    async fn tokens_decide_who_may_read_write_and_administer(backend: &str) {
        let server = TestServer::start_with(backend, &["--api-tokens", &tokens(), "--trusted-proxies", "127.0.0.1"]).await;
        let client = reqwest::Client::new();
        let url = |path: &str| server.url(path);

        let (status, body) = send(client.get(url("/xingqiao/list_jobs"))).await;
        assert_eq!((status, &body["stat"]), (401, &json!("ERR_UNAUTHORIZED")), "{body}");
        let (status, body) = send(client.get(url("/xingqiao/list_jobs")).bearer_auth("not-a-token-0123456789")).await;
        assert_eq!((status, &body["stat"]), (401, &json!("ERR_UNAUTHORIZED")), "{body}");
        let (status, body) = send(client.get(url("/xingqiao/list_jobs")).bearer_auth(READ)).await;
        assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{body}");

        let (status, body) = send(client.post(url("/xingqiao/create_job")).bearer_auth(READ).json(&hello_job("r"))).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN")), "{body}");
        // The token names the operator; a header cannot; a trusted proxy names the client.
        let create = client
            .post(url("/xingqiao/create_job"))
            .bearer_auth(WRITE)
            .header("x_username", "mallory")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&hello_job("w"));
        let (status, body) = send(create).await;
        assert_eq!(status, 200, "{body}");
        let job_id = body["job_id"].as_i64().unwrap();
        let detail = format!("/xingqiao/get_job_detail?job_id={job_id}");
        let (_, body) = send(client.get(url(&detail)).bearer_auth(READ)).await;
        assert_eq!((&body["data"]["operator"], &body["data"]["job_client"]), (&json!("writer"), &json!("203.0.113.9")));

        for route in ["delete_job", "retry_job", "cancel_job"] {
            let path = format!("/xingqiao/{route}?job_id={job_id}");
            let (status, body) = send(client.get(url(&path)).bearer_auth(READ)).await;
            assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN")), "{route}: {body}");
        }
        let (status, body) = send(client.get(url("/admin/plugins")).bearer_auth(WRITE)).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN")), "{body}");
        let (status, body) = send(client.get(url("/admin/plugins")).bearer_auth(ADMIN)).await;
        assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{body}\n{}", server.log_text());
        let (status, body) = send(client.get(url(&format!("/xingqiao/delete_job?job_id={job_id}"))).bearer_auth(ADMIN)).await;
        assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{body}\n{}", server.log_text());
        // Health checks need no token.
        let (status, _) = send(client.get(url("/healthz"))).await;
        assert_eq!(status, 200);
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn foreign_web_pages_and_foreign_host_names_are_refused(backend: &str) {
        let server = TestServer::start_with(backend, &["--cors-origins", "https://console.example"]).await;
        let client = reqwest::Client::new();
        let own_origin = format!("http://{}", server.addr);
        let job_id = server.create_job(hello_job("kept")).await;

        // A form post from a foreign page (no preflight for text/plain) creates nothing.
        let forged = client
            .post(server.url("/xingqiao/create_job"))
            .header("origin", "http://evil.example")
            .header("content-type", "text/plain")
            .body(hello_job("forged").to_string());
        let (status, body) = send(forged).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN_ORIGIN")), "{body}");
        let (_, body) = server.get("/xingqiao/get_job_detail?job_name=forged").await;
        assert_eq!(body["stat"], "ERR_JOB_NOT_EXIST", "{body}");
        // The seed's GET that deletes, from a foreign page: with an Origin, or as an <img> without one.
        let delete = server.url(&format!("/xingqiao/delete_job?job_id={job_id}"));
        let (status, body) = send(client.get(&delete).header("origin", "http://evil.example")).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN_ORIGIN")), "{body}");
        let (status, body) = send(client.get(&delete).header("sec-fetch-site", "cross-site")).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN_ORIGIN")), "{body}");
        let (_, body) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
        assert_eq!(body["stat"], "OK", "the job must survive: {body}");
        // Our own page may.
        let (status, _) = send(client.get(server.url("/xingqiao/list_jobs")).header("origin", &own_origin)).await;
        assert_eq!(status, 200);

        // An allowed origin gets CORS answers, preflight included.
        let preflight = client
            .request(reqwest::Method::OPTIONS, server.url("/xingqiao/create_job"))
            .header("origin", "https://console.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "https://console.example");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
        let allowed =
            client.get(server.url("/xingqiao/list_jobs")).header("origin", "https://console.example").send().await.unwrap();
        assert_eq!(allowed.status(), 200);
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://console.example");
        let refused_preflight = client
            .request(reqwest::Method::OPTIONS, server.url("/xingqiao/create_job"))
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST");
        let (status, body) = send(refused_preflight).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN_ORIGIN")), "{body}");

        // DNS rebinding: a foreign name for this address is refused while no token is set.
        let rebound = client.get(server.url("/xingqiao/list_jobs")).header("host", "attacker.example");
        let (status, body) = send(rebound).await;
        assert_eq!((status, &body["stat"]), (403, &json!("ERR_FORBIDDEN_HOST")), "{body}");
        let local = client.get(server.url("/xingqiao/list_jobs")).header("host", format!("localhost:{}", server.addr.port()));
        assert_eq!(send(local).await.0, 200);
        // Without a trusted proxy, X-Forwarded-For is ignored.
        let spoofed = client.post(server.url("/xingqiao/create_job")).header("x-forwarded-for", "198.51.100.1");
        let (_, body) = send(spoofed.json(&hello_job("spoofed"))).await;
        let (_, detail) = server.get(&format!("/xingqiao/get_job_detail?job_id={}", body["job_id"])).await;
        assert_eq!(detail["data"]["job_client"], "127.0.0.1", "{detail}");
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_other_host_names_are_served() {
    let server = TestServer::start_with("sqlite", &["--api-tokens", &tokens()]).await;
    let request = reqwest::Client::new().get(server.url("/xingqiao/list_jobs")).header("host", "xingqiao.internal");
    let (status, body) = send(request.bearer_auth(READ)).await;
    assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{body}");
    server.stop().await.unwrap();
}

#[test]
fn an_open_api_off_loopback_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("xq-open-{}", uuid::Uuid::new_v4().simple()));
    let serve = |extra: &[&str]| {
        Command::new(xingqiao_bin())
            .args(["serve", "--bind", &format!("0.0.0.0:{}", free_port()), "--data-dir"])
            .arg(&dir)
            .args(extra)
            .env_remove("XINGQIAO_API_TOKENS")
            .env_remove("XINGQIAO_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let output = serve(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("XINGQIAO_API_TOKENS") && stderr.contains("--insecure-no-auth"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A task handler on 127.0.0.1 (the handler base URL's host): `/redirect`
/// answers 302, `/big` a 3 MiB JSON reply, `/html` a page of secrets.
async fn stub_handler() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).await.is_ok() {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, content_type, body) = match path.as_str() {
                    "/redirect" => ("302 Found\r\nLocation: http://127.0.0.1:9/elsewhere", "text/plain", String::new()),
                    "/big" => (
                        "200 OK",
                        "application/json",
                        format!("{{\"stat\":\"OK\",\"blob\":\"{}\"}}", "a".repeat(3 << 20)),
                    ),
                    _ => ("500 Internal Server Error", "text/html", format!("<html>{}</html>", "secret ".repeat(500))),
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

per_backend! {
    async fn tasks_reach_only_allowed_hosts_and_read_bounded_replies(backend: &str) {
        let plugins = plugins_dir_with(&["e2e"]);
        let server = TestServer::start_with(backend, &["--plugins-dir", plugins.to_str().unwrap()]).await;
        let port = stub_handler().await;
        let cases = [
            (format!("http://localhost:{port}/big"), "ERR_TASK_HOST_NOT_ALLOWED"),
            (String::from("http://169.254.169.254/latest/meta-data/"), "ERR_TASK_HOST_NOT_ALLOWED"),
            (format!("http://127.0.0.1:{port}/redirect"), "ERR_TASK_REDIRECT"),
            (format!("http://127.0.0.1:{port}/big"), "ERR_TASK_REPLY_TOO_LARGE"),
            (format!("http://127.0.0.1:{port}/html"), "ERR_TASK_BAD_REPLY"),
        ];
        for (url, stat) in cases {
            let job = json!({"job_namespace": "sec", "job_type": "fixture_e2e", "job_extra": {"case": "url", "url": url}});
            let job_id = server.create_job(job).await;
            let detail = server.wait_job(job_id).await;
            assert_eq!((&detail["job_status"], &detail["ret_stat"]), (&json!("failed"), &json!(stat)), "{url}: {detail}");
            let task = &server.tasks(job_id).await[0];
            assert_eq!(task["ret_stat"], stat, "{task}");
            // Nothing of a refused or oversized reply is stored; of a page, a short labelled start.
            assert!(task.to_string().len() < 2000, "{url}: the task stores {} bytes", task.to_string().len());
            if stat == "ERR_TASK_BAD_REPLY" {
                assert_eq!(task["ret_data"]["reply"]["content_type"], "text/html", "{task}");
                assert_eq!(task["ret_data"]["reply"]["bytes"], 3513, "{task}");
            }
        }
        server.stop().await.unwrap();
        std::fs::remove_dir_all(plugins).unwrap();
    }
}

per_backend! {
    async fn every_answer_is_json_with_a_stat(backend: &str) {
        let server = TestServer::start(backend).await;
        let client = reqwest::Client::new();
        let (status, body) = send(client.get(server.url("/no/such/route"))).await;
        assert_eq!((status, &body["stat"]), (404, &json!("ERR_NOT_FOUND")), "{body}");
        let (status, body) = send(client.put(server.url("/xingqiao/list_jobs"))).await;
        assert_eq!((status, &body["stat"]), (405, &json!("ERR_METHOD_NOT_ALLOWED")), "{body}");
        let huge = format!("{{\"job_namespace\": \"{}\"}}", "n".repeat(300 << 10));
        let (status, body) = send(client.post(server.url("/xingqiao/create_job")).body(huge)).await;
        assert_eq!((status, &body["stat"]), (413, &json!("ERR_PAYLOAD_TOO_LARGE")), "{body}");
        let (status, body) = send(client.get(server.url("/xingqiao/list_jobs")).header("x-big", "h".repeat(40 << 10))).await;
        assert_eq!((status, &body["stat"]), (431, &json!("ERR_HEADERS_TOO_LARGE")), "{body}");
        let bad_json = client.post(server.url("/xingqiao/create_job")).header("content-type", "application/json");
        let (status, body) = send(bad_json.body("{\"job_type\": ")).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");
        assert!(!body.to_string().contains("Error("), "no Rust debug text: {body}");
        let gzip = client.post(server.url("/xingqiao/list_jobs")).header("content-encoding", "gzip");
        let (status, body) = send(gzip.body("not gzip at all")).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");

        for query in ["page=9223372036854775807&page_size=1000", "page=99999999999999999999", "page_size=-1"] {
            let (status, body) = server.get(&format!("/xingqiao/list_jobs?{query}")).await;
            assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{query}: {body}");
        }
        let mut job = hello_job("long");
        job["job_timeout"] = json!(2_147_483_648_i64);
        let (status, body) = server.post("/xingqiao/create_job", job).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");

        let job_id = server.create_job(hello_job("deleted")).await;
        server.wait_job(job_id).await;
        let task_id = server.tasks(job_id).await[0]["task_id"].as_i64().unwrap();
        let (status, _) = server.post("/xingqiao/delete_job", json!({"job_id": job_id})).await;
        assert_eq!(status, 200);
        let (status, body) = server.get(&format!("/xingqiao/get_task?task_id={task_id}")).await;
        assert_eq!((status, &body["stat"]), (404, &json!("ERR_TASK_NOT_EXIST")), "{body}");
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_handlers_exist_only_with_the_demo_plugins() {
    let server = TestServer::start_with("sqlite", &["--no-demo-plugins"]).await;
    let (status, body) = server.post("/demo_api/echo", json!({"a": 1})).await;
    assert_eq!((status, &body["stat"]), (404, &json!("ERR_NOT_FOUND")), "{body}");
    let (status, body) = server.post("/xingqiao/create_job", hello_job("gone")).await;
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_TYPE_NOT_EXISTS")), "{body}");
    server.stop().await.unwrap();
    let server = TestServer::start("sqlite").await;
    let (status, body) = server.post("/demo_api/echo", json!({"a": 1})).await;
    assert_eq!((status, &body["echo"]), (200, &json!({"a": 1})), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_while_the_server_drains() {
    let plugins = plugins_dir_with(&["e2e"]);
    let server = TestServer::start_with("sqlite", &["--plugins-dir", plugins.to_str().unwrap()]).await;
    let job_id = server
        .create_job(json!({"job_namespace": "sec", "job_type": "fixture_e2e", "job_extra": {"case": "slow"}}))
        .await;
    server
        .wait_until(Duration::from_secs(10), || async { server.tasks(job_id).await[0]["task_status"] == "started" })
        .await;
    server.begin_stop();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, body) = send(client.get(server.url("/healthz"))).await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/healthz kept answering {status} while draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["stat"], "ERR_DRAINING", "{body}");
    server.stop().await.unwrap();
    std::fs::remove_dir_all(plugins).unwrap();
}

per_backend! {
    async fn a_plugin_fault_is_a_500_with_its_kind_and_no_host_path(backend: &str) {
        let plugins = plugins_dir_with(&["trap", "infinite_loop", "memory_bomb"]);
        let server = TestServer::start_with(backend, &["--plugins-dir", plugins.to_str().unwrap()]).await;
        for (job_type, kind) in [("fixture_trap", "trap"), ("fixture_infinite_loop", "deadline"), ("fixture_memory_bomb", "memory")] {
            let (status, body) =
                server.post("/xingqiao/create_job", json!({"job_namespace": "sec", "job_type": job_type})).await;
            assert_eq!((status, &body["stat"]), (500, &json!("ERR_PLUGIN_FAULT")), "{job_type}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(&format!("({kind})")), "{job_type}: {message}");
            assert!(!message.contains("/root/") && !message.contains("/work/") && !message.contains("/home/"), "{message}");
        }
        let log = server.log_text();
        assert!(log.contains("plugin fault") && log.contains("fixture_trap") && log.contains("plugin_sha256"), "{log}");
        // A refusal the plugin chose stays the caller's fault.
        let (status, body) = server.post("/xingqiao/create_job", json!({"job_namespace": "sec", "job_type": "hello"})).await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_PARAMS_CHECK")), "{body}");
        server.stop().await.unwrap();
        std::fs::remove_dir_all(plugins).unwrap();
    }
}

/// `dot` processes whose parent is `pid`, read from /proc.
fn dot_children(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid …"
            let Some((comm, rest)) = stat.split_once(") ") else { return false };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            comm.ends_with("(dot") && ppid == Some(pid)
        })
        .count()
}

async fn graph_stat(server: &TestServer, job_id: i64) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = server.client.get(server.url(&format!("/xingqiao/get_graph?job_id={job_id}"))).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    let stat = serde_json::from_slice::<Value>(&body).map(|b| b["stat"].as_str().unwrap_or_default().to_owned());
    (status, stat.unwrap_or_else(|_| String::from("svg")), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_big_graph_stops_and_does_not_block_a_small_one() {
    let server = TestServer::start_with("sqlite", &["--graph-timeout-ms", "1500"]).await;
    let big = server.create_job(json!({"job_namespace": "t", "job_type": "fanout", "job_extra": {"n": 9999}})).await;
    let small = server.create_job(json!({"job_namespace": "t", "job_type": "ping"})).await;
    server.wait_job(big).await;
    let pid = server.process_id().unwrap();
    // Two at once: both render slots of a 2-core machine are taken, then freed.
    // Looked for while the renders run (a single look could come before the
    // job's 10,000 tasks are read on a busy machine).
    let watch = async {
        let mut most = 0;
        for _ in 0..60 {
            most = most.max(dot_children(pid));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        most
    };
    let (first, second, rendering) = tokio::join!(graph_stat(&server, big), graph_stat(&server, big), watch);
    assert!(rendering >= 1, "no `dot` was seen rendering");
    for (status, stat, _) in [&first, &second] {
        assert_eq!((*status, stat.as_str()), (503, "ERR_GRAPH_TIMEOUT"));
    }
    let (status, stat, took) = graph_stat(&server, small).await;
    assert_eq!((status, stat.as_str()), (200, "svg"), "took {took:?}");
    // The timed-out renders were killed, not left running.
    server.wait_until(Duration::from_secs(2), || async { dot_children(pid) == 0 }).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_graphviz_a_big_graph_is_refused_at_once_and_small_ones_render() {
    let server = TestServer::start_with("sqlite", &["--graphviz-dot", "/nonexistent/dot"]).await;
    let big = server.create_job(json!({"job_namespace": "t", "job_type": "fanout", "job_extra": {"n": 9999}})).await;
    let small = server.create_job(json!({"job_namespace": "t", "job_type": "ping"})).await;
    let (status, stat, took) = graph_stat(&server, big).await;
    assert_eq!((status, stat.as_str()), (503, "ERR_GRAPH_TOO_LARGE"), "took {took:?}");
    let (status, stat, _) = graph_stat(&server, small).await;
    assert_eq!((status, stat.as_str()), (200, "svg"));
    server.stop().await.unwrap();
}
