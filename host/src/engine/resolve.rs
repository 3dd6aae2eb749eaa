//! Parameter resolution (seed section 3.3): what a task's handler receives.
//!
//! 1. the preset `params` of add-task;
//! 2. each name in `requires` not preset, looked up in the job's `job_extra`,
//!    then the task's `extra`, then the `ret_data` of each dependency in order —
//!    the last place that has it wins (the closest source is the most specific);
//! 3. `all_taskdata`: the list of the dependencies' `ret_data`, in order.

use serde_json::{Map, Value};

pub const ALL_TASKDATA: &str = "all_taskdata";

/// The parameters, or the names of required parameters found nowhere.
pub fn resolve(
    preset: &Map<String, Value>,
    requires: &[String],
    job_extra: &Map<String, Value>,
    task_extra: &Map<String, Value>,
    dependency_results: &[Value],
) -> Result<Map<String, Value>, Vec<String>> {
    let mut params = preset.clone();
    let mut missing = Vec::new();
    for name in requires {
        if params.contains_key(name) {
            continue;
        }
        if name == ALL_TASKDATA {
            params.insert(name.clone(), Value::Array(dependency_results.to_vec()));
            continue;
        }
        let found = std::iter::once(job_extra)
            .chain(std::iter::once(task_extra))
            .chain(dependency_results.iter().filter_map(Value::as_object))
            .rev()
            .find_map(|source| source.get(name));
        match found {
            Some(value) => {
                params.insert(name.clone(), value.clone());
            }
            None => missing.push(name.clone()),
        }
    }
    if missing.is_empty() { Ok(params) } else { Err(missing) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn requires_are_found_in_job_extra_task_extra_then_dependencies_last_wins() {
        let resolved = resolve(
            &Map::new(),
            &["a".into(), "b".into(), "c".into()],
            &map(json!({"a": 1, "b": 1, "c": 1})),
            &map(json!({"b": 2, "c": 2})),
            &[json!({"c": 3}), json!({"x": 0})],
        );
        assert_eq!(resolved, Ok(map(json!({"a": 1, "b": 2, "c": 3}))));
    }

    #[test]
    fn presets_are_kept_and_not_overridden() {
        let resolved = resolve(
            &map(json!({"str_info": "hello world"})),
            &["str_info".into()],
            &map(json!({"str_info": "other"})),
            &Map::new(),
            &[],
        );
        assert_eq!(resolved, Ok(map(json!({"str_info": "hello world"}))));
    }

    #[test]
    fn all_taskdata_lists_the_dependencies_results_in_order() {
        let resolved =
            resolve(&Map::new(), &[ALL_TASKDATA.into()], &Map::new(), &Map::new(), &[json!({"a": 1}), json!(null)]);
        assert_eq!(resolved, Ok(map(json!({"all_taskdata": [{"a": 1}, null]}))));
    }

    #[test]
    fn missing_names_are_all_reported() {
        let resolved = resolve(&Map::new(), &["x".into(), "y".into()], &map(json!({"y": 1})), &Map::new(), &[]);
        assert_eq!(resolved, Err(vec!["x".to_owned()]));
    }
}
