//! `hello_lock`: the seed's lock demo. params_check validates job_extra against
//! its JSON Schema (`str_info` must match `[A-Za-z]+$`), takes `job_timeout`
//! (default 1800 s) and `job_locks` (comma-separated, default `ceshi`).

use xingqiao_plugin_sdk::{Check, Dag, Error, Job, Metadata, Plugin, Task, Value, export_plugin, json};

pub struct HelloLock;

const DEFAULT_TIMEOUT_SECS: u32 = 1800;
const DEFAULT_LOCK: &str = "ceshi";

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "str_info": {"type": "string", "pattern": "[A-Za-z]+$"},
            "job_timeout": {"type": "number"},
            "job_locks": {"type": "string"}
        },
        "required": ["str_info"]
    })
}

/// The schema above, checked by hand: a JSON Schema engine would triple the
/// plugin's size for three rules.
fn validate(job: &Job) -> Result<(), String> {
    let str_info = match job.extra("str_info") {
        None => return Err("job_extra: 'str_info' is a required property".to_owned()),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!("job_extra.str_info: {other} is not of type 'string'"));
        }
    };
    // `[A-Za-z]+$` is searched, not anchored at the start: the text must end in a letter.
    if !str_info.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Err(format!("job_extra.str_info: {str_info:?} does not match '[A-Za-z]+$'"));
    }
    if let Some(timeout) = job.extra("job_timeout").filter(|v| !v.is_number()) {
        return Err(format!("job_extra.job_timeout: {timeout} is not of type 'number'"));
    }
    if let Some(locks) = job.extra("job_locks").filter(|v| !v.is_string()) {
        return Err(format!("job_extra.job_locks: {locks} is not of type 'string'"));
    }
    Ok(())
}

fn timeout_secs(job: &Job) -> Result<u32, String> {
    let Some(seconds) = job.extra("job_timeout").and_then(Value::as_f64) else {
        return Ok(DEFAULT_TIMEOUT_SECS);
    };
    if !(seconds > 0.0 && seconds <= f64::from(u32::MAX)) {
        return Err(format!("job_extra.job_timeout: {seconds} is not a positive number of seconds"));
    }
    // Whole seconds, never shorter than asked.
    Ok(seconds.ceil() as u32)
}

impl Plugin for HelloLock {
    fn metadata() -> Metadata {
        Metadata::new("hello_lock")
            .version(env!("CARGO_PKG_VERSION"))
            .description("hello(str_info) -> ping, under job locks (default lock 'ceshi')")
            .job_extra_schema(schema())
    }

    fn params_check(job: &Job) -> Result<Check, String> {
        validate(job)?;
        // The seed's job_extra carries several locks joined by commas
        // (`",".join(job_locks)`); the SDK takes them as a list.
        let locks = job.extra_str("job_locks").unwrap_or(DEFAULT_LOCK);
        let locks = locks.split(',').map(str::trim).filter(|lock| !lock.is_empty());
        Ok(Check::default().job_timeout(timeout_secs(job)?).job_locks(locks))
    }

    fn workflow(_job: &Job, dag: &mut Dag) -> Result<(), Error> {
        dag.add_task(Task::new("task1", "/demo_api/hello").requires(["str_info"]))?;
        dag.add_task(Task::new("task2", "/demo_api/ping").dependencies(["task1"]))?;
        Ok(())
    }
}

export_plugin!(HelloLock);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: Value) -> Result<Check, String> {
        HelloLock::params_check(&Job::with_extra(extra))
    }

    #[test]
    fn defaults_are_1800_seconds_and_lock_ceshi() {
        let check = check(json!({"str_info": "ceshi"})).unwrap();
        assert_eq!(check.job_timeout, Some(1800));
        assert_eq!(check.job_locks, ["ceshi"]);
    }

    #[test]
    fn timeout_and_comma_separated_locks_come_from_job_extra() {
        let check = check(json!({"str_info": "x", "job_timeout": 2.5, "job_locks": "a,b"})).unwrap();
        assert_eq!(check.job_timeout, Some(3));
        assert_eq!(check.job_locks, ["a", "b"]);
    }

    #[test]
    fn schema_violations_are_refused_with_the_field_named() {
        for (extra, field) in [
            (json!({}), "str_info"),
            (json!({"str_info": 5}), "str_info"),
            (json!({"str_info": "abc1"}), "str_info"),
            (json!({"str_info": "ab", "job_timeout": "1"}), "job_timeout"),
            (json!({"str_info": "ab", "job_timeout": -1}), "job_timeout"),
            (json!({"str_info": "ab", "job_locks": 1}), "job_locks"),
        ] {
            let err = check(extra.clone()).unwrap_err();
            assert!(err.contains(field), "{extra}: {err}");
        }
        assert!(check(json!({"str_info": "123abc"})).is_ok(), "the pattern is searched, not anchored");
    }
}
