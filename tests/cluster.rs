//! Several instances on one database and one Redis (issue 5, first part):
//! jobs created on one instance are run by another through Redis Streams.
//! Each test starts its own `redis-server` on a spare port (`scripts/test`
//! installs it when missing) and fails loudly if it cannot.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::time::{Duration, Instant};

use serde_json::json;
use xingqiao_tests::{Redis, TestDb, TestServer, per_backend};

per_backend! {
    networked async fn jobs_created_on_an_api_only_instance_are_run_by_another(backend: &str) {
        let redis = Redis::start();
        let db = TestDb::create(backend).await;
        let shared = db.shared();
        let api = TestServer::start_on(db, &["--redis-url", &redis.url, "--no-workers"]).await;
        let worker = TestServer::start_on(shared, &["--redis-url", &redis.url]).await;
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

async fn total(client: &reqwest::Client, base: &str, query: &str) -> i64 {
    let reply: serde_json::Value =
        client.get(format!("{base}/xingqiao/list_jobs?{query}")).send().await.unwrap().json().await.unwrap();
    reply["data"]["total"].as_i64().unwrap()
}

per_backend! {
    networked async fn killing_one_of_two_instances_loses_no_job(backend: &str) {
        let redis = Redis::start();
        let db = TestDb::create(backend).await;
        let args: Vec<String> = ["--redis-url", &redis.url, "--visibility-timeout-ms", "2000", "--sweep-interval-ms", "200", "--workers", "16"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        // Started at the same instant: they must not race on the migrations.
        let mut survivor = TestServer::spawn(db.shared_with_own_dir(), args.clone());
        let mut victim = TestServer::spawn(db.shared_with_own_dir(), args);
        survivor.wait_ready().await;
        victim.wait_ready().await;
        let client = reqwest::Client::new();
        let survivor_base = survivor.url("");
        let victim_base = victim.url("");
        for i in 0..300 {
            let base = if i % 2 == 0 { &survivor_base } else { &victim_base };
            let body = if i % 3 == 0 {
                json!({"job_namespace": "n", "job_type": "chain", "job_extra": {"n": 4}})
            } else {
                json!({"job_namespace": "n", "job_type": "hello", "job_extra": {"str_info": "x"}})
            };
            let response = client.post(format!("{base}/xingqiao/create_job")).json(&body).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{backend}");
        }
        // Mid-run: SIGKILL, no chance to hand anything back.
        victim.kill();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let running = total(&client, &survivor_base, "job_status=started").await;
            if running == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{backend}: {running} jobs never ended after the kill");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(total(&client, &survivor_base, "").await, 300, "{backend}: no job lost");
        assert_eq!(total(&client, &survivor_base, "job_status=finished").await, 300, "{backend}: every job finished");
        drop(victim);
        drop(survivor);
        drop(db);
    }
}

per_backend! {
    networked async fn a_redis_outage_mid_run_delays_jobs_but_loses_none(backend: &str) {
        let redis = Redis::start();
        let port = redis.port;
        let args = ["--redis-url", &redis.url, "--visibility-timeout-ms", "2000", "--sweep-interval-ms", "200"];
        let server = TestServer::start_with(backend, &args).await;
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

per_backend! {
    networked async fn while_the_database_is_unreachable_the_api_answers_503_and_work_resumes_after(backend: &str) {
        let db = TestDb::create(backend).await;
        let upstream = if backend == "mysql" { 3306 } else { 5432 };
        let cable = Cable::to(upstream).await;
        let through_cable = db.url.replacen(&format!(":{upstream}/"), &format!(":{}/", cable.port), 1);
        // mysql_async would switch to the Unix socket and bypass the cable.
        let through_cable =
            if backend == "mysql" { format!("{through_cable}?prefer_socket=false") } else { through_cable };
        let mut shared = db.shared();
        shared.url = through_cable;
        let server =
            TestServer::start_on(shared, &["--visibility-timeout-ms", "2000", "--sweep-interval-ms", "200"]).await;
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

/// The sweeper leaves pending tasks alone while the stream still holds
/// undelivered entries; that count is the consumer group's lag.
#[tokio::test]
async fn the_redis_queue_counts_entries_no_worker_has_read() {
    use xingqiao::dispatch::{RedisQueue, TaskMessage};
    let redis = Redis::start();
    let queue = RedisQueue::connect(&redis.url, "undelivered-test").await.unwrap();
    assert_eq!(queue.undelivered().await, Some(0));
    for task_id in 1..=3 {
        queue.push(TaskMessage { task_id, attempt: 0 });
    }
    // Pushes reach the stream through the outbox, a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.undelivered().await != Some(3) {
        assert!(Instant::now() < deadline, "lag never reached 3: {:?}", queue.undelivered().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = queue.pop().await.unwrap();
    assert_eq!(first.message.task_id, 1);
    assert_eq!(queue.undelivered().await, Some(2));
    drop(redis);
    assert_eq!(queue.undelivered().await, None, "a Redis that does not answer cannot tell");
}
