//! The engine: creates jobs from plugins (here) and moves tasks through the
//! state machine (`crate::state`), event-driven — a task is dispatched the
//! moment its last dependency finishes, never by polling. Running one task
//! attempt is in `run`, parameter resolution in `resolve`,
//! locks/timeouts/cancel/retry in `job_control`, the job_notifier calls in
//! `notify`. New jobs and task results are written by group commits
//! (`create_batch`, `finish_batch`, both built on `group_commit`). Who takes
//! messages off the queue is `crate::worker`.

pub mod create_batch;
mod extra_schema;
pub mod finish_batch;
mod group_commit;
mod job_control;
mod notify;
pub mod resolve;
mod run;

pub use run::backoff;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::db::jobs::{self, deadline_of};
use crate::db::models::{JobRow, NewJob, NewTask};
use crate::db::{Database, DbError};
use crate::dispatch::{Queue, TaskMessage};
use crate::events::{Event, EventHub};
use crate::executor::HttpExecutor;
use crate::metrics::Metrics;
use crate::plugins::Registry;
use crate::runtime::{JobInput, PluginError, TaskSpec};
use crate::state::{JobStatus, TaskStatus};
use crate::worker::{LocalSlot, LocalWorkers};

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
    /// job_extra does not match the plugin's JSON Schema.
    #[error("{0}")]
    ExtraInvalid(extra_schema::ExtraInvalid),
    /// The plugin's workflow refused the job on purpose (its `Err(message)`).
    #[error("the plugin's workflow refused the job: {0}")]
    Workflow(String),
    /// The plugin failed: trapped, panicked, ran past its deadline or
    /// memory, or answered something the server cannot use.
    #[error("the plugin failed ({kind}): {message}")]
    PluginFault { kind: &'static str, message: String },
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
    /// This process, as its task attempts record it (`hostname:pid:random`).
    pub instance: String,
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

pub struct Engine {
    db: Database,
    plugins: Arc<Registry>,
    queue: Arc<Queue>,
    executor: HttpExecutor,
    config: EngineConfig,
    /// Whether this process has re-dispatched what a previous run left.
    recovered: std::sync::atomic::AtomicBool,
    /// Where status changes are told (`/xingqiao/events`, `wait_ms`).
    events: Arc<EventHub>,
    metrics: Arc<Metrics>,
    extra_schemas: extra_schema::ExtraSchemas,
    /// New jobs, written together when create_job calls come together.
    create_batches: create_batch::CreateBatches,
    /// Task results, written together when tasks finish together.
    finish_batches: finish_batch::FinishBatches,
    /// The runner's worker slots, once it runs in this process: create_job
    /// runs a new job's first task in one of them when it is free.
    local_workers: std::sync::RwLock<Option<LocalWorkers>>,
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
    pub fn new(
        db: Database,
        plugins: Arc<Registry>,
        queue: Arc<Queue>,
        executor: HttpExecutor,
        config: EngineConfig,
        events: Arc<EventHub>,
    ) -> Self {
        let metrics = Arc::<Metrics>::default();
        Self {
            events,
            create_batches: create_batch::CreateBatches::new(db.clone(), config.instance.clone(), metrics.clone()),
            finish_batches: finish_batch::FinishBatches::new(db.clone(), config.instance.clone(), metrics.clone()),
            metrics,
            extra_schemas: extra_schema::ExtraSchemas::default(),
            db,
            plugins,
            queue,
            executor,
            config,
            recovered: std::sync::atomic::AtomicBool::new(false),
            local_workers: std::sync::RwLock::default(),
        }
    }

    /// The runner of this process makes its worker slots known (each start
    /// replaces the previous runner's).
    pub fn attach_local_workers(&self, workers: LocalWorkers) {
        *self.local_workers.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(workers);
    }

    /// A free worker slot of this process, if there is one.
    fn local_slot(&self) -> Option<LocalSlot> {
        self.local_workers.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()?.take()
    }

    /// Runs the plugin (params_check, workflow) off the async threads, then
    /// stores the job and its DAG in one transaction (shared with the jobs of
    /// concurrent calls: `create_batch`) and dispatches the tasks that have no
    /// dependency.
    pub async fn create_job(&self, request: CreateJob) -> Result<i64, EngineError> {
        let entry = self
            .plugins
            .entry(&request.job_type)
            .ok_or_else(|| EngineError::JobTypeNotExists(request.job_type.clone()))?;
        let plugin = entry.plugin;
        let job_name = request.job_name.clone().unwrap_or_else(|| request.job_reqid.clone());
        let input = JobInput {
            namespace: request.job_namespace.clone(),
            name: job_name.clone(),
            operator: request.operator.clone(),
            job_extra: request.job_extra.clone(),
        };
        // The declared schema first: a job_extra of the wrong shape never reaches the plugin.
        self.extra_schemas
            .check(&entry.sha256, plugin.metadata().job_extra_schema.as_ref(), &request.job_extra)
            .map_err(EngineError::ExtraInvalid)?;
        let planner = plugin.clone();
        let planning = std::time::Instant::now();
        let planned = tokio::task::spawn_blocking(move || planner.plan_job(&input))
            .await
            .map_err(|err| EngineError::Internal(err.to_string()))?;
        self.metrics.plugin_called(&request.job_type, "plan", planning.elapsed());
        let (check, dag) = planned.map_err(|err| self.plugin_failure(&request.job_type, &entry.sha256, err))?;
        let now = now();
        let job_timeout = request.job_timeout.or(check.job_timeout).unwrap_or(self.config.default_job_timeout);
        let job_timeout = i32::try_from(job_timeout).unwrap_or(i32::MAX);
        // A job with locks waits until it holds them all; one without starts now.
        let locked = !check.job_locks.is_empty();
        let (status, deadline) =
            if locked { (JobStatus::Waiting, None) } else { (JobStatus::Started, Some(deadline_of(now, job_timeout))) };
        let new_job = NewJob {
            job_client: request.job_client,
            job_namespace: request.job_namespace.clone(),
            job_reqid: request.job_reqid.clone(),
            job_tags: check.job_tags.join(","),
            job_extra: Value::Object(request.job_extra).to_string(),
            job_timeout,
            job_lock: check.job_locks.join(","),
            operator: request.operator,
            plugin_version: plugin.metadata().version.clone(),
            tasks_unfinished: i32::try_from(dag.len()).unwrap_or(i32::MAX),
            deadline,
            plugin_sha256: entry.sha256.clone(),
            ..NewJob::new(&request.job_type, &job_name, status, now)
        };
        // The row as inserted, for the job_notifier (which then reads none).
        let told = (!locked && plugin.implements_notifier()).then(|| new_job.clone());
        let task_rows = task_rows(&dag, now, locked);
        // A free slot here: the first task starts with the job and runs at once.
        let slot = if locked { None } else { self.local_slot() };
        let creation =
            jobs::Creation { job: new_job, tasks: task_rows, start_first: slot.as_ref().map(|_| self.lease_from(now)) };
        let created = self.create_batches.create(creation).await.map_err(|err| {
            if err.is_unique_violation() { EngineError::JobExists(job_name.clone()) } else { EngineError::Db(err) }
        })?;
        let (job_id, ready, started) = (created.job_id, created.ready, created.started);
        self.metrics.job_created(&request.job_type);
        let job_event = Event::job(job_id, &request.job_type, &request.job_namespace, status, "");
        self.events.publish(job_event.clone());
        if locked {
            tracing::info!(job_id, job_name, job_type = request.job_type, tasks = dag.len(), locks = ?check.job_locks, "job waiting for its locks");
            self.try_start(job_id).await?;
        } else {
            tracing::info!(job_id, job_name, job_type = request.job_type, tasks = dag.len(), "job started");
            if let Some(job) = told {
                self.notify_row(JobRow { job_id, job });
            }
            if let (Some(slot), Some(started)) = (slot, started) {
                // Told as every task is: pending, then started when it runs.
                tracing::info!(task_id = started.task.task_id, "task pending; this worker runs it now");
                self.events.publish(Event::task(&job_event, started.task.task_id, TaskStatus::Pending, ""));
                slot.run(started);
            }
            self.dispatch(&ready, &job_event);
        }
        Ok(job_id)
    }

    /// A refusal the plugin chose stays the caller's answer; anything else is
    /// the plugin's fault, logged and counted for its operator.
    fn plugin_failure(&self, job_type: &str, sha256: &str, err: PluginError) -> EngineError {
        let kind = match &err {
            PluginError::Rejected { call: crate::runtime::Export::Workflow, message } => {
                return EngineError::Workflow(message.clone());
            }
            PluginError::Rejected { message, .. } => return EngineError::ParamsCheck(message.clone()),
            PluginError::Busy => return EngineError::Busy,
            PluginError::Trap { .. } => "trap",
            PluginError::Timeout { .. } => "deadline",
            PluginError::MemoryLimit { .. } => "memory",
            PluginError::TooManyTasks { .. } | PluginError::DagTooLarge { .. } => "too_large",
            _ => "unusable_answer",
        };
        self.metrics.plugin_fault(job_type, kind);
        tracing::warn!(job_type, plugin_sha256 = sha256, kind, error = %err, "plugin fault");
        EngineError::PluginFault { kind, message: err.to_string() }
    }

    /// Queues tasks that just became `pending`; `job` names their job in the events.
    fn dispatch(&self, task_ids: &[i64], job: &Event) {
        for &task_id in task_ids {
            tracing::info!(task_id, "task pending");
            self.events.publish(Event::task(job, task_id, TaskStatus::Pending, ""));
            self.queue.push(TaskMessage { task_id, attempt: 0 });
        }
    }

    /// Queues tasks that are `pending` again (recovery, lost messages): no
    /// status changed, so nothing is told.
    fn redispatch(&self, task_ids: &[i64]) {
        for &task_id in task_ids {
            tracing::info!(task_id, "task pending");
            self.queue.push(TaskMessage { task_id, attempt: 0 });
        }
    }

    /// Tells a job's new status, reading its type and namespace first.
    async fn publish_job(&self, job_id: i64) -> Result<Option<Event>, DbError> {
        let Some(row) = jobs::find_any(&mut self.db.conn().await?, job_id).await? else { return Ok(None) };
        let event = Event::job(job_id, &row.job_type, &row.job_namespace, row.job_status, &row.ret_stat);
        if !event.ends_job() {
            self.events.publish(event.clone());
            return Ok(Some(event));
        }
        self.metrics.job_ended(&event.job_type, &event.status, &event.ret_stat);
        self.events.publish(event.clone().with_row(row));
        Ok(Some(event))
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
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
            },
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
