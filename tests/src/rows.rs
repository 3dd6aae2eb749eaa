//! Rows and pools for the suites that call `xingqiao::db` directly
//! (`database.rs`, `mysql_read_back.rs`) instead of speaking HTTP.

use std::sync::Arc;

use xingqiao::db::Database;
use xingqiao::db::models::{NewJob, NewTask};
use xingqiao::engine::now;
use xingqiao::state::{JobStatus, TaskStatus};

use crate::TestDb;

/// A started job of `tasks` tasks, named `name`, with an hour to run.
pub fn new_job(name: &str, tasks: i32) -> NewJob {
    let t = now();
    NewJob {
        tasks_unfinished: tasks,
        deadline: Some(t + chrono::Duration::hours(1)),
        ..NewJob::new("test", name, JobStatus::Started, t)
    }
}

/// A task calling the demo ping, waiting on `deps` (pending without any),
/// with `dependents` waiting on it.
pub fn new_task(label: &str, deps: &[&str], dependents: &[&str]) -> NewTask {
    let t = now();
    NewTask {
        job_id: 0,
        task_label: label.into(),
        task_reqid: label.into(),
        task_cmd: "/demo_api/ping".into(),
        task_params: None,
        task_requires: String::new(),
        task_provides: String::new(),
        task_dependencies: deps.join(","),
        task_status: if deps.is_empty() { TaskStatus::Pending } else { TaskStatus::Waiting },
        task_cost: 0.0,
        task_extra: "{}".into(),
        task_is_save: false,
        ret_stat: String::new(),
        ret_data: None,
        task_retrymax: 0,
        task_retrycount: 0,
        task_timeout: 0,
        c_time: t,
        s_time: t,
        u_time: t,
        task_dependents: dependents.join(","),
        task_waiting_on: i32::try_from(deps.len()).unwrap_or(i32::MAX),
        task_lease_until: None,
    }
}

/// A lease that will not expire during the test.
pub fn later() -> chrono::NaiveDateTime {
    now() + chrono::Duration::hours(1)
}

/// A pool on `test_db`, migrated.
pub async fn database(test_db: &TestDb) -> Arc<Database> {
    let db = Database::connect(&test_db.url, 8).unwrap();
    db.migrate(&test_db.url).await.unwrap();
    Arc::new(db)
}
