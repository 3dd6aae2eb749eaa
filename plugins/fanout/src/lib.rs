//! `fanout`: `n` parallel ping tasks (job_extra `n`, default 3), then one
//! `collect` task that gathers their results (`all_taskdata`) and saves them.

use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, export_plugin, json};

pub struct Fanout;

/// One task slot is the collect task: n + 1 stays within the server's default cap.
const MAX_BRANCHES: u64 = 9_999;

fn branches(job: &Job) -> Result<u64, String> {
    match job.extra("n") {
        None => Ok(3),
        Some(n) => n
            .as_u64()
            .filter(|n| (1..=MAX_BRANCHES).contains(n))
            .ok_or_else(|| format!("job_extra.n must be an integer from 1 to {MAX_BRANCHES}, got {n}")),
    }
}

impl Plugin for Fanout {
    fn metadata() -> Metadata {
        Metadata::new("fanout")
            .version(env!("CARGO_PKG_VERSION"))
            .description("n parallel /demo_api/ping tasks, then collect(all_taskdata), saved")
            .job_extra_schema(json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "maximum": MAX_BRANCHES}}
            }))
    }

    fn params_check(job: &Job) -> Result<Check, String> {
        branches(job).map(|_| Check::default())
    }

    fn workflow(job: &Job, dag: &mut Dag) -> Result<(), Error> {
        let labels: Vec<String> = (1..=branches(job)?).map(|i| format!("branch{i}")).collect();
        for label in &labels {
            dag.add_task(Task::new(label.as_str(), "/demo_api/ping"))?;
        }
        dag.add_task(
            Task::new("collect", "/demo_api/collect").requires(["all_taskdata"]).dependencies(labels).is_save(true),
        )?;
        Ok(())
    }
}

export_plugin!(Fanout);

#[cfg(test)]
mod tests {
    use super::*;
    use xingqiao_plugin_sdk::testing;

    #[test]
    fn collect_depends_on_every_branch() {
        let tasks = testing::run_workflow::<Fanout>(&Job::with_extra(json!({"n": 5}))).unwrap();
        assert_eq!(tasks.len(), 6);
        let collect = &tasks[5];
        assert_eq!(collect.dependencies.len(), 5);
        assert!(collect.is_save);
        assert!(tasks[..5].iter().all(|t| t.dependencies.is_empty()));
    }
}
