//! The plugin admin API (issue 6): uploads over HTTP, validation with a stat
//! per refusal, versions, activation and rollback, disabling, the token, and
//! a change made on one instance seen by another.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xingqiao_tests::{Redis, TestDb, TestServer, fixture_wasm, per_backend};

const TOKEN: &str = "test-admin-token-0123456789";

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_wasm(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `serve` flags: the admin API on, with `TOKEN`.
const ADMIN: &[&str] = &["--admin-token", TOKEN];

fn admin_and<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = ADMIN.to_vec();
    args.extend_from_slice(more);
    args
}

async fn reply(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

async fn upload(server: &TestServer, bytes: Vec<u8>) -> (u16, Value) {
    let request = server
        .client
        .post(server.url("/admin/plugins?operator=tester"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/wasm")
        .body(bytes);
    reply(request.send().await.unwrap()).await
}

async fn admin(server: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.client.request(method, server.url(path)).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.unwrap()).await
}

async fn try_create(server: &TestServer, job_type: &str, extra: Value) -> (u16, Value) {
    server
        .post("/xingqiao/create_job", json!({"job_namespace": "tests", "job_type": job_type, "job_extra": extra}))
        .await
}

/// The saved result of the job's `greet` task.
async fn greeting(server: &TestServer, job_id: i64) -> String {
    let tasks = server.tasks(job_id).await;
    let greet = tasks.iter().find(|task| task["task_label"] == "greet").unwrap();
    greet["ret_data"]["echo"]["greeting"].as_str().unwrap().to_owned()
}

per_backend! {
    async fn uploaded_versions_run_jobs_roll_forward_and_back_and_can_be_disabled(backend: &str) {
        let server = TestServer::start_with(backend, ADMIN).await;
        let v1 = fixture("greeter_v1");
        let (status, body) = upload(&server, v1.clone()).await;
        assert_eq!((status, &body["stat"]), (201, &json!("OK")), "{backend}: {body}");
        assert_eq!(body["data"]["job_type"], "greeter");
        assert_eq!(body["data"]["version"], "1.0.0");
        assert_eq!(body["data"]["uploader"], "tester");
        assert_eq!(body["data"]["size"], v1.len());
        let v1_sha = body["data"]["sha256"].as_str().unwrap().to_owned();
        // Identical bytes again: nothing new, 200 instead of 201.
        let (status, again) = upload(&server, v1.clone()).await;
        assert_eq!((status, &again["data"]["created"]), (200, &json!(false)), "{again}");
        assert_eq!(again["data"]["sha256"], v1_sha.as_str());

        // A v1 job still running when v2 arrives keeps v1 and finishes on it.
        let slow = server
            .create_job(json!({"job_namespace": "tests", "job_type": "greeter", "job_extra": {"wait_secs": 1.5}}))
            .await;
        let (status, body) = upload(&server, fixture("greeter_v2")).await;
        assert_eq!(status, 201, "{body}");
        let v2_sha = body["data"]["sha256"].as_str().unwrap().to_owned();
        let fresh = server
            .create_job(json!({"job_namespace": "tests", "job_type": "greeter", "job_extra": {"name": "bob"}}))
            .await;
        let slow_job = server.wait_job(slow).await;
        assert_eq!((&slow_job["job_status"], &slow_job["plugin_version"]), (&json!("finished"), &json!("1.0.0")));
        assert_eq!(greeting(&server, slow).await, "hello from greeter 1.0.0");
        assert_eq!(slow_job["plugin_sha256"], v1_sha.as_str());
        assert_eq!(server.tasks(slow).await.len(), 2);
        let fresh_job = server.wait_job(fresh).await;
        assert_eq!((&fresh_job["job_status"], &fresh_job["plugin_version"]), (&json!("finished"), &json!("2.0.0")));
        assert_eq!(greeting(&server, fresh).await, "hello bob from greeter 2.0.0");
        assert_eq!(fresh_job["plugin_sha256"], v2_sha.as_str());

        let (status, detail) = admin(&server, reqwest::Method::GET, "/admin/plugins/greeter", None).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!((&detail["data"]["version"], &detail["data"]["status"]), (&json!("2.0.0"), &json!("active")));
        let versions: Vec<(&str, bool)> = detail["data"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["version"].as_str().unwrap(), v["active"].as_bool().unwrap()))
            .collect();
        assert_eq!(versions, [("1.0.0", false), ("2.0.0", true)]);
        assert_eq!(detail["data"]["job_extra_schema"]["properties"]["name"]["type"], "string");

        // Roll back by version, forward by sha256.
        let (status, body) =
            admin(&server, reqwest::Method::POST, "/admin/plugins/greeter/activate", Some(json!({"version": "1.0.0"})))
                .await;
        assert_eq!((status, &body["data"]["version"]), (200, &json!("1.0.0")), "{body}");
        let rolled_back = server.create_job(json!({"job_namespace": "tests", "job_type": "greeter"})).await;
        assert_eq!(server.wait_job(rolled_back).await["plugin_version"], "1.0.0");
        let (status, body) =
            admin(&server, reqwest::Method::POST, "/admin/plugins/greeter/activate", Some(json!({"sha256": v2_sha})))
                .await;
        assert_eq!((status, &body["data"]["version"]), (200, &json!("2.0.0")), "{body}");
        let (status, body) =
            admin(&server, reqwest::Method::POST, "/admin/plugins/greeter/activate", Some(json!({"version": "9.9.9"})))
                .await;
        assert_eq!((status, &body["stat"]), (404, &json!("ERR_PLUGIN_VERSION_NOT_FOUND")), "{body}");
        let (status, body) =
            admin(&server, reqwest::Method::POST, "/admin/plugins/nothing/activate", Some(json!({"version": "1"})))
                .await;
        assert_eq!((status, &body["stat"]), (404, &json!("ERR_PLUGIN_NOT_FOUND")), "{body}");

        // Disable: running jobs finish, new ones are refused, nothing is erased.
        admin(&server, reqwest::Method::POST, "/admin/plugins/greeter/activate", Some(json!({"version": "1.0.0"})))
            .await;
        let running = server
            .create_job(json!({"job_namespace": "tests", "job_type": "greeter", "job_extra": {"wait_secs": 1}}))
            .await;
        let (status, body) = admin(&server, reqwest::Method::DELETE, "/admin/plugins/greeter", None).await;
        assert_eq!((status, &body["data"]["status"]), (200, &json!("disabled")), "{body}");
        let (status, refused) = try_create(&server, "greeter", json!({})).await;
        assert_eq!((status, &refused["stat"]), (400, &json!("ERR_JOB_TYPE_NOT_EXISTS")), "{refused}");
        assert_eq!(server.wait_job(running).await["job_status"], "finished");
        let (_, listed) = admin(&server, reqwest::Method::GET, "/admin/plugins", None).await;
        let greeter = listed["data"].as_array().unwrap().iter().find(|p| p["job_type"] == "greeter").unwrap().clone();
        assert_eq!(
            (&greeter["status"], &greeter["versions"], &greeter["source"]),
            (&json!("disabled"), &json!(2), &json!("uploaded"))
        );
        let hello = listed["data"].as_array().unwrap().iter().find(|p| p["job_type"] == "hello").unwrap().clone();
        assert_eq!((&hello["source"], &hello["status"]), (&json!("builtin"), &json!("active")));
        let (status, body) = admin(&server, reqwest::Method::DELETE, "/admin/plugins/hello", None).await;
        assert_eq!((status, &body["stat"]), (409, &json!("ERR_PLUGIN_BUILTIN")), "{body}");
        let (status, body) = admin(&server, reqwest::Method::DELETE, "/admin/plugins/nothing", None).await;
        assert_eq!((status, &body["stat"]), (404, &json!("ERR_PLUGIN_NOT_FOUND")), "{body}");

        // Activating brings it back; a restart loads it before serving, from
        // the precompiled artifact cached on disk.
        admin(&server, reqwest::Method::POST, "/admin/plugins/greeter/activate", Some(json!({"version": "2.0.0"})))
            .await;
        let (stopped, db) = server.stop_keeping_db().await;
        stopped.unwrap();
        let cached: Vec<String> = std::fs::read_dir(db.dir.join("plugin-cache"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(cached.iter().any(|name| name.starts_with(&v2_sha) && name.ends_with(".cwasm")), "{cached:?}");
        // What another engine (an older binary) left is pruned at start; ours stays.
        let foreign = db.dir.join("plugin-cache").join(format!("{v2_sha}-00000000deadbeef.cwasm"));
        std::fs::write(&foreign, b"not for this engine").unwrap();
        let server = TestServer::start_on(db, ADMIN).await;
        assert!(!foreign.exists(), "a foreign artifact was kept");
        let left = std::fs::read_dir(server.db.dir.join("plugin-cache")).unwrap().count();
        assert_eq!(left, cached.len(), "the current artifacts were kept");
        let (status, body) = try_create(&server, "greeter", json!({"name": "again"})).await;
        assert_eq!(status, 200, "{backend}: {body}");
        let job_id = body["job_id"].as_i64().unwrap();
        assert_eq!(server.wait_job(job_id).await["plugin_version"], "2.0.0");
        assert_eq!(greeting(&server, job_id).await, "hello again from greeter 2.0.0");
        server.stop().await.unwrap();
    }
}

/// Appends a custom section: other bytes (another sha256), same component.
fn with_custom_section(mut bytes: Vec<u8>) -> Vec<u8> {
    let payload = b"\x04noteanother build";
    bytes.push(0);
    bytes.push(u8::try_from(payload.len()).unwrap());
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_upload_is_refused_with_its_stat_and_nothing_is_stored() {
    let server = TestServer::start_with("sqlite", ADMIN).await;
    let hello = fixture("hello");
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("junk", b"#!/bin/sh\necho hi\n".to_vec(), 400, "ERR_PLUGIN_NOT_WASM", "magic"),
        ("empty", Vec::new(), 400, "ERR_PLUGIN_NOT_WASM", "magic"),
        ("core module", b"\0asm\x01\0\0\0".to_vec(), 400, "ERR_PLUGIN_NOT_COMPONENT", "wasm32-wasip2"),
        ("truncated", hello[..200].to_vec(), 400, "ERR_PLUGIN_COMPILE", "does not compile"),
        ("foreign import", fixture("foreign_import"), 400, "ERR_PLUGIN_IMPORTS", "phone-home"),
        ("other world", fixture("other_world"), 400, "ERR_PLUGIN_EXPORTS", "xingqiao:workflow"),
        ("bad metadata", fixture("bad_metadata"), 400, "ERR_PLUGIN_METADATA", "not a job type!"),
        ("slow metadata", fixture("slow_metadata"), 400, "ERR_PLUGIN_METADATA", "metadata ran past its deadline"),
        ("a built-in's name", hello.clone(), 409, "ERR_PLUGIN_BUILTIN", "--no-demo-plugins"),
    ];
    for (case, bytes, status, stat, reason) in cases {
        let (got, body) = upload(&server, bytes).await;
        assert_eq!((got, body["stat"].as_str().unwrap()), (status, stat), "{case}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{case}: {message:?} should say {reason:?}");
    }
    // curl --data-binary without a Content-Type sends the bytes as a "form": taken as they are.
    let plain_curl = server.client.post(server.url("/admin/plugins")).bearer_auth(TOKEN);
    let plain_curl = plain_curl.header("content-type", "application/x-www-form-urlencoded").body(fixture("greeter_v1"));
    let (status, body) = reply(plain_curl.send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = upload(&server, with_custom_section(fixture("greeter_v1"))).await;
    assert_eq!((status, &body["stat"]), (409, &json!("ERR_PLUGIN_VERSION_EXISTS")), "{body}");
    let (status, body) = server
        .client
        .post(server.url("/admin/plugins"))
        .bearer_auth(TOKEN)
        .json(&json!({"plugin": "greeter"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    let body: Value = body.json().await.unwrap();
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");

    // Only the one good upload is stored.
    let (_, detail) = admin(&server, reqwest::Method::GET, "/admin/plugins/greeter", None).await;
    assert_eq!(detail["data"]["versions"].as_array().unwrap().len(), 1, "{detail}");
    let (_, listed) = admin(&server, reqwest::Method::GET, "/admin/plugins", None).await;
    let uploaded = listed["data"].as_array().unwrap().iter().filter(|p| p["source"] == "uploaded").count();
    assert_eq!(uploaded, 1, "{listed}");
    server.stop().await.unwrap();
}

/// A hand-made multipart form with the component as its `plugin` file.
fn multipart(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "xingqiao-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nfirst upload\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"plugin\"; filename=\"greeter.wasm\"\r\n\
         Content-Type: application/wasm\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends `body` with chunked transfer encoding (no Content-Length), so only
/// counting while reading can stop it; returns the status line and body.
fn chunked_upload(addr: std::net::SocketAddr, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /admin/plugins HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/wasm\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(500) {
        // The server may answer and close before everything is sent.
        if stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).is_err()
            || stream.write_all(piece).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_work_and_the_size_and_compile_time_caps_hold() {
    let server = TestServer::start_with("sqlite", ADMIN).await;
    let (content_type, body) = multipart(&fixture("greeter_v2"));
    let response = server
        .client
        .post(server.url("/admin/plugins"))
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, body) = reply(response).await;
    assert_eq!((status, &body["data"]["version"]), (201, &json!("2.0.0")), "{body}");
    let job_id = server
        .create_job(json!({"job_namespace": "tests", "job_type": "greeter", "job_extra": {"name": "form"}}))
        .await;
    assert_eq!(server.wait_job(job_id).await["job_status"], "finished");
    server.stop().await.unwrap();

    let server = TestServer::start_with("sqlite", &admin_and(&["--max-plugin-bytes", "1000"])).await;
    let (status, body) = upload(&server, fixture("greeter_v1")).await;
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_PLUGIN_TOO_LARGE")), "{body}");
    let addr = server.addr;
    let answer = tokio::task::spawn_blocking(move || chunked_upload(addr, &fixture("greeter_v1"))).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("ERR_PLUGIN_TOO_LARGE"), "{answer}");
    server.stop().await.unwrap();

    let server = TestServer::start_with("sqlite", &admin_and(&["--plugin-compile-timeout-ms", "1"])).await;
    let (status, body) = upload(&server, fixture("greeter_v2")).await;
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_PLUGIN_COMPILE_TIMEOUT")), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_a_configured_token_and_the_right_one() {
    let server = TestServer::start("sqlite").await;
    let (status, body) = upload(&server, fixture("greeter_v1")).await;
    assert_eq!((status, &body["stat"]), (403, &json!("ERR_ADMIN_DISABLED")), "{body}");
    let (status, body) = admin(&server, reqwest::Method::GET, "/admin/plugins", None).await;
    assert_eq!((status, &body["stat"]), (403, &json!("ERR_ADMIN_DISABLED")), "{body}");
    server.stop().await.unwrap();

    let server = TestServer::start_with("sqlite", ADMIN).await;
    // `server.client` sends the admin token; a bare client sends none.
    let bare = reqwest::Client::new().get(server.url("/admin/plugins")).send().await.unwrap();
    let (status, body) = reply(bare).await;
    assert_eq!((status, &body["stat"]), (401, &json!("ERR_UNAUTHORIZED")), "{body}");
    let wrong = server.client.post(server.url("/admin/plugins")).bearer_auth("test-admin-token-0123456780");
    let (status, body) = reply(wrong.body(fixture("greeter_v1")).send().await.unwrap()).await;
    assert_eq!((status, &body["stat"]), (401, &json!("ERR_UNAUTHORIZED")), "{body}");
    let (status, body) = admin(&server, reqwest::Method::GET, "/admin/plugins", None).await;
    assert_eq!((status, &body["stat"]), (200, &json!("OK")), "{body}");
    // Nothing was stored by the refused upload.
    assert!(body["data"].as_array().unwrap().iter().all(|p| p["job_type"] != "greeter"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_demo_plugins_a_demo_name_can_be_uploaded() {
    let server = TestServer::start_with("sqlite", &admin_and(&["--no-demo-plugins"])).await;
    let (status, body) = try_create(&server, "ping", json!({})).await;
    assert_eq!((status, &body["stat"]), (400, &json!("ERR_JOB_TYPE_NOT_EXISTS")), "{body}");
    let (status, body) = upload(&server, fixture("ping")).await;
    assert_eq!((status, &body["data"]["job_type"]), (201, &json!("ping")), "{body}");
    let job_id = server.create_job(json!({"job_namespace": "tests", "job_type": "ping"})).await;
    // It ran on the upload; the demo handlers it calls left with the demos.
    let job = server.wait_job(job_id).await;
    assert_eq!((&job["job_status"], &job["ret_stat"]), (&json!("failed"), &json!("ERR_NOT_FOUND")), "{job}");
    assert_eq!(job["plugin_sha256"], body["data"]["sha256"], "{job}");
    server.stop().await.unwrap();
}

/// Polls `server` until create_job of `greeter` is accepted; how long it took.
async fn time_until_greeter_works(server: &TestServer, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = try_create(server, "greeter", json!({})).await;
        if status == 200 {
            return started.elapsed();
        }
        assert_eq!(body["stat"], "ERR_JOB_TYPE_NOT_EXISTS", "{body}");
        assert!(started.elapsed() < limit, "greeter not usable on the other instance within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

per_backend! {
    async fn an_upload_on_one_instance_is_usable_on_another_within_two_seconds(backend: &str) {
        // The timed refresh (every second by default) is what guarantees it; the
        // other instance has its own data folder, so it compiles the plugin itself.
        let db = TestDb::create(backend).await;
        let other_db = db.shared_with_own_dir();
        let first = TestServer::start_on(db, ADMIN).await;
        let second = TestServer::start_on(other_db, ADMIN).await;
        let (status, body) = upload(&first, fixture("greeter_v1")).await;
        assert_eq!(status, 201, "{body}");
        let took = time_until_greeter_works(&second, Duration::from_secs(2)).await;
        eprintln!("{backend}: the upload was usable on the other instance after {took:?}");
        // Disabling travels the same way.
        admin(&first, reqwest::Method::DELETE, "/admin/plugins/greeter", None).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while try_create(&second, "greeter", json!({})).await.0 == 200 {
            assert!(Instant::now() < deadline, "{backend}: still enabled on the other instance after 2 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        second.stop().await.unwrap();
        first.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_other_instances_hear_of_a_change_at_once() {
    // A refresh period far longer than the test: only the Redis announcement
    // can make the other instance see the upload in time.
    let redis = Redis::start();
    let db = TestDb::create("sqlite").await;
    let other_db = db.shared_with_own_dir();
    let args = admin_and(&["--plugin-refresh-ms", "600000", "--redis-url", &redis.url]);
    let first = TestServer::start_on(db, &args).await;
    let second = TestServer::start_on(other_db, &args).await;
    let (status, body) = upload(&first, fixture("greeter_v1")).await;
    assert_eq!(status, 201, "{body}");
    let took = time_until_greeter_works(&second, Duration::from_secs(2)).await;
    eprintln!("announced through Redis: usable on the other instance after {took:?}");
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_own_version_is_found_again_after_another_is_activated() {
    // What job_notifier (and so retry_job) calls for a job: the component of
    // the job's plugin_sha256, not the active version.
    let server = TestServer::start_with("sqlite", ADMIN).await;
    let (_, v1) = upload(&server, fixture("greeter_v1")).await;
    let (_, v2) = upload(&server, fixture("greeter_v2")).await;
    let v1_sha = v1["data"]["sha256"].as_str().unwrap().to_owned();
    let db = xingqiao::db::Database::connect(&server.db.url, 2).unwrap();
    let cache_dir = std::env::temp_dir().join(format!("xq-cache-{}", uuid::Uuid::new_v4().simple()));
    let options = xingqiao::plugins::RegistryOptions {
        demos: true,
        plugins_dir: None,
        cache_dir: cache_dir.clone(),
        compile_timeout: Duration::from_secs(60),
    };
    let runtime = xingqiao::runtime::PluginRuntime::new(xingqiao::runtime::SandboxLimits::default()).unwrap();
    let registry = tokio::task::spawn_blocking(move || xingqiao::plugins::Registry::new(runtime, &options))
        .await
        .unwrap()
        .unwrap();
    registry.refresh(&db).await.unwrap();
    let active = registry.entry("greeter").unwrap();
    assert_eq!(
        (active.plugin.metadata().version.as_str(), active.sha256.as_str()),
        ("2.0.0", v2["data"]["sha256"].as_str().unwrap())
    );
    let own = registry.for_job(&db, "greeter", &v1_sha).await.unwrap();
    assert_eq!(own.metadata().version, "1.0.0");
    assert!(registry.for_job(&db, "greeter", &"0".repeat(64)).await.is_none(), "an unknown version is not invented");
    // A built-in's component changes with every build (it embeds paths): its
    // old jobs get the built-in this binary has.
    let built_in = registry.for_job(&db, "hello", &"0".repeat(64)).await.unwrap();
    assert_eq!(built_in.metadata().job_type, "hello");
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(cache_dir);
}
