//! A plugin's job_extra JSON Schema, enforced before the plugin runs: a job
//! whose job_extra does not match is refused with `ERR_JOB_EXTRA_INVALID`,
//! naming where and why. Each schema is compiled once per plugin version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// How many problems a refusal lists.
const SHOWN_ERRORS: usize = 5;

#[derive(Default)]
pub struct ExtraSchemas {
    /// By plugin sha256; `None` for a schema that does not compile (not enforced, logged once).
    compiled: Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>,
}

impl std::fmt::Debug for ExtraSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraSchemas")
    }
}

impl ExtraSchemas {
    /// `Err(why)` when `extra` does not match the plugin's `schema`.
    pub fn check(&self, sha256: &str, schema: Option<&Value>, extra: &Map<String, Value>) -> Result<(), String> {
        let Some(schema) = schema else { return Ok(()) };
        let validator = {
            let mut compiled = self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            compiled
                .entry(sha256.to_owned())
                .or_insert_with(|| match jsonschema::validator_for(schema) {
                    Ok(validator) => Some(Arc::new(validator)),
                    Err(err) => {
                        tracing::warn!(plugin_sha256 = sha256, error = %err, "the plugin's job_extra schema does not compile; not enforced");
                        None
                    }
                })
                .clone()
        };
        let Some(validator) = validator else { return Ok(()) };
        let instance = Value::Object(extra.clone());
        let problems: Vec<String> = validator
            .iter_errors(&instance)
            .take(SHOWN_ERRORS)
            .map(|error| {
                let at = error.instance_path().to_string();
                if at.is_empty() { error.to_string() } else { format!("{at}: {error}") }
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        Err(format!("job_extra does not match the job type's schema: {}", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn job_extra_is_checked_against_the_schema() {
        let schemas = ExtraSchemas::default();
        let schema =
            json!({"type": "object", "required": ["name"], "properties": {"n": {"type": "integer", "minimum": 1}}});
        let extra = |value: Value| value.as_object().cloned().unwrap_or_default();
        assert!(schemas.check("a", Some(&schema), &extra(json!({"name": "x", "n": 2}))).is_ok());
        let missing = schemas.check("a", Some(&schema), &extra(json!({}))).unwrap_err();
        assert!(missing.contains("\"name\" is a required property"), "{missing}");
        let small = schemas.check("a", Some(&schema), &extra(json!({"name": "x", "n": 0}))).unwrap_err();
        assert!(small.contains("/n:"), "{small}");
        assert!(schemas.check("a", None, &extra(json!({}))).is_ok());
        // A schema that does not compile is not enforced.
        assert!(schemas.check("b", Some(&json!({"type": 12})), &extra(json!({}))).is_ok());
    }
}
