//! What the host offers a plugin (`interface host`): `add-task` and `log`.
//! Every call is bounded: tasks and bytes per job, log lines per call.

use super::bindings::xingqiao::workflow::{host, types};
use super::bindings::{AddTaskError, LogLevel, TaskOptions};
use super::dag::DagOverflow;
use super::store::CallState;

/// The guest passed a resource limit; the call is stopped (trap) and the
/// caller reads which limit from the store.
#[derive(Debug, thiserror::Error)]
#[error("plugin stopped: {0:?} limit reached")]
struct LimitReached(DagOverflow);

/// `add-task` outside `workflow()` has no DAG to add to.
#[derive(Debug, thiserror::Error)]
#[error("add-task is only allowed during workflow()")]
struct NotInWorkflow;

impl types::Host for CallState {}

impl host::Host for CallState {
    fn add_task(
        &mut self,
        label: String,
        cmd: String,
        options: TaskOptions,
    ) -> wasmtime::Result<Result<(), AddTaskError>> {
        let Some(dag) = self.dag.as_mut() else {
            return Err(wasmtime::Error::new(NotInWorkflow));
        };
        dag.add(label, cmd, options).map_err(|overflow| wasmtime::Error::new(LimitReached(overflow)))
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let Some(line) = self.log.admit(&message) else {
            return Ok(());
        };
        let (plugin, job) = (self.plugin.as_str(), self.job.as_str());
        match level {
            LogLevel::Trace => tracing::trace!(plugin, job, "{line}"),
            LogLevel::Debug => tracing::debug!(plugin, job, "{line}"),
            LogLevel::Info => tracing::info!(plugin, job, "{line}"),
            LogLevel::Warn => tracing::warn!(plugin, job, "{line}"),
            LogLevel::Error => tracing::error!(plugin, job, "{line}"),
        }
        Ok(())
    }
}
