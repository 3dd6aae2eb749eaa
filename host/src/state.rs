//! The state machine of jobs and tasks, in one place: the typed statuses the
//! database stores and every transition between them.
//!
//! The two tables below are the documentation, and they are the code: each
//! row is a `Transition` constant of [`task`] or [`job`], and the queries in
//! `db/` build their conditional UPDATEs from those constants — the WHERE
//! from `from`, the SET from `to`. A unit test keeps the tables and the
//! constants equal.
//!
//! Task transitions:
//!
//! | name | from | to | when |
//! |------|------|----|------|
//! | release | waiting | pending | its last dependency finished (a task without dependencies is created pending, unless its job waits for locks) |
//! | start | pending | started | a worker took its message (or create_job has a free worker for a new job's first task: that task is inserted started) |
//! | continue | waiting | started | its last dependency finished, and the worker that finished it runs it next: started in that same transaction, with no queue hop (told as `pending`, then `started`) |
//! | finish | started | finished | its handler answered a result with every `provides` key |
//! | fail | started | failed | its handler failed and no retry is left |
//! | retry | started | pending | its handler failed and `retry_max` is not reached (dispatched after a backoff) |
//! | hand_back | started | pending | its worker stopped (SIGTERM after the grace period, or a lease that expired: kill -9) |
//! | abort | pending, started | failed | its job ended from outside (timeout, cancel, delete) |
//! | reset | waiting, pending, started, failed | waiting | retry_job resumes its failed job (finished tasks keep their result) |
//!
//! Job transitions:
//!
//! | name | from | to | when |
//! |------|------|----|------|
//! | start | waiting | started | it took all its locks (a job without locks is created started) |
//! | finish | started | finished | its last task finished |
//! | fail | started | failed | a task failed (the job's `ret_stat` is that task's) |
//! | end | waiting, started | failed | its deadline passed (ERR_JOB_EXE_TIMEOUT), or cancel_job / delete_job (ERR_JOB_CANCELLED) |
//! | reset | failed | waiting | retry_job (`exe_id + 1`; it takes its locks again) |
//!
//! Each transition is one conditional UPDATE (or one small transaction that
//! begins with it) whose WHERE names the states it leaves; zero rows updated
//! means another worker or instance already moved it, and the caller stops.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

/// One arrow of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S: 'static> {
    pub name: &'static str,
    /// The states it may leave: the WHERE of its UPDATE.
    pub from: &'static [S],
    pub to: S,
}

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow, serde::Serialize, serde::Deserialize)]
        #[diesel(sql_type = Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|s| s.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB: Backend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                Self::parse(&text)
                    .ok_or_else(|| format!("unknown {} {text:?} in the database", stringify!($name)).into())
            }
        }
    };
}

status_enum! {
    /// A task's state (`workflow_task.task_status`).
    TaskStatus {
        Waiting => "waiting",
        Pending => "pending",
        Started => "started",
        Finished => "finished",
        Failed => "failed",
    }
}

status_enum! {
    /// A job's state (`workflow_job.job_status`). `Waiting`: for its locks.
    JobStatus {
        Waiting => "waiting",
        Started => "started",
        Finished => "finished",
        Failed => "failed",
    }
}

status_enum! {
    /// How one execution attempt of a task ended (`workflow_task_attempt.outcome`;
    /// none while it runs).
    AttemptOutcome {
        Finished => "finished",
        Failed => "failed",
        Retried => "retried",
        HandedBack => "handed_back",
        LeaseExpired => "lease_expired",
        Aborted => "aborted",
    }
}

/// The task transitions (first table above).
pub mod task {
    use super::TaskStatus::{Failed, Finished, Pending, Started, Waiting};
    use super::{TaskStatus, Transition};

    pub const RELEASE: Transition<TaskStatus> = Transition { name: "release", from: &[Waiting], to: Pending };
    pub const START: Transition<TaskStatus> = Transition { name: "start", from: &[Pending], to: Started };
    pub const CONTINUE: Transition<TaskStatus> = Transition { name: "continue", from: &[Waiting], to: Started };
    pub const FINISH: Transition<TaskStatus> = Transition { name: "finish", from: &[Started], to: Finished };
    pub const FAIL: Transition<TaskStatus> = Transition { name: "fail", from: &[Started], to: Failed };
    pub const RETRY: Transition<TaskStatus> = Transition { name: "retry", from: &[Started], to: Pending };
    pub const HAND_BACK: Transition<TaskStatus> = Transition { name: "hand_back", from: &[Started], to: Pending };
    pub const ABORT: Transition<TaskStatus> = Transition { name: "abort", from: &[Pending, Started], to: Failed };
    pub const RESET: Transition<TaskStatus> =
        Transition { name: "reset", from: &[Waiting, Pending, Started, Failed], to: Waiting };

    pub const ALL: &[Transition<TaskStatus>] =
        &[RELEASE, START, CONTINUE, FINISH, FAIL, RETRY, HAND_BACK, ABORT, RESET];
}

/// The job transitions (second table above).
pub mod job {
    use super::JobStatus::{Failed, Finished, Started, Waiting};
    use super::{JobStatus, Transition};

    pub const START: Transition<JobStatus> = Transition { name: "start", from: &[Waiting], to: Started };
    pub const FINISH: Transition<JobStatus> = Transition { name: "finish", from: &[Started], to: Finished };
    pub const FAIL: Transition<JobStatus> = Transition { name: "fail", from: &[Started], to: Failed };
    pub const END: Transition<JobStatus> = Transition { name: "end", from: &[Waiting, Started], to: Failed };
    pub const RESET: Transition<JobStatus> = Transition { name: "reset", from: &[Failed], to: Waiting };

    pub const ALL: &[Transition<JobStatus>] = &[START, FINISH, FAIL, END, RESET];
}

/// Stats the engine itself gives jobs and tasks.
pub mod stat {
    pub const OK: &str = "OK";
    pub const JOB_TIMEOUT: &str = "ERR_JOB_EXE_TIMEOUT";
    pub const JOB_CANCELLED: &str = "ERR_JOB_CANCELLED";
    pub const JOB_NOT_RUNNING: &str = "ERR_JOB_NOT_RUNNING";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the module doc's table that follows `heading`.
    fn documented(heading: &str) -> Vec<(String, String, String)> {
        let source = include_str!("state.rs");
        source
            .lines()
            .skip_while(|line| !line.contains(heading))
            .skip(4)
            .take_while(|line| line.starts_with("//! |"))
            .map(|line| {
                let cells: Vec<&str> = line.trim_start_matches("//!").split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[2].to_owned(), cells[3].to_owned())
            })
            .collect()
    }

    fn coded<S: Copy + std::fmt::Display>(all: &[Transition<S>]) -> Vec<(String, String, String)> {
        all.iter()
            .map(|t| {
                let from: Vec<String> = t.from.iter().map(ToString::to_string).collect();
                (t.name.to_owned(), from.join(", "), t.to.to_string())
            })
            .collect()
    }

    #[test]
    fn the_documented_tables_are_the_transitions_in_the_code() {
        assert_eq!(documented("Task transitions:"), coded(task::ALL));
        assert_eq!(documented("Job transitions:"), coded(job::ALL));
    }

    #[test]
    fn every_status_reads_back_from_its_text() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(*status));
        }
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(TaskStatus::parse("done"), None);
        assert_eq!(serde_json::to_value(JobStatus::Finished).ok(), Some(serde_json::json!("finished")));
    }

    #[test]
    fn every_status_but_the_ends_can_be_left() {
        for status in TaskStatus::ALL {
            let leaves = task::ALL.iter().any(|t| t.from.contains(status));
            assert_eq!(leaves, *status != TaskStatus::Finished, "{status}");
        }
        for status in JobStatus::ALL {
            let leaves = job::ALL.iter().any(|t| t.from.contains(status));
            assert_eq!(leaves, *status != JobStatus::Finished, "{status}");
        }
    }
}
