//! A `xingqiao serve` process over a test database, and a client for it.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TestDb;

/// A port nobody listens on now (the OS picks it; the listener is dropped).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("no free port on 127.0.0.1: {err}"))
}

/// A running server: its own process, killed if the test ends without
/// stopping it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: TestDb,
    child: Option<Child>,
    log: PathBuf,
}

impl TestServer {
    pub async fn start(backend: &str) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// With extra `serve` flags, e.g. `&["--sweep-interval-ms", "100"]`.
    pub async fn start_with(backend: &str, args: &[&str]) -> Self {
        Self::start_on(TestDb::create(backend).await, args).await
    }

    /// A server over an existing database (to restart one, or a second one).
    pub async fn start_on(db: TestDb, args: &[&str]) -> Self {
        Self::start_on_logging(db, args, &default_log_filter()).await
    }

    /// [`TestServer::start_with`], logging by `filter` (a `RUST_LOG` value)
    /// instead of warnings only: for a test that reads what was logged.
    pub async fn start_logging(backend: &str, args: &[&str], filter: &str) -> Self {
        Self::start_on_logging(TestDb::create(backend).await, args, filter).await
    }

    async fn start_on_logging(db: TestDb, args: &[&str], filter: &str) -> Self {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let mut server = Self::spawn_logging(db, args, filter);
        server.wait_ready().await;
        server
    }

    /// Starts the process without waiting for it to answer.
    pub fn spawn(db: TestDb, args: Vec<String>) -> Self {
        Self::spawn_logging(db, args, &default_log_filter())
    }

    fn spawn_logging(db: TestDb, args: Vec<String>, filter: &str) -> Self {
        // reqwest is built without a default TLS provider (as the server is).
        xingqiao::executor::install_tls_provider();
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        std::fs::create_dir_all(&db.dir).unwrap_or_else(|err| panic!("cannot create {}: {err}", db.dir.display()));
        let log = db.dir.join(format!("server-{port}.log"));
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|err| panic!("cannot create {}: {err}", log.display()));
        let err_file = log_file.try_clone().unwrap_or_else(|err| panic!("cannot share the log file: {err}"));
        let child = Command::new(crate::xingqiao_bin())
            .arg("serve")
            .args(["--bind", &addr.to_string()])
            .args(["--data-dir", &db.dir.display().to_string()])
            .args(["--database-url", &db.url])
            .args(&args)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", crate::xingqiao_bin().display()));
        Self { addr, client: client_for(&args), db, child: Some(child), log }
    }

    /// Waits until `/healthz` answers 200; fails the test, with the server's
    /// log, if the process exits or does not answer within 60 s.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let healthz = self.client.get(self.url("/healthz")).send().await;
            if healthz.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                panic!("the server exited while starting ({status}, {}):\n{}", self.db.backend, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer /healthz within 60 s ({}):\n{}",
                self.db.backend,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the server printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST a JSON body; returns (HTTP status, JSON body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self.client.post(self.url(path)).json(&body).send().await.unwrap_or_else(|err| panic!("{err}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_else(|err| panic!("{path}: not JSON: {err}")))
    }

    /// GET with a query string; returns (HTTP status, JSON body).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path_and_query)).send().await.unwrap_or_else(|err| panic!("{err}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_else(|err| panic!("{path_and_query}: not JSON: {err}")))
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

    /// SIGTERM, then waits for the process to exit (at most 60 s): a clean
    /// stop is exit status 0.
    pub async fn stop(self) -> Result<(), String> {
        self.stop_keeping_db().await.0
    }

    /// SIGTERM and wait; the database survives for [`TestServer::start_on`].
    pub async fn stop_keeping_db(mut self) -> (Result<(), String>, TestDb) {
        let outcome = match self.child.take() {
            Some(child) => terminate(child).await,
            None => Ok(()),
        };
        let outcome = outcome.map_err(|why| format!("{why}; log:\n{}", self.log_text()));
        (outcome, self.db.take_over())
    }

    /// SIGTERM without waiting: the server drains while the test watches.
    pub fn begin_stop(&self) {
        if let Some(child) = &self.child {
            let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            assert!(sent.is_ok_and(|status| status.success()), "could not send SIGTERM");
        }
    }

    /// The server's process id (to look at its child processes).
    pub fn process_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no chance to hand anything back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client that sends the server's admin token, when it has one, with every
/// request: with a token configured every API route needs one. The security
/// suite makes its own clients to send other tokens or none.
fn client_for(args: &[String]) -> reqwest::Client {
    let token = args.iter().position(|arg| arg == "--admin-token").and_then(|at| args.get(at + 1));
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = token.and_then(|token| format!("Bearer {token}").parse().ok()) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        // Below the server's keep-alive (5 s): a connection idle while a test
        // waits (an upload, a build) is not reused after the server closed it.
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap_or_else(|err| panic!("cannot build the test client: {err}"))
}

async fn terminate(mut child: Child) -> Result<(), String> {
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    if !sent.is_ok_and(|status| status.success()) {
        let _ = child.kill();
        return Err(String::from("could not send SIGTERM"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return exited(status),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(String::from("the server did not stop within 60 s of SIGTERM"));
            }
        }
    }
}

fn exited(status: ExitStatus) -> Result<(), String> {
    if status.success() { Ok(()) } else { Err(format!("the server exited with {status}")) }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The servers' log filter: the caller's `RUST_LOG`, else warnings only.
fn default_log_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| String::from("warn"))
}
