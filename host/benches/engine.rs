//! `cargo bench -p xingqiao --bench engine`: the engine end to end through the
//! HTTP API, one JSON line per scenario. Targets are goals, not assertions:
//! - `hello-dag`: 1,000 hello jobs submitted at once → jobs/s (goal ≥ 1,000);
//! - `hello-sequential`: 100 hello jobs one after another → p50/p99 ms (goal p50 ≤ 2);
//! - `chain`: n = 40 → ms per step (goal ≤ 0.5);
//! - `fanout`: n = 100, 1,000, 10,000 → ms per task, flat (≤ 1.5× from 100 to 10,000).
//!
//! Embedded default (a fresh SQLite file) unless `XINGQIAO_DATABASE_URL` names
//! a MySQL/MariaDB or PostgreSQL database (its tables are created if missing).
//! With `XINGQIAO_REDIS_URL` too, two instances share the database and the
//! Redis stream (jobs are created on one, run by both): the cluster setup;
//! then only hello-dag and hello-sequential run.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};
use xingqiao::config::{Config, ServeArgs};

struct Bench {
    base: String,
    client: reqwest::Client,
    backend: String,
}

impl Bench {
    async fn create(&self, body: Value) -> i64 {
        let reply: Value = self
            .client
            .post(format!("{}/xingqiao/create_job", self.base))
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|err| panic!("create_job: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("create_job reply: {err}"));
        reply["job_id"].as_i64().unwrap_or_else(|| panic!("create_job: {reply}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// Polls until the job ends; returns its final status.
    async fn wait_job(&self, job_id: i64) -> String {
        loop {
            let reply = self.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
            let status = reply["data"]["job_status"].as_str().unwrap_or_default().to_owned();
            if status != "started" {
                return status;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    async fn running_in(&self, namespace: &str) -> i64 {
        let reply =
            self.get(&format!("/xingqiao/list_jobs?job_namespace={namespace}&job_status=started&perPage=1")).await;
        reply["data"]["total"].as_i64().unwrap_or(-1)
    }

    fn print(&self, mut line: Value) {
        line["bench"] = json!("engine");
        line["backend"] = json!(self.backend);
        println!("{line}");
    }
}

fn namespace(name: &str) -> String {
    format!("bench-{name}-{}", uuid::Uuid::new_v4().simple())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

async fn hello_dag(bench: &Bench, jobs: usize) {
    let ns = namespace("dag");
    let started = Instant::now();
    let in_flight = Arc::new(Semaphore::new(64));
    let mut handles = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let permit = in_flight.clone().acquire_owned().await.unwrap_or_else(|err| panic!("{err}"));
        let (client, base, ns) = (bench.client.clone(), bench.base.clone(), ns.clone());
        handles.push(tokio::spawn(async move {
            let body = json!({"job_namespace": ns, "job_type": "hello", "job_extra": {"str_info": "bench"}});
            let sent = client.post(format!("{base}/xingqiao/create_job")).json(&body).send().await;
            drop(permit);
            sent.and_then(|r| r.error_for_status()).unwrap_or_else(|err| panic!("create_job: {err}"));
        }));
    }
    for handle in handles {
        handle.await.unwrap_or_else(|err| panic!("{err}"));
    }
    let submitted = started.elapsed();
    while bench.running_in(&ns).await != 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let failed = bench.get(&format!("/xingqiao/list_jobs?job_namespace={ns}&job_status=failed&perPage=1")).await;
    bench.print(json!({
        "scenario": "hello-dag", "jobs": jobs, "submit_s": ms(submitted) / 1e3, "total_s": ms(elapsed) / 1e3,
        "jobs_per_s": (jobs as f64 / elapsed.as_secs_f64()).round(), "failed": failed["data"]["total"],
    }));
}

async fn hello_sequential(bench: &Bench, jobs: usize) {
    let ns = namespace("seq");
    let mut samples = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let started = Instant::now();
        let job_id =
            bench.create(json!({"job_namespace": ns, "job_type": "hello", "job_extra": {"str_info": "bench"}})).await;
        let status = bench.wait_job(job_id).await;
        assert_eq!(status, "finished", "job {job_id}");
        samples.push(started.elapsed());
    }
    samples.sort();
    let pick = |p: f64| ms(samples[((samples.len() - 1) as f64 * p).round() as usize]);
    bench.print(json!({"scenario": "hello-sequential", "jobs": jobs, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}));
}

async fn one_job(bench: &Bench, job_type: &str, n: u64) -> Duration {
    let started = Instant::now();
    let job_id =
        bench.create(json!({"job_namespace": namespace(job_type), "job_type": job_type, "job_extra": {"n": n}})).await;
    let status = bench.wait_job(job_id).await;
    assert_eq!(status, "finished", "{job_type} n={n}");
    started.elapsed()
}

/// One in-process server over the database (and Redis, when given).
async fn start_server(
    dir: &std::path::Path,
    database_url: Option<String>,
    redis_url: Option<String>,
) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let args = ServeArgs { data_dir: Some(dir.to_path_buf()), database_url, redis_url, ..Default::default() };
    let config = Config::load(args).unwrap_or_else(|err| panic!("{err}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("{err}"));
    let base = format!("http://{}", listener.local_addr().unwrap_or_else(|err| panic!("{err}")));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(xingqiao::server::run(config, Some(listener), async move {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|err| panic!("{err}"));
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("xingqiao-bench-{}", uuid::Uuid::new_v4().simple()));
        let database_url = std::env::var("XINGQIAO_DATABASE_URL").ok();
        // With Redis: two instances over the same database and stream (the cluster setup).
        let redis_url = std::env::var("XINGQIAO_REDIS_URL").ok();
        let mut backend = database_url.as_deref().map_or("sqlite", |u| u.split(':').next().unwrap_or("?")).to_owned();
        let instances = if redis_url.is_some() { 2 } else { 1 };
        if redis_url.is_some() {
            backend = format!("{backend}+redis, 2 instances");
        }
        xingqiao::executor::install_tls_provider();
        let mut servers = Vec::new();
        for _ in 0..instances {
            servers.push(start_server(&dir, database_url.clone(), redis_url.clone()).await);
        }
        let bench = Bench { base: servers[0].0.clone(), client: reqwest::Client::new(), backend };
        for (base, _, _) in &servers {
            while bench.client.get(format!("{base}/healthz")).send().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        hello_dag(&bench, 1000).await;
        hello_sequential(&bench, 100).await;
        if instances == 1 {
            let chain = one_job(&bench, "chain", 40).await;
            bench.print(json!({"scenario": "chain", "n": 40, "total_ms": ms(chain), "ms_per_step": ms(chain) / 40.0}));
            let mut per_task = Vec::new();
            for n in [100u64, 1000, 10_000] {
                let elapsed = one_job(&bench, "fanout", n - 1).await;
                let each = ms(elapsed) / n as f64;
                per_task.push(each);
                bench.print(json!({"scenario": "fanout", "tasks": n, "total_ms": ms(elapsed), "ms_per_task": (each * 1e3).round() / 1e3}));
            }
            bench.print(json!({"scenario": "fanout-flatness", "ratio_10000_vs_100": (per_task[2] / per_task[0] * 100.0).round() / 100.0}));
        }

        for (_, stop, server) in servers {
            let _ = stop.send(());
            let _ = server.await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
