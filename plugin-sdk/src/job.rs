//! The values a plugin receives and returns besides tasks.

use serde_json::{Map, Value};

/// The job being created, as create_job received it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    /// Who created it (the `x_username` header); empty when unknown.
    pub operator: String,
    /// `job_extra`: always an object, empty when the caller sent none.
    pub extra: Map<String, Value>,
}

impl Job {
    /// A job with this `job_extra`; anything but a JSON object counts as `{}`.
    pub fn with_extra(extra: Value) -> Self {
        Self { extra: object_or_empty(extra), ..Self::default() }
    }

    /// One `job_extra` value.
    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.get(key)
    }

    /// One `job_extra` value when it is a string.
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }

    /// `job_extra` as the plugin's typed struct (see [`Metadata::job_extra`]);
    /// the server has checked it against that struct's schema already, so an
    /// `Err` here means the struct and its schema disagree.
    pub fn extra_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(Value::Object(self.extra.clone())).map_err(|err| format!("job_extra: {err}"))
    }

    /// One `job_extra` value when it is a non-negative integer.
    pub fn extra_u64(&self, key: &str) -> Option<u64> {
        self.extra.get(key).and_then(Value::as_u64)
    }

    #[cfg_attr(not(target_arch = "wasm32"), expect(dead_code, reason = "used by the wasm glue"))]
    pub(crate) fn from_wire(namespace: String, name: String, operator: String, extra_json: &str) -> Self {
        let extra = serde_json::from_str(extra_json).map(object_or_empty).unwrap_or_default();
        Self { namespace, name, operator, extra }
    }
}

fn object_or_empty(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What [`crate::Plugin::metadata`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub job_type: String,
    pub version: String,
    pub description: String,
    pub job_extra_schema: Option<Value>,
}

impl Metadata {
    /// `job_type` is the name users pass to create_job; `[A-Za-z0-9_-]{1,64}`.
    pub fn new(job_type: impl Into<String>) -> Self {
        Self {
            job_type: job_type.into(),
            version: String::from("0.0.0"),
            description: String::new(),
            job_extra_schema: None,
        }
    }

    /// Usually `env!("CARGO_PKG_VERSION")`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// JSON Schema of `job_extra`: the server refuses a job whose job_extra
    /// does not match it (`ERR_JOB_EXTRA_INVALID`, before `params_check`), and
    /// the admin API and the console show it.
    pub fn job_extra_schema(mut self, schema: Value) -> Self {
        self.job_extra_schema = Some(schema);
        self
    }

    /// Declares job_extra as a struct: its JSON Schema is generated (schemars)
    /// from the struct's fields and doc comments, and [`Job::extra_as`] reads it.
    ///
    /// ```
    /// use xingqiao_plugin_sdk::{JsonSchema, Metadata};
    ///
    /// #[derive(serde::Deserialize, JsonSchema)]
    /// struct Extra {
    ///     /// Who to greet.
    ///     name: String,
    ///     #[serde(default)]
    ///     times: u32,
    /// }
    ///
    /// let meta = Metadata::new("greet").job_extra::<Extra>();
    /// assert_eq!(meta.job_extra_schema.unwrap()["required"], serde_json::json!(["name"]));
    /// ```
    pub fn job_extra<T: schemars::JsonSchema>(self) -> Self {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
        self.job_extra_schema(schema.to_value())
    }
}

/// What [`crate::Plugin::params_check`] decides about a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// Seconds; `None` leaves the server's default.
    pub job_timeout: Option<u32>,
    /// Jobs sharing a lock name never run at the same time.
    pub job_locks: Vec<String>,
    /// `key=value` tags for filters and statistics.
    pub job_tags: Vec<String>,
}

impl Check {
    pub fn job_timeout(mut self, seconds: u32) -> Self {
        self.job_timeout = Some(seconds);
        self
    }

    /// Adds locks. Each item is one lock name: a comma inside one is refused
    /// (by the server and by [`crate::testing`]), never split silently.
    pub fn job_locks<I, S>(mut self, locks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.job_locks.extend(locks.into_iter().map(Into::into));
        self
    }

    pub fn job_tag(mut self, key: &str, value: &str) -> Self {
        self.job_tags.push(format!("{key}={value}"));
        self
    }
}

/// A job's state change, with the fields of the seed's `job_obj`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobEvent {
    pub job_id: i64,
    pub job_client: String,
    pub job_namespace: String,
    pub job_reqid: String,
    pub job_name: String,
    /// `started`, `finished` or `failed`.
    pub job_status: String,
    pub job_type: String,
    pub job_tags: String,
    pub ret_stat: String,
    pub ret_data: Option<Value>,
    pub job_cost: f64,
    pub job_extra: Map<String, Value>,
    pub job_timeout: u32,
    pub job_lock: String,
    pub exe_id: u32,
    pub operator: String,
    pub is_valid: bool,
    pub c_time: String,
    pub s_time: String,
    pub e_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locks_are_kept_as_given_never_split() {
        let check = Check::default().job_locks(["lock1, lock2", "lock3"]);
        assert_eq!(check.job_locks, ["lock1, lock2", "lock3"]);
    }

    #[test]
    fn job_extra_that_is_not_an_object_reads_as_empty() {
        assert!(Job::with_extra(json!([1, 2])).extra.is_empty());
        assert_eq!(Job::with_extra(json!({"n": 3})).extra_u64("n"), Some(3));
    }
}
