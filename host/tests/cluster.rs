//! Several instances on one database and one Redis (issue 5, first part):
//! jobs created on one instance are run by another through Redis Streams.
//! The test starts its own `redis-server` on a spare port (`.ci/run` installs
//! it when missing) and fails loudly if it cannot.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Redis, TestDb, TestServer, backends};
use serde_json::json;
use xingqiao::config::ServeArgs;

fn cluster_backends() -> Vec<String> {
    backends().into_iter().filter(|b| b != "sqlite").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_created_on_an_api_only_instance_are_run_by_another() {
    for backend in cluster_backends() {
        let redis = Redis::start();
        let db = TestDb::create(&backend).await;
        let shared = db.shared();
        let args = |no_workers| ServeArgs { redis_url: Some(redis.url.clone()), no_workers, ..Default::default() };
        let api = TestServer::start_on(db, args(true)).await;
        let worker = TestServer::start_on(shared, args(false)).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let job_type = if i % 2 == 0 { "hello" } else { "chain" };
            ids.push(
                api.create_job(
                    json!({"job_namespace": "n", "job_type": job_type, "job_extra": {"str_info": "x", "n": 5}}),
                )
                .await,
            );
        }
        for id in ids {
            let detail = api.wait_job(id).await;
            assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        }
        let (_, listed) = api.get("/xingqiao/list_jobs?job_status=finished").await;
        assert_eq!(listed["data"]["total"], 20, "{backend}");
        worker.stop().await.unwrap();
        api.stop().await.unwrap();
    }
}

/// A `xingqiao serve` process of its own, so it can be killed with SIGKILL.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    /// Spawns the process; [`Instance::wait_ready`] waits for its port.
    fn spawn(database_url: &str, redis_url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("xq-instance-{}", uuid::Uuid::new_v4().simple()));
        let child = Command::new(env!("CARGO_BIN_EXE_xingqiao"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir", &dir.display().to_string()])
            .args(["--database-url", database_url, "--redis-url", redis_url])
            .args(["--visibility-timeout-ms", "2000", "--sweep-interval-ms", "200", "--workers", "16"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    fn wait_ready(&mut self) {
        let address = self.base.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&address).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("an instance exited while starting: {status}");
            }
            assert!(Instant::now() < deadline, "an instance did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn total(client: &reqwest::Client, base: &str, query: &str) -> i64 {
    let reply: serde_json::Value =
        client.get(format!("{base}/xingqiao/list_jobs?{query}")).send().await.unwrap().json().await.unwrap();
    reply["data"]["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_instances_loses_no_job() {
    xingqiao::executor::install_tls_provider();
    for backend in cluster_backends() {
        let redis = Redis::start();
        let db = TestDb::create(&backend).await;
        // Started at the same instant: they must not race on the migrations.
        let mut survivor = Instance::spawn(&db.url, &redis.url);
        let mut victim = Instance::spawn(&db.url, &redis.url);
        survivor.wait_ready();
        victim.wait_ready();
        let client = reqwest::Client::new();
        for i in 0..300 {
            let base = if i % 2 == 0 { &survivor.base } else { &victim.base };
            let body = if i % 3 == 0 {
                json!({"job_namespace": "n", "job_type": "chain", "job_extra": {"n": 4}})
            } else {
                json!({"job_namespace": "n", "job_type": "hello", "job_extra": {"str_info": "x"}})
            };
            let response = client.post(format!("{base}/xingqiao/create_job")).json(&body).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{backend}");
        }
        // Mid-run: SIGKILL, no chance to hand anything back.
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let running = total(&client, &survivor.base, "job_status=started").await;
            if running == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{backend}: {running} jobs never ended after the kill");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(total(&client, &survivor.base, "").await, 300, "{backend}: no job lost");
        assert_eq!(total(&client, &survivor.base, "job_status=finished").await, 300, "{backend}: every job finished");
        drop(victim);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_mid_run_delays_jobs_but_loses_none() {
    for backend in cluster_backends() {
        let redis = Redis::start();
        let port: u16 = redis.url.rsplit(':').next().unwrap().parse().unwrap();
        let args = ServeArgs {
            redis_url: Some(redis.url.clone()),
            visibility_timeout_ms: Some(2000),
            sweep_interval_ms: Some(200),
            ..Default::default()
        };
        let server = TestServer::start_with(&backend, args).await;
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(
                server.create_job(json!({"job_namespace": "n", "job_type": "chain", "job_extra": {"n": 5}})).await,
            );
        }
        // Redis goes away mid-run for 5 s and comes back empty.
        drop(redis);
        for _ in 0..10 {
            ids.push(
                server
                    .create_job(json!({"job_namespace": "n", "job_type": "hello", "job_extra": {"str_info": "x"}}))
                    .await,
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let redis = Redis::start_on(port);
        for id in &ids {
            let detail = server.wait_job(*id).await;
            assert_eq!(detail["job_status"], "finished", "{backend}: {detail}");
        }
        server.stop().await.unwrap();
        drop(redis);
    }
}

/// A TCP proxy in front of the database, to cut it off and bring it back.
struct Cable {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn to(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (accept_down, accept_links) = (down.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Checked and recorded under the lock `cut` takes: no link
                // slips through a cut.
                let mut links = accept_links.lock().unwrap();
                if accept_down.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the database is "unreachable"
                }
                links.push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self { port, down, links }
    }

    fn cut(&self) {
        let mut links = self.links.lock().unwrap();
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in links.drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unreachable_the_api_answers_503_and_work_resumes_after() {
    for backend in cluster_backends() {
        let db = TestDb::create(&backend).await;
        let upstream = if backend == "mysql" { 3306 } else { 5432 };
        let cable = Cable::to(upstream).await;
        let through_cable = db.url.replacen(&format!(":{upstream}/"), &format!(":{}/", cable.port), 1);
        // mysql_async would switch to the Unix socket and bypass the cable.
        let through_cable =
            if backend == "mysql" { format!("{through_cable}?prefer_socket=false") } else { through_cable };
        let mut shared = db.shared();
        shared.url = through_cable;
        let args = ServeArgs { visibility_timeout_ms: Some(2000), sweep_interval_ms: Some(200), ..Default::default() };
        let server = TestServer::start_on(shared, args).await;
        let before =
            server.create_job(json!({"job_namespace": "n", "job_type": "chain", "job_extra": {"n": 20}})).await;

        cable.cut();
        // The cut is asynchronous: wait until the server itself sees it.
        server
            .wait_until(Duration::from_secs(20), || async {
                server.client.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status().as_u16() == 503)
            })
            .await;
        let (status, reply) =
            server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "ping"})).await;
        assert_eq!((status, reply["stat"].as_str()), (503, Some("ERR_STORE_UNAVAILABLE")), "{backend}: {reply}");
        let (status, reply) = server.get(&format!("/xingqiao/get_job_detail?job_id={before}")).await;
        assert_eq!((status, reply["stat"].as_str()), (503, Some("ERR_STORE_UNAVAILABLE")), "{backend}: {reply}");

        cable.mend();
        let detail = server.wait_job(before).await;
        assert_eq!(detail["job_status"], "finished", "{backend}: work resumed by itself: {detail}");
        let after = server.create_job(json!({"job_namespace": "n", "job_type": "ping"})).await;
        assert_eq!(server.wait_job(after).await["job_status"], "finished", "{backend}");
        server.stop().await.unwrap();
        drop(db);
    }
}
