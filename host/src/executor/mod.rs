//! Runs one task attempt: an HTTP POST of the resolved parameters to the
//! task's cmd, and the reading of the reply.
//!
//! `/path` goes to the handler base URL, `http://…` as it is, but only to the
//! base URL's host or a host of `--task-hosts`: a plugin is untrusted code and
//! must not make the server call whatever its network can reach. Redirects
//! are not followed (they could lead anywhere) and a reply is read up to
//! `--max-task-reply-bytes`, never further. The handler gets
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
    pub const HOST_NOT_ALLOWED: &str = "ERR_TASK_HOST_NOT_ALLOWED";
    pub const REDIRECT: &str = "ERR_TASK_REDIRECT";
    pub const REPLY_TOO_LARGE: &str = "ERR_TASK_REPLY_TOO_LARGE";
}

/// What task calls may reach and read.
#[derive(Debug, Clone)]
pub struct TaskLimits {
    /// Hosts (lower case, no port) allowed besides the handler base URL's.
    pub extra_hosts: Vec<String>,
    pub max_reply_bytes: usize,
}

impl Default for TaskLimits {
    fn default() -> Self {
        Self { extra_hosts: Vec::new(), max_reply_bytes: 1 << 20 }
    }
}

/// How much of a reply that is not JSON is kept, for its author to recognise it.
const REPLY_START_CHARS: usize = 64;

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
    /// The base URL's host and `extra_hosts`.
    allowed_hosts: Vec<String>,
    max_reply_bytes: usize,
}

/// How long an idle connection to a handler stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

impl HttpExecutor {
    pub fn new(base_url: &str, limits: TaskLimits) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            // Under the 5 s keep-alive of common handler servers (actix-web,
            // Node, uvicorn): a connection they are closing is not reused.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        let mut allowed_hosts = limits.extra_hosts;
        if let Some(host) = reqwest::Url::parse(&base_url).ok().and_then(|url| url.host_str().map(str::to_owned)) {
            allowed_hosts.push(host.to_ascii_lowercase());
        }
        Ok(Self { client, base_url, allowed_hosts, max_reply_bytes: limits.max_reply_bytes })
    }

    /// The URL a cmd is sent to, or why it may not be.
    pub fn url_for(&self, cmd: &str) -> Result<reqwest::Url, Outcome> {
        let text = if cmd.starts_with("http://") || cmd.starts_with("https://") {
            cmd.to_owned()
        } else if cmd.starts_with('/') {
            format!("{}{cmd}", self.base_url)
        } else {
            return Err(Outcome::failed(stat::BAD_CMD, format!("cmd {cmd:?} is neither /path nor http(s)://")));
        };
        let url = reqwest::Url::parse(&text)
            .map_err(|err| Outcome::failed(stat::BAD_CMD, format!("cmd {cmd:?} is not a URL: {err}")))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.allowed_hosts.contains(&host) {
            return Err(Outcome::failed(
                stat::HOST_NOT_ALLOWED,
                format!("tasks may not call the host {host:?}; the server's operator can allow it with --task-hosts"),
            ));
        }
        Ok(url)
    }

    pub async fn run(&self, call: &TaskCall<'_>) -> Outcome {
        let url = match self.url_for(call.cmd) {
            Ok(url) => url,
            Err(refused) => return refused,
        };
        let mut request = self
            .client
            .post(url.clone())
            .header(HEADER_JOB_ID, call.job_id)
            .header(HEADER_TASK_ID, call.task_id)
            .header(HEADER_ATTEMPT, call.attempt)
            .header(HEADER_IDEMPOTENCY_KEY, call.idempotency_key)
            .json(call.params);
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        // A pooled connection the handler's server closed just as the request
        // went out fails to send; the request goes once more on a fresh one.
        // Execution is at-least-once anyway (the idempotency key says so).
        let resend = request.try_clone();
        let sent = match (request.send().await, resend) {
            (Err(err), Some(resend)) if err.is_request() && !err.is_connect() && !err.is_timeout() => {
                tracing::debug!(%url, error = %error_chain(&err), "sending a task failed; sending it again");
                resend.send().await
            }
            (sent, _) => sent,
        };
        let response = match sent {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return Outcome::failed(stat::TIMEOUT, format!("{url}: no answer in time"));
            }
            Err(err) => {
                return Outcome::failed(stat::TRANSPORT, format!("{url}: {}", error_chain(&err)));
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Outcome::failed(
                stat::REDIRECT,
                format!("{url}: HTTP {}: task handlers must answer, not redirect", status.as_u16()),
            );
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(REPLY_START_CHARS)
            .collect::<String>();
        match self.read_capped(response).await {
            Ok(body) => interpret(status.as_u16(), &content_type, &body),
            Err(outcome) => outcome,
        }
    }

    /// The body, or a failure once it passes the cap (the rest is not read).
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Outcome> {
        let url = response.url().clone();
        let too_large = || {
            Outcome::failed(
                stat::REPLY_TOO_LARGE,
                format!("{url}: the reply is larger than the limit of {} bytes", self.max_reply_bytes),
            )
        };
        if response.content_length().is_some_and(|length| length > self.max_reply_bytes as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > self.max_reply_bytes => return Err(too_large()),
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return Ok(body),
                Err(err) if err.is_timeout() => {
                    return Err(Outcome::failed(stat::TIMEOUT, format!("{url}: no answer in time")));
                }
                Err(err) => {
                    return Err(Outcome::failed(stat::TRANSPORT, format!("{url}: {}", error_chain(&err))));
                }
            }
        }
    }
}

/// A reqwest error with its causes (reqwest's own message hides them).
pub fn error_chain(err: &reqwest::Error) -> String {
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
/// Of a reply that is not a JSON object only its size, type and first
/// characters are kept, labelled as such.
pub fn interpret(http_status: u16, content_type: &str, body: &[u8]) -> Outcome {
    let Ok(Value::Object(mut reply)) = serde_json::from_slice::<Value>(body) else {
        let start: String = String::from_utf8_lossy(body).chars().take(REPLY_START_CHARS).collect();
        let mut data = Map::new();
        data.insert("message".into(), Value::String(format!("HTTP {http_status}: the reply is not a JSON object")));
        data.insert(
            "reply".into(),
            serde_json::json!({"bytes": body.len(), "content_type": content_type, "start": start}),
        );
        return Outcome::Failed { stat: stat::BAD_REPLY.to_owned(), data: Some(Value::Object(data)) };
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
        let outcome = interpret(200, "application/json", br#"{"stat":"OK","new_unitmatrix":"x"}"#);
        let Outcome::Finished(result) = outcome else { panic!("{outcome:?}") };
        assert_eq!(Value::Object(result), json!({"new_unitmatrix": "x"}));
    }

    #[test]
    fn another_stat_fails_with_that_stat_even_on_http_200() {
        let outcome = interpret(200, "application/json", br#"{"stat":"ERR_DISK_FULL","free":0}"#);
        assert_eq!(outcome, Outcome::Failed { stat: "ERR_DISK_FULL".into(), data: Some(json!({"free": 0})) });
    }

    #[test]
    fn non_json_or_stat_less_replies_are_bad_replies() {
        for body in [&b"<html>oops</html>"[..], br#"[1,2]"#, br#"{"data":1}"#] {
            let outcome = interpret(502, "text/html", body);
            assert!(matches!(&outcome, Outcome::Failed { stat, .. } if stat == stat::BAD_REPLY), "{outcome:?}");
        }
    }

    #[test]
    fn of_a_non_json_reply_only_a_short_labelled_start_is_kept() {
        let body = "secret ".repeat(1000);
        let Outcome::Failed { data: Some(data), .. } = interpret(200, "text/plain", body.as_bytes()) else {
            panic!("not a failure")
        };
        assert_eq!(data["reply"]["bytes"], 7000);
        assert_eq!(data["reply"]["content_type"], "text/plain");
        assert_eq!(data["reply"]["start"].as_str().unwrap().chars().count(), REPLY_START_CHARS);
        assert!(data.to_string().len() < 300, "{data}");
    }

    /// Task 1 of job 1, first attempt, 5 s to answer.
    fn test_call<'a>(cmd: &'a str, params: &'a Map<String, Value>) -> TaskCall<'a> {
        TaskCall {
            cmd,
            params,
            job_id: 1,
            task_id: 1,
            attempt: 0,
            idempotency_key: "k",
            timeout: Some(Duration::from_secs(5)),
        }
    }

    #[tokio::test]
    async fn https_urls_are_dialled_not_refused_as_unsupported() {
        let limits = TaskLimits { extra_hosts: vec!["127.0.0.1".into()], ..TaskLimits::default() };
        let executor = HttpExecutor::new("http://localhost:9", limits).unwrap();
        let params = Map::new();
        let call = test_call("https://127.0.0.1:9/nothing", &params);
        let Outcome::Failed { stat, data } = executor.run(&call).await else { panic!("port 9 answered") };
        assert_eq!(stat, stat::TRANSPORT);
        let message = data.unwrap()["message"].as_str().unwrap().to_owned();
        assert!(!message.contains("scheme"), "https must be supported: {message}");
    }

    /// A handler server that drops the first connection after reading the
    /// request, as one closing an idle keep-alive connection would, and
    /// answers on the next one.
    #[tokio::test]
    async fn a_request_lost_with_its_connection_is_sent_once_more() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            for connection in 0..2 {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await.unwrap();
                if connection == 1 {
                    let body = r#"{"stat":"OK","answered":true}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.write_all(reply.as_bytes()).await.unwrap();
                }
            }
        });
        let executor = HttpExecutor::new(&base, TaskLimits::default()).unwrap();
        let params = Map::new();
        let call = test_call("/handler", &params);
        let outcome = executor.run(&call).await;
        assert_eq!(outcome, Outcome::Finished(json!({"answered": true}).as_object().unwrap().clone()));
        server.await.unwrap();
    }

    #[test]
    fn cmds_map_to_urls_of_allowed_hosts_only() {
        let limits = TaskLimits { extra_hosts: vec!["h".into()], ..TaskLimits::default() };
        let executor = HttpExecutor::new("http://127.0.0.1:8585/", limits).unwrap();
        let url = |cmd: &str| executor.url_for(cmd).map(|url| url.to_string());
        assert_eq!(url("/demo_api/ping").unwrap(), "http://127.0.0.1:8585/demo_api/ping");
        assert_eq!(url("http://h/x").unwrap(), "http://h/x");
        assert_eq!(url("http://127.0.0.1:9999/y").unwrap(), "http://127.0.0.1:9999/y");
        let refused = |cmd: &str| match executor.url_for(cmd) {
            Err(Outcome::Failed { stat, .. }) => stat,
            other => panic!("{cmd}: {other:?}"),
        };
        assert_eq!(refused("ping"), stat::BAD_CMD);
        assert_eq!(refused("http://169.254.169.254/latest/meta-data"), stat::HOST_NOT_ALLOWED);
        assert_eq!(refused("https://h.evil.example/"), stat::HOST_NOT_ALLOWED);
        assert_eq!(refused("http://h@evil.example/"), stat::HOST_NOT_ALLOWED);
    }
}
