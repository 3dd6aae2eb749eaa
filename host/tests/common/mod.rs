//! End-to-end test helpers: a real server on `127.0.0.1:0` over a database of
//! its own, created for the test and dropped after it.
//!
//! Backends come from `XINGQIAO_TEST_DATABASES` (default
//! `sqlite,mysql,postgres`: the machine runs MariaDB and PostgreSQL). A backend
//! that is listed but unreachable fails the test: nothing is skipped silently.
//! Admin URLs: `XINGQIAO_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`),
//! `XINGQIAO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(dead_code, reason = "each test file uses part of the helpers")]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tokio::sync::oneshot;
use xingqiao::config::{Config, ServeArgs};

pub fn backends() -> Vec<String> {
    std::env::var("XINGQIAO_TEST_DATABASES")
        .unwrap_or_else(|_| "sqlite,mysql,postgres".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn mysql_admin() -> String {
    std::env::var("XINGQIAO_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn postgres_admin() -> String {
    std::env::var("XINGQIAO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

/// A database made for one test; dropped with it.
pub struct TestDb {
    pub backend: String,
    pub url: String,
    name: String,
    pub dir: PathBuf,
}

impl TestDb {
    pub async fn create(backend: &str) -> Self {
        let name = format!("xq_test_{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}", dir.join("xingqiao.db").display()),
            "mysql" => {
                let mut conn = AsyncMysqlConnection::establish(&mysql_admin()).await.unwrap_or_else(|err| {
                    panic!("MariaDB is not reachable at {} ({err}); it is required", mysql_admin())
                });
                diesel::sql_query(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                replace_db(&mysql_admin(), &name)
            }
            "postgres" => {
                let mut conn = AsyncPgConnection::establish(&postgres_admin()).await.unwrap_or_else(|err| {
                    panic!("PostgreSQL is not reachable at {} ({err}); it is required", postgres_admin())
                });
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
                replace_db(&postgres_admin(), &name)
            }
            other => panic!("unknown backend {other:?} in XINGQIAO_TEST_DATABASES"),
        };
        Self { backend: backend.to_owned(), url, name, dir }
    }
}

impl TestDb {
    /// Another handle on the same database, which drops nothing: for a second
    /// server over it.
    pub fn shared(&self) -> TestDb {
        TestDb { backend: String::from("none"), url: self.url.clone(), name: String::new(), dir: self.dir.clone() }
    }

    /// Moves the database out, leaving an inert value to drop.
    fn take_over(&mut self) -> TestDb {
        let inert =
            TestDb { backend: String::from("none"), url: String::new(), name: String::new(), dir: PathBuf::new() };
        std::mem::replace(self, inert)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (backend, name) = (self.backend.clone(), self.name.clone());
        if self.backend == "none" {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // Drop runs outside async code: a small runtime of its own on a thread.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                match backend.as_str() {
                    "mysql" => {
                        if let Ok(mut conn) = AsyncMysqlConnection::establish(&mysql_admin()).await {
                            let _ =
                                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await;
                        }
                    }
                    "postgres" => {
                        if let Ok(mut conn) = AsyncPgConnection::establish(&postgres_admin()).await {
                            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        }
                    }
                    _ => {}
                }
            });
        });
        let _ = dropped.join();
    }
}

/// A running server and a client for it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(backend: &str) -> Self {
        Self::start_with(backend, ServeArgs::default()).await
    }

    pub async fn start_with(backend: &str, args: ServeArgs) -> Self {
        Self::start_on(TestDb::create(backend).await, args).await
    }

    /// A server over an existing database (to restart one).
    pub async fn start_on(db: TestDb, args: ServeArgs) -> Self {
        xingqiao::executor::install_tls_provider();
        // RUST_LOG=info shows the server's log in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let args = ServeArgs { database_url: Some(db.url.clone()), data_dir: Some(db.dir.clone()), ..args };
        let config = Config::load(args).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(xingqiao::server::run(config, Some(listener), async move {
            let _ = stopped.await;
        }));
        let mut server = Self { addr, client: reqwest::Client::new(), db, stop: Some(stop), task: Some(task) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let healthz = server.client.get(server.url("/healthz")).send().await;
            if healthz.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if server.task.as_ref().is_some_and(|task| task.is_finished()) {
                let outcome = server.task.take().unwrap().await;
                panic!("the server stopped while starting ({}): {outcome:?}", server.db.backend);
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer /healthz within 60 s ({})",
                server.db.backend
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST a JSON body; returns (HTTP status, JSON body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.client.post(self.url(path)).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// GET with a query string; returns (HTTP status, JSON body).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path_and_query)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn create_job(&self, body: Value) -> i64 {
        let (status, reply) = self.post("/xingqiao/create_job", body).await;
        assert_eq!(status, 200, "{reply}");
        reply["job_id"].as_i64().unwrap_or_else(|| panic!("no job_id in {reply}"))
    }

    /// Waits until the job has ended (neither waiting nor started); returns its detail `data`.
    pub async fn wait_job(&self, job_id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, reply) = self.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
            // 503: the database is away for now; keep waiting.
            let ended = reply["data"]["job_status"] != "started" && reply["data"]["job_status"] != "waiting";
            if status == 200 && ended {
                return reply["data"].clone();
            }
            assert!(Instant::now() < deadline, "job {job_id} still running: {reply}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn tasks(&self, job_id: i64) -> Vec<Value> {
        let (status, reply) = self.get(&format!("/xingqiao/list_tasks?job_id={job_id}")).await;
        assert_eq!(status, 200, "{reply}");
        reply["data"]["list"].as_array().cloned().unwrap_or_default()
    }

    pub async fn wait_until<F, Fut>(&self, limit: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        while !check().await {
            assert!(Instant::now() < deadline, "condition not met within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Graceful stop; returns what `run` returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_keeping_db().await.0
    }

    /// Graceful stop; the database survives for [`TestServer::start_on`].
    pub async fn stop_keeping_db(mut self) -> (anyhow::Result<()>, TestDb) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = match self.task.take() {
            Some(task) => task.await.map_err(anyhow::Error::from).and_then(|r| r),
            None => Ok(()),
        };
        let db = self.db.take_over();
        (outcome, db)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A throwaway Redis, killed when dropped.
pub struct Redis {
    child: std::process::Child,
    pub url: String,
}

impl Redis {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    /// A Redis on `port`, nothing persisted.
    pub fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
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
