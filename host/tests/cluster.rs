//! Several instances on one database and one Redis (issue 5, first part):
//! jobs created on one instance are run by another through Redis Streams.
//! The test starts its own `redis-server` on a spare port (`.ci/run` installs
//! it when missing) and fails loudly if it cannot.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, TestServer, backends};
use serde_json::json;
use xingqiao::config::ServeArgs;

/// A throwaway Redis, killed when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start redis-server ({err}); the cluster tests need it"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
