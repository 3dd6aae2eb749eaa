//! The state machine, in one place.
//!
//! ```text
//! task:  waiting ──(last dependency finished)──▶ pending ──(a worker took it)──▶ started
//!        (a task without dependencies is created pending)        started ──▶ finished | failed
//! job:   started ──(every task finished)──▶ finished
//!        started ──(a task failed)──────────▶ failed   (ret_stat = that task's stat)
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
    pub const ALL: [Self; 5] = [
        Self::Waiting,
        Self::Pending,
        Self::Started,
        Self::Finished,
        Self::Failed,
    ];

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

/// A job's state (`job_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Started,
    Finished,
    Failed,
}

impl JobStatus {
    pub const ALL: [Self; 3] = [Self::Started, Self::Finished, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
