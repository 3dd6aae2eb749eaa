//! Rows as the seed's JSON: times as `YYYY-MM-DD HH:MM:SS` (UTC), `job_extra`
//! and `task_extra` as the JSON text they were stored as (the seed shows
//! `"job_extra": "{}"`), results (`ret_data`, `task_params`) as JSON values.

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use crate::db::models::{AttemptRow, JobRow, TaskRow};

pub fn time(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn json_or_null(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

pub fn job(row: &JobRow) -> Value {
    json!({
        "job_id": row.job_id,
        "job_client": row.job_client,
        "job_namespace": row.job_namespace,
        "job_reqid": row.job_reqid,
        "job_name": row.job_name,
        "job_status": row.job_status,
        "job_type": row.job_type,
        "job_tags": row.job_tags,
        "ret_stat": row.ret_stat,
        "ret_data": json_or_null(row.ret_data.as_deref()),
        "job_cost": row.job_cost,
        "job_extra": row.job_extra,
        "job_timeout": row.job_timeout,
        "job_lock": row.job_lock,
        "exe_id": row.exe_id,
        "operator": row.operator,
        "is_valid": row.is_valid,
        "plugin_version": row.plugin_version,
        "plugin_sha256": row.plugin_sha256,
        "c_time": time(&row.c_time),
        "s_time": time(&row.s_time),
        "e_time": time(&row.e_time),
        "u_time": time(&row.u_time),
    })
}

pub fn task(row: &TaskRow) -> Value {
    json!({
        "task_id": row.task_id,
        "job_id": row.job_id,
        "task_label": row.task_label,
        "task_reqid": row.task_reqid,
        "task_cmd": row.task_cmd,
        "task_params": json_or_null(row.task_params.as_deref()),
        "task_requires": row.task_requires,
        "task_provides": row.task_provides,
        "task_dependencies": row.task_dependencies,
        "task_status": row.task_status,
        "task_cost": row.task_cost,
        "task_extra": row.task_extra,
        "task_is_save": row.task_is_save,
        "ret_stat": row.ret_stat,
        "ret_data": json_or_null(row.ret_data.as_deref()),
        "task_retrymax": row.task_retrymax,
        "task_retrycount": row.task_retrycount,
        "task_timeout": row.task_timeout,
        "c_time": time(&row.c_time),
        "s_time": time(&row.s_time),
        "u_time": time(&row.u_time),
    })
}

/// A task and its execution attempts (`attempts`, oldest first): an attempt
/// number seen twice is a task that ran twice (after a crash or a SIGTERM).
pub fn task_with_attempts<'a>(row: &TaskRow, attempts: impl Iterator<Item = &'a AttemptRow>) -> Value {
    let mut value = task(row);
    if let Value::Object(map) = &mut value {
        map.insert("attempts".into(), Value::Array(attempts.map(attempt).collect()));
    }
    value
}

pub fn attempt(row: &AttemptRow) -> Value {
    json!({
        "attempt_id": row.attempt_id,
        "attempt_no": row.attempt_no,
        "exe_id": row.exe_id,
        "instance": row.instance,
        "s_time": time(&row.s_time),
        "e_time": row.e_time.as_ref().map(time),
        "outcome": row.outcome,
        "ret_stat": row.ret_stat,
    })
}

/// `{"stat": "OK", "data": data}`.
pub fn ok_data(data: Value) -> Value {
    let mut body = Map::new();
    body.insert("data".into(), data);
    body.insert("stat".into(), Value::String("OK".into()));
    Value::Object(body)
}
