//! `xingqiao plugin run FILE --execute`: the plugin author's inner loop
//! without a server. The DAG runs for real, in waves of ready tasks, against
//! a handler base URL — by default the built-in demo handlers, served in this
//! process on a loopback port — with the server's parameter resolution, retries
//! and `provides` check. Each task's params, reply and timing are printed, then
//! the job's outcome and ret_data. Nothing is stored.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use super::plugin::CliError;
use crate::engine::resolve::resolve;
use crate::executor::{HttpExecutor, Outcome, TaskCall, TaskLimits, missing_provides};
use crate::runtime::TaskSpec;

/// How one task ended.
#[derive(Debug, Serialize)]
pub struct TaskRun {
    pub label: String,
    pub cmd: String,
    /// `finished`, `failed`, or `skipped` (a dependency failed).
    pub status: &'static str,
    pub attempts: u32,
    pub millis: f64,
    pub params: Option<Map<String, Value>>,
    /// The handler's result (finished) or `{"stat": ..., ...}` (failed).
    pub reply: Option<Value>,
}

/// The whole run, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct JobRun {
    pub job_status: &'static str,
    pub ret_data: Option<Value>,
    pub handler_base_url: String,
    pub tasks: Vec<TaskRun>,
}

/// Runs `tasks` against `base_url`, or the in-process demo handlers when None.
pub fn execute(tasks: &[TaskSpec], job_extra: &Map<String, Value>, base_url: Option<&str>) -> Result<JobRun, CliError> {
    crate::executor::install_tls_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| CliError::Failed(format!("cannot start: {err}")))?;
    runtime.block_on(async {
        let (base_url, demo) = match base_url {
            Some(url) => (url.trim_end_matches('/').to_owned(), None),
            None => {
                let (url, server) = start_demo_handlers()?;
                (url, Some(server))
            }
        };
        let executor = HttpExecutor::new(&base_url, TaskLimits::default())
            .map_err(|err| CliError::Usage(format!("bad handler base URL {base_url}: {err}")))?;
        let run = run_dag(&executor, tasks, job_extra, base_url).await;
        if let Some(server) = demo {
            server.stop(false).await;
        }
        Ok(run)
    })
}

/// The `/demo_api/*` handlers on a free loopback port, in this process.
fn start_demo_handlers() -> Result<(String, actix_web::dev::ServerHandle), CliError> {
    let counts = actix_web::web::Data::new(crate::http::FlakyCounts::default());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().app_data(counts.clone()).configure(crate::http::configure_demo_handlers)
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .map_err(|err| CliError::Failed(format!("cannot serve the demo handlers: {err}")))?;
    let addr =
        server.addrs().first().copied().ok_or_else(|| CliError::Failed("no address for the demo handlers".into()))?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((format!("http://{addr}"), handle))
}

async fn run_dag(
    executor: &HttpExecutor,
    tasks: &[TaskSpec],
    job_extra: &Map<String, Value>,
    base_url: String,
) -> JobRun {
    let mut runs: Vec<Option<TaskRun>> = tasks.iter().map(|_| None).collect();
    let mut results: Vec<Option<Value>> = vec![None; tasks.len()];
    let index_of = |label: &str| tasks.iter().position(|task| task.label == label);
    loop {
        // A wave: every task not run yet whose dependencies have all ended.
        let wave: Vec<usize> = (0..tasks.len())
            .filter(|&i| runs[i].is_none())
            .filter(|&i| tasks[i].dependencies.iter().all(|dep| index_of(dep).is_some_and(|d| runs[d].is_some())))
            .collect();
        if wave.is_empty() {
            break;
        }
        let calls = wave.iter().map(|&i| {
            let task = &tasks[i];
            let deps: Vec<Option<Value>> =
                task.dependencies.iter().map(|dep| index_of(dep).and_then(|d| results[d].clone())).collect();
            async move {
                if deps.iter().any(Option::is_none) {
                    return (i, skipped(task), None);
                }
                let deps: Vec<Value> = deps.into_iter().flatten().collect();
                let (run, result) = run_task(executor, task, i, job_extra, &deps).await;
                (i, run, result)
            }
        });
        for (i, run, result) in futures_util::future::join_all(calls).await {
            runs[i] = Some(run);
            results[i] = result;
        }
    }
    let runs: Vec<TaskRun> = runs.into_iter().flatten().collect();
    let failed = runs.iter().any(|run| run.status != "finished");
    let ret_data = tasks.iter().zip(&results).filter(|(task, _)| task.is_save).find_map(|(_, result)| result.clone());
    JobRun { job_status: if failed { "failed" } else { "finished" }, ret_data, handler_base_url: base_url, tasks: runs }
}

fn skipped(task: &TaskSpec) -> TaskRun {
    TaskRun {
        label: task.label.clone(),
        cmd: task.cmd.clone(),
        status: "skipped",
        attempts: 0,
        millis: 0.0,
        params: None,
        reply: None,
    }
}

async fn run_task(
    executor: &HttpExecutor,
    task: &TaskSpec,
    index: usize,
    job_extra: &Map<String, Value>,
    deps: &[Value],
) -> (TaskRun, Option<Value>) {
    let empty = Map::new();
    let started = Instant::now();
    let mut run = skipped(task);
    let params = match resolve(
        task.params.as_ref().unwrap_or(&empty),
        &task.requires,
        job_extra,
        task.extra.as_ref().unwrap_or(&empty),
        deps,
    ) {
        Ok(params) => params,
        Err(missing) => {
            run.status = "failed";
            run.reply = Some(serde_json::json!({"stat": "ERR_PARAMS_MISSING", "missing": missing}));
            return (run, None);
        }
    };
    let key = format!("local-run-{index}-{}", task.label);
    let mut outcome = None;
    for attempt in 1..=task.retry_max.saturating_add(1) {
        run.attempts = attempt;
        let call = TaskCall {
            cmd: &task.cmd,
            params: &params,
            job_id: 0,
            task_id: i64::try_from(index).unwrap_or(i64::MAX),
            attempt,
            idempotency_key: &key,
            timeout: task.timeout.map(|secs| Duration::from_secs(u64::from(secs))),
        };
        let mut this = executor.run(&call).await;
        if let Outcome::Finished(result) = &this {
            let missing = missing_provides(result, &task.provides);
            if !missing.is_empty() {
                this = Outcome::Failed {
                    stat: String::from("ERR_PROVIDES_MISSING"),
                    data: Some(serde_json::json!({"missing": missing})),
                };
            }
        }
        let done = matches!(this, Outcome::Finished(_));
        outcome = Some(this);
        if done {
            break;
        }
    }
    run.millis = started.elapsed().as_secs_f64() * 1000.0;
    run.params = Some(params);
    match outcome {
        Some(Outcome::Finished(result)) => {
            run.status = "finished";
            let result = Value::Object(result);
            run.reply = Some(result.clone());
            (run, Some(result))
        }
        Some(Outcome::Failed { stat, data }) => {
            run.status = "failed";
            let mut reply = Map::new();
            reply.insert("stat".into(), Value::String(stat));
            if let Some(Value::Object(data)) = data {
                reply.extend(data);
            }
            run.reply = Some(Value::Object(reply));
            (run, None)
        }
        None => (run, None),
    }
}

/// The run as text: one block per task, then the job's outcome.
pub fn render(run: &JobRun) -> String {
    let mut out = format!("handlers: {}\n", run.handler_base_url);
    let json = |value: &Option<Value>| value.as_ref().map_or_else(|| String::from("-"), Value::to_string);
    for task in &run.tasks {
        let params = task.params.as_ref().map(|p| Value::Object(p.clone()));
        let _ = writeln!(
            out,
            "{:<8} {} {} ({} attempt{}, {:.1} ms)\n  params: {}\n  reply:  {}",
            task.status,
            task.label,
            task.cmd,
            task.attempts,
            if task.attempts == 1 { "" } else { "s" },
            task.millis,
            json(&params),
            json(&task.reply)
        );
    }
    let _ = writeln!(out, "job {}: ret_data {}", run.job_status, json(&run.ret_data));
    out
}
