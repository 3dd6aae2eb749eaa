//! `hello`: the seed's run-time parameter demo. task1 needs `str_info` (taken
//! from job_extra when it runs), task2 follows it, task3 collects both results
//! (`all_taskdata`) and saves them as the job's result.

use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, export_plugin, json};

pub struct Hello;

impl Plugin for Hello {
    fn metadata() -> Metadata {
        Metadata::new("hello")
            .version(env!("CARGO_PKG_VERSION"))
            .description("hello(str_info) -> ping -> collect(all_taskdata), result saved")
            // No "required": a missing str_info gets the seed's own answer from
            // params_check (ERR_JOB_PARAMS_CHECK), not the schema's.
            .job_extra_schema(json!({
                "type": "object",
                "properties": {"str_info": {"type": "string"}}
            }))
    }

    fn params_check(job: &Job) -> Result<Check, String> {
        if job.extra("str_info").is_none() {
            return Err("job_extra not have str_info".to_owned());
        }
        Ok(Check::default())
    }

    fn workflow(_job: &Job, dag: &mut Dag) -> Result<(), Error> {
        dag.add_task(Task::new("task1", "/demo_api/hello").requires(["str_info"]))?;
        dag.add_task(Task::new("task2", "/demo_api/ping").dependencies(["task1"]))?;
        dag.add_task(
            Task::new("task3", "/demo_api/collect")
                .requires(["all_taskdata"])
                .dependencies(["task1", "task2"])
                .is_save(true),
        )?;
        Ok(())
    }
}

export_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use xingqiao_plugin_sdk::testing;

    #[test]
    fn task3_collects_both_and_is_saved() {
        let job = Job::with_extra(json!({"str_info": "ceshi"}));
        let tasks = testing::run_workflow::<Hello>(&job).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].requires, ["str_info"]);
        assert_eq!(tasks[2].dependencies, ["task1", "task2"]);
        assert!(tasks[2].is_save);
    }

    #[test]
    fn str_info_is_required() {
        let err = testing::run_workflow::<Hello>(&Job::with_extra(json!({}))).unwrap_err();
        assert!(err.0.contains("str_info"), "{err}");
    }
}
