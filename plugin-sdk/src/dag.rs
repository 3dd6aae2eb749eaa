//! Tasks and the DAG a workflow builds.
//!
//! On wasm every [`Dag::add_task`] goes straight to the server, which checks it.
//! Natively the same checks run here and the tasks are recorded, so a plugin's
//! DAG can be unit-tested with `cargo test` (see [`crate::testing`]).

use serde_json::Value;

/// One task of the seed's `add_task(label, cmd, ...)`, built step by step:
///
/// ```
/// # use xingqiao_plugin_sdk::Task;
/// let task = Task::new("task3", "/demo_api/collect")
///     .requires(["all_taskdata"])
///     .dependencies(["task1", "task2"])
///     .is_save(true);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub label: String,
    /// `/path` (sent to the server's handler base URL) or a full `http(s)://` URL.
    pub cmd: String,
    pub dependencies: Vec<String>,
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    /// Preset parameters; must be a JSON object.
    pub params: Option<Value>,
    /// Extra values for parameter resolution; must be a JSON object.
    pub extra: Option<Value>,
    pub retry_max: u32,
    pub timeout_secs: Option<u32>,
    pub is_save: bool,
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl Task {
    pub fn new(label: impl Into<String>, cmd: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            cmd: cmd.into(),
            dependencies: Vec::new(),
            requires: Vec::new(),
            provides: Vec::new(),
            params: None,
            extra: None,
            retry_max: 0,
            timeout_secs: None,
            is_save: false,
        }
    }

    /// Labels of tasks, added before this one, that must finish first.
    pub fn dependencies<I: IntoIterator<Item = S>, S: Into<String>>(mut self, labels: I) -> Self {
        self.dependencies = strings(labels);
        self
    }

    /// Parameter names resolved when the task runs (from job_extra, this task's
    /// extra, or the dependencies' results); `all_taskdata` collects the
    /// dependencies' results into a list.
    pub fn requires<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.requires = strings(names);
        self
    }

    /// Keys this task's result must contain.
    pub fn provides<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.provides = strings(keys);
        self
    }

    /// Preset parameters (a JSON object), sent as they are.
    pub fn params(mut self, params: Value) -> Self {
        self.params = Some(params);
        self
    }

    /// Extra values (a JSON object) that `requires` may draw from.
    pub fn extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// Extra attempts after a failed one.
    pub fn retry_max(mut self, retries: u32) -> Self {
        self.retry_max = retries;
        self
    }

    /// Bound of one attempt, in seconds.
    pub fn timeout_secs(mut self, seconds: u32) -> Self {
        self.timeout_secs = Some(seconds);
        self
    }

    /// The task's result becomes the job's `ret_data`.
    pub fn is_save(mut self, save: bool) -> Self {
        self.is_save = save;
        self
    }
}

/// Why the server refused a task. The workflow fails with the first refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddTaskError {
    DuplicateLabel(String),
    UnknownDependency(String),
    BadLabel(String),
    BadCmd(String),
    BadJson(String),
    TooLong(String),
}

impl std::fmt::Display for AddTaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateLabel(label) => write!(f, "duplicate task label {label:?}"),
            Self::UnknownDependency(dep) => {
                write!(f, "dependency {dep:?} names no task added before it")
            }
            Self::BadLabel(label) => {
                write!(f, "bad task label {label:?}: use 1 to {} of A-Z a-z 0-9 _ -", crate::limits::LABEL_MAX_BYTES)
            }
            Self::BadCmd(why) => write!(f, "bad task cmd: {why}"),
            Self::BadJson(why) => write!(f, "bad task JSON: {why}"),
            Self::TooLong(what) => {
                write!(f, "{what} is longer than {} bytes", crate::limits::NAMES_MAX_BYTES)
            }
        }
    }
}

impl std::error::Error for AddTaskError {}

/// The DAG being described by [`crate::Plugin::workflow`].
#[derive(Debug, Default)]
pub struct Dag {
    #[cfg(not(target_arch = "wasm32"))]
    tasks: Vec<Task>,
}

impl Dag {
    /// Adds a task; its dependencies must have been added before it.
    pub fn add_task(&mut self, task: Task) -> Result<(), AddTaskError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wasm::add_task(&task);
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.check_like_the_server(&task)?;
            self.tasks.push(task);
            Ok(())
        }
    }

    /// The tasks added so far, in order (native builds only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The server's checks (`host/src/runtime/dag.rs`) with the shared
    /// [`crate::limits`], so native tests fail where the server would.
    #[cfg(not(target_arch = "wasm32"))]
    fn check_like_the_server(&self, task: &Task) -> Result<(), AddTaskError> {
        use crate::limits::{CMD_MAX_BYTES, NAMES_MAX_BYTES, is_valid_name};
        if !is_valid_name(&task.label) {
            return Err(AddTaskError::BadLabel(task.label.clone()));
        }
        if self.tasks.iter().any(|t| t.label == task.label) {
            return Err(AddTaskError::DuplicateLabel(task.label.clone()));
        }
        if let Some(dep) = task.dependencies.iter().find(|dep| !self.tasks.iter().any(|t| &t.label == *dep)) {
            return Err(AddTaskError::UnknownDependency(dep.clone()));
        }
        if task.cmd.trim().is_empty() || task.cmd.len() > CMD_MAX_BYTES {
            return Err(AddTaskError::BadCmd(format!("{:?} must be 1 to {CMD_MAX_BYTES} characters", task.cmd)));
        }
        if let Some(name) = task.requires.iter().chain(&task.provides).find(|n| n.is_empty()) {
            return Err(AddTaskError::BadLabel(format!("empty parameter name {name:?}")));
        }
        for (what, names) in [("requires", &task.requires), ("provides", &task.provides)] {
            if names.join(",").len() > NAMES_MAX_BYTES {
                return Err(AddTaskError::TooLong(what.to_owned()));
            }
        }
        for (what, value) in [("params", &task.params), ("extra", &task.extra)] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(AddTaskError::BadJson(format!("{what} must be a JSON object")));
            }
        }
        Ok(())
    }
}
