//! `ping`: the seed's dependency demo — task1, then task2, both `/demo_api/ping`.

use xingqiao_plugin_sdk::{Dag, Error, Job, Metadata, Plugin, Task, export_plugin};

pub struct Ping;

impl Plugin for Ping {
    fn metadata() -> Metadata {
        Metadata::new("ping")
            .version(env!("CARGO_PKG_VERSION"))
            .description("task1 then task2 (depends on task1), both /demo_api/ping")
    }

    fn workflow(_job: &Job, dag: &mut Dag) -> Result<(), Error> {
        dag.add_task(Task::new("task1", "/demo_api/ping"))?;
        dag.add_task(Task::new("task2", "/demo_api/ping").dependencies(["task1"]))?;
        Ok(())
    }
}

export_plugin!(Ping);

#[cfg(test)]
mod tests {
    use super::*;
    use xingqiao_plugin_sdk::{json, testing};

    #[test]
    fn task2_runs_after_task1() {
        let tasks = testing::run_workflow::<Ping>(&Job::with_extra(json!({}))).unwrap();
        let edges: Vec<_> = tasks.iter().map(|t| (t.label.as_str(), t.dependencies.clone())).collect();
        assert_eq!(edges, [("task1", vec![]), ("task2", vec!["task1".to_owned()])]);
    }
}
