//! `hello_params`: like `hello`, but task1's `str_info` is preset when the task
//! is created (`params`) instead of resolved when it runs.

use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, export_plugin, json};

pub struct HelloParams;

impl Plugin for HelloParams {
    fn metadata() -> Metadata {
        Metadata::new("hello_params")
            .version(env!("CARGO_PKG_VERSION"))
            .description("hello(params str_info='hello world') -> ping -> collect, result saved")
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
        dag.add_task(Task::new("task1", "/demo_api/hello").params(json!({"str_info": "hello world"})))?;
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

export_plugin!(HelloParams);

#[cfg(test)]
mod tests {
    use super::*;
    use xingqiao_plugin_sdk::testing;

    #[test]
    fn task1_params_are_preset() {
        let job = Job::with_extra(json!({"str_info": "ignored by task1"}));
        let tasks = testing::run_workflow::<HelloParams>(&job).unwrap();
        assert_eq!(tasks[0].params, Some(json!({"str_info": "hello world"})));
        assert!(tasks[0].requires.is_empty());
        assert!(tasks[2].is_save);
    }
}
