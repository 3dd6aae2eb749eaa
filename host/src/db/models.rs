//! Rows of the two tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{workflow_job, workflow_plugin, workflow_task, workflow_task_attempt};
use crate::state::{AttemptOutcome, JobStatus, TaskStatus};

/// A stored job: its id and the columns it was created with (reachable as
/// fields of the row itself, through `Deref`). Serde: a job's end event
/// carries its row between instances (`events`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = workflow_job)]
pub struct JobRow {
    pub job_id: i64,
    #[diesel(embed)]
    pub job: NewJob,
}

impl std::ops::Deref for JobRow {
    type Target = NewJob;

    fn deref(&self) -> &NewJob {
        &self.job
    }
}

/// A job's columns but its id: what create_job inserts.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = workflow_job)]
pub struct NewJob {
    pub job_client: String,
    pub job_namespace: String,
    pub job_reqid: String,
    pub job_name: String,
    pub job_status: JobStatus,
    pub job_type: String,
    pub job_tags: String,
    pub ret_stat: String,
    pub ret_data: Option<String>,
    pub job_cost: f64,
    pub job_extra: String,
    pub job_timeout: i32,
    pub job_lock: String,
    pub exe_id: i32,
    pub operator: String,
    pub is_valid: bool,
    pub c_time: NaiveDateTime,
    pub s_time: NaiveDateTime,
    pub e_time: NaiveDateTime,
    pub u_time: NaiveDateTime,
    pub plugin_version: String,
    pub tasks_unfinished: i32,
    /// When a running job times out; none while it waits for its locks.
    pub deadline: Option<NaiveDateTime>,
    /// The component that planned the job (empty for jobs older than uploads).
    pub plugin_sha256: String,
}

/// A stored task: its id and the columns it was created with (reachable as
/// fields of the row itself, through `Deref`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = workflow_task)]
pub struct TaskRow {
    pub task_id: i64,
    #[diesel(embed)]
    pub task: NewTask,
}

impl std::ops::Deref for TaskRow {
    type Target = NewTask;

    fn deref(&self) -> &NewTask {
        &self.task
    }
}

impl NewJob {
    /// A job of `job_type` named `job_name` (also its request id), created at
    /// `now` in `job_status`; every other column at its starting value: no
    /// result, tags, locks, plugin or cost yet, its first execution, the
    /// default timeout of an hour.
    pub fn new(job_type: &str, job_name: &str, job_status: JobStatus, now: NaiveDateTime) -> Self {
        Self {
            job_client: String::new(),
            job_namespace: String::new(),
            job_reqid: job_name.to_owned(),
            job_name: job_name.to_owned(),
            job_status,
            job_type: job_type.to_owned(),
            job_tags: String::new(),
            ret_stat: String::new(),
            ret_data: None,
            job_cost: 0.0,
            job_extra: String::from("{}"),
            job_timeout: 3600,
            job_lock: String::new(),
            exe_id: 1,
            operator: String::new(),
            is_valid: true,
            c_time: now,
            s_time: now,
            e_time: now,
            u_time: now,
            plugin_version: String::new(),
            tasks_unfinished: 0,
            deadline: None,
            plugin_sha256: String::new(),
        }
    }
}

/// A task's columns but its id: what create_job inserts.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_task)]
pub struct NewTask {
    pub job_id: i64,
    pub task_label: String,
    pub task_reqid: String,
    pub task_cmd: String,
    pub task_params: Option<String>,
    pub task_requires: String,
    pub task_provides: String,
    pub task_dependencies: String,
    pub task_status: TaskStatus,
    pub task_cost: f64,
    pub task_extra: String,
    pub task_is_save: bool,
    pub ret_stat: String,
    pub ret_data: Option<String>,
    pub task_retrymax: i32,
    pub task_retrycount: i32,
    pub task_timeout: i32,
    pub c_time: NaiveDateTime,
    pub s_time: NaiveDateTime,
    pub u_time: NaiveDateTime,
    pub task_dependents: String,
    pub task_waiting_on: i32,
    /// While started: until when its worker is trusted to be alive.
    pub task_lease_until: Option<NaiveDateTime>,
}

/// Splits the seed's comma-separated list columns.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// One uploaded plugin version (its bytes are in `workflow_plugin_chunk`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = workflow_plugin)]
pub struct PluginRow {
    pub plugin_sha256: String,
    pub job_type: String,
    pub plugin_version: String,
    pub plugin_size: i64,
    pub description: String,
    pub job_extra_schema: Option<String>,
    pub uploader: String,
    pub is_active: bool,
    pub c_time: NaiveDateTime,
    pub u_time: NaiveDateTime,
}

/// One execution attempt of a task: who ran it, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = workflow_task_attempt)]
pub struct AttemptRow {
    pub attempt_id: i64,
    pub task_id: i64,
    pub job_id: i64,
    /// The job's execution (`exe_id`: retry_job starts another).
    pub exe_id: i32,
    /// The task's retry count when it started (0 = first try).
    pub attempt_no: i32,
    /// The server process that ran it.
    pub instance: String,
    pub s_time: NaiveDateTime,
    pub e_time: Option<NaiveDateTime>,
    /// None while it runs.
    pub outcome: Option<AttemptOutcome>,
    pub ret_stat: String,
}
