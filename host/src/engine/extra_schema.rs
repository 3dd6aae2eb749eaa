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
    /// `Err(problems)` when `extra` does not match the plugin's `schema`.
    pub fn check(&self, sha256: &str, schema: Option<&Value>, extra: &Map<String, Value>) -> Result<(), ExtraInvalid> {
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
        let problems: Vec<Problem> = validator
            .iter_errors(&instance)
            .take(SHOWN_ERRORS)
            .map(|error| {
                let mut pointer = error.instance_path().to_string();
                // A missing property is reported at its parent; point at the property itself.
                if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind()
                    && let Some(name) = property.as_str()
                {
                    pointer = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                }
                Problem { pointer, reason: error.to_string() }
            })
            .collect();
        if problems.is_empty() { Ok(()) } else { Err(ExtraInvalid(problems)) }
    }
}

/// One way job_extra breaks the schema: where (a JSON pointer into job_extra,
/// `""` for the whole object) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub pointer: String,
    pub reason: String,
}

/// job_extra does not match the job type's schema; at most `SHOWN_ERRORS` problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraInvalid(pub Vec<Problem>);

impl std::fmt::Display for ExtraInvalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("job_extra does not match the job type's schema: ")?;
        for (i, problem) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            let at = if problem.pointer.is_empty() { "(root)" } else { problem.pointer.as_str() };
            write!(f, "{sep}at {at}: {}", problem.reason)?;
        }
        Ok(())
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
        assert_eq!(missing.0[0].pointer, "/name");
        assert!(missing.to_string().contains("at /name: \"name\" is a required property"), "{missing}");
        let small = schemas.check("a", Some(&schema), &extra(json!({"name": "x", "n": 0}))).unwrap_err();
        assert_eq!(small.0[0].pointer, "/n");
        assert!(small.0[0].reason.contains("minimum"), "{small}");
        assert!(schemas.check("a", None, &extra(json!({}))).is_ok());
        // A schema that does not compile is not enforced.
        assert!(schemas.check("b", Some(&json!({"type": 12})), &extra(json!({}))).is_ok());
    }
}
