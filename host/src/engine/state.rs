//! The state machine, in one place.
//!
//! ```text
//! task:  waiting ──(last dependency finished)──▶ pending ──(a worker took it)──▶ started
//!        (a task without dependencies is created pending)        started ──▶ finished | failed
//! job:   waiting ──(took all its locks)──▶ started      (a job without locks starts at once)
//!        started ──(every task finished)──▶ finished
//!        started ──(a task failed)──────────▶ failed   (ret_stat = that task's stat)
//!        started ──(deadline passed)────────▶ failed   (ERR_JOB_EXE_TIMEOUT)
//!        waiting | started ──(cancel_job, delete_job)──▶ failed (ERR_JOB_CANCELLED)
//!        failed ──(retry_job)──▶ waiting   (finished tasks kept; the others back to waiting)
//! task retry: started ──(failed, retry-max not reached)──▶ pending, after a backoff
//! ```
//!
//! Each arrow is one conditional UPDATE whose WHERE names the state it leaves
//! (`db::tasks`); zero rows updated means another worker or instance already
//! moved it, and the caller stops.

/// A task's state (`task_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Waiting,
    Pending,
    Started,
    Finished,
    Failed,
}

impl TaskStatus {
    pub const ALL: [Self; 5] = [Self::Waiting, Self::Pending, Self::Started, Self::Finished, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Stats the engine itself gives jobs and tasks.
pub mod stat {
    pub const JOB_TIMEOUT: &str = "ERR_JOB_EXE_TIMEOUT";
    pub const JOB_CANCELLED: &str = "ERR_JOB_CANCELLED";
    pub const JOB_NOT_RUNNING: &str = "ERR_JOB_NOT_RUNNING";
}

/// A job's state (`job_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for its locks.
    Waiting,
    Started,
    Finished,
    Failed,
}

impl JobStatus {
    pub const ALL: [Self; 4] = [Self::Waiting, Self::Started, Self::Finished, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Started => "started",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
