//! `cargo bench --bench plugin_call`: what creating one job costs in the
//! sandbox — a fresh store + instantiate + params_check + workflow (`plan_job`)
//! — for the `hello` demo, and each call alone. Prints one JSON line per measurement.
//! Target: p50 of plan_job ≤ 40 µs on the reference machine (2 cores).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use xingqiao::plugins::demo_bytes;
use xingqiao::runtime::{JobInput, LoadedPlugin, PluginRuntime, SandboxLimits};

const WARMUP: usize = 500;
const ITERATIONS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn measure(name: &str, mut one: impl FnMut()) {
    for _ in 0..WARMUP {
        one();
    }
    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        one();
        samples.push(started.elapsed());
    }
    samples.sort();
    let line = json!({
        "bench": "plugin_call",
        "plugin": "hello",
        "scenario": name,
        "iterations": ITERATIONS,
        "p50_us": (percentile(&samples, 0.50) * 10.0).round() / 10.0,
        "p99_us": (percentile(&samples, 0.99) * 10.0).round() / 10.0,
    });
    println!("{line}");
}

fn main() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).unwrap_or_else(|err| panic!("{err}"));
    let Some(bytes) = demo_bytes("hello") else { panic!("hello is not embedded") };
    let compile_started = Instant::now();
    let hello: LoadedPlugin = LoadedPlugin::load(&runtime, bytes).unwrap_or_else(|err| panic!("{err}"));
    println!(
        "{}",
        json!({"bench": "plugin_call", "plugin": "hello", "scenario": "load (compile + link + metadata)",
               "ms": (compile_started.elapsed().as_secs_f64() * 1e4).round() / 10.0})
    );
    let mut extra = Map::new();
    extra.insert("str_info".into(), Value::from("ceshi"));
    let job = JobInput { namespace: "bench".into(), name: "bench".into(), operator: String::new(), job_extra: extra };

    measure("params_check", || {
        hello.params_check(&job).unwrap_or_else(|err| panic!("{err}"));
    });
    measure("workflow", || {
        hello.workflow(&job).unwrap_or_else(|err| panic!("{err}"));
    });
    // What create_job runs: one fresh store + instance, params_check, workflow.
    measure("plan_job (store + instantiate + params_check + workflow)", || {
        hello.plan_job(&job).unwrap_or_else(|err| panic!("{err}"));
    });
}
