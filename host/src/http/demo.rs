//! The demo task handlers the demo plugins call (`/demo_api/*`). Each answers
//! the seed's way: `{"stat": "OK", …result keys at the top level}`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;

fn missing(name: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ERR_PARAMS_MISSING", format!("{name} is required"))
}

/// Takes its body though it needs none: actix closes a connection whose
/// request body was left unread, so every ping (a chain's every step) would
/// cost the executor a new TCP connection.
pub async fn ping(_params: Bytes) -> HttpResponse {
    HttpResponse::Ok().json(json!({"stat": "OK", "ping": "pong"}))
}

pub async fn hello(req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let str_info = params.get("str_info").ok_or_else(|| missing("str_info"))?;
    let text = str_info.as_str().map_or_else(|| str_info.to_string(), str::to_owned);
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "hello": format!("hello {text}")})))
}

pub async fn collect(req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let Some(Value::Array(items)) = params.get("all_taskdata") else {
        return Err(missing("all_taskdata"));
    };
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "count": items.len(), "all_taskdata": items})))
}

const MAX_SLEEP_SECS: f64 = 3600.0;

pub async fn sleep(req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let seconds = match params.get("seconds") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| missing("seconds"))?;
    if !(0.0..=MAX_SLEEP_SECS).contains(&seconds) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ERR_PARAMS_INVALID", "seconds must be 0 to 3600"));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "slept": seconds})))
}

/// Answers with the parameters it received: `{"stat": "OK", "echo": {…}}`.
pub async fn echo(req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    Ok(HttpResponse::Ok().json(json!({"stat": "OK", "echo": Value::Object(params.0)})))
}

/// Calls seen per idempotency key, for `/demo_api/flaky`. At most
/// [`FlakyCounts::CAP`] keys are kept (the oldest goes first), so callers
/// inventing keys cannot grow the server's memory.
#[derive(Debug, Default)]
pub struct FlakyCounts(std::sync::Mutex<KeyCounts>);

#[derive(Debug, Default)]
struct KeyCounts {
    counts: std::collections::HashMap<String, u64>,
    oldest_first: std::collections::VecDeque<String>,
}

impl FlakyCounts {
    pub const CAP: usize = 10_000;

    /// Counts one more call of `key`; answers the calls seen so far.
    fn count(&self, key: String) -> u64 {
        let mut state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(calls) = state.counts.get_mut(&key) {
            *calls += 1;
            return *calls;
        }
        if state.counts.len() >= Self::CAP
            && let Some(oldest) = state.oldest_first.pop_front()
        {
            state.counts.remove(&oldest);
        }
        state.oldest_first.push_back(key.clone());
        state.counts.insert(key, 1);
        1
    }
}

/// Fails the first `fail_times` calls of each task (by its idempotency key)
/// with `ERR_FLAKY`, then succeeds; answers how many calls it has seen.
/// For retry tests, and to try retry_job by hand.
pub async fn flaky(
    req: HttpRequest,
    body: Bytes,
    counts: actix_web::web::Data<FlakyCounts>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let fail_times = params.integer("fail_times")?.ok_or_else(|| missing("fail_times"))?;
    let key = req
        .headers()
        .get(crate::executor::HEADER_IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    let calls = counts.count(key);
    let stat = if i64::try_from(calls).unwrap_or(i64::MAX) <= fail_times { "ERR_FLAKY" } else { "OK" };
    Ok(HttpResponse::Ok().json(json!({"stat": stat, "calls": calls})))
}

#[cfg(test)]
mod tests {
    use super::FlakyCounts;

    #[test]
    fn flaky_counts_keep_a_bounded_number_of_keys() {
        let counts = FlakyCounts::default();
        assert_eq!((counts.count("a".into()), counts.count("a".into())), (1, 2));
        for key in 0..FlakyCounts::CAP {
            counts.count(key.to_string());
        }
        let state = counts.0.lock().unwrap();
        assert_eq!(state.counts.len(), FlakyCounts::CAP);
        assert!(!state.counts.contains_key("a"), "the oldest key goes first");
    }
}
