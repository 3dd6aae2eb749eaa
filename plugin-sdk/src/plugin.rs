//! The trait a job type implements: the Rust face of the WIT world `plugin`.

use crate::{AddTaskError, Check, Dag, Job, JobEvent, Metadata};

/// A job type. Only [`Plugin::metadata`] and [`Plugin::workflow`] are required.
///
/// Every method is an associated function: a fresh sandbox runs each call, so a
/// plugin keeps no state between calls.
pub trait Plugin {
    /// Name (the `job_type`), version, description and job_extra schema.
    fn metadata() -> Metadata;

    /// Validates the job before it is created and chooses its timeout, locks and
    /// tags (the seed's `params_check`). An `Err` refuses create_job with the
    /// message. The default accepts everything.
    fn params_check(job: &Job) -> Result<Check, String> {
        let _ = job;
        Ok(Check::default())
    }

    /// Describes the job's DAG by adding tasks to `dag` (the seed's `workflow`).
    fn workflow(job: &Job, dag: &mut Dag) -> Result<(), Error>;

    /// Told when the job starts, finishes or fails (the seed's `job_notifier`).
    /// What it does can never change the job. The default does nothing.
    fn job_notifier(event: &JobEvent) {
        let _ = event;
    }
}

/// Why a workflow could not be described; the message reaches the job's creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<AddTaskError> for Error {
    fn from(err: AddTaskError) -> Self {
        Self(err.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}
