//! `{{name}}`: a XingQiao job type. `xingqiao plugin build` makes the wasm
//! component; `cargo test` runs the tests below natively.

use serde::Deserialize;
use schemars::JsonSchema;
use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, export_plugin};

/// job_extra of a `{{name}}` job. The server checks every create_job against
/// the JSON Schema generated from this struct before the plugin runs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Extra {
    /// Sent to the first task, which answers with it.
    pub str_info: String,
    /// Tags the job with `team=<team>` when given.
    #[serde(default)]
    pub team: Option<String>,
}

pub struct {{type_name}};

impl Plugin for {{type_name}} {
    fn metadata() -> Metadata {
        Metadata::new("{{name}}")
            .version(env!("CARGO_PKG_VERSION"))
            .description("hello(str_info) -> ping -> collect(all_taskdata), result saved")
            .job_extra::<Extra>()
    }

    fn params_check(job: &Job) -> Result<Check, String> {
        let extra: Extra = job.extra_as()?;
        let mut check = Check::default().job_timeout(600);
        if let Some(team) = &extra.team {
            check = check.job_tag("team", team);
        }
        Ok(check)
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

export_plugin!({{type_name}});

#[cfg(test)]
mod tests {
    use xingqiao_plugin_sdk::{json, serde_json, testing};

    use super::*;

    #[test]
    fn three_tasks_and_the_last_is_saved() {
        let job = Job::with_extra(json!({"str_info": "hi", "team": "ops"}));
        let tasks = testing::run_workflow::<{{type_name}}>(&job).unwrap();
        assert_eq!(tasks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["task1", "task2", "task3"]);
        assert!(tasks[2].is_save);
        assert_eq!(testing::params_check::<{{type_name}}>(&job).unwrap().job_tags, ["team=ops"]);
    }

    #[test]
    fn the_schema_requires_str_info() {
        let schema = {{type_name}}::metadata().job_extra_schema.unwrap();
        assert_eq!(schema["required"], json!(["str_info"]));
    }

    #[test]
    fn the_example_job_extra_is_accepted() {
        let example: serde_json::Value = serde_json::from_str(include_str!("../example-job-extra.json")).unwrap();
        testing::run_workflow::<{{type_name}}>(&Job::with_extra(example)).unwrap();
    }
}
