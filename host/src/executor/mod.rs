//! Runs one task attempt: an HTTP POST of the resolved parameters to the
//! task's cmd, and the reading of the reply.
//!
//! `/path` goes to the handler base URL, `http://…` as it is. The handler gets
//! the job id, task id, attempt and an idempotency key in headers, because
//! execution is at-least-once. A JSON reply `{"stat": "OK", …}` finishes the
//! task with the rest of the object as its result (keys at the top level, as
//! in the seed); any other stat fails it with that stat.

use std::time::Duration;

use serde_json::{Map, Value};

pub const HEADER_JOB_ID: &str = "x-xingqiao-job-id";
pub const HEADER_TASK_ID: &str = "x-xingqiao-task-id";
pub const HEADER_ATTEMPT: &str = "x-xingqiao-attempt";
pub const HEADER_IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The stats a task gets when its handler could not answer properly.
pub mod stat {
    pub const TRANSPORT: &str = "ERR_TASK_HTTP_TRANSPORT";
    pub const TIMEOUT: &str = "ERR_TASK_TIMEOUT";
    pub const BAD_REPLY: &str = "ERR_TASK_BAD_REPLY";
    pub const BAD_CMD: &str = "ERR_TASK_BAD_CMD";
    pub const PARAM_MISSING: &str = "ERR_TASK_PARAM_MISSING";
    pub const PROVIDES_MISSING: &str = "ERR_TASK_PROVIDES_MISSING";
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished(Map<String, Value>),
    Failed { stat: String, data: Option<Value> },
}

impl Outcome {
    fn failed(stat: &str, message: impl Into<String>) -> Self {
        let mut data = Map::new();
        data.insert("message".into(), Value::String(message.into()));
        Self::Failed { stat: stat.to_owned(), data: Some(Value::Object(data)) }
    }
}

/// One attempt to send.
#[derive(Debug, Clone)]
pub struct TaskCall<'a> {
    pub cmd: &'a str,
    pub params: &'a Map<String, Value>,
    pub job_id: i64,
    pub task_id: i64,
    pub attempt: u32,
    pub idempotency_key: &'a str,
    pub timeout: Option<Duration>,
}

/// Shared keep-alive HTTP client for every task.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
    base_url: String,
}

impl HttpExecutor {
    pub fn new(base_url: &str) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { client, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    pub fn url_for(&self, cmd: &str) -> Option<String> {
        if cmd.starts_with("http://") || cmd.starts_with("https://") {
            Some(cmd.to_owned())
        } else if cmd.starts_with('/') {
            Some(format!("{}{cmd}", self.base_url))
        } else {
            None
        }
    }

    pub async fn run(&self, call: &TaskCall<'_>) -> Outcome {
        let Some(url) = self.url_for(call.cmd) else {
            return Outcome::failed(stat::BAD_CMD, format!("cmd {:?} is neither /path nor http(s)://", call.cmd));
        };
        let mut request = self
            .client
            .post(&url)
            .header(HEADER_JOB_ID, call.job_id)
            .header(HEADER_TASK_ID, call.task_id)
            .header(HEADER_ATTEMPT, call.attempt)
            .header(HEADER_IDEMPOTENCY_KEY, call.idempotency_key)
            .json(call.params);
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return Outcome::failed(stat::TIMEOUT, format!("{url}: no answer in time"));
            }
            Err(err) => {
                return Outcome::failed(stat::TRANSPORT, format!("{url}: {}", transport_reason(&err)));
            }
        };
        let status = response.status();
        match response.bytes().await {
            Ok(body) => interpret(status.as_u16(), &body),
            Err(err) if err.is_timeout() => Outcome::failed(stat::TIMEOUT, format!("{url}: no answer in time")),
            Err(err) => Outcome::failed(stat::TRANSPORT, format!("{url}: {}", transport_reason(&err))),
        }
    }
}

fn transport_reason(err: &reqwest::Error) -> String {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

/// Installs the process-wide TLS provider (rustls with ring) that every
/// reqwest client of the process needs for `https://`. Call it before building
/// any other client; installing twice is a harmless no-op.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads a handler's reply. The `stat` decides, whatever the HTTP status.
pub fn interpret(http_status: u16, body: &[u8]) -> Outcome {
    let Ok(Value::Object(mut reply)) = serde_json::from_slice::<Value>(body) else {
        let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Outcome::failed(stat::BAD_REPLY, format!("HTTP {http_status}: not a JSON object: {preview:?}"));
    };
    match reply.remove("stat") {
        Some(Value::String(stat)) if stat == "OK" => Outcome::Finished(reply),
        Some(Value::String(stat)) if !stat.is_empty() => Outcome::Failed { stat, data: Some(Value::Object(reply)) },
        _ => Outcome::failed(stat::BAD_REPLY, format!("HTTP {http_status}: the reply has no \"stat\"")),
    }
}

/// Which `provides` keys a finished result lacks.
pub fn missing_provides(result: &Map<String, Value>, provides: &[String]) -> Vec<String> {
    provides.iter().filter(|key| !result.contains_key(*key)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ok_stat_finishes_with_the_rest_of_the_object_as_result() {
        let outcome = interpret(200, br#"{"stat":"OK","new_unitmatrix":"x"}"#);
        let Outcome::Finished(result) = outcome else { panic!("{outcome:?}") };
        assert_eq!(Value::Object(result), json!({"new_unitmatrix": "x"}));
    }

    #[test]
    fn another_stat_fails_with_that_stat_even_on_http_200() {
        let outcome = interpret(200, br#"{"stat":"ERR_DISK_FULL","free":0}"#);
        assert_eq!(outcome, Outcome::Failed { stat: "ERR_DISK_FULL".into(), data: Some(json!({"free": 0})) });
    }

    #[test]
    fn non_json_or_stat_less_replies_are_bad_replies() {
        for body in [&b"<html>oops</html>"[..], br#"[1,2]"#, br#"{"data":1}"#] {
            let outcome = interpret(502, body);
            assert!(matches!(&outcome, Outcome::Failed { stat, .. } if stat == stat::BAD_REPLY), "{outcome:?}");
        }
    }

    #[tokio::test]
    async fn https_urls_are_dialled_not_refused_as_unsupported() {
        let executor = HttpExecutor::new("http://127.0.0.1:9").unwrap();
        let params = Map::new();
        let call = TaskCall {
            cmd: "https://127.0.0.1:9/nothing",
            params: &params,
            job_id: 1,
            task_id: 1,
            attempt: 0,
            idempotency_key: "k",
            timeout: Some(Duration::from_secs(5)),
        };
        let Outcome::Failed { stat, data } = executor.run(&call).await else { panic!("port 9 answered") };
        assert_eq!(stat, stat::TRANSPORT);
        let message = data.unwrap()["message"].as_str().unwrap().to_owned();
        assert!(!message.contains("scheme"), "https must be supported: {message}");
    }

    #[test]
    fn cmds_map_to_urls() {
        let executor = HttpExecutor::new("http://127.0.0.1:8585/").unwrap();
        assert_eq!(executor.url_for("/demo_api/ping").as_deref(), Some("http://127.0.0.1:8585/demo_api/ping"));
        assert_eq!(executor.url_for("http://h/x").as_deref(), Some("http://h/x"));
        assert_eq!(executor.url_for("ping"), None);
    }
}
