//! `ping_notifier`: `ping` plus a `job_notifier` that logs every state change.

use xingqiao_plugin_sdk::{Dag, Error, Job, JobEvent, LogLevel, Metadata, Plugin, Task, export_plugin, log};

pub struct PingNotifier;

impl Plugin for PingNotifier {
    fn metadata() -> Metadata {
        Metadata::new("ping_notifier")
            .version(env!("CARGO_PKG_VERSION"))
            .description("ping, with a job_notifier that logs started/finished/failed")
    }

    fn workflow(_job: &Job, dag: &mut Dag) -> Result<(), Error> {
        dag.add_task(Task::new("task1", "/demo_api/ping"))?;
        dag.add_task(Task::new("task2", "/demo_api/ping").dependencies(["task1"]))?;
        Ok(())
    }

    fn job_notifier(event: &JobEvent) {
        log(LogLevel::Info, &notice(event));
    }
}

fn notice(event: &JobEvent) -> String {
    format!("job_id={} job_name={} job_status={}", event.job_id, event.job_name, event.job_status)
}

export_plugin!(PingNotifier);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_names_the_job_and_its_status() {
        let event = JobEvent { job_id: 7, job_name: "n".into(), job_status: "finished".into(), ..JobEvent::default() };
        assert_eq!(notice(&event), "job_id=7 job_name=n job_status=finished");
    }
}
