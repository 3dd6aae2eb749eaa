//! The engine: creates jobs from plugins and moves tasks through the state
//! machine (`state`), event-driven — a task is dispatched the moment its last
//! dependency finishes, never by polling.

pub mod params;
pub mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::db::control::{self, deadline_of};
use crate::db::models::{JobRow, NewJob, NewTask, TaskRow, split_list};
use crate::db::tasks::Recorded;
use crate::db::{Database, DbError, jobs, tasks};
use crate::dispatch::{Delivery, Queue, TaskMessage};
use crate::executor::{self, Call, HttpExecutor, Outcome};
use crate::plugins::Registry;
use crate::runtime::{JobEvent, JobInput, PluginError, TaskSpec};
use state::{JobStatus, TaskStatus, stat};

/// Longest `job_extra`, as the seed's `varchar(10240)`.
pub const MAX_JOB_EXTRA_BYTES: usize = 10240;
const MAX_STAT_LEN: usize = 64;

/// A create_job request, validated for shape by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct CreateJob {
    pub job_namespace: String,
    pub job_type: String,
    pub job_name: Option<String>,
    pub job_extra: Map<String, Value>,
    pub job_timeout: Option<u32>,
    pub operator: String,
    pub job_client: String,
    pub job_reqid: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("job_type {0:?} does not exist")]
    JobTypeNotExists(String),
    #[error("{0}")]
    ParamsCheck(String),
    #[error("the plugin's workflow failed: {0}")]
    Workflow(String),
    #[error("a job named {0:?} already exists")]
    JobExists(String),
    #[error("plugins are busy; try again")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Engine settings from the configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub default_job_timeout: u32,
    pub workers: usize,
    /// First retry delay; each next one doubles (capped at 30 s), ±50 % jitter.
    pub retry_backoff: Duration,
    /// How long a message or a pending task may go unattended before it is
    /// taken over or dispatched again.
    pub visibility_timeout: Duration,
}

const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(30);
/// Tries to record one result before giving up (the task then stays started
/// until a restart hands it back).
const RECORD_ATTEMPTS: u32 = 5;
/// Waiting jobs looked at per wake-up.
const WAKE_BATCH: i64 = 100;

/// Delay before attempt `attempt` (1 = the first retry).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(MAX_RETRY_BACKOFF);
    // Jitter spreads retries of many tasks failing together.
    let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX);
    exponential.mul_f64(jitter)
}

pub struct Engine {
    db: Database,
    plugins: Arc<Registry>,
    queue: Queue,
    executor: HttpExecutor,
    config: EngineConfig,
    /// Whether this process has re-dispatched what a previous run left.
    recovered: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("db", &self.db).field("config", &self.config).finish_non_exhaustive()
    }
}

/// Database time: UTC, to the microsecond (what every backend keeps).
pub fn now() -> NaiveDateTime {
    use chrono::Timelike;
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

fn cut_stat(stat: String) -> String {
    if stat.len() <= MAX_STAT_LEN {
        return stat;
    }
    let mut end = MAX_STAT_LEN;
    while !stat.is_char_boundary(end) {
        end -= 1;
    }
    stat[..end].to_owned()
}

impl Engine {
    pub fn new(db: Database, plugins: Registry, queue: Queue, executor: HttpExecutor, config: EngineConfig) -> Self {
        Self {
            db,
            plugins: Arc::new(plugins),
            queue,
            executor,
            config,
            recovered: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn plugins(&self) -> &Registry {
        &self.plugins
    }

    /// Runs the plugin (params_check, workflow) off the async threads, then
    /// stores the job and its DAG in one transaction and dispatches the tasks
    /// that have no dependency.
    pub async fn create_job(&self, request: CreateJob) -> Result<i64, EngineError> {
        let plugin = self
            .plugins
            .get(&request.job_type)
            .ok_or_else(|| EngineError::JobTypeNotExists(request.job_type.clone()))?;
        let job_name = request.job_name.clone().unwrap_or_else(|| request.job_reqid.clone());
        let input = JobInput {
            namespace: request.job_namespace.clone(),
            name: job_name.clone(),
            operator: request.operator.clone(),
            job_extra: request.job_extra.clone(),
        };
        let planner = plugin.clone();
        let planned = tokio::task::spawn_blocking(move || planner.plan_job(&input))
            .await
            .map_err(|err| EngineError::Internal(err.to_string()))?;
        let (check, dag) = planned.map_err(|err| match err {
            PluginError::Rejected { message, .. } => EngineError::ParamsCheck(message),
            PluginError::Busy => EngineError::Busy,
            PluginError::Timeout { call: crate::runtime::Call::ParamsCheck, .. }
            | PluginError::Trap { call: crate::runtime::Call::ParamsCheck, .. }
            | PluginError::BadCheck(_) => EngineError::ParamsCheck(err.to_string()),
            other => EngineError::Workflow(other.to_string()),
        })?;
        let now = now();
        let job_timeout = request.job_timeout.or(check.job_timeout).unwrap_or(self.config.default_job_timeout);
        let job_timeout = i32::try_from(job_timeout).unwrap_or(i32::MAX);
        // A job with locks waits until it holds them all; one without starts now.
        let locked = !check.job_locks.is_empty();
        let (status, deadline) =
            if locked { (JobStatus::Waiting, None) } else { (JobStatus::Started, Some(deadline_of(now, job_timeout))) };
        let new_job = NewJob {
            job_client: request.job_client,
            job_namespace: request.job_namespace,
            job_reqid: request.job_reqid.clone(),
            job_name: job_name.clone(),
            job_status: status.as_str().into(),
            job_type: request.job_type.clone(),
            job_tags: check.job_tags.join(","),
            ret_stat: String::new(),
            ret_data: None,
            job_cost: 0.0,
            job_extra: Value::Object(request.job_extra).to_string(),
            job_timeout,
            job_lock: check.job_locks.join(","),
            exe_id: 1,
            operator: request.operator,
            is_valid: true,
            c_time: now,
            s_time: now,
            e_time: now,
            u_time: now,
            plugin_version: plugin.metadata().version.clone(),
            tasks_unfinished: i32::try_from(dag.len()).unwrap_or(i32::MAX),
            deadline,
        };
        let task_rows = task_rows(&dag, now, locked);
        let (job_id, ready) = jobs::create(&self.db, new_job, task_rows).await.map_err(|err| {
            if err.is_unique_violation() { EngineError::JobExists(job_name.clone()) } else { EngineError::Db(err) }
        })?;
        if locked {
            tracing::info!(job_id, job_name, job_type = request.job_type, tasks = dag.len(), locks = ?check.job_locks, "job waiting for its locks");
            self.try_start(job_id).await?;
        } else {
            tracing::info!(job_id, job_name, job_type = request.job_type, tasks = dag.len(), "job started");
            self.notify(job_id);
            self.dispatch(&ready);
        }
        Ok(job_id)
    }

    /// Starts a waiting job if it can take its locks now.
    async fn try_start(&self, job_id: i64) -> Result<bool, DbError> {
        match control::try_start(&self.db, job_id, now()).await? {
            Some(ready) => {
                tracing::info!(job_id, "job started: locks taken");
                self.notify(job_id);
                self.dispatch(&ready);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Gives waiting jobs, oldest first, their chance at the locks just freed.
    pub async fn wake_waiting(&self) -> Result<(), DbError> {
        for job_id in control::waiting_jobs(&self.db, WAKE_BATCH).await? {
            self.try_start(job_id).await?;
        }
        Ok(())
    }

    /// The timer-driven part, idempotent and safe on every instance: running
    /// jobs past their deadline fail with ERR_JOB_EXE_TIMEOUT, and waiting
    /// jobs get another look at the locks.
    pub async fn sweep(&self) -> Result<(), DbError> {
        if !self.recovered.load(std::sync::atomic::Ordering::Acquire) {
            self.recover().await?;
        }
        match self.queue.reclaim(self.config.visibility_timeout).await {
            Ok(0) => {}
            Ok(reclaimed) => tracing::warn!(reclaimed, "took over messages a dead worker left"),
            Err(err) => tracing::warn!(error = %err, "reclaiming messages failed"),
        }
        // A worker that died (kill -9) stopped renewing its leases.
        let orphans = tasks::expired_leases(&self.db, now()).await?;
        if !orphans.is_empty() {
            tracing::warn!(tasks = orphans.len(), "tasks of a dead worker taken over");
            self.dispatch(&orphans);
        }
        // A message lost with the queue leaves its task pending: dispatch it again.
        let stale = tasks::stale_pending(
            &self.db,
            now() - chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default(),
            now(),
        )
        .await?;
        if !stale.is_empty() {
            tracing::warn!(tasks = stale.len(), "pending tasks with no message in sight dispatched again");
            self.dispatch(&stale);
        }
        for job_id in control::expired(&self.db, now()).await? {
            if control::end(&self.db, job_id, stat::JOB_TIMEOUT, now()).await? {
                tracing::warn!(job_id, "job timed out");
                self.notify(job_id);
            }
        }
        self.wake_waiting().await
    }

    /// Stops a running or waiting job (it stays listed, failed with
    /// ERR_JOB_CANCELLED); `false` if it was not running.
    pub async fn cancel_job(&self, job_id: i64) -> Result<bool, DbError> {
        let ended = control::end(&self.db, job_id, stat::JOB_CANCELLED, now()).await?;
        if ended {
            tracing::warn!(job_id, "job cancelled");
            self.notify(job_id);
            self.wake_waiting().await?;
        }
        Ok(ended)
    }

    /// Soft delete (`is_valid = 0`), cancelling the job first if it runs.
    pub async fn delete_job(&self, job_id: i64) -> Result<bool, DbError> {
        self.cancel_job(job_id).await?;
        let deleted = control::invalidate(&self.db, job_id, now()).await?;
        if deleted {
            tracing::info!(job_id, "job deleted");
        }
        Ok(deleted)
    }

    /// Resumes a failed job from its failed tasks; `false` if it is not failed.
    pub async fn retry_job(&self, job_id: i64) -> Result<bool, DbError> {
        if !control::reset_failed(&self.db, job_id, now()).await? {
            return Ok(false);
        }
        tracing::info!(job_id, "job retried from its failed tasks");
        self.try_start(job_id).await?;
        Ok(true)
    }

    /// Tells the job's plugin (job_notifier) about its current state, in the
    /// background: a failing or slow notifier is logged and changes nothing.
    fn notify(&self, job_id: i64) {
        let (db, plugins) = (self.db.clone(), self.plugins.clone());
        tokio::spawn(async move {
            let row = match jobs::find_any(&db, job_id).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(job_id, error = %err, "job_notifier skipped: job not readable");
                    return;
                }
            };
            let Some(plugin) = plugins.get(&row.job_type) else { return };
            let event = job_event(&row);
            let called = tokio::task::spawn_blocking(move || plugin.job_notifier(&event)).await;
            match called {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(job_id, error = %err, "job_notifier failed; the job is unchanged"),
                Err(err) => tracing::warn!(job_id, error = %err, "job_notifier did not run"),
            }
        });
    }

    fn dispatch(&self, task_ids: &[i64]) {
        for &task_id in task_ids {
            tracing::info!(task_id, "task pending");
            self.queue.push(TaskMessage { task_id, attempt: 0 });
        }
    }

    /// Dispatches again what a previous run left pending or started. Done
    /// once per process; until it succeeds, every sweep tries it again.
    pub async fn recover(&self) -> Result<usize, DbError> {
        let running = jobs::started_ids(&self.db).await?;
        // With a shared queue, other instances may be running the started
        // tasks: only the pending ones are dispatched again.
        let take_over_started = !self.queue.is_shared();
        let pending = tasks::recover_pending(&self.db, &running, take_over_started, now()).await?;
        self.dispatch(&pending);
        self.recovered.store(true, std::sync::atomic::Ordering::Release);
        self.wake_waiting().await?;
        Ok(pending.len())
    }

    /// The next task message, for a worker; `None` when there is none now.
    pub async fn next_message(&self) -> Option<Delivery> {
        self.queue.pop().await
    }

    /// The message's result is stored (or it needed no work).
    pub async fn ack(&self, delivery: &Delivery) {
        self.queue.ack(delivery).await;
    }

    /// Runs one task attempt end to end: pending → started, parameters, the
    /// HTTP call, then the result recorded. A message for a task that is not
    /// pending any more is dropped.
    pub async fn run_task(&self, message: TaskMessage) -> Result<(), DbError> {
        let started_at = now();
        let lease_until = started_at + chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default();
        let mut attempt = 0;
        let started = loop {
            // A deadlock between concurrent transitions is the database's way
            // of asking to try again.
            match tasks::start(&self.db, message.task_id, lease_until, started_at).await {
                Err(err) if attempt < RECORD_ATTEMPTS && !err.is_unavailable() => {
                    attempt += 1;
                    tracing::debug!(task_id = message.task_id, error = %err, "starting a task failed; trying again");
                    tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                }
                other => break other?,
            }
        };
        let Some(started) = started else {
            // Someone else has it, or it is no longer pending: nothing to do.
            return Ok(());
        };
        let tasks::Started { task: row, job, dependencies: deps } = started;
        tracing::info!(task_id = row.task_id, job_id = row.job_id, label = row.task_label, "task started");
        if JobStatus::parse(&job.job_status) != Some(JobStatus::Started) {
            let stat = stat::JOB_NOT_RUNNING;
            return self.record(&row, Outcome::Failed { stat: stat.into(), data: None }).await;
        }
        let outcome = match self.resolve(&row, &job.job_extra, &deps) {
            Err(missing) => Outcome::Failed {
                stat: cut_stat(format!("{}:{}", executor::stat::PARAM_MISSING, missing.join(","))),
                data: Some(
                    serde_json::json!({"message": format!("required parameters not found: {}", missing.join(", "))}),
                ),
            },
            Ok(params) => {
                let timeout =
                    (row.task_timeout > 0).then(|| Duration::from_secs(row.task_timeout.unsigned_abs().into()));
                let call = Call {
                    cmd: &row.task_cmd,
                    params: &params,
                    job_id: row.job_id,
                    task_id: row.task_id,
                    attempt: message.attempt,
                    idempotency_key: &row.task_reqid,
                    timeout,
                };
                match self.executor.run(&call).await {
                    Outcome::Finished(result) => {
                        let missing = executor::missing_provides(&result, &split_list(&row.task_provides));
                        if missing.is_empty() {
                            Outcome::Finished(result)
                        } else {
                            Outcome::Failed {
                                stat: cut_stat(format!("{}:{}", executor::stat::PROVIDES_MISSING, missing.join(","))),
                                data: Some(Value::Object(result)),
                            }
                        }
                    }
                    failed => failed,
                }
            }
        };
        // A result must not be lost to a passing database error (a deadlock, a
        // busy SQLite, a dropped connection): try again a few times.
        let mut delay = Duration::from_millis(20);
        for _ in 0..RECORD_ATTEMPTS {
            match self.record(&row, outcome.clone()).await {
                Err(err) => {
                    tracing::warn!(task_id = row.task_id, error = %err, ?delay, "recording a result failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Ok(()) => return Ok(()),
            }
        }
        self.record(&row, outcome).await
    }

    fn resolve(&self, row: &TaskRow, job_extra: &str, deps: &[TaskRow]) -> Result<Map<String, Value>, Vec<String>> {
        let object = |text: Option<&str>| match text.map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Object(map))) => map,
            _ => Map::new(),
        };
        // Dependencies in the order the plugin listed them.
        let by_label: HashMap<&str, &TaskRow> = deps.iter().map(|d| (d.task_label.as_str(), d)).collect();
        let results: Vec<Value> = split_list(&row.task_dependencies)
            .iter()
            .map(|label| {
                by_label
                    .get(label.as_str())
                    .and_then(|d| d.ret_data.as_deref())
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(Value::Null)
            })
            .collect();
        params::resolve(
            &object(row.task_params.as_deref()),
            &split_list(&row.task_requires),
            &object(Some(job_extra)),
            &object(Some(&row.task_extra)),
            &results,
        )
    }

    async fn record(&self, row: &TaskRow, outcome: Outcome) -> Result<(), DbError> {
        let now = now();
        let recorded = match outcome {
            Outcome::Finished(result) => {
                let data = Value::Object(result).to_string();
                let recorded = tasks::finish(&self.db, row, Some(data), now).await?;
                if recorded.is_some() {
                    tracing::info!(task_id = row.task_id, job_id = row.job_id, label = row.task_label, "task finished");
                }
                recorded
            }
            Outcome::Failed { stat, data } if row.task_retrycount < row.task_retrymax => {
                let data = data.map(|d| d.to_string());
                if tasks::retry(&self.db, row, &stat, data, now).await? {
                    let attempt = row.task_retrycount.unsigned_abs() + 1;
                    let delay = backoff(self.config.retry_backoff, attempt);
                    tracing::warn!(
                        task_id = row.task_id,
                        job_id = row.job_id,
                        label = row.task_label,
                        stat,
                        attempt,
                        ?delay,
                        "task failed; retrying"
                    );
                    self.queue.push_later(TaskMessage { task_id: row.task_id, attempt }, delay);
                }
                None
            }
            Outcome::Failed { stat, data } => {
                let recorded = tasks::fail(&self.db, row, &stat, data.map(|d| d.to_string()), now).await?;
                if recorded.is_some() {
                    tracing::warn!(
                        task_id = row.task_id,
                        job_id = row.job_id,
                        label = row.task_label,
                        stat,
                        "task failed"
                    );
                }
                recorded
            }
        };
        if let Some(Recorded { ready, job_end }) = recorded {
            self.dispatch(&ready);
            if let Some(end) = job_end {
                tracing::info!(job_id = end.job_id, status = end.job_status, ret_stat = end.ret_stat, "job ended");
                self.notify(end.job_id);
                // Its locks are free: the next waiting job may start.
                self.wake_waiting().await?;
            }
        }
        Ok(())
    }

    /// Extends the leases of the tasks this process runs (it is alive).
    pub async fn renew_leases(&self, task_ids: &[i64]) -> Result<(), DbError> {
        let until = now() + chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default();
        tasks::renew_leases(&self.db, task_ids, until).await
    }

    /// Tasks this process was running when told to stop go back to pending.
    pub async fn hand_back(&self, task_ids: &[i64]) -> Result<usize, DbError> {
        tasks::hand_back(&self.db, task_ids, now()).await
    }

    pub fn workers(&self) -> usize {
        self.config.workers
    }
}

/// The DAG as rows: tasks without dependencies start `pending` (unless the
/// job waits for its locks), the others `waiting` on as many dependencies as
/// they have.
fn task_rows(dag: &[TaskSpec], now: NaiveDateTime, job_waits: bool) -> Vec<NewTask> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for spec in dag {
        for dep in &spec.dependencies {
            dependents.entry(dep.as_str()).or_default().push(spec.label.as_str());
        }
    }
    dag.iter()
        .map(|spec| NewTask {
            job_id: 0,
            task_label: spec.label.clone(),
            task_reqid: uuid::Uuid::new_v4().to_string(),
            task_cmd: spec.cmd.clone(),
            task_params: spec.params.clone().map(|p| Value::Object(p).to_string()),
            task_requires: spec.requires.join(","),
            task_provides: spec.provides.join(","),
            task_dependencies: spec.dependencies.join(","),
            task_status: if spec.dependencies.is_empty() && !job_waits {
                TaskStatus::Pending
            } else {
                TaskStatus::Waiting
            }
            .as_str()
            .into(),
            task_cost: 0.0,
            task_extra: Value::Object(spec.extra.clone().unwrap_or_default()).to_string(),
            task_is_save: spec.is_save,
            ret_stat: String::new(),
            ret_data: None,
            task_retrymax: i32::try_from(spec.retry_max).unwrap_or(i32::MAX),
            task_retrycount: 0,
            task_timeout: spec.timeout.map_or(0, |t| i32::try_from(t).unwrap_or(i32::MAX)),
            c_time: now,
            s_time: now,
            u_time: now,
            task_dependents: dependents.get(spec.label.as_str()).map(|d| d.join(",")).unwrap_or_default(),
            task_waiting_on: i32::try_from(spec.dependencies.len()).unwrap_or(i32::MAX),
            task_lease_until: None,
        })
        .collect()
}

/// The seed's `job_obj`, for job_notifier.
fn job_event(row: &JobRow) -> JobEvent {
    let time = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    JobEvent {
        job_id: row.job_id,
        job_client: row.job_client.clone(),
        job_namespace: row.job_namespace.clone(),
        job_reqid: row.job_reqid.clone(),
        job_name: row.job_name.clone(),
        job_status: row.job_status.clone(),
        job_type: row.job_type.clone(),
        job_tags: row.job_tags.clone(),
        ret_stat: row.ret_stat.clone(),
        ret_data: row.ret_data.clone(),
        job_cost: row.job_cost,
        job_extra: row.job_extra.clone(),
        job_timeout: row.job_timeout.unsigned_abs(),
        job_lock: row.job_lock.clone(),
        exe_id: row.exe_id.unsigned_abs(),
        operator: row.operator.clone(),
        is_valid: row.is_valid,
        c_time: time(&row.c_time),
        s_time: time(&row.s_time),
        e_time: time(&row.e_time),
    }
}
