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

use crate::{Dag, Error, Job, Plugin, Task};

/// Calls `params_check` then `workflow`, as create_job does, and returns the tasks.
pub fn run_workflow<P: Plugin>(job: &Job) -> Result<Vec<Task>, Error> {
    P::params_check(job).map_err(Error)?;
    let mut dag = Dag::default();
    P::workflow(job, &mut dag)?;
    Ok(dag.tasks().to_vec())
}
