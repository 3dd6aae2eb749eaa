//! `cargo bench --bench plugin_call`: what a job costs in the sandbox, per
//! plugin: `plan_job` (fresh store + instantiate + params_check + workflow,
//! once per create_job) and `job_notifier` (fresh store + instantiate + call,
//! at start and at end), and their sum per job. Prints one JSON line per
//! measurement, with the process's CPU time and minor page faults per call
//! beside p50 and p99.
//!
//! The Rust `hello` demo is always measured. Components of other languages are
//! measured when named in `XINGQIAO_BENCH_PLUGINS` (comma-separated .wasm
//! paths), e.g. after `xingqiao plugin build --dir plugins/hello_py` and
//! `--dir plugins/hello_js`:
//!
//! ```sh
//! XINGQIAO_BENCH_PLUGINS=plugins/hello_py/build/hello_py.wasm,plugins/hello_js/build/hello_js.wasm \
//!   cargo bench --bench plugin_call
//! ```
//!
//! Targets on the reference machine (2 cores): Rust plan_job p50 ≤ 40 µs;
//! every language ≤ 1 ms of plugin work per job.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use xingqiao::plugins::demo_bytes;
use xingqiao::runtime::{JobEvent, JobInput, LoadedPlugin, PluginRuntime, SandboxLimits};

#[path = "common/proc_stat.rs"]
pub mod proc_stat;
use proc_stat::{cpu as process_cpu, minor_faults};

/// Enough samples for a stable p99 within a few seconds per measurement.
const BUDGET: Duration = Duration::from_secs(4);
const MAX_ITERATIONS: usize = 20_000;
const MIN_ITERATIONS: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// p50 in µs; prints the line, with the CPU time per call.
fn measure(plugin: &str, name: &str, mut one: impl FnMut()) -> f64 {
    let started = Instant::now();
    one();
    let first = started.elapsed().max(Duration::from_micros(1));
    for _ in 0..(BUDGET.as_nanos() / 10 / first.as_nanos()).clamp(5, 500) {
        one();
    }
    let iterations = (BUDGET.as_nanos() / first.as_nanos()).clamp(MIN_ITERATIONS as u128, MAX_ITERATIONS as u128);
    let mut samples = Vec::with_capacity(iterations as usize);
    let cpu_before = process_cpu();
    let faults_before = minor_faults();
    for _ in 0..iterations {
        let started = Instant::now();
        one();
        samples.push(started.elapsed());
    }
    let cpu_per_call = (process_cpu() - cpu_before).as_secs_f64() * 1e6 / samples.len() as f64;
    let faults_per_call = (minor_faults() - faults_before) as f64 / samples.len() as f64;
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let line = json!({
        "bench": "plugin_call",
        "plugin": plugin,
        "scenario": name,
        "iterations": samples.len(),
        "p50_us": (p50 * 10.0).round() / 10.0,
        "p99_us": (percentile(&samples, 0.99) * 10.0).round() / 10.0,
        "cpu_us_per_call": cpu_per_call.round(),
        "minor_faults_per_call": (faults_per_call * 10.0).round() / 10.0,
    });
    println!("{line}");
    p50
}

fn event(job_type: &str, status: &str) -> JobEvent {
    JobEvent {
        job_id: 1,
        job_client: String::from("127.0.0.1"),
        job_namespace: String::from("bench"),
        job_reqid: String::from("bench"),
        job_name: String::from("bench"),
        job_status: status.to_owned(),
        job_type: job_type.to_owned(),
        job_tags: String::new(),
        ret_stat: String::from("OK"),
        ret_data: Some(String::from(r#"{"count":2}"#)),
        job_cost: 0.1,
        job_extra: String::from(r#"{"str_info":"ceshi"}"#),
        job_timeout: 60,
        job_lock: String::new(),
        exe_id: 1,
        operator: String::new(),
        is_valid: true,
        c_time: String::from("2026-11-28 00:00:00"),
        s_time: String::from("2026-11-28 00:00:00"),
        e_time: String::from("2026-11-28 00:00:01"),
    }
}

fn bench(runtime: &PluginRuntime, name: &str, bytes: &[u8]) {
    let started = Instant::now();
    let plugin = LoadedPlugin::load(runtime, bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
    let job_type = plugin.metadata().job_type.clone();
    println!(
        "{}",
        json!({"bench": "plugin_call", "plugin": name, "scenario": "load (compile + link + metadata)",
               "bytes": bytes.len(), "ms": (started.elapsed().as_secs_f64() * 1e4).round() / 10.0})
    );
    let mut extra = Map::new();
    extra.insert("str_info".into(), Value::from("ceshi"));
    let job = JobInput { namespace: "bench".into(), name: "bench".into(), operator: String::new(), job_extra: extra };

    // What create_job runs: one fresh store + instance, params_check, workflow.
    let plan = measure(name, "plan_job (store + instantiate + params_check + workflow)", || {
        plugin.plan_job(&job).unwrap_or_else(|err| panic!("{name}: {err}"));
    });
    let started_event = event(&job_type, "started");
    let notify = measure(name, "job_notifier (store + instantiate + call)", || {
        plugin.job_notifier(&started_event).unwrap_or_else(|err| panic!("{name}: {err}"));
    });
    // create_job's plan, then the notifier at start and at end, unless the
    // component declares it has none (then the server never calls it).
    let calls = if plugin.implements_notifier() { 2 } else { 0 };
    println!(
        "{}",
        json!({"bench": "plugin_call", "plugin": name, "scenario": "plugin work per job (plan_job + notifier calls, p50s)",
               "notifier_calls": calls, "us": ((plan + notify * calls as f64) * 10.0).round() / 10.0})
    );
}

fn main() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).unwrap_or_else(|err| panic!("{err}"));
    let Some(hello) = demo_bytes("hello") else { panic!("hello is not embedded") };
    bench(&runtime, "hello (rust)", hello);
    let others = std::env::var("XINGQIAO_BENCH_PLUGINS").unwrap_or_default();
    for path in others.split(',').filter(|path| !path.trim().is_empty()) {
        let bytes = std::fs::read(path.trim()).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
        let name = std::path::Path::new(path.trim())
            .file_stem()
            .map_or_else(|| path.to_owned(), |s| s.to_string_lossy().into_owned());
        bench(&runtime, &name, &bytes);
    }
}
