//! Running one task attempt: start it, resolve its parameters, call its
//! handler, record the result (retrying it after a backoff when it failed
//! and retries are left).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::db::DbError;
use crate::db::models::{TaskRow, split_list};
use crate::db::tasks::{self, Ending, Recorded, Started};
use crate::dispatch::TaskMessage;
use crate::executor::{self, Outcome, TaskCall};

use crate::events::Event;
use crate::state::{JobStatus, TaskStatus, stat};

use super::{Engine, MAX_RETRY_BACKOFF, RECORD_ATTEMPTS, cut_stat, now, resolve};

/// Delay before attempt `attempt` (1 = the first retry).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(MAX_RETRY_BACKOFF);
    // Jitter spreads retries of many tasks failing together.
    let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX);
    exponential.mul_f64(jitter)
}

/// A started task and the attempt that runs it.
struct Attempt<'a> {
    row: &'a TaskRow,
    id: i64,
    /// Its job, as the events name it.
    job: Event,
    /// The plugin version that planned its job (for job_notifier).
    plugin_sha256: &'a str,
}

impl Engine {
    /// Runs one task attempt end to end: pending → started, parameters, the
    /// HTTP call, then the result recorded. A message for a task that is not
    /// pending any more is dropped. Gives the dependent this worker should
    /// run next, already started (see [`tasks::CarryOn`]): run it with
    /// [`Engine::run_started`], or hand it back.
    pub async fn run_task(&self, message: TaskMessage) -> Result<Option<Started>, DbError> {
        let started_at = now();
        let lease_until = self.lease_from(started_at);
        let mut attempt = 0;
        let started = loop {
            // A deadlock between concurrent transitions is the database's way
            // of asking to try again.
            let started = async {
                let mut conn = self.db.conn().await?;
                tasks::start(&mut conn, message.task_id, &self.config.instance, lease_until, started_at).await
            };
            match started.await {
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
            return Ok(None);
        };
        self.run_attempt(started, message.attempt).await
    }

    /// Runs a task this worker already started: the next step that
    /// [`Engine::run_task`] (or this) gave back.
    pub async fn run_started(&self, started: Started) -> Result<Option<Started>, DbError> {
        let attempt = started.task.task_retrycount.unsigned_abs();
        self.run_attempt(started, attempt).await
    }

    pub(super) fn lease_from(&self, now: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        now + chrono::Duration::from_std(self.config.visibility_timeout).unwrap_or_default()
    }

    /// Parameters, the HTTP call and the result of a started task's attempt
    /// (attempt number `attempt_no`).
    async fn run_attempt(&self, started: Started, attempt_no: u32) -> Result<Option<Started>, DbError> {
        let Started { task: row, job, dependencies: deps, attempt_id } = started;
        let job_event = Event::job(row.job_id, &job.job_type, &job.job_namespace, job.job_status, "");
        self.events.publish(Event::task(&job_event, row.task_id, TaskStatus::Started, ""));
        let attempt = Attempt { row: &row, id: attempt_id, job: job_event, plugin_sha256: &job.plugin_sha256 };
        tracing::info!(task_id = row.task_id, job_id = row.job_id, label = row.task_label, attempt_id, "task started");
        if job.job_status != JobStatus::Started {
            let stat = stat::JOB_NOT_RUNNING;
            return self.record(&attempt, Outcome::Failed { stat: stat.into(), data: None }).await;
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
                let call = TaskCall {
                    cmd: &row.task_cmd,
                    params: &params,
                    job_id: row.job_id,
                    task_id: row.task_id,
                    attempt: attempt_no,
                    idempotency_key: &row.task_reqid,
                    timeout,
                };
                let calling = std::time::Instant::now();
                let outcome = self.executor.run(&call).await;
                self.metrics.task_called(&row.task_cmd, calling.elapsed());
                match outcome {
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
            match self.record(&attempt, outcome.clone()).await {
                Err(err) => {
                    tracing::warn!(task_id = row.task_id, error = %err, ?delay, "recording a result failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Ok(next) => return Ok(next),
            }
        }
        self.record(&attempt, outcome).await
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
        resolve::resolve(
            &object(row.task_params.as_deref()),
            &split_list(&row.task_requires),
            &object(Some(job_extra)),
            &object(Some(&row.task_extra)),
            &results,
        )
    }

    /// Stores an attempt's outcome; gives the released dependent this worker
    /// runs next, if any.
    async fn record(&self, attempt: &Attempt<'_>, outcome: Outcome) -> Result<Option<Started>, DbError> {
        let (row, attempt_id, job) = (attempt.row, attempt.id, &attempt.job);
        let now = now();
        let recorded = match outcome {
            Outcome::Finished(result) => {
                let finishing = tasks::Finishing {
                    row: row.clone(),
                    attempt_id,
                    ret_data: Some(Value::Object(result).to_string()),
                    now,
                    carry_on_until: Some(self.lease_from(now)),
                };
                let recorded = self.finish_batches.finish(finishing).await?;
                if recorded.is_some() {
                    tracing::info!(task_id = row.task_id, job_id = row.job_id, label = row.task_label, "task finished");
                    self.events.publish(Event::task(job, row.task_id, TaskStatus::Finished, "OK"));
                    self.metrics.task_attempt_ended(&row.task_cmd, "finished");
                }
                recorded
            }
            Outcome::Failed { stat, data } if row.task_retrycount < row.task_retrymax => {
                let data = data.map(|d| d.to_string());
                let mut conn = self.db.conn().await?;
                if tasks::retry(&mut conn, row, Ending { attempt_id, ret_stat: &stat, ret_data: data, now }).await? {
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
                    self.events.publish(Event::task(job, row.task_id, "retrying", &stat));
                    self.metrics.task_attempt_ended(&row.task_cmd, "retrying");
                    self.queue.push_later(TaskMessage { task_id: row.task_id, attempt }, delay);
                }
                None
            }
            Outcome::Failed { stat, data } => {
                let ending = Ending { attempt_id, ret_stat: &stat, ret_data: data.map(|d| d.to_string()), now };
                let recorded = tasks::fail(&mut self.db.conn().await?, row, ending).await?;
                if recorded.is_some() {
                    tracing::warn!(
                        task_id = row.task_id,
                        job_id = row.job_id,
                        label = row.task_label,
                        stat,
                        "task failed"
                    );
                    self.events.publish(Event::task(job, row.task_id, TaskStatus::Failed, &stat));
                    self.metrics.task_attempt_ended(&row.task_cmd, "failed");
                }
                recorded
            }
        };
        let mut next = None;
        if let Some(Recorded { ready, next: carried, job_end }) = recorded {
            if let Some(carried) = &carried {
                // Told as every task is: ready, then started when it runs.
                tracing::info!(task_id = carried.task.task_id, "task pending; this worker runs it next");
                self.events.publish(Event::task(job, carried.task.task_id, TaskStatus::Pending, ""));
            }
            next = carried;
            self.dispatch(&ready, job);
            if let Some(end) = job_end {
                tracing::info!(job_id = end.job_id, status = %end.job_status, ret_stat = end.ret_stat, "job ended");
                self.metrics.job_ended(&job.job_type, &end.job_status.to_string(), &end.ret_stat);
                let told = Event::job(end.job_id, &job.job_type, &job.job_namespace, end.job_status, &end.ret_stat);
                self.events.publish(match &end.row {
                    Some(row) => told.with_row(row.clone()),
                    None => told,
                });
                match end.row {
                    Some(row) => self.notify_row(row),
                    None => self.notify_known(end.job_id, &job.job_type, attempt.plugin_sha256),
                }
                // Its locks are free: the next waiting job may start. A job
                // without locks frees none, and looking for waiting jobs
                // after each would cost a query per job. The result is stored
                // already, so a failure here is only logged: the sweeper
                // hands the locks over at its next tick.
                if end.released_locks
                    && let Err(err) = self.wake_waiting().await
                {
                    tracing::warn!(error = %err, "waking jobs that wait for locks failed; the sweeper will");
                }
            }
        }
        Ok(next)
    }
}
