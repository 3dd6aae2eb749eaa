//! `chain`: `n` ping tasks in a line (job_extra `n`, default 3) — for tests and
//! for measuring per-step overhead.

use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, export_plugin, json};

pub struct Chain;

const MAX_STEPS: u64 = 10_000;

fn steps(job: &Job) -> Result<u64, String> {
    match job.extra("n") {
        None => Ok(3),
        Some(n) => n
            .as_u64()
            .filter(|n| (1..=MAX_STEPS).contains(n))
            .ok_or_else(|| format!("job_extra.n must be an integer from 1 to {MAX_STEPS}, got {n}")),
    }
}

impl Plugin for Chain {
    fn metadata() -> Metadata {
        Metadata::new("chain")
            .version(env!("CARGO_PKG_VERSION"))
            .description("n /demo_api/ping tasks in a line: step1 -> step2 -> ... -> stepN")
            .job_extra_schema(json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS}}
            }))
    }

    fn params_check(job: &Job) -> Result<Check, String> {
        steps(job).map(|_| Check::default())
    }

    fn workflow(job: &Job, dag: &mut Dag) -> Result<(), Error> {
        for step in 1..=steps(job)? {
            let task = Task::new(format!("step{step}"), "/demo_api/ping");
            let task = if step == 1 { task } else { task.dependencies([format!("step{}", step - 1)]) };
            dag.add_task(task)?;
        }
        Ok(())
    }
}

export_plugin!(Chain);

#[cfg(test)]
mod tests {
    use super::*;
    use xingqiao_plugin_sdk::testing;

    #[test]
    fn each_step_depends_on_the_one_before() {
        let tasks = testing::run_workflow::<Chain>(&Job::with_extra(json!({"n": 4}))).unwrap();
        let deps: Vec<_> = tasks.iter().map(|t| t.dependencies.join(",")).collect();
        assert_eq!(deps, ["", "step1", "step2", "step3"]);
    }

    #[test]
    fn n_out_of_range_is_refused() {
        for n in [json!(0), json!(10_001), json!("3")] {
            assert!(testing::run_workflow::<Chain>(&Job::with_extra(json!({"n": n}))).is_err());
        }
    }
}
