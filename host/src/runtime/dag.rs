//! The DAG a `workflow()` call builds, checked task by task as `add-task`
//! arrives. Dependencies must name tasks added before, so the graph is acyclic
//! by construction and already in a valid execution order.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::bindings::{AddTaskError, TaskOptions};

/// One task as the engine will store it (the seed's `add_task` arguments).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSpec {
    pub label: String,
    pub cmd: String,
    pub dependencies: Vec<String>,
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub params: Option<Map<String, Value>>,
    pub extra: Option<Map<String, Value>>,
    pub retry_max: u32,
    /// Seconds per attempt; `None` leaves only the job's timeout.
    pub timeout: Option<u32>,
    pub is_save: bool,
}

// The bounds shared with the SDKs (plugin-sdk/limits.json). The cmd is the
// seed's `task_cmd varchar(128)`, requires/provides its `varchar(1024)`.
pub use xingqiao_plugin_sdk::limits::{
    CMD_MAX_BYTES as MAX_CMD_LEN, LABEL_MAX_BYTES as MAX_LABEL_LEN, NAMES_MAX_BYTES as MAX_NAMES_LEN,
};

pub(crate) fn is_valid_name(name: &str) -> bool {
    xingqiao_plugin_sdk::limits::is_valid_name(name)
}

/// What a resource limit stopped; the guest is trapped right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DagOverflow {
    Tasks,
    Bytes,
}

/// Collects `add-task` calls for one `workflow()` call.
#[derive(Debug)]
pub(crate) struct DagRecorder {
    tasks: Vec<TaskSpec>,
    labels: HashSet<String>,
    first_refusal: Option<AddTaskError>,
    bytes: usize,
    max_tasks: usize,
    max_bytes: usize,
    pub(crate) overflow: Option<DagOverflow>,
}

impl DagRecorder {
    pub(crate) fn new(max_tasks: usize, max_bytes: usize) -> Self {
        Self {
            tasks: Vec::new(),
            labels: HashSet::new(),
            first_refusal: None,
            bytes: 0,
            max_tasks,
            max_bytes,
            overflow: None,
        }
    }

    /// `Err(overflow)` means a limit was hit and the guest must be stopped;
    /// `Ok(Err(_))` is a refusal the guest sees.
    pub(crate) fn add(
        &mut self,
        label: String,
        cmd: String,
        options: TaskOptions,
    ) -> Result<Result<(), AddTaskError>, DagOverflow> {
        if self.tasks.len() >= self.max_tasks {
            return Err(self.overflowed(DagOverflow::Tasks));
        }
        self.bytes += label.len()
            + cmd.len()
            + options.params.as_ref().map_or(0, String::len)
            + options.extra.as_ref().map_or(0, String::len)
            + [&options.dependencies, &options.requires, &options.provides]
                .iter()
                .flat_map(|names| names.iter())
                .map(String::len)
                .sum::<usize>();
        if self.bytes > self.max_bytes {
            return Err(self.overflowed(DagOverflow::Bytes));
        }
        let outcome = self.check(label, cmd, options).map(|task| {
            self.labels.insert(task.label.clone());
            self.tasks.push(task);
        });
        if let Err(refusal) = &outcome {
            self.first_refusal.get_or_insert_with(|| refusal.clone());
        }
        Ok(outcome)
    }

    fn overflowed(&mut self, what: DagOverflow) -> DagOverflow {
        self.overflow = Some(what);
        what
    }

    fn check(&self, label: String, cmd: String, options: TaskOptions) -> Result<TaskSpec, AddTaskError> {
        if !is_valid_name(&label) {
            return Err(AddTaskError::BadLabel(label));
        }
        if self.labels.contains(&label) {
            return Err(AddTaskError::DuplicateLabel(label));
        }
        if let Some(dep) = options.dependencies.iter().find(|dep| !self.labels.contains(*dep)) {
            return Err(AddTaskError::UnknownDependency(dep.clone()));
        }
        if cmd.trim().is_empty() || cmd.len() > MAX_CMD_LEN {
            return Err(AddTaskError::BadCmd(format!("{cmd:?} must be 1 to {MAX_CMD_LEN} characters")));
        }
        if let Some(name) = options.requires.iter().chain(&options.provides).find(|n| n.is_empty()) {
            return Err(AddTaskError::BadLabel(format!("empty parameter name {name:?}")));
        }
        Ok(TaskSpec {
            params: json_object("params", options.params.as_deref())?,
            extra: json_object("extra", options.extra.as_deref())?,
            label,
            cmd,
            dependencies: options.dependencies,
            requires: options.requires,
            provides: options.provides,
            retry_max: options.retry_max,
            timeout: options.timeout_secs,
            is_save: options.is_save,
        })
    }

    /// The finished DAG, or why it is not one.
    pub(crate) fn finish(self) -> Result<Vec<TaskSpec>, DagError> {
        if let Some(refusal) = self.first_refusal {
            return Err(DagError::Refused(refusal_message(&refusal)));
        }
        if self.tasks.is_empty() {
            return Err(DagError::Empty);
        }
        Ok(self.tasks)
    }
}

fn json_object(what: &str, text: Option<&str>) -> Result<Option<Map<String, Value>>, AddTaskError> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(AddTaskError::BadJson(format!("{what} must be a JSON object"))),
        Err(err) => Err(AddTaskError::BadJson(format!("{what} is not JSON: {err}"))),
    }
}

/// Why a finished `workflow()` did not give a usable DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("a task was refused: {0}")]
    Refused(String),
    #[error("workflow() added no task")]
    Empty,
}

pub(crate) fn refusal_message(refusal: &AddTaskError) -> String {
    match refusal {
        AddTaskError::DuplicateLabel(label) => format!("duplicate task label {label:?}"),
        AddTaskError::UnknownDependency(dep) => {
            format!("dependency {dep:?} names no task added before it")
        }
        AddTaskError::BadLabel(label) => {
            format!("bad task label {label:?}: use 1 to {MAX_LABEL_LEN} of A-Z a-z 0-9 _ -")
        }
        AddTaskError::BadCmd(why) => format!("bad task cmd: {why}"),
        AddTaskError::BadJson(why) => format!("bad task JSON: {why}"),
        AddTaskError::TooLong(what) => format!("{what} is longer than {MAX_NAMES_LEN} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> TaskOptions {
        TaskOptions {
            dependencies: vec![],
            requires: vec![],
            provides: vec![],
            params: None,
            extra: None,
            retry_max: 0,
            timeout_secs: None,
            is_save: false,
        }
    }

    fn add(dag: &mut DagRecorder, label: &str, deps: &[&str]) -> Result<(), AddTaskError> {
        let options = TaskOptions { dependencies: deps.iter().map(|d| d.to_string()).collect(), ..options() };
        dag.add(label.into(), "/demo_api/ping".into(), options).unwrap_or_else(|o| panic!("{o:?}"))
    }

    #[test]
    fn refusals_name_the_offender_and_fail_the_dag_even_when_ignored() {
        let mut dag = DagRecorder::new(10, 1 << 20);
        assert_eq!(add(&mut dag, "a", &[]), Ok(()));
        assert_eq!(add(&mut dag, "a", &[]), Err(AddTaskError::DuplicateLabel("a".into())));
        assert_eq!(add(&mut dag, "b", &["c"]), Err(AddTaskError::UnknownDependency("c".into())));
        assert_eq!(add(&mut dag, "b c", &[]), Err(AddTaskError::BadLabel("b c".into())));
        assert_eq!(dag.finish(), Err(DagError::Refused("duplicate task label \"a\"".into())));
    }

    #[test]
    fn params_must_be_a_json_object_and_cmd_non_empty() {
        let mut dag = DagRecorder::new(10, 1 << 20);
        let params = TaskOptions { params: Some("[1]".into()), ..options() };
        let refused = dag.add("a".into(), "/x".into(), params).unwrap();
        assert!(matches!(refused, Err(AddTaskError::BadJson(why)) if why.contains("params")));
        let refused = dag.add("a".into(), " ".into(), options()).unwrap();
        assert!(matches!(refused, Err(AddTaskError::BadCmd(_))));
    }

    #[test]
    fn the_task_cap_and_the_byte_cap_are_overflows_not_refusals() {
        let mut dag = DagRecorder::new(1, 1 << 20);
        add(&mut dag, "a", &[]).unwrap();
        assert_eq!(dag.add("b".into(), "/x".into(), options()), Err(DagOverflow::Tasks));
        let mut dag = DagRecorder::new(10, 8);
        assert_eq!(dag.add("label".into(), "/long/cmd".into(), options()), Err(DagOverflow::Bytes));
    }

    #[test]
    fn an_empty_dag_is_an_error() {
        assert_eq!(DagRecorder::new(1, 1).finish(), Err(DagError::Empty));
    }
}
