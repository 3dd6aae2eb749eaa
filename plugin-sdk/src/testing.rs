//! Run a plugin natively in unit tests, as the server would call it.
//!
//! ```
//! use xingqiao_plugin_sdk::{Dag, Error, Job, Metadata, Plugin, Task, json, testing};
//!
//! struct Two;
//! impl Plugin for Two {
//!     fn metadata() -> Metadata { Metadata::new("two") }
//!     fn workflow(_: &Job, dag: &mut Dag) -> Result<(), Error> {
//!         dag.add_task(Task::new("a", "/demo_api/ping"))?;
//!         dag.add_task(Task::new("b", "/demo_api/ping").dependencies(["a"]))?;
//!         Ok(())
//!     }
//! }
//!
//! let tasks = testing::run_workflow::<Two>(&Job::with_extra(json!({}))).unwrap();
//! assert_eq!(tasks[1].dependencies, ["a"]);
//! ```

use crate::limits::{LOCK_MAX_BYTES, LOCKS_MAX_BYTES, MAX_TASKS, TAG_MAX_BYTES, TAGS_MAX_BYTES};
use crate::{Check, Dag, Error, Job, Plugin, Task};

/// Calls `params_check` then `workflow`, as create_job does, and returns the
/// tasks. Refuses what the server refuses: a bad [`Check`] (see
/// [`check_result`]), a refused task, an empty DAG, more than `MAX_TASKS` tasks.
pub fn run_workflow<P: Plugin>(job: &Job) -> Result<Vec<Task>, Error> {
    params_check::<P>(job)?;
    let mut dag = Dag::default();
    P::workflow(job, &mut dag)?;
    if dag.tasks().is_empty() {
        return Err(Error::from("workflow() added no task"));
    }
    if dag.tasks().len() > MAX_TASKS {
        return Err(Error(format!("more than {MAX_TASKS} tasks: the server stops such a plugin")));
    }
    Ok(dag.tasks().to_vec())
}

/// `params_check` and the server's checks of what it returned.
pub fn params_check<P: Plugin>(job: &Job) -> Result<Check, Error> {
    let check = P::params_check(job).map_err(Error)?;
    check_result(&check).map_err(Error)?;
    Ok(check)
}

/// The server's checks of a [`Check`] (`validate_check` in the host), with the
/// shared [`crate::limits`]: locks are 1 to `LOCK_MAX_BYTES` without commas,
/// tags `key=value` without commas, the joined lists within the columns.
pub fn check_result(check: &Check) -> Result<(), String> {
    if check.job_timeout == Some(0) {
        return Err("job-timeout must be at least 1 second".into());
    }
    for lock in &check.job_locks {
        let lock = lock.trim();
        if lock.is_empty() || lock.contains(',') || lock.len() > LOCK_MAX_BYTES {
            return Err(format!("lock {lock:?} must be 1 to {LOCK_MAX_BYTES} bytes without commas"));
        }
    }
    for tag in &check.job_tags {
        let well_formed = tag.split_once('=').is_some_and(|(key, _)| !key.trim().is_empty());
        if !well_formed || tag.contains(',') || tag.len() > TAG_MAX_BYTES {
            return Err(format!("tag {tag:?} must be key=value, without commas, at most {TAG_MAX_BYTES} bytes"));
        }
    }
    let locks: Vec<&str> = check.job_locks.iter().map(|lock| lock.trim()).collect();
    if locks.join(",").len() > LOCKS_MAX_BYTES {
        return Err(format!("job-locks joined by commas exceed {LOCKS_MAX_BYTES} bytes"));
    }
    if check.job_tags.join(",").len() > TAGS_MAX_BYTES {
        return Err(format!("job-tags joined by commas exceed {TAGS_MAX_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_refused_where_the_server_refuses_it() {
        assert!(check_result(&Check::default().job_locks(["a", "b"])).is_ok());
        let comma = check_result(&Check::default().job_locks(["a,b"])).unwrap_err();
        assert!(comma.contains("without commas"), "{comma}");
        let long = "x".repeat(LOCK_MAX_BYTES + 1);
        assert!(check_result(&Check::default().job_locks([long])).is_err());
        assert!(check_result(&Check::default().job_tag("k", "v")).is_ok());
        assert!(check_result(&Check { job_tags: vec!["novalue".into()], ..Check::default() }).is_err());
        assert!(check_result(&Check::default().job_timeout(0)).is_err());
    }
}
