//! `cargo bench -p xingqiao --bench engine`: the engine end to end, measured
//! from outside. The bench starts `xingqiao serve` as child processes (the
//! binary cargo built) and drives them over HTTP from this process, as a user's
//! client would. One JSON line per measurement, each with its target and
//! whether it was met; targets are goals, never assertions.
//!
//! - `hello-dag`: 1,000 hello jobs submitted at once (64 requests in flight)
//!   → create_job time of the 1,000 (`submit_s`) and jobs/s to the last end,
//!   with the CPU each side spent per job over the burst alone
//!   (`cpu_ms_per_job`: the servers, this client, and the database and Redis
//!   when their URLs name this machine; `machine`, the whole machine's, which
//!   also counts database connections closed during the burst and the
//!   kernel's interrupts) and how many cores were busy (`busy_cores`);
//! - `hello-sequential`: 100 hello jobs one after another → p50/p99 ms;
//! - `chain`: n = 40, five in a row → median ms per step; `fanout`: 100,
//!   1,000, 10,000 tasks → ms per task, and how flat that stays (embedded
//!   setup only);
//! - `memory`: RSS of each server when idle, and its peak while 10,000 hello
//!   jobs are in flight.
//!
//! Embedded default (a fresh SQLite file, one process) unless
//! `XINGQIAO_DATABASE_URL` names a MySQL/MariaDB or PostgreSQL database (its
//! tables are created if missing). With `XINGQIAO_REDIS_URL` too, two processes
//! share the database and the Redis stream, and create_job calls alternate
//! between them: the cluster setup. `bench/compare` runs every setup and Celery
//! beside them in one sitting. `ENGINE_BENCH_SCENARIOS` (comma-separated
//! names) runs only some.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[path = "common/proc_stat.rs"]
pub mod proc_stat;

/// One `xingqiao serve` process; killed when dropped.
struct Server {
    base: String,
    child: Child,
}

impl Server {
    fn start(dir: &Path, index: usize, database_url: Option<&str>, redis_url: Option<&str>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|err| panic!("no free port: {err}"))
            .port();
        let log = std::fs::File::create(dir.join(format!("server-{index}.log")))
            .unwrap_or_else(|err| panic!("cannot write the server log: {err}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_xingqiao"));
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|err| panic!("{err}")))
            .stderr(log)
            .env_remove("XINGQIAO_DATABASE_URL")
            .env_remove("XINGQIAO_REDIS_URL");
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        if let Some(url) = redis_url {
            command.args(["--redis-url", url]);
        }
        let child = command.spawn().unwrap_or_else(|err| panic!("cannot start xingqiao serve: {err}"));
        Self { base: format!("http://127.0.0.1:{port}"), child }
    }

    fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, from /proc (Linux).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    (kib / 1024.0 * 10.0).round() / 10.0
}

struct Bench {
    servers: Vec<Server>,
    client: reqwest::Client,
    backend: String,
    cluster: bool,
    next: AtomicU64,
    /// Whether the database and Redis run on this machine, where their
    /// processes' CPU can be read (`CpuSample`).
    local_database: bool,
    local_redis: bool,
}

/// What [`Bench::hello_burst`] measured.
struct Burst {
    submitted: Duration,
    elapsed: Duration,
    peak_rss_mib: Vec<f64>,
    failed: i64,
    /// CPU milliseconds per job, by who spent them ([`cpu_ms_per_job`]),
    /// and by the whole machine (`machine`: every process, those that ended
    /// in between included, and the kernel).
    cpu_ms_per_job: Value,
    /// How many of the machine's cores were busy on average, by `/proc/stat`.
    busy_cores: f64,
}

/// Each role's processes with their CPU time so far: the servers, this
/// bench (the client), and, when they run on this machine, the database's
/// and Redis's processes, found by name.
type CpuSample = Vec<(&'static str, Vec<(u32, Duration)>)>;

fn local(url: Option<&str>) -> bool {
    url.is_some_and(|url| {
        ["@127.0.0.1", "@localhost", "@[::1]", "//127.0.0.1", "//localhost"].iter().any(|h| url.contains(h))
    })
}

impl Bench {
    /// create_job calls alternate between the servers, as behind a balancer.
    fn create_url(&self) -> String {
        let index = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.servers.len();
        format!("{}/xingqiao/create_job", self.servers[index].base)
    }

    async fn create(&self, body: Value) -> i64 {
        let reply: Value = self
            .client
            .post(self.create_url())
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|err| panic!("create_job: {err:?}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("create_job reply: {err}"));
        reply["job_id"].as_i64().unwrap_or_else(|| panic!("create_job: {reply}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.servers[0].base))
            .send()
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// Waits until the job ends, as a client that would rather be told than
    /// poll: get_job_detail with `wait_ms` answers when the job ends (from
    /// any instance's event), so the measure is not the client's polling
    /// interval, and the server is not kept busy answering polls.
    async fn wait_job(&self, job_id: i64) -> String {
        loop {
            let reply = self.get(&format!("/xingqiao/get_job_detail?job_id={job_id}&wait_ms=10000")).await;
            let status = reply["data"]["job_status"].as_str().unwrap_or_default().to_owned();
            if status != "started" {
                return status;
            }
        }
    }

    async fn count_in(&self, namespace: &str, status: &str) -> i64 {
        let reply =
            self.get(&format!("/xingqiao/list_jobs?job_namespace={namespace}&job_status={status}&perPage=1")).await;
        reply["data"]["total"].as_i64().unwrap_or(-1)
    }

    fn print(&self, mut line: Value) {
        line["bench"] = json!("engine");
        line["backend"] = json!(self.backend);
        println!("{line}");
    }

    /// Each role's processes and the CPU time each has spent so far.
    fn cpu_sample(&self) -> CpuSample {
        let mut roles = vec![
            ("servers", self.servers.iter().map(|server| server.child.id()).collect()),
            ("bench_client", vec![std::process::id()]),
        ];
        if self.local_database {
            roles.push(("database", proc_stat::pids_named(&["mariadbd", "mysqld", "postgres"])));
        }
        if self.local_redis {
            roles.push(("redis", proc_stat::pids_named(&["redis-server"])));
        }
        roles
            .into_iter()
            .map(|(role, pids): (&'static str, Vec<u32>)| {
                (role, pids.into_iter().map(|pid| (pid, proc_stat::cpu_of(pid))).collect())
            })
            .collect()
    }

    /// Submits `jobs` hello jobs at once and waits for all to end; samples
    /// every server's RSS meanwhile, and every role's CPU before and after.
    async fn hello_burst(&self, jobs: usize) -> Burst {
        let ns = namespace("dag");
        let sampling = Arc::new(AtomicBool::new(true));
        let pids: Vec<u32> = self.servers.iter().map(|s| s.child.id()).collect();
        let sampler = {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                let mut peaks = vec![0.0f64; pids.len()];
                while sampling.load(Ordering::Relaxed) {
                    for (peak, pid) in peaks.iter_mut().zip(&pids) {
                        *peak = peak.max(rss_mib(*pid));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                peaks
            })
        };
        let cpu_before = self.cpu_sample();
        let machine_before = proc_stat::machine();
        let started = Instant::now();
        let in_flight = Arc::new(Semaphore::new(64));
        let mut handles = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            let permit = in_flight.clone().acquire_owned().await.unwrap_or_else(|err| panic!("{err}"));
            let (client, url, ns) = (self.client.clone(), self.create_url(), ns.clone());
            handles.push(tokio::spawn(async move {
                submit(&client, &url, &ns).await;
                drop(permit);
            }));
        }
        for handle in handles {
            handle.await.unwrap_or_else(|err| panic!("{err}"));
        }
        let submitted = started.elapsed();
        while self.count_in(&ns, "started").await != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed();
        let mut cpu_ms_per_job = cpu_ms_per_job(&cpu_before, &self.cpu_sample(), jobs);
        let machine_after = proc_stat::machine();
        let (busy, all) =
            (machine_after.0.saturating_sub(machine_before.0), machine_after.1.saturating_sub(machine_before.1));
        cpu_ms_per_job["machine"] = json!(round2(busy.as_secs_f64() * 1e3 / jobs as f64));
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let busy_cores = round2(busy.as_secs_f64() / all.as_secs_f64().max(f64::EPSILON) * cores);
        sampling.store(false, Ordering::Relaxed);
        let peak_rss_mib = sampler.await.unwrap_or_else(|err| panic!("{err}"));
        Burst {
            submitted,
            elapsed,
            peak_rss_mib,
            failed: self.count_in(&ns, "failed").await,
            cpu_ms_per_job,
            busy_cores,
        }
    }
}

/// CPU milliseconds per job that each role spent between two samples: only
/// the burst, not the servers' start (which compiles the demo plugins). A
/// process that started between them (a new database connection's backend)
/// counts from zero; one that ended between them is not counted. Resolution:
/// the kernel's clock tick (10 ms) per process.
fn cpu_ms_per_job(before: &CpuSample, after: &CpuSample, jobs: usize) -> Value {
    let mut roles = serde_json::Map::new();
    for (role, now) in after {
        let earlier = before.iter().find(|(r, _)| r == role).map_or(&[][..], |(_, pids)| pids.as_slice());
        let spent: Duration = now
            .iter()
            .map(|(pid, cpu)| {
                let start = earlier.iter().find(|(p, _)| p == pid).map_or(Duration::ZERO, |(_, cpu)| *cpu);
                cpu.saturating_sub(start)
            })
            .sum();
        roles.insert((*role).to_owned(), json!((spent.as_secs_f64() * 1e3 / jobs as f64 * 100.0).round() / 100.0));
    }
    Value::Object(roles)
}

/// One hello job, named so that sending it again is harmless: a keep-alive
/// connection the server closes just as a request goes out fails to send
/// (connection reset), and the job may or may not exist then.
async fn submit(client: &reqwest::Client, url: &str, ns: &str) {
    let job_name = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let body =
        json!({"job_namespace": ns, "job_name": job_name, "job_type": "hello", "job_extra": {"str_info": "bench"}});
    for attempt in 1.. {
        match client.post(url).json(&body).send().await {
            Ok(reply) => {
                let status = reply.status();
                let reply: Value = reply.json().await.unwrap_or_else(|err| panic!("create_job reply: {err}"));
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && attempt < 100 {
                    // ERR_SERVER_BUSY asks the client to come back, as a real one would.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let created = status.is_success() || (attempt > 1 && reply["stat"] == "ERR_JOB_EXIST");
                assert!(created, "create_job: {status} {reply}");
                return;
            }
            Err(err) if err.is_request() && attempt < 3 => {
                eprintln!("create_job failed to send ({err:?}); sending it again");
            }
            Err(err) => panic!("create_job: {err:?}"),
        }
    }
}

fn namespace(name: &str) -> String {
    format!("bench-{name}-{}", uuid::Uuid::new_v4().simple())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

async fn hello_dag(bench: &Bench, jobs: usize) {
    let Burst { submitted, elapsed, failed, cpu_ms_per_job, busy_cores, .. } = bench.hello_burst(jobs).await;
    let jobs_per_s = (jobs as f64 / elapsed.as_secs_f64()).round();
    let mut line = json!({
        "scenario": "hello-dag", "jobs": jobs, "submit_s": ms(submitted) / 1e3, "total_s": ms(elapsed) / 1e3,
        "jobs_per_s": jobs_per_s, "failed": failed, "cpu_ms_per_job": cpu_ms_per_job, "busy_cores": busy_cores,
    });
    if bench.cluster {
        line["target"] = json!("≥ 500 jobs/s; create_job of 1,000 ≤ 1 s");
        line["met"] = json!(jobs_per_s >= 500.0 && submitted <= Duration::from_secs(1));
    } else {
        line["target"] = json!("≥ 1,000 jobs/s");
        line["met"] = json!(jobs_per_s >= 1000.0);
    }
    bench.print(line);
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
    let goal = if bench.cluster { 5.0 } else { 2.0 };
    bench.print(json!({
        "scenario": "hello-sequential", "jobs": jobs, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
        "target": format!("p50 ≤ {goal} ms"), "met": pick(0.5) <= goal,
    }));
}

async fn one_job(bench: &Bench, job_type: &str, n: u64) -> Duration {
    let started = Instant::now();
    let job_id =
        bench.create(json!({"job_namespace": namespace(job_type), "job_type": job_type, "job_extra": {"n": n}})).await;
    let status = bench.wait_job(job_id).await;
    assert_eq!(status, "finished", "{job_type} n={n}");
    started.elapsed()
}

/// 40-step chains run one after another; the median is reported.
const CHAINS: usize = 5;

async fn chain_and_fanout(bench: &Bench) {
    // One chain is one sample, which a single pause of the machine can
    // double: the median of several is the figure.
    let mut chains = Vec::with_capacity(CHAINS);
    for _ in 0..CHAINS {
        chains.push(one_job(bench, "chain", 40).await);
    }
    chains.sort();
    let per_step = |chain: Duration| ms(chain) / 40.0;
    let median_chain = chains[CHAINS / 2];
    let median = per_step(median_chain);
    bench.print(json!({
        "scenario": "chain", "n": 40, "chains": CHAINS, "total_ms": ms(median_chain), "ms_per_step": median,
        "ms_per_step_min": per_step(chains[0]), "ms_per_step_max": per_step(chains[CHAINS - 1]),
        "target": "≤ 0.5 ms per step", "met": median <= 0.5,
    }));
    let mut per_task = Vec::new();
    for n in [100u64, 1000, 10_000] {
        let elapsed = one_job(bench, "fanout", n - 1).await;
        let each = ms(elapsed) / n as f64;
        per_task.push(each);
        bench.print(json!({"scenario": "fanout", "tasks": n, "total_ms": ms(elapsed), "ms_per_task": (each * 1e3).round() / 1e3}));
    }
    let ratio = round2(per_task[2] / per_task[0]);
    bench.print(json!({
        "scenario": "fanout-flatness", "ratio_10000_vs_100": ratio, "target": "≤ 1.5", "met": ratio <= 1.5,
    }));
}

async fn memory(bench: &Bench, idle: &[f64], jobs: usize) {
    let Burst { submitted, elapsed, peak_rss_mib: peaks, failed, .. } = bench.hello_burst(jobs).await;
    let fits = |values: &[f64], cap: f64| values.iter().all(|v| *v <= cap);
    bench.print(json!({
        "scenario": "memory", "idle_rss_mib": idle, "jobs_in_flight": jobs, "peak_rss_mib": peaks,
        "submit_s": ms(submitted) / 1e3, "total_s": ms(elapsed) / 1e3, "failed": failed,
        "target": "idle ≤ 50 MiB; ≤ 300 MiB with 10,000 jobs in flight (per process)",
        "met": fits(idle, 50.0) && fits(&peaks, 300.0),
    }));
}

/// `ENGINE_BENCH_SCENARIOS=hello-dag,memory` runs only those (default: all;
/// `chain` includes the fanouts).
fn wanted(scenario: &str) -> bool {
    std::env::var("ENGINE_BENCH_SCENARIOS").map_or(true, |list| list.split(',').any(|name| name.trim() == scenario))
}

fn main() {
    xingqiao::executor::install_tls_provider();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|err| panic!("{err}"));
    let dir: PathBuf = std::env::temp_dir().join(format!("xingqiao-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
    let database_url = std::env::var("XINGQIAO_DATABASE_URL").ok().filter(|url| !url.is_empty());
    // With Redis: two processes over the same database and stream (the cluster setup).
    let redis_url = std::env::var("XINGQIAO_REDIS_URL").ok().filter(|url| !url.is_empty());
    let mut backend = database_url.as_deref().map_or("sqlite", |u| u.split(':').next().unwrap_or("?")).to_owned();
    let cluster = redis_url.is_some();
    if cluster {
        backend = format!("{backend}+redis, 2 processes");
    }
    let servers: Vec<Server> = (0..if cluster { 2 } else { 1 })
        .map(|index| Server::start(&dir, index, database_url.as_deref(), redis_url.as_deref()))
        .collect();
    // Idle connections are dropped before the server's keep-alive ends them:
    // a request sent on one the server is closing fails to send.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|err| panic!("{err}"));
    let (local_database, local_redis) = (local(database_url.as_deref()), local(redis_url.as_deref()));
    let bench = Bench { servers, client, backend, cluster, next: AtomicU64::new(0), local_database, local_redis };
    runtime.block_on(async {
        for server in &bench.servers {
            let ready = Instant::now();
            while bench.client.get(format!("{}/healthz", server.base)).send().await.is_err() {
                assert!(ready.elapsed() < Duration::from_secs(60), "the server did not start; see {}", dir.display());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Idle: started, demo plugins loaded, nothing asked of it yet.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle: Vec<f64> = bench.servers.iter().map(Server::rss_mib).collect();

        if wanted("hello-dag") {
            hello_dag(&bench, 1000).await;
        }
        if wanted("hello-sequential") {
            hello_sequential(&bench, 100).await;
        }
        if !cluster && wanted("chain") {
            chain_and_fanout(&bench).await;
        }
        if wanted("memory") {
            memory(&bench, &idle, 10_000).await;
        }
    });
    drop(bench);
    let _ = std::fs::remove_dir_all(&dir);
}
